"""service.client's schedule methods against a real server (typed records, errors)."""

from __future__ import annotations

import asyncio

import pytest

from service.client import AsyncClient, Client, NotFoundError, Schedule, ValidationError
from tests.conftest import TrawlServer, wait_until
from tests.site import Site


async def test_async_client_schedules(trawl: TrawlServer, site: Site) -> None:
    async with AsyncClient(trawl.base_url) as client:
        made = await client.create_schedule(site.url("/"), every="1h", name="home", max_depth=1)
        assert isinstance(made, Schedule) and made.every == "1h" and made.name == "home"
        assert made.job["max_depth"] == 1 and made.timezone == "UTC"
        # The first run of an interval is at once; it shows in the schedule's runs.
        ran = await wait_until(
            lambda: client.get_schedule(made.id),
            lambda s: bool(s.runs) and s.runs[0].status == "completed",
            timeout=30,
        )
        assert ran.last_job_id == ran.runs[0].job_id and ran.runs[0].changes is None
        assert ran.last_run_at is not None and ran.next_run_at is not None
        paused = await client.update_schedule(made.id, paused=True)
        assert paused.paused and paused.next_run_at is None
        retimed = await client.update_schedule(made.id, cron="0 6 * * *", timezone="Asia/Tokyo")
        assert retimed.cron == "0 6 * * *" and retimed.every is None
        listed = await client.list_schedules(limit=5)
        assert [s.id for s in listed.items] == [made.id] and listed.next_cursor is None
        with pytest.raises(ValidationError) as caught:
            await client.create_schedule(site.url("/"), cron="not a cron")
        assert caught.value.problem["errors"][0]["field"] == "cron"
        assert (await client.delete_schedule(made.id)).id == made.id
        with pytest.raises(NotFoundError):
            await client.get_schedule(made.id)


async def test_sync_client_schedules(trawl: TrawlServer, site: Site) -> None:
    def work() -> Schedule:
        with Client(trawl.base_url) as client:
            made = client.create_schedule(
                {"url": site.url("/")}, cron="0 6 * * *", timezone="Europe/Paris", paused=True
            )
            assert made.paused and made.timezone == "Europe/Paris"
            resumed = client.update_schedule(made.id, paused=False)
            assert not resumed.paused and resumed.next_run_at is not None
            assert client.list_schedules().items[0].id == made.id
            return client.delete_schedule(made.id)

    deleted = await asyncio.to_thread(work)
    assert deleted.cron == "0 6 * * *"
