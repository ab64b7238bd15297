"""service.client against a real server: typed records, SSE waits, cursors, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from service.client import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    Client,
    Job,
    NotFoundError,
    Page,
    TransportError,
    ValidationError,
)
from tests.api.conftest import MakeServer
from tests.conftest import TrawlServer, free_port
from tests.site import Site, SiteFactory


def has_route(server: TrawlServer, path: str) -> bool:
    return any("/" + route.path.lstrip("/") == path for route in server.app.router.routes)


async def test_submit_wait_and_read_results(trawl: TrawlServer, site: Site) -> None:
    seen: list[Job] = []
    async with AsyncClient(trawl.base_url) as client:
        job = await client.submit(site.url("/"), max_depth=2, formats=["metadata", "markdown"])
        assert isinstance(job, Job) and job.status in ("queued", "running")
        assert job.request["formats"] == ["metadata", "markdown"]
        final = await client.wait(job.id, on_progress=seen.append, timeout=60)
        assert final.status == "completed" and final.is_final
        assert final.stats.pages_fetched == len(site.expected_urls(2)) == final.stats.pages_done
        assert final.finished_at is not None and final.started_at is not None
        assert seen[-1] == final
        pages = [page async for page in client.iter_results(job.id, page_size=2)]
        assert {page.url for page in pages} == site.expected_urls(2)
        assert all(isinstance(p, Page) and p.ok and p.status_code == 200 for p in pages)
        assert all(p.markdown for p in pages) and all(p.fetched_at for p in pages)
        assert (await client.get(job.id)) == final
        listed = await client.list_jobs(limit=5)
        assert [j.id for j in listed.items] == [job.id] and listed.next_cursor is None
        assert (await client.cancel(job.id)).status == "completed"


async def test_recrawl_and_its_changes(trawl: TrawlServer, site: Site) -> None:
    async with AsyncClient(trawl.base_url) as client:
        first = await client.wait(
            (await client.submit(site.url("/"), max_depth=1, formats=["text", "changes"])).id,
            timeout=60,
        )
        assert first.recrawl_of is None and first.stats.changes is None
        again = await client.recrawl(first.id, max_depth=2)
        assert again.recrawl_of == first.id and again.request["max_depth"] == 2
        done = await client.wait(again.id, timeout=60)
        new = len(site.expected_urls(2)) - len(site.expected_urls(1))
        assert done.stats.changes == {"new": new, "changed": 0, "unchanged": 2, "removed": 0}
        pages = [page async for page in client.iter_results(again.id, change="new")]
        assert {page.url for page in pages} == site.expected_urls(2) - site.expected_urls(1)
        assert all(p.change == "new" and p.previous_fetched_at is None for p in pages)
        kept = (await client.results(again.id, change="unchanged")).items
        assert {p.url for p in kept} == site.expected_urls(1)
        assert all(p.previous_fetched_at is not None and p.changes is None for p in kept)
        with pytest.raises(ValidationError):
            await client.recrawl(first.id, max_depth="deep")
        with pytest.raises(NotFoundError):
            await client.recrawl("nope")


async def test_iter_results_follows_a_running_job_to_its_end(
    trawl: TrawlServer, site_factory: SiteFactory
) -> None:
    site = site_factory(pages=40, page_delay=0.03)
    async with AsyncClient(trawl.base_url) as client:
        job = await client.submit(site.url("/"), max_depth=9, per_host_concurrency=2)
        pages = [page async for page in client.iter_results(job.id, poll_interval=0.1)]
        assert len(pages) == 41
        assert (await client.get(job.id)).status == "completed"


async def test_watch_is_an_iterator_ending_at_the_final_state(
    trawl: TrawlServer, site: Site
) -> None:
    async with AsyncClient(trawl.base_url) as client:
        job = await client.submit([site.url("/"), site.url("/p/1")], max_depth=1)
        states = [state async for state in client.watch(job.id)]
    assert states[-1].status == "completed"
    assert [s.stats.pages_done for s in states] == sorted(s.stats.pages_done for s in states)


async def test_errors_carry_the_problem_fields(make_server: MakeServer) -> None:
    server = await make_server(role="web", api_keys=("k",))
    async with AsyncClient(server.base_url) as anonymous:
        with pytest.raises(AuthenticationError) as denied:
            await anonymous.list_jobs()
    # RFC 9457 "about:blank": the status says it all (no made-up documentation domain).
    assert denied.value.status == 401 and denied.value.type == "about:blank"
    async with AsyncClient(server.base_url, api_key="k") as client:
        with pytest.raises(NotFoundError) as missing:
            await client.get("nope")
        assert missing.value.status == 404 and "nope" in missing.value.detail
        assert missing.value.title == "Not Found" and missing.value.problem["status"] == 404
        with pytest.raises(ValidationError) as invalid:
            await client.submit("ftp://x.invalid/", max_depth=-1)
        fields = {error["field"] for error in invalid.value.errors}
        assert {"url", "max_depth"} <= fields or {"urls[0]", "max_depth"} <= fields, fields
        with pytest.raises(NotFoundError):
            async for _ in client.watch("nope"):
                pass
        assert isinstance(invalid.value, ApiError)


async def test_unreachable_server_is_a_transport_error() -> None:
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
        with pytest.raises(TransportError) as failed:
            await client.list_jobs()
    assert isinstance(failed.value.__cause__, httpx.HTTPError)


async def test_blocking_client(trawl: TrawlServer, site: Site) -> None:
    # The server runs on this test's loop: the blocking client runs in a thread.
    def use() -> tuple[Job, list[Page], list[Job]]:
        with Client(trawl.base_url) as client:
            job = client.submit(site.url("/"), max_depth=1)
            progress: list[Job] = []
            final = client.wait(job.id, on_progress=progress.append, timeout=60)
            states = list(client.watch(job.id))
            assert states == [final], "a finished job's stream is its final state"
            with pytest.raises(NotFoundError):
                client.cancel("nope")
            return final, list(client.iter_results(job.id)), progress

    final, pages, progress = await asyncio.to_thread(use)
    assert final.status == "completed"
    assert {page.url for page in pages} == site.expected_urls(1)
    assert progress[-1] == final


async def test_scrape_and_map(trawl: TrawlServer, site: Site) -> None:
    if not has_route(trawl, "/v1/scrape"):
        pytest.skip("POST /v1/scrape has not landed on this branch yet")
    async with AsyncClient(trawl.base_url) as client:
        page = await client.scrape(site.url("/fixed"), formats=["markdown"], timeout=30)
        assert page.ok and page.markdown and "Main heading" in page.markdown
        mapped = await client.map(site.url("/"), limit=50)
        urls = {link.url for link in mapped.links}
        assert site.url("/p/0") in urls
        assert mapped.job_id

    def blocking() -> Any:
        with Client(trawl.base_url) as client:
            return client.scrape(site.url("/"), timeout=30), client.map(site.url("/"))

    page, mapped = await asyncio.to_thread(blocking)
    assert page.title == "Home" and mapped.links
