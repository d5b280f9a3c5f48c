"""The Lua scripts of the Redis backend: every state change is one script, so it is atomic.

The scripts live in ``lua/`` beside this module, one file per script, shipped as package data.
``ARGV[1]`` is always the key prefix. Scripts touch keys they build themselves (``K.*``, from
``redis.keys``), which a single Redis or Valkey allows; Redis Cluster is not supported.
Floats travel as Python ``repr`` strings and are stored as given, so no precision is lost.
"""

from __future__ import annotations

import re
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
    "LEASE": ("packing",),
}
"""Shared helpers a script includes after the prelude: ``window.lua``, the rolling-window log;
``learning.lua``, what a request teaches the identity graph; ``packing.lua``, msgpack by hand."""


_KEY_USE = re.compile(r"\bK\.(\w+)\b")


def _read(stem: str) -> str:
    return files(__package__).joinpath("lua").joinpath(f"{stem}.lua").read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """A script's full source by its name (``"APPEND"`` is ``lua/append.lua``): the generated
    constants and key functions, the shared prelude, its helpers (``_HELPERS``), then its body."""
    head = f"local P = ARGV[1]\nlocal GROUP = '{GROUP}'\nlocal SEP = '\\{ord(SEP)}'\n"
    helpers = [_read(helper) for helper in _HELPERS.get(name, ())]
    body = "\n".join([*helpers, _read(name.lower())])
    # A script defines everything it includes on every call (~20-40 us of Redis CPU for the
    # whole prelude and every key function): only what it uses, and what that uses.
    body = "\n".join([*_used(_blocks(_read("prelude")), body), body])
    return "\n".join([head + lua_key_functions(set(_KEY_USE.findall(body))), body])


_DEFINES = re.compile(r"^local (?:function )?([\w, ]+?)\s*(?:=|\()")


def _blocks(source: str) -> list[tuple[set[str], str]]:
    """The top-level definitions of a Lua file, each with the comment lines above it, and the
    names it defines."""
    blocks: list[tuple[set[str], str]] = []
    lines: list[str] = []
    for line in source.splitlines():
        # a definition, or the comment above one, begins a block
        begins = _DEFINES.match(line) or line.startswith("--")
        if begins and lines and not lines[-1].startswith("--"):
            blocks.append(_block(lines))
            lines = []
        lines.append(line)
    if lines:
        blocks.append(_block(lines))
    return blocks


def _block(lines: list[str]) -> tuple[set[str], str]:
    found = next((m for line in lines if (m := _DEFINES.match(line))), None)
    names = {n.strip() for n in found.group(1).split(",")} if found else set()
    return names, "\n".join(lines)


def _used(blocks: list[tuple[set[str], str]], body: str) -> list[str]:
    """The blocks whose names ``body`` uses, or blocks it uses do, in their order."""
    wanted, text = [False] * len(blocks), body
    grew = True
    while grew:
        grew = False
        for i, (names, block) in enumerate(blocks):
            if not wanted[i] and any(re.search(rf"\b{n}\b", text) for n in names):
                wanted[i], text, grew = True, text + "\n" + block, True
    return [block for (_, block), w in zip(blocks, wanted, strict=True) if w]
