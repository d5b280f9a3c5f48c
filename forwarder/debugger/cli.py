"""The admin commands of the CLI: ``forwarder tail|journey|dlq|erase|stats|quality``.

Each talks to a running forwarder's admin API: ``--url`` (default: the config's host and
port), the token from ``--token``, ``FORWARDER_ADMIN_TOKEN`` or the config's
``server.admin_token``. Exit codes: 0 done, 1 the server refused or could not be reached,
3 (``stats``) the conservation check found a drift.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from forwarder.config import load_settings
from forwarder.debugger.quality_text import report_lines

_IDENTIFIERS = (("email", "email"), ("user-id", "userId"), ("anonymous-id", "anonymousId"))


class AdminError(Exception):
    """The admin API refused, failed or could not be reached."""


class AdminClient:
    """A few calls to ``/admin/api``."""

    def __init__(self, url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/") + "/admin/api", headers=headers)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, timeout=30.0, **kwargs)
        except httpx.HTTPError as exc:
            raise AdminError(f"cannot reach the forwarder: {exc}") from exc
        if response.status_code >= 400:
            try:
                reason = response.json().get("error") or response.text
            except ValueError:
                reason = response.text
            raise AdminError(f"{response.status_code}: {reason}")
        return response.json()

    def stream(self, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Events from the SSE stream, forever (reconnecting after the last seen seq)."""
        after: str | None = None
        while True:
            query = {**params, **({"after": after} if after else {})}
            try:
                with self._http.stream("GET", "/events/stream", params=query, timeout=None) as r:
                    if r.status_code >= 400:
                        r.read()
                        raise AdminError(f"{r.status_code}: {r.text}")
                    for line in r.iter_lines():
                        if line.startswith("id:"):
                            after = line[3:].strip()
                        elif line.startswith("data:") and line[5:].strip():
                            yield json.loads(line[5:])
            except httpx.HTTPError as exc:
                raise AdminError(f"stream interrupted: {exc}") from exc


def add_arguments(commands: Any) -> None:
    """Add the admin subcommands to the CLI's subparsers."""

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help_)
        sub.add_argument("--config", help="TOML file (as for serve): host, port, admin token")
        sub.add_argument("--url", help="forwarder base URL (default: from the config)")
        sub.add_argument("--token", help="admin token (default: $FORWARDER_ADMIN_TOKEN or config)")
        sub.add_argument("--json", action="store_true", help="print the API's JSON")
        return sub

    tail = command("tail", "print events as they arrive (live)")
    for name in ("source", "type", "name", "status", "portal"):
        tail.add_argument(f"--{name}", help=f"only events with this {name}")
    tail.set_defaults(run=run, admin=_tail)

    journey = command("journey", "a person's events, touches and attribution")
    _identifier_arguments(journey)
    journey.set_defaults(run=run, admin=_journey)

    erase = command("erase", "erase a person (GDPR): identifiers, held and queued events")
    _identifier_arguments(erase)
    erase.set_defaults(run=run, admin=_erase)

    stats = command("stats", "item counts per queue and the conservation check")
    stats.set_defaults(run=run, admin=_stats)

    quality = command("quality", "attribution quality per event type, with a 0-10 score")
    quality.add_argument("--window", choices=("hour", "day", "week"), default="day")
    quality.set_defaults(run=run, admin=_quality)

    dlq = command("dlq", "dead letters: list, show, replay, purge")
    dlq.add_argument("action", choices=("list", "show", "replay", "purge"))
    dlq.add_argument("ids", nargs="*", type=int, help="item ids (show takes one)")
    dlq.add_argument("--all", action="store_true", help="replay or purge every dead letter")
    dlq.add_argument("--portal", help="only this portal's dead letters")
    dlq.set_defaults(run=run, admin=_dlq)


def _identifier_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    for flag, _ in _IDENTIFIERS:
        group.add_argument(f"--{flag}")
    group.add_argument("--utk")
    parser.add_argument("--portal", help="only this portal (default: every portal)")


def _identifier(args: argparse.Namespace) -> dict[str, str]:
    for flag, field in (*_IDENTIFIERS, ("utk", "utk")):
        value = getattr(args, flag.replace("-", "_"))
        if value:
            return {field: value}
    raise AdminError("give --email, --user-id, --anonymous-id or --utk")


def client_for(args: argparse.Namespace) -> AdminClient:
    """The admin client from ``--url``/``--token``, the environment and the config."""
    settings = load_settings(args.config)
    host = settings.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104  # a bind-all address
    url = args.url or f"http://{host}:{settings.server.port}"
    token = args.token or os.environ.get("FORWARDER_ADMIN_TOKEN")
    if not token and settings.server.admin_token is not None:
        token = settings.server.admin_token.reveal()
    return AdminClient(url, token)


def _out(args: argparse.Namespace, body: Any, text: str) -> None:
    print(json.dumps(body, indent=2) if args.json else text, flush=True)


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def event_line(e: dict[str, Any]) -> str:
    """One live event as a terminal line."""
    test = " [test]" if e.get("test") else ""
    return (
        f"{_time(e['receivedAt'])} #{e['seq']} {e['type']:<8} {e.get('name') or '-'}{test} "
        f"{e['source']}->{e['portal']} {e.get('identity') or '(no identity)'} {e['status']}"
    )


def _tail(args: argparse.Namespace) -> int:
    client = client_for(args)
    params = {
        k: v for k in ("source", "type", "name", "status", "portal") if (v := getattr(args, k))
    }
    try:
        for event in client.stream(params):
            print(json.dumps(event) if args.json else event_line(event), flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


def touch_line(touch: dict[str, Any]) -> str:
    """``google/cpc/spring gclid=G-1``: a touch's campaign and click ids."""
    campaign = "/".join(touch.get(f) or "" for f in ("source", "medium", "name"))
    clicks = ",".join(f"{k}={v}" for k, v in (touch.get("clickIds") or {}).items())
    return f"{campaign} {clicks}".rstrip()


def touch_origin(touch: dict[str, Any]) -> str:
    """Where a remembered touch was learned: event, device, source, when."""
    what = f"from {touch.get('eventType')} event {touch.get('messageId')}"
    if touch.get("device"):
        what += f" on device {touch['device']}"
    if touch.get("sender"):
        what += f" (source {touch['sender']})"
    return f"{what} at {touch.get('timestamp')}"


def _journey(args: argparse.Namespace) -> int:
    params = {**_identifier(args), **({"portal": args.portal} if args.portal else {})}
    body = client_for(args).call("GET", "/journey", params=params)
    lines = ["identifiers: " + ", ".join(f"{i['kind']}={i['value']}" for i in body["identifiers"])]
    for label, key in (("first touch", "firstTouch"), ("last touch", "lastTouch")):
        touch = body.get(key)
        if touch:
            lines.append(f"{label}: {touch_line(touch)}")
            if touch.get("messageId"):
                lines.append(f"    {touch_origin(touch)}")
    for step in body["steps"]:
        verdict = ""
        if step["conversion"]:
            verdict = " ATTRIBUTED" if step["attributed"] else " NOT ATTRIBUTED"
        when = step.get("timestamp") or _time(step["receivedAt"])
        lines.append(f"{when} #{step['seq']} {step['type']} {step.get('name') or '-'}{verdict}")
        if step.get("reason"):
            lines.append(f"    {step['reason']}")
        for which in ("first", "last"):
            used = (step.get("attribution") or {}).get(which)
            if used:
                lines.append(f"    {which} touch: {touch_line(used['touch'])} ({used['why']})")
        lines += [f"    {note}" for note in (step.get("attribution") or {}).get("notes", [])]
    if not body["steps"]:
        lines.append("no events of this person were found")
    _out(args, body, "\n".join(lines))
    return 0


def _erase(args: argparse.Namespace) -> int:
    payload = {**_identifier(args), **({"portal": args.portal} if args.portal else {})}
    body = client_for(args).call("POST", "/erase", json=payload)
    text = "\n".join(
        f"{e['portal']}: erased {e['identifiers']} identifiers, {e['events']} events, "
        f"{e['items']} queued items"
        for e in body["erased"]
    )
    _out(args, body, text)
    return 0


def _stats(args: argparse.Namespace) -> int:
    body = client_for(args).call("GET", "/stats")
    lines = []
    for queue in body["queues"]:
        counts = " ".join(f"{k}={v}" for k, v in sorted(queue["counts"].items()))
        lines.append(f"{queue['portal']}/{queue['destination']}: {counts}")
    c = body["conservation"]
    verdict = "ok" if c["ok"] else f"DRIFT {c['drift']}"
    lines.append(f"conservation: accepted {c['accepted']} = final {c['final']} + open {c['open']}")
    lines.append(f"conservation: {verdict}")
    _out(args, body, "\n".join(lines))
    return 0 if c["ok"] else 3


def _quality(args: argparse.Namespace) -> int:
    body = client_for(args).call("GET", "/quality", params={"window": args.window})
    _out(args, body, "\n".join(report_lines(body)))
    return 0


def dead_letter_line(d: dict[str, Any]) -> str:
    """``12 main/conversions Signed Up: 400: bad [VALIDATION_ERROR] (correlationId c-1)``."""
    line = f"{d['id']} {d['portal']}/{d['destination']} {d.get('name') or '-'}: {d['reason']}"
    if d.get("category"):
        line += f" [{d['category']}]"
    if d.get("correlationId"):
        line += f" (correlationId {d['correlationId']})"
    return line


def _dlq(args: argparse.Namespace) -> int:
    client = client_for(args)
    portal = {"portal": args.portal} if args.portal else {}
    match args.action:
        case "list":
            body = client.call("GET", "/dead-letters", params={**portal, "limit": 10_000})
            text = "\n".join(dead_letter_line(d) for d in body)
            _out(args, body, text or "no dead letters")
        case "show":
            if len(args.ids) != 1:
                raise AdminError("dlq show takes one item id")
            body = client.call("GET", f"/dead-letters/{args.ids[0]}")
            _out(args, body, json.dumps(body, indent=2))
        case "replay" | "purge":
            if not args.ids and not args.all:
                raise AdminError(f"dlq {args.action} needs item ids or --all")
            request = {"ids": args.ids, "all": args.all, **portal}
            body = client.call("POST", f"/dead-letters/{args.action}", json=request)
            done = "replayed" if args.action == "replay" else "purged"
            _out(args, body, f"{done} {body['moved']} dead letters")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one admin command; refusals and connection errors become exit code 1."""
    try:
        code: int = args.admin(args)
    except AdminError as exc:
        print(f"forwarder {args.command}: {exc}", file=sys.stderr)
        return 1
    return code
