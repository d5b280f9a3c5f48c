"""Run the ASGI app under the server chosen by ``server.server``: uvicorn (default) or granian.

Both are run with the settings measured in ``benchmarks/RESULTS.md``: one worker, uvloop,
access log off (uvicorn also with httptools). Granian serves from a worker process, so it
gets a factory rather than an app: the app, with its SQLite writer thread and lifespan, must
be built in the process that serves it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from forwarder import heap
from forwarder.config import Settings
from forwarder.extras import require

AppFactory = Callable[[], Any]


def run_server(app_factory: AppFactory, settings: Settings) -> None:
    """Serve the app that ``app_factory`` builds until SIGINT/SIGTERM.

    Args:
        app_factory: builds the ASGI app; called once, in the serving process.
        settings: ``settings.server`` picks the server, host, port and shutdown deadline.
    """
    if settings.server.server == "granian":
        _run_granian(app_factory, settings)
    else:
        _run_uvicorn(app_factory, settings)


def _run_uvicorn(app_factory: AppFactory, settings: Settings) -> None:
    import uvicorn

    app = app_factory()
    heap.settle()
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=_grace_s(settings),
    )
    uvicorn.Server(config).run()


def _load(app_factory: AppFactory, target: str) -> Any:
    """Granian's target loader, called in the worker process (``target`` is only a label)."""
    app = app_factory()
    heap.settle()
    return app


def _run_granian(app_factory: AppFactory, settings: Settings) -> None:
    require("granian", extra="granian", key="server.server", why="the granian server")
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    server = Granian(
        "forwarder.app:create_app",  # a label here: the loader below builds the app
        address=settings.server.host,
        port=settings.server.port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=1,
        log_level=LogLevels.warning,
        log_access=False,
        workers_kill_timeout=_grace_s(settings),
    )
    # A partial of a module-level function pickles, so this also works where
    # multiprocessing spawns instead of forking.
    server.serve(target_loader=functools.partial(_load, app_factory))


def _grace_s(settings: Settings) -> int:
    return int(settings.server.shutdown_deadline_s) + 5
