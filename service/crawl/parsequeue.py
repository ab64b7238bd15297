"""The parse queue: fetched pages waiting for a parser process, bounded in count and bytes.

A fetch task hands its page here once the body is read and goes back to fetching: its
fetch slot and its host's in-flight slot are free, so politeness counts fetches, not
fetches plus the wait for a parser. When parsers fall behind the queue fills, and `put`
waits: fetch tasks stop fetching (backpressure), so memory stays within `max_bytes` of
bodies (one page is always admitted, however large, so a big body never deadlocks).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[_T]):
    value: _T
    size: int


class ParseQueue(Generic[_T]):
    """A FIFO bounded by entries and by the sum of their sizes; see the module docstring."""

    def __init__(self, *, max_items: int, max_bytes: int) -> None:
        self._items: deque[_Entry[_T]] = deque()
        self._max_items = max(1, max_items)
        self._max_bytes = max(1, max_bytes)
        self._bytes = 0
        # Two conditions on one lock, each waking one waiter at a time: with 64 fetch
        # tasks waiting on a full queue, waking them all for every page parsed cost
        # ~1 ms of event loop a page (bench/run.py, 3,000 pages, service CPU: 9.4 s
        # before the parse queue, 12.6 s with one condition, 11.1 s with these two
        # against 10.7 s before in the next run).
        lock = asyncio.Lock()
        self._not_full = asyncio.Condition(lock)
        self._not_empty = asyncio.Condition(lock)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def _full(self) -> bool:
        if not self._items:
            return False
        return len(self._items) >= self._max_items or self._bytes >= self._max_bytes

    async def put(self, value: _T, size: int) -> None:
        """Queue `value` (`size` bytes), waiting while the queue is full."""
        async with self._not_full:
            await self._not_full.wait_for(lambda: not self._full())
            self._items.append(_Entry(value, size))
            self._bytes += size
            self._not_empty.notify()
            if not self._full():
                self._not_full.notify()  # room for the next one too: pass it on

    async def get(self) -> _T:
        """The oldest entry, waiting for one."""
        async with self._not_empty:
            await self._not_empty.wait_for(lambda: bool(self._items))
            entry = self._items.popleft()
            self._bytes -= entry.size
            self._not_full.notify()
            if self._items:
                self._not_empty.notify()
            return entry.value

    def drain(self) -> list[_T]:
        """Everything still queued (shutdown); wakes nobody, the tasks are stopping."""
        values = [entry.value for entry in self._items]
        self._items.clear()
        self._bytes = 0
        return values
