"""The garbage collector settled for a long-lived server process (``serve``, ``deliver``).

Objects made at start-up (modules, classes, the app, settings: ~80,000) never become garbage,
yet every full collection walked them: under load about once a second, 36-390 ms each with the
GIL held, so the event loop and the SQLite writer's commits waited (``benchmarks/RESULTS.md``,
"Ingest p99"). Once the app is built they are moved out of the collector's sight.

The young-generation threshold is raised from Python's 700 to ``YOUNG_THRESHOLD``. At 700 a
batch being ingested or delivered (thousands of live objects) was collected and promoted many
times over, up to full collections: about a quarter of batch ingest's CPU. Serving makes no
cyclic garbage (refcounting frees everything), so a young collection is rarely due; the one
cycle there was, httpx's response and the request body hanging off it, is broken where the
answer is parsed (``hubspot/client.py``, ``_READ``). Before that fix the raised threshold let
those bodies pile up: a 1,000,000-event drain grew to 511 MB; after it, 144 MB, as at 700
(``benchmarks/backlog.py``; issue 17's target is < 150 MB).

Called by the serving and delivery processes once their app is built, never in tests' own
process: tests build many apps in one process, and freezing each one's objects would keep
their cycles alive.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000
"""Net new container objects between young collections (Python's default: 700)."""


def settle() -> None:
    """After start-up: collect once, freeze what is left out of later collections, and make
    young collections rare."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
