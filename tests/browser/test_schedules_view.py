"""The dashboard's schedules view in a real browser: list, runs, pause/resume, form, delete.

The server's ticker runs on a FakeClock: the test moves it to make runs happen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Dashboard
from tests.conftest import TrawlServer, wait_until
from tests.conftest import test_settings as settings_for
from tests.fakeclock import FakeClock
from tests.site import Site

pytestmark = pytest.mark.slow

OpenDashboard = Callable[..., Awaitable[Dashboard]]
HOUR = 3600.0


async def schedule_of(server: TrawlServer, schedule_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await server.client.get(f"/v1/schedules/{schedule_id}")).json()
    return body


async def test_schedules_view_lists_runs_and_pauses_resumes_creates_deletes(
    tmp_path: Path, site: Site, open_dashboard: OpenDashboard
) -> None:
    clock = FakeClock()
    server = TrawlServer(settings_for(tmp_path))
    server.app.ctx.clock = clock
    await server.start()
    try:
        created = await server.client.post(
            "/v1/schedules",
            json={"job": {"url": site.url("/")}, "every": "1h", "name": "home page"},
        )
        schedule_id = created.json()["id"]
        await wait_until(
            lambda: schedule_of(server, schedule_id),
            lambda s: len(s["runs"]) == 1 and s["runs"][0]["status"] == "completed",
            timeout=30,
        )
        tab = await open_dashboard(server.base_url, "/#/schedules")
        page = tab.page
        row = page.locator(f'tr[data-schedule="{schedule_id}"]')
        await row.wait_for(timeout=10_000)
        assert "home page" in (await row.locator("td").first.text_content() or "")
        assert "every 1h" in (await row.locator("td").nth(1).text_content() or "")
        await row.locator(".run .badge.completed").wait_for(timeout=10_000)
        job_id = (await schedule_of(server, schedule_id))["runs"][0]["job_id"]
        assert await row.locator(f'.run a[href="#/jobs/{job_id}"]').count() == 1
        await tab.screenshot("schedules")

        # A second run, a recrawl of the first, appears by itself (the view refreshes)
        # with its change counts: the one page is unchanged.
        clock.advance(HOUR)
        await wait_until(
            lambda: row.locator(".run .badge.completed").count(),
            lambda n: n == 2,
            timeout=30,
            interval=0.2,
        )
        counts = row.locator(".run").first.locator(".changes")
        assert await counts.text_content() == "+0~0=1\u22120"  # \u2212: a minus sign
        assert await row.locator(".run").nth(1).locator(".changes").count() == 0  # a plain job
        await tab.screenshot("schedules-runs")
        # The recrawl's job view shows them too.
        second = (await schedule_of(server, schedule_id))["runs"][0]
        await row.locator(".run").first.locator("a.badge").click()
        await page.wait_for_url(f"**/#/jobs/{second['job_id']}", timeout=10_000)
        stats = page.locator("#job-stats")
        await stats.locator("dt", has_text="Unchanged").wait_for(timeout=10_000)
        await page.goto(server.base_url + "/#/schedules")
        await row.wait_for(timeout=10_000)

        # Run now: an extra run (a third, a recrawl) at once.
        clock.advance(1)  # not the very instant of the last tick (a run per instant)
        await row.locator("button", has_text="Run now").click()
        await wait_until(
            lambda: row.locator(".run .badge.completed").count(),
            lambda n: n == 3,
            timeout=30,
            interval=0.2,
        )
        await row.locator("button", has_text="Pause").click()
        await row.locator(".badge.paused").wait_for(timeout=10_000)
        assert (await schedule_of(server, schedule_id))["paused"] is True
        await row.locator("button", has_text="Resume").click()
        await row.locator(".next-run").wait_for(timeout=10_000)
        assert (await schedule_of(server, schedule_id))["paused"] is False

        form = page.locator("#schedule-form")
        await form.locator('input[name="url"]').fill(site.url("/p/1"))
        await form.locator('select[name="kind"]').select_option("cron")
        await form.locator('input[name="when"]').fill("61 * * * *")
        await form.locator("button[type=submit]").click()
        error = page.locator("#schedule-error")
        await error.wait_for(state="visible", timeout=10_000)
        assert (await error.text_content() or "").startswith("cron:")
        # Chromium logs the 422 it was answered as a failed load: that one is expected.
        assert all("422" in message for message in tab.watched.console_errors)
        tab.watched.console_errors.clear()
        await form.locator('input[name="when"]').fill("0 6 * * *")
        await form.locator('input[name="timezone"]').fill("Europe/Paris")
        await form.locator("button[type=submit]").click()
        await wait_until(
            lambda: page.locator("#schedules-body tr").count(), lambda n: n == 2, timeout=10
        )
        listed = (await server.client.get("/v1/schedules")).json()["items"]
        new = next(item for item in listed if item["id"] != schedule_id)
        assert new["cron"] == "0 6 * * *" and new["timezone"] == "Europe/Paris"
        assert new["job"]["urls"] == [site.url("/p/1")]
        new_row = page.locator(f'tr[data-schedule="{new["id"]}"]')
        assert "(Europe/Paris)" in (await new_row.locator("td").nth(1).text_content() or "")

        await new_row.locator("button", has_text="Delete").click()
        await new_row.wait_for(state="detached", timeout=10_000)
        assert (await server.client.get(f"/v1/schedules/{new['id']}")).status_code == 404
    finally:
        await server.stop()
