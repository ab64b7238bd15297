"""The host-aware frontier from the outside: politeness as servers see it, shortest-path
depth, and fair sharing across jobs and API keys (issues 11 and 16).

Every wait is a deadline on a condition; timing assertions compare what the servers
recorded (time.monotonic() per request start), never the test's own sleeps.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import TrawlServer, wait_until
from tests.site import Response, Site, SiteFactory, SiteHandler

MakeServer = Callable[..., Awaitable[TrawlServer]]
# Starts are recorded by the site when it has read the request: allow a little of its
# own scheduling noise, as the existing per-host delay test does.
SLACK = 0.96
# The site runs in threads of the test process and stamps a start once Python has read
# the request: with the crawl's event loop holding the GIL it reads some late. Logged
# next to the crawler's own send times (monotonic clock, same process), the site read
# requests up to 11 ms after they were sent, and gaps 8-49 ms short of the delay were
# seen at load 9 while the crawler's send-to-send gaps were all >= the delay (the same
# finding as bench/README.md's for wide.py). Allow that much, absolutely.
READ_LAG = 0.05


def _starts(site: Site, prefix: str = "/p/") -> list[float]:
    return sorted(r.started for r in site.requests if r.path.startswith(prefix))


def _page(*links: str) -> bytes:
    anchors = "".join(f'<a href="{link}">{link}</a>' for link in links)
    return f"<html><body>{anchors}</body></html>".encode()


async def test_politeness_holds_per_host_across_jobs(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    """Two jobs on the same three hosts: one request at a time per host, starts spaced by
    the delay, whatever the mix of jobs."""
    trawl = await make_server(concurrency=8, per_host_concurrency=1)
    sites = [site_factory(pages=20, page_delay=0.02, robots=None) for _ in range(3)]
    delay = 0.3
    jobs = [
        await trawl.submit(
            {
                "urls": [s.url(f"/p/{i}") for s in sites for i in range(start, start + 5)],
                "max_pages": 100,
                "per_host_concurrency": 1,
                "per_host_delay": delay,
            }
        )
        for start in (0, 5)
    ]
    for job in jobs:
        done = await trawl.wait_job(job["id"], timeout=60)
        assert done["stats"]["pages_fetched"] == 15
    for site in sites:
        starts = _starts(site)
        assert len(starts) == 10
        assert site.max_concurrent == 1
        assert min(b - a for a, b in itertools.pairwise(starts)) >= delay - READ_LAG


async def test_per_host_concurrency_is_shared_by_all_jobs(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    trawl = await make_server(concurrency=16, per_host_concurrency=2)
    site = site_factory(pages=40, page_delay=0.05)
    jobs = [
        await trawl.submit({"urls": [site.url(f"/p/{i}") for i in range(start, start + 12)]})
        for start in (0, 12, 24)
    ]
    for job in jobs:
        assert (await trawl.wait_job(job["id"], timeout=60))["status"] == "completed"
    assert site.max_concurrent == 2


async def test_depth_is_the_shortest_link_path(trawl: TrawlServer, site: Site) -> None:
    """A slow short path and a fast long path to the same page: the page ends at the
    short path's depth, and its links (cut at the long path's depth) are followed."""

    def slow(handler: SiteHandler) -> Response:
        time.sleep(1.0)  # the site's own thread: the fast path wins the race meanwhile
        return Response(body=_page("/target"))

    site.add_page("/start", _page("/slow", "/a"))
    site.route("/slow", slow)
    site.add_page("/a", _page("/b"))
    site.add_page("/b", _page("/target"))
    site.add_page("/target", _page("/leaf"))
    site.add_page("/leaf", _page())
    job = await trawl.submit(
        {"url": site.url("/start"), "max_depth": 3, "max_pages": 50, "respect_robots": False}
    )
    done = await trawl.wait_job(job["id"], timeout=30)
    assert done["status"] == "completed"
    pages = {item["url"]: item for item in await trawl.results(job["id"])}
    assert set(pages) == {site.url(p) for p in ("/start", "/slow", "/a", "/b", "/target", "/leaf")}
    assert pages[site.url("/target")]["depth"] == 2
    assert pages[site.url("/leaf")]["depth"] == 3
    # Found first at depth 3 (links cut), fetched again once its depth dropped to 2.
    assert site.count("/target") == 2
    assert done["stats"]["pages_fetched"] == 6  # max_pages counts the page once


async def _small_job_latency(
    trawl: TrawlServer, big_site: Site, small_site: Site, **extra: Any
) -> tuple[float, dict[str, Any]]:
    big = await trawl.submit(
        {"urls": [big_site.url(f"/p/{i}") for i in range(600)], "max_pages": 600}
    )
    await wait_until(
        lambda: trawl.job(big["id"]), lambda j: j["stats"]["pages_fetched"] >= 20, timeout=30
    )
    submitted = time.monotonic()
    small = await trawl.submit({"url": small_site.url("/p/1"), **extra})
    await trawl.wait_job(small["id"], timeout=30)
    latency = time.monotonic() - submitted
    return latency, await trawl.job(big["id"])


async def test_one_page_job_is_not_stuck_behind_a_big_job_on_the_same_host(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    trawl = await make_server(concurrency=8, per_host_concurrency=8)
    site = site_factory(pages=700, page_delay=0.02)
    latency, big = await _small_job_latency(trawl, site, site)
    # FIFO would finish the small job only after the ~580 pages queued ahead of it.
    assert big["status"] == "running"
    assert big["stats"]["pages_fetched"] < 500
    assert latency < 3.0  # target 1.5 s; the bench measures it on a quiet service


async def test_one_page_job_on_another_host_is_not_stuck_behind_a_big_job(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    trawl = await make_server(concurrency=8, per_host_concurrency=8)
    busy, other = site_factory(pages=700, page_delay=0.02), site_factory(pages=5)
    latency, big = await _small_job_latency(trawl, busy, other)
    assert big["status"] == "running"
    assert big["stats"]["pages_fetched"] < 500
    assert latency < 2.0  # target 1.0 s


async def test_two_keys_share_the_workers_evenly(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    """Key A crawls three hosts, key B one: per host round robin alone would give A three
    quarters of the fetches; the per-key share gives each half."""
    trawl = await make_server(concurrency=4, per_host_concurrency=8, api_keys=("ka", "kb"))
    a_sites = [site_factory(pages=150, page_delay=0.03, robots=None) for _ in range(3)]
    b_site = site_factory(pages=450, page_delay=0.03, robots=None)
    a_urls = [s.url(f"/p/{i}") for s in a_sites for i in range(150)]
    b_urls = [b_site.url(f"/p/{i}") for i in range(450)]
    jobs = []
    for key, urls in (("ka", a_urls), ("kb", b_urls)):
        for chunk in range(0, len(urls), 150):
            auth = {"Authorization": f"Bearer {key}"}
            job = await trawl.submit(
                {"urls": urls[chunk : chunk + 150], "max_pages": 150}, headers=auth
            )
            jobs.append((auth, job["id"]))
    # Both keys have backlog until about half of all pages are fetched: judge the
    # shares from half a second in to the 400th fetch.
    await wait_until(
        lambda: _async(lambda: sum(len(_starts(s)) for s in [*a_sites, b_site])),
        lambda n: n >= 400,
        timeout=60,
    )
    a_starts = sorted(t for s in a_sites for t in _starts(s))
    b_starts = _starts(b_site)
    begin = min(a_starts[0], b_starts[0]) + 0.5
    end = sorted(a_starts + b_starts)[399]
    a_share = sum(begin <= t <= end for t in a_starts)
    b_share = sum(begin <= t <= end for t in b_starts)
    assert a_share + b_share >= 100
    assert 0.4 <= a_share / (a_share + b_share) <= 0.6, (a_share, b_share)
    for auth, job_id in jobs:
        response = await trawl.client.delete(f"/v1/jobs/{job_id}", headers=auth)
        assert response.status_code == 200


async def _async(fn: Callable[[], Any]) -> Any:
    return fn()


async def test_priority_is_validated_and_echoed(trawl: TrawlServer, site: Site) -> None:
    response = await trawl.client.post("/v1/jobs", json={"url": site.url("/"), "priority": "asap"})
    assert response.status_code == 422
    assert "priority" in response.text
    job = await trawl.submit({"url": site.url("/"), "priority": "high"})
    assert job["request"]["priority"] == "high"
    plain = await trawl.submit({"url": site.url("/")})
    assert plain["request"]["priority"] == "normal"


async def test_adaptive_delay_starts_careful_and_follows_the_host(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    trawl = await make_server(concurrency=4, per_host_concurrency=1)
    site = site_factory(pages=20, page_delay=0.05, robots=None)
    job = await trawl.submit(
        {"urls": [site.url(f"/p/{i}") for i in range(8)], "adaptive_delay": True}
    )
    done = await trawl.wait_job(job["id"], timeout=60)
    assert done["status"] == "completed"
    assert done["request"]["adaptive_delay"] is True
    gaps = [b - a for a, b in itertools.pairwise(_starts(site))]
    assert gaps[0] >= 0.5 * SLACK  # the starting delay, before any latency was seen
    assert min(gaps) >= 0.05 * SLACK  # never closer than the host's own latency
    assert gaps[-1] < gaps[0]  # it came down towards the latency
