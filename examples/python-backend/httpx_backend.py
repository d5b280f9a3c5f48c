"""A backend sending conversions with plain HTTP (``httpx``): no SDK needed.

    pip install httpx
    FORWARDER_URL=http://127.0.0.1:8080 FORWARDER_WRITE_KEY=dev_... python httpx_backend.py

One ``POST /v1/batch`` with HTTP Basic auth (write key as user name, empty password). A 200
means every accepted event is on disk; the body lists rejected events by index with a reason.
On 503 or a network error, retry the same request later: the ``messageId``s make a retry safe
(the forwarder drops repeats within ``dedup.window_s``).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx


def event(kind: str, user: str, **fields: object) -> dict[str, object]:
    return {
        "type": kind,
        "userId": user,
        "messageId": str(uuid.uuid4()),  # stable across retries of this request
        "timestamp": datetime.now(UTC).isoformat(),
        **fields,
    }


def send(
    client: httpx.Client, batch: list[dict[str, object]], attempts: int = 5
) -> dict[str, object]:
    for attempt in range(attempts):
        try:
            response = client.post("/v1/batch", json={"batch": batch})
        except httpx.TransportError:
            time.sleep(2**attempt)
            continue
        if response.status_code == 503:  # storage busy or shutting down: nothing was stored
            time.sleep(float(response.headers.get("Retry-After", 2**attempt)))
            continue
        response.raise_for_status()  # 4xx: the request itself is wrong; retrying will not help
        result: dict[str, object] = response.json()
        return result
    raise RuntimeError("forwarder unavailable")


def main() -> int:
    url = os.environ.get("FORWARDER_URL", "http://127.0.0.1:8080")
    key = os.environ["FORWARDER_WRITE_KEY"]
    user = os.environ.get("EXAMPLE_USER_ID", "user-2002")
    batch = [
        event("identify", user, traits={"email": f"{user}@example.com", "lastName": "Hopper"}),
        event("track", user, event="Subscription Renewed", properties={"revenue": 480}),
    ]
    with httpx.Client(base_url=url, auth=(key, ""), timeout=10) as client:
        result = send(client, batch)
    print(result)
    return 0 if result["accepted"] == len(batch) else 1


if __name__ == "__main__":
    sys.exit(main())
