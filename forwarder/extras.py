"""Optional packages: which setting needs which extra, checked before anything starts.

A setting that names an optional backend or server (Redis storage, the granian server) needs
that package installed. Missing, it is a configuration problem with a one-line fix, so it is
reported as a ``ConfigError`` naming the extra to install, never as an import traceback from
deep inside start-up.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlparse

from forwarder.config import Settings
from forwarder.errors import ConfigError

DISTRIBUTION = "hubspot-forwarder"


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra`` (quoted for every shell)."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require(module: str, *, extra: str, key: str, why: str) -> None:
    """Import ``module`` or raise a ``ConfigError`` at ``key`` that names the extra to install.

    Args:
        module: the top-level module of the optional package (``redis``).
        extra: the project's extra that installs it (``redis``).
        key: the setting that asked for it (``storage.url``).
        why: what needs it, in a few words (``Redis storage``).
    """
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            key,
            f"{why} needs the {module!r} package, which is not installed: {install_hint(extra)}",
        ) from exc


def require_extras(settings: Settings) -> None:
    """Check that every optional package the settings name is installed."""
    if urlparse(settings.storage.url).scheme in ("redis", "rediss"):
        require("redis", extra="redis", key="storage.url", why="Redis storage")
    if settings.server.server == "granian":
        require("granian", extra="granian", key="server.server", why="the granian server")
