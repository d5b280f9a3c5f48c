"""The published JSON Schemas in schemas/ match the wire structs."""

from __future__ import annotations

from pathlib import Path

import pytest

from forwarder.events.schema import DOCUMENTS, render

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_checked_in_schema_matches_the_structs(name: str) -> None:
    path = SCHEMAS / f"{name}.schema.json"
    assert path.read_bytes() == render(name), (
        f"{path.name} drifted from forwarder/events; run `forwarder schemas` and commit"
    )


def test_no_stale_schema_files_are_published() -> None:
    assert {p.name for p in SCHEMAS.glob("*.json")} == {f"{n}.schema.json" for n in DOCUMENTS}
