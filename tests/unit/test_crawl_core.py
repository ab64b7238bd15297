"""The crawl core without HTTP polling: plan, scheduler, robots, sitemaps, and the engine
run until its frontier is idle (burst mode) against an httpx.MockTransport site."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.crawl import scheduler as scheduler_module
from service.crawl import sitemap
from service.crawl.engine import Crawler
from service.crawl.fetcher import Fetcher
from service.crawl.parsepool import ParseOutput, ParsePool
from service.crawl.parsequeue import ParseQueue
from service.crawl.plan import JobPlan
from service.crawl.robots import RobotsCache
from service.crawl.scheduler import HostScheduler
from service.models import JobRequest, utcnow
from service.runtime import fetch_options
from service.settings import Settings
from service.spec import CrawlSpec, JobFacts
from service.store.base import FrontierItem, NewJob
from service.store.sqlite import SQLiteStore
from tests.waiting import wait_until

Handler = Callable[[httpx.Request], httpx.Response]


def spec(**request: object) -> CrawlSpec:
    return CrawlSpec.from_request(JobRequest.model_validate({"max_pages": 100, **request}))


def fetcher(handler: Handler, settings: Settings | None = None) -> Fetcher:
    options = fetch_options(settings or Settings())
    return Fetcher(options, transport=httpx.MockTransport(handler))


def respond(status: int = 200, body: str = "", content_type: str = "text/plain") -> httpx.Response:
    # A stream, not content: the fetcher reads raw bytes itself (bounded, not decoded).
    data = body.encode()
    headers = {"content-type": content_type, "content-length": str(len(data))}
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(data))


def html(body: str, status: int = 200) -> httpx.Response:
    return respond(status, body, "text/html; charset=utf-8")


def item(url: str, item_id: int = 1, depth: int = 0, job_id: str = "j") -> FrontierItem:
    host = httpx.URL(url).host
    return FrontierItem(id=item_id, job_id=job_id, url=url, host=host, depth=depth, attempts=0)


# -- plan --------------------------------------------------------------------------------


def test_plan_scope_depth_and_seen() -> None:
    plan = JobPlan.from_spec("j", spec(url="http://a.test/", max_depth=1), Settings())
    links = ("http://a.test/x", "http://b.test/y", "http://a.test/x", "http://a.test/")
    assert plan.new_links(links, depth=0) == ("http://a.test/x",)  # seeds are seen
    assert plan.new_links(("http://a.test/z",), depth=1) == ()  # at max_depth


def test_plan_widening_is_a_fact_and_facts_are_learnt() -> None:
    settings = Settings()
    plan = JobPlan.from_spec("j", spec(url="http://a.test/", max_depth=2), settings)
    fact = plan.widen_to("https://www.a.test/")
    assert fact == JobFacts(widened_hosts=frozenset({"www.a.test"}))
    assert plan.widen_to("https://www.a.test/other") is None  # already in scope
    assert plan.follows("https://www.a.test/page")
    # Another process's plan of the same job learns it from the stored facts.
    other = JobPlan.from_spec("j", spec(url="http://a.test/", max_depth=2), settings)
    assert not other.in_scope("https://www.a.test/page")
    other.learn(fact)
    assert other.in_scope("https://www.a.test/page")
    restarted = JobPlan.from_spec("j", spec(url="http://a.test/", max_depth=2), settings, fact)
    assert restarted.in_scope("https://www.a.test/page")


def test_plan_retries_and_options_come_from_the_spec() -> None:
    settings = Settings(max_retries=4)
    assert JobPlan.from_spec("j", spec(url="http://a.test/"), settings).max_attempts == 5
    own = JobPlan.from_spec("j", spec(url="http://a.test/", max_retries=0), settings)
    assert own.max_attempts == 1
    selectors = spec(url="http://a.test/", selectors={"t": "h1"}).selectors
    assert [name for name, _ in selectors] == ["t"]


def test_spec_round_trips_through_its_stored_form() -> None:
    from service.spec import SPEC_VERSION

    original = spec(
        url="http://a.test/",
        formats=["markdown", "links"],
        selectors={"a": {"css": "a", "attr": "href", "all": False}},
        webhook={"url": "https://hooks.test/x", "events": ["job.page"], "page_batch_size": 7},
        per_host_delay=0.5,
    )
    stored = CrawlSpec.from_row(original.to_json(), SPEC_VERSION, "{}")
    assert stored == original
    legacy = CrawlSpec.from_row(None, None, json.dumps({"urls": ["http://a.test/"]}))
    assert legacy.urls == ("http://a.test/",) and legacy.scope == "same-host"


def test_the_spec_carries_a_firecrawl_webhook_whole() -> None:
    from service.spec import SPEC_VERSION

    hook = {
        "url": "https://hooks.test/fc",
        "events": ["job.page", "job.completed"],
        "format": "firecrawl.crawl",
        "metadata": {"run": 7},
        "headers": {"Authorization": "Bearer x"},
    }
    original = spec(url="http://a.test/", webhook=hook)
    assert original.webhook is not None and original.webhook.firecrawl
    assert original.webhook.headers == (("Authorization", "Bearer x"),)
    assert CrawlSpec.from_row(original.to_json(), SPEC_VERSION, "{}") == original
    # Version 1 left the format, metadata and headers out: the stored request has them.
    request = json.dumps({"urls": ["http://a.test/"], "webhook": hook})
    old = CrawlSpec.from_row('{"urls": []}', 1, request)
    assert old.webhook == original.webhook


# -- scheduler ---------------------------------------------------------------------------


async def test_scheduler_keeps_each_host_within_its_limit() -> None:
    scheduler = HostScheduler(ready_size=8, capacity=100, per_host_limit=1, per_host_delay=0)
    stop = asyncio.Event()
    pump = asyncio.create_task(scheduler.pump(stop))
    try:
        scheduler.add([item(f"http://a.test/{i}", i) for i in range(3)])
        scheduler.add([item("http://b.test/", 10)])
        first, second = await scheduler.get(), await scheduler.get()
        assert {first.host, second.host} == {"a.test", "b.test"}
        with pytest.raises(TimeoutError):  # a.test's one slot is taken
            await asyncio.wait_for(scheduler.get(), 0.2)
        scheduler.done(first if first.host == "a.test" else second)
        third = await asyncio.wait_for(scheduler.get(), 5)
        assert third.host == "a.test"
        assert scheduler.max_active_seen == 1
    finally:
        stop.set()
        await pump


async def test_scheduler_starts_an_early_claim_when_its_turn_comes() -> None:
    """A shared frontier's claim a little ahead of its host's turn waits for it here."""
    scheduler = HostScheduler(ready_size=8, capacity=100, per_host_limit=1, per_host_delay=0)
    stop = asyncio.Event()
    pump = asyncio.create_task(scheduler.pump(stop))
    try:
        added = time.monotonic()
        scheduler.add([replace(item("http://a.test/1", 1), start_in=0.3)])
        scheduler.add([item("http://b.test/", 2)])
        assert (await asyncio.wait_for(scheduler.get(), 5)).host == "b.test"
        assert (await asyncio.wait_for(scheduler.get(), 5)).host == "a.test"
        assert time.monotonic() - added >= 0.3
    finally:
        stop.set()
        await pump


async def test_scheduler_drops_a_cancelled_jobs_urls() -> None:
    scheduler = HostScheduler(ready_size=1, capacity=100, per_host_limit=1, per_host_delay=0)
    scheduler.add([item("http://a.test/1", 1, job_id="keep"), item("http://a.test/2", 2)])
    dropped = scheduler.drop_job("j")
    assert [i.id for i in dropped] == [2]
    assert [i.id for i in scheduler.drain()] == [1]


# -- robots and sitemaps ---------------------------------------------------------------


async def test_robots_rules_crawl_delay_and_sitemaps_from_one_fetch() -> None:
    asked: Counter[str] = Counter()

    def site(request: httpx.Request) -> httpx.Response:
        asked[request.url.path] += 1
        body = "User-agent: *\nDisallow: /private/\nCrawl-delay: 2\nSitemap: http://a.test/s.xml\n"
        return respond(200, body)

    robots = RobotsCache(fetcher(site), "Trawl/1.0")
    assert (await robots.check("http://a.test/ok")).allowed is True
    blocked = await robots.check("http://a.test/private/x")
    assert blocked.allowed is False and blocked.crawl_delay == 2.0
    assert await robots.sitemaps("http://a.test") == ("http://a.test/s.xml",)
    assert asked["/robots.txt"] == 1


async def test_robots_5xx_holds_back_4xx_allows() -> None:
    def site(request: httpx.Request) -> httpx.Response:
        return respond(503 if request.url.host == "down.test" else 404)

    robots = RobotsCache(fetcher(site), "Trawl/1.0")
    held = await robots.check("http://down.test/x")
    assert held.allowed is None  # try later
    assert time.time() + 25 < held.retry_at <= time.time() + 30
    assert (await robots.check("http://gone.test/x")).allowed is True


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_robots_rules_expire_after_the_ttl() -> None:
    rules = ["Disallow: /a"]

    def site(request: httpx.Request) -> httpx.Response:
        return respond(200, "User-agent: *\n" + rules[0] + "\n")

    clock = _Clock()
    robots = RobotsCache(fetcher(site), "Trawl/1.0", ttl=600, clock=clock)
    assert not robots.known("http://a.test/a")
    assert (await robots.check("http://a.test/a")).allowed is False
    rules[0] = "Disallow: /b"
    clock.now += 599
    assert (await robots.check("http://a.test/a")).allowed is False  # cached
    assert robots.known("http://a.test/b")  # a read ahead of a fetch would be skipped
    clock.now += 2
    assert not robots.known("http://a.test/a")
    assert (await robots.check("http://a.test/a")).allowed is True  # asked again
    assert robots.fetches == 2


async def test_robots_cache_is_bounded_least_recently_asked_first() -> None:
    robots = RobotsCache(fetcher(lambda r: respond(404)), "Trawl/1.0", max_entries=2)
    for host in ("a.test", "b.test", "a.test", "c.test"):  # b is the least recent
        await robots.check(f"http://{host}/x")
    assert len(robots) == 2 and robots.fetches == 3
    await robots.check("http://a.test/y")
    assert robots.fetches == 3  # a kept
    await robots.check("http://b.test/y")
    assert robots.fetches == 4  # b evicted, fetched again


async def test_robots_5xx_backs_off_then_disallows() -> None:
    clock = _Clock()
    robots = RobotsCache(
        fetcher(lambda r: respond(503)), "Trawl/1.0", retry_after=30, max_failures=3, clock=clock
    )
    assert (await robots.check("http://a.test/x")).allowed is None
    clock.now += 29
    assert (await robots.check("http://a.test/x")).allowed is None
    assert robots.fetches == 1  # not asked again before the pause ends
    clock.now += 2
    await robots.check("http://a.test/x")
    assert robots.fetches == 2
    clock.now += 59  # the second pause is twice as long
    await robots.check("http://a.test/x")
    assert robots.fetches == 2
    clock.now += 2
    verdict = await robots.check("http://a.test/x")
    assert robots.fetches == 3 and verdict.allowed is False
    assert "5xx" in verdict.reason


async def test_sitemap_discovery_follows_an_index() -> None:
    files = {
        "/sitemap.xml": (
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            "<sitemap><loc>http://a.test/pages.xml</loc></sitemap></sitemapindex>"
        ),
        "/pages.xml": (
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            "<url><loc>http://a.test/one</loc></url><url><loc>http://a.test/two</loc></url>"
            "<url><loc>http://elsewhere.test/x</loc></url></urlset>"
        ),
    }

    def site(request: httpx.Request) -> httpx.Response:
        body = files.get(request.url.path)
        if body is None:
            return respond(404)
        return respond(200, body, "application/xml")

    found = await sitemap.discover(fetcher(site), "http://a.test", (), 10)
    assert found == ["http://a.test/one", "http://a.test/two", "http://elsewhere.test/x"]
    # With the job's link rules, only what it would follow (same-host scope here).
    plan = JobPlan.from_spec("j", spec(url="http://a.test/", max_depth=1), Settings())
    scoped = await sitemap.discover(
        fetcher(site), "http://a.test", (), 10, links=plan.link_filter()
    )
    assert scoped == ["http://a.test/one", "http://a.test/two"]


# -- the engine in burst mode ------------------------------------------------------------


def tree_site(calls: Counter[str], flaky: set[str] | None = None) -> Handler:
    """/ links /p/0..3, each /p/i links /p/i0, /p/i1; `flaky` paths fail once with 503."""
    failed: set[str] = set()

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls[path] += 1
        if path == "/robots.txt":
            return respond(404)
        if flaky and path in flaky and path not in failed:
            failed.add(path)
            return html("busy", status=503)
        if path == "/":
            children = [f"/p/{i}" for i in range(4)]
        elif path.startswith("/p/") and len(path) == 4:
            children = [f"{path}{i}" for i in range(2)]
        else:
            children = []
        links = "".join(f'<a href="{child}">{child}</a>' for child in children)
        return html(f"<html><head><title>{path}</title></head><body>{links}</body></html>")

    return handle


async def run_job(tmp_path: Path, handler: Handler, **request: object) -> tuple[SQLiteStore, str]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/core.db",
        parser_processes=1,
        concurrency=4,
        per_host_concurrency=4,
        retry_base_delay=0.01,
    )
    store = SQLiteStore.from_url(settings.database_url)
    await store.open()
    job_spec = spec(**request)
    job, _ = await store.create_job(
        NewJob(
            id="job-1",
            created_at=utcnow(),
            request=JobRequest.model_validate({"max_pages": 100, **request}).normalised(),
            seeds=job_spec.urls,
            max_pages=job_spec.max_pages,
            spec=job_spec,
        )
    )
    parser = ParsePool.for_settings(settings)
    parser.start()
    await parser.warm_up()
    try:
        crawler = Crawler(settings, store, fetcher(handler, settings), parser)
        await crawler.run_until_idle(within=60)
    finally:
        parser.close()
    return store, job.id


async def test_engine_crawls_a_site_until_its_frontier_is_idle(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    store, job_id = await run_job(tmp_path, tree_site(calls), url="http://a.test/", max_depth=2)
    try:
        job = await store.get_job(job_id, None)
        assert job is not None and job.status.value == "completed"
        assert job.stats.pages_fetched == 1 + 4 + 8
        pages = [json.loads(doc) async for doc in store.iter_results(job_id, None)]
        assert len({page["url"] for page in pages}) == 13
        assert all(n == 1 for path, n in calls.items() if path != "/robots.txt"), calls
    finally:
        await store.close()


async def test_engine_retries_a_transient_failure(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    store, job_id = await run_job(
        tmp_path, tree_site(calls, flaky={"/p/1"}), url="http://a.test/", max_depth=1
    )
    try:
        job = await store.get_job(job_id, None)
        assert job is not None and job.status.value == "completed"
        assert job.stats.pages_fetched == 5 and job.stats.pages_failed == 0
        assert calls["/p/1"] == 2
    finally:
        await store.close()


class GatedParser(ParsePool):
    """Parses only once `gate` is set: a parser that has fallen behind."""

    def __init__(self, settings: Settings, gate: asyncio.Event) -> None:
        base = ParsePool.for_settings(settings)
        super().__init__(settings.parser_processes, base.limits)
        self.gate = gate

    async def parse(self, *args: Any, **kwargs: Any) -> ParseOutput:
        await self.gate.wait()
        return await super().parse(*args, **kwargs)


async def test_a_fetch_frees_its_host_before_the_parse(tmp_path: Path) -> None:
    """One request at a time per host, and the parser holds every page: all four pages
    are still fetched (the fetch slot and the host's slot are free once the body is
    read), then parsed once the parser catches up."""
    gate = asyncio.Event()
    seeds = [f"http://a.test/s/{i}" for i in range(4)]

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return respond(404)
        fetched.add(request.url.path)
        if len(fetched) == len(seeds):
            gate.set()
        return html("<html><body>leaf</body></html>")

    fetched: set[str] = set()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/core.db",
        parser_processes=1,
        concurrency=4,
        per_host_concurrency=1,
    )
    store = SQLiteStore.from_url(settings.database_url)
    await store.open()
    job_spec = spec(urls=seeds, max_depth=0)
    await store.create_job(
        NewJob(
            id="job-1",
            created_at=utcnow(),
            request=JobRequest.model_validate({"max_pages": 100, "urls": seeds}).normalised(),
            seeds=job_spec.urls,
            max_pages=job_spec.max_pages,
            spec=job_spec,
        )
    )
    parser = GatedParser(settings, gate)
    parser.start()
    await parser.warm_up()
    try:
        crawler = Crawler(settings, store, fetcher(handle, settings), parser)
        await crawler.run_until_idle(within=30)
        assert crawler.scheduler.max_active_seen == 1
        job = await store.get_job("job-1", None)
        assert job is not None and job.stats.pages_fetched == 4
    finally:
        parser.close()
        await store.close()


async def test_parse_queue_is_bounded_by_count_and_bytes() -> None:
    queue: ParseQueue[str] = ParseQueue(max_items=2, max_bytes=100)
    await queue.put("huge", 500)  # an empty queue takes one page, however large
    blocked = asyncio.create_task(queue.put("next", 1))
    await asyncio.sleep(0)
    assert not blocked.done() and len(queue) == 1  # over the byte bound: the fetch waits
    assert await queue.get() == "huge"
    await asyncio.wait_for(blocked, 5)
    await queue.put("third", 1)
    fourth = asyncio.create_task(queue.put("fourth", 1))
    await asyncio.sleep(0)
    assert not fourth.done() and len(queue) == 2  # over the count bound
    assert [await queue.get(), await queue.get()] == ["next", "third"]
    await asyncio.wait_for(fourth, 5)
    assert queue.drain() == ["fourth"] and queue.bytes == 0


async def test_scheduler_forgets_idle_hosts_once_their_spacing_is_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler_module, "EVICT_EVERY", 0.0)
    scheduler = HostScheduler(ready_size=8, capacity=2000, per_host_limit=1, per_host_delay=0.05)
    stop = asyncio.Event()
    pump = asyncio.create_task(scheduler.pump(stop))
    try:
        # A broad crawl: 500 hosts seen once each, and one host with more to do.
        scheduler.add([item(f"http://h{i}.test/", i) for i in range(500)])
        scheduler.add([item("http://busy.test/1", 1000), item("http://busy.test/2", 1001)])
        for _ in range(501):
            slot = await asyncio.wait_for(scheduler.get(), 5)
            scheduler.done(slot)

        async def kept() -> int:
            return scheduler.hosts

        # Only busy.test, its second URL waiting out the delay, is remembered.
        assert await wait_until(kept, lambda n: n == 1) == 1
        assert scheduler.holding("busy.test") == 1
        scheduler.done(await asyncio.wait_for(scheduler.get(), 5))
        assert await wait_until(kept, lambda n: n == 0) == 0
    finally:
        stop.set()
        await pump
