"""Politeness across PostgreSQL worker processes: the per-host limit and delay are held
in the database (`hosts.next_at` reserved by each claim), so three workers together
treat a host as one polite crawler would (issue 11)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

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
