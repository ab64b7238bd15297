"""`python -m service worker`: crawl workers only, no HTTP server (scale-out role)."""

from __future__ import annotations

import asyncio
import logging
import signal

from service.app import fetch_options
from service.crawl.engine import Crawler
from service.crawl.fetcher import Fetcher
from service.crawl.parsepool import ParsePool
from service.metrics import LoopLagProbe
from service.settings import Settings
from service.store import store_for
from service.webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)


async def serve_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run the crawl engine until `stop` is set, then drain within the grace period."""
    store = store_for(settings.database_url, pool_size=settings.db_pool_size)
    await store.open()
    parser = ParsePool.for_settings(settings)
    parser.start()
    fetcher = Fetcher(fetch_options(settings))
    webhooks = WebhookDispatcher(settings, store)
    crawler = Crawler(settings, store, fetcher, parser, on_job_loaded=webhooks.job_loaded)
    probe = LoopLagProbe()
    probe_task = asyncio.create_task(probe.run(stop))
    try:
        await parser.warm_up()
        await webhooks.start()
        await crawler.start()
        logger.info("trawl worker ready (%s)", crawler.worker_id)
        await stop.wait()
    finally:
        await crawler.stop(settings.grace_period)
        await webhooks.stop(settings.grace_period / 2)
        probe_task.cancel()
        await fetcher.aclose()
        parser.close()
        await store.close()


def run_worker(settings: Settings) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_worker(settings, stop)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover
        asyncio.run(main())
    return 0
