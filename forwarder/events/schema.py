"""Generate the published JSON Schemas of the ingest API from the wire structs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from forwarder.events.messages import (
    Alias,
    Batch,
    ErrorResponse,
    Group,
    Identify,
    IngestResponse,
    Message,
    Page,
    Screen,
    Track,
)

DOCUMENTS: dict[str, Any] = {
    "track": Track,
    "identify": Identify,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
    "message": Message,
    "batch": Batch,
    "ingest-response": IngestResponse,
    "error-response": ErrorResponse,
}


def render(name: str) -> bytes:
    """The schema document for one published type, as stable, pretty JSON."""
    schema = msgspec.json.schema(DOCUMENTS[name])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://github.com/hubspot-forwarder/schemas/{name}.json"
    return msgspec.json.format(msgspec.json.encode(schema, order="sorted"), indent=2) + b"\n"


def write_schemas(out: Path) -> list[Path]:
    """Write every document into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DOCUMENTS:
        path = out / f"{name}.schema.json"
        path.write_bytes(render(name))
        paths.append(path)
    return paths
