"""The serving and delivery processes' own set-up (``forwarder/heap.py``)."""

from __future__ import annotations

import subprocess
import sys


def test_a_serving_process_freezes_start_up_objects_and_makes_young_collections_rare() -> None:
    """Run in a process of its own: the freeze is process-wide, and pytest's must stay as is."""
    script = (
        "import gc\n"
        "from forwarder.heap import YOUNG_THRESHOLD, settle\n"
        "before, (_, middle, old) = gc.get_freeze_count(), gc.get_threshold()\n"
        "settle()\n"
        "print(gc.get_threshold() == (YOUNG_THRESHOLD, middle, old) != (700, middle, old),"
        " before == 0 < gc.get_freeze_count())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.split() == ["True", "True"]
