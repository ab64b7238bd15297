"""Webhook delivery: outbox events and `job.page` batches, signed and POSTed at least once.

    outbox (written by the store, in the transaction of each job transition)
        --due_events--> WebhookDispatcher --one lane per job, at most N lanes--> POST

The dispatcher is its own task with its own small httpx client; nothing in the crawl
loop awaits it. A lane delivers one job's due events in outbox order; lanes of different
jobs run concurrently, so one slow receiver holds up only its own jobs, and one owner
(API key) uses at most PER_OWNER_LANES of them; receivers that time out get shorter
attempts and a circuit breaker (service/webhook_fairness.py). An event is
marked delivered after a 2xx, retried with exponential backoff (and jitter) after any
other status or a network error, and given up after 410 Gone, a refused address, or
`webhook_max_attempts` attempts. Because the outbox is in the database, a restarted
process delivers whatever is still due: delivery is at least once, so receivers dedupe
on the event id.

`job.page` events are not in the outbox: they are cut from stored results. For every
job whose webhook subscribes to them the dispatcher keeps an in-memory cursor and posts
batches of `page_batch_size` pages (a partial batch once it has waited PAGE_MAX_WAIT).
Before a job's final event (completed, failed, cancelled) goes out, its remaining pages
are sent, so a receiver sees every batch before the final event. The cursor is not
persisted: after a restart, a job whose final event is still due has its pages sent again
from the start. Batch ids are derived from the job and the result ids they cover, so a
batch sent again with the same boundaries carries the same id.

Signing: see `sign`. Receivers check requests with `verify_signature`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass
from enum import Enum
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import httpx

from service import firecrawlhooks, metrics
from service import webhook_fairness as fairness
from service.models import JobStatus, rfc3339, utcnow
from service.network.guard import (
    BlockedAddress,
    CredentialsInURL,
    check_url_host_literal,
    policy_for,
)
from service.network.transport import BlockedConnectError, GuardedTransport
from service.settings import Settings
from service.store.base import OutboxEvent, Store, encode_cursor, webhook_wants

if TYPE_CHECKING:
    from service.crawl.plan import JobPlan

logger = logging.getLogger(__name__)

WEBHOOK_TASK = "trawl-webhooks"  # the dispatcher's task name (app.py waits for it on drain)
PAGE_EVENT = "job.page"
FINAL_EVENTS: dict[JobStatus, str] = {
    JobStatus.COMPLETED: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between timestamp and now

CONCURRENCY = 16  # lanes (jobs) delivering at once, and the client's connection limit
PER_OWNER_LANES = 4  # lanes one owner (API key) may use at once (webhook_fairness.py)
POLL_INTERVAL = 0.25  # seconds between outbox polls when nobody calls wake()
DUE_BATCH = 100  # outbox rows read per poll
DUE_PER_OWNER = 25  # of which at most this many of one owner
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
# One attempt, connect to last byte (a trickling receiver is cut off); shorter for a
# receiver that timed out before (webhook_fairness.py).
TOTAL_TIMEOUT = fairness.TOTAL_TIMEOUT
MAX_BACKOFF = 600.0
RESPONSE_DRAIN_BYTES = 64 * 1024  # a response body is read this far (for keep-alive), no more
PAGE_MAX_WAIT = 2.0  # a running job's partial page batch is sent after waiting this long
PAGE_POLL_INTERVAL = 1.0  # how often a running job's new results are looked at
_REMEMBERED_JOBS = 10_000


# ----------------------------------------------------------------------------- signing


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The `X-Trawl-Signature` value: `sha256=` + hex HMAC-SHA256 of `{timestamp}.{body}`.

    The key is the server's SCRAPER_WEBHOOK_SECRET (UTF-8); the message is the decimal
    `X-Trawl-Timestamp` header value, one ".", then the raw request body bytes exactly as
    sent. Signing the timestamp lets receivers refuse replays of old requests.
    """
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    signature: str,
    tolerance: int = SIGNATURE_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """Whether a webhook request is authentic and fresh (for receivers and tests).

    `timestamp` and `signature` are the `X-Trawl-Timestamp` and `X-Trawl-Signature`
    headers, `body` the raw body. The timestamp must be within `tolerance` seconds of
    `now`. The header may list several comma-separated `sha256=` values; one match is
    enough (room for secret rotation).
    """
    stamp = str(timestamp).strip()
    if not stamp.isascii() or not stamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, stamp, raw).encode()
    return any(
        hmac.compare_digest(expected, candidate.strip().encode("utf-8", "replace"))
        for candidate in signature.split(",")
    )


# ---------------------------------------------------------------------------- delivery


class Result(Enum):
    """How one POST went."""

    DELIVERED = "delivered"
    RETRY = "retry"  # non-2xx status, network error, timeout
    GONE = "gone"  # 410: the receiver asks us to stop
    REFUSED = "refused"  # the URL's address is not allowed, or the URL is unusable
    STOPPED = "stopped"  # shutting down; nothing was recorded


@dataclass(frozen=True, slots=True)
class Attempt:
    result: Result
    detail: str


@dataclass(slots=True)
class _PageStream:
    """One job's `job.page` cursor: results up to `after_id` have been delivered."""

    job_id: str
    url: str
    batch_size: int
    after_id: int = 0
    failures: int = 0  # consecutive failed batch posts while the job runs
    not_before: float = 0.0  # monotonic: next look at the results (poll pacing, backoff)
    waiting_since: float | None = None  # monotonic: when a partial batch was first seen
    firecrawl: bool = False  # bodies in Firecrawl's shape (a job submitted through /v2)


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
        # Without a configured secret, sign with a random one: receivers cannot verify it,
        # but nobody can forge it either (an empty key would let anyone sign).
        self._secret = settings.webhook_secret or secrets.token_hex(32)
        self._secret_configured = bool(settings.webhook_secret)
        self._warned_unsigned = False
        self._user_agent = settings.user_agent
        self._retry_base = settings.webhook_retry_base
        self._max_attempts = settings.webhook_max_attempts
        # The same rule as for crawl URLs: a webhook must not reach private addresses.
        # ... nor this service's own API (a webhook could otherwise drive it).
        self._policy = policy_for(
            allow_private=settings.allow_private_networks,
            allowed_networks=settings.allowed_networks,
            host=settings.host,
            ports=(settings.port,),
        )
        self._transport = transport
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._client: httpx.AsyncClient | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._is_leader = False
        self._next_lead_check = 0.0
        self._task: asyncio.Task[None] | None = None
        self._lanes: dict[str, asyncio.Task[None]] = {}  # job id -> the task delivering for it
        self._lane_owners: dict[str, str] = {}  # job id -> owner, for lanes of outbox events
        self._budget = fairness.LaneBudget(PER_OWNER_LANES)
        self._health = fairness.ReceiverHealth()
        self._streams: dict[str, _PageStream] = {}
        self._watched: set[str] = set()  # job ids to look up for a page subscription
        # Jobs whose final event went out (or was given up): their pages are done with.
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._gone: OrderedDict[tuple[str, str], None] = OrderedDict()  # (job id, url): 410
        # Firecrawl-format webhooks as stored (job JSON shows their headers redacted).
        self._hooks: dict[str, dict[str, Any]] = {}

    async def _stored_webhook(self, job_id: str) -> dict[str, Any]:
        webhook = self._hooks.get(job_id)
        if webhook is None:
            state = (await self._store.job_requests([job_id])).get(job_id)
            stored = json.loads(state[1]).get("webhook") if state else None
            webhook = stored if isinstance(stored, dict) else {}
            if len(self._hooks) >= _REMEMBERED_JOBS:
                self._hooks.clear()
            self._hooks[job_id] = webhook
        return webhook

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
        self._watched.add(job_id)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then wait for in-flight lanes (cancel to abandon)."""
        self._stop = stop
        client = self._client = self._make_client()
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
            self._client = None
            await client.aclose()

    def _make_client(self) -> httpx.AsyncClient:
        transport = self._transport or GuardedTransport(
            self._policy,
            limits=httpx.Limits(
                max_connections=self._concurrency,
                max_keepalive_connections=self._concurrency,
            ),
        )
        return httpx.AsyncClient(
            transport=transport,
            # Environment proxies would bypass the connect-time address check.
            trust_env=False,
            # A redirect could point anywhere; a receiver must answer at its own URL.
            follow_redirects=False,
            timeout=httpx.Timeout(
                connect=CONNECT_TIMEOUT, read=READ_TIMEOUT, write=READ_TIMEOUT, pool=TOTAL_TIMEOUT
            ),
            headers={"User-Agent": self._user_agent, "Accept": "*/*"},
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )

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
        for event in await self._store.due_events(DUE_BATCH, DUE_PER_OWNER):
            if event.job_id not in busy and event.job_id not in self._lanes:
                by_job.setdefault(event.job_id, []).append(event)
        for job_id, events in by_job.items():
            if free <= 0:
                return
            owner = events[0].owner
            # Fairness: an owner past its lane budget waits for one of its own lanes; a
            # receiver whose breaker is open is not contacted (its events stay due).
            if not self._budget.has_room(owner) or self._health.blocked_for(events[0].url):
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
        now = time.monotonic()
        lookup = [
            job_id
            for job_id in {*self._watched, *self._streams}
            if job_id not in self._lanes
            and (job_id not in self._streams or self._streams[job_id].not_before <= now)
        ][: max(free, 0)]  # each becomes at most one lane; the others wait for a later tick
        if not lookup:
            return
        self._watched.difference_update(lookup)
        states = await self._store.job_requests(lookup)
        for job_id in lookup:
            if free <= 0:
                return
            state = states.get(job_id)
            if state is None:  # the job is gone
                self._streams.pop(job_id, None)
                continue
            status, request = state
            try:
                webhook = json.loads(request).get("webhook")
            except (ValueError, AttributeError):
                webhook = None
            stream = self._stream_for(job_id, webhook)
            if stream is None:
                continue
            # A finished job's rest is sent here or by its final event's lane, whichever
            # runs first: lanes of one job never overlap, and the final event's lane
            # sends what is left before the event itself.
            work = self._flush_finished if status.is_final else self._pump_stream
            self._spawn(job_id, work(stream))
            free -= 1

    def _stream_for(self, job_id: str, webhook: Any) -> _PageStream | None:
        """The job's page cursor, created if its webhook subscribes to `job.page`."""
        stream = self._streams.get(job_id)
        if stream is not None:
            return stream
        url = webhook_wants(webhook if isinstance(webhook, dict) else None, PAGE_EVENT)
        if url is None or job_id in self._finished:
            return None
        size = webhook.get("page_batch_size") if isinstance(webhook, dict) else None
        stream = _PageStream(
            job_id=job_id,
            url=url,
            batch_size=size if isinstance(size, int) and size > 0 else 50,
            firecrawl=firecrawlhooks.is_firecrawl(webhook),
        )
        self._streams[job_id] = stream
        return stream

    def _finish(self, job_id: str) -> None:
        """Forget a job's pages for good (its final event is settled)."""
        self._streams.pop(job_id, None)
        self._hooks.pop(job_id, None)
        _remember(self._finished, job_id)

    # -- outbox events ---------------------------------------------------------------

    async def _deliver_events(self, events: list[OutboxEvent]) -> None:
        for event in events:
            if self._stop.is_set():
                return  # still due in the outbox: the next process sends it
            if self._health.blocked_for(event.url):
                return  # the receiver's breaker opened: the rest stays due, uncharged
            await self._deliver_event(event)

    async def _deliver_event(self, event: OutboxEvent) -> None:
        final = event.event_type in FINAL_EVENTS.values()
        if (event.job_id, event.url) in self._gone:
            attempt = Attempt(Result.GONE, "the receiver answered 410 Gone to this job before")
        else:
            webhook = _webhook_of(event.payload)
            stream = self._stream_for(event.job_id, webhook)
            attempt = Attempt(Result.DELIVERED, "")
            if final and stream is not None:
                # Every page batch goes out before the job's final event.
                attempt = await self._send_pages(stream, final=True)
                if attempt.result is Result.STOPPED:
                    return
                if attempt.result is not Result.DELIVERED:
                    attempt = Attempt(attempt.result, f"job.page batch: {attempt.detail}")
            body: bytes | None = event.payload.encode()
            extra: dict[str, str] | None = None
            if attempt.result is Result.DELIVERED and firecrawlhooks.is_firecrawl(webhook):
                stored = await self._stored_webhook(event.job_id)
                body = firecrawlhooks.lifecycle_body(stored, event.event_type, event.payload)
                if body is not None:
                    extra = firecrawlhooks.headers(stored, self._secret, body)
            if attempt.result is Result.DELIVERED and body is not None:
                attempt = await self._post(
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
            _remember(self._gone, (event.job_id, event.url))
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
        delay = self._retry_base * 2.0 ** min(max(failures - 1, 0), 30)
        return min(MAX_BACKOFF, delay * random.uniform(0.75, 1.25))

    # -- page batches ----------------------------------------------------------------

    async def _pump_stream(self, stream: _PageStream) -> None:
        """A running job: send its full batches (and a partial one that waited long)."""
        attempt = await self._send_pages(stream, final=False)
        if attempt.result is Result.DELIVERED:
            stream.not_before = time.monotonic() + PAGE_POLL_INTERVAL
        elif attempt.result is not Result.STOPPED:
            self._page_failure(stream, attempt)

    async def _flush_finished(self, stream: _PageStream) -> None:
        """A finished job: send the rest of its pages, then forget it."""
        attempt = await self._send_pages(stream, final=True)
        if attempt.result is Result.DELIVERED:
            self._finish(stream.job_id)
        elif attempt.result is not Result.STOPPED:
            self._page_failure(stream, attempt)

    def _page_failure(self, stream: _PageStream, attempt: Attempt) -> None:
        extra = {"job_id": stream.job_id}
        if attempt.result is Result.RETRY and stream.failures < self._max_attempts:
            stream.not_before = time.monotonic() + self.backoff(stream.failures)
            return
        if attempt.result is Result.GONE:
            _remember(self._gone, (stream.job_id, stream.url))
        elif attempt.result is Result.RETRY:
            metrics.WEBHOOKS.labels(result="gave_up").inc()
        logger.warning(
            "job.page batches to %s given up: %s", stream.url, attempt.detail, extra=extra
        )
        self._finish(stream.job_id)

    async def _send_pages(self, stream: _PageStream, *, final: bool) -> Attempt:
        """Post the job's unsent results in batches; stop at the first failure.

        While the job runs (`final` False) only full batches go out, or a partial one
        that has waited PAGE_MAX_WAIT; for a finished job everything goes. DELIVERED
        means nothing failed: all that was due now went out (possibly nothing).
        """
        while True:
            if self._stop.is_set():
                return Attempt(Result.STOPPED, "shutting down")
            if (stream.job_id, stream.url) in self._gone:
                return Attempt(Result.GONE, "the receiver answered 410 Gone to this job before")
            if blocked := self._health.blocked_for(stream.url):
                stream.not_before = time.monotonic() + blocked
                return Attempt(Result.STOPPED, "the receiver's circuit breaker is open")
            # Only the fields a job.page event carries leave the database (a page can be
            # megabytes; 50 of them per batch were loaded whole before). Firecrawl's page
            # events carry the document itself, so those read whole pages.
            if stream.firecrawl:
                rows = await self._store.list_results(
                    stream.job_id, None, stream.batch_size, stream.after_id
                )
            else:
                rows = await self._store.result_heads(
                    stream.job_id, stream.batch_size, stream.after_id
                )
            if not rows:
                stream.waiting_since = None
                return Attempt(Result.DELIVERED, "")
            if not final and len(rows) < stream.batch_size:
                now = time.monotonic()
                if stream.waiting_since is None:
                    stream.waiting_since = now
                if now - stream.waiting_since < PAGE_MAX_WAIT:
                    return Attempt(Result.DELIVERED, "")
            event_id, body = _page_event(stream.job_id, rows)
            extra: dict[str, str] | None = None
            shaped: bytes | None = body
            if stream.firecrawl:
                stored = await self._stored_webhook(stream.job_id)
                shaped = firecrawlhooks.page_body(stored, stream.job_id, rows)
                if shaped is not None:
                    extra = firecrawlhooks.headers(stored, self._secret, shaped)
            if shaped is None:  # no document in these rows: nothing to tell Firecrawl
                attempt = Attempt(Result.DELIVERED, "")
            else:
                attempt = await self._post(
                    stream.url,
                    PAGE_EVENT,
                    event_id,
                    stream.job_id,
                    shaped,
                    stream.failures + 1,
                    extra,
                )
            if attempt.result is not Result.DELIVERED:
                if attempt.result is not Result.STOPPED:
                    stream.failures += 1  # the same batch is tried again from this cursor
                return attempt
            stream.after_id = rows[-1][0]
            stream.failures = 0
            stream.waiting_since = None
            if len(rows) < stream.batch_size:
                return attempt

    # -- HTTP ------------------------------------------------------------------------

    async def _post(
        self,
        url: str,
        event_type: str,
        event_id: str,
        job_id: str,
        body: bytes,
        attempt_number: int,
        extra: dict[str, str] | None = None,
    ) -> Attempt:
        """One signed POST; never raises for receiver or network trouble."""
        attempt = await self._attempt(
            url, event_type, event_id, job_id, body, attempt_number, extra
        )
        if attempt.result is not Result.STOPPED:
            metrics.WEBHOOKS.labels(result=attempt.result.value).inc()
        return attempt

    async def _attempt(
        self,
        url: str,
        event_type: str,
        event_id: str,
        job_id: str,
        body: bytes,
        attempt: int,
        extra: dict[str, str] | None = None,
    ) -> Attempt:
        if not self._secret_configured and not self._warned_unsigned:
            # Said when a webhook is actually delivered, not at every start-up.
            self._warned_unsigned = True
            logger.warning(
                "SCRAPER_WEBHOOK_SECRET is not set: webhooks are signed with a random key "
                "that receivers cannot verify; set it to check signatures"
            )
        client = self._client
        if client is None:
            return Attempt(Result.STOPPED, "dispatcher is not running")
        try:
            # Cheap and certain for literal addresses; names are checked at connect time.
            check_url_host_literal(url, self._policy)
        except (BlockedAddress, CredentialsInURL) as exc:
            return Attempt(Result.REFUSED, str(exc))
        except ValueError as exc:
            return Attempt(Result.REFUSED, f"invalid webhook URL: {exc}")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Trawl-Event": event_type,
            "X-Trawl-Event-Id": event_id,
            "X-Trawl-Job-Id": job_id,
            "X-Trawl-Timestamp": timestamp,
            "X-Trawl-Signature": sign(self._secret, timestamp, body),
            "X-Trawl-Delivery-Attempt": str(attempt),
        }
        if extra:
            headers.update(extra)
        status: int | None = None
        limit = self._health.timeout_for(url)
        self._health.starting(url)
        try:
            async with asyncio.timeout(limit):
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    self._health.answered(url)
                    await _drain(response)
        except TimeoutError:
            if status is None:
                self._health.failed(url, timed_out=True)
                return Attempt(Result.RETRY, f"no response within {limit:g}s")
        except BlockedConnectError as exc:
            self._health.answered(url)  # a refusal of ours, not the receiver's fault
            return Attempt(Result.REFUSED, str(exc))
        except httpx.InvalidURL as exc:
            self._health.answered(url)
            return Attempt(Result.REFUSED, f"invalid webhook URL: {exc}")
        except httpx.HTTPError as exc:
            if status is None:
                self._health.failed(url, timed_out=isinstance(exc, httpx.TimeoutException))
                return Attempt(Result.RETRY, f"{type(exc).__name__}: {exc}".rstrip(": "))
        # A status already received decides, even if reading the body then failed.
        assert status is not None
        if 200 <= status < 300:
            return Attempt(Result.DELIVERED, f"HTTP {status}")
        if status == 410:
            return Attempt(Result.GONE, "HTTP 410")
        return Attempt(Result.RETRY, f"HTTP {status}")


async def _drain(response: httpx.Response) -> None:
    """Read a little of the response so its connection can be reused; ignore the rest."""
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > RESPONSE_DRAIN_BYTES:
            return  # closing it unread drops the connection, which is fine


def _page_event(job_id: str, rows: list[tuple[int, str]]) -> tuple[str, bytes]:
    """A `job.page` event's id and body for a run of stored results."""
    pages = []
    for _, page_json in rows:
        try:
            page = json.loads(page_json)
        except ValueError:
            continue
        pages.append(
            {
                "url": page.get("url"),
                "final_url": page.get("final_url"),
                "status_code": page.get("status_code"),
                "error": page.get("error"),
            }
        )
    # Same job and same result range, same id: a batch sent again can be recognised.
    digest = hashlib.sha256(f"{job_id}:{rows[0][0]}:{rows[-1][0]}".encode()).hexdigest()
    event_id = f"evt_{digest[:32]}"
    body = {
        "id": event_id,
        "type": PAGE_EVENT,
        "created_at": rfc3339(utcnow()),
        "job_id": job_id,
        # `cursor` works as `?cursor=` on GET /v1/jobs/{id}/results: the results after it.
        "data": {"pages": pages, "cursor": encode_cursor(rows[-1][0])},
    }
    return event_id, json.dumps(body, separators=(",", ":")).encode()


def _webhook_of(payload: str) -> dict[str, Any] | None:
    """The job's webhook settings, from the job snapshot inside an outbox payload."""
    try:
        webhook = json.loads(payload)["job"]["request"]["webhook"]
    except (ValueError, KeyError, TypeError):
        return None
    return webhook if isinstance(webhook, dict) else None


def _remember(memory: OrderedDict[Any, None], key: Any) -> None:
    memory[key] = None
    memory.move_to_end(key)
    while len(memory) > _REMEMBERED_JOBS:
        memory.popitem(last=False)
