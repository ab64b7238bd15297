"""What a crawled site can make one page cost (issue 17, items 1-3), on both backends.

Hostile sites come from tests/faults/hostile_server.py on 127.0.0.1: an 8 KB same-host
link (the PostgreSQL btree limit is 2704 bytes), 20 MB of emoji HTML sent as 20 KB of
gzip, pages with thousands of unique long links.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.urls import MAX_URL_LENGTH
from tests.conftest import TrawlServer
from tests.faults.health import health_latency
from tests.faults.hostile_server import HostileServer, long_path

pytestmark = pytest.mark.timeout(120)

MakeServer = Callable[..., Awaitable[TrawlServer]]


@pytest.fixture
def server_defaults(database_url: str) -> dict[str, Any]:
    # These pages are slow to parse on purpose (20 MB of emoji); what is measured here is
    # what they cost afterwards, so the parse deadline must not cut them off.
    return {"database_url": database_url, "db_pool_size": 4, "parse_timeout": 120.0}


# -- item 1: URL length ----------------------------------------------------------------


async def test_a_seed_over_the_url_maximum_is_a_422_naming_it(make_server: MakeServer) -> None:
    server = await make_server(role="web")
    too_long = "http://example.invalid" + long_path(MAX_URL_LENGTH)
    response = await server.client.post("/v1/jobs", json={"urls": ["http://a.invalid/", too_long]})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["urls[1]"]
    assert str(MAX_URL_LENGTH) in errors[0]["message"]
    assert len(response.text) < 2000  # the URL is not echoed back


async def test_a_long_seed_under_the_maximum_is_stored(make_server: MakeServer) -> None:
    """3 KB and 8 KB seeds are fine (PostgreSQL answered 500 past its 2704-byte btree row)."""
    server = await make_server(role="web")
    for length in (3000, MAX_URL_LENGTH - 30):
        seed = "http://example.invalid" + long_path(length)
        job = await server.submit({"urls": [seed]})
        assert job["request"]["urls"] == [seed]
        assert job["stats"]["pages_discovered"] == 1


async def test_a_long_link_breaks_neither_storage_nor_other_jobs(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    """An 8,000-character same-host link is crawled; a 9,000-character one is dropped and
    counted; another job's one page is stored all the while."""
    server = await make_server()
    crawl = await server.submit(
        {
            "urls": [hostile.url("/long-link?len=8000"), hostile.url("/long-link?len=9000")],
            "max_depth": 1,
            "formats": ["links"],
        }
    )
    other = await server.submit({"url": hostile.url("/ok?other=1")})
    done = await server.wait_job(other["id"], timeout=30)
    assert done["status"] == "completed"
    assert done["stats"]["pages_fetched"] == 1
    job = await server.wait_job(crawl["id"], timeout=30)
    assert job["status"] == "completed", job
    results = {page["url"]: page for page in await server.results(crawl["id"])}
    long_url = hostile.url(long_path(8000, "x"))
    assert long_url in results, sorted(results)
    assert results[long_url]["error"] is None
    assert not any(len(url) > MAX_URL_LENGTH for url in results)
    # The 9,000-character link was left out of the links and the frontier, and counted.
    page = results[hostile.url("/long-link?len=9000")]
    assert page["links_dropped"] == 1
    assert all(len(link) <= MAX_URL_LENGTH for link in page["links"])
    metrics = (await server.client.get("/metrics")).text
    assert 'trawl_links_dropped_total{reason="too_long"} ' in metrics


# -- item 2: what one page costs ---------------------------------------------------------


async def test_an_emoji_bomb_is_capped_stored_compact_and_served_in_bounds(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    """2 MB of emoji (2 KB of gzip) x 8 pages, html+text+markdown, 64 KiB per format."""
    cap = 64 * 1024
    server = await make_server(max_format_bytes=cap, max_response_bytes=256 * 1024)
    seeds = [hostile.url(f"/emoji?size=2000000&n={i}") for i in range(8)]
    job = await server.submit({"urls": seeds, "formats": ["html", "text", "markdown"]})
    done = await server.wait_job(job["id"], timeout=90)
    assert done["stats"]["pages_fetched"] == 8, done

    response = await server.client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 8})
    assert response.status_code == 200
    body = response.json()
    # Each format is cut at the cap (UTF-8 bytes, at a character boundary) and flagged.
    for page in body["items"]:
        assert page["truncated"] is True
        assert sorted(page["truncated_formats"]) == ["html", "markdown", "text"]
        for name in ("html", "text", "markdown"):
            assert cap - 4 < len(page[name].encode()) <= cap
    # Stored as UTF-8, not \\u escapes: a page is about 3 x 64 KiB, not 3 x 3 x 64 KiB.
    assert "\\ud83d" not in response.text
    per_page = len(response.content) / len(body["items"])
    assert per_page < 3.2 * cap, per_page
    # The response stopped at its byte budget; the cursor carries on from there.
    assert 1 <= len(body["items"]) < 8
    assert len(response.content) <= 256 * 1024 + 4 * cap
    pages = await server.results(job["id"], limit=8)
    assert len(pages) == 8
    assert len({page["url"] for page in pages}) == 8
    streamed = await server.client.get(f"/v1/jobs/{job['id']}/results.ndjson")
    assert len(streamed.text.splitlines()) == 8


async def test_results_of_huge_pages_leave_health_responsive(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    """The issue's case at the default caps: 20 MB emoji pages, three formats."""
    server = await make_server()
    seeds = [hostile.url(f"/emoji?n={i}") for i in range(3)]
    job = await server.submit({"urls": seeds, "formats": ["html", "text", "markdown"]})
    done = await server.wait_job(job["id"], timeout=100)
    assert done["stats"]["pages_fetched"] == 3, done

    async def read_all() -> list[int]:
        sizes = []
        for _ in range(3):
            response = await server.client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 8})
            sizes.append(len(response.content))
        return sizes

    reading = asyncio.ensure_future(read_all())
    latencies = await health_latency(server.client, reading)
    sizes = await reading
    assert max(latencies) < 1.0, latencies
    # Default caps: 2 MiB per format, so about 6 MiB a page; 8 MiB a response.
    assert max(sizes) < 8 * 1024 * 1024 + 7 * 1024 * 1024, sizes


# -- item 3: memory per job --------------------------------------------------------------


async def test_memory_per_job_is_bounded_by_max_pages_not_by_links_seen(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    """20 pages x 2,000 unique 300-character links: the job keeps O(max_pages) state."""
    server = await make_server()
    loaded = server.crawler._on_job_loaded
    plans: list[Any] = []

    def spy(plan: Any) -> None:
        plans.append(plan)
        if loaded is not None:
            loaded(plan)

    server.crawler._on_job_loaded = spy
    job = await server.submit(
        {
            "url": hostile.url("/many-links?page=0&n=2000&len=300&fan=30"),
            "max_depth": 2,
            "max_pages": 20,
            "formats": ["metadata"],
        }
    )
    done = await server.wait_job(job["id"], timeout=60)
    assert done["status"] == "completed"
    assert done["stats"]["pages_discovered"] == 20
    assert done["stats"]["pages_fetched"] == 20
    (plan,) = plans
    # Links offered to the frontier are remembered only up to a bound set by max_pages.
    assert plan.seen_count <= plan.seen_capacity <= 4096, plan.seen_count
    # And nothing of the job is kept once it has ended.
    assert job["id"] not in server.crawler.plans
