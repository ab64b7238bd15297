"""Helpers for the API tests: an API-only server and problem+json assertions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import TrawlServer, test_settings

MakeServer = Callable[..., Awaitable[TrawlServer]]

# A target nothing ever fetches: API-only servers have no crawler, and `.invalid` never
# resolves (RFC 2606) should a test hand it to one that has.
SEED = "http://example.invalid/"

# What no response may contain: stack traces, source paths, library internals.
LEAK_MARKERS = ("Traceback", 'File "', ".py", "/work/", "site-packages", "sanic.")


@pytest.fixture
async def api(make_server: MakeServer) -> TrawlServer:
    """A server with no crawl workers (role=web): jobs stay queued, results never come."""
    return await make_server(role="web")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TrawlServer]:
    """One API-only server for a whole module, for tests that only read or add jobs.

    Tests using it run on the module's event loop: `pytest.mark.asyncio(loop_scope="module")`.
    """
    server = TrawlServer(test_settings(tmp_path_factory.mktemp("api"), role="web"))
    await server.start()
    yield server
    await server.stop()


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, Any]:
    """`response` is an RFC 9457 problem with this status (naming `field`, if given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str) and body[key], body
    assert_no_leak(response)
    if field is not None:
        fields = [error["field"] for error in body.get("errors") or []]
        assert field in fields, f"expected an error naming {field!r}, got {body}"
        assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    return body


def assert_no_leak(response: httpx.Response) -> None:
    text = response.text
    for marker in LEAK_MARKERS:
        assert marker not in text, f"{marker!r} leaked in {text[:500]!r}"


async def post_json(server: TrawlServer, body: Any, **headers: str) -> httpx.Response:
    """POST /v1/jobs with `body` serialised exactly as given (no client-side checks)."""
    return await server.client.post(
        "/v1/jobs",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )
