"""The crawl engine in this process, without an HTTP server (the CLI's `trawl crawl`).

`EmbeddedEngine` opens the same parts as `python -m service` (store, parser pool,
fetcher, crawler) and offers the subset of `AsyncClient` the CLI uses (`submit`, `get`,
`watch`, `iter_results`, `cancel`), reading the store directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from service.client import Job, Page
from service.models import parse_job_request
from service.runtime import Runtime
from service.settings import Settings
from service.store.base import Store
from service.submission import limits_of, store_job

if TYPE_CHECKING:
    from service.crawl.engine import Crawler

# How often progress and new results are read from the store.
POLL_SECONDS = 0.25


class EmbeddedEngine:
    """Trawl's crawl engine, opened by `async with` and closed in reverse order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runtime: Runtime | None = None

    @property
    def store(self) -> Store:
        assert self._runtime is not None, "use `async with EmbeddedEngine(...)`"
        return self._runtime.store

    @property
    def _crawler(self) -> Crawler:
        assert self._runtime is not None and self._runtime.crawler is not None
        return self._runtime.crawler

    async def __aenter__(self) -> EmbeddedEngine:
        # The same parts as the worker role, but no webhook deliveries (a CLI run).
        self._runtime = await Runtime.open(self.settings, crawl=True, webhooks=False, probe=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await runtime.close()

    async def submit(self, request: dict[str, Any]) -> Job:
        """Validate and store a job exactly as `POST /v1/jobs` does (ValidationFailed if bad)."""
        job_request = parse_job_request(request, limits_of(self.settings))
        job, _ = await store_job(self.store, self.settings, job_request, owner=None)
        self._crawler.notify_new_work()
        return Job.from_dict(job.as_dict())

    async def get(self, job_id: str) -> Job:
        job = await self.store.get_job(job_id, None)
        if job is None:
            raise LookupError(job_id)
        return Job.from_dict(job.as_dict())

    async def cancel(self, job_id: str) -> Job:
        job = await self.store.cancel_job(job_id, None)
        if job is None:
            raise LookupError(job_id)
        await self._crawler.job_cancelled(job_id)
        return Job.from_dict(job.as_dict())

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        """The job's states as they change, ending with its final state."""
        last: dict[str, Any] | None = None
        while True:
            job = await self.get(job_id)
            if job.raw != last:
                last = job.raw
                yield job
            if job.is_final:
                return
            await asyncio.sleep(POLL_SECONDS)

    async def iter_results(self, job_id: str, *, page_size: int = 500) -> AsyncIterator[Page]:
        """Every result as it is stored; ends after the last one of a finished job."""
        after = 0
        while True:
            # Status first: a job is marked final in the transaction storing its last result.
            final = (await self.get(job_id)).is_final
            rows = await self.store.list_results(job_id, None, page_size, after)
            for row_id, page in rows:
                after = row_id
                yield Page.from_dict(json.loads(page))
            if len(rows) < page_size:
                if final:
                    return
                await asyncio.sleep(POLL_SECONDS)
