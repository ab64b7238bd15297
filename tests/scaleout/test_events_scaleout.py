"""Live progress on PostgreSQL: a web process streams what separate workers crawl."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.scaleout.cluster import Api, Cluster
from tests.site import Site
from tests.sse import job_events

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MakeCluster = Callable[..., Cluster]
MakeSite = Callable[..., Site]


async def test_web_process_streams_progress_made_by_worker_processes(
    make_cluster: MakeCluster, site_factory: MakeSite
) -> None:
    site = site_factory(pages=200, fanout=5, page_delay=0.01)
    cluster = make_cluster(SCRAPER_CONCURRENCY="4", SCRAPER_PER_HOST_CONCURRENCY="4")
    (web,) = await cluster.start_ready("web", 1)
    await cluster.start_ready("worker", 2)
    api = Api(web)
    try:
        job = await api.submit({"url": site.url("/"), "max_depth": 5, "max_pages": 200})
        events = [e async for e in job_events(api.client, f"/v1/jobs/{job['id']}/events")]
        assert events[-1]["status"] == "completed", cluster.logs()
        assert events[-1]["stats"]["pages_fetched"] == 200
        fetched = [event["stats"]["pages_fetched"] for event in events]
        assert fetched == sorted(fetched)
        # The web process fetches nothing itself: every step came from the workers via the DB.
        assert len({n for n in fetched if 0 < n < 200}) >= 2, fetched
    finally:
        await api.aclose()
