"""Draw the outage trace (queue depth and delivery rate over time) as a PNG.

    python benchmarks/chart.py benchmarks/results/outage.json benchmarks/results/outage.png

The trace is written by ``tests/reliability/test_outage.py`` when ``OUTAGE_TRACE`` names a
file (``benchmarks/run_all.py`` does that). Needs matplotlib: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any


def draw(trace: dict[str, Any], out: Path) -> None:
    """Queue depth (left axis) and events delivered per second (right axis); outage shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = trace["samples"]
    t = [s["t"] for s in samples]
    depth = [s["queue_depth"] for s in samples]
    rate = [0.0] + [
        (b["received"] - a["received"]) / max(1e-6, b["t"] - a["t"])
        for a, b in itertools.pairwise(samples)
    ]
    fig, left = plt.subplots(figsize=(9, 4.5), dpi=110)
    left.axvspan(trace["outage_started"], trace["outage_ended"], color="#f4c7c3", label="outage")
    left.plot(t, depth, color="#1f4e79", label="queue depth (open items)")
    left.set_xlabel("seconds")
    left.set_ylabel("queue depth (events)")
    right = left.twinx()
    right.plot(t, rate, color="#e69500", alpha=0.8, label="delivered events/s")
    right.set_ylabel("delivered events/s")
    left.axvline(trace["drained_at"], color="#2e7d32", linestyle="--", label="drained")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    left.legend(handles=handles, loc="upper left", fontsize=8)
    left.set_title(
        f"HubSpot outage of {trace['outage_s']:g} s: ingest {trace['ingest_per_s']} events/s, "
        f"envelope {trace['envelope_requests_per_s']} requests/s"
    )
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("trace", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    draw(json.loads(args.trace.read_text()), args.out)
    print(args.out)


if __name__ == "__main__":
    main()
