"""The Redis scripts as sent: each carries the prelude definitions and key functions it uses
(and what those use), not the rest, which a script would define again on every call."""

from __future__ import annotations

import re
from importlib.resources import files

import redis

from forwarder.storage.redis import scripts
from tests.storage.redis_server import REDIS_URL

LUA = files("forwarder.storage.redis").joinpath("lua")
HELPERS = {"prelude", "learning", "window", "packing"}
NAMES = sorted(
    p.name.removesuffix(".lua").upper()
    for p in LUA.iterdir()
    if p.name.endswith(".lua") and p.name.removesuffix(".lua") not in HELPERS
)


def _defined(source: str) -> set[str]:
    return set(re.findall(r"^local function (\w+)", source, re.M)) | set(
        re.findall(r"^K\.(\w+) = function", source, re.M)
    )


def test_a_script_defines_only_the_helpers_and_keys_it_uses() -> None:
    ready_at = _defined(scripts.source("READY_AT"))
    assert ready_at == {"f", "queue", "leases", "last_read"}


def test_every_helper_and_key_a_script_calls_is_defined_in_it() -> None:
    missing = {}
    for name in NAMES:
        source = scripts.source(name)
        defined = _defined(source)
        called = {n for n in re.findall(r"\bK\.(\w+)\(", source)}
        called |= {
            n
            for n in _defined(scripts._read("prelude"))
            if re.search(rf"(?<![\w.'])\b{n}\(", source)
        }
        if called - defined:
            missing[name] = called - defined
    assert missing == {}


def test_every_script_compiles_in_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for name in NAMES:
            client.script_load(scripts.source(name))
    finally:
        client.close()
