"""``docs/configuration.md`` is generated from the settings' docstrings and never drifts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from forwarder import config
from forwarder.docs import field_docs, render, sections

ROOT = Path(__file__).parents[2]
REFERENCE = ROOT / "docs" / "configuration.md"


def test_checked_in_reference_matches_the_settings_docstrings() -> None:
    """Fails when a settings field or its docstring changed: run `forwarder config-reference`."""
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date: run `python -m forwarder config-reference`"
    )


def test_every_settings_field_is_in_the_reference() -> None:
    documented = {(s.header, k.name) for s in sections() for k in s.keys}
    assert ("server", "shutdown_deadline_s") in documented
    assert ("[sources]", "write_key") in documented
    assert ("portals.NAME.limits", "safety") in documented
    assert ("portals.NAME.contacts", "properties") in documented
    text = render()
    tables = {"events", "limits", "contacts", "attribution"}  # sub-tables: own sections
    for struct in (config.ServerSettings, config.PortalSettings, config.LimitSettings):
        for field in msgspec.structs.fields(struct):
            if field.name not in tables:
                assert f"| `{field.encode_name}` |" in text
    for table in tables:
        assert f"## `[portals.NAME.{table}]`" in text or f"## `[[portals.NAME.{table}]]`" in text


def test_a_field_without_docstring_is_refused() -> None:
    class Undocumented(msgspec.Struct):
        """A section."""

        documented: int = 1
        """Has one."""
        bare: int = 2

    assert field_docs(Undocumented) == {"documented": "Has one."}
    with pytest.raises(ValueError, match="bare has no docstring"):
        list(sections(Undocumented))


def test_cli_check_mode_reports_drift(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n")
    command = [sys.executable, "-m", "forwarder", "config-reference", "--out", str(stale)]
    drift = subprocess.run([*command, "--check"], capture_output=True, text=True, check=False)
    assert drift.returncode == 1
    assert "out of date" in drift.stderr
    subprocess.run(command, capture_output=True, check=True)
    assert subprocess.run([*command, "--check"], check=False).returncode == 0
