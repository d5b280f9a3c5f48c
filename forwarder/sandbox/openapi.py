"""HubSpot's own OpenAPI specs, enforced on every request body the sandbox receives.

The spec files in ``specs/`` are HubSpot's, copied unchanged from its public spec collection by
``scripts/refresh-hubspot-specs`` (``specs/manifest.json`` says which files and from which
commit). The route table is built from the specs' own ``paths``: a request is matched by method
and concrete path against every operation of every file, so a new API version is a new row in
the manifest, not new code here. A body the matching operation's request schema refuses gets
HubSpot's ``400 VALIDATION_ERROR`` before the simulator's own checks run, so every test that
talks to the sandbox also shows that what it sent conforms to HubSpot's published contract.

Schemas are compiled once per process (``load`` is cached), with ``jsonschema-rs``: OpenAPI 3.0
schemas are JSON Schema draft 4 plus a few keywords, of which only ``nullable`` changes what
validates; it is rewritten into a draft-4 type union when the file is loaded.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema_rs
import msgspec

from forwarder.sandbox.responses import ApiError, validation_error

SPECS_DIR = Path(__file__).parent / "specs"
METHODS = ("get", "put", "post", "delete", "patch")
MAX_REPORTED = 10
"""Schema errors listed in one answer's ``errors[]`` (a 500-input batch could have thousands)."""
CODES = {"Required": "REQUIRED", "Type": "INVALID_TYPE", "Enum": "INVALID_OPTION"}
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Operation:
    """One ``method path`` of the specs, with its request body's validators (if it takes one)."""

    method: str
    template: str
    segments: tuple[str | None, ...]
    """Literal path segments; ``None`` where the template has a ``{parameter}``."""
    sources: tuple[str, ...]
    """Spec files that define it (the same route may appear in two files: both must pass)."""
    schema_name: str
    media_type: str | None
    body_required: bool
    validators: tuple[jsonschema_rs.Validator, ...]

    def matches(self, parts: list[str]) -> bool:
        """True when the concrete path ``parts`` fits this template."""
        return all(
            want is None or want == got for want, got in zip(self.segments, parts, strict=True)
        )

    @property
    def specificity(self) -> int:
        """Literal segments: ``.../contacts/search`` wins over ``.../{objectType}/{objectId}``."""
        return sum(s is not None for s in self.segments)


class SpecBook:
    """Every operation of the shipped specs, found by method and concrete path."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self._table: dict[tuple[str, int], list[Operation]] = {}
        for op in operations:
            self._table.setdefault((op.method, len(op.segments)), []).append(op)
        for candidates in self._table.values():
            candidates.sort(key=lambda op: op.specificity, reverse=True)

    def __iter__(self) -> Iterator[Operation]:
        for candidates in self._table.values():
            yield from candidates

    def find(self, method: str, path: str) -> Operation | None:
        """The operation serving ``method path``, or None when no spec defines it."""
        parts = path.strip("/").split("/")
        for op in self._table.get((method.upper(), len(parts)), ()):
            if op.matches(parts):
                return op
        return None

    def check(self, method: str, path: str, body: bytes) -> ApiError | None:
        """HubSpot's 400 when the spec refuses ``body``; None when it conforms or is unspecified.

        A body that is not JSON at all is left to the route's own decoding, which answers it
        with the message HubSpot gives for unparseable input.
        """
        op = self.find(method, path)
        if op is None or op.media_type is None:
            return None
        if not body:
            if not op.body_required:
                return None
            return validation_error(f"Invalid input: {op.method} {op.template} needs a body")
        instance = _decode(body, op.media_type)
        if instance is _UNREADABLE:
            return None
        found = [e for v in op.validators for e in _first(v.iter_errors(instance))]
        return _refusal(op, found) if found else None


_UNREADABLE = object()


def _decode(body: bytes, media_type: str) -> object:
    if media_type == FORM:
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return _UNREADABLE


def _first(errors: Iterator[jsonschema_rs.ValidationError]) -> list[jsonschema_rs.ValidationError]:
    out: list[jsonschema_rs.ValidationError] = []
    for error in errors:
        out.append(error)
        if len(out) == MAX_REPORTED:
            break
    return out


def _refusal(op: Operation, errors: list[jsonschema_rs.ValidationError]) -> ApiError:
    details: list[dict[str, Any]] = []
    for error in errors:  # two files defining one route report the same problem twice
        item = _detail(error)
        if item not in details and len(details) < MAX_REPORTED:
            details.append(item)
    first = errors[0]
    where = _pointer(first.instance_path) or "/"
    message = (
        f"Invalid input JSON: {op.schema_name} at {where}: {first.message}"
        f" ({op.method} {op.template}, HubSpot spec {', '.join(op.sources)})"
    )
    return validation_error(message, details)


def _detail(error: jsonschema_rs.ValidationError) -> dict[str, Any]:
    schema_path = [str(p) for p in error.schema_path]
    kind = schema_path[-1] if schema_path else ""
    owner = schema_path[2] if schema_path[:2] == ["components", "schemas"] else None
    out: dict[str, Any] = {
        "message": error.message,
        "code": CODES.get(type(error.kind).__name__, "INVALID_INPUT"),
        "in": _pointer(error.instance_path) or "/",
    }
    if owner is not None:
        out["context"] = {"schema": [owner], "keyword": [kind]}
    return out


def _pointer(path: Iterable[str | int]) -> str:
    return "".join(f"/{p}" for p in path)


# -- loading ---------------------------------------------------------------------------------


@functools.cache
def load(directory: Path = SPECS_DIR) -> SpecBook:
    """Read ``manifest.json`` and every spec it lists; compile each request schema once."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    merged: dict[tuple[str, str], Operation] = {}
    for name in manifest["files"]:
        document = json.loads((directory / name).read_text(encoding="utf-8"))
        for op in _operations(name, document):
            key = (op.method, op.template)
            if (seen := merged.get(key)) is not None:
                op = _merge(seen, op)
            merged[key] = op
    return SpecBook(merged.values())


def _operations(source: str, document: dict[str, Any]) -> Iterator[Operation]:
    components = _allow_null(document.get("components", {}))
    for template, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield _operation(source, template, method.upper(), item[method], components)


def _operation(
    source: str, template: str, method: str, spec: dict[str, Any], components: dict[str, Any]
) -> Operation:
    segments = tuple(
        None if part.startswith("{") else part for part in template.strip("/").split("/")
    )
    body = spec.get("requestBody")
    if body is None:
        return Operation(method, template, segments, (source,), "", None, False, ())
    media_type, content = next(iter(body["content"].items()))
    schema = content.get("schema", {})
    ref = schema.get("$ref", "")
    schema_name = ref.rsplit("/", 1)[-1] if ref else "request body"
    validator = jsonschema_rs.Draft4Validator(
        {**schema, "components": components}, validate_formats=True
    )
    required = bool(body.get("required", False))
    return Operation(
        method, template, segments, (source,), schema_name, media_type, required, (validator,)
    )


def _merge(first: Operation, second: Operation) -> Operation:
    """The same route in two files: a body must satisfy both (the stricter reading wins)."""
    return Operation(
        first.method,
        first.template,
        first.segments,
        first.sources + second.sources,
        first.schema_name or second.schema_name,
        first.media_type or second.media_type,
        first.body_required or second.body_required,
        first.validators + second.validators,
    )


def _allow_null(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as draft 4 says it: ``type: [t, "null"]``."""
    if isinstance(node, dict):
        out = {k: _allow_null(v) for k, v in node.items()}
        if out.get("nullable") is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_allow_null(v) for v in node]
    return node
