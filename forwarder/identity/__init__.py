"""Identity: who the person behind an event is at HubSpot, learned once, chosen per request.

Below both the ingest pipeline (which teaches the graph) and delivery (which asks it), above
``hubspot`` (contact look-ups) and ``storage`` (the graph itself):

- ``keys``: the identifiers an event carries and the links it asserts.
- ``graph``: what is learned into the identity graph: links from accepted events (releasing the
  conversions they unlock), contact merges and deletions from HubSpot's webhooks.
- ``choice``: which identifier one HubSpot request carries, down the fallback chain, and why.
- ``resolve``: the best identity for each event, from the event, the graph and look-ups.
- ``lookup``: userId -> HubSpot contact id through a unique contact property.
"""
