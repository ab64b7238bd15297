"""Tells a shared frontier which claims are fetched, before their records arrive.

On PostgreSQL every process counts a host's live claims against its per-host limit. A
page whose body is read holds no slot any more, but its record comes only after a
parser and the writer (seconds, with the parser processes busy): counted until then, a
polite host's next request waited fetch + parse + record instead of just its delay.
`FetchMarks` batches "body read" notices into one small transaction every `interval`
(the store's `fetched`), which frees each host from its request's start plus its
spacing: well before that time passes, as a fetch ends ~`delay - latency` early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from service.store.base import FrontierItem, Store

logger = logging.getLogger(__name__)


class FetchMarks:
    """Collects fetched claims and marks them in the store every `interval` seconds."""

    def __init__(
        self,
        store: Store,
        worker: str,
        *,
        interval: float,
        on_sent: Callable[[list[FrontierItem]], None],
    ) -> None:
        self._store = store
        self._worker = worker
        self._interval = interval
        # Called as a batch is sent, before the transaction: from then on the claimer must
        # not discount these pages itself (the database may stop counting them any time).
        self._on_sent = on_sent
        self._pending: dict[int, tuple[FrontierItem, float | None]] = {}
        self._ready = asyncio.Event()

    def add(self, item: FrontierItem, free_at: float | None) -> None:
        self._pending[item.id] = (item, free_at)
        self._ready.set()

    def discard(self, item_id: int) -> None:
        """The item's record is stored: it settled its host, no mark is needed."""
        self._pending.pop(item_id, None)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), 0.5)
            self._ready.clear()
            if not self._pending:
                continue
            batch = list(self._pending.values())
            self._pending.clear()
            self._on_sent([item for item, _ in batch])
            try:
                await self._store.fetched(batch, worker=self._worker)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Nothing lost: their records settle these hosts, only later.
                logger.warning("could not mark %d fetched claims: %s", len(batch), exc)
            await asyncio.sleep(self._interval)  # gathers the next batch meanwhile
