"""The Lua scripts of the Redis backend: every state change is one script, so it is atomic.

The scripts live in ``lua/`` beside this module, one file per script, shipped as package data.
``ARGV[1]`` is always the key prefix. Scripts touch keys they build themselves (``K.*``, from
``redis.keys``), which a single Redis or Valkey allows; Redis Cluster is not supported.
Floats travel as Python ``repr`` strings and are stored as given, so no precision is lost.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from forwarder.storage.redis.keys import GROUP, SEP, lua_key_functions

_HELPERS = {
    "WINDOW_ACQUIRE": ("window",),
    "WINDOW_OBSERVE": ("window",),
    "WINDOW_COUNTS": ("window",),
    "APPEND": ("learning",),
    "LEARN": ("learning",),
    "LINK": ("learning",),
}
"""Shared helpers a script includes after the prelude: ``window.lua``, the rolling-window log;
``learning.lua``, what a request teaches the identity graph."""


def _read(stem: str) -> str:
    return files(__package__).joinpath("lua").joinpath(f"{stem}.lua").read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """A script's full source by its name (``"APPEND"`` is ``lua/append.lua``): the generated
    constants and key functions, the shared prelude, its helpers (``_HELPERS``), then its body."""
    head = f"local P = ARGV[1]\nlocal GROUP = '{GROUP}'\nlocal SEP = '\\{ord(SEP)}'\n"
    parts = [head + lua_key_functions(), _read("prelude")]
    parts += [_read(helper) for helper in _HELPERS.get(name, ())]
    return "\n".join([*parts, _read(name.lower())])
