"""Crash safety with real processes: kill -9 or SIGTERM mid-crawl, restart, and every
expected page is stored exactly once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.service_process import ServiceProcess
from tests.conftest import wait_until
from tests.site import Site, SiteFactory

pytestmark = pytest.mark.slow

DEPTH = 10  # deep enough for the whole 400-page tree (fanout 3: 6 levels below /p/0)
GRACE = 5.0
CRAWL_ENV = {
    "SCRAPER_ALLOW_PRIVATE_NETWORKS": "1",
    "SCRAPER_PER_HOST_CONCURRENCY": "4",
    "SCRAPER_CONCURRENCY": "8",
    "SCRAPER_GRACE_PERIOD": str(GRACE),
}


@pytest.fixture
def crawl_site(site_factory: SiteFactory) -> Site:
    return site_factory(pages=400, page_delay=0.01)


def service(tmp_path: Path, database: Path) -> ServiceProcess:
    return ServiceProcess(tmp_path, env=CRAWL_ENV, database=database)


async def job_of(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def all_results(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/v1/jobs/{job_id}/results", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if not page["next_cursor"]:
            return items
        cursor = page["next_cursor"]


async def start_crawl_until_partly_stored(
    first: ServiceProcess, site: Site, stored: int = 40
) -> tuple[str, dict[str, Any]]:
    """Submit the crawl; return once at least `stored` pages are in the database."""
    await first.wait_ready()
    async with first.client() as client:
        response = await client.post(
            "/v1/jobs", json={"url": site.url("/"), "max_depth": DEPTH, "max_pages": 1000}
        )
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        job = await wait_until(
            lambda: job_of(client, job_id),
            lambda j: j["stats"]["pages_fetched"] >= stored,
            timeout=60,
        )
    assert job["status"] == "running", "the crawl finished before the fault; slow the site"
    return job_id, job


async def finish_after_restart(
    second: ServiceProcess, site: Site, job_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    await second.wait_ready()
    async with second.client() as client:
        done = await wait_until(
            lambda: job_of(client, job_id),
            lambda j: j["status"] in {"completed", "failed", "cancelled"},
            timeout=90,
        )
        results = await all_results(client, job_id)
    return done, results


def assert_exactly_once(site: Site, done: dict[str, Any], results: list[dict[str, Any]]) -> None:
    assert done["status"] == "completed", done
    urls = [item["url"] for item in results]
    duplicates = {url: n for url, n in Counter(urls).items() if n > 1}
    assert not duplicates, f"stored more than once: {duplicates}"
    assert set(urls) == site.expected_urls(DEPTH)
    assert all(item["error"] is None for item in results), [
        item for item in results if item["error"]
    ][:3]
    stats = done["stats"]
    assert stats["pages_fetched"] == len(urls) == stats["pages_discovered"]
    assert stats["pages_queued"] == stats["pages_failed"] == stats["pages_skipped"] == 0


async def test_kill_9_mid_crawl_then_restart_stores_every_page_once(
    tmp_path: Path, crawl_site: Site
) -> None:
    database = tmp_path / "crash.db"
    async with service(tmp_path, database) as first:
        job_id, before = await start_crawl_until_partly_stored(first, crawl_site)
        first.kill()  # SIGKILL: no drain, no release, claims left behind in the database
        first.reap_group()
    assert before["stats"]["pages_fetched"] < 401

    async with service(tmp_path, database) as second:
        done, results = await finish_after_restart(second, crawl_site, job_id)

    assert_exactly_once(crawl_site, done, results)


async def test_sigterm_mid_crawl_exits_0_within_the_grace_period(
    tmp_path: Path, crawl_site: Site
) -> None:
    database = tmp_path / "term.db"
    async with service(tmp_path, database) as first:
        job_id, _ = await start_crawl_until_partly_stored(first, crawl_site)
        signalled = time.monotonic()
        first.signal(signal.SIGTERM)
        code = await first.wait_exit(timeout=GRACE + 10)
        took = time.monotonic() - signalled
        assert code == 0, first.log
        assert took < GRACE + 5, f"exit took {took:.1f}s"
        assert "Traceback" not in first.log, first.log

    async with service(tmp_path, database) as second:
        done, results = await finish_after_restart(second, crawl_site, job_id)

    assert_exactly_once(crawl_site, done, results)


async def test_kill_9_leaves_no_helper_processes_behind(tmp_path: Path, crawl_site: Site) -> None:
    """The parser pool's processes must not outlive a killed service (they hold memory and
    would pile up under a supervisor that restarts the service)."""
    async with service(tmp_path, tmp_path / "orphans.db") as first:
        await start_crawl_until_partly_stored(first, crawl_site, stored=10)
        helpers = [pid for pid in first.group() if pid != first.pid]
        assert helpers, "expected parser processes in the service's process group"
        first.kill()

        async def survivors() -> list[int]:
            return first.group()

        left = await wait_until(survivors, lambda pids: not pids, timeout=10)
    assert left == []


async def test_scope_widened_by_a_seed_redirect_survives_a_kill_9(
    tmp_path: Path, crawl_site: Site
) -> None:
    """The seed's host redirects to the site's host: the job's same-host scope widens to
    it, and that must be in the database (not one process's memory) so the crawl that
    resumes after kill -9 still follows the new host's links (issue 9 item 4)."""
    from tests.site import _redirect

    with Site(host="127.0.0.2", pages=0) as entry:
        entry.route("/", lambda handler: _redirect(301, crawl_site.url("/p/0")))
        seed = entry.url("/")
        database = tmp_path / "widened.db"
        async with service(tmp_path, database) as first:
            await first.wait_ready()
            async with first.client() as client:
                response = await client.post(
                    "/v1/jobs", json={"url": seed, "max_depth": DEPTH, "max_pages": 1000}
                )
                assert response.status_code == 202, response.text
                job_id: str = response.json()["id"]
                before = await wait_until(
                    lambda: job_of(client, job_id),
                    lambda j: j["stats"]["pages_fetched"] >= 40,
                    timeout=60,
                )
            assert before["status"] == "running", "finished before the fault; slow the site"
            first.kill()
            first.reap_group()

        async with service(tmp_path, database) as second:
            done, results = await finish_after_restart(second, crawl_site, job_id)

    assert done["status"] == "completed", done
    urls = {item["url"] for item in results}
    # Everything below the redirect target, on the widened host, was crawled.
    expected = crawl_site.expected_urls(DEPTH, seed="/p/0") - {crawl_site.url("/p/0")}
    assert expected <= urls, f"missing after restart: {sorted(expected - urls)[:5]}"
    assert seed in urls
