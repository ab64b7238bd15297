"""Batches page records into few store transactions: one writer, many workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from service.store.base import PageRecord, Store

logger = logging.getLogger(__name__)

FlushCallback = Callable[[list[PageRecord], int, list[str]], None]


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

    def add(self, record: PageRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= self._batch_size:
            self._full.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval)
            self._full.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write everything pending; on a database error keep it and try again later."""
        async with self._lock:
            while self._pending:
                batch = self._pending[: self._batch_size * 4]
                try:
                    summary = await self._store.record(batch)
                except Exception:
                    logger.exception("writing %d results failed; will retry", len(batch))
                    await asyncio.sleep(0.5)
                    return
                del self._pending[: len(batch)]
                self._on_flushed(batch, summary.admitted, summary.completed_jobs)

    @property
    def pending(self) -> int:
        return len(self._pending)
