"""The Store protocol: everything the API and the crawl loop need from a database.

The frontier is driven by three verbs: `claim` the next pending URLs (with a lease, so a
dead worker's claims come back), `record` finished pages (results, discovered links,
counters and job completion in one transaction), and `release` URLs back to pending
(graceful shutdown, scheduled retries). SQLite and PostgreSQL implement the same verbs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from service.changes import PageVersion, PreviousPage
from service.models import Change, Job, JobStats, JobStatus, Outcome
from service.spec import CrawlSpec, JobFacts, JobSpec, WebhookSpec

if TYPE_CHECKING:
    from service.store.schedules import ScheduleStore


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """A validated job about to be persisted with its seed URLs."""

    id: str
    created_at: datetime
    request: dict[str, Any]
    seeds: tuple[str, ...]
    max_pages: int
    owner: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    webhook: dict[str, Any] | None = None
    priority: str = "normal"  # low | normal | high: the job's fair-queuing weight
    # A key with this many active "high" jobs gets further ones at "normal" weight.
    high_priority_cap: int = 4
    spec: CrawlSpec | None = None  # stored with SPEC_VERSION; None: read from `request`
    # A recrawl: the job it compares with, and that job's pages to fetch again (url,
    # depth), queued after the seeds within max_pages; facts it starts from (its scope).
    recrawl_of: str | None = None
    revisits: tuple[tuple[str, int], ...] = ()
    facts: JobFacts | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FrontierItem:
    """One claimed URL of one job."""

    id: int
    job_id: str
    url: str
    host: str
    depth: int
    attempts: int
    owner: str | None = None  # the job's API key (fair sharing across keys)
    weight: float = 1.0  # the job's priority weight (high first among ready hosts)
    # Seconds from the claim until its host's turn (a shared frontier claims a turn a
    # little early): the claimer's scheduler starts nothing on the host before then.
    start_in: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRecord:
    """The final word on one frontier item: its result and the links it admits."""

    item: FrontierItem
    outcome: Outcome
    page_json: str
    attempts: int
    links: tuple[str, ...] = ()  # canonical, already filtered by scope/depth/patterns
    # The page was fetched at max_depth and its links were not followed: if it is found
    # again at a smaller depth it is fetched again so those links are admitted.
    links_cut: bool = False
    # Epoch seconds before which no process should start another request to the host
    # (this request's start plus the host's spacing): politeness on a shared frontier.
    host_free_at: float | None = None
    facts: JobFacts | None = None  # learnt from this page: stored with it, in its transaction
    # What a later recrawl compares this result with; how it compares with the previous
    # job's (a recrawl's results only).
    version: PageVersion | None = None
    change: Change | None = None
    # The hex url_keys of the links the crawl follows from this page (changes.link_keys),
    # kept for a later recrawl to tell which pages are no longer linked; None: not known.
    link_keys: tuple[str, ...] | None = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """Put a claimed URL back to pending, optionally not before a time (a retry)."""

    item: FrontierItem
    not_before: float = 0.0
    attempts: int | None = None  # None keeps the stored count
    # As PageRecord's: a request was sent (a retry after a 503, say), so its host's
    # spacing holds from that request's start for every process on a shared frontier.
    host_free_at: float | None = None


@dataclass(slots=True)
class RecordSummary:
    """What a `record` call changed, for metrics and events."""

    stored: int = 0
    duplicates: int = 0
    admitted: int = 0
    completed_jobs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEvent:
    id: int
    event_id: str
    job_id: str
    event_type: str
    url: str
    payload: str
    attempts: int
    owner: str = ""  # the job's API key ("" without keys): webhook lanes are budgeted by it


class IdempotencyConflict(Exception):
    """Same Idempotency-Key, different request body."""


class Store(Protocol):
    """What a database backend provides; see the module docstring."""

    # True when several processes claim from one frontier (PostgreSQL): claims must then
    # respect per-host limits across all of them.
    shared_frontier: bool
    schedules: ScheduleStore  # schedules and their runs (store/schedules.py)

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def try_lead(self, role: str) -> bool: ...

    # Jobs.
    async def create_job(self, job: NewJob) -> tuple[Job, bool]: ...
    async def get_job(self, job_id: str, owner: str | None) -> Job | None: ...
    async def list_jobs(
        self, owner: str | None, status: JobStatus | None, limit: int, before_seq: int | None
    ) -> list[Job]: ...
    async def cancel_job(self, job_id: str, owner: str | None) -> Job | None: ...
    async def fail_job(self, job_id: str, error: dict[str, Any]) -> None: ...
    async def complete_job(self, job_id: str, stats: JobStats, started_at: datetime) -> None:
        """Complete a job whose work ran outside the frontier (a map), with its counts."""
        ...

    async def job_requests(self, job_ids: list[str]) -> dict[str, tuple[JobStatus, str]]: ...
    async def job_specs(self, job_ids: list[str]) -> dict[str, JobSpec]:
        """Status, crawl spec and learnt facts of jobs (what a crawl process plans from)."""
        ...

    async def get_jobs(self, job_ids: list[str]) -> list[Job]:
        """Several jobs by id in one query, whoever owns them (progress watchers)."""
        ...

    async def jobs_by_status(self) -> dict[str, int]: ...
    async def pending_count(self) -> int: ...

    # Frontier.
    async def recover(self) -> int: ...
    async def claim(
        self,
        limit: int,
        worker: str,
        lease: float,
        per_host: int | None = None,
        *,
        ahead: int = 0,
        per_key: int | None = None,
        spacing: float = 0.0,
        settling: Mapping[str, int] | None = None,
        workers: int | None = None,
        early: float = 0.0,
    ) -> list[FrontierItem]:
        """Claim up to `limit` due URLs of active jobs for `lease` seconds.

        Hosts are visited in turn (the host whose turn is oldest first, see frontier.py),
        and within a host jobs take turns by fair-queuing tag. With `per_host`, a host
        never has more claimed URLs (counted across every worker) than its limit (the
        job's own `per_host_concurrency` if it set one, else `per_host`), or `1 + ahead`
        times that with look-ahead (a private frontier whose scheduler spaces the
        requests itself: the next URLs of a host are at hand when its turn comes).
        With `per_key`, one API key never holds more claimed URLs than that. A shared
        frontier reserves each host's spacing (the job's per_host_delay, else `spacing`,
        at least the host's learnt Crawl-delay) so no other process starts too soon.
        Claims marked `fetched` (body read) do not count against a host's limit.
        `settling` counts per host what this claimer finished but has neither recorded
        nor marked `fetched` yet: claimed in the database, but not in flight. With
        `workers` (this process's fetch tasks; a shared frontier without `per_key`),
        each key with active jobs gets an equal share of every claiming process's fetch
        tasks, and more only while some of them would otherwise be idle. `early`: hosts
        whose turn comes within that many seconds are visited too, their items carrying
        `start_in` (so a claimer polling every 0.1 s starts a turn on time).
        """
        ...

    async def host_policy(
        self, host: str, *, delay: float | None = None, defer: float | None = None
    ) -> None:
        """Share what was learnt about a host: a Crawl-delay floor, or no new claims for
        `defer` seconds (Retry-After). A private frontier may ignore it."""
        ...

    async def release(self, releases: list[Release], *, worker: str | None = None) -> None: ...
    async def fetched(self, marks: list[tuple[FrontierItem, float | None]], *, worker: str) -> None:
        """Claims of `worker` whose body is read, each with the epoch time its host may
        start the next request: they no longer count against their hosts' limits (for
        any claimer) and parked hosts are back in line, before the records arrive."""
        ...

    async def record(self, records: list[PageRecord]) -> RecordSummary: ...
    async def extend_leases(self, item_ids: list[int], worker: str, lease: float) -> None: ...

    # Results.
    async def list_results(
        self,
        job_id: str,
        outcome: Outcome | None,
        limit: int,
        after_id: int,
        change: Change | None = None,
    ) -> list[tuple[int, str]]: ...
    def iter_results(
        self, job_id: str, outcome: Outcome | None, change: Change | None = None
    ) -> AsyncIterator[str]: ...

    # Recrawls.
    async def previous_pages(self, job_id: str, urls: list[str]) -> dict[str, PreviousPage]:
        """The results of `urls` in job `job_id` (the job a recrawl compares with)."""
        ...

    async def revisit_urls(self, job_id: str, limit: int) -> list[tuple[str, int]]:
        """A job's result URLs with their depths, shallowest first (a recrawl's seeds)."""
        ...

    async def result_heads(self, job_id: str, limit: int, after_id: int) -> list[tuple[int, str]]:
        """Results as `{url, final_url, status_code, error}` JSON (job.page webhooks)."""
        ...

    # Retention.
    async def expired_jobs(self, default_ttl: float, limit: int) -> list[str]:
        """Finished jobs past their retention (the job's own, else `default_ttl`; 0 keeps)."""
        ...

    async def purge_job(self, job_id: str) -> None:
        """Delete a job and all its data, in small transactions (see core.py)."""
        ...

    async def reclaim_space(self) -> None: ...

    # Webhook outbox.
    async def due_events(self, limit: int, per_owner: int | None = None) -> list[OutboxEvent]:
        """Undelivered events due now, oldest first, at most `per_owner` of one owner."""
        ...

    async def event_delivered(self, event_id: int) -> None: ...
    async def event_failed(self, event_id: int, retry_at: float | None, error: str) -> None: ...


def encode_cursor(value: int) -> str:
    """An opaque cursor for a position (clients must not build their own)."""
    raw = json.dumps({"v": 1, "p": value}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Position of a cursor; ValueError if it was not made by `encode_cursor`."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = data["p"]
    except Exception as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise ValueError("invalid cursor")
    return position


def make_event(job: Job, event_type: str, data: dict[str, Any] | None = None) -> tuple[str, str]:
    """A webhook event's id and JSON body, built inside the transaction that causes it."""
    import uuid

    from service.models import rfc3339, utcnow

    event_id = f"evt_{uuid.uuid4().hex}"
    body = {
        "id": event_id,
        "type": event_type,
        "created_at": rfc3339(utcnow()),
        "job_id": job.id,
        "job": job.as_dict(),
    }
    if data:
        body["data"] = data
    return event_id, json.dumps(body, separators=(",", ":"))


def webhook_wants(webhook: str | dict[str, Any] | None, event_type: str) -> str | None:
    """The webhook URL if the job's webhook (stored JSON, or its object) wants this event."""
    spec = (
        WebhookSpec.from_json(webhook)
        if isinstance(webhook, str)
        else WebhookSpec.from_dict(webhook)
    )
    return spec.url if spec is not None and spec.wants(event_type) else None
