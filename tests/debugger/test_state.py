"""The debugger's dependencies are built by the composition root, never on demand."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar import Litestar

from forwarder.app import create_app
from forwarder.debugger.state import Debugger, debugger_of
from tests.debugger.conftest import admin_settings


def test_the_debugger_is_ready_in_the_app_state_before_any_request(tmp_path: Path) -> None:
    app = create_app(admin_settings(tmp_path))

    debugger = debugger_of(app)

    assert isinstance(debugger, Debugger)
    assert debugger.engine is app.state.engine
    assert debugger.storage is app.state.storage


def test_an_app_the_root_did_not_build_has_no_debugger_to_read() -> None:
    with pytest.raises(TypeError, match="not a Debugger"):
        debugger_of(Litestar())
