"""A real `python -m service` killed (SIGKILL) in the middle of a scheduled run, restarted
on the same SQLite file: the run's job finishes once, no tick fires twice, and the
schedule goes on (its next run is a recrawl of the interrupted one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.service_process import ServiceProcess
from tests.conftest import wait_until
from tests.gate import Gate
from tests.site import Site

pytestmark = pytest.mark.slow

ENV = {
    "SCRAPER_ALLOW_PRIVATE_NETWORKS": "1",
    "SCRAPER_MIN_SCHEDULE_INTERVAL": "1s",
    "SCRAPER_GRACE_PERIOD": "2",
}


async def schedule_of(client: httpx.AsyncClient, schedule_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/schedules/{schedule_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def job_of(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/v1/jobs/{job_id}")).json()
    return body


async def test_kill_9_in_the_middle_of_a_scheduled_run(tmp_path: Path, site: Site) -> None:
    gate = Gate(site)
    database = tmp_path / "schedules.db"
    try:
        async with ServiceProcess(tmp_path, env=ENV, database=database) as first:
            await first.wait_ready()
            async with first.client() as client:
                created = await client.post(
                    "/v1/schedules", json={"job": {"url": gate.url}, "every": "2s"}
                )
                assert created.status_code == 201, created.text
                schedule_id = created.json()["id"]
                running = await wait_until(
                    lambda: schedule_of(client, schedule_id),
                    # the first run, then a skipped tick (past "pending": claimed, not decided)
                    lambda s: len(s["runs"]) >= 2 and s["runs"][0]["status"] != "pending",
                    timeout=30,
                )
                first_job = running["runs"][-1]["job_id"]
                assert (await job_of(client, first_job))["status"] == "running"
                assert running["runs"][0]["status"] == "skipped"
            first.kill()  # mid-run: the gate page is being fetched
            first.reap_group()
        gate.open()
        async with ServiceProcess(tmp_path, env=ENV, database=database) as second:
            await second.wait_ready()
            async with second.client() as client:
                done = await wait_until(
                    lambda: job_of(client, first_job),
                    lambda j: j["status"] == "completed",
                    timeout=60,
                )
                assert done["stats"]["pages_fetched"] == 1

                def recrawled(s: dict[str, Any]) -> bool:
                    return any(
                        r["job_id"] not in (None, first_job) and r["status"] == "completed"
                        for r in s["runs"]
                    )

                after = await wait_until(
                    lambda: schedule_of(client, schedule_id), recrawled, timeout=30
                )
                jobs = (await client.get("/v1/jobs")).json()["items"]
                results = (await client.get(f"/v1/jobs/{first_job}/results")).json()["items"]
    finally:
        gate.open()
    runs = after["runs"]
    assert len(runs) < 10, runs  # the JSON shows the last 10: here, every run
    ticks = [r["tick_at"] for r in runs]
    assert len(ticks) == len(set(ticks)), runs  # no tick fired twice
    started = [r["job_id"] for r in runs if r["job_id"]]
    assert sorted(started) == sorted(job["id"] for job in jobs)  # one job per started run
    assert len(results) == 1  # the interrupted page stored once
    recrawl = next(job for job in jobs if job["id"] != first_job)
    assert recrawl["recrawl_of"] in started
