"""PostgreSQL store: many web and worker processes sharing one database (scale-out).

Same verbs and meaning as the SQLite store; what changes is that several processes now
claim, record and cancel at once. How each race is closed:

- claim: `FOR UPDATE SKIP LOCKED` so workers never wait on each other's rows. With a
  per-host limit the claims are serialised by a transaction advisory lock, because
  counting a host's live claims and adding to them must not interleave (two claimers
  would each see room for the same slots). Claims are short, so the lock is cheap.
- leases: a claim is valid until `claimed_until` (database clock); `extend_leases`
  renews this worker's own claims; a dead worker's claims expire and are returned to
  pending by the next claim (and by `recover`, which touches nothing else).
- record: the job rows are locked (`SELECT ... FOR UPDATE`, in id order so two writers
  cannot deadlock) before anything else, which serialises the counters, the max_pages
  room check and the completion check per job: the last writer sees the final counters,
  so completion fires exactly once. Results are `INSERT ... ON CONFLICT DO NOTHING
  RETURNING`, so a URL recorded twice (lease expired, re-claimed) is stored and counted
  once. Result ids of a job grow in commit order (inserted under the job lock), so
  cursors never skip a row.
- lock order: job rows before frontier rows everywhere; cancel skips frontier rows a
  claim holds (`SKIP LOCKED`) instead of waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from service.errors import StoreError
from service.models import Job, JobStats, JobStatus, Outcome, utcnow
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
from service.store.migrate import load_migrations
from service.urls import host_of

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Advisory lock keys (64-bit, database-scoped): "trawl" + a purpose byte.
MIGRATION_LOCK = 0x74_72_61_77_6C_01
CLAIM_LOCK = 0x74_72_61_77_6C_02

_RETRIES = 5  # deadlocks and serialisation failures are retried this often
_RESULT_PAGE = 500
_EXPIRY_SWEEP = 1.0  # seconds between a store's sweeps for expired claims
_COUNTER = {
    Outcome.OK: "pages_fetched",
    Outcome.FAILED: "pages_failed",
    Outcome.SKIPPED: "pages_skipped",
}

# Epoch seconds on the database clock, fixed for the statement: one clock for every
# process's leases, and usable in index conditions.
_NOW = "extract(epoch FROM statement_timestamp())::double precision"

# -- SQL: migrations -----------------------------------------------------------------

_LOCK = "SELECT pg_advisory_xact_lock($1)"
_CREATE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_APPLIED = "SELECT version FROM schema_migrations"
_MARK_APPLIED = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"

# -- SQL: jobs ---------------------------------------------------------------------------

_JOB_COLUMNS = (
    "seq, id, owner, status, created_at, started_at, finished_at, request, webhook, "
    "pages_discovered, pages_fetched, pages_failed, pages_skipped, error"
)
_JOB = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = $1"
_JOB_OF_OWNER = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = $1 AND coalesce(owner, '') = $2"
_LOCK_JOB_OF_OWNER = "SELECT status FROM jobs WHERE id = $1 AND coalesce(owner, '') = $2 FOR UPDATE"
_JOB_BY_KEY = (
    f"SELECT {_JOB_COLUMNS}, request_hash FROM jobs "
    "WHERE coalesce(owner, '') = $1 AND idempotency_key = $2"
)
_INSERT_JOB = """
INSERT INTO jobs (id, owner, status, created_at, request, max_pages, per_host_limit, webhook,
                  idempotency_key, request_hash)
VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT ((coalesce(owner, '')), idempotency_key) WHERE idempotency_key IS NOT NULL
DO NOTHING
RETURNING seq
"""
_INSERT_SEEDS = """
WITH added AS (
    INSERT INTO frontier (job_id, url, host, depth)
    SELECT $1, s.url, s.host, 0 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY
        AS s (url, host, n) ORDER BY s.n
    ON CONFLICT (job_id, url) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM added
"""
_SET_DISCOVERED = "UPDATE jobs SET pages_discovered = $2 WHERE id = $1"
_LIST_JOBS = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE coalesce(owner, '') = $1"
_CANCEL = (
    "UPDATE jobs SET status = 'cancelled', finished_at = $2 "
    "WHERE id = $1 AND status IN ('queued', 'running') RETURNING webhook"
)
_FAIL = (
    "UPDATE jobs SET status = 'failed', finished_at = $2, error = $3 "
    "WHERE id = $1 AND status IN ('queued', 'running') RETURNING webhook"
)
_COMPLETE_DIRECT = (
    "UPDATE jobs SET status = 'completed', started_at = coalesce(started_at, $2), "
    "finished_at = $3, pages_discovered = $4, pages_fetched = $5, pages_failed = $6, "
    "pages_skipped = $7 WHERE id = $1 AND status IN ('queued', 'running') RETURNING webhook"
)
_START = (
    "UPDATE jobs SET status = 'running', started_at = $2 "
    "WHERE id = $1 AND status = 'queued' RETURNING webhook"
)
_COMPLETE = (
    "UPDATE jobs SET status = 'completed', finished_at = $2 "
    "WHERE id = $1 AND status = 'running' "
    "AND pages_discovered = pages_fetched + pages_failed + pages_skipped RETURNING webhook"
)
# Nothing more is claimed for a finished job; rows a claim holds right now are skipped
# (never waited for: the claim may be waiting for this job's row), and claim ignores
# rows of finished jobs anyway.
_CLOSE_FRONTIER = """
UPDATE frontier SET state = 'done'
WHERE id IN (SELECT id FROM frontier WHERE job_id = $1 AND state = 'pending'
             FOR UPDATE SKIP LOCKED)
"""
_JOB_REQUESTS = "SELECT id, status, request FROM jobs WHERE id = ANY($1::text[])"
_JOBS_BY_ID = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ANY($1::text[])"
_JOBS_BY_STATUS = "SELECT status, count(*) AS n FROM jobs GROUP BY status"
_PENDING_COUNT = "SELECT count(*) FROM frontier WHERE state = 'pending'"

# -- SQL: frontier -----------------------------------------------------------------------

# Claims whose lease ran out (their worker died or stalled) go back to pending. Rows a
# slow worker is recording right now are skipped, not waited for.
_EXPIRE = f"""
UPDATE frontier SET state = 'pending', claimed_until = NULL, claimed_by = NULL
WHERE id IN (SELECT id FROM frontier WHERE state = 'claimed' AND claimed_until < {_NOW}
             FOR UPDATE SKIP LOCKED)
"""
_CLAIM = f"""
WITH picked AS (
    SELECT f.id FROM frontier f JOIN jobs j ON j.id = f.job_id
    WHERE f.state = 'pending' AND f.not_before <= {_NOW} AND j.status IN ('queued', 'running')
    ORDER BY f.depth, f.id LIMIT $1
    FOR UPDATE OF f SKIP LOCKED
)
UPDATE frontier f SET state = 'claimed', claimed_until = {_NOW} + $2, claimed_by = $3
FROM picked WHERE f.id = picked.id
RETURNING f.id, f.job_id, f.url, f.host, f.depth, f.attempts
"""
# As _CLAIM, within per-host limits (see SQLiteStore's _CLAIM_PER_HOST): live claims of
# active jobs per host, from every worker, plus this batch's rank within its host, stay
# at or under the job's per_host_limit (else $1). Run under CLAIM_LOCK: claimers must see
# each other's claims. The frontier is walked host by host (distinct pending hosts by a
# loose index scan, then each host's first rows by frontier_pending_host) so a full host
# with a huge backlog costs nothing; the winners are then taken in global (depth, id)
# order. Only the chosen rows are locked, so the rest stay claimable.
_CLAIM_PER_HOST = f"""
WITH RECURSIVE hosts (host) AS (
    (SELECT host FROM frontier WHERE state = 'pending' ORDER BY host LIMIT 1)
    UNION ALL
    SELECT (SELECT f.host FROM frontier f WHERE f.state = 'pending' AND f.host > h.host
            ORDER BY f.host LIMIT 1)
    FROM hosts h WHERE h.host IS NOT NULL
),
active AS (
    SELECT id, coalesce(per_host_limit, $1) AS host_limit
    FROM jobs WHERE status IN ('queued', 'running')
),
busy AS (
    SELECT f.host, count(*) AS n FROM frontier f JOIN active a ON a.id = f.job_id
    WHERE f.state = 'claimed' AND f.claimed_until > {_NOW} GROUP BY f.host
),
room AS (
    SELECT h.host, coalesce(b.n, 0) AS n,
           (SELECT max(host_limit) FROM active) - coalesce(b.n, 0) AS free
    FROM hosts h LEFT JOIN busy b ON b.host = h.host
    WHERE h.host IS NOT NULL
),
candidates AS (
    SELECT c.id, c.host, c.depth, c.host_limit, r.n
    FROM (SELECT * FROM room WHERE free > 0) r
    CROSS JOIN LATERAL (
        SELECT f.id, f.host, f.depth, a.host_limit
        FROM frontier f JOIN active a ON a.id = f.job_id
        WHERE f.host = r.host AND f.state = 'pending' AND f.not_before <= {_NOW}
        ORDER BY f.depth, f.id LIMIT least(r.free, $2)
    ) c
),
ranked AS (
    SELECT id, depth, host_limit,
           n + row_number() OVER (PARTITION BY host ORDER BY depth, id) AS slot
    FROM candidates
),
chosen AS (
    SELECT id FROM ranked WHERE slot <= host_limit ORDER BY depth, id LIMIT $2
),
picked AS (
    SELECT f.id FROM frontier f JOIN chosen c ON c.id = f.id
    WHERE f.state = 'pending'
    FOR UPDATE OF f SKIP LOCKED
)
UPDATE frontier f SET state = 'claimed', claimed_until = {_NOW} + $3, claimed_by = $4
FROM picked WHERE f.id = picked.id
RETURNING f.id, f.job_id, f.url, f.host, f.depth, f.attempts
"""
# A retry's not_before arrives as a delay and is fixed on the database clock.
_RELEASE = f"""
UPDATE frontier f SET state = 'pending', claimed_until = NULL, claimed_by = NULL,
    not_before = CASE WHEN r.delay > 0 THEN {_NOW} + r.delay ELSE 0 END,
    attempts = coalesce(r.attempts, f.attempts)
FROM unnest($1::bigint[], $2::double precision[], $3::integer[]) AS r (id, delay, attempts)
WHERE f.id = r.id AND f.state = 'claimed' AND ($4::text IS NULL OR f.claimed_by = $4)
"""
_EXTEND = f"""
UPDATE frontier SET claimed_until = {_NOW} + $3
WHERE id = ANY($1::bigint[]) AND state = 'claimed' AND claimed_by = $2
"""
_LOCK_JOBS = """
SELECT id, status, max_pages - pages_discovered AS room FROM jobs
WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE
"""
_INSERT_RESULTS = """
INSERT INTO results (job_id, url, outcome, page)
SELECT $1, r.url, r.outcome, r.page
FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r (url, outcome, page, n)
ORDER BY r.n
ON CONFLICT (job_id, url) DO NOTHING
RETURNING url
"""
_SETTLE = """
UPDATE frontier f SET state = 'done', attempts = r.attempts, claimed_until = NULL
FROM unnest($1::bigint[], $2::integer[]) AS r (id, attempts)
WHERE f.id = r.id
"""
_ADMIT = """
WITH added AS (
    INSERT INTO frontier (job_id, url, host, depth)
    SELECT $1, l.url, l.host, l.depth
    FROM unnest($2::text[], $3::text[], $4::integer[]) WITH ORDINALITY AS l (url, host, depth, n)
    ORDER BY l.n
    ON CONFLICT (job_id, url) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM added
"""
_COUNT = """
UPDATE jobs SET pages_discovered = pages_discovered + $2, pages_fetched = pages_fetched + $3,
    pages_failed = pages_failed + $4, pages_skipped = pages_skipped + $5
WHERE id = $1
"""

# -- SQL: results and outbox ---------------------------------------------------------------

_RESULTS = "SELECT id, page FROM results WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3"
_RESULTS_OF = (
    "SELECT id, page FROM results WHERE job_id = $1 AND outcome = $4 AND id > $2 "
    "ORDER BY id LIMIT $3"
)
_INSERT_EVENT = """
INSERT INTO outbox (event_id, job_id, event_type, url, payload, created_at, next_attempt)
VALUES ($1, $2, $3, $4, $5, $6, $6)
"""
_DUE_EVENTS = """
SELECT id, event_id, job_id, event_type, url, payload, attempts FROM outbox
WHERE delivered_at IS NULL AND next_attempt <= $1 ORDER BY next_attempt, id LIMIT $2
"""
_DELIVERED = "UPDATE outbox SET delivered_at = $2, attempts = attempts + 1 WHERE id = $1"
_FAILED = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt = $3 WHERE id = $1"
)

_ACTIVE = ("queued", "running")
_TRANSIENT = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def _job_from_row(row: Sequence[Any]) -> Job:
    (seq, job_id, owner, status, created, started, finished, request, _webhook, d, f, x, s, err) = (
        tuple(row)[:14]
    )
    return Job(
        id=job_id,
        seq=seq,
        owner=owner,
        status=JobStatus(status),
        created_at=created,
        started_at=started,
        finished_at=finished,
        request=json.loads(request),
        stats=JobStats(pages_discovered=d, pages_fetched=f, pages_failed=x, pages_skipped=s),
        error=json.loads(err) if err else None,
    )


def _item_from_row(row: Sequence[Any]) -> FrontierItem:
    return FrontierItem(
        id=row[0], job_id=row[1], url=row[2], host=row[3], depth=row[4], attempts=row[5]
    )


class PostgresStore:
    """The Store protocol over a PostgreSQL database shared by many processes."""

    # Many processes claim from one frontier: claims enforce per-host limits across them.
    shared_frontier = True

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int | None = None,
        command_timeout: float = 60.0,
    ) -> None:
        if pool_size is None:
            from service.settings import Settings

            pool_size = Settings.from_env().db_pool_size
        self.database_url = database_url
        self.pool_size = max(1, pool_size)
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._next_expiry = 0.0  # monotonic time of the next sweep for expired claims
        self.applied_migrations: list[str] = []  # by this instance's open(), for tests
        self._leader: dict[str, asyncpg.Connection] = {}  # role -> connection holding its lock

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.database_url,
                min_size=min(2, self.pool_size),
                max_size=self.pool_size,
                command_timeout=self._command_timeout,
                # Short OLTP queries: JIT compiling them (triggered by row estimates the
                # planner cannot make for LIMITs computed per host) costs 100+ ms each.
                server_settings={"jit": "off"},
            )
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            self.applied_migrations = await self._write(self._migrate)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for conn in self._leader.values():
            with contextlib.suppress(Exception):
                await conn.close()
        self._leader.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def try_lead(self, role: str) -> bool:
        """Whether this process holds the cluster-wide lead for `role` (taking it if free).

        A session advisory lock on a connection of its own: it is held for as long as
        that connection lives, so a process that dies hands the role to the next asker.
        """
        conn = self._leader.get(role)
        if conn is not None and not conn.is_closed():
            return True
        self._leader.pop(role, None)
        try:
            conn = await asyncpg.connect(self.database_url, server_settings={"jit": "off"})
        except _DATABASE_ERRORS:
            return False
        try:
            won = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", f"trawl:{role}")
        except _DATABASE_ERRORS:
            won = False
        if not won:
            await conn.close()
            return False
        self._leader[role] = conn
        return True

    async def ping(self) -> None:
        await self._fetchval("SELECT 1")

    async def _migrate(self, conn: asyncpg.Connection) -> list[str]:
        """Apply missing migrations; concurrent starters queue on the advisory lock."""
        await conn.execute(_LOCK, MIGRATION_LOCK)
        await conn.execute(_CREATE_MIGRATIONS)
        done = {row["version"] for row in await conn.fetch(_APPLIED)}
        applied: list[str] = []
        for migration in load_migrations("postgresql"):
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(_MARK_APPLIED, migration.version, migration.name)
            applied.append(migration.version)
            logger.info("applied migration %s", migration.name)
        return applied

    # -- plumbing --------------------------------------------------------------------

    @property
    def _p(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    async def _write(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `work` in one transaction, retrying deadlocks and serialisation failures."""
        for attempt in range(_RETRIES):
            try:
                async with self._p.acquire() as conn, conn.transaction():
                    return await work(conn)
            except _TRANSIENT as exc:
                logger.warning("transaction retried (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(0.01 * 2**attempt)
            except _DATABASE_ERRORS as exc:
                raise StoreError(f"database error: {exc}") from exc
        raise StoreError("transaction kept failing (deadlock or serialisation failure)")

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            rows: list[asyncpg.Record] = await self._p.fetch(sql, *args)
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc
        return rows

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        try:
            row: asyncpg.Record | None = await self._p.fetchrow(sql, *args)
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc
        return row

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        try:
            return await self._p.fetchval(sql, *args)
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc

    async def _job_in_tx(self, conn: asyncpg.Connection, job_id: str) -> Job:
        row = await conn.fetchrow(_JOB, job_id)
        if row is None:
            raise StoreError(f"job {job_id} vanished")
        return _job_from_row(row)

    async def _transition(
        self, conn: asyncpg.Connection, job_id: str, sql: str, *args: Any, event_type: str
    ) -> Job | None:
        """Run a guarded status UPDATE (... RETURNING webhook); if it changed the row, emit."""
        row = await conn.fetchrow(sql, job_id, *args)
        if row is None:
            return None
        job = await self._job_in_tx(conn, job_id)
        webhook = row["webhook"]
        url = webhook_wants(json.loads(webhook) if webhook else None, event_type)
        if url is not None:
            event_id, payload = make_event(job, event_type)
            await conn.execute(
                _INSERT_EVENT, event_id, job.id, event_type, url, payload, time.time()
            )
        return job

    # -- jobs ------------------------------------------------------------------------

    async def create_job(self, job: NewJob) -> tuple[Job, bool]:
        """Persist a job and its seeds; returns (job, created). Honors idempotency keys."""

        async def replay(conn: asyncpg.Connection) -> tuple[Job, bool] | None:
            existing = await conn.fetchrow(_JOB_BY_KEY, job.owner or "", job.idempotency_key)
            if existing is None:
                return None
            if existing["request_hash"] != job.request_hash:
                raise IdempotencyConflict(job.idempotency_key)
            return _job_from_row(existing), False

        async def work(conn: asyncpg.Connection) -> tuple[Job, bool]:
            if job.idempotency_key is not None and (found := await replay(conn)):
                return found
            per_host = job.request.get("per_host_concurrency")
            seq = await conn.fetchval(
                _INSERT_JOB,
                job.id,
                job.owner,
                job.created_at,
                json.dumps(job.request, separators=(",", ":")),
                job.max_pages,
                per_host if isinstance(per_host, int) else None,
                json.dumps(job.webhook) if job.webhook else None,
                job.idempotency_key,
                job.request_hash,
            )
            if seq is None:
                # Another process inserted the same key since we looked: replay theirs.
                found = await replay(conn)
                if found is None:
                    raise StoreError("idempotency key conflict without a job")
                return found
            seeds = list(job.seeds[: job.max_pages])
            added = await conn.fetchval(
                _INSERT_SEEDS, job.id, seeds, [host_of(url) for url in seeds]
            )
            await conn.execute(_SET_DISCOVERED, job.id, added)
            return await self._job_in_tx(conn, job.id), True

        return await self._write(work)

    async def get_job(self, job_id: str, owner: str | None) -> Job | None:
        row = await self._fetchrow(_JOB_OF_OWNER, job_id, owner or "")
        return _job_from_row(row) if row else None

    async def list_jobs(
        self, owner: str | None, status: JobStatus | None, limit: int, before_seq: int | None
    ) -> list[Job]:
        sql = _LIST_JOBS
        params: list[Any] = [owner or ""]
        if status is not None:
            params.append(status.value)
            sql += f" AND status = ${len(params)}"
        if before_seq is not None:
            params.append(before_seq)
            sql += f" AND seq < ${len(params)}"
        rows = await self._fetch(
            sql + f" ORDER BY seq DESC LIMIT ${len(params) + 1}", *params, limit
        )
        return [_job_from_row(row) for row in rows]

    async def cancel_job(self, job_id: str, owner: str | None) -> Job | None:
        async def work(conn: asyncpg.Connection) -> Job | None:
            if await conn.fetchrow(_LOCK_JOB_OF_OWNER, job_id, owner or "") is None:
                return None
            changed = await self._transition(
                conn, job_id, _CANCEL, utcnow(), event_type="job.cancelled"
            )
            if changed is not None:
                await conn.execute(_CLOSE_FRONTIER, job_id)
            return changed or await self._job_in_tx(conn, job_id)

        return await self._write(work)

    async def fail_job(self, job_id: str, error: dict[str, Any]) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            changed = await self._transition(
                conn, job_id, _FAIL, utcnow(), json.dumps(error), event_type="job.failed"
            )
            if changed is not None:
                await conn.execute(_CLOSE_FRONTIER, job_id)

        await self._write(work)

    async def complete_job(self, job_id: str, stats: JobStats, started_at: datetime) -> None:
        """Complete a job whose work ran outside the frontier (a map), with its counts."""

        async def work(conn: asyncpg.Connection) -> None:
            await self._transition(
                conn,
                job_id,
                _COMPLETE_DIRECT,
                started_at,
                utcnow(),
                stats.pages_discovered,
                stats.pages_fetched,
                stats.pages_failed,
                stats.pages_skipped,
                event_type="job.completed",
            )

        await self._write(work)

    async def job_requests(self, job_ids: list[str]) -> dict[str, tuple[JobStatus, str]]:
        if not job_ids:
            return {}
        rows = await self._fetch(_JOB_REQUESTS, job_ids)
        return {row["id"]: (JobStatus(row["status"]), row["request"]) for row in rows}

    async def get_jobs(self, job_ids: list[str]) -> list[Job]:
        if not job_ids:
            return []
        return [_job_from_row(row) for row in await self._fetch(_JOBS_BY_ID, job_ids)]

    async def jobs_by_status(self) -> dict[str, int]:
        return {row["status"]: row["n"] for row in await self._fetch(_JOBS_BY_STATUS)}

    async def pending_count(self) -> int:
        return int(await self._fetchval(_PENDING_COUNT) or 0)

    # -- frontier --------------------------------------------------------------------

    async def recover(self) -> int:
        """Return expired claims to pending; live claims belong to running workers."""
        try:
            status: str = await self._p.execute(_EXPIRE)
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc
        return int(status.split()[-1])

    async def claim(
        self, limit: int, worker: str, lease: float, per_host: int | None = None
    ) -> list[FrontierItem]:
        # Expired claims go back first (at most once a second), in their own short
        # transaction: it must not hold those rows while waiting for a job row below.
        if time.monotonic() >= self._next_expiry:
            self._next_expiry = time.monotonic() + _EXPIRY_SWEEP
            await self.recover()
        started = utcnow()

        async def work(conn: asyncpg.Connection) -> list[FrontierItem]:
            if per_host is None:
                rows = await conn.fetch(_CLAIM, limit, lease, worker)
            else:
                await conn.execute(_LOCK, CLAIM_LOCK)
                rows = await conn.fetch(_CLAIM_PER_HOST, per_host, limit, lease, worker)
            items = sorted((_item_from_row(row) for row in rows), key=lambda i: (i.depth, i.id))
            for job_id in sorted({item.job_id for item in items}):
                await self._transition(conn, job_id, _START, started, event_type="job.started")
            return items

        return await self._write(work)

    async def release(self, releases: list[Release], *, worker: str | None = None) -> None:
        if not releases:
            return
        now = time.time()
        ids = [r.item.id for r in releases]
        delays = [max(0.0, r.not_before - now) if r.not_before else 0.0 for r in releases]
        attempts = [r.attempts for r in releases]

        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(_RELEASE, ids, delays, attempts, worker)

        await self._write(work)

    async def extend_leases(self, item_ids: list[int], worker: str, lease: float) -> None:
        if not item_ids:
            return

        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(_EXTEND, item_ids, worker, lease)

        await self._write(work)

    async def record(self, records: list[PageRecord]) -> RecordSummary:
        if not records:
            return RecordSummary()
        return await self._write(lambda conn: self._record(conn, records))

    async def _record(self, conn: asyncpg.Connection, records: list[PageRecord]) -> RecordSummary:
        summary = RecordSummary()
        by_job: dict[str, list[PageRecord]] = defaultdict(list)
        for rec in records:
            by_job[rec.item.job_id].append(rec)
        # Lock every job first, in id order: see the module docstring.
        locked = {row["id"]: row for row in await conn.fetch(_LOCK_JOBS, list(by_job))}
        finished = utcnow()
        for job_id in sorted(by_job):
            recs = by_job[job_id]
            job = locked.get(job_id)
            if job is None:
                continue  # the job is gone, and its frontier rows with it
            unique = list({rec.item.url: rec for rec in recs}.values())
            inserted = {
                row["url"]
                for row in await conn.fetch(
                    _INSERT_RESULTS,
                    job_id,
                    [rec.item.url for rec in unique],
                    [rec.outcome.value for rec in unique],
                    [rec.page_json for rec in unique],
                )
            }
            fresh = [rec for rec in unique if rec.item.url in inserted]
            summary.duplicates += len(recs) - len(fresh)
            summary.stored += len(fresh)
            await conn.execute(
                _SETTLE, [rec.item.id for rec in recs], [rec.attempts for rec in recs]
            )
            counts = dict.fromkeys(_COUNTER.values(), 0)
            for rec in fresh:
                counts[_COUNTER[rec.outcome]] += 1
            admitted = 0
            if job["status"] in _ACTIVE:
                admitted = await self._admit(conn, job_id, int(job["room"]), fresh)
            summary.admitted += admitted
            await conn.execute(
                _COUNT,
                job_id,
                admitted,
                counts["pages_fetched"],
                counts["pages_failed"],
                counts["pages_skipped"],
            )
            done = await self._transition(
                conn, job_id, _COMPLETE, finished, event_type="job.completed"
            )
            if done is not None:
                summary.completed_jobs.append(job_id)
        return summary

    async def _admit(
        self, conn: asyncpg.Connection, job_id: str, room: int, recs: list[PageRecord]
    ) -> int:
        """Add discovered links to the frontier without ever passing the job's max_pages."""
        candidates: dict[str, int] = {}
        for rec in recs:
            for link in rec.links:
                candidates.setdefault(link, rec.item.depth + 1)
        pending = list(candidates.items())
        admitted = 0
        # Already-known links insert nothing, so go on until the room is used up.
        while room > 0 and pending:
            chunk, pending = pending[:room], pending[room:]
            added = int(
                await conn.fetchval(
                    _ADMIT,
                    job_id,
                    [url for url, _ in chunk],
                    [host_of(url) for url, _ in chunk],
                    [depth for _, depth in chunk],
                )
            )
            admitted += added
            room -= added
        return admitted

    # -- results ---------------------------------------------------------------------

    async def list_results(
        self, job_id: str, outcome: Outcome | None, limit: int, after_id: int
    ) -> list[tuple[int, str]]:
        if outcome is None:
            rows = await self._fetch(_RESULTS, job_id, after_id, limit)
        else:
            rows = await self._fetch(_RESULTS_OF, job_id, after_id, limit, outcome.value)
        return [(row["id"], row["page"]) for row in rows]

    async def iter_results(self, job_id: str, outcome: Outcome | None) -> AsyncIterator[str]:
        after = 0
        while True:
            rows = await self.list_results(job_id, outcome, _RESULT_PAGE, after)
            for _, page in rows:
                yield page
            if len(rows) < _RESULT_PAGE:
                return
            after = rows[-1][0]

    # -- webhook outbox ----------------------------------------------------------------

    async def due_events(self, limit: int) -> list[OutboxEvent]:
        rows = await self._fetch(_DUE_EVENTS, time.time(), limit)
        return [
            OutboxEvent(
                id=r["id"],
                event_id=r["event_id"],
                job_id=r["job_id"],
                event_type=r["event_type"],
                url=r["url"],
                payload=r["payload"],
                attempts=r["attempts"],
            )
            for r in rows
        ]

    async def event_delivered(self, event_id: int) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(_DELIVERED, event_id, time.time())

        await self._write(work)

    async def event_failed(self, event_id: int, retry_at: float | None, error: str) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            # retry_at None = give up: push the next attempt to infinity.
            await conn.execute(
                _FAILED, event_id, error[:500], retry_at if retry_at is not None else float("inf")
            )

        await self._write(work)
