"""The real firecrawl-py SDK against a running Trawl and the local site.

The SDK is synchronous (requests), so each call runs in a thread while the server runs
on the test's event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from firecrawl import Firecrawl
from firecrawl.v2.types import PaginationConfig
from firecrawl.v2.utils.error_handler import BadRequestError, FirecrawlError, UnauthorizedError

from tests.conftest import TrawlServer, wait_until
from tests.site import Response, Site, SiteHandler

T = TypeVar("T")
KEY = "fc-test-key"


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(function, *args, **kwargs)


@pytest.fixture
async def server(make_server: Any) -> TrawlServer:
    server: TrawlServer = await make_server(api_keys=(KEY,))
    return server


@pytest.fixture
def sdk(server: TrawlServer) -> Firecrawl:
    return Firecrawl(api_key=KEY, api_url=server.base_url, max_retries=1)


async def test_scrape(sdk: Firecrawl, site: Site, server: TrawlServer) -> None:
    doc = await call(sdk.scrape, site.url("/p/1"), formats=["markdown", "html", "links"])
    assert "Page 1" in (doc.markdown or "")
    assert doc.html and "<h1>Page 1</h1>" in doc.html
    assert site.url("/p/4") in (doc.links or [])
    meta = doc.metadata_typed
    assert meta.title == "Page 1"
    assert meta.status_code == 200
    assert meta.source_url == site.url("/p/1")
    assert meta.description == "Description of page 1"
    # A Firecrawl scrape is a Trawl job like any other.
    jobs = (await server.client.get("/v1/jobs", headers={"Authorization": f"Bearer {KEY}"})).json()[
        "items"
    ]
    assert [job["request"]["urls"] for job in jobs] == [[site.url("/p/1")]]
    assert jobs[0]["request"]["only_main_content"] is True  # Firecrawl's default


async def test_scrape_accepts_the_sdks_browser_defaults(sdk: Firecrawl, site: Site) -> None:
    doc = await call(
        sdk.scrape,
        site.url("/"),
        formats=["markdown"],
        only_main_content=False,
        mobile=True,
        wait_for=500,
        skip_tls_verification=False,
        remove_base64_images=True,
        block_ads=True,
        max_age=0,
        store_in_cache=False,
        actions=[{"type": "wait", "milliseconds": 10}],
        timeout=20000,
    )
    assert "Home" in (doc.markdown or "")
    assert doc.warning and "mobile" in doc.warning


async def test_scrape_refuses_what_needs_a_browser(sdk: Firecrawl, site: Site) -> None:
    with pytest.raises(BadRequestError, match="screenshot"):
        await call(sdk.scrape, site.url("/"), formats=["screenshot"])
    with pytest.raises(BadRequestError, match="click"):
        await call(sdk.scrape, site.url("/"), actions=[{"type": "click", "selector": "#more"}])


async def test_scrape_errors(sdk: Firecrawl, site: Site) -> None:
    with pytest.raises(BadRequestError):
        await call(sdk.scrape, "ftp://example.invalid/")
    not_found = await call(sdk.scrape, site.url("/status/404"))
    assert not_found.metadata_typed.status_code == 404
    with pytest.raises(FirecrawlError):
        await call(sdk.scrape, "http://example.invalid/")  # cannot resolve


async def test_wrong_key(server: TrawlServer, site: Site) -> None:
    wrong = Firecrawl(api_key="not-the-key", api_url=server.base_url, max_retries=1)
    with pytest.raises(UnauthorizedError):
        await call(wrong.scrape, site.url("/"))
    with pytest.raises(UnauthorizedError):
        await call(wrong.start_crawl, site.url("/"))
    missing = Firecrawl(api_key=None, api_url=server.base_url, max_retries=1)
    with pytest.raises(UnauthorizedError):
        await call(missing.map, site.url("/"))


async def test_blocking_crawl(sdk: Firecrawl, site: Site) -> None:
    job = await call(
        sdk.crawl, site.url("/"), limit=10, max_discovery_depth=3, sitemap="skip", poll_interval=1
    )
    assert job.status == "completed"
    urls = {doc.metadata_typed.source_url for doc in job.data}
    assert len(job.data) == 10 == len(urls)
    assert urls <= site.expected_urls(3)
    assert job.completed == 10


async def test_crawl_paths_and_depth(sdk: Firecrawl, site: Site) -> None:
    job = await call(
        sdk.crawl,
        site.url("/"),
        max_discovery_depth=3,
        include_paths=["^/p/[0-9]$"],
        sitemap="skip",
        poll_interval=1,
    )
    urls = {doc.metadata_typed.source_url for doc in job.data}
    expected = {u for u in site.expected_urls(3) if u.rsplit("/", 1)[-1].isdigit()}
    expected = {u for u in expected if len(u.rsplit("/", 1)[-1]) == 1} | {site.url("/")}
    assert urls == expected


async def test_start_status_paging_and_cancel(
    sdk: Firecrawl, site_factory: Any, server: TrawlServer
) -> None:
    site: Site = site_factory(pages=400, fanout=5)
    started = await call(sdk.start_crawl, site.url("/"), limit=250, max_discovery_depth=5)
    # Wait (condition-based) until more than one status page of documents exists.
    status = await wait_until(
        lambda: call(
            sdk.get_crawl_status,
            started.id,
            pagination_config=PaginationConfig(auto_paginate=False),
        ),
        lambda status: status.status == "completed" or status.completed > 150,
        60,
        0.2,
    )
    assert status.next and "cursor=" in status.next
    assert len(status.data) == 100
    everything = await call(sdk.get_crawl_status, started.id)
    urls = [doc.metadata_typed.source_url for doc in everything.data]
    assert len(urls) == len(set(urls)) >= 150
    if everything.status == "completed":
        # A finished crawl cannot be cancelled (409: the SDK answers False).
        assert await call(sdk.cancel_crawl, started.id) is False
    else:
        cancelled = await call(sdk.cancel_crawl, started.id)
        final = (await call(sdk.get_crawl_status, started.id)).status
        # It may complete between the status read and the cancel: the cancel is refused.
        assert (cancelled, final) in {(True, "cancelled"), (False, "completed")}
    errors = await call(sdk.get_crawl_errors, started.id)
    assert errors.errors == [] and errors.robots_blocked == []


async def test_cancel_a_running_crawl(sdk: Firecrawl, site: Site, server: TrawlServer) -> None:
    server.client.headers["Authorization"] = f"Bearer {KEY}"
    release = threading.Event()

    def slow(handler: SiteHandler) -> Response:
        release.wait(10)  # the site's own thread
        return Response(body=b"<title>slow</title>")

    site.route("/slow-page", slow)
    site.add_page("/", '<a href="/slow-page">slow</a>')
    started = await call(sdk.start_crawl, site.url("/"), max_discovery_depth=1, sitemap="skip")
    await site.wait_for_async(lambda: site.count("/slow-page") == 1, timeout=10)
    assert await call(sdk.cancel_crawl, started.id) is True
    assert await call(sdk.cancel_crawl, started.id) is True  # idempotent, as /v1
    status = await call(sdk.get_crawl_status, started.id)
    assert status.status == "cancelled"
    assert (await server.job(started.id))["status"] == "cancelled"  # the same job in /v1
    release.set()


async def test_crawl_errors_list_failures_and_robots(sdk: Firecrawl, site_factory: Any) -> None:
    site: Site = site_factory(robots="User-agent: *\nDisallow: /p/2\n")
    site.add_page(
        "/",
        '<a href="/p/2">blocked</a> <a href="/status/500">broken</a> <a href="/p/1">ok</a>',
    )
    job = await call(sdk.crawl, site.url("/"), max_discovery_depth=1, poll_interval=1)
    assert job.status == "completed"
    errors = await call(sdk.get_crawl_errors, job.id)
    assert [error.url for error in errors.errors] == [site.url("/status/500")]
    assert errors.robots_blocked == [site.url("/p/2")]


async def test_map(sdk: Firecrawl, site_factory: Any) -> None:
    site: Site = site_factory(orphans=2)
    mapped = await call(sdk.map, site.url("/"))
    urls = [link.url for link in mapped.links]
    assert site.url("/p/0") in urls
    assert {site.url("/orphan/0"), site.url("/orphan/1")} <= set(urls)
    searched = await call(sdk.map, site.url("/"), search="orphan", limit=1)
    assert [link.url for link in searched.links] == [site.url("/orphan/0")]


async def test_batch_scrape(sdk: Firecrawl, site: Site, server: TrawlServer) -> None:
    urls = [site.url("/p/1"), site.url("/p/2"), site.url("/status/404")]
    job = await call(sdk.batch_scrape, urls, formats=["markdown"], poll_interval=1)
    assert job.status == "completed"
    assert {doc.metadata_typed.source_url for doc in job.data} == set(urls[:2])
    started = await call(sdk.start_batch_scrape, urls)
    await wait_until(
        lambda: call(sdk.get_batch_scrape_status, started.id),
        lambda status: status.status == "completed",
        30,
        0.1,
    )
    errors = await call(sdk.get_batch_scrape_errors, started.id)
    assert [error.url for error in errors.errors] == [urls[2]]

    started = await call(
        sdk.start_batch_scrape,
        [site.url("/p/3"), "http://bad host/"],
        ignore_invalid_urls=True,
        idempotency_key="batch-1",
    )
    assert started.invalid_urls == ["http://bad host/"]
    again = await call(
        sdk.start_batch_scrape,
        [site.url("/p/3"), "http://bad host/"],
        ignore_invalid_urls=True,
        idempotency_key="batch-1",
    )
    assert again.id == started.id
    status = await call(sdk.get_batch_scrape_status, started.id)
    assert status.status in {"scraping", "completed"}


async def test_batch_cancel(sdk: Firecrawl, site: Site) -> None:
    release = threading.Event()

    def slow(handler: SiteHandler) -> Response:
        release.wait(10)  # the site's own thread
        return Response(body=b"<title>slow</title>")

    site.route("/slow-page", slow)
    started = await call(sdk.start_batch_scrape, [site.url("/slow-page")])
    assert await call(sdk.cancel_batch_scrape, started.id) is True
    status = await call(sdk.get_batch_scrape_status, started.id)
    assert status.status == "cancelled"
    release.set()


async def test_unknown_job_is_a_firecrawl_error(sdk: Firecrawl) -> None:
    with pytest.raises(FirecrawlError) as caught:
        await call(sdk.get_crawl_status, "no-such-job")
    assert caught.value.status_code == 404
