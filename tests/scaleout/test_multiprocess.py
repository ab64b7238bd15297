"""Scale-out on PostgreSQL: real web and worker processes crawl one job together."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from service.store.migrate import load_migrations
from tests.conftest import eventually, wait_until
from tests.scaleout.cluster import REPO, Api, Cluster
from tests.site import Site
from tests.store import pgdb

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MakeCluster = Callable[..., Cluster]
MakeSite = Callable[..., Site]

# Each worker buffers up to 3 x concurrency claims, so with these three workers share one
# host's budget: the per-host limit, counted in the database, is what binds.
CONCURRENCY = 6
PER_HOST = 12
CRAWL_ENV = {
    "SCRAPER_CONCURRENCY": str(CONCURRENCY),
    "SCRAPER_PER_HOST_CONCURRENCY": str(PER_HOST),
}


def crawl_request(site: Site, **extra: Any) -> dict[str, Any]:
    return {"url": site.url("/"), "max_depth": 4, "max_pages": 2000, **extra}


def page_requests(site: Site) -> Counter[str]:
    return Counter(r.path for r in site.requests if r.path != "/robots.txt")


async def claims_by_worker(database_url: str, job_id: str) -> dict[str, int]:
    """How many of the job's URLs each worker claimed last (claimed_by outlives the claim)."""
    rows = await pgdb.query(
        database_url,
        "SELECT claimed_by, count(*) AS n FROM frontier WHERE job_id = $1 GROUP BY claimed_by",
        job_id,
    )
    return {row["claimed_by"]: row["n"] for row in rows if row["claimed_by"]}


async def test_web_and_three_workers_store_every_page_once(
    make_cluster: MakeCluster, site_factory: MakeSite
) -> None:
    site = site_factory(pages=1000, fanout=10, page_delay=0.005)
    expected = site.expected_urls(4)
    assert len(expected) == 1001
    cluster = make_cluster(**CRAWL_ENV)
    web, other_web = await cluster.start_ready("web", 2)
    await cluster.start_ready("worker", 3)
    api, other_api = Api(web), Api(other_web)
    try:
        job = await api.submit(crawl_request(site))
        done = await api.wait_job(job["id"], timeout=90)
        assert done["status"] == "completed", cluster.logs()
        results = await api.results(job["id"])
        urls = [item["url"] for item in results]
        assert len(urls) == len(set(urls)) == len(expected), "a page was lost or stored twice"
        assert set(urls) == expected
        assert all(item["error"] is None for item in results)
        assert done["stats"] == {
            "pages_discovered": 1001,
            "pages_queued": 0,
            "pages_fetched": 1001,
            "pages_failed": 0,
            "pages_skipped": 0,
        }
        # Nobody died, so nothing was fetched twice; and the host's limit held across
        # processes (claims are counted in the database, not per process).
        assert max(page_requests(site).values()) == 1
        assert site.max_concurrent <= PER_HOST
        workers = await claims_by_worker(cluster.database_url, job["id"])
        assert len(workers) >= 2, f"the work was not shared: {workers}"
        # Any web process answers the same.
        assert await other_api.job(job["id"]) == done
        assert [item["url"] for item in await other_api.results(job["id"])] == urls
    finally:
        await api.aclose()
        await other_api.aclose()


async def test_a_killed_worker_loses_and_doubles_nothing(
    make_cluster: MakeCluster, site_factory: MakeSite
) -> None:
    site = site_factory(pages=1000, fanout=10, page_delay=0.01)
    expected = site.expected_urls(4)
    cluster = make_cluster(**CRAWL_ENV, SCRAPER_LEASE_SECONDS="2")
    [web] = await cluster.start_ready("web")
    victim, *_ = await cluster.start_ready("worker", 3)
    api = Api(web)
    try:
        job = await api.submit(crawl_request(site))
        await api.wait_job(job["id"], lambda j: j["stats"]["pages_fetched"] >= 150, timeout=60)

        async def victim_claims() -> list[str]:
            rows = await pgdb.query(
                cluster.database_url,
                "SELECT url FROM frontier WHERE state = 'claimed' AND claimed_by LIKE $1",
                f"%:{victim.pid}:%",
            )
            return [row["url"] for row in rows]

        # Kill it while it holds claims, so their leases must run out for the job to end.
        await wait_until(victim_claims, bool, 30, 0.02, message="the victim never held a claim")
        victim.crash()
        orphaned = await victim_claims()
        assert orphaned, "the kill left no claims behind"
        stats_at_kill = (await api.job(job["id"]))["stats"]
        assert stats_at_kill["pages_queued"] > 0, "killed too late: the crawl was over"

        done = await api.wait_job(job["id"], timeout=90)
        assert done["status"] == "completed", cluster.logs()
        results = await api.results(job["id"])
        urls = [item["url"] for item in results]
        assert len(urls) == len(set(urls)) == len(expected), "a page was lost or stored twice"
        assert set(urls) == expected
        assert set(orphaned) <= set(urls)
        assert done["stats"]["pages_fetched"] == done["stats"]["pages_discovered"] == 1001
    finally:
        await api.aclose()


async def test_cancel_reaches_every_worker_within_a_second(
    make_cluster: MakeCluster, site_factory: MakeSite
) -> None:
    site = site_factory(pages=1000, fanout=10, page_delay=0.05)
    cluster = make_cluster(**CRAWL_ENV)
    [web] = await cluster.start_ready("web")
    await cluster.start_ready("worker", 3)
    api = Api(web)
    try:
        job = await api.submit(crawl_request(site))
        # Cancel once every worker has taken part, while the crawl is far from done.
        await wait_until(
            lambda: claims_by_worker(cluster.database_url, job["id"]),
            lambda workers: len(workers) >= 3,
            60,
            message="not every worker got work",
        )
        cancelled = await api.cancel(job["id"])
        cancelled_at = time.monotonic()
        assert cancelled["status"] == "cancelled"

        # Workers poll job statuses every 0.5 s; after that only fetches already in
        # flight may finish (each takes page_delay). Wait for the site to go quiet.
        quiet: dict[str, float] = {"since": time.monotonic(), "seen": len(site.requests)}

        def quiet_for() -> float:
            if len(site.requests) != quiet["seen"]:
                quiet.update(since=time.monotonic(), seen=len(site.requests))
            return time.monotonic() - quiet["since"]

        await eventually(
            lambda: quiet_for() >= 1.0,
            5 - (time.monotonic() - cancelled_at),
            0.05,
            message="fetching went on after the cancel",
        )
        assert quiet["since"] - cancelled_at < 1.5, "a worker kept fetching for too long"
        final = await api.job(job["id"])
        assert final["status"] == "cancelled"
        assert final["stats"]["pages_fetched"] < 1001
        assert await api.cancel(job["id"]) == final  # idempotent
    finally:
        await api.aclose()


# Every process waits for the same start time (after its imports), then opens the store.
_OPEN_STORE = """
import asyncio, json, sys, time
from service.store.postgres import PostgresStore

async def main() -> None:
    store = PostgresStore(sys.argv[1], pool_size=2)
    await asyncio.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    await store.open()
    print(json.dumps(store.applied_migrations))
    await store.close()

asyncio.run(main())
"""


async def test_concurrent_starts_apply_migrations_once(pg_url: str) -> None:
    start_at = str(time.time() + 4)  # past every child's start-up
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _OPEN_STORE,
            pg_url,
            start_at,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        finished = await asyncio.wait_for(
            asyncio.gather(*(proc.communicate() for proc in procs)), timeout=60
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    for proc, (_, err) in zip(procs, finished, strict=True):
        assert proc.returncode == 0, err.decode()
    outputs = [json.loads(out) for out, _ in finished]
    versions = [m.version for m in load_migrations("postgresql")]
    assert sorted(outputs) == [[], [], [], versions]
    rows = await pgdb.query(pg_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert [row["version"] for row in rows] == versions
