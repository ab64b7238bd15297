"""Operational routes: /health, /metrics, /docs and the OpenAPI document; every route."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from service.api.security import SECURITY_HEADERS
from tests.api.conftest import assert_no_leak, assert_problem
from tests.conftest import TrawlServer
from tests.site import Site

METRICS = (
    "trawl_jobs",
    "trawl_pages_total",
    "trawl_fetch_duration_seconds",
    "trawl_queue_depth",
    "trawl_event_loop_lag_seconds",
)


async def test_health(api: TrawlServer) -> None:
    response = await api.client.get("/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


async def test_metrics_after_a_crawl(trawl: TrawlServer, site: Site) -> None:
    job = await trawl.submit({"url": site.url("/"), "max_depth": 1})
    await trawl.wait_job(job["id"])

    response = await trawl.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in METRICS:
        assert re.search(rf"^# TYPE {name} ", text, re.M), f"{name} missing"
    assert re.search(r'^trawl_jobs\{status="completed"\} 1\.0$', text, re.M)
    assert re.search(r'^trawl_pages_total\{outcome="ok"\} [1-9]', text, re.M)
    assert re.search(r"^trawl_fetch_duration_seconds_count [1-9]", text, re.M)
    assert re.search(r"^trawl_event_loop_lag_seconds_count [1-9]", text, re.M)


async def test_docs_ui(api: TrawlServer) -> None:
    response = await api.client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "openapi.json" in response.text


@pytest.fixture
async def spec(api: TrawlServer) -> dict[str, Any]:
    response = await api.client.get("/docs/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name]
    return schema


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


async def test_openapi_documents_every_route(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.")
    operations = {(path, method) for path, item in spec["paths"].items() for method in item}

    assert operations >= {
        ("/v1/jobs", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/{job_id}", "get"),
        ("/v1/jobs/{job_id}", "delete"),
        ("/v1/jobs/{job_id}/results", "get"),
        ("/v1/jobs/{job_id}/results.ndjson", "get"),
        ("/health", "get"),
        ("/metrics", "get"),
    }


async def test_openapi_documents_the_job_request(spec: dict[str, Any]) -> None:
    post = spec["paths"]["/v1/jobs"]["post"]
    body = post["requestBody"]
    assert body["required"] is True
    schema = resolve(spec, body["content"]["application/json"]["schema"])
    properties = schema["properties"]

    assert schema["required"] == ["urls"]
    assert schema["additionalProperties"] is False
    assert set(properties) >= {
        "urls",
        "max_depth",
        "max_pages",
        "scope",
        "include",
        "exclude",
        "formats",
        "selectors",
        "respect_robots",
        "webhook",
    }
    assert properties["urls"]["type"] == "array"
    assert properties["urls"]["minItems"] == 1 and properties["urls"]["maxItems"] == 1000
    assert properties["urls"]["items"]["type"] == "string"
    assert properties["max_depth"] == {**properties["max_depth"], "type": "integer", "minimum": 0}
    assert properties["scope"]["enum"] == ["same-host", "same-domain", "any"]
    # The contract's five, then `changes` (a recrawl's diffs).
    assert properties["formats"]["items"]["enum"] == [
        "metadata",
        "text",
        "markdown",
        "links",
        "html",
        "changes",
    ]
    assert properties["respect_robots"]["type"] == "boolean"
    assert all(prop.get("description") for prop in properties.values())
    webhook_ref, null = properties["webhook"]["anyOf"]
    webhook = resolve(spec, webhook_ref)
    assert null == {"type": "null"}
    assert set(webhook["properties"]) >= {"url", "events"}
    header = {param["name"]: param for param in post["parameters"]}
    assert header["Idempotency-Key"]["in"] == "header"


async def test_openapi_documents_job_and_page_responses(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    created = paths["/v1/jobs"]["post"]["responses"]["202"]["content"]["application/json"]
    job = resolve(spec, created["schema"])
    listing = resolve(
        spec, paths["/v1/jobs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    )
    results = paths["/v1/jobs/{job_id}/results"]["get"]["responses"]["200"]
    pages = resolve(spec, results["content"]["application/json"]["schema"])
    page = resolve(spec, pages["properties"]["items"]["items"])

    assert set(job["properties"]) >= {"id", "status", "created_at", "started_at"}
    assert set(job["properties"]) >= {"finished_at", "request", "stats", "error"}
    assert job["properties"]["status"]["enum"] == [
        "queued",
        "running",
        "completed",
        "failed",
        "cancelled",
    ]
    assert resolve(spec, job["properties"]["request"]) == resolve(
        spec, {"$ref": "#/components/schemas/JobRequest"}
    )
    stats = resolve(spec, job["properties"]["stats"])
    assert set(stats["properties"]) == {
        "pages_discovered",
        "pages_queued",
        "pages_fetched",
        "pages_failed",
        "pages_skipped",
        "changes",  # a recrawl's only (not required)
    }
    assert set(stats["required"]) == set(stats["properties"]) - {"changes"}
    assert set(listing["properties"]) == {"items", "next_cursor"}
    assert set(page["properties"]) >= {
        "url",
        "final_url",
        "depth",
        "status_code",
        "content_type",
        "fetched_at",
        "elapsed_ms",
        "title",
        "text",
        "markdown",
        "links",
        "metadata",
        "data",
        "error",
    }
    not_found = paths["/v1/jobs/{job_id}"]["get"]["responses"]["404"]["content"]
    problem = resolve(spec, not_found["application/problem+json"]["schema"])
    assert set(problem["properties"]) >= {"type", "title", "status", "detail", "errors"}
    limit = {p["name"]: p for p in paths["/v1/jobs/{job_id}/results"]["get"]["parameters"]}
    assert limit["limit"]["schema"]["maximum"] == 1000
    assert limit["outcome"]["schema"]["enum"] == ["ok", "failed", "skipped"]


async def test_openapi_is_openapi_31_with_resolvable_refs(spec: dict[str, Any]) -> None:
    """JSON Schema 2020-12 as 3.1 has it (no 3.0 `nullable`); every $ref resolves."""
    assert spec["openapi"].startswith("3.1.")
    for node in walk(spec):
        if not isinstance(node, dict):
            continue
        assert "nullable" not in node and "$defs" not in node
        if "$ref" in node:
            assert node["$ref"].startswith("#/components/schemas/")
            assert (
                node["$ref"].removeprefix("#/components/schemas/") in spec["components"]["schemas"]
            ), node["$ref"]


async def test_swagger_oauth2_redirect_page_is_not_served(api: TrawlServer) -> None:
    # sanic-ext fetches that page from a CDN, blocking, inside the request.
    calls: list[tuple[Any, ...]] = []
    real = socket.getaddrinfo

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    socket.getaddrinfo = spy
    try:
        response = await api.client.get("/docs/oauth2-redirect.html")
    finally:
        socket.getaddrinfo = real

    assert_problem(response, 404)
    assert not [call for call in calls if "jsdelivr" in str(call[0])]


async def test_no_route_answers_a_server_error(api: TrawlServer) -> None:
    """Every registered route, every method, called bare: never a 5xx, never a leak."""
    job = await api.submit({"url": "http://example.invalid/"})
    paths: set[str] = set()
    for route in api.app.router.routes:
        path = "/" + route.path.lstrip("/")
        path = re.sub(r"<job_id(:[^>]*)?>", job["id"], path)
        path = re.sub(r"<[^>]+>", "x", path)
        paths.add(path)

    for path in sorted(paths):
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            if method == "GET" and path.endswith("/events"):
                # An event stream of a queued job stays open: look at its head only.
                async with api.client.stream(method, path) as streamed:
                    assert streamed.status_code < 500, (method, path)
                continue
            response = await api.client.request(method, path)
            assert response.status_code < 500, (method, path, response.text)
            assert_no_leak(response)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/v3/jobs", 404),
        ("GET", "/v1/jobs/a/b/c", 404),
        ("PUT", "/v1/jobs", 405),
        ("PATCH", "/v1/jobs/x", 405),
        ("POST", "/health", 405),
        ("DELETE", "/metrics", 405),
        ("POST", "/v1/jobs/x/results", 405),
    ],
)
async def test_unknown_routes_and_methods_are_problems(
    api: TrawlServer, method: str, path: str, status: int
) -> None:
    assert_problem(await api.client.request(method, path), status)


async def test_security_headers_on_every_kind_of_response(api: TrawlServer) -> None:
    job = await api.submit({"url": "http://example.invalid/"})
    responses = {
        "json": await api.client.get("/health"),
        "problem": await api.client.get("/v1/jobs/nope"),
        "stream": await api.client.get(f"/v1/jobs/{job['id']}/results.ndjson"),
        "metrics": await api.client.get("/metrics"),
        "docs": await api.client.get("/docs"),
        "no route": await api.client.get("/nowhere"),
    }

    for kind, response in responses.items():
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (kind, name)
    assert "default-src 'none'" in responses["json"].headers["content-security-policy"]
    assert "server" not in {name.lower() for name in responses["json"].headers}
