"""Lead scoring job: product usage in, a ``lead_score`` contact property in HubSpot out.

    FORWARDER_URL=http://127.0.0.1:8080 FORWARDER_WRITE_KEY=... python score.py [usage.csv]

Reads product-usage rows (one per user), computes a 0-100 score, and sends one ``identify`` per
user with ``traits = {email, lead_score, lead_score_band}``. With the matching forwarder config
(``forwarder.toml``: ``[portals.main.contacts] upsert = true`` and the trait -> property map), the
forwarder upserts each contact by email through HubSpot's ``contacts/batch/upsert`` (100 per
request, inside the portal's CRM rate envelope). A HubSpot workflow enrolled on
"lead_score is greater than or equal to 70" then acts on it (assign an owner, notify sales).

Run it from cron or your scheduler; re-running is harmless: the same day and score give the same
``messageId``, which the forwarder treats as a duplicate.
"""

from __future__ import annotations

import csv
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

# Weight and cap per usage signal: a signal contributes weight * min(value / cap, 1).
WEIGHTS: dict[str, tuple[float, float]] = {
    "logins_30d": (20, 40),
    "active_days_30d": (20, 20),
    "seats": (15, 25),
    "teammates_invited": (15, 10),
    "integrations_connected": (15, 3),
    "pricing_page_views_7d": (15, 5),
}
HOT = 70  # the threshold the HubSpot workflow uses


def score(row: dict[str, str]) -> int:
    """0-100 from the usage signals above."""
    total = sum(w * min(float(row[name]) / cap, 1.0) for name, (w, cap) in WEIGHTS.items())
    return round(total)


def band(value: int) -> str:
    return "hot" if value >= HOT else "warm" if value >= 40 else "cold"


def identifies(rows: list[dict[str, str]], today: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for row in rows:
        value = score(row)
        out.append(
            {
                "type": "identify",
                "userId": row["user_id"],
                # Same user, day and score -> same messageId: a re-run is a duplicate, not news.
                "messageId": f"lead-score-{row['user_id']}-{today}-{value}",
                "traits": {
                    "email": row["email"],
                    "lead_score": value,
                    "lead_score_band": band(value),
                },
            }
        )
    return out


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("usage.csv")
    with source.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    batch = identifies(rows, datetime.now(UTC).date().isoformat())
    url = os.environ.get("FORWARDER_URL", "http://127.0.0.1:8080")
    key = os.environ["FORWARDER_WRITE_KEY"]
    with httpx.Client(base_url=url, auth=(key, ""), timeout=10) as client:
        response = client.post("/v1/batch", json={"batch": batch})
    response.raise_for_status()
    result = response.json()
    for message in batch:
        traits = message["traits"]
        assert isinstance(traits, dict)
        print(f"{traits['email']:<24} {traits['lead_score']:>3} {traits['lead_score_band']}")
    print(f"accepted {result['accepted']}, duplicates {result['duplicates']}")
    return 0 if not result["rejected"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
