"""The garbage collector settled for a long-lived server process (``serve``, ``deliver``).

Objects made at start-up (modules, classes, the app, settings: ~80,000) never become garbage,
yet every full collection walked them: under load about once a second, 36-390 ms each with the
GIL held, so the event loop and the SQLite writer's commits waited (``benchmarks/RESULTS.md``,
"Ingest p99"). Once the app is built they are moved out of the collector's sight.

The young-generation threshold stays Python's (700). Raising it (10,000 or 100,000) saved CPU on
batch ingest and delivery (a batch's objects were no longer promoted), but the drain of a
1,000,000-event backlog then grew the process to 169 MB (10,000) and 511 MB (100,000) against
133 MB at 700 (``benchmarks/backlog.py``; issue 17's target is < 150 MB).

Called by the serving and delivery processes once their app is built, never in tests' own
process: tests build many apps in one process, and freezing each one's objects would keep
their cycles alive.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """After start-up: collect once, then freeze what is left out of later collections."""
    gc.collect()
    gc.freeze()
