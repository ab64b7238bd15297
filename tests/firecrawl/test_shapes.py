"""/v2 speaks Firecrawl's shapes, errors included; the jobs are Trawl's own."""

from __future__ import annotations

from typing import Any

from tests.conftest import TrawlServer
from tests.site import Site


def assert_firecrawl_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.text
    return body


async def test_errors_are_in_firecrawl_shape(make_server: Any) -> None:
    server: TrawlServer = await make_server(role="web", api_keys=("k",))
    client = server.client
    assert_firecrawl_error(await client.post("/v2/scrape", json={}), 401)
    auth = {"Authorization": "Bearer k"}
    assert_firecrawl_error(await client.get("/v2/nothing", headers=auth), 404)
    assert_firecrawl_error(await client.get("/v2/crawl/nope", headers=auth), 404)
    assert_firecrawl_error(
        await client.post(
            "/v2/crawl", content=b"x", headers={**auth, "content-type": "text/plain"}
        ),
        415,
    )
    body = assert_firecrawl_error(
        await client.post("/v2/crawl", json={"url": "ftp://x/"}, headers=auth), 400
    )
    assert body["details"][0]["field"] == "url"
    body = assert_firecrawl_error(
        await client.post(
            "/v2/scrape", json={"url": "https://x.test/", "formats": ["screenshot"]}, headers=auth
        ),
        400,
    )
    assert "browser" in body["error"]
    # Trawl's own routes keep problem+json.
    response = await client.post("/v1/jobs", json={}, headers=auth)
    assert response.headers["content-type"] == "application/problem+json"


async def test_scrape_timeout_is_a_408(make_server: Any, site: Site) -> None:
    server: TrawlServer = await make_server(role="web")  # no workers: it cannot finish
    response = await server.client.post("/v2/scrape", json={"url": site.url("/"), "timeout": 200})
    body = assert_firecrawl_error(response, 408)
    assert body["job_id"]


async def test_crawl_is_a_trawl_job(trawl: TrawlServer, site: Site) -> None:
    started = await trawl.client.post(
        "/v2/crawl", json={"url": site.url("/"), "limit": 3, "origin": "python-sdk@x"}
    )
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["success"] is True and body["url"].endswith(f"/v2/crawl/{body['id']}")
    job = await trawl.wait_job(body["id"])
    assert job["status"] == "completed" and job["stats"]["pages_fetched"] == 3
    status = (await trawl.client.get(f"/v2/crawl/{body['id']}")).json()
    assert status["status"] == "completed" and status["completed"] == 3
    assert len(status["data"]) == 3 and "next" not in status
    assert all(doc["markdown"] for doc in status["data"])
