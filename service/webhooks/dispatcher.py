"""The webhook dispatcher: one leader per database, one lane per job, outbox order.

    outbox (written by the store, in the transaction of each job transition)
        --due_events--> WebhookDispatcher --one lane per job, at most N lanes--> POST

The dispatcher is its own task with its own small httpx client (service.webhooks.delivery);
nothing in the crawl loop awaits it. A lane delivers one job's due events in outbox
order; lanes of different jobs run concurrently, so one slow receiver holds up only its
own jobs, and one owner (API key) uses at most PER_OWNER_LANES of them; receivers that
time out get shorter attempts and a circuit breaker (service.webhooks.fairness). An event
is marked delivered after a 2xx, retried with exponential backoff (and jitter) after any
other status or a network error, and given up after 410 Gone, a refused address, or
`webhook_max_attempts` attempts. Because the outbox is in the database, a restarted
process delivers whatever is still due: delivery is at least once, so receivers dedupe
on the event id. `job.page` batches are not in the outbox (service.webhooks.batches).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import httpx

from service import metrics
from service.models import JobStatus
from service.settings import Settings
from service.spec import WebhookSpec
from service.store.base import OutboxEvent, Store
from service.webhooks import firecrawl
from service.webhooks.batches import PAGE_EVENT, REMEMBERED_JOBS, PageBatches, remember
from service.webhooks.delivery import Attempt, Result, Sender, backoff
from service.webhooks.fairness import LaneBudget

if TYPE_CHECKING:
    from service.crawl.plan import JobPlan

logger = logging.getLogger(__name__)

WEBHOOK_TASK = "trawl-webhooks"  # the dispatcher's task name (when it runs its own, start())
FINAL_EVENTS: dict[JobStatus, str] = {
    JobStatus.COMPLETED: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}

CONCURRENCY = 16  # lanes (jobs) delivering at once, and the client's connection limit
PER_OWNER_LANES = 4  # lanes one owner (API key) may use at once (fairness.py)
POLL_INTERVAL = 0.25  # seconds between outbox polls when nobody calls wake()
DUE_BATCH = 100  # outbox rows read per poll
DUE_PER_OWNER = 25  # of which at most this many of one owner


class WebhookDispatcher:
    """Delivers webhook events; see the module docstring.

    Use `start()`/`stop(grace)`, or run `run(stop_event)` as a task of your own.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        concurrency: int = CONCURRENCY,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._store = store
        self.sender = Sender(settings, transport=transport, connections=concurrency)
        self._retry_base = settings.webhook_retry_base
        self._max_attempts = settings.webhook_max_attempts
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._is_leader = False
        self._next_lead_check = 0.0
        self._task: asyncio.Task[None] | None = None
        self._lanes: dict[str, asyncio.Task[None]] = {}  # job id -> the task delivering for it
        self._lane_owners: dict[str, str] = {}  # job id -> owner, for lanes of outbox events
        self._budget = LaneBudget(PER_OWNER_LANES)
        self._gone: OrderedDict[tuple[str, str], None] = OrderedDict()  # (job id, url): 410
        self._pages = PageBatches(
            store,
            self.sender,
            self._gone,
            max_attempts=self._max_attempts,
            retry_base=self._retry_base,
            stopping=lambda: self._stop.is_set(),
        )
        # Each job's webhook as its crawl spec has it (the job JSON in an outbox payload
        # shows the webhook's headers redacted).
        self._webhooks: dict[str, WebhookSpec | None] = {}

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Run the dispatcher in a task of its own."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(self._stop), name=WEBHOOK_TASK)

    async def stop(self, grace: float) -> None:
        """Stop polling, let in-flight deliveries finish for up to `grace` s, then cancel.

        A delivery cut short stays due in the outbox and is retried by the next process.
        """
        self._stop.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        _, pending = await asyncio.wait({task}, timeout=grace)
        for left in pending:
            left.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll."""
        self._wake.set()

    def job_loaded(self, plan: JobPlan) -> None:
        """The crawl engine took up a job: watch it if its webhook wants page batches."""
        if plan.webhook is not None and plan.webhook.wants(PAGE_EVENT):
            self.watch(plan.job_id)

    def watch(self, job_id: str) -> None:
        """Hint: a job that may subscribe to `job.page` (e.g. just submitted)."""
        self._pages.watch(job_id)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then wait for in-flight lanes (cancel to abandon)."""
        self._stop = stop
        self.sender.open()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    if await self._leading():
                        await self._tick()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("webhook dispatch failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            if self._lanes:
                await asyncio.wait(list(self._lanes.values()))
        finally:
            lanes = list(self._lanes.values())
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            self._lanes.clear()
            await self.sender.aclose()

    # -- scheduling ------------------------------------------------------------------

    async def _leading(self) -> bool:
        """Only one dispatcher per database delivers (several workers share PostgreSQL):
        the others would send every event and page batch again. Non-leaders ask again
        every few seconds, so a dead leader's role passes on."""
        now = time.monotonic()
        if now < self._next_lead_check:
            return self._is_leader
        was = self._is_leader
        self._is_leader = await self._store.try_lead("webhooks")
        self._next_lead_check = now + (30.0 if self._is_leader else 3.0)
        if self._is_leader and not was:
            logger.info("this process delivers webhooks")
        return self._is_leader

    async def _tick(self) -> None:
        """Start lanes for due events, then for page batches, while slots are free."""
        free = self._concurrency - len(self._lanes)
        if free <= 0:
            return
        by_job: dict[str, list[OutboxEvent]] = {}
        # Jobs with a lane when the read starts are skipped even if the lane ends while
        # it runs: their rows may predate the lane marking an event delivered, and a
        # second lane would send that event again.
        busy = set(self._lanes)
        health = self.sender.health
        for event in await self._store.due_events(DUE_BATCH, DUE_PER_OWNER):
            if event.job_id not in busy and event.job_id not in self._lanes:
                by_job.setdefault(event.job_id, []).append(event)
        for job_id, events in by_job.items():
            if free <= 0:
                return
            owner = events[0].owner
            # Fairness: an owner past its lane budget waits for one of its own lanes; a
            # receiver whose breaker is open is not contacted (its events stay due).
            if not self._budget.has_room(owner) or health.blocked_for(events[0].url):
                continue
            events.sort(key=lambda event: event.id)  # creation order within a job
            self._budget.take(owner)
            self._lane_owners[job_id] = owner
            self._spawn(job_id, self._deliver_events(events))
            free -= 1
        await self._pump_pages(free)

    def _spawn(self, job_id: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"trawl-webhook-{job_id}")
        self._lanes[job_id] = task
        task.add_done_callback(lambda done: self._lane_done(job_id, done))

    def _lane_done(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._lanes.get(job_id) is task:
            del self._lanes[job_id]
            owner = self._lane_owners.pop(job_id, None)
            if owner is not None:
                self._budget.give_back(owner)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error(
                "webhook delivery for job %s failed",
                job_id,
                exc_info=exc,
                extra={"job_id": job_id},
            )
        self._wake.set()  # a slot is free: there may be more to do right away

    async def _pump_pages(self, free: int) -> None:
        """Start lanes for page batches: full ones of running jobs, the rest of finished ones."""
        # Each becomes at most one lane; the others wait for a later tick.
        lookup = self._pages.candidates(self._lanes, free)
        if not lookup:
            return
        specs = await self._store.job_specs(lookup)
        for job_id in lookup:
            if free <= 0:
                return
            job = specs.get(job_id)
            if job is None:  # the job is gone
                self._pages.drop(job_id)
                continue
            stream = self._pages.stream_for(job_id, job.spec.webhook)
            if stream is None:
                continue
            # A finished job's rest is sent here or by its final event's lane, whichever
            # runs first: lanes of one job never overlap, and the final event's lane
            # sends what is left before the event itself.
            work = self._pages.flush if job.status.is_final else self._pages.pump
            self._spawn(job_id, work(stream))
            free -= 1

    def _finish(self, job_id: str) -> None:
        """Forget a job's pages for good (its final event is settled)."""
        self._pages.finish(job_id)
        self._webhooks.pop(job_id, None)

    async def _webhook(self, event: OutboxEvent) -> WebhookSpec | None:
        """The event's job's webhook, from its crawl spec (cached while the job is open)."""
        if event.job_id in self._webhooks:
            return self._webhooks[event.job_id]
        job = (await self._store.job_specs([event.job_id])).get(event.job_id)
        # A job purged before its event went out: the snapshot in the event still has it.
        webhook = job.spec.webhook if job is not None else _webhook_of(event.payload)
        if len(self._webhooks) >= REMEMBERED_JOBS:
            self._webhooks.clear()
        self._webhooks[event.job_id] = webhook
        return webhook

    # -- outbox events ---------------------------------------------------------------

    async def _deliver_events(self, events: list[OutboxEvent]) -> None:
        for event in events:
            if self._stop.is_set():
                return  # still due in the outbox: the next process sends it
            if self.sender.health.blocked_for(event.url):
                return  # the receiver's breaker opened: the rest stays due, uncharged
            await self._deliver_event(event)

    async def _deliver_event(self, event: OutboxEvent) -> None:
        final = event.event_type in FINAL_EVENTS.values()
        if (event.job_id, event.url) in self._gone:
            attempt = Attempt(Result.GONE, "the receiver answered 410 Gone to this job before")
        else:
            webhook = await self._webhook(event)
            stream = self._pages.stream_for(event.job_id, webhook)
            attempt = Attempt(Result.DELIVERED, "")
            if final and stream is not None:
                # Every page batch goes out before the job's final event.
                attempt = await self._pages.send(stream, final=True)
                if attempt.result is Result.STOPPED:
                    return
                if attempt.result is not Result.DELIVERED:
                    attempt = Attempt(attempt.result, f"job.page batch: {attempt.detail}")
            body: bytes | None = event.payload.encode()
            extra: dict[str, str] | None = None
            if attempt.result is Result.DELIVERED and webhook is not None and webhook.firecrawl:
                body = firecrawl.lifecycle_body(webhook, event.event_type, event.payload)
                if body is not None:
                    extra = firecrawl.headers(webhook, self.sender.secret, body)
            if attempt.result is Result.DELIVERED and body is not None:
                attempt = await self.sender.post(
                    event.url,
                    event.event_type,
                    event.event_id,
                    event.job_id,
                    body,
                    event.attempts + 1,
                    extra,
                )
        if attempt.result is Result.STOPPED:
            return
        settled = await self._settle(event, attempt)
        if final and settled:
            self._finish(event.job_id)

    async def _settle(self, event: OutboxEvent, attempt: Attempt) -> bool:
        """Record an attempt in the outbox; True once the event needs no more attempts."""
        extra = {"job_id": event.job_id, "event_id": event.event_id}
        if attempt.result is Result.DELIVERED:
            await self._store.event_delivered(event.id)
            logger.debug("delivered %s to %s", event.event_type, event.url, extra=extra)
            return True
        if attempt.result is Result.GONE:
            remember(self._gone, (event.job_id, event.url))
            await self._store.event_failed(event.id, None, f"410 Gone: {attempt.detail}")
            logger.info("webhook %s answered 410 Gone: not sending more", event.url, extra=extra)
            return True
        if attempt.result is Result.REFUSED:
            await self._store.event_failed(event.id, None, f"refused: {attempt.detail}")
            logger.warning(
                "webhook %s refused, event given up: %s", event.url, attempt.detail, extra=extra
            )
            return True
        attempts = event.attempts + 1
        if attempts >= self._max_attempts:
            await self._store.event_failed(
                event.id, None, f"gave up after {attempts} attempts: {attempt.detail}"
            )
            metrics.WEBHOOKS.labels(result="gave_up").inc()
            logger.warning(
                "webhook %s event %s given up after %d attempts: %s",
                event.url,
                event.event_type,
                attempts,
                attempt.detail,
                extra=extra,
            )
            return True
        await self._store.event_failed(
            event.id, time.time() + self.backoff(attempts), attempt.detail
        )
        logger.debug(
            "webhook %s attempt %d failed: %s", event.url, attempts, attempt.detail, extra=extra
        )
        return False

    def backoff(self, failures: int) -> float:
        """Seconds to wait after `failures` failed attempts: base x 2^(n-1), +-25%, capped."""
        return backoff(self._retry_base, failures)


def _webhook_of(payload: str) -> WebhookSpec | None:
    """The job's webhook settings, from the job snapshot inside an outbox payload."""
    try:
        webhook = json.loads(payload)["job"]["request"]["webhook"]
    except (ValueError, KeyError, TypeError):
        return None
    return WebhookSpec.from_dict(webhook) if isinstance(webhook, dict) else None
