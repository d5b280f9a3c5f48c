"""Delivery in a child process (``serve --delivery-workers 1``): a real ``forwarder serve``
over loopback, delivering to a sandbox process, on one SQLite file shared by both processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from tests.reliability.processes import item_states, uuid_of, wait_until
from tests.support import SERVER_KEY, ServerProcess, free_port, sandbox_process, serve_config, track


def children_of(pid: int) -> list[int]:
    """Child process ids, from /proc (Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def post(url: str, first: int, n: int) -> list[str]:
    """``n`` identified (so delivered, not held) events in batches of 50; their messageIds."""
    ids = [f"m-{i}" for i in range(first, first + n)]
    with httpx.Client(base_url=url, auth=(SERVER_KEY, ""), timeout=10) as http:
        for start in range(0, n, 50):
            batch = [
                track(messageId=m, context={"traits": {"email": f"{m}@example.com"}})
                for m in ids[start : start + 50]
            ]
            response = http.post("/v1/batch", json={"batch": batch})
            assert response.status_code == 200, response.text
    return ids


def config(tmp_path: Path, port: int, sandbox_url: str, server: str = "") -> str:
    return serve_config(
        tmp_path / "forwarder.db",
        port,
        sandbox_url,
        server_extra=f"delivery_processes = 1\nshutdown_deadline_s = 5.0\n{server}",
    )


def test_events_posted_to_serve_arrive_once_each_delivered_by_a_child_process(
    tmp_path: Path,
) -> None:
    port = free_port()
    with sandbox_process() as sandbox:
        server = ServerProcess(tmp_path, config(tmp_path, port, sandbox.url)).start(port)
        try:
            assert server.proc is not None
            wait_until(lambda: len(children_of(server.proc.pid)) == 1, timeout_s=10)
            ids = post(server.url, 0, 300)
            wanted = {uuid_of(m) for m in ids}
            wait_until(lambda: set(sandbox.received_uuids()) >= wanted, timeout_s=30)
        finally:
            server.stop()
        received = sandbox.received_uuids()
    assert {u: n for u, n in received.items() if n != 1} == {}
    assert set(received) == wanted
    assert "delivery_process_ready" in server.log()
    assert "Traceback" not in server.log()


def test_sigterm_stops_server_and_delivery_process_and_a_restart_delivers_the_rest_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    db = tmp_path / "forwarder.db"
    with sandbox_process() as sandbox:
        sandbox.script({"route": "events.send_batch", "latencyMs": 400})  # sends in flight
        server = ServerProcess(tmp_path, config(tmp_path, port, sandbox.url)).start(port)
        assert server.proc is not None
        wait_until(lambda: "delivery_process_ready" in server.log(), timeout_s=20)
        child = children_of(server.proc.pid)[0]
        ids = post(server.url, 0, 400)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=30)
        stopped_in_s = time.monotonic() - started
        first_log = server.log()
        assert code in (0, -signal.SIGTERM)  # uvicorn ends by raising the signal it handled
        assert f'"codes":{{"{child}":0}}' in first_log  # the child stopped itself, cleanly
        assert not alive(child)
        assert stopped_in_s < 5.0 + 5.0 + 5.0  # deadline + the kill margin + uvicorn's own
        states = item_states(db)
        assert set(states) <= {"delivered", "pending", "leased"}
        assert sum(states.values()) == len(ids)  # every event's item is still there
        sandbox.clear_faults()
        server = ServerProcess(tmp_path, config(tmp_path, port, sandbox.url)).start(port)
        try:
            wanted = {uuid_of(m) for m in ids}
            wait_until(lambda: set(sandbox.received_uuids()) >= wanted, timeout_s=30)
        finally:
            server.stop()
        received = sandbox.received_uuids()
    assert {u: n for u, n in received.items() if n != 1} == {}
    assert set(received) == wanted
    assert "delivery_processes_stopped" in first_log
    assert "Traceback" not in first_log + server.log()


def test_a_delivery_process_that_dies_is_restarted_and_delivery_goes_on(tmp_path: Path) -> None:
    port = free_port()
    with sandbox_process() as sandbox:
        server = ServerProcess(tmp_path, config(tmp_path, port, sandbox.url)).start(port)
        try:
            assert server.proc is not None
            wait_until(lambda: len(children_of(server.proc.pid)) == 1, timeout_s=10)
            first = children_of(server.proc.pid)[0]
            os.kill(first, signal.SIGKILL)

            def replaced() -> bool:
                now = children_of(server.proc.pid)  # type: ignore[union-attr]
                return len(now) == 1 and now[0] != first

            wait_until(replaced, timeout_s=15)
            ids = post(server.url, 0, 100)
            wanted = {uuid_of(m) for m in ids}
            wait_until(lambda: set(sandbox.received_uuids()) >= wanted, timeout_s=30)
        finally:
            server.stop()
        received = sandbox.received_uuids()
    assert set(received) == wanted
    assert "delivery_process_exited" in server.log()


def test_the_backlog_cap_counts_what_the_delivery_process_finished(tmp_path: Path) -> None:
    """The server refuses at the cap while HubSpot is down, and accepts again once the child
    delivered the backlog: its count of open items follows the other process's work."""
    port = free_port()
    cap = "\n[dedup]\nwindow_s = 86400.0\n"
    with sandbox_process() as sandbox:
        sandbox.script({"route": "events.send_batch", "status": 503})
        text = config(tmp_path, port, sandbox.url).replace(
            "[storage]\n", "[storage]\nmax_backlog = 50\n"
        )
        server = ServerProcess(tmp_path, text + cap).start(port)
        try:
            ids = post(server.url, 0, 50)  # one conversions item each: the cap
            with httpx.Client(base_url=server.url, auth=(SERVER_KEY, ""), timeout=10) as http:
                refused = http.post("/v1/track", json=track(messageId="over-the-cap"))
                assert refused.status_code == 503
                sandbox.clear_faults()
                wanted = {uuid_of(m) for m in ids}
                wait_until(lambda: set(sandbox.received_uuids()) >= wanted, timeout_s=60)

                def accepted_again() -> bool:
                    sent = http.post("/v1/track", json=track(messageId="after-the-drain"))
                    return sent.status_code == 200

                wait_until(accepted_again, timeout_s=30, every_s=0.5)
        finally:
            server.stop()


def test_a_delivery_process_commits_without_fsync_under_the_shared_write_lock() -> None:
    """Its commits become durable with the serving process's next fsync of the WAL; the rest
    of the store settings are the server's."""
    from forwarder.config import StorageSettings
    from forwarder.deliver import _unsynced

    settings = StorageSettings(url="sqlite:///x.db", synchronous="full", commit_interval_ms=2.0)
    unsynced = _unsynced(settings)
    assert unsynced.synchronous == "normal"
    assert unsynced.url == settings.url
    assert unsynced.commit_interval_ms == 2.0
