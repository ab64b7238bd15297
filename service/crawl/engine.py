"""The crawl engine: claims URLs from the store and runs them through the fetch tasks.

    store --claim--> HostScheduler --ready queue--> N fetch tasks --ParseQueue--> M parse tasks
          <--record-- ResultWriter <-----------------------------------------------'

A fetch task frees its fetch slot and its host's in-flight slot once the body is read;
the page waits in the bounded parse queue for one of the parse tasks (about two per
parser process), so a slow parser never holds a fetch slot or a host.

"Worker" in this codebase is the process role (`python -m service worker`, whose id
claims rows in the store); inside a process the concurrency is N *fetch tasks*, each
running one URL at a time through the per-URL *pipeline* (crawl/pipeline.py).

Shutdown (`stop`) is the delicate part: stop claiming, let in-flight pages finish
within the grace period, cancel the rest, flush the writer, then put every URL this
process still holds back to pending, so a restart (or another process) picks it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from service import metrics
from service.crawl.fetcher import Fetcher
from service.crawl.fetchmarks import FetchMarks
from service.crawl.hosthealth import HostHealth
from service.crawl.parsepool import ParsePool
from service.crawl.parsequeue import ParseQueue
from service.crawl.pipeline import Fetched, PagePipeline, PipelineConfig, page_document
from service.crawl.plan import JobPlan
from service.crawl.robots import RobotsCache
from service.crawl.scheduler import HostScheduler, Slot
from service.crawl.writer import ResultWriter
from service.errors import StoreUnavailable
from service.models import JobStatus, Outcome
from service.settings import Settings
from service.store.base import FrontierItem, PageRecord, Release, Store

logger = logging.getLogger(__name__)

# URLs per claim at most. A claim is one write transaction whose cost grows with the URLs
# it takes: at 1,000,000 pending, claim(256) took p50 18 ms / p99 73 ms on SQLite and
# p50 56 / p99 169 ms on PostgreSQL on the loaded bench machine; claim(64) 6 / 25 ms and
# 24 / 84 ms. Smaller claims, more often, keep every transaction (and the writes queued
# behind it) short; 64 a claim still refills 64 fetch tasks in one go.
MAX_CLAIM = 64


class Crawler:
    """Owns the crawl loop's tasks; `start` and `stop` are called by app listeners."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        fetcher: Fetcher,
        parser: ParsePool,
        *,
        on_job_loaded: Callable[[JobPlan], None] | None = None,
        on_jobs_finished: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.parser = parser
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.plans: dict[str, JobPlan] = {}
        self._on_job_loaded = on_job_loaded
        # Synchronous requests (POST /v1/scrape) wait on this instead of polling the store.
        self._on_jobs_finished = on_jobs_finished
        self.held: dict[int, FrontierItem] = {}  # claimed by this process, not yet settled
        shared = getattr(store, "shared_frontier", True)
        self.scheduler = HostScheduler(
            ready_size=settings.concurrency,
            # Claims take a few URLs per host (its limit, plus as many again on a private
            # frontier), so the buffer must hold that for every host in play: thousands
            # of hosts cost a few MB, whatever the backlog in the database.
            capacity=max(
                settings.effective_queue_size + settings.concurrency, settings.frontier_buffer
            ),
            per_host_limit=settings.per_host_concurrency,
            per_host_delay=settings.per_host_delay,
            limit_for=self._limits_for,
            per_key=settings.max_concurrency_per_key or None,
            on_policy=self._share_policy if shared else None,
        )
        self.health = HostHealth()
        self.robots = RobotsCache(fetcher, settings.user_agent)
        self.writer = ResultWriter(
            store,
            batch_size=settings.result_batch_size,
            interval=settings.result_flush_interval,
            on_flushed=self._flushed,
        )
        self.pipeline = PagePipeline(
            fetcher=fetcher,
            parser=parser,
            robots=self.robots,
            scheduler=self.scheduler,
            health=self.health,
            config=PipelineConfig(
                retry_base_delay=settings.retry_base_delay,
                host_failure_threshold=settings.host_failure_threshold,
            ),
            history=store,
        )
        # Claims are host-aware on every store: at most a host's limit of claimed URLs,
        # counted across all processes. A private frontier (SQLite) also claims twice as many
        # again ahead, so the next request of a host is here when its delay ends; a shared
        # one (PostgreSQL) claims no more than the limit, so other processes get the rest,
        # and the store reserves each host's spacing.
        self._shared = shared
        self._share_workers = (
            settings.concurrency if shared and not settings.max_concurrency_per_key else None
        )
        self._claim_cap = settings.per_host_concurrency
        # Look-ahead: twice each host's limit more; less starves a busy host between
        # claims on a loaded machine, more makes thousands of hosts outgrow the buffer.
        self._claim_ahead = 0 if shared else 2
        self._poll = 0.1 if shared else 0.25
        self._early = 2 * self._poll if shared else 0.0
        self._claim_batch = max(8, settings.concurrency // 2)
        self._stop = asyncio.Event()
        self._new_work = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._writer_task: asyncio.Task[None] | None = None
        self._claiming = False  # between a claim and its URLs being held (burst mode)
        # True while claims fail because the database takes no writes; with nothing in
        # flight the writer never fails a write, so this is the crawl's own pause signal.
        self.claims_paused = False
        self._fetch_tasks: list[asyncio.Task[None]] = []
        self._busy: dict[asyncio.Task[None], Slot] = {}
        self.parse_queue: ParseQueue[tuple[Fetched | PageRecord, JobPlan]] = ParseQueue(
            max_items=settings.parse_queue_size or settings.concurrency,
            max_bytes=settings.parse_queue_mb * 1024 * 1024,
        )
        self._parse_tasks: list[asyncio.Task[None]] = []
        self._parsing = 0  # handed to the parse stage (queued or being parsed)
        self._parse_idle = asyncio.Event()
        self._parse_idle.set()
        self._background_tasks: set[asyncio.Task[object]] = set()
        # Per host: pages finished and handed to the writer, not yet recorded. Their rows
        # are still claimed, but they hold no host slot (the claim's per-host cap).
        self._settling: Counter[str] = Counter()
        self._settling_ids: set[int] = set()
        # Shared frontier: fetched claims are marked in the store at once (their hosts free
        # from the request's start plus the spacing), not only when their records arrive.
        self.fetch_marks = (
            FetchMarks(
                store,
                self.worker_id,
                interval=settings.result_flush_interval,
                on_sent=self._marks_sent,
            )
            if shared
            else None
        )

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        recovered = await self.store.recover()
        if recovered:
            logger.info("returned %d URLs claimed by an earlier process to pending", recovered)
        # The writer is stopped last, on its own: it flushes what the fetch tasks finished.
        self._writer_task = asyncio.create_task(self.writer.run(self._stop), name="trawl-writer")
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="trawl-claimer"),
            asyncio.create_task(self.scheduler.pump(self._stop), name="trawl-pump"),
            asyncio.create_task(self._watch_jobs(), name="trawl-job-watch"),
            *(
                [asyncio.create_task(self.fetch_marks.run(self._stop), name="trawl-fetch-marks")]
                if self.fetch_marks is not None
                else []
            ),
        ]
        self._fetch_tasks = [
            asyncio.create_task(self._fetch_loop(), name=f"trawl-fetch-{i}")
            for i in range(self.settings.concurrency)
        ]
        # Two per parser process: one parsing, one ready with the next page, so a child
        # never waits for the event loop between pages.
        self._parse_tasks = [
            asyncio.create_task(self._parse_loop(), name=f"trawl-parse-{i}")
            for i in range(2 * max(1, self.settings.parser_processes))
        ]

    async def stop(self, grace: float) -> None:
        """Drain: see the module docstring. Never raises."""
        self._stop.set()
        self._new_work.set()
        deadline = time.monotonic() + grace
        # Idle fetch tasks wait on the ready queue: cancel them now; busy ones may finish.
        for task in self._fetch_tasks:
            if task not in self._busy:
                task.cancel()
        busy = [task for task in self._fetch_tasks if task in self._busy]
        if busy:
            _, pending = await asyncio.wait(busy, timeout=max(0.0, deadline - time.monotonic()))
            for task in pending:
                task.cancel()
        await asyncio.gather(*self._fetch_tasks, return_exceptions=True)
        # Pages already fetched are parsed within what is left of the grace period; the
        # rest stay held and go back to pending below.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._parse_idle.wait(), timeout=max(0.0, deadline - time.monotonic())
            )
        for task in self._parse_tasks:
            task.cancel()
        await asyncio.gather(*self._parse_tasks, return_exceptions=True)
        self.parse_queue.drain()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._writer_task is not None:
            await asyncio.gather(self._writer_task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.writer.flush()
        leftovers = list(self.held.values())
        self.scheduler.drain()
        if leftovers:
            try:
                await self.store.release(
                    [Release(item=item) for item in leftovers], worker=self.worker_id
                )
                logger.info("returned %d unfinished URLs to the frontier", len(leftovers))
            except Exception:
                logger.exception(
                    "could not return %d URLs; a restart recovers them", len(leftovers)
                )
        self.held.clear()

    async def run_until_idle(self, *, within: float, poll: float = 0.02) -> None:
        """Burst mode (arq's `burst=True`): start, crawl until the frontier is idle, stop.

        For tests and one-shot runs of the crawl core; TimeoutError after `within`
        seconds (the crawl is stopped either way).
        """
        await self.start()
        try:
            async with asyncio.timeout(within):
                while True:
                    if await self._idle():
                        return
                    await asyncio.sleep(poll)
        finally:
            await self.stop(self.settings.grace_period)

    async def _idle(self) -> bool:
        """Nothing pending in the store, held or being claimed here, no URL in work."""
        if self.held or self._claiming or self._busy or self._parsing:
            return False
        return await self.store.pending_count() == 0

    def _well_fed(self) -> bool:
        return self.scheduler.buffered >= self.settings.concurrency

    @property
    def in_flight(self) -> int:
        """URLs being worked on right now."""
        return len(self._busy)

    def notify_new_work(self) -> None:
        self._new_work.set()

    async def job_cancelled(self, job_id: str) -> None:
        plan = self.plans.get(job_id)
        if plan is not None:
            plan.cancelled = True
        dropped = self.scheduler.drop_job(job_id)
        for item in dropped:
            self.held.pop(item.id, None)

    # -- claiming --------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.writer.paused:
                    # The database takes no writes: claiming would fail too, and fetching
                    # more would only pile up results in memory. Resume with the writer.
                    await asyncio.sleep(0.25)
                    continue
                room = self.scheduler.room()
                # A claim is a write transaction: while the fetch tasks still have plenty
                # buffered, wait for a worthwhile batch instead of claiming a few URLs.
                if room <= 0 or (room < self._claim_batch and self._well_fed()):
                    await self.scheduler.wait_for_room(0.5, at_least=self._claim_batch)
                    continue
                self._new_work.clear()
                started = time.perf_counter()
                self._claiming = True
                items = await self.store.claim(
                    min(room, MAX_CLAIM),
                    self.worker_id,
                    self.settings.lease_seconds,
                    self._claim_cap,
                    ahead=self._claim_ahead,
                    per_key=self.settings.max_concurrency_per_key or None,
                    spacing=self.settings.per_host_delay,
                    settling=self._settling,
                    # Shared frontier: the per-key equal share holds across processes
                    # (a private one's scheduler is the only claimer and shares itself).
                    workers=self._share_workers,
                    # Shared: a turn due before the next poll is claimed now, and waits
                    # here for its time, instead of starting up to a poll late.
                    early=self._early,
                )
                self.claims_paused = False
                metrics.CLAIM_SECONDS.observe(time.perf_counter() - started)
                metrics.QUEUE_DEPTH.set(self.scheduler.buffered)
                if items:
                    await self._hold(items)  # in the scheduler before any wait below
                else:
                    self._claiming = False  # nothing claimed: idle as far as claims go
                if len(items) < min(room, MAX_CLAIM):
                    # The claim took all that may be fetched now: claiming again before a
                    # settle, a submit or a retry's time would only visit the same hosts.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._new_work.wait(), self._poll)
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                self.claims_paused = True
                logger.warning("claiming paused: %s", exc)
                await asyncio.sleep(1.0)
            except Exception:
                logger.exception("claiming work failed; retrying")
                await asyncio.sleep(1.0)
            finally:
                self._claiming = False

    async def _hold(self, items: list[FrontierItem]) -> None:
        """Hand claimed URLs of live jobs to the scheduler. A URL claimed ahead of its
        host's turn (`start_in`) on a host held to one request at a time has its
        robots.txt read meanwhile, if not known here: nothing else is in flight to the
        host then (the claim found its one slot free), and the page starts on its turn
        instead of a robots.txt round trip late (each process keeps its own robots.txt
        cache, so on a shared frontier every process meets this once per host)."""
        await self._load_plans({item.job_id for item in items})
        await self._refresh_scopes(items)
        accepted = []
        for item in items:
            plan = self.plans.get(item.job_id)
            if plan is None or plan.cancelled:
                continue
            self.held[item.id] = item
            accepted.append(item)
            if (
                item.start_in > 0
                and plan.respect_robots
                and (self._limits_for(item)[0] or self.settings.per_host_concurrency) == 1
                and not self.robots.known(item.url)
            ):
                self._background(self.robots.check(item.url))
        self.scheduler.add(accepted)

    async def _load_plans(self, job_ids: set[str]) -> None:
        missing = [job_id for job_id in job_ids if job_id not in self.plans]
        if not missing:
            return
        try:
            specs = await self.store.job_specs(missing)
        except ValueError:  # one unusable stored spec: load the jobs one by one
            specs = {}
            for job_id in missing:
                try:
                    specs.update(await self.store.job_specs([job_id]))
                except ValueError as exc:
                    logger.exception("job %s has an unusable spec", job_id)
                    await self.store.fail_job(
                        job_id, {"code": "bad_request", "message": f"unusable request: {exc}"}
                    )
        for job_id, stored in specs.items():
            if stored.status.is_final:
                continue
            try:
                plan = self.plans[job_id] = JobPlan.from_spec(
                    job_id, stored.spec, self.settings, stored.facts
                )
            except Exception as exc:
                logger.exception("job %s has an unusable request", job_id)
                await self.store.fail_job(
                    job_id, {"code": "bad_request", "message": f"unusable request: {exc}"}
                )
                self._announce([job_id])
                continue
            if self._on_job_loaded is not None:
                self._on_job_loaded(plan)

    async def _refresh_scopes(self, items: list[FrontierItem]) -> None:
        """Reload what jobs learnt when a claimed URL is outside this process's idea of
        their scope: another process (or an earlier run) widened it, and stored that in
        the transaction that admitted the URL, so the database has it now."""
        stale = {
            item.job_id
            for item in items
            if (plan := self.plans.get(item.job_id)) is not None and not plan.in_scope(item.url)
        }
        if not stale:
            return
        for job_id, stored in (await self.store.job_specs(sorted(stale))).items():
            plan = self.plans.get(job_id)
            if plan is not None:
                plan.learn(stored.facts)

    async def _watch_jobs(self) -> None:
        """Notice jobs finished elsewhere (cancelled by another process), renew leases."""
        # Counting pending URLs is a scan, and a lease needs renewing well before it ends,
        # not twice a second: each has its own cadence on this 0.5 s tick.
        count_every = 10
        renew_every = max(1, int(self.settings.lease_seconds / 4 / 0.5))
        tick = 0
        while not self._stop.is_set():
            await asyncio.sleep(0.5)
            tick += 1
            try:
                if self.plans:
                    states = await self.store.job_requests(list(self.plans))
                    for job_id in list(self.plans):
                        status = states.get(job_id, (JobStatus.CANCELLED, ""))[0]
                        if status.is_final:
                            self._announce([job_id])
                            if status is JobStatus.CANCELLED or status is JobStatus.FAILED:
                                await self.job_cancelled(job_id)
                            self._forget(job_id)
                if tick % count_every == 1:
                    metrics.PENDING_URLS.set(await self.store.pending_count())
                if self.held and tick % renew_every == 0:
                    await self.store.extend_leases(
                        list(self.held), self.worker_id, self.settings.lease_seconds
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("job watch failed")

    def _forget(self, job_id: str) -> None:
        if any(item.job_id == job_id for item in self.held.values()):
            return  # still settling pages of it
        self.plans.pop(job_id, None)

    def _share_policy(self, host: str, delay: float | None, defer: float | None) -> None:
        """Tell the other processes what this one learnt about a host (shared frontier)."""
        self._background(self.store.host_policy(host, delay=delay, defer=defer))

    def _background(self, work: Coroutine[Any, Any, object]) -> None:
        """Run `work` on its own (a policy shared, a robots.txt read ahead)."""
        task = asyncio.get_running_loop().create_task(work)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[object]) -> None:
        self._background_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("background work failed: %s", task.exception())

    def _limits_for(self, item: FrontierItem) -> tuple[int | None, float | None]:
        plan = self.plans.get(item.job_id)
        if plan is None:
            return None, None
        if plan.adaptive_delay:
            floor = plan.per_host_delay or 0.0
            return plan.per_host_concurrency, self.health.auto_delay(item.host, floor)
        return plan.per_host_concurrency, plan.per_host_delay

    # -- working ---------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while not self._stop.is_set():
            slot = await self.scheduler.get()
            self._busy[task] = slot
            metrics.IN_FLIGHT.inc()
            try:
                await self._fetch(slot)
            finally:
                if self._busy.pop(task, None) is not None:
                    metrics.IN_FLIGHT.dec()
                    self.scheduler.done(slot)

    async def _fetch(self, slot: Slot) -> None:
        """One URL's fetch stage; what it fetched goes on to the parse stage."""
        item = slot.item
        plan = self.plans.get(item.job_id)
        if plan is None or plan.cancelled:
            self.held.pop(item.id, None)
            return
        try:
            outcome = await self.pipeline.fetch(item, plan)
        except asyncio.CancelledError:
            raise  # shutdown: the item stays held and is released by stop()
        except Exception as exc:
            outcome = self._internal_error(item, exc)
        # The body is read: the host's in-flight slot is free (its spacing still counts
        # from this request's start); the fetch task is free once the page is handed on.
        self.scheduler.fetched(slot)
        if isinstance(outcome, Release):
            await self._release(outcome)
            return
        # From here on the page holds no host slot: this claimer discounts it (settling)
        # until its record, or on a shared frontier its fetch mark, reaches the store.
        self._settling_ids.add(item.id)
        self._settling[item.host] += 1
        if self.fetch_marks is not None:
            free_at = outcome.free_at if isinstance(outcome, Fetched) else outcome.host_free_at
            self.fetch_marks.add(item, free_at)
        if isinstance(outcome, PageRecord) and not self.pipeline.needs_finish(outcome, plan):
            self.writer.add(outcome)
            return
        self._parsing += 1
        self._parse_idle.clear()
        size = outcome.size if isinstance(outcome, Fetched) else 0
        try:
            await self.parse_queue.put((outcome, plan), size)  # waits while it is full
        except BaseException:
            self._parsed()
            raise

    async def _parse_loop(self) -> None:
        while True:
            outcome, plan = await self.parse_queue.get()
            try:
                try:
                    record = await self.pipeline.finish(outcome, plan)
                except asyncio.CancelledError:
                    raise  # shutdown: the item stays held and is released by stop()
                except Exception as exc:
                    record = self._internal_error(outcome.item, exc)
                self.writer.add(record)
            finally:
                self._parsed()

    def _parsed(self) -> None:
        self._parsing -= 1
        if self._parsing <= 0:
            self._parse_idle.set()

    @staticmethod
    def _internal_error(item: FrontierItem, exc: Exception) -> PageRecord:
        logger.error("pipeline failed on %s", item.url, exc_info=exc, extra={"job_id": item.job_id})
        return PageRecord(
            item=item,
            outcome=Outcome.FAILED,
            attempts=item.attempts + 1,
            page_json=page_document(
                item, error=("internal_error", type(exc).__name__), attempts=item.attempts + 1
            ),
        )

    async def _release(self, release: Release) -> None:
        """Put a URL back for a retry; while the database cannot be written, keep trying
        (it stays held, so a shutdown meanwhile releases it too)."""
        delay = 0.25
        while True:
            try:
                await self.store.release([release], worker=self.worker_id)
            except StoreUnavailable:
                if self._stop.is_set():
                    return
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
                continue
            break
        self.held.pop(release.item.id, None)
        self._new_work.set()

    def _flushed(self, records: list[PageRecord], admitted: int, completed: list[str]) -> None:
        for record in records:
            self.held.pop(record.item.id, None)
            self._unsettle(record.item)
            if self.fetch_marks is not None:
                self.fetch_marks.discard(record.item.id)
            metrics.PAGES.labels(outcome=record.outcome.value).inc()
        # A private frontier: settled pages free room, so claim again at once. A shared one
        # (per-host caps in the claim): re-claiming on every settle would let this process
        # take each freed host slot before the other processes' next poll, starving them.
        if admitted or not self._shared:
            self._new_work.set()
        for job_id in completed:
            logger.info("job completed", extra={"job_id": job_id})
            self._forget(job_id)
        if completed:
            self._announce(completed)

    def _unsettle(self, item: FrontierItem) -> None:
        """The page no longer needs discounting by this claimer (recorded, or marked)."""
        if item.id not in self._settling_ids:
            return
        self._settling_ids.discard(item.id)
        self._settling[item.host] -= 1
        if self._settling[item.host] <= 0:
            del self._settling[item.host]

    def _marks_sent(self, items: list[FrontierItem]) -> None:
        for item in items:
            self._unsettle(item)

    def _announce(self, job_ids: list[str]) -> None:
        if self._on_jobs_finished is not None:
            self._on_jobs_finished(job_ids)
