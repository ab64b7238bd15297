"""Politeness across PostgreSQL worker processes: the per-host limit and delay are held
in the database (`hosts.next_at` reserved by each claim), so three workers together
treat a host as one polite crawler would (issue 11)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from tests.conftest import wait_until
from tests.scaleout.cluster import Api, Cluster
from tests.site import Site

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MakeCluster = Callable[..., Cluster]
MakeSite = Callable[..., Site]


async def test_three_workers_keep_one_hosts_delay_and_limit(
    make_cluster: MakeCluster, site_factory: MakeSite
) -> None:
    sites = [site_factory(pages=20, page_delay=0.02, robots=None) for _ in range(2)]
    cluster = make_cluster(SCRAPER_CONCURRENCY="4", SCRAPER_PER_HOST_CONCURRENCY="4")
    [web] = await cluster.start_ready("web")
    await cluster.start_ready("worker", 3)
    api = Api(web)
    delay = 0.2
    try:
        job = await api.submit(
            {
                "urls": [s.url(f"/p/{i}") for s in sites for i in range(8)],
                "per_host_concurrency": 1,
                "per_host_delay": delay,
            }
        )
        done = await api.wait_job(job["id"], timeout=60)
        assert done["status"] == "completed", cluster.logs()
        assert done["stats"]["pages_fetched"] == 16
    finally:
        await api.aclose()
    for site in sites:
        starts = sorted(r.started for r in site.requests if r.path.startswith("/p/"))
        assert len(starts) == 8
        assert site.max_concurrent == 1
        # The site records a start when it has read the request: a little slack for it.
        assert min(b - a for a, b in itertools.pairwise(starts)) >= delay * 0.96


async def test_failures_and_retries_keep_the_delay_across_workers(
    make_cluster: MakeCluster, site_factory: MakeSite
) -> None:
    """A 404 and a 503 (retried) send requests too: their host's delay counts from
    them for every process, not only from pages fetched whole."""
    site = site_factory(pages=20, page_delay=0.02, robots=None)
    cluster = make_cluster(SCRAPER_CONCURRENCY="4", SCRAPER_PER_HOST_CONCURRENCY="4")
    [web] = await cluster.start_ready("web")
    await cluster.start_ready("worker", 3)
    api = Api(web)
    delay = 0.3
    urls = [
        *(site.url(f"/p/{i}") for i in range(3)),
        *(site.url(f"/status/404?n={i}") for i in range(4)),
        *(site.url(f"/flaky/f{i}?fail=1&code=503") for i in range(3)),
    ]
    try:
        job = await api.submit(
            {"urls": urls, "per_host_concurrency": 1, "per_host_delay": delay, "max_depth": 0}
        )
        done = await api.wait_job(job["id"], timeout=60)
        assert done["status"] == "completed", cluster.logs()
    finally:
        await api.aclose()
    starts = sorted(r.started for r in site.requests if r.path != "/robots.txt")
    assert len(starts) == len(urls) + 3  # each flaky page twice
    assert site.max_concurrent == 1
    assert min(b - a for a, b in itertools.pairwise(starts)) >= delay * 0.96


async def test_two_keys_share_every_workers_fetch_tasks_evenly(
    make_cluster: MakeCluster, site_factory: MakeSite
) -> None:
    """Key A crawls three hosts, key B one, through two worker processes: each process
    alone would share its own fetch tasks, but claims land unevenly between them; the
    share held in the claim (issue 16) gives each key half of all fetches."""
    cluster = make_cluster(
        SCRAPER_CONCURRENCY="4", SCRAPER_PER_HOST_CONCURRENCY="8", SCRAPER_API_KEYS="ka,kb"
    )
    [web] = await cluster.start_ready("web")
    await cluster.start_ready("worker", 2)
    api = Api(web)
    a_sites = [site_factory(pages=150, page_delay=0.03, robots=None) for _ in range(3)]
    b_site = site_factory(pages=450, page_delay=0.03, robots=None)

    def starts(site: Site) -> list[float]:
        return sorted(r.started for r in site.requests if r.path.startswith("/p/"))

    jobs = []
    try:
        for key, sites in (("ka", a_sites), ("kb", [b_site])):
            auth = {"Authorization": f"Bearer {key}"}
            urls = [s.url(f"/p/{i}") for s in sites for i in range(450 // len(sites))]
            for chunk in range(0, len(urls), 150):
                job = await api.submit(
                    {"urls": urls[chunk : chunk + 150], "max_pages": 150}, headers=auth
                )
                jobs.append((auth, job["id"]))
        await wait_until(
            lambda: _value(sum(len(starts(s)) for s in [*a_sites, b_site])),
            lambda n: n >= 400,
            timeout=90,
            message="the crawl did not get to 400 fetches",
        )
        a_starts = sorted(t for s in a_sites for t in starts(s))
        b_starts = starts(b_site)
        begin = max(a_starts[0], b_starts[0]) + 0.5
        end = sorted(a_starts + b_starts)[399]
        a_share = sum(begin <= t <= end for t in a_starts)
        b_share = sum(begin <= t <= end for t in b_starts)
        assert a_share + b_share >= 100, (a_share, b_share)
        assert 0.4 <= a_share / (a_share + b_share) <= 0.6, (a_share, b_share, cluster.logs())
        for auth, job_id in jobs:
            response = await api.client.delete(f"/v1/jobs/{job_id}", headers=auth)
            assert response.status_code == 200
    finally:
        await api.aclose()


async def _value(value: int) -> int:
    return value
