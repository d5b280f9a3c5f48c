"""What checking a request body against HubSpot's OpenAPI specs costs the sandbox, per request.

Times ``SpecBook.check`` (JSON decode + schema validation, what the sandbox adds to every
simulated call) on the bodies the forwarder sends most. Usage: ``python benchmarks/spec_check.py``.
"""

from __future__ import annotations

import statistics
import time

import msgspec

from forwarder.sandbox import openapi

ROUNDS, CALLS = 7, 200


def _events(n: int) -> bytes:
    inputs = [
        {
            "eventName": "pe12345678_purchase",
            "email": f"u{i}@example.com",
            "uuid": f"0b7c6a8e-0000-4000-8000-{i:012d}",
            "occurredAt": "2026-03-01T10:00:00.000Z",
            "properties": {"hs_page_url": "https://shop.example/", "amount": "49.90"},
        }
        for i in range(n)
    ]
    return msgspec.json.encode({"inputs": inputs})


def _upserts(n: int) -> bytes:
    inputs = [
        {"id": f"u{i}@example.com", "idProperty": "email", "properties": {"firstname": "A"}}
        for i in range(n)
    ]
    return msgspec.json.encode({"inputs": inputs})


CASES = {
    "POST /events/v3/send/batch, 500 events": ("/events/v3/send/batch", _events(500)),
    "POST /events/v3/send/batch, 1 event": ("/events/v3/send/batch", _events(1)),
    "POST contacts/batch/upsert, 100 inputs": (
        "/crm/v3/objects/contacts/batch/upsert",
        _upserts(100),
    ),
}


def main() -> None:
    started = time.perf_counter()
    book = openapi.load()
    print(f"load and compile every shipped spec: {(time.perf_counter() - started) * 1000:.0f} ms")
    for name, (path, body) in CASES.items():
        rounds = []
        for _ in range(ROUNDS):
            t = time.perf_counter()
            for _ in range(CALLS):
                if book.check("POST", path, body) is not None:
                    raise SystemExit(f"{name}: the spec refused the benchmark body")
            rounds.append((time.perf_counter() - t) / CALLS * 1e6)
        print(f"{name} ({len(body)} bytes): median {statistics.median(rounds):.0f} µs per check")


if __name__ == "__main__":
    main()
