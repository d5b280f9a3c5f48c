"""The buffered log writer: info lines are batched, nothing is lost, warnings go out at once."""

from __future__ import annotations

import io
import threading
import time

from forwarder.telemetry import LineWriter


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
