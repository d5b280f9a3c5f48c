"""``forwarder check``: the preflight before go-live, one line per item with ✓ / ✗ and the fix.

Per configured portal, with its credential and API version: the credential works, each enabled
feature's scopes are granted, mapped events and their properties exist with types the forwarder
can fill, mapped contact properties exist, the version is served, and the envelope overrides fit
the tier. Read-only unless ``--create-missing``: scopes are probed with empty batches, which
pass HubSpot's token and scope checks and write nothing.
"""
