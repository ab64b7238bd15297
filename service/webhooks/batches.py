"""`job.page` batches: cut from stored results with an in-memory cursor per job.

For every job whose webhook subscribes to `job.page` the dispatcher keeps a `PageStream`
and posts batches of `page_batch_size` pages (a partial batch once it has waited
PAGE_MAX_WAIT). Before a job's final event (completed, failed, cancelled) goes out, its
remaining pages are sent, so a receiver sees every batch before the final event. The
cursor is not persisted: after a restart, a job whose final event is still due has its
pages sent again from the start. Batch ids are derived from the job and the result ids
they cover, so a batch sent again with the same boundaries carries the same id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from service import metrics
from service.models import rfc3339, utcnow
from service.spec import WebhookSpec
from service.store.base import Store, encode_cursor
from service.webhooks import firecrawl
from service.webhooks.delivery import Attempt, Result, Sender, backoff

logger = logging.getLogger(__name__)

PAGE_EVENT = "job.page"
PAGE_MAX_WAIT = 2.0  # a running job's partial page batch is sent after waiting this long
PAGE_POLL_INTERVAL = 1.0  # how often a running job's new results are looked at
REMEMBERED_JOBS = 10_000  # finished jobs (and 410 verdicts) remembered at most


def remember(memory: OrderedDict[Any, None], key: Any) -> None:
    """Add `key` to a bounded, oldest-first memory."""
    memory[key] = None
    memory.move_to_end(key)
    while len(memory) > REMEMBERED_JOBS:
        memory.popitem(last=False)


@dataclass(slots=True)
class PageStream:
    """One job's `job.page` cursor: results up to `after_id` have been delivered."""

    job_id: str
    webhook: WebhookSpec
    after_id: int = 0
    failures: int = 0  # consecutive failed batch posts while the job runs
    not_before: float = 0.0  # monotonic: next look at the results (poll pacing, backoff)
    waiting_since: float | None = None  # monotonic: when a partial batch was first seen

    @property
    def url(self) -> str:
        return self.webhook.url

    @property
    def batch_size(self) -> int:
        return self.webhook.page_batch_size if self.webhook.page_batch_size > 0 else 50


class PageBatches:
    """The page streams of watched jobs, and the sending of their batches."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        gone: OrderedDict[tuple[str, str], None],
        *,
        max_attempts: int,
        retry_base: float,
        stopping: Callable[[], bool],
    ) -> None:
        self._store = store
        self._sender = sender
        self._gone = gone  # (job id, url) that answered 410, shared with the outbox lanes
        self._max_attempts = max_attempts
        self._retry_base = retry_base
        self._stopping = stopping
        self._streams: dict[str, PageStream] = {}
        self._watched: set[str] = set()  # job ids to look up for a page subscription
        # Jobs whose final event went out (or was given up): their pages are done with.
        self._finished: OrderedDict[str, None] = OrderedDict()

    def watch(self, job_id: str) -> None:
        self._watched.add(job_id)

    def candidates(self, busy: Collection[str], limit: int) -> list[str]:
        """Jobs to look at now (watched, or streams due), at most `limit`, none in `busy`."""
        now = time.monotonic()
        lookup = [
            job_id
            for job_id in {*self._watched, *self._streams}
            if job_id not in busy
            and (job_id not in self._streams or self._streams[job_id].not_before <= now)
        ][: max(limit, 0)]
        self._watched.difference_update(lookup)
        return lookup

    def stream_for(self, job_id: str, webhook: WebhookSpec | None) -> PageStream | None:
        """The job's page cursor, created if its webhook subscribes to `job.page`."""
        stream = self._streams.get(job_id)
        if stream is not None:
            return stream
        if webhook is None or not webhook.wants(PAGE_EVENT) or job_id in self._finished:
            return None
        stream = self._streams[job_id] = PageStream(job_id=job_id, webhook=webhook)
        return stream

    def drop(self, job_id: str) -> None:
        """The job is gone from the database."""
        self._streams.pop(job_id, None)

    def finish(self, job_id: str) -> None:
        """Forget a job's pages for good (its final event is settled)."""
        self._streams.pop(job_id, None)
        remember(self._finished, job_id)

    async def pump(self, stream: PageStream) -> None:
        """A running job: send its full batches (and a partial one that waited long)."""
        attempt = await self.send(stream, final=False)
        if attempt.result is Result.DELIVERED:
            stream.not_before = time.monotonic() + PAGE_POLL_INTERVAL
        elif attempt.result is not Result.STOPPED:
            self._failure(stream, attempt)

    async def flush(self, stream: PageStream) -> None:
        """A finished job: send the rest of its pages, then forget it."""
        attempt = await self.send(stream, final=True)
        if attempt.result is Result.DELIVERED:
            self.finish(stream.job_id)
        elif attempt.result is not Result.STOPPED:
            self._failure(stream, attempt)

    def _failure(self, stream: PageStream, attempt: Attempt) -> None:
        extra = {"job_id": stream.job_id}
        if attempt.result is Result.RETRY and stream.failures < self._max_attempts:
            stream.not_before = time.monotonic() + backoff(self._retry_base, stream.failures)
            return
        if attempt.result is Result.GONE:
            remember(self._gone, (stream.job_id, stream.url))
        elif attempt.result is Result.RETRY:
            metrics.WEBHOOKS.labels(result="gave_up").inc()
        logger.warning(
            "job.page batches to %s given up: %s", stream.url, attempt.detail, extra=extra
        )
        self.finish(stream.job_id)

    async def send(self, stream: PageStream, *, final: bool) -> Attempt:
        """Post the job's unsent results in batches; stop at the first failure.

        While the job runs (`final` False) only full batches go out, or a partial one
        that has waited PAGE_MAX_WAIT; for a finished job everything goes. DELIVERED
        means nothing failed: all that was due now went out (possibly nothing).
        """
        webhook = stream.webhook
        while True:
            if self._stopping():
                return Attempt(Result.STOPPED, "shutting down")
            if (stream.job_id, stream.url) in self._gone:
                return Attempt(Result.GONE, "the receiver answered 410 Gone to this job before")
            if blocked := self._sender.health.blocked_for(stream.url):
                stream.not_before = time.monotonic() + blocked
                return Attempt(Result.STOPPED, "the receiver's circuit breaker is open")
            # Only the fields a job.page event carries leave the database (a page can be
            # megabytes; 50 of them per batch were loaded whole before). Firecrawl's page
            # events carry the document itself, so those read whole pages.
            if webhook.firecrawl:
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
            event_id, body = page_event(stream.job_id, rows)
            extra: dict[str, str] | None = None
            shaped: bytes | None = body
            if webhook.firecrawl:
                shaped = firecrawl.page_body(webhook, stream.job_id, rows)
                if shaped is not None:
                    extra = firecrawl.headers(webhook, self._sender.secret, shaped)
            if shaped is None:  # no document in these rows: nothing to tell Firecrawl
                attempt = Attempt(Result.DELIVERED, "")
            else:
                attempt = await self._sender.post(
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


def page_event(job_id: str, rows: list[tuple[int, str]]) -> tuple[str, bytes]:
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
