"""``forwarder stats|journey|dlq|tail`` against a real ``forwarder serve`` on loopback."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.debugger.conftest import ADMIN_TOKEN
from tests.delivery.harness import AUTH
from tests.support import ServerProcess, config_toml, free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("cli")
    port = free_port()
    env = {"FORWARDER_SERVER_ADMIN_TOKEN": ADMIN_TOKEN}
    proc = ServerProcess(tmp, config_toml(tmp / "forwarder.db", port), env=env).start(port)
    yield proc
    proc.stop()


def cli(
    server: ServerProcess, *args: str, token: str = ADMIN_TOKEN
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "forwarder", *args, "--config", str(server.config_path)]
    return subprocess.run(
        [*command, "--token", token], capture_output=True, text=True, timeout=30, check=False
    )


def _send(server: ServerProcess, **event: object) -> None:
    response = httpx.post(f"{server.url}/v1/track", json=event, headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text


def _wait_delivered(server: ServerProcess, user: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        journey = httpx.get(
            f"{server.url}/admin/api/journey",
            params={"userId": user},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=5,
        ).json()
        if any(step["attributed"] for step in journey["steps"]):
            return
        time.sleep(0.2)
    raise AssertionError("not delivered")


def test_stats_and_journey_talk_to_the_running_server(served: ServerProcess) -> None:
    _send(served, userId="cli-1", event="Order Completed", context={"traits": {"email": "c@x.io"}})
    _wait_delivered(served, "cli-1")

    stats = cli(served, "stats")
    journey = cli(served, "journey", "--email", "c@x.io")

    assert stats.returncode == 0, stats.stderr
    assert "conservation: ok" in stats.stdout
    assert "main/conversions:" in stats.stdout
    assert journey.returncode == 0, journey.stderr
    assert "Order Completed ATTRIBUTED" in journey.stdout


def test_dlq_list_and_a_wrong_token(served: ServerProcess) -> None:
    listed = cli(served, "dlq", "list")
    refused = cli(served, "stats", token="not-the-token")

    assert (listed.returncode, listed.stdout.strip()) == (0, "no dead letters")
    assert refused.returncode == 1
    assert "401" in refused.stderr


def test_tail_prints_events_as_they_arrive(served: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "tail.out"
    with out.open("w") as sink:
        tail = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "forwarder",
                "tail",
                "--type",
                "track",
                "--config",
                str(served.config_path),
                "--token",
                ADMIN_TOKEN,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            # The stream starts after the newest event, once the command has connected (its
            # start-up takes longer on a loaded machine): an event a second until one is printed.
            deadline = time.monotonic() + 20
            while "Tail Seen" not in out.read_text() and time.monotonic() < deadline:
                _send(served, userId="tail-1", event="Tail Seen")
                time.sleep(1.0)
        finally:
            tail.terminate()
            tail.wait(timeout=10)

    assert "Tail Seen" in out.read_text()
    assert "backend->main tail-1" in out.read_text()


def test_quality_prints_the_score_and_figures_per_event_type(served: ServerProcess) -> None:
    _send(served, userId="q-1", event="Quality Seen", context={"traits": {"email": "q@x.io"}})
    _wait_delivered(served, "q-1")

    shown = cli(served, "quality", "--window", "hour")

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "attribution quality, last hour (worst first)"
    at = lines.index(next(line for line in lines if line.startswith("Quality Seen: ")))
    assert lines[at].endswith("/10")
    assert "sent 1 (objectId 0% email 100% utk 0%)  resolved 100%" in lines[at + 2]


def test_journey_prints_where_each_touch_came_from(served: ServerProcess) -> None:
    """A backend conversion of a userId whose campaign touch came from a linked browser."""
    context = {"campaign": {"source": "google", "name": "spring"}, "clickIds": {"gclid": "G-7"}}
    response = httpx.post(
        f"{served.url}/v1/page", json={"anonymousId": "cli-phone", "context": context}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    response = httpx.post(
        f"{served.url}/v1/identify",
        json={"anonymousId": "cli-phone", "userId": "cli-2"},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    _send(served, userId="cli-2", event="Order Completed", context={"traits": {"email": "d@x.io"}})
    _wait_delivered(served, "cli-2")

    journey = cli(served, "journey", "--user-id", "cli-2")

    assert journey.returncode == 0, journey.stderr
    lines = journey.stdout.splitlines()
    assert "first touch: google//spring gclid=G-7" in lines
    assert any(
        line.strip().startswith("from page event") and "on device cli-phone" in line
        for line in lines
    )
    assert any(
        line.strip().startswith(
            "first touch: google//spring gclid=G-7 (remembered for a linked anonymousId"
        )
        for line in lines
    )
