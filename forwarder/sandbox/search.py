"""Contact search: filters, sorts, paging and the documented limits.

The limits are in docs/hubspot-contract.md, "Contacts".
"""

from __future__ import annotations

import re
from datetime import datetime
from fnmatch import fnmatchcase
from functools import partial
from typing import Any

import msgspec

from forwarder.sandbox.contacts import DEFAULT_RETURNED, Contact
from forwarder.sandbox.responses import ApiError, validation_error

MAX_BODY_CHARS = 3000
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_PAGE = 200
MAX_RESULTS = 10_000
QUERY_PROPERTIES = ("email", "firstname", "lastname", "phone", "company", "website")
OPERATORS = frozenset(
    [
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    ]
)


class Filter(msgspec.Struct, rename="camel"):
    property_name: str
    operator: str
    value: str | int | float | bool | None = None
    values: list[str | int | float | bool] | None = None
    high_value: str | int | float | None = None


class FilterGroup(msgspec.Struct):
    filters: list[Filter]


class Sort(msgspec.Struct, rename="camel"):
    property_name: str
    direction: str = "ASCENDING"


class SearchRequest(msgspec.Struct, rename="camel"):
    filter_groups: list[FilterGroup] = msgspec.field(default_factory=list)
    sorts: list[Sort | str] = msgspec.field(default_factory=list)
    query: str | None = None
    properties: list[str] = msgspec.field(default_factory=list)
    limit: int = 10
    after: str | int | None = None


decode_search = msgspec.json.Decoder(SearchRequest).decode


def check_limits(raw_chars: int, request: SearchRequest) -> ApiError | None:
    """The documented 400s: body size, filter counts, page size and the 10,000 cap."""
    if raw_chars > MAX_BODY_CHARS:
        return validation_error("The request body exceeds the maximum of 3000 characters.")
    groups = request.filter_groups
    total = sum(len(group.filters) for group in groups)
    if (
        len(groups) > MAX_GROUPS
        or any(len(group.filters) > MAX_FILTERS_PER_GROUP for group in groups)
        or total > MAX_FILTERS
    ):
        return validation_error(
            "Search supports at most 5 filterGroups with up to 6 filters each and 18 filters in"
            f" total; got {len(groups)} groups and {total} filters"
        )
    for group in groups:
        for item in group.filters:
            if item.operator not in OPERATORS:
                return validation_error(f"Unknown operator '{item.operator}'")
    if not 0 < request.limit <= MAX_PAGE:
        return validation_error("limit must be between 1 and 200")
    after = _after(request)
    if after is None:
        return validation_error("after must be formatted as an integer")
    if after + request.limit > MAX_RESULTS:
        return validation_error("Search results are limited to 10,000; cannot page beyond 10,000")
    return None


def _after(request: SearchRequest) -> int | None:
    if request.after is None or request.after == "":
        return 0
    try:
        return int(request.after)
    except ValueError:
        return None


def run(contacts: list[Contact], request: SearchRequest) -> dict[str, Any]:
    """The 200 body: ``total``, a page of ``results``, ``paging.next.after`` unless last."""
    matched = [c for c in contacts if _matches(c, request)]
    for sort in reversed(request.sorts):
        name, descending = _sort_key(sort)
        matched.sort(key=partial(_sort_value, name), reverse=descending)
    after = _after(request) or 0
    page = matched[after : after + request.limit]
    wanted = request.properties or list(DEFAULT_RETURNED)
    body: dict[str, Any] = {"total": len(matched), "results": [c.to_json(wanted) for c in page]}
    if after + request.limit < len(matched):
        body["paging"] = {"next": {"after": str(after + request.limit)}}
    return body


def _sort_key(sort: Sort | str) -> tuple[str, bool]:
    if isinstance(sort, str):
        return sort.lstrip("-"), sort.startswith("-")
    return sort.property_name, sort.direction.upper() == "DESCENDING"


def _sort_value(name: str, contact: Contact) -> tuple[int, float, str]:
    return _order(_value(contact, name))


def _value(contact: Contact, name: str) -> str | None:
    if name in ("hs_object_id", "id"):
        return contact.id
    if name == "createdate":
        return contact.created_at
    if name == "lastmodifieddate":
        return contact.updated_at
    return contact.properties.get(name)


def _order(value: str | None) -> tuple[int, float, str]:
    number = _number(value)
    return (0 if value is not None else 1, number if number is not None else 0.0, value or "")


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp() * 1000.0
    except ValueError:
        return None


def _matches(contact: Contact, request: SearchRequest) -> bool:
    if request.query and not _query_matches(contact, request.query.lower()):
        return False
    groups = request.filter_groups
    return not groups or any(all(_filter(contact, f) for f in g.filters) for g in groups)


def _query_matches(contact: Contact, query: str) -> bool:
    return (
        any(query in (contact.properties.get(name) or "").lower() for name in QUERY_PROPERTIES)
        or query == contact.id
    )


def _filter(contact: Contact, item: Filter) -> bool:
    value = _value(contact, item.property_name)
    op = item.operator
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if op in ("IN", "NOT_IN"):
        wanted = {_norm(v) for v in item.values or ()}
        return (_norm(value) in wanted) == (op == "IN")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        return _contains_token(value, str(item.value or "")) == (op == "CONTAINS_TOKEN")
    if op in ("EQ", "NEQ"):
        return (_equal(value, item.value)) == (op == "EQ")
    return _compare(value, item)


def _norm(value: object) -> str:
    return str(value).lower() if value is not None else ""


def _equal(value: str | None, wanted: object) -> bool:
    left, right = _number(value), _number(wanted)
    if left is not None and right is not None:
        return left == right
    return _norm(value) == _norm(wanted)


def _compare(value: str | None, item: Filter) -> bool:
    left, right = _number(value), _number(item.value)
    if left is None:
        return False
    if item.operator == "BETWEEN":
        high = _number(item.high_value)
        return right is not None and high is not None and right <= left <= high
    if right is None:
        return False
    return {
        "LT": left < right,
        "LTE": left <= right,
        "GT": left > right,
        "GTE": left >= right,
    }[item.operator]


def _contains_token(value: str | None, token: str) -> bool:
    if value is None or not token:
        return False
    text, token = value.lower(), token.lower()
    if "*" in token:
        return fnmatchcase(text, token) or any(fnmatchcase(t, token) for t in _tokens(text))
    return token == text or token in _tokens(text)


def _tokens(text: str) -> list[str]:
    parts = [p for p in re.split(r"[\s,;]+", text) if p]
    for part in list(parts):
        parts.extend(p for p in re.split(r"[@.\-_]+", part) if p)
        if "@" in part:
            parts.append(part.split("@", 1)[1])
    return parts
