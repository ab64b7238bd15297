"""The OpenAPI document at /docs/openapi.json, as the tools that read it judge it.

openapi-spec-validator must accept it without a warning; openapi-python-client must turn
it into a client with every operation, without a warning, and that client must drive a
real crawl. Every route the app registers must be documented (service/api/openapi.py
says how), except the few non-API routes listed in UNDOCUMENTED.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from service.api.docs import DOCS_CSP
from service.api.openapi import documented_routes
from service.models import JobRequest
from tests.api.conftest import MakeServer, assert_problem
from tests.conftest import TrawlServer, wait_until
from tests.site import Site

# Routes that are not part of the API: the documentation itself and page assets.
# Anything else the app registers must carry an @openapi.operation.
UNDOCUMENTED = frozenset(
    {
        ("/docs", "get"),
        ("/docs/openapi.json", "get"),
        ("/docs/assets/{name}", "get"),
        ("/", "get"),  # the dashboard page
        ("/dashboard/{name}", "get"),  # its assets
    }
)

GENERATOR = "openapi-python-client"


async def live_spec(server: TrawlServer) -> dict[str, Any]:
    response = await server.client.get("/docs/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].removeprefix("#/components/schemas/")]
    return node


async def test_live_spec_validates_without_warnings(api: TrawlServer) -> None:
    spec = await live_spec(api)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate(spec)
    assert spec["openapi"] == "3.1.0"


async def test_every_route_is_documented(api: TrawlServer) -> None:
    spec = await live_spec(api)
    registered = {(uri, method) for uri, method, _, _ in documented_routes(api.app)}
    undocumented = {
        (uri, method)
        for uri, method, _, operation in documented_routes(api.app)
        if operation is None and (uri, method) not in UNDOCUMENTED
    }
    in_spec = {(path, method) for path, method, _ in operations(spec)}

    assert not undocumented, (
        f"routes without @openapi.operation (see service/api/openapi.py): {sorted(undocumented)}"
        "; a route that is not part of the API goes into UNDOCUMENTED in this file"
    )
    assert in_spec == registered - UNDOCUMENTED
    assert not UNDOCUMENTED & in_spec, "an allow-listed route is documented: drop it from the list"


async def test_every_operation_is_complete(api: TrawlServer) -> None:
    """Bodies, responses and problem+json errors everywhere; path parameters required."""
    spec = await live_spec(api)
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))

    for path, method, operation in operations(spec):
        where = f"{method.upper()} {path}"
        assert operation["summary"] and operation["tags"], where
        if method in ("post", "put", "patch"):
            assert operation["requestBody"]["content"], where
        responses = operation["responses"]
        successes = [status for status in responses if status.startswith("2")]
        assert successes, where
        for status in successes:
            assert responses[status]["content"], (where, status)
        # Firecrawl's API (/v2/) answers errors in Firecrawl's shape, Trawl's in RFC 9457.
        error = (
            {"application/json": {"schema": {"$ref": "#/components/schemas/FirecrawlError"}}}
            if path.startswith("/v2/")
            else {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        )
        assert "default" in responses, where
        for status, response in responses.items():
            if status == "default" or int(status) >= 400:
                assert response["content"] == error, (where, status)
        path_params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert path_params == set(path.replace("}", "{").split("{")[1::2]), where
        for param in operation.get("parameters", []):
            assert param["description"], (where, param["name"])
            if param["in"] == "path":
                assert param["required"] is True, (where, param["name"])
        if path.startswith(("/v1/", "/v2/")):
            assert operation["security"] == [{"bearerAuth": []}], where
            assert {"401", "429"} <= set(responses), where

    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        **spec["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }


async def test_job_request_has_examples_and_idempotency_key(api: TrawlServer) -> None:
    spec = await live_spec(api)
    post = spec["paths"]["/v1/jobs"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    headers = {p["name"]: p for p in post["parameters"] if p["in"] == "header"}

    assert len(examples) >= 3
    for name, example in examples.items():
        assert example["summary"], name
        JobRequest.model_validate(example["value"])  # every example is a valid request
    assert headers["Idempotency-Key"]["schema"] == {"type": "string", "maxLength": 255}
    created = post["responses"]["202"]
    assert set(created["headers"]) >= {"Location", "Idempotent-Replayed"}
    assert "Retry-After" in post["responses"]["503"]["headers"]


async def test_secured_operations_are_the_ones_that_ask_for_a_key(
    make_server: MakeServer,
) -> None:
    """What the spec says needs a key is what answers 401 without one, and only that."""
    server = await make_server(role="web", api_keys=("k1",))
    spec = await live_spec(server)
    for path, method, operation in operations(spec):
        url = path.replace("{", "").replace("}", "")  # any value will do for a 401
        response = await server.client.request(method.upper(), url)
        where = f"{method.upper()} {path}"
        if "security" in operation:
            assert response.status_code == 401, (where, response.text)
            expected = "application/json" if path.startswith("/v2/") else "application/problem+json"
            assert response.headers["content-type"] == expected, where
        else:
            assert response.status_code != 401, (where, response.text)


# --------------------------------------------------------------------- generated client


def generate_client(spec: dict[str, Any], tmp_path: Path) -> tuple[Path, str]:
    """Run openapi-python-client on `spec`; the package's directory and the tool's output."""
    executable = shutil.which(GENERATOR) or str(Path(sys.executable).with_name(GENERATOR))
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(spec))
    output = tmp_path / "generated"
    done = subprocess.run(
        [executable, "generate", "--path", str(source), "--output-path", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    return output, log


def import_generated(root: Path) -> ModuleType:
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module("trawl_client")
    finally:
        sys.path.remove(str(root))


@pytest.fixture
def forget_generated() -> Iterator[None]:
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "trawl_client"]:
        del sys.modules[name]


async def test_generated_client_drives_a_crawl(
    make_server: MakeServer, site: Site, tmp_path: Path, forget_generated: None
) -> None:
    server = await make_server(api_keys=("secret-key",))
    spec = await live_spec(server)
    started = time.monotonic()
    root, log = await asyncio.to_thread(generate_client, spec, tmp_path)
    print(f"{GENERATOR}: {time.monotonic() - started:.1f}s\n{log}")
    assert "warning" not in log.lower(), log
    assert "error" not in log.lower(), log

    package = import_generated(root)
    from trawl_client.api.jobs import cancel_job, create_job, get_job, list_jobs
    from trawl_client.api.map_ import map_site
    from trawl_client.api.ops import health
    from trawl_client.api.results import list_results, stream_results
    from trawl_client.api.scrape import scrape
    from trawl_client.models import (
        JobList,
        JobOut,
        JobRequest,
        MapOut,
        MapRequest,
        PageList,
        Problem,
        ScrapeOut,
        ScrapeRequest,
    )
    from trawl_client.models.job_out_status import JobOutStatus
    from trawl_client.models.job_request_formats_item import JobRequestFormatsItem
    from trawl_client.models.scrape_request_formats_item import ScrapeRequestFormatsItem

    generated = {path.stem for path in (root / "trawl_client" / "api").rglob("*.py")}
    assert generated - {"__init__"} == {op["operationId"] for _, _, op in operations(spec)}

    client = package.AuthenticatedClient(base_url=server.base_url, token="secret-key")
    anonymous = package.Client(base_url=server.base_url)
    async with client, anonymous:
        assert (await health.asyncio(client=anonymous)).status == "ok"

        body = JobRequest(
            urls=[site.url("/")],
            max_depth=1,
            formats=[JobRequestFormatsItem.METADATA, JobRequestFormatsItem.LINKS],
        )
        created = await create_job.asyncio_detailed(
            client=client, body=body, idempotency_key="gen-1"
        )
        assert created.status_code == 202, created.content
        job = created.parsed
        assert isinstance(job, JobOut)
        assert created.headers["location"] == f"/v1/jobs/{job.id}"

        async def poll() -> JobOut:
            polled = await get_job.asyncio(job.id, client=client)
            assert isinstance(polled, JobOut)
            return polled

        job = await wait_until(
            poll, lambda j: j.status in (JobOutStatus.COMPLETED, JobOutStatus.FAILED), 60
        )
        assert job.status is JobOutStatus.COMPLETED
        assert job.stats.pages_fetched >= 2

        urls: list[str] = []
        cursor: Any = package.types.UNSET
        while True:
            page = await list_results.asyncio(job.id, client=client, limit=1, cursor=cursor)
            assert isinstance(page, PageList)
            urls += [item.url for item in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(urls) == job.stats.pages_fetched + job.stats.pages_failed
        assert len(urls) == len(set(urls)) and site.url("/") in urls

        streamed = await stream_results.asyncio(job.id, client=client)
        lines = streamed.payload.read().decode().splitlines()
        assert sorted(json.loads(line)["url"] for line in lines) == sorted(urls)

        listing = await list_jobs.asyncio(client=client)
        assert isinstance(listing, JobList) and [j.id for j in listing.items] == [job.id]

        # Cancel: a finished job answers its final status; a running one is cancelled.
        finished = await cancel_job.asyncio(job.id, client=client)
        assert isinstance(finished, JobOut) and finished.status is JobOutStatus.COMPLETED
        slow = await create_job.asyncio(
            client=client, body=JobRequest(urls=[site.url("/slow?delay=3")])
        )
        assert isinstance(slow, JobOut)
        cancelled = await cancel_job.asyncio(slow.id, client=client)
        assert isinstance(cancelled, JobOut) and cancelled.status is JobOutStatus.CANCELLED

        # The synchronous routes: one page now, a site's URLs now.
        scraped = await scrape.asyncio(
            client=client,
            body=ScrapeRequest(
                url=site.url("/p/0"),
                formats=[ScrapeRequestFormatsItem.METADATA, ScrapeRequestFormatsItem.MARKDOWN],
                timeout=30,
            ),
        )
        assert isinstance(scraped, ScrapeOut), scraped
        assert scraped.url == site.url("/p/0") and scraped.status_code == 200
        assert isinstance(scraped.markdown, str) and scraped.markdown and scraped.job_id
        mapped = await map_site.asyncio(
            client=client, body=MapRequest(url=site.url("/"), max_depth=1)
        )
        assert isinstance(mapped, MapOut), mapped
        assert site.url("/p/0") in {link.url for link in mapped.links}

        # Firecrawl's API, under its own tag, through the same client.
        from trawl_client.api.firecrawl import firecrawl_scrape
        from trawl_client.models import FcScrapeRequest, FcScrapeResponse
        from trawl_client.models.fc_scrape_request_formats_item import (
            FcScrapeRequestFormatsItem,
        )

        firecrawled = await firecrawl_scrape.asyncio(
            client=client,
            body=FcScrapeRequest(
                url=site.url("/p/1"), formats=[FcScrapeRequestFormatsItem.MARKDOWN]
            ),
        )
        assert isinstance(firecrawled, FcScrapeResponse), firecrawled
        assert firecrawled.success and isinstance(firecrawled.data.markdown, str)

        # Errors come back as the documented Problem.
        missing = await get_job.asyncio("no-such-job", client=client)
        assert isinstance(missing, Problem) and missing.status == 404
        invalid = await create_job.asyncio(client=client, body=JobRequest(urls=["ftp://x/"]))
        assert isinstance(invalid, Problem) and invalid.status == 422
        assert invalid.errors and invalid.errors[0].field == "urls[0]"
        async with package.AuthenticatedClient(base_url=server.base_url, token="nope") as wrong:
            unauthorised = await get_job.asyncio(job.id, client=wrong)
        assert isinstance(unauthorised, Problem) and unauthorised.status == 401


# --------------------------------------------------------------------------------- /docs


def page_links(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


@pytest.mark.parametrize("path", ["/docs", "/docs/"])
async def test_docs_are_served_offline_under_a_strict_csp(api: TrawlServer, path: str) -> None:
    response = await api.client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert policy == DOCS_CSP
    assert "unsafe" not in policy and "http" not in policy and "*" not in policy
    assert "<script>" not in response.text  # no inline script, no inline handler
    assert not re.search(r"\son[a-z]+\s*=", response.text, re.IGNORECASE)
    links = page_links(response.text)
    assert any(link.endswith("swagger-ui-bundle.js") for link in links)
    types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "app"}
    for link in links:
        assert "//" not in link and ":" not in link, link  # relative: same origin only
        url = httpx.URL(str(response.url)).join(link)
        asset = await api.client.get(url)
        assert asset.status_code == 200, link
        assert asset.headers["content-type"].startswith(types[Path(link).suffix]), link
        assert asset.content, link
        if link.endswith((".js", ".css")):
            assert asset.headers["content-security-policy"] == DOCS_CSP
            assert "max-age=" in asset.headers["cache-control"]
    for name in ("init.js", "swagger-ui.css"):
        text = (await api.client.get(f"/docs/assets/{name}")).text
        assert not re.search(r"(jsdelivr|unpkg|cdnjs|googleapis)", text), name


@pytest.mark.parametrize(
    "path", ["/docs/assets/nope.js", "/docs/assets/README.md", "/docs/assets/..%2Fdocs.py"]
)
async def test_docs_serve_only_their_assets(api: TrawlServer, path: str) -> None:
    assert_problem(await api.client.get(path), 404)


async def test_docs_work_in_a_browser(api: TrawlServer, tmp_path: Path) -> None:
    """Chromium renders every operation with no console error and no foreign request."""
    playwright = pytest.importorskip("playwright.async_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs Debian's chromium")
    spec = await live_spec(api)
    origin = api.base_url
    console: list[str] = []
    requests: list[str] = []
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(f"{origin}/docs")
            await page.wait_for_selector(".opblock", timeout=20_000)
            shown = await page.locator(".opblock").count()
            # "Try it out" on /health: the request runs under the page's CSP.
            await page.click("#operations-ops-health .opblock-summary")
            await page.click("#operations-ops-health .try-out__btn")
            await page.click("#operations-ops-health .execute")
            await page.wait_for_selector("#operations-ops-health .live-responses-table .response")
            answer = await page.locator("#operations-ops-health .live-responses-table").inner_text()
            await page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            await browser.close()

    assert shown == sum(1 for _ in operations(spec))
    assert "200" in answer and '"ok"' in answer
    assert not [message for message in console if not message.startswith(("log", "info"))]
    assert requests and all(url.startswith(origin + "/") for url in requests), requests


# ------------------------------------------------------- real responses match the document


def conforms(spec: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    """`response` is what the document says `method path` answers with its status."""
    operation = spec["paths"][path][method]
    documented = operation["responses"][str(response.status_code)]
    media_type = response.headers["content-type"].split(";")[0]
    schema = documented["content"][media_type]["schema"]
    validator = OAS31Validator({"components": spec["components"], **schema})
    if media_type == "application/x-ndjson":
        bodies = [json.loads(line) for line in response.text.splitlines()]
    else:
        bodies = [response.json()]
    for body in bodies:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (method, path, response.status_code, errors, body)


async def test_real_responses_match_the_document(make_server: MakeServer, site: Site) -> None:
    server = await make_server()
    spec = await live_spec(server)
    every_format = ["metadata", "text", "markdown", "links", "html"]
    created = await server.client.post(
        "/v1/jobs",
        json={
            "url": site.url("/"),
            "max_depth": 1,
            "formats": every_format,
            "selectors": {"heading": "h1", "link": {"css": "a", "attr": "href"}},
        },
    )
    conforms(spec, "/v1/jobs", "post", created)
    job_id = created.json()["id"]
    await server.wait_job(job_id)
    item = "/v1/jobs/{job_id}"
    conforms(spec, item, "get", await server.client.get(f"/v1/jobs/{job_id}"))
    conforms(spec, "/v1/jobs", "get", await server.client.get("/v1/jobs"))
    results = await server.client.get(f"/v1/jobs/{job_id}/results", params={"limit": 1000})
    assert len(results.json()["items"]) >= 2
    conforms(spec, item + "/results", "get", results)
    stream = await server.client.get(f"/v1/jobs/{job_id}/results.ndjson")
    conforms(spec, item + "/results.ndjson", "get", stream)
    # A recrawl: its job (recrawl_of, stats.changes) and results (change, diffs, pages
    # no longer reached) are documented too.
    recrawl = item + "/recrawl"
    again = await server.client.post(
        f"/v1/jobs/{job_id}/recrawl",
        json={"formats": [*every_format, "changes"], "exclude": [".*/p/0$"]},
    )
    conforms(spec, recrawl, "post", again)
    recrawl_id = again.json()["id"]
    await server.wait_job(recrawl_id)
    conforms(spec, item, "get", await server.client.get(f"/v1/jobs/{recrawl_id}"))
    changed = await server.client.get(f"/v1/jobs/{recrawl_id}/results", params={"limit": 1000})
    assert {page["change"] for page in changed.json()["items"]} >= {"removed", "unchanged"}
    conforms(spec, item + "/results", "get", changed)
    conforms(
        spec,
        item + "/results.ndjson",
        "get",
        await server.client.get(f"/v1/jobs/{recrawl_id}/results.ndjson?change=removed"),
    )
    conforms(spec, recrawl, "post", await server.client.post("/v1/jobs/nope/recrawl"))
    conforms(
        spec,
        recrawl,
        "post",
        await server.client.post(recrawl.replace("{job_id}", job_id), json={"max_depth": -1}),
    )
    conforms(spec, item, "delete", await server.client.delete(f"/v1/jobs/{job_id}"))
    conforms(spec, "/health", "get", await server.client.get("/health"))
    scraped = await server.client.post(
        "/v1/scrape", json={"url": site.url("/p/1"), "formats": every_format}
    )
    assert scraped.status_code == 200
    conforms(spec, "/v1/scrape", "post", scraped)
    late = await server.client.post(
        "/v1/scrape", json={"url": site.url("/slow?delay=2"), "timeout": 0.2}
    )
    assert late.status_code == 504 and late.json()["job_id"]
    conforms(spec, "/v1/scrape", "post", late)
    conforms(
        spec, "/v1/map", "post", await server.client.post("/v1/map", json={"url": site.url("/")})
    )
    # Problems, with and without `errors`.
    conforms(spec, item, "get", await server.client.get("/v1/jobs/nope"))
    conforms(spec, "/v1/jobs", "post", await server.client.post("/v1/jobs", json={"urls": []}))
    conforms(spec, "/v1/jobs", "post", await server.client.post("/v1/jobs", content=b"{"))
