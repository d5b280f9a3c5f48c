"""A webhook receiver on a loopback port (a real HTTP server in a thread), for alert tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """What the server received; ``fail_next`` answers that many requests with
    ``fail_status`` first."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.attempts = 0
        self.fail_next = 0
        self.fail_status = 503
        self.url = ""
        self._lock = threading.Lock()

    def alerts(self, status: str | None = None, rule: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [b["alert"] for b in self.bodies]
        return [
            a
            for a in found
            if (status is None or a["status"] == status) and (rule is None or a["rule"] == rule)
        ]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the stdlib's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with received._lock:
                received.attempts += 1
                failing = received.fail_next > 0
                if failing:
                    received.fail_next -= 1
                else:
                    received.raw.append(body)
                    received.bodies.append(json.loads(body))
            self.send_response(received.fail_status if failing else 200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000/secretpath"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
