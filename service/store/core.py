"""The store's algorithm, written once over a `Database` of either dialect.

The frontier is driven by three verbs: `claim` the next pending URLs (with a lease, so a
dead worker's claims come back), `record` finished pages (results, discovered links,
counters and job completion in one transaction), and `release` URLs back to pending
(graceful shutdown, scheduled retries). Every job transition that a webhook subscribes
to writes its outbox event in the transaction that makes it.

How each race between processes sharing one PostgreSQL database is closed (on SQLite
one writer connection holds the file's write lock, so the same statements cannot race):

- claim: `FOR UPDATE SKIP LOCKED` so workers never wait on each other's rows. With a
  per-host limit the claims are serialised (`Database.serialise_claims`), because
  counting a host's live claims and adding to them must not interleave (two claimers
  would each see room for the same slots). Claims are short, so the lock is cheap.
- leases: a claim is valid until `claimed_until` (database clock); `extend_leases`
  renews this worker's own claims; a dead worker's claims expire and are returned to
  pending by the next claim (and by `recover`, which touches nothing else).
- record: the job rows are locked (in id order, so two writers cannot deadlock) before
  anything else, which serialises the counters, the max_pages room check, the results
  already stored and the completion check per job: the last writer sees the final
  counters, so completion fires exactly once, and a URL recorded twice (lease expired,
  re-claimed) is stored and counted once.
- lock order: job rows before frontier rows everywhere; closing a finished job's
  frontier skips rows a claim holds instead of waiting for them.
- hosts: a claim reads and updates `hosts` rows under the claim lock; admits and
  releases only bump `queued`, and a claim clears it only if nobody bumped it since it
  read it, so no host with work is ever lost from the ready heap. Every transaction
  locks the hosts rows it changes up front, in name order, after any job rows.
- politeness across processes: a claim locks its ready hosts' rows before it counts
  their live claims, and keeps only hosts still ready then. Whatever frees a host's
  slot (a record settling a claim, or `fetched` at fetch end: a claim whose body is
  read holds no slot while it waits for a parser) holds the host's row and sets its
  next turn to that request's start plus the spacing in the same transaction, so no
  claimer sees the slot free without the spacing.

The claim itself is host-aware (Mercator's design, see frontier.py): it walks the hosts
whose turn came, not the pending index, and within a host jobs take turns.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from service import changes
from service.changes import PreviousPage
from service.errors import StoreError
from service.models import (
    Change,
    ChangeCounts,
    Job,
    JobStats,
    JobStatus,
    Outcome,
    rfc3339,
    utcnow,
)
from service.spec import SPEC_VERSION, CrawlSpec, JobFacts, JobSpec
from service.store.base import (
    FrontierItem,
    IdempotencyConflict,
    NewJob,
    OutboxEvent,
    PageRecord,
    RecordSummary,
    Release,
    make_event,
    webhook_wants,
)
from service.store.connection import Connection, Database, Row
from service.store.frontier import PARKED, Candidate, KeyShare, pick, tag_links, weight_of
from service.store.migrate import apply_migrations
from service.store.schedules import ScheduleStore
from service.urls import host_of

_ACTIVE = ("queued", "running")
_RESULT_PAGE = 500  # rows per query when streaming results
_PURGE_BATCH = 200  # rows deleted per transaction when a job is purged
_EXPIRY_SWEEP = 1.0  # seconds between a store's sweeps for expired claims (shared frontier)
_REQUEST_HASH = 19  # job_by_key's column after the job's
CHANGED_URLS = 100  # URLs listed in a job.changed event
_COUNTER = {
    Outcome.OK: "pages_fetched",
    Outcome.FAILED: "pages_failed",
    Outcome.SKIPPED: "pages_skipped",
}


def _retention(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _moment(value: datetime | str | None) -> datetime | None:
    # PostgreSQL returns timestamptz as datetime; SQLite stores RFC 3339 text.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def job_from_row(row: Row) -> Job:
    """A Job from the `job` query's columns (in order)."""
    (seq, job_id, owner, status, created, started, finished, request, _webhook, d, f, x, s, err) = (
        tuple(row)[:14]
    )
    recrawl_of, new, changed, unchanged, removed = tuple(row)[14:19]
    created_at = _moment(created)
    if created_at is None:
        raise StoreError(f"job {job_id} has no created_at")
    return Job(
        id=job_id,
        seq=seq,
        owner=owner,
        status=JobStatus(status),
        created_at=created_at,
        started_at=_moment(started),
        finished_at=_moment(finished),
        request=json.loads(request),
        stats=JobStats(
            pages_discovered=d,
            pages_fetched=f,
            pages_failed=x,
            pages_skipped=s,
            changes=(
                ChangeCounts(new=new, changed=changed, unchanged=unchanged, removed=removed)
                if recrawl_of is not None
                else None
            ),
        ),
        error=json.loads(err) if err else None,
        recrawl_of=recrawl_of,
    )


def _latest_free(pairs: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """(host, free_at) pairs as `hosts_settled` takes them: each host once, at its latest
    time, in name order (the lock order of hosts rows)."""
    free: dict[str, float] = {}
    for host, at in pairs:
        free[host] = max(free.get(host, 0.0), at)
    return sorted(free.items())


def _item_from_row(row: Row) -> FrontierItem:
    return FrontierItem(
        id=row[0],
        job_id=row[1],
        url=row[2],
        host=row[3],
        depth=row[4],
        attempts=row[5],
        owner=row[6],
        weight=float(row[7]),
    )


def _result_row(job_id: str, rec: PageRecord) -> tuple[Any, ...]:
    """insert_results' parameters for one record."""
    v = rec.version
    return (
        job_id,
        rec.item.url,
        rec.outcome.value,
        rec.page_json,
        rec.change.value if rec.change is not None else None,
        v.etag if v is not None else None,
        v.last_modified if v is not None else None,
        v.content_hash if v is not None else None,
        v.content if v is not None else None,
        changes.link_keys_json(rec.link_keys),
    )


# Events a transition emits before its own, made from the changed job in its transaction.
EventSource = Callable[[Connection, Job], Awaitable[list[tuple[str, dict[str, Any] | None]]]]


class SQLStore:
    """The Store protocol over a Database (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.q = db.queries
        self.shared_frontier = db.shared_frontier
        self.schedules = ScheduleStore(db)
        self.applied_migrations: list[str] = []  # by this instance's open(), for tests
        self._next_expiry = 0.0  # monotonic time of the next sweep for expired claims

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        await self.db.open()
        try:
            self.applied_migrations = await apply_migrations(self.db)
        except BaseException:
            await self.db.close()
            raise

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.fetch_one("SELECT 1")

    async def try_lead(self, role: str) -> bool:
        """Whether this process holds the lead for `role` (taking it if free)."""
        return await self.db.try_lead(role)

    # -- jobs ------------------------------------------------------------------------

    async def _job_in_tx(self, conn: Connection, job_id: str) -> Job:
        row = await conn.fetch_one(self.q.job, job_id)
        if row is None:
            raise StoreError(f"job {job_id} vanished")
        return job_from_row(row)

    async def _transition(
        self,
        conn: Connection,
        sql: str,
        job_id: str,
        *args: Any,
        event_type: str,
        before: EventSource | None = None,
    ) -> Job | None:
        """Run a guarded status UPDATE (... RETURNING webhook); if it changed the row, emit
        (after the events `before` makes of the changed job, if it makes any)."""
        row = await conn.fetch_one(sql, job_id, *args)
        if row is None:
            return None
        job = await self._job_in_tx(conn, job_id)
        webhook = row[0]
        events = await before(conn, job) if before is not None else []
        for kind, data in [*events, (event_type, None)]:
            url = webhook_wants(webhook, kind)
            if url is not None:
                event_id, payload = make_event(job, kind, data)
                await conn.execute(
                    self.q.insert_event, event_id, job.id, kind, url, payload, time.time()
                )
        return job

    async def create_job(self, job: NewJob) -> tuple[Job, bool]:
        """Persist a job and its seeds; returns (job, created). Honors idempotency keys."""
        q = self.q

        async def replay(conn: Connection) -> tuple[Job, bool] | None:
            existing = await conn.fetch_one(q.job_by_key, job.owner or "", job.idempotency_key)
            if existing is None:
                return None
            if existing[_REQUEST_HASH] != job.request_hash:
                raise IdempotencyConflict(job.idempotency_key)
            return job_from_row(existing), False

        async def work(conn: Connection) -> tuple[Job, bool]:
            if job.idempotency_key is not None and (found := await replay(conn)):
                return found
            per_host = job.request.get("per_host_concurrency")
            delay = job.request.get("per_host_delay")
            high_allowed = True
            if job.priority == "high":
                row = await conn.fetch_one(q.high_jobs, job.owner or "")
                high_allowed = int(row[0] if row else 0) < job.high_priority_cap
            weight = weight_of(job.priority, high_allowed=high_allowed)
            inserted = await conn.fetch_one(
                q.insert_job,
                job.id,
                job.owner,
                job.created_at,
                json.dumps(job.request, separators=(",", ":")),
                job.max_pages,
                per_host if isinstance(per_host, int) else None,
                json.dumps(job.webhook) if job.webhook else None,
                job.idempotency_key,
                job.request_hash,
                float(delay) if isinstance(delay, int | float) else None,
                weight,
                _retention(job.request.get("retention")),
                job.spec.to_json() if job.spec is not None else None,
                SPEC_VERSION if job.spec is not None else None,
                job.recrawl_of,
            )
            if inserted is None:
                # Another process inserted the same key since we looked: replay theirs.
                found = await replay(conn)
                if found is None:
                    raise StoreError("idempotency key conflict without a job")
                return found
            seeds = dict.fromkeys(job.seeds[: job.max_pages], 0)
            for url, depth in job.revisits:  # a recrawl's: after the seeds, within max_pages
                if len(seeds) >= job.max_pages:
                    break
                seeds.setdefault(url, depth)
            if job.facts:
                await conn.execute(q.set_facts, job.id, *job.facts.row())
            added = await self._enqueue(conn, job.id, seeds, weight)
            await conn.execute(q.set_discovered, job.id, added)
            return await self._job_in_tx(conn, job.id), True

        return await self.db.transaction(work)

    async def get_job(self, job_id: str, owner: str | None) -> Job | None:
        row = await self.db.fetch_one(self.q.job_of_owner, job_id, owner or "")
        return job_from_row(row) if row else None

    async def list_jobs(
        self, owner: str | None, status: JobStatus | None, limit: int, before_seq: int | None
    ) -> list[Job]:
        rows = await self.db.fetch(
            self.q.list_jobs,
            owner or "",
            status.value if status is not None else None,
            before_seq,
            limit,
        )
        return [job_from_row(row) for row in rows]

    async def cancel_job(self, job_id: str, owner: str | None) -> Job | None:
        q = self.q

        async def work(conn: Connection) -> Job | None:
            if await conn.fetch_one(q.lock_job_of_owner, job_id, owner or "") is None:
                return None
            changed = await self._transition(
                conn, q.cancel_job, job_id, utcnow(), event_type="job.cancelled"
            )
            if changed is not None:
                await conn.execute(q.unpark_job, job_id)
                await conn.execute(q.close_frontier, job_id)
            return changed or await self._job_in_tx(conn, job_id)

        return await self.db.transaction(work)

    async def fail_job(self, job_id: str, error: dict[str, Any]) -> None:
        q = self.q

        async def work(conn: Connection) -> None:
            changed = await self._transition(
                conn, q.fail_job, job_id, utcnow(), json.dumps(error), event_type="job.failed"
            )
            if changed is not None:
                await conn.execute(q.unpark_job, job_id)
                await conn.execute(q.close_frontier, job_id)

        await self.db.transaction(work)

    async def complete_job(self, job_id: str, stats: JobStats, started_at: datetime) -> None:
        async def work(conn: Connection) -> None:
            await self._transition(
                conn,
                self.q.complete_job_directly,
                job_id,
                started_at,
                utcnow(),
                stats.pages_discovered,
                stats.pages_fetched,
                stats.pages_failed,
                stats.pages_skipped,
                event_type="job.completed",
            )

        await self.db.transaction(work)

    async def job_requests(self, job_ids: list[str]) -> dict[str, tuple[JobStatus, str]]:
        if not job_ids:
            return {}
        rows = await self.db.fetch(self.q.job_requests, list(job_ids))
        return {row[0]: (JobStatus(row[1]), row[2]) for row in rows}

    async def job_specs(self, job_ids: list[str]) -> dict[str, JobSpec]:
        if not job_ids:
            return {}
        specs: dict[str, JobSpec] = {}
        for job_id, status, request, spec, version, widened, sitemaps in await self.db.fetch(
            self.q.job_specs, list(job_ids)
        ):
            specs[job_id] = JobSpec(
                status=JobStatus(status),
                spec=CrawlSpec.from_row(spec, version, request),
                facts=JobFacts.from_row(widened, sitemaps),
            )
        return specs

    async def get_jobs(self, job_ids: list[str]) -> list[Job]:
        if not job_ids:
            return []
        return [job_from_row(row) for row in await self.db.fetch(self.q.jobs_by_id, list(job_ids))]

    async def jobs_by_status(self) -> dict[str, int]:
        return {row[0]: int(row[1]) for row in await self.db.fetch(self.q.jobs_by_status)}

    async def pending_count(self) -> int:
        row = await self.db.fetch_one(self.q.pending_count)
        return int(row[0]) if row else 0

    # -- frontier --------------------------------------------------------------------

    async def recover(self) -> int:
        """Return stale claims to pending (SQLite: all of them; PostgreSQL: expired ones)."""

        async def work(conn: Connection) -> int:
            rows = await conn.fetch(self.q.recover)
            await self._queue_hosts(conn, {row[0] for row in rows})
            return len(rows)

        return await self.db.transaction(work)

    async def _queue_hosts(self, conn: Connection, hosts: set[str]) -> None:
        if hosts:
            await conn.execute_many(self.q.queue_hosts, [(host,) for host in sorted(hosts)])

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
        """Claim up to `limit` due URLs of active jobs for `lease` seconds (see base.py
        for the parameters and frontier.py for the algorithm)."""
        # Expired claims go back first (at most once a second), in their own short
        # transaction: it must not hold those rows while waiting for a job row below.
        if self.shared_frontier and time.monotonic() >= self._next_expiry:
            self._next_expiry = time.monotonic() + _EXPIRY_SWEEP
            await self.recover()
        started = utcnow()
        q = self.q
        # A private frontier's scheduler spaces requests itself; a shared one reserves
        # each host's spacing in the claim, so no other process starts too soon.
        reserve = self.shared_frontier

        async def work(conn: Connection) -> list[FrontierItem]:
            await self.db.serialise_claims(conn)
            # Parked hosts are at their per-host limit; a claim without one takes them too.
            parked = PARKED if per_host is None else 2 * PARKED
            ready = await conn.fetch(q.ready_hosts, max(limit, 16), parked, early)
            if not ready:
                return []
            # Per host: seconds until its turn (a claim `early`).
            wait = {row[0]: float(row[3]) for row in ready}
            if self.shared_frontier:
                # Other processes commit between these statements. Their rows locked, the
                # hosts still ready: what frees a host's slot (a record, a fetch end) moves
                # its turn past the spacing in the same locked write, so the live claims
                # counted next and these turns are one state (see lock_ready).
                hosts = sorted(wait)
                wait = {
                    row[0]: float(row[1])
                    for row in await conn.fetch(q.lock_ready, hosts, parked, early)
                }
                ready = [row for row in ready if row[0] in wait]
                if not ready:
                    return []
            order = [row[0] for row in ready]
            learnt = {row[0]: float(row[1]) for row in ready}
            if per_host is None:
                depth = limit
            else:
                widest = await conn.fetch_one(q.max_host_limit)
                depth = min(limit, max(per_host, int((widest or [0])[0] or 0)) * (1 + ahead))
            candidates: dict[str, list[Candidate]] = defaultdict(list)
            queued_jobs: set[str] = set()
            for row in await conn.fetch(q.host_heads, order, depth):
                item = _item_from_row(row)
                if row[12] == "queued":
                    queued_jobs.add(item.job_id)
                own_delay = row[10]
                delay = max(spacing if own_delay is None else float(own_delay), learnt[item.host])
                candidates[item.host].append(
                    Candidate(
                        item=item,
                        tag=float(row[8]),
                        cap=None if per_host is None else (row[9] or per_host),
                        delay=delay if reserve else 0.0,
                        busy=int(row[11]),
                    )
                )
            key_busy = None
            share = None
            total = await self._claimers_workers(conn, worker, workers) if workers else None
            if per_key is not None or total is not None:
                key_busy = {row[0]: int(row[1]) for row in await conn.fetch(q.key_busy)}
            if per_key is None and total is not None and key_busy is not None:
                share = KeyShare(
                    share=-(-total[0] // total[1]), spare=total[0] - sum(key_busy.values())
                )
            picked = pick(
                order,
                candidates,
                limit=limit,
                ahead=ahead,
                per_key=per_key,
                key_busy=key_busy,
                settling=settling,
                share=share,
            )
            taken: set[int] = set()
            if picked.chosen:
                ids = [c.item.id for c in picked.chosen]
                taken = {row[0] for row in await conn.fetch(q.take_claims, ids, lease, worker)}
            full = set(picked.full)
            await conn.execute_many(
                q.turns,
                [
                    (
                        host,
                        picked.spacing.get(host, 0.0),
                        picked.vtime.get(host, 0.0),
                        host in full,
                    )
                    for host in picked.visited
                ],
            )
            await self._park_empty(conn, picked.empty, {row[0]: int(row[2]) for row in ready})
            items = [
                replace(c.item, start_in=wait[c.item.host]) if wait[c.item.host] else c.item
                for c in picked.chosen
                if c.item.id in taken
            ]
            # Only jobs still queued when read start: a running job costs no statement
            # (at 1,000,000 pending a claim touches ~5 jobs: as many round trips saved).
            for job_id in sorted({item.job_id for item in items} & queued_jobs):
                await self._transition(conn, q.start_job, job_id, started, event_type="job.started")
            return items

        return await self.db.transaction(work)

    async def _park_empty(self, conn: Connection, empty: list[str], queued: dict[str, int]) -> None:
        """Hosts a claim found with nothing claimable: back when their first retry is due,
        else out of the ready heap (unless an admit or a release queued them since)."""
        if not empty:
            return
        later: list[tuple[str, float]] = []
        done: list[tuple[str, int]] = []
        for host, due, is_later in await conn.fetch(self.q.next_due, sorted(set(empty))):
            if due is not None and is_later:
                later.append((host, float(due)))
            else:
                done.append((host, queued[host]))
        await conn.execute_many(self.q.set_next_at, later)
        await conn.execute_many(self.q.unqueue_host, done)

    async def _claimers_workers(
        self, conn: Connection, worker: str, workers: int
    ) -> tuple[int, int] | None:
        """(fetch tasks of every claiming process, keys with active jobs), or None with
        one key or none: the per-key share across processes (issue 16). Processes
        holding live claims count, this one too, each with `workers` fetch tasks
        (they run with the same SCRAPER_CONCURRENCY)."""
        row = await conn.fetch_one(self.q.key_share, worker)
        others, keys = (int(row[0]), int(row[1])) if row else (0, 1)
        if keys <= 1:
            return None
        return workers * (1 + others), keys

    async def host_policy(
        self, host: str, *, delay: float | None = None, defer: float | None = None
    ) -> None:
        """Share a learnt Crawl-delay or a Retry-After with the other processes (a
        private frontier's scheduler keeps both in memory)."""
        if not self.shared_frontier or not (delay or defer):
            return

        async def work(conn: Connection) -> None:
            if delay:
                await conn.execute(self.q.host_delay, host, float(delay))
            if defer:
                await conn.execute(self.q.host_defer, host, float(defer))

        await self.db.transaction(work)

    async def release(self, releases: list[Release], *, worker: str | None = None) -> None:
        """Put claims back to pending; with `worker`, only claims that worker still holds."""
        if not releases:
            return
        now = time.time()
        rows = [
            (
                r.item.id,
                max(0.0, r.not_before - now) if r.not_before else 0.0,
                r.attempts,
                worker,
            )
            for r in releases
        ]

        hosts = {r.item.host for r in releases}
        spaced = [r for r in releases if r.host_free_at] if self.shared_frontier else []
        free = _latest_free((r.item.host, r.host_free_at or 0.0) for r in spaced)

        async def work(conn: Connection) -> None:
            if self.shared_frontier:
                # Lock order: hosts (name order) before frontier rows, as a record does.
                await conn.fetch(self.q.lock_hosts, sorted(hosts))
            await conn.execute_many(self.q.release, rows)
            await self._queue_hosts(conn, hosts)
            # After the re-queue (which puts a parked host back in line at once): the
            # released request's spacing still holds for every claimer.
            await conn.execute_many(self.q.hosts_settled, free)

        await self.db.transaction(work)

    async def extend_leases(self, item_ids: list[int], worker: str, lease: float) -> None:
        if not item_ids:
            return

        async def work(conn: Connection) -> None:
            await conn.execute(self.q.extend_leases, list(item_ids), worker, lease)

        await self.db.transaction(work)

    async def fetched(self, marks: list[tuple[FrontierItem, float | None]], *, worker: str) -> None:
        """Claims of `worker` whose body is read, each with when its host may start the
        next request (None: at once): they hold no host slot any more, for every claimer,
        and their hosts are back in line from then on (if parked), before their records
        arrive (a record waits for a parser and the writer: seconds under load)."""
        if not marks:
            return
        q = self.q

        async def work(conn: Connection) -> None:
            # Lock order: hosts (name order) before frontier rows, as a record does.
            await conn.fetch(q.lock_hosts, sorted({item.host for item, _ in marks}))
            ids = [item.id for item, _ in marks]
            attempts = [item.attempts for item, _ in marks]
            marked = {row[0] for row in await conn.fetch(q.mark_fetched, ids, attempts, worker)}
            free = _latest_free((item.host, at or 0.0) for item, at in marks if item.id in marked)
            await conn.execute_many(q.hosts_settled, free)

        await self.db.transaction(work)

    async def record(self, records: list[PageRecord]) -> RecordSummary:
        if not records:
            return RecordSummary()
        return await self.db.transaction(lambda conn: self._record(conn, records))

    async def _record(self, conn: Connection, records: list[PageRecord]) -> RecordSummary:
        q = self.q
        summary = RecordSummary()
        by_job: dict[str, list[PageRecord]] = defaultdict(list)
        for rec in records:
            by_job[rec.item.job_id].append(rec)
        # Lock every job first, in id order, then every host this may touch (settled or
        # linked to), in name order: see the module docstring.
        locked = {row[0]: row for row in await conn.fetch(q.lock_jobs, sorted(by_job))}
        touched = {rec.item.host for rec in records}
        touched.update(host_of(link) for rec in records for link in rec.links)
        await conn.fetch(q.lock_hosts, sorted(touched))
        finished = utcnow()
        for job_id in sorted(by_job):
            recs = by_job[job_id]
            job = locked.get(job_id)
            if job is None:
                continue  # the job is gone, and its frontier rows with it
            unique = list({rec.item.url: rec for rec in recs}.values())
            already = {
                row[0]
                for row in await conn.fetch(
                    q.existing_results, job_id, [rec.item.url for rec in unique]
                )
            }
            fresh = [rec for rec in unique if rec.item.url not in already]
            summary.duplicates += len(recs) - len(fresh)
            summary.stored += len(fresh)
            await conn.execute_many(q.insert_results, [_result_row(job_id, rec) for rec in fresh])
            ids = [rec.item.id for rec in recs]
            marks = await conn.fetch(q.settle_marks, ids)
            refetches = {row[0] for row in marks if row[1]}
            fetched = {row[0] for row in marks if row[2]}
            await conn.execute_many(
                q.settle,
                [(rec.item.id, rec.attempts, rec.links_cut, rec.item.depth) for rec in recs],
            )
            # Pages whose depth dropped while in flight went straight back (links_cut 2);
            # settle marks none unless a page's links were cut (a statement saved).
            still = await conn.fetch(q.refetches, ids) if any(r.links_cut for r in recs) else []
            refetched = len(refetches) - len(still)
            await self._settled_hosts(conn, recs, fetched)
            await self._learn(conn, job_id, job, recs)
            counts = dict.fromkeys(_COUNTER.values(), 0)
            for rec in fresh:
                counts[_COUNTER[rec.outcome]] += 1
            admitted = repended = 0
            if job[1] in _ACTIVE:
                # A page fetched again at a smaller depth is a duplicate whose links count,
                # and whose result (its depth) replaces the first one.
                again = [r for r in unique if r.item.id in refetches and r not in fresh]
                await conn.execute_many(
                    q.replace_results,
                    [
                        (job_id, r.item.url, r.page_json, changes.link_keys_json(r.link_keys))
                        for r in again
                        if r.outcome is Outcome.OK
                    ],
                )
                admitted, repended = await self._admit(
                    conn, job_id, int(job[2]), float(job[3]), fresh + again
                )
            summary.admitted += admitted
            await conn.execute(
                q.count_pages,
                job_id,
                admitted,
                counts["pages_fetched"],
                counts["pages_failed"],
                counts["pages_skipped"],
                repended - refetched,
            )
            recrawl_of = job[6]
            if recrawl_of is not None:
                await self._count_changes(conn, job_id, recrawl_of, fresh)
            done = await self._transition(
                conn,
                q.complete_job,
                job_id,
                finished,
                event_type="job.completed",
                before=self._changed_event if recrawl_of is not None else None,
            )
            if done is not None:
                summary.completed_jobs.append(job_id)
        return summary

    async def _count_changes(
        self, conn: Connection, job_id: str, recrawl_of: str, fresh: list[PageRecord]
    ) -> None:
        """Count a recrawl's new results by change; when this batch is the job's last,
        report the previous job's pages it never reached as removed (before it completes,
        so the completion event carries the final counts)."""
        counts = dict.fromkeys(Change, 0)
        for rec in fresh:
            if rec.change is not None:
                counts[rec.change] += 1
        if await conn.fetch_one(self.q.completable, job_id) is not None:
            counts[Change.REMOVED] += await conn.execute(
                self.q.insert_removed, job_id, recrawl_of, rfc3339(utcnow())
            )
            # Pages still served but no longer linked from any page of this job (fetched
            # or carried forward by a 304), seeds aside; none when a page's links are
            # not known (the query checks).
            unlinked = await conn.fetch(self.q.unlinked_results, job_id)
            for _, change, _ in unlinked:
                counts[Change(change)] -= 1
                counts[Change.REMOVED] += 1
            await conn.execute_many(
                self.q.mark_unlinked,
                [(row_id, changes.unlinked_document(page)) for row_id, _, page in unlinked],
            )
        if any(counts.values()):
            await conn.execute(
                self.q.count_changes,
                job_id,
                counts[Change.NEW],
                counts[Change.CHANGED],
                counts[Change.UNCHANGED],
                counts[Change.REMOVED],
            )

    async def _changed_event(
        self, conn: Connection, job: Job
    ) -> list[tuple[str, dict[str, Any] | None]]:
        """A completed recrawl's job.changed event, when it found anything to tell."""
        counts = job.stats.changes
        if counts is None or not counts.found_changes:
            return []
        rows = await conn.fetch(self.q.changed_urls, job.id, CHANGED_URLS)
        pages = [{"url": row[0], "change": row[1]} for row in rows]
        return [("job.changed", {"changes": counts.as_dict(), "pages": pages})]

    async def _settled_hosts(
        self, conn: Connection, recs: list[PageRecord], fetched: set[int]
    ) -> None:
        """Settled hosts have room again (back in line if parked); on a shared frontier
        not before their last request's spacing passed. A claim marked `fetched` gave its
        host's room back at its fetch end already: the host may hold a newer claim now,
        which a second unpark here would leave unparked with the older spacing."""
        free = _latest_free(
            (rec.item.host, rec.host_free_at if self.shared_frontier and rec.host_free_at else 0.0)
            for rec in recs
            if rec.item.id not in fetched
        )
        await conn.execute_many(self.q.hosts_settled, free)
        await self._queue_hosts(conn, {rec.item.host for rec in recs if rec.links_cut})

    async def _learn(self, conn: Connection, job_id: str, job: Row, recs: list[PageRecord]) -> None:
        """Store what these pages taught the job (a seed's redirect widens its scope)."""
        learnt = [rec.facts for rec in recs if rec.facts]
        if not learnt:
            return
        known = JobFacts.from_row(job[4], job[5])
        facts = known
        for new in learnt:
            facts = facts.merged(new)
        if facts != known:
            await conn.execute(self.q.set_facts, job_id, *facts.row())

    async def _admit(
        self, conn: Connection, job_id: str, room: int, weight: float, recs: list[PageRecord]
    ) -> tuple[int, int]:
        """Add discovered links to the frontier without ever passing the job's max_pages,
        and lower the depth of known ones found on a shorter path. Returns (admitted, put
        back to be fetched again because their links were cut at the old depth)."""
        candidates: dict[str, int] = {}
        for rec in recs:
            depth = rec.item.depth + 1
            for link in rec.links:
                if candidates.get(link, depth) >= depth:
                    candidates[link] = depth
        if not candidates:
            return 0, 0
        rows = [(job_id, url, depth) for url, depth in candidates.items()]
        repended = await conn.execute_many(self.q.repend, rows)
        await conn.execute_many(self.q.shorten, rows)
        if repended:
            await self._queue_hosts(conn, {host_of(url) for url in candidates})
        pending = list(candidates.items())
        admitted = 0
        # Already-known links insert nothing, so go on until the room is used up.
        while room > 0 and pending:
            chunk, pending = pending[:room], pending[room:]
            added = await self._enqueue(conn, job_id, dict(chunk), weight)
            admitted += added
            room -= added
        return admitted, repended

    async def _enqueue(
        self, conn: Connection, job_id: str, links: dict[str, int], weight: float
    ) -> int:
        """Insert new URLs into their hosts' queues with fair-queuing tags; how many were
        new. Tags of links that were known already are skipped numbers, harmlessly."""
        hosts = {url: host_of(url) for url in links}
        names = sorted(set(hosts.values()))
        vtime = {row[0]: float(row[1]) for row in await conn.fetch(self.q.host_vtimes, names)}
        finish = {
            row[0]: float(row[1]) for row in await conn.fetch(self.q.job_finishes, job_id, names)
        }
        rows, last = tag_links(links, hosts, vtime=vtime, finish=finish, weight=weight)
        added = await conn.execute_many(self.q.insert_frontier, [(job_id, *row) for row in rows])
        await conn.execute_many(
            self.q.set_finishes, [(job_id, host, last[host]) for host in sorted(last)]
        )
        await self._queue_hosts(conn, set(last))
        return added

    # -- results ---------------------------------------------------------------------

    async def list_results(
        self,
        job_id: str,
        outcome: Outcome | None,
        limit: int,
        after_id: int,
        change: Change | None = None,
    ) -> list[tuple[int, str]]:
        if change is not None:
            rows = await self.db.fetch(
                self.q.results_of_change,
                job_id,
                after_id,
                limit,
                change.value,
                outcome.value if outcome is not None else None,
            )
        elif outcome is None:
            rows = await self.db.fetch(self.q.results, job_id, after_id, limit)
        else:
            rows = await self.db.fetch(self.q.results_of, job_id, after_id, limit, outcome.value)
        return [(row[0], row[1]) for row in rows]

    async def result_heads(self, job_id: str, limit: int, after_id: int) -> list[tuple[int, str]]:
        rows = await self.db.fetch(self.q.result_heads, job_id, after_id, limit)
        return [(row[0], row[1]) for row in rows]

    async def iter_results(
        self, job_id: str, outcome: Outcome | None, change: Change | None = None
    ) -> AsyncIterator[str]:
        after = 0
        while True:
            rows = await self.list_results(job_id, outcome, _RESULT_PAGE, after, change)
            for _, page in rows:
                yield page
            if len(rows) < _RESULT_PAGE:
                return
            after = rows[-1][0]

    # -- recrawls ----------------------------------------------------------------------

    async def previous_pages(self, job_id: str, urls: list[str]) -> dict[str, PreviousPage]:
        """The results of `urls` in job `job_id` (the job a recrawl compares with)."""
        if not urls:
            return {}
        rows = await self.db.fetch(self.q.previous_pages, job_id, list(urls))
        return {row[0]: PreviousPage.from_row(*tuple(row)[:9]) for row in rows}

    async def revisit_urls(self, job_id: str, limit: int) -> list[tuple[str, int]]:
        """A job's result URLs with their depths, shallowest first (a recrawl's seeds)."""
        rows = await self.db.fetch(self.q.revisit_urls, job_id, limit)
        return [(row[0], int(row[1])) for row in rows]

    # -- retention ---------------------------------------------------------------------

    async def expired_jobs(self, default_ttl: float, limit: int) -> list[str]:
        rows = await self.db.fetch(self.q.expired_jobs, float(default_ttl), limit)
        return [row[0] for row in rows]

    async def purge_job(self, job_id: str) -> None:
        """Delete a job and all its data: results and frontier in batches of _PURGE_BATCH
        rows, each its own transaction, so the crawl's writes go on in between (a 600-row
        job of 70 KB pages in one SQLite transaction held the write lock for ~1 s), then
        its delivered events and the job row. A record of the job arriving meanwhile
        finds the job gone and is skipped (record locks the job row first)."""
        q = self.q
        for sql in (q.delete_results, q.delete_frontier):
            while True:

                async def batch(conn: Connection, sql: str = sql) -> int:
                    return await conn.execute(sql, job_id, _PURGE_BATCH)

                if await self.db.transaction(batch) < _PURGE_BATCH:
                    break
                await asyncio.sleep(0)

        async def finish(conn: Connection) -> None:
            await conn.execute(q.delete_job_events, job_id)
            await conn.execute(q.delete_job, job_id)

        await self.db.transaction(finish)

    async def reclaim_space(self) -> None:
        await self.db.reclaim_space()

    # -- webhook outbox ----------------------------------------------------------------

    async def due_events(self, limit: int, per_owner: int | None = None) -> list[OutboxEvent]:
        rows = await self.db.fetch(self.q.due_events, time.time(), limit, per_owner or limit)
        return [
            OutboxEvent(
                id=r[0],
                event_id=r[1],
                job_id=r[2],
                event_type=r[3],
                url=r[4],
                payload=r[5],
                attempts=r[6],
                owner=r[7] or "",
            )
            for r in rows
        ]

    async def event_delivered(self, event_id: int) -> None:
        async def work(conn: Connection) -> None:
            await conn.execute(self.q.event_delivered, event_id, time.time())

        await self.db.transaction(work)

    async def event_failed(self, event_id: int, retry_at: float | None, error: str) -> None:
        async def work(conn: Connection) -> None:
            # retry_at None = give up: push the next attempt to infinity.
            await conn.execute(
                self.q.event_failed,
                event_id,
                error[:500],
                retry_at if retry_at is not None else float("inf"),
            )

        await self.db.transaction(work)
