"""``examples/docker-compose.yml`` stays runnable: two replicas on one Redis with AOF, a sandbox,
and a replica config that loads (docker cannot run here; the files are checked instead)."""

from __future__ import annotations

from pathlib import Path

import yaml

from forwarder.config import load_settings

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_compose_runs_two_replicas_on_redis_with_aof_and_the_sandbox() -> None:
    compose = yaml.safe_load((EXAMPLES / "docker-compose.yml").read_text())
    services = compose["services"]
    replicas = [s for s in services.values() if s.get("command", [None])[0] == "serve"]
    assert len(replicas) == 2
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert redis_command[redis_command.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis_command[redis_command.index("--hash-max-listpack-value") + 1] == "4096"
    assert services["sandbox"]["command"][0] == "sandbox"


def test_replica_config_loads_and_points_at_redis() -> None:
    env = {"FORWARDER_WRITE_KEY": "srv_example_0123456789", "HUBSPOT_ACCESS_TOKEN": "pat-x"}
    settings = load_settings(str(EXAMPLES / "replicas" / "forwarder.toml"), env=env)
    assert settings.storage.url.startswith("redis://redis:6379/")
    assert settings.portals["main"].base_url == "http://sandbox:8090"
