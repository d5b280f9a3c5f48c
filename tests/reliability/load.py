"""A producer that behaves like a Segment SDK: batches with messageIds, retried until answered.

Each sender thread posts batches of ``BATCH`` events; every fifth batch carries one event the
forwarder must refuse (no identity), and every tenth request is wholly invalid. A 200 makes its
valid events *acknowledged*; an answer that refuses an event makes it *refused*; no answer (the
server was killed) or a 5xx means the same batch, same messageIds, is sent again later.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import SERVER_KEY

BATCH = 20


@dataclass
class Ledger:
    """What the producers were told, shared by every sender thread."""

    acknowledged: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    unanswered: int = 0
    unavailable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _batch(worker: int, n: int) -> tuple[list[dict[str, Any]], str | None]:
    events: list[dict[str, Any]] = [
        {
            "type": "track",
            "userId": f"user-{worker}-{i % 5}",
            "event": "Order Completed",
            "messageId": f"w{worker}-b{n}-e{i}",
            "properties": {"revenue": i},
            "context": {"traits": {"email": f"user-{worker}-{i % 5}@example.com"}},
        }
        for i in range(BATCH)
    ]
    bad = None
    if n % 5 == 4:
        bad = f"w{worker}-b{n}-bad"
        events.append({"type": "track", "event": "Order Completed", "messageId": bad})
    return events, bad


class Producers:
    """``threads`` senders against ``url`` until ``stop``; each finishes its batch first."""

    def __init__(self, url: str, threads: int = 3, pause_s: float = 0.0) -> None:
        self.url = url
        self.ledger = Ledger()
        self._stop = threading.Event()
        self._pause_s = pause_s
        self._threads = [threading.Thread(target=self._run, args=(w,)) for w in range(threads)]

    def start(self) -> Producers:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        assert not any(t.is_alive() for t in self._threads), "a sender did not finish"

    def _run(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, auth=(SERVER_KEY, ""), timeout=10) as http:
            n = 0
            while not self._stop.is_set():
                if n % 10 == 9:
                    self._send_invalid(http, f"w{worker}-b{n}-invalid")
                else:
                    self._send_until_answered(http, *_batch(worker, n))
                n += 1
                if self._pause_s:
                    time.sleep(self._pause_s)

    def _send_invalid(self, http: httpx.Client, message_id: str) -> None:
        body = {"batch": [{"type": "track", "userId": "u", "messageId": message_id}]}
        try:
            response = http.post("/v1/batch", json=body)
        except httpx.TransportError:
            return
        if response.status_code == 400:
            with self.ledger.lock:
                self.ledger.refused.add(message_id)

    def _send_until_answered(
        self, http: httpx.Client, events: list[dict[str, Any]], bad: str | None
    ) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = http.post("/v1/batch", json={"batch": events})
            except httpx.TransportError:
                with self.ledger.lock:
                    self.ledger.unanswered += 1
                time.sleep(0.05)
                continue
            if response.status_code >= 500:
                with self.ledger.lock:
                    self.ledger.unavailable += 1
                time.sleep(0.05)
                continue
            assert response.status_code == 200, response.text
            rejected = {events[r["index"]]["messageId"] for r in response.json()["rejected"]}
            assert rejected == ({bad} if bad else set()), response.text
            with self.ledger.lock:
                self.ledger.acknowledged |= {e["messageId"] for e in events} - rejected
                self.ledger.refused |= rejected
            return
        raise AssertionError("a batch got no answer for 60 s")
