"""Hostile sites against a running service: the crawl goes on and /health stays < 1 s.

Each test prints its /health figures (run with -s to see them); they are what the
hardening notes quote.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.conftest import TrawlServer
from tests.faults import hostile_content
from tests.faults.health import HealthProbe
from tests.faults.hostile_server import HostileServer

MakeServer = Callable[..., Awaitable[TrawlServer]]


async def test_a_catastrophic_pattern_neither_freezes_nor_misfilters(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    trawl = await make_server()
    async with HealthProbe(trawl.base_url) as probe:
        job = await trawl.submit(
            {
                "url": hostile.url("/re2/seed"),
                "max_depth": 1,
                # Python's re takes minutes on the 40-a link; RE2 microseconds.
                "include": [hostile_content.CATASTROPHIC_PATTERN, "/re2/"],
                "exclude": [r"(x+x+)+y"],
                "formats": ["links"],
            }
        )
        done = await trawl.wait_job(job["id"], timeout=60)
    print("catastrophic include pattern:", probe.summary())
    probe.assert_responsive()
    assert done["status"] == "completed"
    urls = {result["url"] for result in await trawl.results(job["id"])}
    assert urls == {hostile.url("/re2/seed"), hostile.url("/re2/b")}


async def test_a_page_past_the_parse_deadline_fails_alone(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    # The slow page takes 20-40 s; 3 s leaves a loaded machine room for the others.
    trawl = await make_server(parse_timeout=3.0, parser_processes=1)
    async with HealthProbe(trawl.base_url) as probe:
        job = await trawl.submit(
            {
                "url": hostile.url("/parse/seed"),
                "max_depth": 1,
                "formats": ["text"],
                "selectors": {"deep": "p b i"},
            }
        )
        done = await trawl.wait_job(job["id"], timeout=60)
    print("page past the parse deadline:", probe.summary())
    probe.assert_responsive()
    assert done["status"] == "completed"
    results = {r["url"]: r for r in await trawl.results(job["id"])}
    assert hostile.url("/parse/slow") in results, (done, list(results.values()))
    slow = results[hostile.url("/parse/slow")]
    assert slow["error"]["code"] == "parse_timeout", slow
    assert results[hostile.url("/parse/fine")]["error"] is None
    assert trawl.crawler.parser.replaced >= 1
    # The replacement parses the next page: the crawl goes on.
    again = await trawl.submit({"url": hostile.url("/parse/fine")})
    assert (await trawl.wait_job(again["id"]))["stats"]["pages_fetched"] == 1


async def test_a_huge_gzip_sitemap_is_parsed_off_the_loop_and_capped(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    body = hostile_content.huge_sitemap_gz(hostile.url("").rstrip("/"))
    print(f"sitemap: {len(body) / 1e6:.1f} MB gzip, 800,000 locs")
    hostile.sitemap_xml = body  # type: ignore[attr-defined]
    trawl = await make_server()
    async with HealthProbe(trawl.base_url) as probe:
        job = await trawl.submit(
            {"url": hostile.url("/ok"), "use_sitemap": True, "max_pages": 20, "formats": []}
        )
        done = await trawl.wait_job(job["id"], timeout=90)
    print("huge gzip sitemap:", probe.summary())
    probe.assert_responsive()
    assert done["status"] == "completed"
    assert done["stats"]["pages_fetched"] == 20


async def test_a_hostile_robots_txt_costs_the_loop_nothing(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    robots = hostile_content.wildcard_robots()
    hostile.robots_txt = robots  # type: ignore[attr-defined]
    trawl = await make_server()
    async with HealthProbe(trawl.base_url) as probe:
        job = await trawl.submit(
            {"url": hostile.url("/pages/page?n=0&last=40"), "max_depth": 50, "formats": []}
        )
        done = await trawl.wait_job(job["id"], timeout=90)
    print(f"robots.txt {len(robots) // 1024} KiB of wildcard rules:", probe.summary())
    probe.assert_responsive()
    assert done["status"] == "completed"
    assert done["stats"]["pages_fetched"] == 41
    assert hostile.paths().count("/robots.txt") == 1


async def test_non_html_links_are_not_requested_and_non_html_pages_not_counted(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    trawl = await make_server()
    job = await trawl.submit(
        {"url": hostile.url("/nonhtml/seed"), "max_depth": 1, "formats": ["links"]}
    )
    done = await trawl.wait_job(job["id"])
    paths = hostile.paths()
    assert "/_downloads/9a2b/tzinfo_examples.py" not in paths
    assert "/files/report.pdf" not in paths
    assert paths.count("/api/data") == 1  # requested: nothing in its URL says otherwise
    results = {r["url"]: r for r in await trawl.results(job["id"])}
    data = results[hostile.url("/api/data")]
    assert data["content_type"] == "application/json" and data["size"] == 8000
    assert data["error"]["code"] == "not_html" and data.get("links") is None
    # Two HTML pages fetched; the JSON document is not one of them.
    assert done["stats"]["pages_fetched"] == 2
    assert done["stats"]["pages_skipped"] == 1
    skipped = await trawl.results(job["id"], outcome="skipped")
    assert [r["url"] for r in skipped] == [hostile.url("/api/data")]


async def test_follow_non_html_fetches_and_stores_files(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    trawl = await make_server()
    job = await trawl.submit(
        {"url": hostile.url("/nonhtml/seed"), "max_depth": 1, "follow_non_html": True}
    )
    done = await trawl.wait_job(job["id"])
    results = {r["url"]: r for r in await trawl.results(job["id"])}
    script = results[hostile.url("/_downloads/9a2b/tzinfo_examples.py")]
    assert script["content_type"] == "text/x-python" and script["size"] == 1600
    assert script["error"] is None
    assert done["stats"]["pages_fetched"] == 5
