"""What the routes share: one typed object on `app.ctx`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sanic import Request, Sanic
from sanic.config import Config

from service.completion import CompletionBoard
from service.settings import Settings
from service.store.base import Store

if TYPE_CHECKING:
    from service.api.security import RateLimiter
    from service.crawl.engine import Crawler
    from service.crawl.fetcher import Fetcher
    from service.crawl.mapper import SiteMapper
    from service.metrics import LoopLagProbe
    from service.progress import ProgressHub
    from service.retention import RetentionSweeper
    from service.runtime import Runtime
    from service.ticker import Clock, ScheduleTicker
    from service.webhooks.dispatcher import WebhookDispatcher


# Not slotted: sanic-ext stores its own attributes on app.ctx.
@dataclass
class AppContext:
    settings: Settings
    store: Store | None = None
    crawler: Crawler | None = None
    probe: LoopLagProbe | None = None
    rate_limiter: RateLimiter | None = None
    webhooks: WebhookDispatcher | None = None
    retention: RetentionSweeper | None = None
    progress: ProgressHub | None = None
    # The fetcher for work done in the request (maps): the crawler's, or the web role's own.
    fetcher: Fetcher | None = None
    mapper: SiteMapper | None = None
    # (monotonic time, count): the pending backlog, re-counted at most once a second.
    pending_cache: tuple[float, int] = (float("-inf"), 0)
    in_flight_keys: set[tuple[str, str]] = field(default_factory=set)
    # Jobs finishing in this process wake synchronous requests waiting on them.
    completions: CompletionBoard = field(default_factory=CompletionBoard)
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    stop: asyncio.Event | None = None
    runtime: Runtime | None = None  # what _open opened (service/runtime.py)
    # Fires due schedules in this process (crawl roles); woken when a route changes one.
    ticker: ScheduleTicker | None = None
    clock: Clock | None = None  # the ticker's clock (tests inject one; None: the real one)

    async def pending_urls(self) -> int:
        """URLs waiting in the store, counted at most once a second (a count is a scan)."""
        checked, count = self.pending_cache
        now = time.monotonic()
        if now - checked >= 1.0:
            count = await self.db.pending_count()
            self.pending_cache = (now, count)
        return count

    def pending_changed(self, delta: int | None = None) -> None:
        """This process added `delta` pending URLs (None: unknown change, count again)."""
        checked, count = self.pending_cache
        self.pending_cache = (float("-inf"), 0) if delta is None else (checked, count + delta)

    @property
    def db(self) -> Store:
        assert self.store is not None, "store is opened by the before_server_start listener"
        return self.store


TrawlApp = Sanic[Config, AppContext]


def ctx(request: Request) -> AppContext:
    """The app's typed context (Request.app is typed with Sanic's default context)."""
    return cast(AppContext, request.app.ctx)
