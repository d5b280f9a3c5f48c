"""The embedded backend: one SQLite file, written by one thread, read by the debugger."""

from __future__ import annotations

from forwarder.storage.sqlite.store import SqliteStorage

__all__ = ["SqliteStorage"]
