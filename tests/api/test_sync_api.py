"""POST /v1/scrape and POST /v1/map against the local site."""

from __future__ import annotations

import threading
import time

from tests.api.conftest import assert_problem
from tests.conftest import TrawlServer
from tests.site import Response, Site, SiteHandler


async def test_scrape_answers_with_the_page_and_lists_the_job(
    trawl: TrawlServer, site: Site
) -> None:
    response = await trawl.client.post(
        "/v1/scrape", json={"url": site.url("/p/1"), "formats": ["markdown", "metadata"]}
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["url"] == site.url("/p/1")
    assert page["status_code"] == 200 and page["error"] is None
    assert page["title"] == "Page 1"
    assert "Page 1" in page["markdown"]
    job = await trawl.job(page["job_id"])
    assert job["status"] == "completed"
    assert job["request"]["max_depth"] == 0 and job["request"]["max_pages"] == 1
    assert response.headers["location"] == f"/v1/jobs/{page['job_id']}"
    listed = (await trawl.client.get("/v1/jobs")).json()["items"]
    assert page["job_id"] in [item["id"] for item in listed]


async def test_scrape_is_woken_by_the_engine_not_by_polling(trawl: TrawlServer, site: Site) -> None:
    # The safety-net poll runs every 2 s; a page served in well under that proves the
    # engine's completion signal woke the request.
    started = time.monotonic()
    response = await trawl.client.post("/v1/scrape", json={"url": site.url("/p/2")})
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 1.5
    assert trawl.app.ctx.completions.waiting == 0


async def test_scrape_failure_is_a_page_with_an_error(trawl: TrawlServer, site: Site) -> None:
    response = await trawl.client.post("/v1/scrape", json={"url": site.url("/status/404")})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["status_code"] == 404
    assert page["error"]["code"] == "http_error"


async def test_scrape_timeout_is_a_504_naming_the_running_job(
    trawl: TrawlServer, site: Site
) -> None:
    release = threading.Event()

    def slow(handler: SiteHandler) -> Response:
        release.wait(8)  # the site's own thread
        return Response(body=b"<html><title>late</title></html>")

    site.route("/late", slow)
    response = await trawl.client.post(
        "/v1/scrape", json={"url": site.url("/late"), "timeout": 0.5}
    )
    body = assert_problem(response, 504)
    job = await trawl.job(body["job_id"])
    assert job["status"] in {"queued", "running"}
    release.set()
    done = await trawl.wait_job(body["job_id"])
    assert done["status"] == "completed"


async def test_scrape_validation(trawl: TrawlServer, site: Site) -> None:
    client = trawl.client
    assert_problem(await client.post("/v1/scrape", json={}), 422, "url")
    assert_problem(await client.post("/v1/scrape", json={"urls": [site.url("/")]}), 422, "urls")
    for bad in (0, -1, 121, "10", True):
        assert_problem(
            await client.post("/v1/scrape", json={"url": site.url("/"), "timeout": bad}),
            422,
            "timeout",
        )
    assert_problem(
        await client.post("/v1/scrape", json={"url": site.url("/"), "max_depth": 2}),
        422,
        "max_depth",
    )
    assert_problem(
        await client.post("/v1/scrape", json={"url": site.url("/"), "formats": ["pdf"]}),
        422,
        "formats[0]",
    )
    assert_problem(await client.post("/v1/scrape", json={"url": "ftp://x/"}), 422, "url")


async def test_map_lists_sitemap_and_seed_links_without_storing_pages(
    trawl: TrawlServer, site_factory: object
) -> None:
    site: Site = site_factory(orphans=3)  # type: ignore[operator]
    response = await trawl.client.post("/v1/map", json={"url": site.url("/")})
    assert response.status_code == 200, response.text
    body = response.json()
    urls = [link["url"] for link in body["links"]]
    assert len(urls) == len(set(urls))
    assert site.url("/") in urls and site.url("/p/0") in urls  # the seed and its link
    assert {site.url(f"/orphan/{i}") for i in range(3)} <= set(urls)  # from the sitemap
    assert site.count("/p/0") == 0, "max_depth 1 fetches only the seed"
    titles = {link["url"]: link["title"] for link in body["links"]}
    assert titles[site.url("/")] == "Home"
    job = await trawl.job(body["job_id"])
    assert job["status"] == "completed"
    assert job["stats"]["pages_fetched"] == 1 and job["stats"]["pages_queued"] == 0
    results = await trawl.results(body["job_id"])
    assert results == []


async def test_map_depth_limit_search_and_filters(trawl: TrawlServer, site: Site) -> None:
    async def mapped(**options: object) -> list[str]:
        response = await trawl.client.post("/v1/map", json={"url": site.url("/"), **options})
        assert response.status_code == 200, response.text
        return [link["url"] for link in response.json()["links"]]

    deeper = await mapped(max_depth=3, sitemap="skip")
    assert set(deeper) == site.expected_urls(3)
    assert len(await mapped(limit=3)) == 3
    searched = await mapped(max_depth=3, search="/P/1")
    assert searched and all("/p/1" in url for url in searched)
    assert site.url("/p/1") in searched
    excluded = await mapped(max_depth=3, exclude=["/p/[0-9]+$"], sitemap="skip")
    assert excluded == [site.url("/")]
    only = await mapped(sitemap="only")
    assert set(only) == {site.url("/")} | {site.url(f"/p/{i}") for i in range(5)}


async def test_map_respects_robots(trawl: TrawlServer, site_factory: object) -> None:
    site: Site = site_factory(robots="User-agent: *\nDisallow: /\n")  # type: ignore[operator]
    response = await trawl.client.post("/v1/map", json={"url": site.url("/")})
    assert response.status_code == 200, response.text
    assert response.json()["links"] == []  # the seed too: robots.txt forbids it
    assert site.count("/") == 0


async def test_map_validation(trawl: TrawlServer, site: Site) -> None:
    client = trawl.client
    assert_problem(await client.post("/v1/map", json={}), 422, "url")
    assert_problem(await client.post("/v1/map", json={"url": site.url(), "limit": 0}), 422, "limit")
    assert_problem(await client.post("/v1/map", json={"url": site.url(), "bogus": 1}), 422, "bogus")
    assert_problem(
        await client.post("/v1/map", json={"url": site.url(), "include": ["("]}),
        422,
        "include[0]",
    )
