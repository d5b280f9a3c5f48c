"""The garbage collector tuned for a long-lived server process (``serve``, ``deliver``).

Every batch the delivery path handles makes thousands of short-lived containers (the decoded
events, their mappings and inputs) that live exactly as long as the batch. With CPython's
default young-generation threshold (700 allocations) they survive several young collections,
are promoted, and trigger full collections that walk every object of the process: ~5 µs of CPU
per delivered event (``benchmarks/delivery_cpu.py``). Objects made at start-up (modules, the
app, settings) never become garbage, so they are moved out of the collector's sight once.

Called from the command line only: tests build many apps in one process, and freezing each
one's objects would keep their cycles alive.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations (net of frees) between young collections: most of a batch's objects are freed
by reference counting before a young collection sees them (measured: ~1 young collection per
20,000 delivered events instead of ~380, and no full one)."""


def settle() -> None:
    """After start-up: collect once, freeze what is left, raise the young threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
