"""The composition root: every role opens and closes the same parts here, in one order.

    store -> loop-lag probe -> (crawl roles) webhooks -> parser pool -> fetcher -> crawler
          -> schedules' ticker (service roles, not the CLI's embedded engine)
    (web role: store -> probe -> fetcher, for work done in a request such as a map)

`Runtime.open(settings, ...)` opens them from one `Settings` (nothing re-reads the
environment) and, if a step fails, closes what was already open before re-raising.
Shutdown has two phases, as a server needs: `drain()` stops taking work and lets the
crawl and the webhook deliveries finish within the grace period; `close()` (which
drains first if that has not happened) releases the rest in reverse order. The web
server (app.py), the worker role (worker_role.py) and the CLI's embedded engine
(embedded.py) all run on this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.crawl.fetcher import Fetcher, FetchOptions
from service.metrics import LoopLagProbe
from service.models import Job
from service.network.guard import AddressPolicy, policy_for
from service.settings import Settings
from service.store import store_for
from service.store.base import Store

if TYPE_CHECKING:
    from service.crawl.engine import Crawler
    from service.crawl.parsepool import ParsePool
    from service.ticker import Clock, ScheduleTicker
    from service.webhooks.dispatcher import WebhookDispatcher

logger = logging.getLogger(__name__)


def address_policy(settings: Settings) -> AddressPolicy:
    """Where fetches and webhooks may connect: never this service's own API, never cloud
    metadata unless SCRAPER_ALLOWED_NETWORKS names it."""
    return policy_for(
        allow_private=settings.allow_private_networks,
        allowed_networks=settings.allowed_networks,
        host=settings.host,
        ports=(settings.port,),
    )


def fetch_options(settings: Settings) -> FetchOptions:
    return FetchOptions(
        user_agent=settings.user_agent,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        total_timeout=settings.page_timeout,
        max_body_bytes=settings.max_body_bytes,
        max_decoded_bytes=2 * settings.max_body_bytes,
        max_redirects=settings.max_redirects,
        max_connections=max(8, settings.concurrency),
        max_keepalive=max(8, settings.concurrency),
        policy=address_policy(settings),
        # Even with private networks allowed, a job must not reach this service's API.
        own_ports=frozenset({settings.port}) if settings.port else frozenset(),
    )


class Runtime:
    """The open parts of one process (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = asyncio.Event()  # set when draining starts: background loops end
        self._store: Store | None = None
        self.fetcher: Fetcher | None = None
        self.parser: ParsePool | None = None
        self.webhooks: WebhookDispatcher | None = None
        self.crawler: Crawler | None = None
        self.ticker: ScheduleTicker | None = None
        self._ticker_task: asyncio.Task[None] | None = None
        self.probe: LoopLagProbe | None = None
        self.background: list[asyncio.Task[Any]] = []
        self._stack = contextlib.AsyncExitStack()
        self._drained = False

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the runtime is not open")
        return self._store

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        crawl: bool,
        webhooks: bool = True,
        probe: bool = True,
        on_jobs_finished: Callable[[list[str]], None] | None = None,
        schedules: bool | None = None,
        clock: Clock | None = None,
    ) -> Runtime:
        """Open every part a role needs; on failure, close what was opened and re-raise.

        `crawl`: run the crawl engine here (all and worker roles, the embedded engine).
        `webhooks`: deliver webhook events from this process (with `crawl`).
        `schedules`: fire due schedules from this process (with `crawl`; by default as
        `webhooks`: a service process does, the CLI's embedded run does not), on `clock`.
        """
        runtime = cls(settings)
        try:
            await runtime._open(
                crawl=crawl,
                webhooks=webhooks,
                probe=probe,
                on_jobs_finished=on_jobs_finished,
                schedules=webhooks if schedules is None else schedules,
                clock=clock,
            )
        except BaseException:
            await runtime.close()
            raise
        return runtime

    async def _open(
        self,
        *,
        crawl: bool,
        webhooks: bool,
        probe: bool,
        on_jobs_finished: Callable[[list[str]], None] | None,
        schedules: bool,
        clock: Clock | None,
    ) -> None:
        settings = self.settings
        stack = self._stack
        store = store_for(settings.database_url, pool_size=settings.db_pool_size)
        await store.open()
        stack.push_async_callback(store.close)
        self._store = store
        if probe:
            self.probe = LoopLagProbe()
            self.background.append(asyncio.create_task(self.probe.run(self.stop)))
        if not crawl:
            # No crawler here, but maps still fetch (through the same guards) in the request.
            self.fetcher = Fetcher(fetch_options(settings))
            stack.push_async_callback(self.fetcher.aclose)
            return
        from service.crawl.engine import Crawler
        from service.crawl.parsepool import ParsePool
        from service.webhooks.dispatcher import WebhookDispatcher

        if webhooks:
            # Its own task and client: the crawl never waits on a webhook receiver.
            self.webhooks = WebhookDispatcher(settings, store)
            await self.webhooks.start()
        self.parser = ParsePool.for_settings(settings)
        self.parser.start()
        stack.callback(self.parser.close)
        await self.parser.warm_up()
        self.fetcher = Fetcher(fetch_options(settings))
        stack.push_async_callback(self.fetcher.aclose)
        crawler = Crawler(
            settings,
            store,
            self.fetcher,
            self.parser,
            on_job_loaded=self.webhooks.job_loaded if self.webhooks is not None else None,
            on_jobs_finished=on_jobs_finished,
        )
        await crawler.start()
        self.crawler = crawler
        if schedules:
            from service.ticker import ScheduleTicker

            self.ticker = ScheduleTicker(settings, store, clock=clock, on_job=self._job_started)
            self._ticker_task = asyncio.create_task(self.ticker.run(self.stop))

    def _job_started(self, job: Job) -> None:
        """A schedule started a job here: the crawler and the webhooks look now."""
        if self.crawler is not None:
            self.crawler.notify_new_work()
        if self.webhooks is not None:
            self.webhooks.wake()

    async def drain(self) -> None:
        """Stop taking work; let the crawl, then the webhook deliveries, finish in time."""
        if self._drained:
            return
        self._drained = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.grace_period
        self.stop.set()
        if self._ticker_task is not None:
            # First, so no run starts while the crawl drains; a run cut short stays
            # pending in the database and is finished by the next leader.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._ticker_task), 5.0)
            self._ticker_task.cancel()
            await asyncio.gather(self._ticker_task, return_exceptions=True)
            self._ticker_task = None
        if self.crawler is not None:
            await self.crawler.stop(self.settings.grace_period)
        if self.webhooks is not None:
            # In-flight deliveries may finish; one cut short stays due in the outbox.
            await self.webhooks.stop(max(0.0, deadline - loop.time()))
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        self.background.clear()

    async def close(self) -> None:
        """Drain if not yet drained, then close the parts in reverse order of opening."""
        try:
            await self.drain()
        finally:
            self.crawler = None
            await self._stack.aclose()
            self._store = None
