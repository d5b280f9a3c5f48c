"""The HubSpot simulator with this example's custom contact properties, on a port.

    python sandbox.py [--port 8090]

Like a real portal, the simulator refuses contact properties that do not exist (400
``PROPERTY_DOESNT_EXIST``). The sandbox built into ``forwarder serve`` (``base_url = "sandbox"``)
knows only HubSpot's default contact properties, and ``forwarder sandbox`` has no option to add
one, so this script starts the simulator with ``lead_score`` and ``lead_score_band`` defined: the
local stand-in for creating them in HubSpot (Settings > Properties > Contact properties).
Inspect it at ``http://127.0.0.1:8090/_sandbox/contacts``.
"""

from __future__ import annotations

import argparse

import uvicorn

from forwarder.sandbox import SandboxConfig, create_sandbox_app

PROPERTIES = ("lead_score", "lead_score_band")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--portal-id", type=int, default=12345678)
    args = parser.parse_args()
    app = create_sandbox_app(SandboxConfig(portal_id=args.portal_id, contact_properties=PROPERTIES))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
