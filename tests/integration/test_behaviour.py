"""Crawler manners and URL hygiene, measured from the local site's request log."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from service.urls import canonicalize_url
from tests.conftest import TrawlServer, free_port
from tests.site import QUERY_PAGE, Site

MakeSite = Callable[..., Site]


def _starts(site: Site, prefix: str) -> list[float]:
    return sorted(r.started for r in site.requests if r.path.startswith(prefix))


async def test_robots_disallowed_pages_are_never_requested(
    trawl: TrawlServer, site_factory: MakeSite
) -> None:
    site = site_factory(robots="User-agent: *\nDisallow: /p/1$\n")
    job = await trawl.submit({"url": site.url("/"), "max_depth": 3, "max_pages": 1000})
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"
    assert site.count("/p/1") == 0
    assert site.count("/robots.txt") == 1, "robots.txt is fetched once per host per job"
    results = {item["url"]: item for item in await trawl.results(job["id"])}
    blocked = results[site.url("/p/1")]
    assert blocked["error"]["code"] == "blocked_by_robots"
    skipped = await trawl.results(job["id"], outcome="skipped")
    assert [item["url"] for item in skipped] == [site.url("/p/1")]
    assert done["stats"]["pages_skipped"] == 1
    # /p/1's children are never discovered: nothing links to them but /p/1.
    assert site.url("/p/4") not in results


async def test_respect_robots_false_fetches_disallowed_pages(
    trawl: TrawlServer, site_factory: MakeSite
) -> None:
    site = site_factory(robots="User-agent: *\nDisallow: /\n")
    job = await trawl.submit({"url": site.url("/"), "max_depth": 1, "respect_robots": False})
    done = await trawl.wait_job(job["id"])
    assert done["stats"]["pages_fetched"] == 2
    assert site.count("/robots.txt") == 0


async def test_robots_4xx_allows_everything(trawl: TrawlServer, site_factory: MakeSite) -> None:
    site = site_factory(robots_status=404)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 2})
    done = await trawl.wait_job(job["id"])
    assert done["stats"]["pages_fetched"] == len(site.expected_urls(2))


async def test_robots_5xx_disallows_until_it_recovers(
    make_server: Callable[..., Any], site_factory: MakeSite
) -> None:
    trawl: TrawlServer = await make_server()
    site = site_factory(robots_status=503)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 1})
    await site.wait_for_async(lambda: site.count("/robots.txt") >= 1, timeout=5)
    current = await trawl.job(job["id"])
    assert current["status"] == "running"
    assert site.count("/") == 0, "no page is fetched while robots.txt answers 5xx"


async def test_crawl_delay_spaces_requests(trawl: TrawlServer, site_factory: MakeSite) -> None:
    site = site_factory(robots="User-agent: *\nCrawl-delay: 0.3\n", pages=4)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 3})
    await trawl.wait_job(job["id"])
    starts = sorted(r.started for r in site.requests if r.path != "/robots.txt")
    assert len(starts) == 5
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.29, gaps


async def test_per_host_limit_is_never_exceeded(
    make_server: Callable[..., Any], site_factory: MakeSite
) -> None:
    trawl: TrawlServer = await make_server(concurrency=16, per_host_concurrency=2)
    site = site_factory(pages=60, fanout=6, page_delay=0.05)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 4, "max_pages": 1000})
    done = await trawl.wait_job(job["id"])
    assert done["stats"]["pages_fetched"] == len(site.expected_urls(4))
    assert site.max_concurrent == 2


async def test_per_job_host_limit_override(
    make_server: Callable[..., Any], site_factory: MakeSite
) -> None:
    trawl: TrawlServer = await make_server(concurrency=16, per_host_concurrency=4)
    site = site_factory(pages=40, fanout=8, page_delay=0.05)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 3, "per_host_concurrency": 1})
    await trawl.wait_job(job["id"])
    assert site.max_concurrent == 1


async def test_slow_host_does_not_stall_other_hosts(
    make_server: Callable[..., Any], site_factory: MakeSite
) -> None:
    trawl: TrawlServer = await make_server(concurrency=4, per_host_concurrency=1)
    slow = site_factory(robots=None)
    fast = site_factory(host="127.0.0.2", pages=20, robots=None)
    slow_job = await trawl.submit(
        {"urls": [slow.url(f"/slow?delay=2&n={i}") for i in range(3)], "max_depth": 0}
    )
    fast_job = await trawl.submit({"url": fast.url("/"), "max_depth": 5})
    done = await trawl.wait_job(fast_job["id"], timeout=10)
    assert done["stats"]["pages_fetched"] == len(fast.expected_urls(5))
    slow_state = await trawl.job(slow_job["id"])
    assert slow_state["status"] == "running", "the fast host finished while the slow one waits"


async def test_retries_are_counted_and_stored(trawl: TrawlServer, site: Site) -> None:
    ok_url = canonicalize_url(site.url("/flaky/a?fail=2&code=503"))
    bad_url = canonicalize_url(site.url("/flaky/b?fail=50&code=500"))
    job = await trawl.submit({"urls": [ok_url, bad_url], "max_retries": 2})
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"
    results = {item["url"]: item for item in await trawl.results(job["id"])}
    recovered = results[ok_url]
    assert recovered["error"] is None and recovered["status_code"] == 200
    assert recovered["attempts"] == 3
    failed = results[bad_url]
    assert failed["error"]["code"] == "http_error"
    assert failed["status_code"] == 500
    assert failed["attempts"] == 3
    assert site.count("/flaky/b") == 3
    assert done["stats"] == {
        "pages_discovered": 2,
        "pages_queued": 0,
        "pages_fetched": 1,
        "pages_failed": 1,
        "pages_skipped": 0,
    }


async def test_retry_after_is_honoured(trawl: TrawlServer, site: Site) -> None:
    url = site.url("/retry-after?seconds=1&fail=1&name=ra")
    job = await trawl.submit({"url": url})
    await trawl.wait_job(job["id"])
    starts = _starts(site, "/retry-after")
    assert len(starts) == 2
    assert starts[1] - starts[0] >= 0.95


async def test_urls_that_normalise_alike_are_fetched_once(
    trawl: TrawlServer, site_factory: MakeSite
) -> None:
    site = site_factory(query_dupes=True)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 2, "max_pages": 1000})
    await trawl.wait_job(job["id"])
    assert site.count("/q") == 1
    assert site.count("/p/0") == 1
    urls = [item["url"] for item in await trawl.results(job["id"])]
    assert site.url(QUERY_PAGE) in urls
    assert set(urls) == site.expected_urls(2)


async def test_max_pages_is_exact_under_concurrency(
    make_server: Callable[..., Any], site_factory: MakeSite
) -> None:
    trawl: TrawlServer = await make_server(concurrency=16, per_host_concurrency=16)
    site = site_factory(pages=300, fanout=10)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 10, "max_pages": 37})
    done = await trawl.wait_job(job["id"])
    results = await trawl.results(job["id"])
    assert len(results) == 37
    assert done["stats"]["pages_fetched"] == 37
    assert done["stats"]["pages_discovered"] == 37
    assert len([r for r in site.requests if r.path != "/robots.txt"]) == 37


async def test_sitemap_seeding_finds_unlinked_pages(
    trawl: TrawlServer, site_factory: MakeSite
) -> None:
    site = site_factory(orphans=3)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 0, "use_sitemap": True})
    await trawl.wait_job(job["id"])
    urls = {item["url"] for item in await trawl.results(job["id"])}
    assert {site.url(f"/orphan/{i}") for i in range(3)} <= urls
    assert site.sitemap_urls() <= urls


async def test_sitemap_index_and_gzip(trawl: TrawlServer, site_factory: MakeSite) -> None:
    site = site_factory(orphans=2, robots="User-agent: *\nSitemap: {base}/sitemap_index.xml\n")
    job = await trawl.submit({"url": site.url("/"), "max_depth": 0, "use_sitemap": True})
    await trawl.wait_job(job["id"])
    urls = {item["url"] for item in await trawl.results(job["id"])}
    # The orphans are listed only in the gzip-compressed child sitemap.
    assert {site.url("/orphan/0"), site.url("/orphan/1")} <= urls


async def test_non_html_links_are_not_followed_unless_asked(
    trawl: TrawlServer, site_factory: MakeSite
) -> None:
    site = site_factory(extras=True, pages=3)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 2, "formats": ["links"]})
    await trawl.wait_job(job["id"])
    assert site.count("/files/doc.pdf") == 0
    assert site.count("/x") == 0  # the external link is out of scope
    job = await trawl.submit(
        {"url": site.url("/"), "max_depth": 2, "follow_non_html": True, "formats": ["text"]}
    )
    await trawl.wait_job(job["id"])
    results = {item["url"]: item for item in await trawl.results(job["id"])}
    pdf = results[site.url("/files/doc.pdf")]
    assert pdf["content_type"] == "application/pdf"
    assert pdf["status_code"] == 200 and pdf["size"] > 0
    assert pdf.get("text") is None and pdf["error"] is None


async def test_include_and_exclude_patterns(trawl: TrawlServer, site: Site) -> None:
    job = await trawl.submit(
        {
            "url": site.url("/"),
            "max_depth": 4,
            "max_pages": 1000,
            "include": [r"/p/\d+$"],
            "exclude": [r"/p/2$"],
        }
    )
    await trawl.wait_job(job["id"])
    urls = {item["url"] for item in await trawl.results(job["id"])}
    assert site.url("/p/2") not in urls
    assert site.url("/p/1") in urls
    assert site.url("/p/7") not in urls  # only reachable through /p/2


async def test_cancel_stops_fetching(
    make_server: Callable[..., Any], site_factory: MakeSite
) -> None:
    trawl: TrawlServer = await make_server(concurrency=2, per_host_concurrency=2)
    site = site_factory(pages=200, fanout=4, page_delay=0.05)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 10, "max_pages": 1000})
    await trawl.wait_job(job["id"], {"running"})
    await site.wait_for_async(lambda: len(site.requests) >= 5, timeout=10)
    response = await trawl.client.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    seen = len(site.requests)
    again = await trawl.client.delete(f"/v1/jobs/{job['id']}")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    # Allow the in-flight fetches (at most the concurrency) to finish, then nothing more.
    await trawl.wait_until_idle()
    assert len(site.requests) <= seen + 2
    final = await trawl.job(job["id"])
    assert final["status"] == "cancelled" and final["finished_at"] is not None


async def test_private_targets_are_refused_by_default(
    make_server: Callable[..., Any], site: Site
) -> None:
    trawl: TrawlServer = await make_server(allow_private_networks=False)
    job = await trawl.submit({"urls": [site.url("/"), "http://localhost:9/"]})
    done = await trawl.wait_job(job["id"], timeout=15)
    assert done["status"] == "completed"
    results = await trawl.results(job["id"])
    assert {item["error"]["code"] for item in results} == {"private_address"}
    assert done["stats"]["pages_failed"] == 2
    assert site.requests == [], "nothing may reach a loopback address"


async def test_the_service_cannot_crawl_its_own_api(trawl: TrawlServer) -> None:
    own = f"http://127.0.0.1:{trawl.settings.port}"
    job = await trawl.submit(
        {"urls": [f"{own}/v1/jobs", f"http://localhost:{trawl.settings.port}/health"]}
    )
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"
    results = await trawl.results(job["id"])
    assert [item["error"]["code"] for item in results] == ["private_address"] * 2


async def test_a_host_that_keeps_failing_is_failed_fast(
    make_server: Callable[..., Any],
) -> None:
    trawl: TrawlServer = await make_server(
        host_failure_threshold=3, concurrency=2, per_host_concurrency=1
    )
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    urls = [f"{dead}/page/{i}" for i in range(20)]
    job = await trawl.submit({"urls": urls, "max_retries": 1})
    done = await trawl.wait_job(job["id"], timeout=30)
    assert done["status"] == "completed" and done["stats"]["pages_failed"] == 20
    codes = [item["error"]["code"] for item in await trawl.results(job["id"])]
    assert codes.count("host_unreachable") >= 15, codes
    assert set(codes) <= {"connect_error", "host_unreachable"}


async def test_per_job_host_delay_spaces_requests(trawl: TrawlServer, site: Site) -> None:
    job = await trawl.submit(
        {
            "urls": [site.url(f"/p/{i}") for i in range(4)],
            "per_host_delay": 0.25,
            "respect_robots": False,
        }
    )
    await trawl.wait_job(job["id"])
    starts = _starts(site, "/p/")
    assert len(starts) == 4
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.24


async def test_a_pages_canonical_url_is_crawled_too(trawl: TrawlServer, site: Site) -> None:
    site.add_page(
        "/print/article",
        b'<html><head><link rel="canonical" href="/article"></head><body>print</body></html>',
    )
    site.add_page("/article", b"<html><body>the article</body></html>")
    job = await trawl.submit({"url": site.url("/print/article"), "max_depth": 1})
    await trawl.wait_job(job["id"])
    pages = {item["url"]: item for item in await trawl.results(job["id"])}
    assert set(pages) == {site.url("/print/article"), site.url("/article")}
    assert pages[site.url("/print/article")]["metadata"]["canonical"] == site.url("/article")
