"""The garbage collector tuned for a long-lived server process (``serve``, ``deliver``).

Ingest and delivery make a few dozen short-lived containers per event (the decoded events,
their mappings and inputs) that live exactly as long as their request or batch. With CPython's
default young-generation threshold (700 allocations) a collection ran every few events of a
batch: the objects in flight (64 connections of 100 events, or a delivery batch of 500) were
traversed, promoted, and traversed again by full collections that walk every object of the
process: about a third of batch ingest's main-thread CPU and ~5 µs per delivered event
(``benchmarks/RESULTS.md``), and full passes of 36-390 ms that held the GIL (every thread,
the SQLite writer's commits included, waited). Objects made at start-up (modules, the app,
settings: ~80,000) never become garbage, so they are moved out of the collector's sight once.

Called by the serving and delivery processes once their app is built, never in tests' own
process: tests build many apps in one process, and freezing each one's objects would keep
their cycles alive.
"""

from __future__ import annotations

import gc

GC_THRESHOLD = (100_000, 20, 100)
"""Allocations (net of frees) between young collections, and collections between older ones
(Python's defaults: 700, 10, 10). Most of a batch's objects are freed by reference counting
before a young collection sees them; a young collection then takes a few ms at most."""


def settle() -> None:
    """After start-up: collect once, freeze what is left, collect less often from then on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
