"""The OpenAPI document's ingest operations, described from the wire types themselves.

The ingest handlers read their bodies through the same capped reader as the fast path
(``IngestService.serve``), so Litestar never sees a ``data`` parameter to describe. Their
request and response bodies are added here, from ``msgspec.json.schema_components`` of the
types ``schemas/`` is generated from, so the document and the published schemas agree.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPI

from forwarder.events.messages import MESSAGE_TYPES, Batch, ErrorResponse, IngestResponse
from forwarder.ingest.routes import INGEST_PATHS
from forwarder.ingest.statuses import STATUS

_REFS = "#/components/schemas/{name}"
_BODY_TYPES: dict[str | None, type[msgspec.Struct]] = {None: Batch}
_BODY_TYPES.update(MESSAGE_TYPES)
_ERROR_STATUSES = sorted(set(STATUS.values()))


def ingest_components() -> dict[str, Any]:
    """JSON Schemas of every ingest request and answer type, by component name."""
    types = [*_BODY_TYPES.values(), IngestResponse, ErrorResponse]
    _, components = msgspec.json.schema_components(types, ref_template=_REFS)
    return components


def describe_ingest(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with each ingest path's request body, answers and their schemas.

    Args:
        document: the OpenAPI document as a dict (Litestar's ``OpenAPI.to_schema()``).

    Raises:
        ValueError: a component name is already used for a different schema.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in ingest_components().items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"OpenAPI component {name!r} is defined twice")
    for path, call_type in INGEST_PATHS.items():
        operation = document.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        operation["requestBody"] = _json(_BODY_TYPES[call_type].__name__, required=True)
        operation["responses"] = {
            "200": _json(
                IngestResponse.__name__,
                description="Events accepted; duplicates and rejected events counted",
            ),
            **{
                str(status): _json(ErrorResponse.__name__, description="Refused; nothing stored")
                for status in _ERROR_STATUSES
            },
        }
    return document


def _json(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "content": {"application/json": {"schema": {"$ref": _REFS.format(name=name)}}},
        **fields,
    }


class _IngestDocument(OpenAPI):
    """Litestar's OpenAPI object, whose rendering adds the ingest bodies."""

    def to_schema(self) -> dict[str, Any]:
        return describe_ingest(super().to_schema())


class IngestOpenAPIConfig(OpenAPIConfig):
    """Litestar's ``OpenAPIConfig`` for an app whose ingest handlers read their own bodies."""

    def to_openapi_schema(self) -> OpenAPI:
        base = super().to_openapi_schema()
        return _IngestDocument(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
