"""Every Redis key name of the Redis backend, built in this one place (for Python and for Lua).

A key is ``{prefix}:{template}`` with the template's ``{}`` filled in order. The Lua scripts get
the same templates as generated functions (``K.item(id)``), so a key is never spelled twice.
Fields inside hashes join their parts with ``SEP`` (message ids and identifier values may hold
``:``; they never hold the unit separator).
"""

from __future__ import annotations

from collections.abc import Collection

SEP = "\x1f"
GROUP = "fwd"
"""The consumer group every replica reads the queue streams with."""

TEMPLATES: dict[str, str] = {
    "seq": "seq",  # string: last event seq
    "item_seq": "item_seq",  # string: last item id
    "event": "ev:{}",  # hash: one accepted event
    # Event seqs are dense (a gap: a seq a failed script took): purge walks them up from
    # events_floor, and keeps in events_kept those it passed with an item still open.
    "events_floor": "events_floor",  # string: the lowest seq purge has not passed (absent: 1)
    "events_kept": "events_kept",  # zset seq -> seq: events below the floor that are kept
    "dedup": "dedup",  # hash portal SEP message_id -> "seq seen_at"
    "dedup_log": "dedup_log",  # stream, an entry per append: now, then portal, message_id pairs
    # Before version 5 (migration 5 renames it events_kept):
    "events": "events",  # zset seq -> seq of every event
    # Before version 4 (migration 4 folds them into the above and deletes them):
    "events_at": "events_at",  # zset seq -> received_at
    "portal_events": "pev:{}",  # zset seq -> seq per portal
    "dedup_at": "dedup_at",  # zset portal SEP message_id -> seen_at
    "item": "it:{}",  # hash: one delivery item
    "queue": "q:{}:{}",  # stream per (portal, destination): pending and leased items
    "leases": "lz:{}:{}",  # zset item id -> lease deadline or retry due time (in the PEL)
    "last_read": "last_read",  # hash portal SEP destination -> last stream id read
    "queues": "queues",  # set of portal SEP destination
    "portals": "portals",  # set of portals
    "in_state": "st:{}:{}",  # zset item id -> available_at per (portal, state): held, final
    "tally": "tally",  # hash portal SEP destination SEP state -> running total
    "open": "open",  # hash portal SEP destination SEP state -> open items now
    "open_total": "open_total",  # string: every open item (pending_count)
    "held_by": "hk:{}:{}",  # set of held item ids per (portal, kind SEP value)
    "held_keys_of": "hko:{}",  # set of held_by key names per item
    "identities": "idn:{}",  # hash kind SEP value -> person, per portal
    "identity_epoch": "idep",  # string: bumped by every graph change a settled link must hear of
    "person": "person:{}:{}",  # zset kind SEP value -> updated_at per (portal, person)
    "people": "people",  # string: last person id
    "touches": "tch:{}",  # hash kind SEP value SEP f|l -> "at json" (first/last touch), per portal
    "attempt": "att:{}",  # string: one attempt, JSON
    "attempts_of": "ao:{}",  # set of attempt ids per item
    "meta": "meta",  # hash
    "schema": "schema",  # string: the key space's version (redis_migrations)
    "erasures": "erasures",  # list of erasure records (no personal data)
    "probe": "probe",  # string written by check_writable
    "window": "win:{}:{}",  # zset: one rate window's log per (portal, envelope)
    "window_block": "winb:{}:{}",  # string: blocked until (Redis time) per (portal, envelope)
    "window_seq": "winseq",  # string: unique ids for window log entries
    "window_pace": "winp:{}:{}",  # string: pacing's theoretical arrival time per (portal, envelope)
    "lock": "lock:{}",  # string: a lock's owner token
    "oauth": "oauth:{}",  # hash per portal: access, refresh, due (the current OAuth tokens)
    "rates": "rm:{}",  # hash per minute: portal SEP route SEP outcome -> HubSpot requests
    "quota": "quota:{}:{}:{}",  # string per (portal, quota name, period): units spent
    "ingest_totals": "itot",  # hash source SEP metric -> all-time count (the ingest funnel)
    "quality": "qh:{}",  # hash source SEP event_type SEP metric -> count, per Unix hour
}


class Keys:
    """Key names under one prefix: ``keys.item(7) == "fwd:it:7"``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def name(self, kind: str, *parts: object) -> str:
        """The key of ``kind`` (a ``TEMPLATES`` name) for ``parts``."""
        return f"{self.prefix}:{TEMPLATES[kind].format(*parts)}"

    def item(self, item_id: object) -> str:
        return self.name("item", item_id)

    def event(self, seq: object) -> str:
        return self.name("event", seq)

    def queue(self, portal: str, destination: str) -> str:
        return self.name("queue", portal, destination)

    def pattern(self) -> str:
        """Matches every key of this prefix (tests flush with it)."""
        return f"{self.prefix}:*"


def lua_key_functions(kinds: Collection[str] | None = None) -> str:
    """Lua functions ``K.<kind>(...)`` building the same names from ``P`` (the prefix), for
    ``kinds`` (default: every kind)."""
    lines = ["local K = {}"]
    for kind, template in TEMPLATES.items():
        if kinds is not None and kind not in kinds:
            continue
        pieces = template.split("{}")
        arity = len(pieces) - 1
        args = ", ".join(f"a{i}" for i in range(arity))
        body = ["P", "':'"]
        for i, piece in enumerate(pieces):
            if piece:
                body.append(repr(piece))
            if i < arity:
                body.append(f"a{i}")
        lines.append(f"K.{kind} = function({args}) return {' .. '.join(body)} end")
    return "\n".join(lines)
