"""Batches page records into few store transactions: one writer, many workers.

Two kinds of failure are told apart. When the database cannot be written at all (disk
full, read-only: `StoreUnavailable`) nothing is wrong with the records: they stay here,
the writer backs off and tries again, and `paused` tells the engine to stop claiming
until a write succeeds. Recording is idempotent (one result per URL), so a batch that
did reach the database before the error is not stored twice. Any other error is taken
to be caused by a record: the batch is split in halves until the offending record is
alone, and that one is stored as a failed page without its links (or, failing that,
dropped), so it is never retried forever and never holds up the other jobs' pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from service.crawl.pipeline import page_document
from service.errors import StoreUnavailable
from service.models import Outcome
from service.store.base import PageRecord, RecordSummary, Store

logger = logging.getLogger(__name__)

FlushCallback = Callable[[list[PageRecord], int, list[str]], None]

MIN_BACKOFF = 0.5  # seconds before retrying a write to an unwritable database
MAX_BACKOFF = 5.0


@dataclass(slots=True)
class _Outcome:
    """What recording a batch (or its pieces) amounted to."""

    settled: list[PageRecord] = field(default_factory=list)
    admitted: int = 0
    completed: list[str] = field(default_factory=list)

    def add(self, records: list[PageRecord], summary: RecordSummary) -> None:
        self.settled.extend(records)
        self.admitted += summary.admitted
        self.completed.extend(summary.completed_jobs)


class ResultWriter:
    """Collects records and writes them every `interval` seconds or `batch_size` records."""

    def __init__(
        self, store: Store, *, batch_size: int, interval: float, on_flushed: FlushCallback
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._interval = interval
        self._on_flushed = on_flushed
        self._pending: list[PageRecord] = []
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()
        self._backoff = 0.0  # seconds; > 0 while the database cannot be written
        self._retry_at = 0.0  # loop time of the next attempt while paused
        self.set_apart = 0  # records stored as failed pages (or dropped) after an error

    def add(self, record: PageRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= self._batch_size:
            self._full.set()

    @property
    def paused(self) -> bool:
        """The database could not be written: don't take more work until it can."""
        return self._backoff > 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval)
            self._full.clear()
            if self.paused and asyncio.get_running_loop().time() < self._retry_at:
                continue
            await self.flush()

    async def flush(self) -> None:
        """Write everything pending; while the database is unwritable keep it for later."""
        async with self._lock:
            while self._pending:
                batch = self._pending[: self._batch_size * 4]
                try:
                    done = await self._record(batch)
                except StoreUnavailable as exc:
                    self._unwritable(len(batch), exc)
                    return
                if self._backoff:
                    logger.warning("the database takes writes again; the crawl resumes")
                    self._backoff = 0.0
                del self._pending[: len(batch)]
                self._on_flushed(done.settled, done.admitted, done.completed)

    def _unwritable(self, count: int, exc: Exception) -> None:
        if not self._backoff:
            logger.error(
                "the database cannot be written (%s); %d results are kept and the crawl "
                "pauses until writes succeed",
                exc,
                count,
            )
        self._backoff = min(MAX_BACKOFF, max(MIN_BACKOFF, self._backoff * 2))
        self._retry_at = asyncio.get_running_loop().time() + self._backoff

    async def _record(self, batch: list[PageRecord]) -> _Outcome:
        done = _Outcome()
        try:
            done.add(batch, await self._store.record(batch))
        except StoreUnavailable:
            raise
        except Exception:
            if len(batch) == 1:
                logger.exception("storing the result of %s failed", batch[0].item.url)
                done.add(batch, await self._set_apart(batch[0]))
                return done
            logger.warning("storing %d results failed; splitting the batch", len(batch))
            middle = len(batch) // 2
            for half in (batch[:middle], batch[middle:]):
                part = await self._record(half)
                done.add(part.settled, RecordSummary(admitted=part.admitted))
                done.completed.extend(part.completed)
        return done

    async def _set_apart(self, record: PageRecord) -> RecordSummary:
        """Store a record that cannot be stored as a failed page without links."""
        self.set_apart += 1
        item = record.item
        failed = PageRecord(
            item=item,
            outcome=Outcome.FAILED,
            attempts=record.attempts,
            page_json=page_document(
                item,
                error=("store_error", "the page's result could not be stored"),
                attempts=record.attempts,
            ),
        )
        try:
            return await self._store.record([failed])
        except StoreUnavailable:
            raise
        except Exception:
            # Nothing of it can be stored: leave it (its claim expires) rather than retry.
            logger.exception("dropping the result of %s: it cannot be stored", item.url)
            return RecordSummary()

    @property
    def pending(self) -> int:
        return len(self._pending)
