"""Configuration: TOML, env overrides, ${VAR} interpolation and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from forwarder.config import Secret, load_settings
from forwarder.errors import ConfigError

BASE = """
[server]
port = 9000
admin_token = "${ADMIN}"

[[sources]]
name = "backend"
write_key = "${KEY}"
portal = "main"

[portals.main]
portal_id = 42
access_token = "${TOKEN}"
base_url = "https://api.hubapi.com"
"""
ENV = {"ADMIN": "admin-secret", "KEY": "write-key-123", "TOKEN": "pat-na1-xyz"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "f.toml"
    path.write_text(text)
    return path


def test_zero_config_listens_on_loopback_with_sqlite_and_the_sandbox() -> None:
    settings = load_settings(None, env={})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.storage.url == "sqlite:///./forwarder.db"
    assert settings.sandbox_mode
    assert [p.base_url for p in settings.portals.values()] == ["sandbox"]
    assert settings.sources[0].write_key.reveal().startswith("dev_")


def test_file_values_and_interpolated_secrets_are_loaded(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, BASE), env=ENV)
    assert settings.server.port == 9000
    assert settings.sources[0].write_key == Secret("write-key-123")
    assert settings.portals["main"].access_token == Secret("pat-na1-xyz")
    assert not settings.sandbox_mode


def test_env_vars_override_file_values(tmp_path: Path) -> None:
    env = {
        **ENV,
        "FORWARDER_SERVER_PORT": "9100",
        "FORWARDER_STORAGE_URL": "sqlite:////tmp/x.db",
        "FORWARDER_DEDUP_WINDOW_S": "60",
        "FORWARDER_PORTALS_MAIN_PORTAL_ID": "77",
    }
    settings = load_settings(write(tmp_path, BASE), env=env)
    assert settings.server.port == 9100
    assert settings.storage.url == "sqlite:////tmp/x.db"
    assert settings.dedup.window_s == 60
    assert settings.portals["main"].portal_id == 77


def test_config_path_comes_from_forwarder_config_env(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    settings = load_settings(None, env={**ENV, "FORWARDER_CONFIG": str(path)})
    assert settings.server.port == 9000


@pytest.mark.parametrize(
    ("text", "env", "key", "problem"),
    [
        (BASE, {"KEY": "write-key-123", "TOKEN": "t"}, "server.admin_token", "ADMIN is not set"),
        (BASE.replace("port = 9000", 'port = "x"'), ENV, "server.port", "Expected `int`"),
        (BASE + "\n[bogus]\n", ENV, "(root)", "unknown field `bogus`"),
        (
            BASE.replace('portal = "main"', 'portal = "nope"'),
            ENV,
            "sources[0].portal",
            "no [portals.nope]",
        ),
        (BASE.replace('"${KEY}"', '"short"'), ENV, "sources[0].write_key", "at least 8"),
        (
            BASE.replace('base_url = "https://api.hubapi.com"', 'base_url = "ftp://x"'),
            ENV,
            "portals.main.base_url",
            "http(s) URL",
        ),
        (
            BASE.replace('access_token = "${TOKEN}"', ""),
            ENV,
            "portals.main.access_token",
            "needs a token",
        ),
        (
            BASE.replace('portal = "main"', 'portal = "main"\nkind = "browser"'),
            ENV,
            "sources[0].allowed_origins",
            "needs allowed origins",
        ),
        ("[server\n", ENV, "--config", "not valid TOML"),
        (
            BASE + 'api_version = "2025-09"\n',
            ENV,
            "portals.main.api_version",
            'Invalid enum value \'2025-09\' (one of "2026-03", "2026-09", "v3")',
        ),
        (
            BASE + 'service_key = "svc-123"\n',
            ENV,
            "portals.main.service_key",
            "not both",
        ),
        (
            BASE + "\n[portals.main.attribution]\nlast_touch_window_s = 0\n",
            ENV,
            "portals.main.attribution.last_touch_window_s",
            "must be > 0",
        ),
        (
            BASE + '\n[portals.main.attribution]\ntouches = ["utm", "email"]\n',
            ENV,
            "portals.main.attribution.touches[1]",
            "Invalid enum value 'email'",
        ),
    ],
)
def test_invalid_config_names_the_key_and_the_problem(
    tmp_path: Path, text: str, env: dict[str, str], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env=env)
    assert info.value.key == key
    assert problem in info.value.problem


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})


def test_secret_never_shows_its_value() -> None:
    secret = Secret("pat-na1-very-secret")
    assert "very-secret" not in repr(secret)
    assert "very-secret" not in str(secret)
    assert "very-secret" not in f"{secret}"
    assert secret.reveal() == "pat-na1-very-secret"


def test_config_error_does_not_echo_secret_values(tmp_path: Path) -> None:
    text = BASE.replace("port = 9000", 'port = "${KEY}"')
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env=ENV)
    assert "write-key-123" not in str(info.value)


def test_service_key_alone_is_a_credential_and_versions_default_to_2026_03(
    tmp_path: Path,
) -> None:
    text = BASE.replace('access_token = "${TOKEN}"', 'service_key = "${TOKEN}"')
    settings = load_settings(write(tmp_path, text), env=ENV)
    portal = settings.portals["main"]
    assert portal.service_key == Secret("pat-na1-xyz")
    assert portal.api_version == "2026-03"
    assert "pat-na1-xyz" not in repr(portal)


def test_api_version_is_read_from_the_portal(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, BASE + 'api_version = "v3"\n'), env=ENV)
    assert settings.portals["main"].api_version == "v3"


def test_one_delivery_process_on_sqlite_is_accepted(tmp_path: Path) -> None:
    text = BASE.replace("port = 9000", "port = 9000\ndelivery_processes = 1")
    assert load_settings(write(tmp_path, text), env=ENV).server.delivery_processes == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BASE.replace("port = 9000", "port = 9000\ndelivery_processes = -1"), "must be >= 0"),
        (BASE.replace("port = 9000", "port = 9000\ndelivery_processes = 2"), "at most 1"),
        (
            BASE.replace("port = 9000", "port = 9000\ndelivery_processes = 1").replace(
                '"https://api.hubapi.com"', '"sandbox"'
            ),
            "deliver to the simulator inside the server",
        ),
    ],
)
def test_delivery_processes_the_store_or_portals_cannot_share_are_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env=ENV)
    assert info.value.key == "server.delivery_processes"
    assert problem in info.value.problem


def test_several_delivery_processes_are_accepted_on_redis(tmp_path: Path) -> None:
    text = BASE.replace("port = 9000", "port = 9000\ndelivery_processes = 3")
    text += '\n[storage]\nurl = "redis://127.0.0.1:6379/0"\n'
    assert load_settings(write(tmp_path, text), env=ENV).server.delivery_processes == 3
