"""The buffered log writer: info lines are batched, nothing is lost, warnings go out at once."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import structlog

from forwarder import telemetry
from forwarder.telemetry import (
    InfoLine,
    LineWriter,
    Redactor,
    configure_logging,
    flush_logs,
    get_logger,
)


def written(file: io.BytesIO) -> list[bytes]:
    return file.getvalue().splitlines()


def test_info_lines_are_written_within_the_flush_interval_without_more_logging() -> None:
    file = io.BytesIO()
    lines = LineWriter(file, flush_s=0.05)
    lines.info(b"one")
    lines.info(b"two")
    assert written(file) == []  # gathered, not one write each
    deadline = time.monotonic() + 5
    while written(file) != [b"one", b"two"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written(file) == [b"one", b"two"]


def test_a_warning_is_written_at_once_after_the_lines_before_it() -> None:
    file = io.BytesIO()
    lines = LineWriter(file, flush_s=60)
    lines.info(b"first")
    lines.warning(b"second")
    assert written(file) == [b"first", b"second"]


def test_lines_logged_from_many_threads_are_all_written_once() -> None:
    file = io.BytesIO()
    lines = LineWriter(file, flush_s=0.001, max_lines=7)

    def log(n: int) -> None:
        for i in range(500):
            lines.info(b"%d-%d" % (n, i))

    threads = [threading.Thread(target=log, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines.flush()
    assert sorted(written(file)) == sorted(b"%d-%d" % (n, i) for n in range(4) for i in range(500))


@pytest.fixture
def json_logs() -> Iterator[io.BytesIO]:
    """Logging configured as in production (JSON lines to a file), restored afterwards."""
    before = structlog.get_config()
    file = io.BytesIO()
    configure_logging(Redactor(["sk-secret-123"]), fmt="json", stream=io.TextIOWrapper(file))
    yield file
    structlog.configure(**before)
    telemetry._FAST.clear()
    telemetry._WRITERS.clear()


def test_the_fast_success_line_is_the_line_structlog_renders(json_logs: io.BytesIO) -> None:
    """Numbers, None, a secret under a sensitive key and in a value, twice (the second line
    from the fragments kept by the first), and after a secret was learned at run time."""
    fields = {"path": "/v1/sk-secret-123", "source": "web", "status": 200, "latency_ms": 0.51}
    more = {"accepted": 3, "ratio": 1e16, "ok": True, "none": None, "token": 7, "s": 'x"y'}
    line = InfoLine("ingest", "ingest_request_handled")
    for _ in range(2):
        get_logger("ingest").info("ingest_request_handled", **fields, **more)
        line(**fields, **more)
    telemetry._FAST["redactor"].add("web")
    get_logger("ingest").info("ingest_request_handled", **fields, **more)
    line(**fields, **more)
    flush_logs()
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    for slow, fast in zip(lines[::2], lines[1::2], strict=True):
        assert list(fast) == list(slow)
        assert {**fast, "timestamp": None} == {**slow, "timestamp": None}
    assert lines[0]["token"] == "***"
    assert lines[0]["path"] == "/v1/***"
    assert lines[-1]["source"] == "***"


def test_the_fast_request_line_is_the_line_structlog_renders(json_logs: io.BytesIO) -> None:
    fields = {"path": "/v1/track", "source": "web", "status": 401, "latency_ms": 0.5}
    reason = "bad key sk-secret-123"
    get_logger("ingest").info("ingest_request_handled", **fields, reason=reason, token="t")
    InfoLine("ingest", "ingest_request_handled")(**fields, reason=reason, token="t")
    flush_logs()
    slow, fast = (json.loads(line) for line in json_logs.getvalue().splitlines())
    assert list(fast) == list(slow)  # same keys in the same order
    assert {**fast, "timestamp": None} == {**slow, "timestamp": None}
    assert fast["reason"] == "bad key ***"
    assert fast["token"] == "***"
    assert datetime.fromisoformat(fast["timestamp"]).tzinfo is not None
    assert b"sk-secret-123" not in json_logs.getvalue()
