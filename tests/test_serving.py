"""The serving and delivery processes' own set-up (``forwarder/heap.py``)."""

from __future__ import annotations

import subprocess
import sys

from forwarder.heap import GC_THRESHOLD


def test_a_serving_process_freezes_start_up_objects_and_collects_young_ones_less_often() -> None:
    """Run in a process of its own: the tuning is process-wide, and pytest's must stay as is."""
    script = (
        "import gc\n"
        "from forwarder.heap import GC_THRESHOLD, settle\n"
        "before = gc.get_freeze_count()\n"
        "settle()\n"
        "print(gc.get_threshold() == GC_THRESHOLD, before == 0 < gc.get_freeze_count())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.split() == ["True", "True"]
    assert GC_THRESHOLD[0] > 700  # Python's default
