"""A backend sending conversions with Segment's own Python SDK, pointed at the forwarder.

    pip install segment-analytics-python
    FORWARDER_URL=http://127.0.0.1:8080 FORWARDER_WRITE_KEY=dev_... python segment_backend.py

The only change from a Segment setup is ``host``: the SDK posts batches to ``{host}/v1/batch``
(gzip on), and the forwarder answers like Segment does.
"""

from __future__ import annotations

import os
import sys

import segment.analytics as analytics


def main() -> int:
    analytics.write_key = os.environ["FORWARDER_WRITE_KEY"]
    analytics.host = os.environ.get("FORWARDER_URL", "http://127.0.0.1:8080")
    analytics.gzip = True
    failures: list[Exception] = []
    analytics.on_error = lambda error, batch: failures.append(error)
    user = os.environ.get("EXAMPLE_USER_ID", "user-1001")

    # identify tells the forwarder (and, with [portals.NAME.contacts], HubSpot) who user-1001 is:
    # a conversion is attached to a HubSpot contact by email, utk or contact id.
    analytics.identify(user, {"email": f"{user}@example.com", "firstName": "Grace"})
    analytics.track(user, "Signed Up", {"plan": "trial"})
    analytics.track(user, "Order Completed", {"revenue": 129.0, "currency": "EUR"})
    analytics.flush()  # send now and wait: a short-lived script must not exit with a queue
    analytics.shutdown()
    if failures:
        print(f"not delivered to the forwarder: {failures}", file=sys.stderr)
        return 1
    print(f"sent identify + 2 tracks for {user}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
