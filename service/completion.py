"""In-process completion signals: a synchronous request waits for its job without polling.

The crawl engine announces the jobs it saw finish; a waiter wakes at once. A job can
also finish in another process (PostgreSQL scale-out, a cancel served elsewhere), which
no signal here reports, so waiters re-read the job from the store on a bounded cadence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.models import Job
    from service.store.base import Store


class CompletionBoard:
    """Futures keyed by job id, resolved when this process sees the job reach a final status."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def finished(self, job_ids: Iterable[str]) -> None:
        """Wake everyone waiting on these jobs (safe to call for jobs nobody waits on)."""
        for job_id in job_ids:
            for future in self._waiters.pop(job_id, ()):
                if not future.done():
                    future.set_result(None)

    async def wait(self, job_id: str, within: float) -> bool:
        """Wait up to `within` seconds for `job_id` to be announced; True if it was."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(job_id, set())
        waiters.add(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), max(0.0, within))
            return True
        except TimeoutError:
            return False
        finally:
            waiters.discard(future)
            if not waiters and self._waiters.get(job_id) is waiters:
                del self._waiters[job_id]

    @property
    def waiting(self) -> int:
        """Jobs somebody is waiting on (for tests and metrics)."""
        return len(self._waiters)


async def wait_for_job(
    store: Store,
    board: CompletionBoard,
    job_id: str,
    owner: str | None,
    within: float,
    *,
    signalled: bool,
) -> Job | None:
    """The job once final, or None after `within` seconds.

    `signalled`: this process runs the only crawler (SQLite, all-in-one), so the board
    hears of every finish and the store is re-read only as a safety net every 2 s. Else
    (another process may finish it) the store is re-read every 0.1 s, backing off to 1 s.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    interval = 2.0 if signalled else 0.1
    while True:
        job = await store.get_job(job_id, owner)
        if job is None or job.status.is_final:
            return job
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        await board.wait(job_id, min(remaining, interval))
        if not signalled:
            interval = min(1.0, interval * 2)
