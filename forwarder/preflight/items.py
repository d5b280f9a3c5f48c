"""What a check found: one ``Item`` per line of the report, and how the report is printed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """✓ in place, ✗ missing (fails the check), ! worth knowing (does not fail it)."""

    OK = "✓"
    MISSING = "✗"
    NOTE = "!"


@dataclass(frozen=True, slots=True)
class Item:
    """One line: what was checked, the verdict, and what was found or how to fix it."""

    portal: str
    what: str
    verdict: Verdict
    detail: str


def passed(items: Sequence[Item]) -> bool:
    """True when nothing needed is missing (notes do not fail the check)."""
    return all(item.verdict is not Verdict.MISSING for item in items)


def render(items: Sequence[Item]) -> str:
    """The report as an aligned table with a closing summary line."""
    portal_w = max([len("portal"), *(len(i.portal) for i in items)])
    what_w = max([len("check"), *(len(i.what) for i in items)])
    lines = [f"  {'portal':<{portal_w}}  {'check':<{what_w}}  result"]
    for i in items:
        lines.append(f"{i.verdict.value} {i.portal:<{portal_w}}  {i.what:<{what_w}}  {i.detail}")
    missing = sum(1 for i in items if i.verdict is Verdict.MISSING)
    lines.append(
        "ready: everything needed is in place"
        if not missing
        else f"not ready: {missing} item(s) to fix (✗)"
    )
    return "\n".join(lines)
