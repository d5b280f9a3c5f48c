"""The SQLite backend's identity graph: people, their identifiers, holds and erasure."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import msgspec

from forwarder.storage.base import Erasure, Item, Key
from forwarder.storage.outcomes import Outcome, Reason
from forwarder.storage.sqlite.settled import SettledLinks
from forwarder.storage.sqlite.sql import EVENT_COLS, EVENTS, event_from_row, finish
from forwarder.storage.sqlite.touch import forget as forget_touches

if TYPE_CHECKING:  # people.py reads through this module
    from forwarder.storage.sqlite.people import KnownPeople


def _person(conn: sqlite3.Connection, portal: str, key: Key) -> int | None:
    row = conn.execute(
        "SELECT person FROM identities WHERE portal = ? AND kind = ? AND value = ?",
        (portal, key[0], key[1]),
    ).fetchone()
    return None if row is None else int(row[0])


_PART = 400
"""Keys per statement in set-wise look-ups (two parameters each, far below SQLite's limit)."""


def _parts(values: Sequence[Key]) -> Iterator[Sequence[Key]]:
    for start in range(0, len(values), _PART):
        yield values[start : start + _PART]


def _pairs(n: int) -> str:
    return ",".join(["(?, ?)"] * n)


def _flat(keys: Sequence[Key]) -> list[str]:
    return [part for key in keys for part in key]


def _people_by_key(conn: sqlite3.Connection, portal: str, keys: Sequence[Key]) -> dict[Key, int]:
    # A join from the listed keys, so each is one primary-key look-up: ``(kind, value) IN
    # (VALUES ...)`` makes SQLite scan the portal's whole graph instead.
    found: dict[Key, int] = {}
    for part in _parts(keys):
        rows = conn.execute(
            f"WITH k (kind, value) AS (VALUES {_pairs(len(part))})"
            " SELECT i.kind, i.value, i.person FROM k JOIN identities i"
            " ON i.portal = ? AND i.kind = k.kind AND i.value = k.value",
            (*_flat(part), portal),
        ).fetchall()
        found.update(((r[0], r[1]), int(r[2])) for r in rows)
    return found


def _everyone(conn: sqlite3.Connection, portal: str, people: Sequence[int]) -> dict[int, list[Key]]:
    """Every key of each of ``people``."""
    keys: dict[int, list[Key]] = {}
    for start in range(0, len(people), _PART):
        part = people[start : start + _PART]
        rows = conn.execute(
            "SELECT kind, value, person FROM identities INDEXED BY identities_person"
            f" WHERE portal = ? AND person IN ({','.join('?' * len(part))})",
            (portal, *part),
        ).fetchall()
        for r in rows:
            keys.setdefault(r[2], []).append((r[0], r[1]))
    return keys


def _keys_of(conn: sqlite3.Connection, portal: str, person: int) -> list[Key]:
    # Without INDEXED BY, SQLite (no ANALYZE statistics) picks the primary key on ``portal``
    # alone: a scan of the portal's whole graph per lookup, O(n^2) over a backlog.
    rows = conn.execute(
        "SELECT kind, value FROM identities INDEXED BY identities_person"
        " WHERE portal = ? AND person = ? ORDER BY updated_at",
        (portal, person),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def link(conn: sqlite3.Connection, portal: str, keys: Sequence[Key], now: float) -> None:
    people = {p for k in keys if (p := _person(conn, portal, k)) is not None}
    if people:
        person = min(people)
        others = sorted(people - {person})
        if others:
            marks = ",".join("?" * len(others))
            conn.execute(
                f"UPDATE identities SET person = ? WHERE portal = ? AND person IN ({marks})",
                (person, portal, *others),
            )
    else:
        person = int(
            conn.execute("INSERT INTO people (created_at) VALUES (?)", (now,)).lastrowid or 0
        )
    conn.executemany(
        "INSERT INTO identities (portal, kind, value, person, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (portal, kind, value) DO UPDATE SET updated_at = excluded.updated_at",
        [(portal, kind, value, person, now) for kind, value in keys],
    )


class LearnJob:
    """One ``learn`` call; the writer runs consecutive ones of a portal as one (``learn_many``)."""

    __slots__ = ("answers", "groups", "now", "portal", "settled")

    def __init__(
        self,
        portal: str,
        groups: Sequence[Sequence[Key]],
        now: float,
        settled: SettledLinks | None = None,
        answers: KnownPeople | None = None,
    ) -> None:
        self.portal = portal
        self.groups = groups
        self.now = now
        self.settled = settled
        self.answers = answers

    def __call__(self, conn: sqlite3.Connection) -> list[Item]:
        job = [(self.groups, self.now)]
        return learn_many(conn, self.portal, job, self.settled, self.answers)[0]


def learn(
    conn: sqlite3.Connection, portal: str, groups: Sequence[Sequence[Key]], now: float
) -> list[Item]:
    """``link`` every group, then ``release_for`` everyone of their people: the same result,
    with a constant number of statements however many groups (the common case, no merge and
    nothing held: three look-ups and one upsert)."""
    return learn_many(conn, portal, [(groups, now)])[0]


Jobs = Sequence[tuple[Sequence[Sequence[Key]], float]]


def learn_many(
    conn: sqlite3.Connection,
    portal: str,
    jobs: Jobs,
    settled: SettledLinks | None = None,
    answers: KnownPeople | None = None,
) -> list[list[Item]]:
    """``learn`` of each ``(groups, now)`` in turn, in the statements of one ``learn``.

    The graph ends as it would: each key is stamped with the ``now`` of the last job naming
    it, and a new person with that of the first. Everything released goes to the first job
    (the jobs commit together; their callers only count and announce what was released).
    With ``settled`` (the writer's cache), links it knows to be settled are not learned again
    (no statement at all when every link is), and it learns which links now are. With
    ``answers`` (the writer's ``people_of`` answers), those of every key of the people touched
    are forgotten (their members, merges and stamps changed) and the others kept.
    """
    per_job: list[list[Item]] = [[] for _ in jobs]
    last_now = jobs[-1][1] if jobs else 0.0
    if settled is not None:
        settled.check(conn)
        jobs = _unsettled(portal, jobs, settled)
    stamp: dict[Key, float] = {}
    first: dict[Key, float] = {}
    for groups, now in jobs:
        for group in groups:
            for key in group:
                stamp[key] = now
                first.setdefault(key, now)
    if not stamp:
        return per_job
    known = _people_by_key(conn, portal, list(stamp))
    components = _components([g for groups, _ in jobs for g in groups], known)
    people = _link(conn, portal, components, known, (stamp, first))
    everyone = _everyone(conn, portal, people)
    per_job[0] = release_for(
        conn, portal, [k for keys in everyone.values() for k in keys], last_now
    )
    if answers is not None:
        answers.forget(portal, [k for keys in everyone.values() for k in keys])
    if settled is not None:
        settled.forget(portal, stamp)
        epoch = settled.changed(conn)
        if answers is not None:
            answers.changed(epoch)
        learned = [frozenset(g) for gs, _ in jobs for g in gs]
        for links in _now_settled(learned, components, people, everyone):
            settled.add(portal, links)
    return per_job


def _link(
    conn: sqlite3.Connection,
    portal: str,
    components: list[list[Key]],
    known: dict[Key, int],
    stamps: tuple[dict[Key, float], dict[Key, float]],
) -> list[int]:
    """Make each component one person (merging the people it spans, or a new one) and stamp
    its keys (``stamps``: the last and the first ``now`` of each key); returns the person of
    each component."""
    stamp, first = stamps
    people: list[int] = []
    rows: list[tuple[str, str, str, int, float]] = []
    for members in components:
        found = sorted({known[k] for k in members if k in known})
        if found:
            person = found[0]  # as ``link``: the oldest person takes in the others
            if len(found) > 1:
                marks = ",".join("?" * (len(found) - 1))
                conn.execute(
                    f"UPDATE identities SET person = ? WHERE portal = ? AND person IN ({marks})",
                    (person, portal, *found[1:]),
                )
        else:
            created = min(first[k] for k in members)
            made = conn.execute("INSERT INTO people (created_at) VALUES (?)", (created,)).lastrowid
            person = int(made or 0)
        people.append(person)
        rows += [(portal, kind, value, person, stamp[(kind, value)]) for kind, value in members]
    conn.executemany(
        "INSERT INTO identities (portal, kind, value, person, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (portal, kind, value) DO UPDATE SET updated_at = excluded.updated_at",
        rows,
    )
    return people


def _unsettled(portal: str, jobs: Jobs, settled: SettledLinks) -> Jobs:
    """``jobs`` without the groups that are settled and share no key with a group that is not
    (learning that one restamps their keys too). Two settled groups sharing a key are one
    person's keys, the same set: one pass finds them all."""
    known = settled.of(portal)  # asked once per link of every request: no call per link
    skip = [[frozenset(g) in known for g in groups] for groups, _ in jobs]
    if not any(any(s) for s in skip):
        return jobs
    learned = {
        key
        for (groups, _), skips in zip(jobs, skip, strict=True)
        for group, skipped in zip(groups, skips, strict=True)
        if not skipped
        for key in group
    }
    return [
        ([g for g, x in zip(groups, skips, strict=True) if not x or not learned.isdisjoint(g)], now)
        for (groups, now), skips in zip(jobs, skip, strict=True)
    ]


def _now_settled(
    groups: Sequence[frozenset[Key]],
    components: Sequence[Sequence[Key]],
    people: Sequence[int],
    everyone: dict[int, list[Key]],
) -> list[frozenset[Key]]:
    """The learned links that are now settled: every group of their component is that link,
    and it is all of its person (nothing held: everyone of the person was just released)."""
    person_of: dict[Key, int] = {}
    for members, person in zip(components, people, strict=True):
        person_of.update(dict.fromkeys(members, person))
    links_of: dict[int, set[frozenset[Key]]] = {}
    for group in groups:
        links_of.setdefault(person_of[next(iter(group))], set()).add(group)
    out: list[frozenset[Key]] = []
    for person, links in links_of.items():
        if len(links) == 1 and links == {frozenset(everyone.get(person, ()))}:
            out += links
    return out


def _components(groups: Sequence[Sequence[Key]], known: dict[Key, int]) -> list[list[Key]]:
    """The keys of ``groups`` split into the people they make: keys of one group are one person,
    and so are keys that already belonged to one person (union-find)."""
    settled = _settled(groups, known)
    if settled is not None:
        return settled
    parent: dict[Key, Key] = {}

    def root(key: Key) -> Key:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]  # path halving: later look-ups are shorter
            key = parent[key]
        return key

    def join(a: Key, b: Key) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra

    for group in groups:
        for key in group:
            join(group[0], key)
    first_of: dict[int, Key] = {}
    for key, person in known.items():
        join(first_of.setdefault(person, key), key)
    components: dict[Key, list[Key]] = {}
    for key in dict.fromkeys(k for group in groups for k in group):
        components.setdefault(root(key), []).append(key)
    return list(components.values())


def _settled(groups: Sequence[Sequence[Key]], known: dict[Key, int]) -> list[list[Key]] | None:
    """The common case, without union-find: every key known and each group already one person
    (its people are then the known ones); None when a key is new or a group joins two people."""
    by_person: dict[int, list[Key]] = {}
    for group in groups:
        people = {known.get(k) for k in group}
        if len(people) != 1 or None in people:
            return None
        by_person.setdefault(known[group[0]], []).extend(group)
    return [list(dict.fromkeys(members)) for members in by_person.values()]


def people_of(conn: sqlite3.Connection, portal: str, keys: Sequence[Key]) -> dict[Key, list[Key]]:
    """One statement per kind of key (a batch has one or two): each known key with every key
    of its person, least recently seen first.

    CROSS JOIN keeps the value list as the outer loop (SQLite does not reorder it): one primary
    key look-up per key, then its person's keys through ``identities_person``, never a scan of
    the portal's graph. (People first, then their keys, cost ~40% more; one statement over
    ``[kind, value]`` pairs ~15% more, for the ``json_extract`` of each pair.)"""
    by_kind: dict[str, list[str]] = {}
    for kind, value in dict.fromkeys(keys):
        by_kind.setdefault(kind, []).append(value)
    found: dict[Key, list[Key]] = {}
    for kind, values in by_kind.items():
        # INDEXED BY: see ``_keys_of``.
        for value, member_kind, member_value in conn.execute(
            "SELECT i.value, o.kind, o.value FROM json_each(?) j CROSS JOIN identities i"
            " ON i.portal = ? AND i.kind = ? AND i.value = j.value"
            " CROSS JOIN identities o INDEXED BY identities_person"
            " ON o.portal = i.portal AND o.person = i.person"
            " ORDER BY j.key, o.updated_at, o.kind, o.value",
            (_encode_keys(values), portal, kind),
        ):
            members = found.get((kind, value))
            if members is None:
                members = found[(kind, value)] = []
            members.append((member_kind, member_value))
    return found


_encode_keys = msgspec.json.Encoder().encode


def index_held(
    conn: sqlite3.Connection, portal: str, ids: Sequence[int], keys: Sequence[Key]
) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO held_keys (portal, kind, value, item_id) VALUES (?, ?, ?, ?)",
        [(portal, k, v, i) for i in ids for k, v in keys],
    )


def release_for(
    conn: sqlite3.Connection, portal: str, keys: Sequence[Key], now: float
) -> list[Item]:
    ids: set[int] = set()
    for part in _parts(list(dict.fromkeys(keys))):
        rows = conn.execute(
            f"WITH k (kind, value) AS (VALUES {_pairs(len(part))})"
            " SELECT h.item_id FROM k JOIN held_keys h"
            " ON h.portal = ? AND h.kind = k.kind AND h.value = k.value",
            (*_flat(part), portal),
        ).fetchall()
        ids.update(r[0] for r in rows)
    return _release(conn, sorted(ids), now) if ids else []


def _release(conn: sqlite3.Connection, ids: Sequence[int], now: float) -> list[Item]:
    released = []
    for item_id in ids:
        conn.execute("DELETE FROM held_keys WHERE item_id = ?", (item_id,))
        row = conn.execute(
            "UPDATE items SET state = 'pending', available_at = ?, updated_at = ?"
            " WHERE id = ? AND state = 'held' RETURNING id, portal, destination, attempts,"
            " event_seq",
            (now, now, item_id),
        ).fetchone()
        if row is None:
            continue
        event = conn.execute(
            f"SELECT {EVENT_COLS} FROM {EVENTS} WHERE e.seq = ?", (row[4],)
        ).fetchone()
        released.append(
            Item(
                id=row[0],
                portal=row[1],
                destination=row[2],
                attempts=row[3],
                event=event_from_row(event),
            )
        )
    return released


def remap_contact(
    conn: sqlite3.Connection, portal: str, old_ids: Sequence[str], new_id: str, now: float
) -> int:
    changed = 0
    for old in old_ids:
        person = _person(conn, portal, ("contactId", old))
        if person is None:
            continue
        conn.execute(
            "DELETE FROM identities WHERE portal = ? AND kind = 'contactId' AND value = ?",
            (portal, old),
        )
        survivors = _keys_of(conn, portal, person)
        link(conn, portal, [("contactId", new_id), *survivors[:1]], now)
        changed += 1
    return changed


def erase(
    conn: sqlite3.Connection, portal: str, keys: Sequence[Key], now: float
) -> tuple[Erasure, int]:
    """Returns the erasure and how many open items it closed."""
    identifiers: set[Key] = set(keys)
    for key in keys:
        person = _person(conn, portal, key)
        if person is not None:
            identifiers.update(_keys_of(conn, portal, person))
            conn.execute("DELETE FROM identities WHERE portal = ? AND person = ?", (portal, person))
    forget_touches(conn, portal, identifiers)
    seqs: set[int] = set()
    for _, value in identifiers:
        needle = msgspec.json.encode(value)
        rows = conn.execute(
            "SELECT seq FROM events WHERE portal = ? AND instr(payload, ?) > 0", (portal, needle)
        ).fetchall()
        seqs.update(r[0] for r in rows)
    item_ids: list[int] = []
    for seq in seqs:
        item_ids += [r[0] for r in conn.execute("SELECT id FROM items WHERE event_seq = ?", (seq,))]
        conn.execute(
            # Its kind's name goes: the source and type are kept in its own columns.
            "UPDATE events SET payload = ?, name = NULL, kind = NULL,"
            " source = coalesce((SELECT k.source FROM kinds k WHERE k.id = events.kind), source),"
            " type = coalesce((SELECT k.type FROM kinds k WHERE k.id = events.kind), type)"
            " WHERE seq = ?",
            (b'{"erased":true}', seq),
        )
    closed = finish(conn, item_ids, "dropped", now, Outcome(Reason.ERASED))
    conn.executemany("DELETE FROM held_keys WHERE item_id = ?", [(i,) for i in item_ids])
    record = Erasure(identifiers=len(identifiers), events=len(seqs), items=len(item_ids))
    conn.execute(
        "INSERT INTO erasures (at, portal, identifiers, events, items) VALUES (?, ?, ?, ?, ?)",
        (now, portal, record.identifiers, record.events, record.items),
    )
    return record, closed
