"""SQLite leases (migration 12: a row per lease and its number in each item) against a plain
model of what a lease means: random leases, finishes, retries, holds and clocks."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.storage.base import NewEvent
from forwarder.storage.sqlite import SqliteStorage

NOW = 1_800_000_000.0
LEASE_S = 30.0


def _event(n: int) -> NewEvent:
    return NewEvent(
        portal="main",
        message_id=str(n),
        source="s",
        type="track",
        name="E",
        received_at=NOW,
        payload=b"{}",
        destinations=("conversions",),
    )


# (what, a number, a time step): lease a batch of that many, finish / retry / hold that many of
# the items leased last, or let the clock run on.
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["lease", "finish", "retry", "hold", "wait"]),
        st.integers(1, 6),
        st.sampled_from([0.0, 1.0, 10.0, 31.0]),
    ),
    max_size=30,
)


class Model:
    """Each item: ``pending`` (due at), ``leased`` (lease end), ``held`` or ``delivered``."""

    def __init__(self, n: int) -> None:
        self.state = dict.fromkeys(range(1, n + 1), "pending")
        self.due = dict.fromkeys(range(1, n + 1), NOW)
        self.ends: dict[int, float] = {}

    def eligible(self, now: float) -> tuple[set[int], set[int]]:
        """(expired leases' items, due pending items) a lease may take."""
        expired = {i for i, s in self.state.items() if s == "leased" and self.ends[i] <= now}
        due = {i for i, s in self.state.items() if s == "pending" and self.due[i] <= now}
        return expired, due


async def _lease(storage: SqliteStorage, model: Model, n: int, now: float) -> list[int]:
    expired, due = model.eligible(now)
    items = await storage.lease("main", "conversions", limit=n, now=now, lease_s=LEASE_S)
    got = [i.id for i in items]
    assert len(got) == len(set(got)) == min(n, len(expired | due))
    assert set(got) <= expired | due  # never an item of a live lease
    if set(got) & due:  # expired leases' items come first
        assert expired <= set(got)
    for i in got:
        model.state[i], model.ends[i] = "leased", now + LEASE_S
    return got


async def _let_go(
    storage: SqliteStorage, model: Model, what: str, ids: list[int], now: float
) -> None:
    if what == "finish":
        await storage.finish(ids, "delivered", now=now)
    elif what == "retry":
        await storage.retry(ids, available_at=now + 5, now=now)
    else:
        await storage.hold(ids, until=now + 1000, now=now)
    for i in ids:
        model.state[i] = {"finish": "delivered", "retry": "pending"}.get(what, "held")
        model.due[i] = now + 5


async def _check(storage: SqliteStorage, model: Model) -> None:
    counts = await storage.counts()
    for state in ("pending", "leased", "held", "delivered"):
        expected = sum(1 for s in model.state.values() if s == state)
        assert counts.get(("main", "conversions", state), 0) == expected, state
    listed = {r.id for r in await storage.items_in_state("leased")}
    assert listed == {i for i, s in model.state.items() if s == "leased"}


async def _run(steps: list[tuple[str, int, float]], tmp: Path) -> None:
    storage = SqliteStorage(tmp / "f.db")
    await storage.open()
    await storage.append([_event(n) for n in range(8)], now=NOW, dedup_window_s=60)
    model, now, last = Model(8), NOW, list[int]()
    try:
        for what, n, step in steps:
            now += step
            if what == "lease":
                last = await _lease(storage, model, n, now)
            elif what != "wait":
                chosen = [i for i in last if model.state[i] == "leased"][:n]
                if chosen:
                    await _let_go(storage, model, what, chosen, now)
            await _check(storage, model)
    finally:
        await storage.close()


@settings(max_examples=60, deadline=None)
@given(steps=STEPS)
def test_leases_take_due_items_once_expired_ones_first_and_count_as_the_model(
    steps: list[tuple[str, int, float]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(steps, Path(tmp)))
