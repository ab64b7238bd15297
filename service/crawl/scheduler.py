"""Per-host scheduling: politeness without head-of-line blocking.

Claimed URLs wait in per-host queues. A pump hands a URL to the workers' ready queue
only when its host has a free slot and its spacing delay has passed, so a slow or
rate-limited host never parks a worker: workers only ever see URLs they can fetch now.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from service.store.base import FrontierItem


@dataclass(slots=True)
class _Host:
    items: deque[FrontierItem] = field(default_factory=deque)
    active: int = 0
    next_allowed: float = 0.0  # monotonic time before which nothing new starts
    delay: float = 0.0  # floor for start-to-start spacing (Crawl-delay, job option)
    last_start: float = 0.0
    spacing: float = 0.0  # the spacing applied to the last URL handed out
    failures: int = 0


@dataclass(frozen=True, slots=True)
class Slot:
    """What a worker was given: the URL and the limits its host is held to."""

    item: FrontierItem
    host: str


class HostScheduler:
    """Per-host queues feeding one bounded ready queue; see the module docstring."""

    def __init__(
        self,
        *,
        ready_size: int,
        capacity: int,
        per_host_limit: int,
        per_host_delay: float,
        limit_for: Callable[[FrontierItem], tuple[int | None, float | None]] | None = None,
    ) -> None:
        self._ready: asyncio.Queue[Slot] = asyncio.Queue(maxsize=ready_size)
        self._hosts: OrderedDict[str, _Host] = OrderedDict()
        self._capacity = capacity
        self._buffered = 0  # items waiting in host queues (not yet in the ready queue)
        self._default_limit = per_host_limit
        self._default_delay = per_host_delay
        self._limit_for = limit_for
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self.max_active_seen: dict[str, int] = {}

    # -- feeding ---------------------------------------------------------------------

    def room(self) -> int:
        """How many more claimed URLs the scheduler will hold."""
        return max(0, self._capacity - self._buffered - self._ready.qsize())

    async def wait_for_room(self, within: float, at_least: int = 1) -> None:
        """Wait until `at_least` more URLs fit (or `within` seconds pass)."""
        deadline = time.monotonic() + within
        while self.room() < at_least:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), remaining)

    def add(self, items: list[FrontierItem]) -> None:
        for item in items:
            self._hosts.setdefault(item.host, _Host()).items.append(item)
        self._buffered += len(items)
        self._wake.set()

    # -- host policy -----------------------------------------------------------------

    def set_delay(self, host: str, delay: float) -> None:
        """Spacing between request starts to a host (Crawl-delay)."""
        state = self._hosts.setdefault(host, _Host())
        if delay > state.delay:
            state.delay = delay
            state.spacing = max(state.spacing, delay)
            # A delay learnt mid-flight (robots.txt) also spaces the request just started.
            state.next_allowed = max(state.next_allowed, state.last_start + delay)

    def defer_host(self, host: str, seconds: float) -> None:
        """Start nothing on this host for a while (Retry-After, back-off)."""
        state = self._hosts.setdefault(host, _Host())
        state.next_allowed = max(state.next_allowed, time.monotonic() + seconds)
        self._wake.set()

    def request_started(self, host: str) -> None:
        """The request itself starts now (after robots.txt, after the hand-off): space
        the next one from here, so the server never sees two closer than the delay."""
        state = self._hosts.get(host)
        if state is not None and state.spacing:
            now = time.monotonic()
            state.last_start = now
            state.next_allowed = max(state.next_allowed, now + state.spacing)

    def note_failure(self, host: str) -> int:
        state = self._hosts.setdefault(host, _Host())
        state.failures += 1
        return state.failures

    def note_success(self, host: str) -> None:
        state = self._hosts.get(host)
        if state is not None:
            state.failures = 0

    def failures(self, host: str) -> int:
        state = self._hosts.get(host)
        return state.failures if state else 0

    # -- workers -----------------------------------------------------------------------

    async def get(self) -> Slot:
        slot = await self._ready.get()
        self._wake.set()
        self._room.set()
        return slot

    def done(self, slot: Slot) -> None:
        """A worker finished with a URL: free its host slot."""
        state = self._hosts.get(slot.host)
        if state is not None:
            state.active -= 1
            idle = not state.items and state.active <= 0 and state.failures == 0
            if idle and state.next_allowed <= time.monotonic() and state.delay == 0:
                del self._hosts[slot.host]
        self._wake.set()
        self._room.set()

    # -- the pump --------------------------------------------------------------------

    def _limits(self, item: FrontierItem) -> tuple[int, float]:
        limit, delay = None, None
        if self._limit_for is not None:
            limit, delay = self._limit_for(item)
        return (limit or self._default_limit, delay if delay is not None else self._default_delay)

    def _dispatch(self) -> float | None:
        """Move every startable URL to the ready queue; return seconds until the next."""
        now = time.monotonic()
        next_due: float | None = None
        for host, state in list(self._hosts.items()):
            while state.items and not self._ready.full():
                item = state.items[0]
                limit, delay = self._limits(item)
                if state.active >= limit:
                    break
                if state.next_allowed > now:
                    wait = state.next_allowed - now
                    next_due = wait if next_due is None else min(next_due, wait)
                    break
                state.items.popleft()
                self._buffered -= 1
                state.active += 1
                self.max_active_seen[host] = max(self.max_active_seen.get(host, 0), state.active)
                state.last_start = now
                spacing = state.spacing = max(delay, state.delay)
                if spacing:
                    state.next_allowed = now + spacing
                self._ready.put_nowait(Slot(item, host))
            if self._ready.full():
                break
        return next_due

    async def pump(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set: hand out URLs as hosts become available."""
        while not stop.is_set():
            self._wake.clear()
            next_due = self._dispatch()
            timeout = 1.0 if next_due is None else min(1.0, max(next_due, 0.001))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    # -- draining --------------------------------------------------------------------

    def drop_job(self, job_id: str) -> list[FrontierItem]:
        """Remove a job's waiting URLs (cancellation); returns what was removed."""
        dropped: list[FrontierItem] = []
        for state in self._hosts.values():
            keep = deque(item for item in state.items if item.job_id != job_id)
            dropped.extend(item for item in state.items if item.job_id == job_id)
            state.items = keep
        self._buffered -= len(dropped)
        return dropped

    def drain(self) -> list[FrontierItem]:
        """Everything not yet taken by a worker (shutdown puts it back in the store)."""
        items: list[FrontierItem] = []
        while not self._ready.empty():
            slot = self._ready.get_nowait()
            items.append(slot.item)
        for state in self._hosts.values():
            items.extend(state.items)
            state.items.clear()
        self._buffered = 0
        return items

    @property
    def buffered(self) -> int:
        return self._buffered + self._ready.qsize()
