"""The result routes: cursor pages (also while the crawl runs), outcome filter, NDJSON."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.api.conftest import MakeServer, assert_problem
from tests.conftest import TrawlServer
from tests.site import Site, SiteFactory

PAGE_FIELDS = {"url", "final_url", "depth", "status_code", "content_type", "fetched_at"}
PAGE_FIELDS |= {"elapsed_ms", "error"}


async def crawl(trawl: TrawlServer, site: Site, **options: Any) -> dict[str, Any]:
    job = await trawl.submit({"url": site.url("/"), "max_depth": 20, "max_pages": 1000, **options})
    done = await trawl.wait_job(job["id"], timeout=60)
    assert done["status"] == "completed", done
    return done


async def test_results_default_page_is_50_and_cursors_cover_everything(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    site = site_factory(pages=70)
    trawl = await make_server()
    job = await crawl(trawl, site)

    first = await trawl.client.get(f"/v1/jobs/{job['id']}/results")

    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/json")
    page = first.json()
    assert set(page) == {"items", "next_cursor"}
    assert len(page["items"]) == 50
    assert page["next_cursor"]
    for item in page["items"]:
        assert set(item) >= PAGE_FIELDS
        assert item["error"] is None and item["status_code"] == 200
    everything = await trawl.results(job["id"], limit=50)
    urls = [item["url"] for item in everything]
    assert len(urls) == len(set(urls))
    assert set(urls) == site.expected_urls(20)
    assert len(urls) == job["stats"]["pages_fetched"] == 71


async def test_results_limit_is_capped_at_1000(trawl: TrawlServer, site: Site) -> None:
    job = await crawl(trawl, site)
    url = f"/v1/jobs/{job['id']}/results"

    everything = (await trawl.client.get(url, params={"limit": 1000})).json()
    one = (await trawl.client.get(url, params={"limit": 1})).json()

    assert len(everything["items"]) == len(site.expected_urls(20))
    assert everything["next_cursor"] is None, "a finished job's last page ends the listing"
    assert len(one["items"]) == 1 and one["next_cursor"]
    for bad in ("0", "1001", "-5", "x", "50.0"):
        assert_problem(await trawl.client.get(url, params={"limit": bad}), 422, "limit")
    for bad in ("zzz", "eyJ2IjoxLCJwIjotMX0"):
        assert_problem(await trawl.client.get(url, params={"cursor": bad}), 422, "cursor")
    assert_problem(await trawl.client.get(url, params={"outcome": "good"}), 422, "outcome")


async def test_pages_are_stable_while_results_are_being_inserted(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    # page_delay bounds the crawl's speed (100 x 30 ms over 3 connections >= 1 s), so
    # paging overlaps it however fast the engine gets.
    site = site_factory(pages=100, page_delay=0.03)
    trawl = await make_server(per_host_concurrency=3, result_batch_size=5)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 20, "max_pages": 1000})

    collected: list[str] = []
    pages_while_running = 0
    cursor = None
    while True:
        status = (await trawl.job(job["id"]))["status"]
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        response = await trawl.client.get(f"/v1/jobs/{job['id']}/results", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 7
        collected += [item["url"] for item in page["items"]]
        if status != "completed" and page["items"]:
            pages_while_running += 1
        if page["next_cursor"] is None:
            break
        # Until the job finishes there is always a cursor, even at the current end.
        cursor = page["next_cursor"]

    final = await trawl.job(job["id"])
    assert final["status"] == "completed"
    assert pages_while_running >= 5, "the crawl finished before paging began; slow it down"
    duplicates = [url for url, n in Counter(collected).items() if n > 1]
    assert not duplicates
    assert set(collected) == site.expected_urls(20)
    assert set(collected) == {item["url"] for item in await trawl.results(job["id"])}


async def test_outcome_filter(make_server: MakeServer, site_factory: SiteFactory) -> None:
    site = site_factory(pages=10, robots="User-agent: *\nDisallow: /p/2\n")
    site.add_page("/", '<a href="/p/0">0</a> <a href="/missing">gone</a>')
    trawl = await make_server(max_retries=0)
    job = await crawl(trawl, site)

    def outcomes(items: list[dict[str, Any]]) -> set[str]:
        return {item["url"] for item in items}

    ok = await trawl.results(job["id"], outcome="ok")
    failed = await trawl.results(job["id"], outcome="failed")
    skipped = await trawl.results(job["id"], outcome="skipped")
    everything = await trawl.results(job["id"])

    assert outcomes(failed) == {site.url("/missing")}
    assert failed[0]["error"]["code"] == "http_error" and failed[0]["status_code"] == 404
    assert outcomes(skipped) == {site.url("/p/2")}
    assert skipped[0]["error"]["code"] == "blocked_by_robots"
    assert ok and all(item["error"] is None for item in ok)
    assert outcomes(ok) | outcomes(failed) | outcomes(skipped) == outcomes(everything)
    assert len(ok) + len(failed) + len(skipped) == len(everything)
    assert job["stats"]["pages_failed"] == 1 and job["stats"]["pages_skipped"] == 1


async def test_ndjson_streams_every_result(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    site = site_factory(pages=120)  # more lines than the route's 100-line write buffer
    trawl = await make_server()
    job = await crawl(trawl, site)

    response = await trawl.client.get(f"/v1/jobs/{job['id']}/results.ndjson")

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/x-ndjson"
    assert response.text.endswith("\n")
    lines = response.text.splitlines()
    documents = [json.loads(line) for line in lines]
    assert all(isinstance(doc, dict) and set(doc) >= PAGE_FIELDS for doc in documents)
    assert [doc["url"] for doc in documents] == [
        item["url"] for item in await trawl.results(job["id"])
    ]
    assert {doc["url"] for doc in documents} == site.expected_urls(20)

    failed = await trawl.client.get(
        f"/v1/jobs/{job['id']}/results.ndjson", params={"outcome": "failed"}
    )
    assert failed.status_code == 200 and failed.text == ""


async def test_ndjson_of_a_job_without_results_is_empty(api: TrawlServer) -> None:
    job = await api.submit({"url": "http://example.invalid/"})

    response = await api.client.get(f"/v1/jobs/{job['id']}/results.ndjson")

    assert response.status_code == 200 and response.text == ""


@pytest.mark.parametrize("suffix", ["results", "results.ndjson"])
async def test_results_of_an_unknown_job_are_404(api: TrawlServer, suffix: str) -> None:
    assert_problem(await api.client.get(f"/v1/jobs/nope/{suffix}"), 404)


async def test_results_of_a_queued_job_keep_a_cursor_to_poll(api: TrawlServer) -> None:
    job = await api.submit({"url": "http://example.invalid/"})

    page = (await api.client.get(f"/v1/jobs/{job['id']}/results")).json()

    assert page["items"] == []
    assert page["next_cursor"], "a job still to run has results to come"
    again = await api.client.get(
        f"/v1/jobs/{job['id']}/results", params={"cursor": page["next_cursor"]}
    )
    assert again.json() == page
