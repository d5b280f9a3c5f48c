"""The served script without a browser: size budget, caching, gzip and the cookie endpoint."""

from __future__ import annotations

import gzip

from litestar.testing import AsyncTestClient

from forwarder.ingest.snippet import (
    BUDGET_GZIP_BYTES,
    COOKIE_NAME,
    SCRIPT_PATH,
    build_script,
    read_source,
    trim,
)


def test_served_script_fits_the_gzip_budget() -> None:
    script = build_script(read_source())

    assert len(script.gzipped) <= BUDGET_GZIP_BYTES, f"{len(script.gzipped)} bytes gzipped"


def test_trim_drops_only_whole_line_comments_indentation_and_blank_lines() -> None:
    source = '/*! banner */\n  // why\n\n  const url = "https://x"; // kept\n'

    assert trim(source) == '/*! banner */\nconst url = "https://x"; // kept\n'


async def test_script_is_gzipped_when_accepted(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    answer = await client.get(SCRIPT_PATH, headers={"Accept-Encoding": "gzip, br"})

    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["vary"] == "Accept-Encoding"
    assert "max-age=" in answer.headers["cache-control"]
    assert answer.content == build_script(read_source()).body  # httpx decoded it


async def test_script_is_plain_when_gzip_is_not_accepted(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    answer = await client.get(SCRIPT_PATH, headers={"Accept-Encoding": "gzip;q=0, identity"})

    assert "content-encoding" not in answer.headers
    assert answer.content == build_script(read_source()).body


async def test_matching_etag_is_answered_not_modified(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    etag = (await client.get(SCRIPT_PATH)).headers["etag"]

    again = await client.get(SCRIPT_PATH, headers={"If-None-Match": f'W/"x", {etag}'})

    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)


async def test_cookie_endpoint_sets_the_id_the_script_sends(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    answer = await client.get(
        "/v1/cookie", params={"id": "anon-12345678"}, headers={"X-Forwarded-Proto": "https"}
    )

    assert answer.json() == {"anonymousId": "anon-12345678"}
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["set-cookie"] == (
        f"{COOKIE_NAME}=anon-12345678; Max-Age=31536000; Path=/; SameSite=Lax; Secure"
    )


async def test_cookie_endpoint_keeps_the_cookie_and_ignores_a_bad_id(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    client.cookies.set(COOKIE_NAME, "from-cookie-1234")

    answer = await client.get("/v1/cookie", params={"id": "<script>", "domain": "a;b"})

    assert answer.json() == {"anonymousId": "from-cookie-1234"}
    assert "Domain" not in answer.headers["set-cookie"]


def test_gzip_is_deterministic() -> None:
    """Replicas must agree on bytes and ETag, or caches keep re-fetching."""
    first, second = build_script(read_source()), build_script(read_source())

    assert (first.gzipped, first.etag) == (second.gzipped, second.etag)
    assert gzip.decompress(first.gzipped) == first.body
