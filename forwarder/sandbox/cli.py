"""``forwarder sandbox``: serve the simulator on a port."""

from __future__ import annotations

import argparse

from forwarder.sandbox.app import create_sandbox_app
from forwarder.sandbox.config import ALL_SCOPES, DEFAULT_TOKEN, SandboxConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's command-line options."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--portal-id", type=int, default=12345678)
    parser.add_argument(
        "--tier",
        choices=["free", "starter", "professional", "enterprise", "oauth"],
        default="professional",
    )
    parser.add_argument("--limit-10s", type=int, default=None, help="default: from --tier")
    parser.add_argument("--daily", type=int, default=None, help="default: from --tier")
    parser.add_argument("--search-rps", type=int, default=5)
    parser.add_argument("--events-rps", type=int, default=1250)
    parser.add_argument("--time-scale", type=float, default=1.0, help="divides every window")
    parser.add_argument(
        "--window-ms",
        type=int,
        default=10_000,
        help="the rolling window of --limit-10s, declared in Interval-Milliseconds",
    )
    parser.add_argument(
        "--compete-share",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="another integration spends this share of every window",
    )
    parser.add_argument(
        "--compete-pattern",
        choices=["reserve", "steady", "random", "bursts"],
        default="steady",
        help="how it spends: held, evenly, at random moments, or in bursts",
    )
    parser.add_argument(
        "--token", action="append", default=[], help=f"extra bearer token (default {DEFAULT_TOKEN})"
    )
    parser.add_argument(
        "--service-key",
        action="append",
        default=[],
        help="a service key granted every scope (the same limits as a private app)",
    )
    parser.add_argument(
        "--unsupported",
        action="append",
        default=[],
        metavar="VERSION",
        help="play HubSpot after this version's sunset (e.g. v3): its paths answer 410",
    )
    parser.add_argument(
        "--require-contact-property",
        action="append",
        default=[],
        metavar="NAME",
        help="a contact property the account requires on creation (enforced from 2026-09)",
    )
    parser.add_argument(
        "--define",
        action="append",
        default=[],
        metavar="NAME[:PROP,PROP]",
        help="seed an event definition with string properties",
    )


def config_from(args: argparse.Namespace) -> SandboxConfig:
    """The ``SandboxConfig`` the options describe."""
    tokens = {DEFAULT_TOKEN: ALL_SCOPES, **dict.fromkeys(args.token, ALL_SCOPES)}
    seeds: dict[str, tuple[str, ...]] = {}
    for spec in args.define:
        name, _, props = spec.partition(":")
        seeds[name] = tuple(p for p in props.split(",") if p)
    return SandboxConfig(
        portal_id=args.portal_id,
        tier=args.tier,
        limit_10s=args.limit_10s,
        daily=args.daily,
        search_rps=args.search_rps,
        events_rps=args.events_rps,
        time_scale=args.time_scale,
        window_ms=args.window_ms,
        tokens=tokens,
        seed_definitions=seeds or None,
        service_keys=dict.fromkeys(args.service_key, ALL_SCOPES),
        unsupported_versions=tuple(args.unsupported),
        required_contact_properties=tuple(args.require_contact_property),
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import uvicorn

    app = create_sandbox_app(config_from(args))
    if args.compete_share:
        app.state.sandbox.compete(window_share=args.compete_share, pattern=args.compete_pattern)
    server = uvicorn.Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    )
    server.run()
    return 0
