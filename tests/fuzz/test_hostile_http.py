"""Hostile requests against a real ``forwarder serve``: each refused cheaply, with a clear status,
and the server healthy afterwards.

"Cheaply" is measured per request on loopback (the client's own encoding excluded): the cheapest
of three tries is well under 100 ms, where the limits are applied before any storage work.
"""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import SERVER_KEY, ServerProcess, config_toml, free_port, track

CHEAP_S = 0.1
ATTEMPTS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("hostile")
    port = free_port()
    config = config_toml(tmp / "forwarder.db", port).replace(
        'log_format = "json"', 'log_format = "json"\nlog_requests = false'
    )
    proc = ServerProcess(tmp, config).start(port)
    yield proc
    proc.stop()


def _bomb() -> bytes:
    """200 MiB of zeros, about 200 kB gzipped: 400 times the decompressed-size cap."""
    compressor = gzip.GzipFile  # built chunk by chunk: never a 1 GiB string in the test
    import io

    out = io.BytesIO()
    with compressor(fileobj=out, mode="wb", compresslevel=9) as gz:
        chunk = b"\0" * (1 << 20)
        for _ in range(200):
            gz.write(chunk)
    return out.getvalue()


def _events(n: int) -> bytes:
    return b'{"batch":[' + b",".join([b"{}"] * n) + b"]}"


HOSTILE: list[tuple[str, str, bytes, dict[str, str], int]] = [
    (
        "deeply nested",
        "/v1/track",
        b'{"properties":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        {},
        400,
    ),
    (
        "nested within the cap",
        "/v1/track",
        b'{"userId":"u","event":"E","properties":{"x":' + b"[" * 20_000 + b"]" * 20_000 + b"}}",
        {},
        400,
    ),
    (
        "huge number",
        "/v1/track",
        b'{"userId":"u","event":"E","properties":{"x":1' + b"0" * 100_000 + b"}}",
        {},
        400,
    ),
    (
        "huge exponent",
        "/v1/track",
        b'{"userId":"u","event":"E","properties":{"x":1e999999999}}',
        {},
        400,
    ),
    ("huge string", "/v1/track", b'{"userId":"u","event":"' + b"e" * 400_000 + b'"}', {}, 400),
    ("invalid UTF-8", "/v1/batch", b'{"batch":[{"userId":"\xc3\x28","event":"E"}]}', {}, 400),
    ("lone surrogate", "/v1/track", b'{"userId":"\\ud800","event":"E"}', {}, 400),
    ("raw NUL byte", "/v1/track", b'{"userId":"u\x00","event":"E"}', {}, 400),
    ("gzip bomb", "/v1/batch", b"", {"Content-Encoding": "gzip"}, 413),
    ("100,000-event batch", "/v1/batch", _events(100_000), {}, 413),
    ("body over the transport cap", "/v1/batch", b" " * 3_000_000, {}, 413),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
def test_hostile_body_is_refused_cheaply_with_a_clear_status(
    server: ServerProcess, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    if headers.get("Content-Encoding") == "gzip":
        body = _bomb()
    with httpx.Client(base_url=server.url, auth=(SERVER_KEY, ""), timeout=10) as http:
        http.get("/healthz")  # the connection is open before the clock starts
        tooks = []
        for _ in range(ATTEMPTS):
            request = http.build_request(
                "POST", path, content=body, headers={"Content-Type": "application/json", **headers}
            )
            started = time.perf_counter()
            response = http.send(request)
            tooks.append(time.perf_counter() - started)
            assert response.status_code == status, response.text[:300]
            answer = response.json()
            assert answer["success"] is False
            assert answer["error"] or answer["rejected"]
        # The cheapest of a few: a refusal that costs work costs it every time, while a
        # scheduling hiccup on a loaded 2-core machine (one was 153 ms in CI) does not repeat.
        assert min(tooks) < CHEAP_S, [f"{took * 1000:.0f} ms" for took in tooks]
        assert http.post("/v1/track", json=track()).status_code == 200
        assert http.get("/readyz").status_code == 200


def test_nul_escape_in_a_string_is_kept_as_data(server: ServerProcess) -> None:
    """``\\u0000`` is valid JSON: accepted and stored, not a crash or a truncation."""
    body = {"userId": "u", "event": "E", "properties": {"note": "a\u0000b"}}
    response = httpx.post(f"{server.url}/v1/track", json=body, auth=(SERVER_KEY, ""), timeout=5)
    assert response.status_code == 200, response.text


def _raw(server: ServerProcess, request: bytes) -> tuple[bytes, float]:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        started = time.perf_counter()
        sock.sendall(request)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
                if b"\r\n\r\n" in reply:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return reply, time.perf_counter() - started


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("one huge header", [("X-Big", "a" * 200_000)]),
        ("many headers", [(f"X-H{i}", "v" * 100) for i in range(5_000)]),
    ],
)
def test_header_flood_is_refused_and_the_server_stays_healthy(
    server: ServerProcess, name: str, headers: list[tuple[str, str]]
) -> None:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers)
    request = (
        f"POST /v1/track HTTP/1.1\r\nHost: x\r\n{lines}Content-Length: 2\r\n\r\n{{}}"
    ).encode()
    reply, took = _raw(server, request)
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1") else None
    # uvicorn's parser refuses the flood (400) or closes the connection: never a 2xx or 5xx.
    assert status is None or status in (400, 401, 413, 431), reply[:200]
    assert took < 1.0
    assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
