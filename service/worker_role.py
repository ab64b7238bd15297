"""`python -m service worker`: the worker process role, crawl engine only, no HTTP server."""

from __future__ import annotations

import asyncio
import logging
import signal

from service.runtime import Runtime
from service.settings import Settings

logger = logging.getLogger(__name__)


async def serve_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run the crawl engine until `stop` is set, then drain within the grace period."""
    runtime = await Runtime.open(settings, crawl=True)
    try:
        assert runtime.crawler is not None
        logger.info("trawl worker ready (%s)", runtime.crawler.worker_id)
        await stop.wait()
    finally:
        await runtime.close()


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
