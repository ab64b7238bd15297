"""The schedules' ticker: sleeps until the earliest schedule is due, then fires it.

    schedules.next_due() --sleep, woken on create/patch--> claim the tick --> job (or skip)

A ticker runs in each process that runs the crawl engine as a service (the all-in-one
and worker roles, not the CLI's embedded engine). Only the process that leads
"schedules" fires (`Store.try_lead`: always this one on SQLite, a session advisory lock
on PostgreSQL, the webhooks outbox's mechanism); the others ask again every few seconds,
so a dead leader's role passes on. Firing is idempotent in the database besides
(store/schedules.py), so even two leaders cannot fire one tick twice.

It sleeps until the earliest `next_run_at`, at most `MAX_SLEEP` (a bound against missed
wake-ups and wall-clock jumps), and is woken early when a schedule changes: by the API
in this process (`wake`), or by another process's PostgreSQL NOTIFY.

A tick fires one run:

- skipped (and recorded so) if the schedule's previous job is still queued or running,
  or the crawl backlog is full;
- else a job: a recrawl of the previous run's job (`store_recrawl`, what POST
  /v1/jobs/{id}/recrawl stores), or a plain job (`store_job`) for the first run;
- however many ticks passed while no process ran (downtime), they make one catch-up run
  (`missed` counts the others) and `next_run_at` moves to the next tick in the future.

The clock is injectable (`Clock`), so tests move time forward without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from service import metrics
from service.errors import Conflict, NotFound, StoreUnavailable, ValidationFailed
from service.models import ACTIVE_STATUSES, Job, parse_job_request
from service.schedules import (
    INVALID_REQUEST,
    OVERLOADED,
    PREVIOUS_RUN_ACTIVE,
    RunState,
    Schedule,
    ScheduleRun,
)
from service.settings import Settings
from service.store.base import IdempotencyConflict, Store
from service.store.schedules import PendingRun
from service.submission import limits_of, store_job, store_recrawl

logger = logging.getLogger(__name__)

MAX_SLEEP = 30.0  # seconds: the longest sleep without a look at the database
LEAD_RETRY = 3.0  # seconds between a non-leader's asks for the lead
ERROR_RETRY = 5.0  # seconds after a failed pass (database unreachable, ...)
RECOVER_AFTER = 30.0  # seconds a run may stay pending before another process finishes it
BATCH = 50  # due schedules fired per pass


class Clock(Protocol):
    """Wall-clock time for the ticker (tests move a fake one forward)."""

    def now(self) -> float:
        """Epoch seconds."""
        ...

    async def sleep(self, seconds: float, wake: asyncio.Event) -> None:
        """Return after `seconds`, or as soon as `wake` is set."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float, wake: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), max(0.0, seconds))


def idempotency_key(schedule_id: str, tick: float) -> str:
    """The key a tick's job is created under: a run finished twice creates one job."""
    return f"trawl-schedule:{schedule_id}:{tick!r}"


class ScheduleTicker:
    """Fires due schedules (see the module docstring); `run(stop)` is its task."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock | None = None,
        on_job: Callable[[Job], None] | None = None,
        lead: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self._on_job = on_job
        self._lead = lead or (lambda: store.try_lead("schedules"))
        self._wake = asyncio.Event()
        self._recovered = False
        self.passes = 0  # completed passes over the due schedules (tests wait on it)
        self.leading = False
        self._next_lead_ask = 0.0  # monotonic time a non-leader asks for the lead again

    def wake(self) -> None:
        """A schedule changed: look at the due times again now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set."""
        watching = await self.store.schedules.watch(self.wake)
        if watching:
            logger.debug("schedules: listening for changes made by other processes")
        stopper = asyncio.create_task(self._wake_on(stop))
        try:
            while not stop.is_set():
                self._wake.clear()  # before the pass: a wake-up during it is kept
                try:
                    delay = await self.tick()
                except asyncio.CancelledError:
                    raise
                except StoreUnavailable as exc:
                    logger.warning("schedules: database not writable, retrying: %s", exc)
                    delay = ERROR_RETRY
                except Exception:
                    logger.exception("schedules: a pass failed; trying again shortly")
                    delay = ERROR_RETRY
                if stop.is_set():
                    break
                await self.clock.sleep(delay, self._wake)
        finally:
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def tick(self) -> float:
        """One pass: fire whatever is due; the seconds until the next look."""
        now = self.clock.now()
        try:
            # A non-leader asks again only every LEAD_RETRY seconds (each ask may open a
            # connection), however often it is woken.
            if not self.leading and time.monotonic() < self._next_lead_ask:
                return self._next_lead_ask - time.monotonic()
            self.leading = await self._lead()
            if not self.leading:
                self._recovered = False
                self._next_lead_ask = time.monotonic() + LEAD_RETRY
                return LEAD_RETRY
            await self._recover(now)
            due = await self.store.schedules.due(now, BATCH)
            failed = False
            for schedule in due:
                try:
                    await self.fire(schedule, now)
                except (asyncio.CancelledError, StoreUnavailable):
                    raise
                except Exception:
                    # One schedule's trouble must not hold the others back (nor spin).
                    logger.exception("schedule %s: firing failed", schedule.id)
                    failed = True
            if failed:
                return ERROR_RETRY
            if len(due) == BATCH:
                return 0.0
            upcoming = await self.store.schedules.next_due()
        finally:
            self.passes += 1
        if upcoming is None:
            return MAX_SLEEP
        return min(MAX_SLEEP, max(0.0, upcoming - self.clock.now()))

    async def fire(self, schedule: Schedule, now: float) -> ScheduleRun | None:
        """Fire the schedule's due tick (once across processes); the run, or None if
        another process fired it first."""
        tick = schedule.next_run_at
        if tick is None or tick > now:
            return None
        timing = schedule.timing
        following = timing.next_or_none(max(now, tick))  # None: this is its last run
        run = await self.store.schedules.claim(
            schedule,
            next_run_at=following,
            now=now,
            missed=timing.ticks_between(tick, now) if following is not None else 0,
        )
        if run is None:
            return None
        if not run.missed:
            metrics.SCHEDULE_LATENESS.observe(max(0.0, now - tick))
        if run.missed:
            logger.info(
                "schedule %s: one catch-up run for %d missed ticks",
                schedule.id,
                run.missed + 1,
                extra={"schedule_id": schedule.id},
            )
        await self._start(schedule, run)
        return run

    async def run_now(self, schedule: Schedule) -> ScheduleRun | None:
        """An extra run of `schedule` now (`POST /v1/schedules/{id}/run`), by the same
        rules as a tick (skipped while the previous run runs); its next tick stays."""
        run = await self.store.schedules.claim_now(schedule, now=self.clock.now())
        if run is not None:
            await self._start(schedule, run)
        return run

    async def _start(self, schedule: Schedule, run: ScheduleRun | PendingRun) -> None:
        """Skip the run, or start its job; record which."""
        if schedule.last_job_id is not None:
            previous = await self.store.get_job(schedule.last_job_id, schedule.owner)
            if previous is not None and previous.status in ACTIVE_STATUSES:
                await self._finish(run, state=RunState.SKIPPED, reason=PREVIOUS_RUN_ACTIVE)
                logger.info(
                    "schedule %s: run skipped, job %s still %s",
                    schedule.id,
                    previous.id,
                    previous.status.value,
                    extra={"schedule_id": schedule.id},
                )
                return
        if await self.store.pending_count() >= self.settings.max_pending_urls:
            await self._finish(run, state=RunState.SKIPPED, reason=OVERLOADED)
            return
        try:
            job = await self._launch(schedule, run.tick_at)
        except Conflict:
            # The previous job is not final after all (raced with the check above).
            await self._finish(run, state=RunState.SKIPPED, reason=PREVIOUS_RUN_ACTIVE)
            return
        except (ValidationFailed, IdempotencyConflict) as exc:
            reason = f"{INVALID_REQUEST}: {exc}"[:500]
            await self._finish(run, state=RunState.FAILED, reason=reason)
            logger.warning("schedule %s: run failed: %s", schedule.id, exc)
            return
        await self._finish(run, state=RunState.STARTED, job_id=job.id)
        logger.info(
            "schedule %s: started job %s",
            schedule.id,
            job.id,
            extra={"schedule_id": schedule.id, "job_id": job.id},
        )
        if self._on_job is not None:
            self._on_job(job)

    async def _finish(
        self,
        run: ScheduleRun | PendingRun,
        *,
        state: str,
        job_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        await self.store.schedules.finish(run, state=state, job_id=job_id, reason=reason)
        metrics.SCHEDULE_RUNS.labels(state=state).inc()

    async def _launch(self, schedule: Schedule, tick: float) -> Job:
        """The tick's job: a recrawl of the previous run's job (as POST
        /v1/jobs/{id}/recrawl makes it), or a plain job (as POST /v1/jobs) for the first
        run, after a PATCH of the job, or when the previous job is gone (retention)."""
        settings = self.settings
        owner = schedule.owner or None
        key = idempotency_key(schedule.id, tick)
        if schedule.base_job_id is not None:
            try:
                job, _ = await store_recrawl(
                    self.store, settings, schedule.base_job_id, None, owner=owner, key=key
                )
                return job
            except NotFound:
                logger.info(
                    "schedule %s: job %s is gone; this run is a plain job",
                    schedule.id,
                    schedule.base_job_id,
                    extra={"schedule_id": schedule.id},
                )
        # Validated again: the server's caps may have changed since the schedule was made.
        job_request = parse_job_request(schedule.request, limits_of(settings))
        job, _ = await store_job(self.store, settings, job_request, owner=owner, key=key)
        return job

    async def _recover(self, now: float) -> None:
        """Finish runs a stopped process (or a failed start) left pending: those pending
        for RECOVER_AFTER, and at start on SQLite every one (they are an earlier
        process's: one process owns the file)."""
        private = not self.store.shared_frontier
        fired_before = now if private and not self._recovered else now - RECOVER_AFTER
        self._recovered = True
        for pending in await self.store.schedules.pending_runs(fired_before):
            schedule = await self.store.schedules.get_any(pending.schedule_id)
            if schedule is None:
                continue
            key = idempotency_key(schedule.id, pending.tick_at)
            job_id = await self.store.schedules.job_by_key(schedule.owner, key)
            if job_id is not None:
                await self._finish(pending, state=RunState.STARTED, job_id=job_id)
            else:
                await self._start(schedule, pending)
