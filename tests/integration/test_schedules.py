"""Schedules firing in a real Trawl (SQLite file, local site): on time, one catch-up run
after a clock jump or downtime, skip-if-running, restarts, unfinished runs finished.

The ticker runs on a FakeClock the tests move forward; nothing sleeps to synchronise:
each step waits on a condition with a deadline.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from service.schedules import RunState
from service.store.sqlite import SQLiteStore
from service.ticker import idempotency_key
from tests.conftest import TrawlServer, wait_until
from tests.conftest import test_settings as settings_for
from tests.fakeclock import FakeClock
from tests.gate import Gate
from tests.site import Site

HOUR = 3600.0


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def start(tmp_path: Path, clock: FakeClock | None, **overrides: Any) -> TrawlServer:
    server = TrawlServer(settings_for(tmp_path, **overrides))
    server.app.ctx.clock = clock
    return await server.start()


async def create(server: TrawlServer, body: dict[str, Any]) -> dict[str, Any]:
    response = await server.client.post(
        "/v1/schedules",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def schedule_of(server: TrawlServer, schedule_id: str) -> dict[str, Any]:
    response = await server.client.get(f"/v1/schedules/{schedule_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_runs(
    server: TrawlServer, schedule_id: str, count: int, *, settled: bool = True
) -> dict[str, Any]:
    """The schedule once it has `count` runs, the newest settled (its job final, or
    skipped/failed) or, if `settled` is False, at least started (its job created: a
    claimed tick is listed as pending before the ticker has created its job)."""

    def done(body: dict[str, Any]) -> bool:
        runs = body["runs"]
        if len(runs) < count:
            return False
        if not settled:
            return runs[0]["job_id"] is not None or runs[0]["status"] != "pending"
        return runs[0]["status"] in ("completed", "failed", "cancelled", "skipped")

    result: dict[str, Any] = await wait_until(
        lambda: schedule_of(server, schedule_id), done, timeout=30
    )
    return result


async def quiet(server: TrawlServer) -> None:
    """Wait until the ticker has gone through a whole pass after everything so far."""
    ticker = server.app.ctx.ticker
    assert ticker is not None
    before = ticker.passes

    async def passes() -> int:
        return int(ticker.passes)

    ticker.wake()
    await wait_until(passes, lambda n: n > before, timeout=10)


async def started_runs(server: TrawlServer) -> float:
    """trawl_schedule_runs_total{state="started"} (the registry is the process's)."""
    text = (await server.client.get("/metrics")).text
    found = re.search(r'^trawl_schedule_runs_total\{state="started"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_runs_fire_on_their_ticks_and_a_clock_jump_makes_one_catch_up_run(
    tmp_path: Path, site: Site
) -> None:
    clock = FakeClock(start=1_800_000_000.0)
    server = await start(tmp_path, clock)
    try:
        started_before = await started_runs(server)
        body = await create(server, {"job": {"url": site.url("/")}, "every": "1h"})
        created = moment(body["created_at"])
        assert created == clock.now()
        # The first run of an interval is at once (the create woke the ticker).
        first = await wait_runs(server, body["id"], 1)
        assert first["runs"][0]["status"] == "completed"
        assert moment(first["runs"][0]["tick_at"]) == created
        assert moment(first["next_run_at"]) == created + HOUR
        assert first["last_job_id"] == first["runs"][0]["job_id"]

        clock.advance(HOUR)
        second = await wait_runs(server, body["id"], 2)
        run = second["runs"][0]
        assert run["status"] == "completed" and run["missed"] == 0
        assert moment(run["tick_at"]) == created + HOUR == moment(run["fired_at"])
        assert run["job_id"] != first["runs"][0]["job_id"]

        # Four ticks pass at once (2h..5h): one catch-up run, then the next future tick.
        clock.advance(4.5 * HOUR)
        third = await wait_runs(server, body["id"], 3)
        run = third["runs"][0]
        assert run["missed"] == 3  # 3h, 4h and 5h had no run of their own
        assert moment(run["tick_at"]) == created + 2 * HOUR
        assert moment(third["next_run_at"]) == created + 6 * HOUR
        await quiet(server)
        assert len((await schedule_of(server, body["id"]))["runs"]) == 3
        jobs = (await server.client.get("/v1/jobs")).json()["items"]
        assert len(jobs) == 3
        assert await started_runs(server) == started_before + 3
    finally:
        await server.stop()


async def test_runs_missed_while_down_make_one_run_at_start(tmp_path: Path, site: Site) -> None:
    clock = FakeClock(start=1_800_000_000.0)
    server = await start(tmp_path, clock)
    try:
        body = await create(server, {"job": {"url": site.url("/")}, "every": "1h"})
        await wait_runs(server, body["id"], 1)
    finally:
        await server.stop()
    clock.advance(10 * HOUR)  # down for ten hours
    server = await start(tmp_path, clock)
    try:
        after = await wait_runs(server, body["id"], 2)
        run = after["runs"][0]
        assert run["status"] == "completed"
        assert run["missed"] == 9  # ticks 1h..10h: one run for all ten
        assert moment(after["next_run_at"]) == moment(body["created_at"]) + 11 * HOUR
        await quiet(server)
        assert len((await schedule_of(server, body["id"]))["runs"]) == 2
    finally:
        await server.stop()


async def test_a_run_is_skipped_while_the_previous_one_runs(tmp_path: Path, site: Site) -> None:
    gate = Gate(site)
    clock = FakeClock(start=1_800_000_000.0)
    server = await start(tmp_path, clock)
    try:
        body = await create(server, {"job": {"url": gate.url}, "every": "1h"})
        first = await wait_runs(server, body["id"], 1, settled=False)
        job_id = first["runs"][0]["job_id"]
        await server.wait_job(job_id, {"running"})

        clock.advance(HOUR)
        skipped = await wait_runs(server, body["id"], 2)
        run = skipped["runs"][0]
        assert run["status"] == "skipped" and run["reason"] == "previous_run_active"
        assert run["job_id"] is None
        assert skipped["last_job_id"] == job_id
        assert moment(skipped["next_run_at"]) == moment(body["created_at"]) + 2 * HOUR

        gate.open()
        await server.wait_job(job_id)
        clock.advance(HOUR)
        third = await wait_runs(server, body["id"], 3)
        assert third["runs"][0]["status"] == "completed"
        assert third["runs"][0]["job_id"] not in (None, job_id)
        assert [r["status"] for r in third["runs"]] == ["completed", "skipped", "completed"]
        # The same runs, paged.
        url = f"/v1/schedules/{body['id']}/runs"
        page = (await server.client.get(url, params={"limit": "2"})).json()
        assert page["items"] == third["runs"][:2] and page["next_cursor"]
        rest = await server.client.get(url, params={"cursor": page["next_cursor"]})
        assert rest.json() == {"items": third["runs"][2:], "next_cursor": None}
        missing = await server.client.get("/v1/schedules/nope/runs")
        assert missing.status_code == 404
    finally:
        gate.open()
        await server.stop()


async def test_a_restart_in_the_middle_of_a_run_neither_repeats_it_nor_stops_the_next(
    tmp_path: Path, site: Site
) -> None:
    gate = Gate(site)
    clock = FakeClock(start=1_800_000_000.0)
    server = await start(tmp_path, clock, grace_period=0.5)
    try:
        body = await create(server, {"job": {"url": gate.url}, "every": "1h"})
        first = await wait_runs(server, body["id"], 1, settled=False)
        job_id = first["runs"][0]["job_id"]
        await server.wait_job(job_id, {"running"})
    finally:
        await server.stop()  # the page is still being fetched: it goes back to the frontier
    gate.open()
    server = await start(tmp_path, clock)
    try:
        finished = await server.wait_job(job_id)
        assert finished["status"] == "completed"
        await quiet(server)
        again = await schedule_of(server, body["id"])
        assert len(again["runs"]) == 1  # no second run for the same tick
        assert again["next_run_at"] == first["next_run_at"]

        clock.advance(HOUR)
        after = await wait_runs(server, body["id"], 2)
        assert after["runs"][0]["status"] == "completed"
        assert len((await server.client.get("/v1/jobs")).json()["items"]) == 2
    finally:
        await server.stop()


@pytest.mark.parametrize("job_created", [False, True])
async def test_a_run_left_pending_by_a_stopped_process_is_finished_once(
    tmp_path: Path, site: Site, job_created: bool
) -> None:
    """The process stopped after claiming the tick (and maybe after creating its job)."""
    clock = FakeClock(start=1_800_000_000.0)
    server = await start(tmp_path, clock)
    try:
        body = await create(server, {"job": {"url": site.url("/")}, "cron": "0 * * * *"})
    finally:
        await server.stop()
    store = SQLiteStore(str(tmp_path / "trawl.db"))
    await store.open()
    try:
        schedule = await store.schedules.get_any(body["id"])
        assert schedule is not None and schedule.next_run_at is not None
        tick = schedule.next_run_at
        clock.advance(tick - clock.now())
        run = await store.schedules.claim(
            schedule, next_run_at=tick + HOUR, now=clock.now(), missed=0
        )
        assert run is not None and run.state == RunState.PENDING
        # A second claim of the same tick (another leader) gets nothing.
        assert (
            await store.schedules.claim(
                schedule, next_run_at=tick + HOUR, now=clock.now(), missed=0
            )
            is None
        )
        if job_created:
            from service.models import parse_job_request
            from service.submission import limits_of, store_job

            settings = settings_for(tmp_path)
            request = parse_job_request(schedule.request, limits_of(settings))
            await store_job(
                store, settings, request, owner=None, key=idempotency_key(schedule.id, tick)
            )
    finally:
        await store.close()
    server = await start(tmp_path, clock)
    try:
        after = await wait_runs(server, body["id"], 1)
        assert after["runs"][0]["status"] == "completed"
        assert moment(after["runs"][0]["tick_at"]) == tick
        jobs = (await server.client.get("/v1/jobs")).json()["items"]
        assert len(jobs) == 1 and jobs[0]["id"] == after["runs"][0]["job_id"]
    finally:
        await server.stop()


async def test_pausing_stops_runs_and_resuming_does_not_catch_up(
    tmp_path: Path, site: Site
) -> None:
    clock = FakeClock(start=1_800_000_000.0)
    server = await start(tmp_path, clock)
    try:
        body = await create(server, {"job": {"url": site.url("/")}, "every": "1h"})
        await wait_runs(server, body["id"], 1)
        response = await server.client.patch(f"/v1/schedules/{body['id']}", json={"paused": True})
        assert response.status_code == 200
        clock.advance(3 * HOUR)
        await quiet(server)
        assert len((await schedule_of(server, body["id"]))["runs"]) == 1
        resumed = await server.client.patch(f"/v1/schedules/{body['id']}", json={"paused": False})
        assert moment(resumed.json()["next_run_at"]) == moment(body["created_at"]) + 4 * HOUR
        await quiet(server)
        assert len((await schedule_of(server, body["id"]))["runs"]) == 1
        clock.advance(HOUR)
        await wait_runs(server, body["id"], 2)
    finally:
        await server.stop()


async def test_schedules_fire_on_time_on_the_real_clock(tmp_path: Path, site: Site) -> None:
    server = await start(tmp_path, None, min_schedule_interval=1.0)
    try:
        body = await create(server, {"job": {"url": site.url("/")}, "every": "2s"})
        after = await wait_runs(server, body["id"], 3)
        for run in after["runs"]:
            assert run["status"] == "completed"
            late = moment(run["fired_at"]) - moment(run["tick_at"])
            assert 0 <= late < 1.0, run
        ticks = sorted(moment(run["tick_at"]) for run in after["runs"])
        assert [round(b - a, 3) for a, b in itertools.pairwise(ticks)] == [2.0, 2.0]
    finally:
        await server.stop()


async def test_each_run_recrawls_the_previous_one_and_counts_its_changes(
    tmp_path: Path, site_factory: Any
) -> None:
    site: Site = site_factory(pages=3, fanout=3)  # /, /p/0 and its leaves /p/1, /p/2
    clock = FakeClock(start=1_800_000_000.0)
    server = await start(tmp_path, clock)
    try:
        job = {"url": site.url("/"), "max_depth": 2, "formats": ["text"]}
        body = await create(server, {"job": job, "every": "1h"})
        first = (await wait_runs(server, body["id"], 1))["runs"][0]
        assert first["status"] == "completed" and first["changes"] is None  # a plain job

        site.add_page("/p/1", "<html><head><title>P1</title></head><body>Edited.</body></html>")
        clock.advance(HOUR)
        second = (await wait_runs(server, body["id"], 2))["runs"][0]
        assert second["status"] == "completed"
        assert second["changes"] == {"new": 0, "changed": 1, "unchanged": 3, "removed": 0}, second
        recrawl = await server.job(second["job_id"])
        assert recrawl["recrawl_of"] == first["job_id"]

        site.add_page("/p/2", "gone", status=404)
        clock.advance(HOUR)
        third = (await wait_runs(server, body["id"], 3))["runs"][0]
        assert (await server.job(third["job_id"]))["recrawl_of"] == second["job_id"]
        assert third["changes"]["removed"] == 1 and third["changes"]["changed"] == 0, third
    finally:
        await server.stop()


async def test_run_now_is_an_extra_run_by_the_same_rules(tmp_path: Path, site: Site) -> None:
    gate = Gate(site)
    clock = FakeClock(start=1_800_000_000.0)
    server = await start(tmp_path, clock)
    try:
        body = await create(server, {"job": {"url": gate.url}, "cron": "0 * * * *"})
        assert body["runs"] == []
        response = await server.client.post(f"/v1/schedules/{body['id']}/run")
        assert response.status_code == 202, response.text
        ran = response.json()
        assert ran["next_run_at"] == body["next_run_at"]  # its ticks stay as they were
        (run,) = ran["runs"]
        assert run["job_id"] and moment(run["tick_at"]) == clock.now()
        await server.wait_job(run["job_id"], {"running"})
        clock.advance(1)
        again = await server.client.post(f"/v1/schedules/{body['id']}/run")
        assert again.status_code == 202
        assert again.json()["runs"][0]["status"] == "skipped"
        assert again.json()["runs"][0]["reason"] == "previous_run_active"
        gate.open()
        await server.wait_job(run["job_id"])
        clock.advance(1)
        third = (await server.client.post(f"/v1/schedules/{body['id']}/run")).json()
        recrawl = await server.wait_job(third["runs"][0]["job_id"])
        assert recrawl["recrawl_of"] == run["job_id"]
        missing = await server.client.post("/v1/schedules/nope/run")
        assert missing.status_code == 404
    finally:
        gate.open()
        await server.stop()
