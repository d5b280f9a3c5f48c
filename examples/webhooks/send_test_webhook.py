"""Send the forwarder a webhook signed the way HubSpot signs it, to check the set-up end to end.

    python send_test_webhook.py --secret "$HUBSPOT_WEBHOOK_SECRET" --portal-id 12345678 \
        --to http://127.0.0.1:8080/webhooks/hubspot \
        --registered-url https://events.example.com/webhooks/hubspot \
        merge --primary 101 --merged 202

``--to`` is where this script posts; ``--registered-url`` is the URL registered in the HubSpot
app, which HubSpot's v3 signature covers (default: ``--to``). Behind a proxy they differ, and
the forwarder must be told the registered one (``[portals.NAME] webhook_url``).

Prints the status: 204 = verified and applied, 401 = refused (the body says why).
"""

from __future__ import annotations

import argparse
import sys
import time

import httpx

from forwarder.sandbox.webhooks import build


def notification(args: argparse.Namespace) -> dict[str, object]:
    base: dict[str, object] = {
        "eventId": int(time.time() * 1000),
        "subscriptionId": 1,
        "portalId": args.portal_id,
        "appId": args.app_id,
        "occurredAt": int(time.time() * 1000),
        "attemptNumber": 0,
        "changeSource": "CRM",
    }
    if args.kind == "merge":
        return {
            **base,
            "subscriptionType": "contact.merge",
            "objectId": args.primary,
            "primaryObjectId": args.primary,
            "mergedObjectIds": args.merged,
            "newObjectId": args.primary,
        }
    kind = "contact.privacyDeletion" if args.kind == "privacy-deletion" else "contact.deletion"
    return {**base, "subscriptionType": kind, "objectId": args.object_id}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret", required=True, help="the app's client secret")
    parser.add_argument("--portal-id", type=int, required=True)
    parser.add_argument("--app-id", type=int, default=1)
    parser.add_argument("--to", default="http://127.0.0.1:8080/webhooks/hubspot")
    parser.add_argument("--registered-url", help="the URL registered in HubSpot (default: --to)")
    kinds = parser.add_subparsers(dest="kind", required=True)
    merge = kinds.add_parser("merge", help="contact.merge: merged ids become the primary")
    merge.add_argument("--primary", type=int, required=True)
    merge.add_argument("--merged", type=int, nargs="+", required=True)
    for name in ("deletion", "privacy-deletion"):
        deletion = kinds.add_parser(name, help=f"contact.{name}: erase that person")
        deletion.add_argument("--object-id", type=int, required=True)
    args = parser.parse_args(argv)

    signed = build(args.registered_url or args.to, [notification(args)], args.secret)
    response = httpx.post(args.to, content=signed.body.encode(), headers=signed.headers)
    print(response.status_code, response.text)
    return 0 if response.status_code == 204 else 1


if __name__ == "__main__":
    sys.exit(main())
