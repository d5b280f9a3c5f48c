"""``examples/webhooks``: signed deliveries, built like HubSpot's, against a real server."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.examples.conftest import EXAMPLES
from tests.support import ServerProcess, config_toml, free_port

SCRIPT = EXAMPLES / "webhooks" / "send_test_webhook.py"
SECRET = "app-client-secret-0123456789"
REGISTERED = "https://events.example.com/webhooks/hubspot"  # what HubSpot signs, behind a proxy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A private-token portal that verifies webhooks with the app's secret, behind a proxy."""
    tmp: Path = tmp_path_factory.mktemp("webhooks")
    port = free_port()
    portal = f'webhook_secret = "{SECRET}"\nwebhook_url = "{REGISTERED}"'
    proc = ServerProcess(tmp, config_toml(tmp / "forwarder.db", port, portal_extra=portal))
    proc.start(port)
    try:
        yield proc
    finally:
        proc.stop()


def load_script() -> Callable[[list[str]], int]:
    """The example's ``main``, run in-process (a subprocess per call costs seconds of imports)."""
    spec = importlib.util.spec_from_file_location("send_test_webhook", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main: Callable[[list[str]], int] = module.main
    return main


MAIN = load_script()


def send(
    server: ServerProcess, *args: str, secret: str = SECRET, registered: str = REGISTERED
) -> str:
    argv = [
        "--secret", secret, "--portal-id", "123456",
        "--to", f"{server.url}/webhooks/hubspot", "--registered-url", registered, *args,
    ]  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = MAIN(argv)
    answer = out.getvalue().strip()
    assert (code == 0) == answer.startswith("204")
    return answer


def test_signed_merge_is_verified_and_applied(server: ServerProcess) -> None:
    assert send(server, "merge", "--primary", "101", "--merged", "202", "203") == "204"


def test_signed_deletion_and_privacy_deletion_are_applied(server: ServerProcess) -> None:
    assert send(server, "deletion", "--object-id", "101") == "204"
    assert send(server, "privacy-deletion", "--object-id", "101") == "204"


def test_wrong_secret_is_refused(server: ServerProcess) -> None:
    answer = send(server, "merge", "--primary", "1", "--merged", "2", secret="not-the-secret")
    assert answer.startswith("401")
    assert "bad v3 signature" in answer


def test_signature_over_another_url_is_refused(server: ServerProcess) -> None:
    """What an unset or wrong ``webhook_url`` behind a proxy looks like."""
    answer = send(
        server, "deletion", "--object-id", "7", registered=f"{server.url}/webhooks/hubspot"
    )
    assert answer.startswith("401")
    assert "bad v3 signature" in answer
