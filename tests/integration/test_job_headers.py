"""A job's headers and cookies reach its seed origins only, and are never echoed."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import assert_problem
from tests.conftest import TrawlServer
from tests.site import Site

SECRET = "Bearer very-secret-token"


async def test_headers_go_to_seed_origins_only(trawl: TrawlServer, site_factory: Any) -> None:
    seed: Site = site_factory()
    other: Site = site_factory()  # another port: another origin
    seed.add_page(
        "/",
        f'<a href="/p/0">in</a> <a href="{other.url("/p/1")}">out</a> '
        f'<a href="/to-other">redirect</a>',
    )
    seed.add_page("/to-other", b"", status=302, headers={"Location": other.url("/p/2")})
    job = await trawl.submit(
        {
            "url": seed.url("/"),
            "max_depth": 1,
            "scope": "any",
            "headers": {"Authorization": SECRET, "Accept-Language": "fr-CH"},
            "cookies": {"session": "s3cr3t"},
        }
    )
    assert job["request"]["headers"] == {
        "Authorization": "[redacted]",
        "Accept-Language": "[redacted]",
    }
    assert job["request"]["cookies"] == {"session": "[redacted]"}
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"
    assert "very-secret" not in str(done) and "s3cr3t" not in str(done)

    pages = [r for r in seed.requests if r.path in ("/", "/p/0", "/to-other")]
    assert {r.path for r in pages} == {"/", "/p/0", "/to-other"}
    for record in pages:
        assert record.headers.get("authorization") == SECRET, record.path
        assert record.headers.get("accept-language") == "fr-CH"
        assert record.headers.get("cookie") == "session=s3cr3t"
    robots = [r for r in seed.requests if r.path == "/robots.txt"]
    assert all("authorization" not in r.headers for r in robots)

    assert {r.path for r in other.requests} >= {"/p/1", "/p/2"}  # the link and the redirect
    for record in other.requests:
        assert "authorization" not in record.headers, record.path
        assert "cookie" not in record.headers, record.path
        assert record.headers.get("accept-language") != "fr-CH"

    listed = (await trawl.client.get("/v1/jobs")).json()
    assert "very-secret" not in str(listed)
    results = await trawl.results(job["id"])
    assert "very-secret" not in str(results)


async def test_scrape_sends_headers_and_refuses_bad_ones(trawl: TrawlServer, site: Site) -> None:
    response = await trawl.client.post(
        "/v1/scrape", json={"url": site.url("/p/3"), "headers": {"X-Probe": "yes"}}
    )
    assert response.status_code == 200, response.text
    assert [r.headers.get("x-probe") for r in site.requests_for("/p/3")] == ["yes"]
    bad = await trawl.client.post(
        "/v1/scrape", json={"url": site.url("/p/3"), "headers": {"Host": "evil.test"}}
    )
    assert_problem(bad, 422, "headers.Host")
    bad = await trawl.client.post(
        "/v1/jobs", json={"url": site.url("/"), "headers": {"Transfer-Encoding": "chunked"}}
    )
    assert_problem(bad, 422, "headers.Transfer-Encoding")


async def test_firecrawl_scrape_options_headers(trawl: TrawlServer, site: Site) -> None:
    response = await trawl.client.post(
        "/v2/crawl",
        json={"url": site.url("/"), "limit": 2, "scrapeOptions": {"headers": {"X-Fc": "1"}}},
    )
    assert response.status_code == 200, response.text
    job = await trawl.wait_job(response.json()["id"])
    assert job["request"]["headers"] == {"X-Fc": "[redacted]"}
    fetched = [r for r in site.requests if r.path != "/robots.txt" and "sitemap" not in r.path]
    assert fetched and all(r.headers.get("x-fc") == "1" for r in fetched)
    refused = await trawl.client.post(
        "/v2/scrape", json={"url": site.url("/"), "headers": {"Connection": "close"}}
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["details"][0]["field"] == "headers.Connection"
