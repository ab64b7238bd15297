"""Live job progress: one watcher polls the store for every watched job and fans out.

    store --one query per tick for all watched jobs--> ProgressHub --frames--> subscribers

Each watched job has a `_Feed` holding its latest state, already encoded as one SSE frame,
and a version that grows when the state changes. A subscriber (one SSE stream) watches one
or more feeds and is woken by an Event whenever one of them changes; it then sends the
latest frame of each feed that moved. A slow subscriber therefore never queues frames: it
skips straight to the newest state (coalescing), and the watcher never waits for anyone.

The watcher reads the database rather than in-process hooks, so an API process learns of
progress made by worker processes on a shared PostgreSQL frontier the same way it learns of
its own. A tick costs one `get_jobs` query however many streams are open, and nothing at
all while nobody watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from service.models import Job
from service.store.base import Store

logger = logging.getLogger(__name__)

# 4 frames a second at most per job: live enough for a progress bar, cheap for 200 streams.
DEFAULT_INTERVAL = 0.25
# A comment line this often keeps proxies (and Sanic's response timeout) from closing an
# idle stream; Sanic refreshes the timeout on every write.
KEEPALIVE_SECONDS = 15.0
# Streams woken per loop iteration when a job changes.
_WAKE_BATCH = 20
# SQLite allows 32,766 bound parameters; PostgreSQL takes an array. Chunk far below both.
_CHUNK = 500


def event_id(job: Job) -> str:
    """A stable id for a job state: what a reconnecting client sends as Last-Event-ID."""
    stats = job.stats
    return (
        f"{job.status.value}.{stats.pages_discovered}.{stats.pages_fetched}."
        f"{stats.pages_failed}.{stats.pages_skipped}"
    )


def encode_frame(job: Job) -> tuple[dict[str, Any], bytes]:
    """The job's public JSON and its SSE frame (`event: job`)."""
    document = job.as_dict()
    data = json.dumps(document, separators=(",", ":"))
    frame = f"id: {event_id(job)}\nevent: job\ndata: {data}\n\n".encode()
    return document, frame


@dataclass(slots=True)
class _Feed:
    job_id: str
    document: dict[str, Any]
    frame: bytes
    final: bool
    version: int = 0
    subscribers: set[Subscription] = field(default_factory=set)


class Subscription:
    """One stream's view of some feeds; iterate `frames()` to get what to send."""

    def __init__(self, hub: ProgressHub, feeds: list[_Feed]) -> None:
        self._hub = hub
        self._feeds = feeds
        self._seen = {feed.job_id: -1 for feed in feeds}
        self._wake = asyncio.Event()
        self._wake.set()  # the current state goes out at once
        self.keepalive_due = False

    def notify(self) -> None:
        self._wake.set()

    async def frames(self) -> AsyncIterator[bytes]:
        """Frames as the jobs change; ends once every job is final (or the hub stops)."""
        while True:
            # A bare Event wait: asyncio.wait_for would cost a task and a timer per wake-up
            # (measured: a third of the fan-out's CPU); the hub's timer sends keep-alives.
            await self._wake.wait()
            self._wake.clear()
            done = True
            moved = False
            for feed in self._feeds:
                if feed.version != self._seen[feed.job_id]:
                    self._seen[feed.job_id] = feed.version
                    moved = True
                    yield feed.frame
                done = done and feed.final
            if done or self._hub.stopped:
                return
            if self.keepalive_due and not moved:
                yield b": keep-alive\n\n"
            self.keepalive_due = False


class ProgressHub:
    """Watches the jobs someone is subscribed to; see the module docstring."""

    def __init__(self, store: Store, *, interval: float = DEFAULT_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self.stopped = False
        self.ticks = 0  # watcher queries so far (tests and the bench read it)
        self._feeds: dict[str, _Feed] = {}
        self._watching = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        # Subscribers to wake, a batch per loop iteration (see `_wake_batch`).
        self._to_wake: deque[Subscription] = deque()
        self._waking = False

    @property
    def subscriber_count(self) -> int:
        return len({sub for feed in self._feeds.values() for sub in feed.subscribers})

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="trawl-progress")
        self._keepalive_task = asyncio.create_task(self._keepalive(), name="trawl-keepalive")

    async def stop(self) -> None:
        """End every stream (so shutdown does not wait for them) and the watcher."""
        self.stopped = True
        for feed in self._feeds.values():
            for sub in feed.subscribers:
                sub.notify()
        tasks = [task for task in (self._task, self._keepalive_task) if task is not None]
        self._task = self._keepalive_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @contextlib.contextmanager
    def subscribe(self, jobs: Iterable[Job]) -> Iterator[Subscription]:
        """Watch these jobs (already authorised by the caller) for as long as the block runs."""
        feeds = [self._feed_for(job) for job in jobs]
        subscription = Subscription(self, feeds)
        for feed in feeds:
            feed.subscribers.add(subscription)
        self._watching.set()
        try:
            yield subscription
        finally:
            for feed in feeds:
                feed.subscribers.discard(subscription)
                if not feed.subscribers:
                    self._feeds.pop(feed.job_id, None)

    def _feed_for(self, job: Job) -> _Feed:
        feed = self._feeds.get(job.id)
        if feed is None:
            document, frame = encode_frame(job)
            feed = self._feeds[job.id] = _Feed(
                job_id=job.id, document=document, frame=frame, final=job.status.is_final
            )
        else:
            # The caller's copy was read just now: it may be newer than the last tick's.
            self._publish(feed, job)
        return feed

    def _publish(self, feed: _Feed, job: Job) -> None:
        if feed.final:
            return  # a final state is the last word (a late read must not undo it)
        document, frame = encode_frame(job)
        if document == feed.document:
            return
        feed.document, feed.frame = document, frame
        feed.final = job.status.is_final
        feed.version += 1
        self._to_wake.extend(feed.subscribers)
        if not self._waking:
            self._waking = True
            asyncio.get_running_loop().call_soon(self._wake_batch)

    def _wake_batch(self) -> None:
        """Wake a batch of subscribers, the rest on the next loop iteration.

        Waking all 200 streams at once runs their 200 sends in one loop iteration (~10 ms
        here): everything else on the loop waits that long. A batch at a time lets the
        crawl's callbacks run in between.
        """
        for _ in range(min(_WAKE_BATCH, len(self._to_wake))):
            self._to_wake.popleft().notify()
        if self._to_wake:
            asyncio.get_running_loop().call_soon(self._wake_batch)
        else:
            self._waking = False

    async def poll(self) -> None:
        """One tick: read every watched job that is not final yet, publish changes."""
        ids = [job_id for job_id, feed in self._feeds.items() if not feed.final]
        if not ids:
            return
        self.ticks += 1
        for start in range(0, len(ids), _CHUNK):
            jobs = await self.store.get_jobs(ids[start : start + _CHUNK])
            for job in jobs:
                feed = self._feeds.get(job.id)
                if feed is not None:
                    self._publish(feed, job)

    async def _keepalive(self) -> None:
        while not self.stopped:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            for feed in self._feeds.values():
                for sub in feed.subscribers:
                    sub.keepalive_due = True
                    sub.notify()

    async def _run(self) -> None:
        while not self.stopped:
            if not any(not feed.final for feed in self._feeds.values()):
                self._watching.clear()
                await self._watching.wait()
                continue
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A database hiccup: streams keep their last state and the next tick retries.
                logger.exception("progress watcher could not read jobs")
                await asyncio.sleep(1.0)
