"""Retention: finished jobs past their time are deleted, a few at a time, in the background.

A job's time is its request's `retention` (seconds after it ended), else the server's
SCRAPER_RESULT_TTL; with neither, it is kept. The store deletes a job's rows in small
transactions (`purge_job`), so a sweep never holds the write lock for long and the crawl
goes on in between. After deleting, the space is handed back to the filesystem
(`reclaim_space`: SQLite's incremental vacuum, PostgreSQL's VACUUM). With several
processes on one PostgreSQL database only the leader sweeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from service.errors import StoreUnavailable
from service.store.base import Store

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 30.0  # seconds between looks for expired jobs
JOBS_PER_SWEEP = 20  # expired jobs deleted per look (the rest wait for the next one)
PAUSE_BETWEEN_JOBS = 0.05  # seconds: room for the crawl's writes between deletions


class RetentionSweeper:
    """Deletes expired jobs and reclaims space; `run(stop)` is its task."""

    def __init__(
        self, store: Store, default_ttl: float, *, interval: float = SWEEP_INTERVAL
    ) -> None:
        self._store = store
        self._default_ttl = default_ttl
        self._interval = interval
        self._wake = asyncio.Event()
        self._reclaim = False
        self.deleted = 0  # jobs deleted by sweeps (for tests and logs)

    def purged(self) -> None:
        """A job was purged through the API: reclaim its space soon."""
        self._reclaim = True
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                logger.warning("retention sweep skipped: %s", exc)
            except Exception:
                logger.exception("retention sweep failed; trying again later")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)

    async def sweep(self) -> int:
        """Delete what has expired and reclaim space; the number of jobs deleted."""
        if not await self._store.try_lead("retention"):
            return 0
        deleted = 0
        for job_id in await self._store.expired_jobs(self._default_ttl, JOBS_PER_SWEEP):
            await self._store.purge_job(job_id)
            deleted += 1
            logger.info("deleted expired job", extra={"job_id": job_id})
            await asyncio.sleep(PAUSE_BETWEEN_JOBS)
        self.deleted += deleted
        if deleted or self._reclaim:
            self._reclaim = False
            started = time.perf_counter()
            await self._store.reclaim_space()
            logger.info("space reclaimed in %.2fs", time.perf_counter() - started)
        if deleted == JOBS_PER_SWEEP:
            self._wake.set()  # more may be due: go on after a breath, not in 30 s
        return deleted
