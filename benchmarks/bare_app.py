"""The baseline: a bare Litestar + msgspec endpoint that only decodes the body and answers.

It has the forwarder's paths and server settings (one worker, uvloop + httptools, access log
off) so ``ingest.py`` can compare the real forwarder against it side by side::

    python benchmarks/bare_app.py --port 8091                    # uvicorn
    python benchmarks/bare_app.py --port 8091 --server granian   # granian, ASGI, uvloop
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, post

_decode = msgspec.json.Decoder().decode
_OK = b'{"success":true}'


@post(["/v1/track", "/v1/batch"], status_code=200)
async def ingest(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Decode the body (msgspec, untyped) and answer success."""
    _decode(await request.body())
    return Response(_OK, media_type="application/json")


app = Litestar(route_handlers=[ingest], debug=False, openapi_config=None)


def main() -> None:
    """Serve ``app`` with the forwarder's server settings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    args = parser.parse_args()
    if args.server == "granian":
        from granian import Granian

        Granian(
            "bare_app:app",
            address=args.host,
            port=args.port,
            interface="asgi",
            loop="uvloop",
            workers=1,
            log_access=False,
            log_level="warning",
            working_dir=Path(__file__).resolve().parent,
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
