"""Per-host scheduling in memory: politeness and fair sharing without head-of-line blocking.

Claimed URLs wait in per-host queues (Mercator's back queues). Hosts sit in one of two
heaps: a timer heap ordered by the time their spacing delay ends, and a ready heap of
hosts that may start a request now, ordered by priority (the weight of the job at the
head of the host's queue) and then by how long they have waited. The pump moves due
hosts from the timer heap to the ready heap and hands the fetch tasks' ready queue one
URL per ready host at a time, so fetch tasks only ever see URLs they can fetch now, and a
slow or rate-limited host never parks a fetch task.

Fair sharing across API keys: while more than one key has work here, a key is held to
its share of the fetch tasks (`per_key`, else an equal share of `ready_size`). The share
is work-conserving unless `per_key` is set: when nothing else can start, a key may take
idle fetch tasks beyond its share.

Host health (failure counts, adaptive delay) lives in crawl/hosthealth.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from service.store.base import FrontierItem

# Idle hosts' state (no URL waiting or in flight, spacing over) is dropped this often: a
# broad crawl meets each host once, and ~0.8 KB a host (its deque) kept for every host
# ever seen grows without bound. A Crawl-delay is set again by the next robots check.
EVICT_EVERY = 10.0


@dataclass(slots=True)
class _Host:
    items: deque[FrontierItem] = field(default_factory=deque)
    active: int = 0
    next_allowed: float = 0.0  # monotonic time before which nothing new starts
    delay: float = 0.0  # floor for start-to-start spacing (Crawl-delay, job option)
    last_start: float = 0.0
    spacing: float = 0.0  # the spacing applied to the last URL handed out
    armed: bool = False  # in the timer or the ready heap


@dataclass(frozen=True, slots=True)
class Slot:
    """What a fetch task was given: the URL and the limits its host is held to."""

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
        per_key: int | None = None,
        on_policy: Callable[[str, float | None, float | None], None] | None = None,
    ) -> None:
        self._ready: asyncio.Queue[Slot] = asyncio.Queue(maxsize=ready_size)
        self._tasks = ready_size
        self._hosts: dict[str, _Host] = {}
        self._timers: list[tuple[float, int, str]] = []
        self._runnable: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._capacity = capacity
        self._buffered = 0  # items waiting in host queues (not yet in the ready queue)
        self._default_limit = per_host_limit
        self._default_delay = per_host_delay
        self._limit_for = limit_for
        self._per_key = per_key
        self._on_policy = on_policy
        self._key_active: dict[str | None, int] = defaultdict(int)
        self._key_load: dict[str | None, int] = defaultdict(int)  # waiting + active
        self._key_parked: dict[str | None, list[str]] = defaultdict(list)
        self._host_freed: set[int] = set()  # slots whose host `fetched` already freed
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._evicted_at = time.monotonic()
        self.max_active_seen = 0  # the most URLs in flight to one host (tests)
        self.started_by_key: dict[str | None, int] = defaultdict(int)

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
            state = self._hosts.get(item.host)
            if state is None:
                state = self._hosts[item.host] = _Host()
            state.items.append(item)
            if item.start_in > 0:  # the host's turn on a shared frontier comes then
                state.next_allowed = max(state.next_allowed, time.monotonic() + item.start_in)
            self._key_load[item.owner] += 1
            self._arm(item.host, state)
        self._buffered += len(items)
        self._wake.set()

    def holding(self, host: str) -> int:
        """URLs of a host waiting here or being fetched."""
        state = self._hosts.get(host)
        return len(state.items) + state.active if state else 0

    # -- host policy -----------------------------------------------------------------

    def set_delay(self, host: str, delay: float) -> None:
        """Spacing between request starts to a host (Crawl-delay)."""
        state = self._state(host)
        if delay > state.delay:
            state.delay = delay
            state.spacing = max(state.spacing, delay)
            # A delay learnt mid-flight (robots.txt) also spaces the request just started.
            state.next_allowed = max(state.next_allowed, state.last_start + delay)
            if self._on_policy is not None:
                self._on_policy(host, delay, None)

    def defer_host(self, host: str, seconds: float) -> None:
        """Start nothing on this host for a while (Retry-After, back-off)."""
        state = self._state(host)
        state.next_allowed = max(state.next_allowed, time.monotonic() + seconds)
        if self._on_policy is not None:
            self._on_policy(host, None, seconds)
        self._wake.set()

    def request_started(self, host: str) -> float:
        """The request itself starts now (after robots.txt, after the hand-off): space
        the next one from here, so the server never sees two closer than the delay.
        Returns the spacing applied (seconds)."""
        state = self._hosts.get(host)
        if state is None or not state.spacing:
            return 0.0
        now = time.monotonic()
        state.last_start = now
        state.next_allowed = max(state.next_allowed, now + state.spacing)
        return state.spacing

    def request_sent(self, host: str, sent_at: float) -> None:
        """The request's headers left at `sent_at` (monotonic), after connection set-up:
        that is when the server sees it start, so the spacing counts from there too."""
        state = self._hosts.get(host)
        if state is not None and state.spacing:
            state.last_start = max(state.last_start, sent_at)
            state.next_allowed = max(state.next_allowed, sent_at + state.spacing)

    def _state(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host()
        return state

    # -- fetch tasks -----------------------------------------------------------------

    async def get(self) -> Slot:
        slot = await self._ready.get()
        self._wake.set()
        self._room.set()
        return slot

    def fetched(self, slot: Slot) -> None:
        """The body is read: the host's in-flight slot is free (politeness counts
        fetches); the key's share stays taken until `done` (the fetch task may still wait
        for room in the parse queue, and a waiting fetch task is not an idle one)."""
        if slot.item.id in self._host_freed:
            return
        self._host_freed.add(slot.item.id)
        state = self._hosts.get(slot.host)
        if state is not None:
            state.active -= 1
            idle = not state.items and state.active <= 0
            if idle and state.next_allowed <= time.monotonic() and state.delay == 0:
                del self._hosts[slot.host]
            else:
                self._arm(slot.host, state)
        self._wake.set()

    def done(self, slot: Slot) -> None:
        """A fetch task finished with a URL: free its key's share (and its host slot,
        if `fetched` did not already)."""
        if slot.item.id in self._host_freed:
            self._host_freed.discard(slot.item.id)
        else:
            self.fetched(slot)
            self._host_freed.discard(slot.item.id)
        owner = slot.item.owner
        self._key_active[owner] -= 1
        self._key_load[owner] -= 1
        if self._key_load[owner] <= 0:
            self._key_load.pop(owner, None)
            self._key_active.pop(owner, None)
        self._unpark_keys()
        self._wake.set()
        self._room.set()

    # -- the pump --------------------------------------------------------------------

    def _limits(self, item: FrontierItem) -> tuple[int, float]:
        limit, delay = None, None
        if self._limit_for is not None:
            limit, delay = self._limit_for(item)
        return (limit or self._default_limit, delay if delay is not None else self._default_delay)

    def _arm(self, host: str, state: _Host, now: float | None = None) -> None:
        """Put a host with waiting URLs in line: in the ready heap if it may start now
        (when `now` is given, i.e. inside a dispatch pass), else in the timer heap."""
        if not state.armed and state.items:
            state.armed = True
            if now is not None and state.next_allowed <= now:
                entry = (-state.items[0].weight, next(self._seq), host)
                heapq.heappush(self._runnable, entry)
            else:
                heapq.heappush(self._timers, (state.next_allowed, next(self._seq), host))

    def _share(self, owner: str | None) -> float:
        if self._per_key is not None:
            return self._per_key
        if len(self._key_load) <= 1:
            return math.inf
        return math.ceil(self._tasks / len(self._key_load))

    def _unpark_keys(self) -> None:
        for owner in list(self._key_parked):
            if self._key_active[owner] < self._share(owner):
                for host in self._key_parked.pop(owner):
                    state = self._hosts.get(host)
                    if state is not None:
                        self._arm(host, state)

    def _evict_idle(self, now: float) -> None:
        self._evicted_at = now
        idle = [
            host
            for host, state in self._hosts.items()
            if not state.items and state.active <= 0 and state.next_allowed <= now
        ]
        for host in idle:
            del self._hosts[host]

    @property
    def hosts(self) -> int:
        """Hosts whose state is kept (waiting, in flight, or spacing)."""
        return len(self._hosts)

    def _dispatch(self) -> float | None:
        """Move every startable URL to the ready queue; return seconds until the next."""
        now = time.monotonic()
        if now - self._evicted_at >= EVICT_EVERY:
            self._evict_idle(now)
        while self._timers and self._timers[0][0] <= now:
            _, seq, host = heapq.heappop(self._timers)
            state = self._hosts.get(host)
            if state is None or not state.items:
                if state is not None:
                    state.armed = False
                continue
            # Higher weight (priority) first, then the host that waited longest.
            heapq.heappush(self._runnable, (-state.items[0].weight, seq, host))
        over_share: list[str] = []
        while self._runnable and not self._ready.full():
            _, _, host = heapq.heappop(self._runnable)
            state = self._hosts.get(host)
            if state is None or not state.items:
                if state is not None:
                    state.armed = False
                continue
            item = state.items[0]
            limit, delay = self._limits(item)
            if state.active >= limit:
                state.armed = False  # done() re-arms it
                continue
            if state.next_allowed > now:
                heapq.heappush(self._timers, (state.next_allowed, next(self._seq), host))
                continue
            if self._key_active[item.owner] >= self._share(item.owner):
                over_share.append(host)
                continue
            self._start(host, state, item, delay, now)
            state.armed = False
            # Back in line behind the other ready hosts (round robin), not after a pass.
            self._arm(host, state, now)
        # Work-conserving: a fetch task that would stay idle takes work beyond its key's
        # share, the least served key first. Fetch tasks are all taken when the dispatched URLs
        # (in flight or waiting in the ready queue) reach their number.
        over_share.sort(key=lambda h: self._key_active[self._hosts[h].items[0].owner])
        idle = self._tasks - sum(self._key_active.values())
        for host in over_share:
            state = self._hosts[host]
            item = state.items[0]
            if self._per_key is None and idle > 0 and not self._ready.full():
                self._start(host, state, item, self._limits(item)[1], now)
                idle -= 1
                state.armed = False
                self._arm(host, state)
            else:
                state.armed = False
                self._key_parked[item.owner].append(host)
        if self._runnable and not self._ready.full():
            return 0.0
        return self._timers[0][0] - now if self._timers else None

    def _start(self, host: str, state: _Host, item: FrontierItem, delay: float, now: float) -> None:
        state.items.popleft()
        self._buffered -= 1
        state.active += 1
        self._key_active[item.owner] += 1
        self.started_by_key[item.owner] += 1
        self.max_active_seen = max(self.max_active_seen, state.active)
        state.last_start = now
        spacing = state.spacing = max(delay, state.delay)
        if spacing:
            state.next_allowed = now + spacing
        self._ready.put_nowait(Slot(item, host))

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
        for item in dropped:
            self._key_load[item.owner] -= 1
            if self._key_load[item.owner] <= 0 and self._key_active[item.owner] <= 0:
                self._key_load.pop(item.owner, None)
        self._buffered -= len(dropped)
        self._unpark_keys()
        return dropped

    def drain(self) -> list[FrontierItem]:
        """Everything not yet taken by a fetch task (shutdown puts it back in the store)."""
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
