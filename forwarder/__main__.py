"""Command line: ``forwarder serve|check|migrate|alerts|quality|...`` (``python -m forwarder``)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from forwarder.errors import ConfigError, StoreVersionError

if TYPE_CHECKING:
    from forwarder.config import Settings


def _serve(args: argparse.Namespace) -> int:
    import functools

    import msgspec

    from forwarder.app import create_app
    from forwarder.config import (
        Secret,
        development_key,
        load_settings,
        portal_uses_sandbox,
        secrets_of,
        validate_delivery_processes,
    )
    from forwarder.extras import require_extras
    from forwarder.serving import run_server
    from forwarder.telemetry import Redactor, configure_logging, get_logger

    settings = load_settings(args.config)
    if args.delivery_workers is not None:
        server = msgspec.structs.replace(settings.server, delivery_processes=args.delivery_workers)
        settings = msgspec.structs.replace(settings, server=server)
        validate_delivery_processes(settings)
    require_extras(settings)
    _refuse_newer_store(settings)
    if settings.sandbox_mode:
        key = development_key(settings.storage.url)
        source = msgspec.structs.replace(settings.sources[0], write_key=Secret(key))
        settings = msgspec.structs.replace(settings, sources=(source,))
    configure_logging(Redactor(secrets_of(settings)), fmt=settings.server.log_format)
    log = get_logger("serve")
    sandboxed = [n for n, p in settings.portals.items() if portal_uses_sandbox(p)]
    if sandboxed:
        log.warning(
            "sandbox_mode_active",
            portals=sandboxed,
            message="SANDBOX MODE: deliveries of these portals go to the built-in HubSpot "
            "simulator, not to HubSpot",
        )
    if settings.sandbox_mode:
        # Printed, not logged: the log redacts it. This is a development key on loopback.
        print(
            f"development write key: {settings.sources[0].write_key.reveal()}\n"
            f"  try: curl -u {settings.sources[0].write_key.reveal()}: "
            f"http://{settings.server.host}:{settings.server.port}/v1/track "
            "-H 'content-type: application/json' "
            """-d '{"userId":"u1","event":"Signed Up","context":{"traits":"""
            """{"email":"u1@example.com"}}}'\n"""
            f"  then see it arrive: http://{settings.server.host}:{settings.server.port}"
            "/sandbox/_sandbox/events  (debugger: /debugger)",
            file=sys.stderr,
            flush=True,
        )
    log.info(
        "server_starting",
        server=settings.server.server,
        host=settings.server.host,
        port=settings.server.port,
        storage=settings.storage.url.split("@")[-1],
    )
    command = [sys.executable, "-m", "forwarder", "deliver"]
    if args.config:
        command += ["--config", str(Path(args.config).resolve())]
    run_server(functools.partial(create_app, settings, delivery_command=command), settings)
    return 0


def _deliver(args: argparse.Namespace) -> int:
    import signal

    # A SIGTERM while starting up must still end in a clean stop, not the default kill.
    signal.signal(signal.SIGTERM, _stop_requested)

    from forwarder import heap
    from forwarder.config import load_settings, secrets_of
    from forwarder.deliver import run
    from forwarder.extras import require_extras
    from forwarder.telemetry import Redactor, configure_logging

    settings = load_settings(args.config)
    require_extras(settings)
    configure_logging(Redactor(secrets_of(settings)), fmt=settings.server.log_format)
    heap.settle()
    return run(settings, stop_requested=lambda: bool(_STOP_REQUESTED))


def _refuse_newer_store(settings: Settings) -> None:
    """Stop before serving when the store was written by a newer release (one line, exit 2).

    Opening the store migrates it forward anyway; this only moves the refusal of a newer store
    out of the server's start-up, where it would surface as a lifespan traceback.
    """
    import asyncio

    from forwarder.errors import StorageUnavailableError
    from forwarder.storage import plan_migrations

    # Unreachable now (Redis restarting): the server's own start-up deals with that.
    with contextlib.suppress(StorageUnavailableError):
        asyncio.run(plan_migrations(settings.storage))


def _migrate(args: argparse.Namespace) -> int:
    import asyncio

    from forwarder.config import load_settings
    from forwarder.errors import StorageUnavailableError
    from forwarder.storage import plan_migrations

    settings = load_settings(args.config)
    try:
        plan = asyncio.run(plan_migrations(settings.storage, apply=not args.check))
    except StorageUnavailableError as exc:
        print(f"forwarder: {exc}", file=sys.stderr)
        return 2
    print(f"store: {plan.store}")
    if plan.found is None:
        now = "none yet (created at first start)"
    elif plan.found == 0:
        now = "0 (written by 0.1.0, before schema versions)"
    else:
        now = str(plan.found)
    print(f"schema version: {now}; this release: {plan.latest}")
    if not plan.steps:
        print("up to date: nothing to migrate")
        return 0
    print("would apply:" if args.check else "applied:")
    for version, summary in plan.steps:
        print(f"  {version:>3}  {summary}")
    return 1 if args.check else 0


def _check(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from forwarder.config import load_settings, secrets_of
    from forwarder.preflight.items import passed, render
    from forwarder.preflight.run import check_portals
    from forwarder.sandbox import DEFAULT_TOKEN
    from forwarder.sandboxes import sandboxes_for, transports_of
    from forwarder.telemetry import Redactor, configure_logging

    settings = load_settings(args.config)
    # The report is the output; only warnings and errors are logged (secrets redacted).
    configure_logging(Redactor(secrets_of(settings)), fmt="console", level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.portal is not None and args.portal not in settings.portals:
        raise ConfigError("--portal", f"no [portals.{args.portal}] is configured")
    # A sandbox portal is checked against a fresh simulator made from its config, as
    # ``serve`` would make it: it shows what the config asks of HubSpot.
    transports = transports_of(sandboxes_for(settings))
    items = asyncio.run(
        check_portals(
            settings,
            transports=transports,
            create_missing=args.create_missing,
            sandbox_token=DEFAULT_TOKEN,
            only=args.portal,
        )
    )
    print(render(items))
    return 0 if passed(items) else 1


def _schemas(args: argparse.Namespace) -> int:
    from forwarder.events.schema import write_schemas

    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def _config_reference(args: argparse.Namespace) -> int:
    from forwarder.docs import run

    return run(args)


def _sandbox(args: argparse.Namespace) -> int:
    from forwarder.sandbox.cli import run

    code: int = run(args)
    return code


_STOP_REQUESTED: list[int] = []


def _stop_requested(signum: int, frame: object) -> None:
    _STOP_REQUESTED.append(signum)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(prog="forwarder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the ingest server and delivery workers")
    serve.add_argument("--config", help="TOML file (default: $FORWARDER_CONFIG or zero-config)")
    serve.add_argument(
        "--delivery-workers",
        type=int,
        metavar="N",
        help="deliver in N child processes, so ingest never waits on delivery's CPU "
        "(0: in this process; default: server.delivery_processes)",
    )
    serve.set_defaults(run=_serve)

    deliver = commands.add_parser(
        "deliver",
        help="run only the delivery workers on the store (what serve --delivery-workers starts)",
    )
    deliver.add_argument("--config", help="TOML file (default: $FORWARDER_CONFIG or zero-config)")
    deliver.set_defaults(run=_deliver)

    migrate = commands.add_parser(
        "migrate", help="bring the store's schema up to this release (also done at start)"
    )
    migrate.add_argument("--config", help="TOML file (default: $FORWARDER_CONFIG or zero-config)")
    migrate.add_argument(
        "--check",
        action="store_true",
        help="only print what would change (read-only); exit 1 when something would",
    )
    migrate.set_defaults(run=_migrate)

    check = commands.add_parser(
        "check",
        help="preflight: verify credential, scopes, definitions and properties for each portal",
    )
    check.add_argument("--config", help="TOML file (default: $FORWARDER_CONFIG or zero-config)")
    check.add_argument("--portal", help="check only this [portals.NAME]")
    check.add_argument(
        "--create-missing",
        action="store_true",
        help="create missing custom event definitions and event properties (otherwise read-only)",
    )
    check.set_defaults(run=_check)

    schemas = commands.add_parser("schemas", help="write the ingest API's JSON Schemas")
    schemas.add_argument("--out", default="schemas", help="directory (default: schemas)")
    schemas.set_defaults(run=_schemas)

    reference = commands.add_parser(
        "config-reference", help="write docs/configuration.md from the settings' docstrings"
    )
    from forwarder.docs import add_arguments as add_reference_arguments

    add_reference_arguments(reference)
    reference.set_defaults(run=_config_reference)

    sandbox = commands.add_parser("sandbox", help="run the HubSpot simulator standalone")
    try:
        from forwarder.sandbox.cli import add_arguments
    except ImportError:  # pragma: no cover - the sandbox ships with the package
        pass
    else:
        add_arguments(sandbox)
    sandbox.set_defaults(run=_sandbox)

    from forwarder.alerts.cli import add_arguments as add_alert_commands

    add_alert_commands(commands)  # alerts test
    from forwarder.debugger.cli import add_arguments as add_admin_commands

    add_admin_commands(commands)  # tail, journey, dlq, erase, stats: the running server's admin API
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forwarder`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (ConfigError, StoreVersionError) as exc:
        print(f"forwarder: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
