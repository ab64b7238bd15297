"""Schedules on PostgreSQL: exactly one run per tick whatever the number of processes.

Two layers: real processes (a web process creates the schedule; two worker processes
tick, one leads, and the other takes over when the leader is killed), and two tickers in
one process that both believe they lead (the claim in the database still fires each
tick once).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from service.store.postgres import PostgresStore
from service.ticker import ScheduleTicker
from tests.conftest import wait_until
from tests.fakeclock import FakeClock
from tests.gate import Gate
from tests.scaleout.cluster import Api, Cluster
from tests.site import Site
from tests.store import pgdb

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MakeCluster = Callable[..., Cluster]
HOUR = 3600.0


async def runs_of(database_url: str, schedule_id: str) -> list[dict[str, Any]]:
    rows = await pgdb.query(
        database_url,
        "SELECT tick_at, fired_at, state, job_id, missed FROM schedule_runs "
        "WHERE schedule_id = $1 ORDER BY tick_at",
        schedule_id,
    )
    return [dict(row) for row in rows]


async def wait_for_runs(
    database_url: str, schedule_id: str, count: int, timeout: float = 60.0
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = await wait_until(
        lambda: runs_of(database_url, schedule_id),
        lambda runs: len([r for r in runs if r["state"] != "pending"]) >= count,
        timeout,
        0.1,
        message=f"{count} runs not there",
    )
    return runs


async def test_two_worker_processes_fire_each_tick_once(
    make_cluster: MakeCluster, pg_url: str, site: Site
) -> None:
    cluster = make_cluster(SCRAPER_MIN_SCHEDULE_INTERVAL="1s")
    try:
        (web,) = await cluster.start_ready("web")
        workers = await cluster.start_ready("worker", 2)
        api = Api(web)
        response = await api.client.post(
            "/v1/schedules", json={"job": {"url": site.url("/")}, "every": "2s"}
        )
        assert response.status_code == 201, response.text
        schedule_id = response.json()["id"]
        # The web process's NOTIFY wakes the leading worker: the first run is at once.
        runs = await wait_for_runs(pg_url, schedule_id, 4)

        leaders = [w for w in workers if "schedule" in w.log and "started job" in w.log]
        assert len(leaders) == 1, cluster.logs()
        leaders[0].crash()  # the other worker takes the lead (asks every 3 s)
        before = len(runs)
        runs = await wait_for_runs(pg_url, schedule_id, before + 3)
        await api.aclose()
    except BaseException:
        print(cluster.logs())
        raise

    ticks = [r["tick_at"] for r in runs]
    assert len(ticks) == len(set(ticks))  # never two runs for one tick
    started = [r for r in runs if r["state"] == "started"]
    jobs = await pgdb.query(pg_url, "SELECT id FROM jobs")
    assert sorted(r["job_id"] for r in started) == sorted(row["id"] for row in jobs)
    assert all(r["state"] in ("started", "skipped") for r in runs)
    # Ticks are 2 s apart; the hand-over may pass some over (one catch-up run for them).
    gaps = Counter(round(b - a, 3) for a, b in itertools.pairwise(ticks))
    assert all(gap % 2.0 == 0 for gap in gaps), gaps
    on_time = [r for r in runs[:before] if r["missed"] == 0]
    assert all(r["fired_at"] - r["tick_at"] < 1.0 for r in on_time), runs


async def test_killing_the_leader_in_the_middle_of_a_run_neither_repeats_nor_stops_it(
    make_cluster: MakeCluster, pg_url: str, site: Site
) -> None:
    """The leading worker dies (SIGKILL) while the run's job is still crawling: the job
    finishes on the other worker (its lease expires), ticks meanwhile are skipped, and
    the next tick after it ended starts the next run (a recrawl of it) from the new leader."""
    gate = Gate(site)
    cluster = make_cluster(SCRAPER_MIN_SCHEDULE_INTERVAL="1s", SCRAPER_LEASE_SECONDS="2")
    try:
        (web,) = await cluster.start_ready("web")
        workers = await cluster.start_ready("worker", 2)
        api = Api(web)
        response = await api.client.post(
            "/v1/schedules", json={"job": {"url": gate.url}, "every": "2s"}
        )
        assert response.status_code == 201, response.text
        schedule_id = response.json()["id"]
        runs = await wait_for_runs(pg_url, schedule_id, 1)
        first_job = runs[0]["job_id"]
        await api.wait_job(first_job, until=lambda job: job["status"] == "running")
        leaders = [w for w in workers if "started job" in w.log]
        assert len(leaders) == 1, cluster.logs()
        leaders[0].crash()
        survivor = next(w for w in workers if w is not leaders[0])
        # Ticks pass while the job is unfinished: skipped, by the new leader too.
        runs = await wait_for_runs(pg_url, schedule_id, len(runs) + 2)
        gate.open()
        finished = await api.wait_job(first_job)
        assert finished["status"] == "completed"

        def second_started(found: list[dict[str, Any]]) -> bool:
            return len([r for r in found if r["state"] == "started"]) >= 2

        deadline = asyncio.get_running_loop().time() + 30
        while not second_started(runs := await runs_of(pg_url, schedule_id)):
            assert asyncio.get_running_loop().time() < deadline, runs
            await asyncio.sleep(0.1)
        second = [r for r in runs if r["state"] == "started"][1]
        recrawl = await api.wait_job(second["job_id"])
        assert recrawl["recrawl_of"] == first_job
        assert "started job" in survivor.log
        await api.aclose()
    except BaseException:
        gate.open()
        print(cluster.logs())
        raise
    started = [r for r in runs if r["state"] == "started"]
    skipped = [r for r in runs if r["state"] == "skipped"]
    assert skipped and all(r["tick_at"] < second["tick_at"] for r in skipped)
    assert len({r["tick_at"] for r in runs}) == len(runs)
    jobs = await pgdb.query(pg_url, "SELECT id FROM jobs")
    assert sorted(r["job_id"] for r in started) == sorted(row["id"] for row in jobs)


async def test_two_tickers_that_both_lead_fire_each_tick_once(
    pg_url: str, tmp_path: Path, site: Site
) -> None:
    settings = Settings(database_url=pg_url, allow_private_networks=True)
    stores = [PostgresStore(pg_url, pool_size=2) for _ in range(2)]
    for store in stores:
        await store.open()
    try:
        from service.schedules import Timing
        from service.store.schedules import NewSchedule

        clock = FakeClock(start=1_800_000_000.0)
        timing = Timing(every=HOUR, anchor=clock.now())
        await stores[0].schedules.create(
            NewSchedule(
                id="s1",
                owner="",
                name=None,
                request={"urls": [site.url("/")]},
                timing=timing,
                paused=False,
                next_run_at=clock.now(),
                created_at=clock.now(),
            ),
            limit=10,
        )

        async def always() -> bool:
            return True

        tickers = [ScheduleTicker(settings, s, clock=clock, lead=always) for s in stores]
        for _ in range(5):
            await asyncio.gather(*(ticker.tick() for ticker in tickers))
            clock.advance(HOUR)
        runs = await runs_of(pg_url, "s1")
        assert [r["tick_at"] - runs[0]["tick_at"] for r in runs] == [i * HOUR for i in range(5)]
        assert [r["state"] for r in runs] == ["started"] + ["skipped"] * 4  # nobody crawls
        assert len(await pgdb.query(pg_url, "SELECT id FROM jobs")) == 1
    finally:
        for store in stores:
            await store.close()
