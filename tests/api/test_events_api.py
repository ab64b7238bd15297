"""GET /v1/jobs/{id}/events: live progress over Server-Sent Events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import MakeServer, assert_problem
from tests.conftest import TrawlServer, wait_until
from tests.site import Site, SiteFactory
from tests.sse import job_events, messages

STAT_KEYS = ("pages_discovered", "pages_fetched", "pages_failed", "pages_skipped")


def progress(job: dict[str, Any]) -> tuple[int, ...]:
    return tuple(job["stats"][key] for key in STAT_KEYS)


async def slow_crawl(trawl: TrawlServer, site: Site, pages: int = 40) -> dict[str, Any]:
    return await trawl.submit(
        {"url": site.url("/"), "max_depth": 10, "max_pages": pages, "per_host_concurrency": 2}
    )


async def test_stream_follows_a_crawl_to_its_final_state(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    site = site_factory(pages=40, page_delay=0.03)
    trawl = await make_server()
    job = await slow_crawl(trawl, site)
    events = [event async for event in job_events(trawl.client, f"/v1/jobs/{job['id']}/events")]

    assert events[-1]["status"] == "completed"
    assert all(event["id"] == job["id"] for event in events)
    assert all(event["status"] != "completed" for event in events[:-1]), "final state once"
    assert len(events) >= 3, f"expected live updates during the crawl, got {len(events)}"
    steps = [progress(event) for event in events]
    assert steps == sorted(steps), "progress never goes backwards"
    assert len(set(steps)) == len(steps) or events[-1]["status"] != events[-2]["status"]
    assert events[-1] == await trawl.job(job["id"]), "the last event is the final job JSON"


async def test_updates_are_coalesced_to_a_few_per_second(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    site = site_factory(pages=60)
    trawl = await make_server()
    job = await trawl.submit({"url": site.url("/"), "max_depth": 10, "max_pages": 60})
    started = time.monotonic()
    count = 0
    async for _ in job_events(trawl.client, f"/v1/jobs/{job['id']}/events"):
        count += 1
    elapsed = time.monotonic() - started
    # At most 4 a second (one per watcher tick), plus the one sent at once.
    assert count <= 2 + 4 * elapsed + 1, (count, elapsed)


async def test_finished_job_gets_one_event_and_the_stream_ends(
    trawl: TrawlServer, site: Site
) -> None:
    job = await trawl.submit({"url": site.url("/")})
    done = await trawl.wait_job(job["id"])
    async with trawl.client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-store"
        received = [message async for message in messages(response)]
    jobs = [message for message in received if message.event == "job"]
    assert [message.json() for message in jobs] == [done]
    assert jobs[0].id, "each state carries an id for Last-Event-ID"
    assert any(message.retry for message in received), "a reconnect delay is announced"


async def test_reconnecting_client_gets_the_current_state_at_once(
    api: TrawlServer,
) -> None:
    # role=web: the job stays queued, so only the state sent at once can arrive.
    job = await api.submit({"url": "http://example.invalid/"})
    async with api.client.stream("GET", f"/v1/jobs/{job['id']}/events") as first:
        async for message in messages(first):
            if message.event == "job":
                last_id = message.id
                break
    assert last_id
    started = time.monotonic()
    headers = {"Last-Event-ID": last_id}
    async with api.client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=headers) as again:
        async for message in messages(again):
            if message.event == "job":
                assert message.json()["status"] == "queued"
                break
    assert time.monotonic() - started < 2.0


async def test_one_watcher_query_per_tick_for_every_stream(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    site = site_factory(pages=40, page_delay=0.03)
    trawl = await make_server()
    hub = trawl.app.ctx.progress
    calls: list[int] = []
    store = trawl.app.ctx.store
    original = store.get_jobs

    async def counted(job_ids: list[str]) -> Any:
        calls.append(len(job_ids))
        return await original(job_ids)

    store.get_jobs = counted
    jobs = [await slow_crawl(trawl, site, pages=30) for _ in range(2)]
    started = time.monotonic()
    streams = [
        asyncio.create_task(_collect(trawl.client, f"/v1/jobs/{jobs[i % 2]['id']}/events"))
        for i in range(30)
    ]
    await wait_until(lambda: asyncio.sleep(0, hub.subscriber_count), lambda n: n == 30, 20)
    results = await asyncio.gather(*streams)
    elapsed = time.monotonic() - started
    assert all(events[-1]["status"] == "completed" for events in results)
    # One query per tick covers both jobs and all 30 streams.
    assert len(calls) <= elapsed / hub.interval + 3, (len(calls), elapsed)
    assert max(calls) <= 2
    assert hub.subscriber_count == 0


async def _collect(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    return [event async for event in job_events(client, path)]


async def test_several_jobs_in_one_stream(trawl: TrawlServer, site: Site) -> None:
    a = await trawl.submit({"url": site.url("/"), "max_depth": 1})
    b = await trawl.submit({"url": site.url("/p/1"), "max_depth": 1})
    finals: dict[str, str] = {}
    path = f"/v1/events?job={a['id']}&job={b['id']}&job=nope"
    async for event in job_events(trawl.client, path):
        if event["status"] in ("completed", "failed", "cancelled"):
            finals[event["id"]] = event["status"]
    assert finals == {a["id"]: "completed", b["id"]: "completed"}


async def test_unknown_job_is_404(api: TrawlServer) -> None:
    assert_problem(await api.client.get("/v1/jobs/nope/events"), 404)
    assert_problem(await api.client.get("/v1/events"), 422, "job")


async def test_keys_are_required_and_jobs_are_private(make_server: MakeServer) -> None:
    server = await make_server(role="web", api_keys=("key-a", "key-b"))
    a = {"Authorization": "Bearer key-a"}
    response = await server.client.post("/v1/jobs", json={"url": "http://x.invalid/"}, headers=a)
    job_id = response.json()["id"]
    path = f"/v1/jobs/{job_id}/events"
    assert_problem(await server.client.get(path), 401)
    assert_problem(await server.client.get(path, headers={"Authorization": "Bearer key-b"}), 404)
    other = await server.client.get(
        f"/v1/events?job={job_id}", headers={"Authorization": "Bearer key-b"}
    )
    assert other.status_code == 200 and "event: job" not in other.text
    async for event in job_events(server.client, path, **a):
        assert event["id"] == job_id
        break


async def test_shutdown_ends_open_streams(make_server: MakeServer) -> None:
    server = await make_server(role="web")
    job = await server.submit({"url": "http://example.invalid/"})
    seen = asyncio.Event()

    async def listen() -> int:
        count = 0
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as client:
            async for _ in job_events(client, f"/v1/jobs/{job['id']}/events"):
                count += 1
                seen.set()
        return count

    task = asyncio.create_task(listen())
    await asyncio.wait_for(seen.wait(), 10)
    started = time.monotonic()
    await server.stop()
    assert await asyncio.wait_for(task, 10) == 1
    assert time.monotonic() - started < 5.0, "an open stream must not hold up shutdown"


@pytest.mark.parametrize("path", ["/v1/jobs/{job_id}/events", "/v1/events"])
async def test_stream_is_documented(api: TrawlServer, path: str) -> None:
    spec = (await api.client.get("/docs/openapi.json")).json()
    assert "text/event-stream" in spec["paths"][path]["get"]["responses"]["200"]["content"]


async def test_idle_stream_gets_keepalive_comments(
    api: TrawlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.progress

    monkeypatch.setattr(service.progress, "KEEPALIVE_SECONDS", 0.2)
    api.app.ctx.progress._keepalive_task.cancel()
    api.app.ctx.progress._keepalive_task = asyncio.create_task(api.app.ctx.progress._keepalive())
    job = await api.submit({"url": "http://example.invalid/"})
    kinds = []
    async with api.client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
        async for message in messages(response):
            kinds.append("job" if message.event == "job" else ",".join(message.comments))
            if len(kinds) >= 4:
                break
    assert kinds[0] in ("job", "") and "keep-alive" in kinds, kinds
