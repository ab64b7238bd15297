"""SQLite store: the embedded default (WAL, one writer connection, one reader connection)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from service.errors import StoreError
from service.models import Job, JobStats, JobStatus, Outcome, rfc3339
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
from service.store.migrate import load_migrations, split_statements
from service.urls import host_of

logger = logging.getLogger(__name__)

T = TypeVar("T")

_JOB_COLUMNS = (
    "seq, id, owner, status, created_at, started_at, finished_at, request, webhook, "
    "pages_discovered, pages_fetched, pages_failed, pages_skipped, error"
)
_ACTIVE = ("queued", "running")
_COUNTER = {
    Outcome.OK: "pages_fetched",
    Outcome.FAILED: "pages_failed",
    Outcome.SKIPPED: "pages_skipped",
}

# CROSS JOIN pins the frontier as the outer loop, so SQLite walks the pending index in
# (depth, id) order and stops at LIMIT; left to itself it starts from the jobs and sorts
# every pending row (300 ms per claim at 200,000 pending URLs, 1 ms this way).
_CLAIM = """
UPDATE frontier SET state = 'claimed', claimed_until = ?, claimed_by = ?
WHERE id IN (
    SELECT f.id FROM frontier f CROSS JOIN jobs j ON j.id = f.job_id
    WHERE f.state = 'pending' AND f.not_before <= ? AND j.status IN ('queued', 'running')
    ORDER BY f.depth, f.id LIMIT ?
) RETURNING id, job_id, url, host, depth, attempts
"""

# Per-host politeness in the claim itself: a host's claimed URLs (of active jobs; a
# cancelled job's leftovers do not count) plus the ones handed out now stay within the
# job's per_host_concurrency, else the default. Full hosts are filtered out before the
# LIMIT so they cannot starve other hosts; the window function ranks the rest per host.
_CLAIM_PER_HOST = """
WITH active AS (
    SELECT id, coalesce(json_extract(request, '$.per_host_concurrency'), ?) AS host_limit
    FROM jobs WHERE status IN ('queued', 'running')
),
busy AS (
    SELECT f.host, count(*) AS n FROM frontier f JOIN active a ON a.id = f.job_id
    WHERE f.state = 'claimed' GROUP BY f.host
),
candidates AS (
    SELECT f.id, f.host, f.depth, a.host_limit, coalesce(b.n, 0) AS n
    FROM frontier f JOIN active a ON a.id = f.job_id LEFT JOIN busy b ON b.host = f.host
    WHERE f.state = 'pending' AND f.not_before <= ? AND coalesce(b.n, 0) < a.host_limit
    ORDER BY f.depth, f.id LIMIT ?
),
ranked AS (
    SELECT id, host_limit, n + row_number() OVER (PARTITION BY host ORDER BY depth, id) AS slot
    FROM candidates
)
UPDATE frontier SET state = 'claimed', claimed_until = ?, claimed_by = ?
WHERE id IN (SELECT id FROM ranked WHERE slot <= host_limit)
RETURNING id, job_id, url, host, depth, attempts
"""


def sqlite_path(database_url: str) -> str:
    """File path of a `sqlite:///relative` or `sqlite:////absolute` URL."""
    if not database_url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {database_url!r}")
    rest = database_url.removeprefix("sqlite://")
    if rest in ("", "/", "/:memory:", ":memory:"):
        raise ValueError("an in-memory SQLite database cannot be shared; give a file path")
    # sqlite:///data/x.db -> "data/x.db" (relative); sqlite:////tmp/x.db -> "/tmp/x.db"
    return rest[1:] if rest.startswith("/") else rest


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _job_from_row(row: sqlite3.Row | tuple[Any, ...]) -> Job:
    (seq, job_id, owner, status, created, started, finished, request, _webhook, d, f, x, s, err) = (
        tuple(row)
    )
    status = JobStatus(status)
    return Job(
        id=job_id,
        seq=seq,
        owner=owner,
        status=status,
        created_at=_ts(created),  # type: ignore[arg-type]
        started_at=_ts(started),
        finished_at=_ts(finished),
        request=json.loads(request),
        stats=JobStats(pages_discovered=d, pages_fetched=f, pages_failed=x, pages_skipped=s),
        error=json.loads(err) if err else None,
    )


class SQLiteStore:
    """The Store protocol over one SQLite file."""

    # One process owns the file, so per-host limits are kept by its in-memory scheduler.
    shared_frontier = False

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        # One writer: every write transaction holds this lock, so statements of two
        # coroutines never interleave inside one transaction on the shared connection.
        self._write_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, database_url: str) -> SQLiteStore:
        return cls(sqlite_path(database_url))

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await self._writer.execute("PRAGMA journal_mode=WAL")
        await self._migrate()
        self._reader = await self._connect()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def try_lead(self, role: str) -> bool:
        """One process owns the file, so it always leads."""
        return True

    async def ping(self) -> None:
        await self._read_one("SELECT 1", ())

    async def _migrate(self) -> None:
        conn = self._w
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version TEXT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for migration in load_migrations("sqlite"):
            async with self._transaction() as tx:
                cursor = await tx.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                )
                if await cursor.fetchone():
                    continue
                for statement in split_statements(migration.sql):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) "
                    "VALUES (?, ?, datetime('now'))",
                    (migration.version, migration.name),
                )
                logger.info("applied migration %s", migration.name)

    # -- plumbing --------------------------------------------------------------------

    @property
    def _w(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StoreError("store is not open")
        return self._writer

    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreError("store is not open")
        return self._reader

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so busy_timeout applies; a
        # deferred read-then-write transaction would fail with "database is locked".
        async with self._write_lock:
            conn = self._w
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            else:
                await conn.commit()

    async def _write(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run `work` in a write transaction, retrying briefly if the file is locked."""
        for attempt in range(5):
            try:
                async with self._transaction() as conn:
                    return await work(conn)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise StoreError(f"database error: {exc}") from exc
                logger.warning("database locked, retrying (attempt %d)", attempt + 1)
                await asyncio.sleep(0.05 * 2**attempt)
        raise StoreError("database stayed locked")

    async def _read_one(self, sql: str, params: Iterable[Any]) -> tuple[Any, ...] | None:
        cursor = await self._r.execute(sql, tuple(params))
        row = await cursor.fetchone()
        await cursor.close()
        return tuple(row) if row is not None else None

    async def _read_all(self, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        cursor = await self._r.execute(sql, tuple(params))
        rows = await cursor.fetchall()
        await cursor.close()
        return [tuple(row) for row in rows]

    # -- jobs ------------------------------------------------------------------------

    async def create_job(self, job: NewJob) -> tuple[Job, bool]:
        """Persist a job and its seeds; returns (job, created). Honors idempotency keys."""

        async def work(conn: aiosqlite.Connection) -> tuple[Job, bool]:
            if job.idempotency_key is not None:
                cursor = await conn.execute(
                    f"SELECT {_JOB_COLUMNS}, request_hash FROM jobs "
                    "WHERE coalesce(owner, '') = ? AND idempotency_key = ?",
                    (job.owner or "", job.idempotency_key),
                )
                existing = await cursor.fetchone()
                if existing is not None:
                    if tuple(existing)[-1] != job.request_hash:
                        raise IdempotencyConflict(job.idempotency_key)
                    return _job_from_row(tuple(existing)[:-1]), False
            await conn.execute(
                "INSERT INTO jobs (id, owner, status, created_at, request, max_pages, webhook, "
                "pages_discovered, idempotency_key, request_hash) "
                "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.owner,
                    rfc3339(job.created_at),
                    json.dumps(job.request, separators=(",", ":")),
                    job.max_pages,
                    json.dumps(job.webhook) if job.webhook else None,
                    0,
                    job.idempotency_key,
                    job.request_hash,
                ),
            )
            seeds = job.seeds[: job.max_pages]
            cursor = await conn.executemany(
                "INSERT OR IGNORE INTO frontier (job_id, url, host, depth) VALUES (?, ?, ?, 0)",
                [(job.id, url, host_of(url)) for url in seeds],
            )
            await conn.execute(
                "UPDATE jobs SET pages_discovered = ? WHERE id = ?", (cursor.rowcount, job.id)
            )
            return await self._job_in_tx(conn, job.id), True

        return await self._write(work)

    async def _job_in_tx(self, conn: aiosqlite.Connection, job_id: str) -> Job:
        cursor = await conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        row = await cursor.fetchone()
        if row is None:
            raise StoreError(f"job {job_id} vanished")
        return _job_from_row(row)

    async def _emit(
        self, conn: aiosqlite.Connection, job: Job, webhook: str | None, event_type: str
    ) -> None:
        url = webhook_wants(json.loads(webhook) if webhook else None, event_type)
        if url is None:
            return
        event_id, payload = make_event(job, event_type)
        now = time.time()
        await conn.execute(
            "INSERT INTO outbox (event_id, job_id, event_type, url, payload, created_at, "
            "next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event_id, job.id, event_type, url, payload, now, now),
        )

    async def _transition(
        self,
        conn: aiosqlite.Connection,
        job_id: str,
        sql: str,
        params: tuple[Any, ...],
        event_type: str,
    ) -> Job | None:
        """Run a guarded status UPDATE; if it changed the row, emit the event."""
        cursor = await conn.execute(sql + " RETURNING webhook", params)
        row = await cursor.fetchone()
        await cursor.close()
        if row is None:
            return None
        job = await self._job_in_tx(conn, job_id)
        await self._emit(conn, job, row[0], event_type)
        return job

    async def get_job(self, job_id: str, owner: str | None) -> Job | None:
        row = await self._read_one(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ? AND coalesce(owner, '') = ?",
            (job_id, owner or ""),
        )
        return _job_from_row(row) if row else None

    async def list_jobs(
        self, owner: str | None, status: JobStatus | None, limit: int, before_seq: int | None
    ) -> list[Job]:
        clauses = ["coalesce(owner, '') = ?"]
        params: list[Any] = [owner or ""]
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        if before_seq is not None:
            clauses.append("seq < ?")
            params.append(before_seq)
        rows = await self._read_all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(clauses)} "
            "ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        )
        return [_job_from_row(row) for row in rows]

    async def cancel_job(self, job_id: str, owner: str | None) -> Job | None:
        now = rfc3339(datetime.now().astimezone())

        async def work(conn: aiosqlite.Connection) -> Job | None:
            cursor = await conn.execute(
                "SELECT status FROM jobs WHERE id = ? AND coalesce(owner, '') = ?",
                (job_id, owner or ""),
            )
            if await cursor.fetchone() is None:
                return None
            changed = await self._transition(
                conn,
                job_id,
                "UPDATE jobs SET status = 'cancelled', finished_at = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (now, job_id),
                "job.cancelled",
            )
            if changed is not None:
                # Nothing more is claimed for this job; unfetched URLs stay unfetched.
                await conn.execute(
                    "UPDATE frontier SET state = 'done' WHERE job_id = ? AND state = 'pending'",
                    (job_id,),
                )
            return changed or await self._job_in_tx(conn, job_id)

        return await self._write(work)

    async def fail_job(self, job_id: str, error: dict[str, Any]) -> None:
        now = rfc3339(datetime.now().astimezone())

        async def work(conn: aiosqlite.Connection) -> None:
            changed = await self._transition(
                conn,
                job_id,
                "UPDATE jobs SET status = 'failed', finished_at = ?, error = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (now, json.dumps(error), job_id),
                "job.failed",
            )
            if changed is not None:
                await conn.execute(
                    "UPDATE frontier SET state = 'done' WHERE job_id = ? AND state = 'pending'",
                    (job_id,),
                )

        await self._write(work)

    async def complete_job(self, job_id: str, stats: JobStats, started_at: datetime) -> None:
        """Complete a job whose work ran outside the frontier (a map), with its counts."""
        now = rfc3339(datetime.now().astimezone())

        async def work(conn: aiosqlite.Connection) -> None:
            await self._transition(
                conn,
                job_id,
                "UPDATE jobs SET status = 'completed', started_at = coalesce(started_at, ?), "
                "finished_at = ?, pages_discovered = ?, pages_fetched = ?, pages_failed = ?, "
                "pages_skipped = ? WHERE id = ? AND status IN ('queued', 'running')",
                (
                    rfc3339(started_at),
                    now,
                    stats.pages_discovered,
                    stats.pages_fetched,
                    stats.pages_failed,
                    stats.pages_skipped,
                    job_id,
                ),
                "job.completed",
            )

        await self._write(work)

    async def job_requests(self, job_ids: list[str]) -> dict[str, tuple[JobStatus, str]]:
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = await self._read_all(
            f"SELECT id, status, request FROM jobs WHERE id IN ({marks})", job_ids
        )
        return {row[0]: (JobStatus(row[1]), row[2]) for row in rows}

    async def get_jobs(self, job_ids: list[str]) -> list[Job]:
        if not job_ids:
            return []
        marks = ",".join("?" * len(job_ids))
        rows = await self._read_all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", job_ids
        )
        return [_job_from_row(row) for row in rows]

    async def jobs_by_status(self) -> dict[str, int]:
        rows = await self._read_all("SELECT status, count(*) FROM jobs GROUP BY status", ())
        return {row[0]: row[1] for row in rows}

    async def pending_count(self) -> int:
        row = await self._read_one("SELECT count(*) FROM frontier WHERE state = 'pending'", ())
        return int(row[0]) if row else 0

    # -- frontier --------------------------------------------------------------------

    async def recover(self) -> int:
        """Return claims of an earlier process to pending (one process owns the file)."""

        async def work(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(
                "UPDATE frontier SET state = 'pending', claimed_until = NULL, claimed_by = NULL "
                "WHERE state = 'claimed'"
            )
            return cursor.rowcount

        return await self._write(work)

    async def claim(
        self, limit: int, worker: str, lease: float, per_host: int | None = None
    ) -> list[FrontierItem]:
        now = time.time()
        started = rfc3339(datetime.now().astimezone())

        async def work(conn: aiosqlite.Connection) -> list[FrontierItem]:
            if per_host is None:
                cursor = await conn.execute(_CLAIM, (now + lease, worker, now, limit))
            else:
                cursor = await conn.execute(
                    _CLAIM_PER_HOST, (per_host, now, limit, now + lease, worker)
                )
            rows = await cursor.fetchall()
            await cursor.close()
            items = [
                FrontierItem(id=r[0], job_id=r[1], url=r[2], host=r[3], depth=r[4], attempts=r[5])
                for r in rows
            ]
            for job_id in {item.job_id for item in items}:
                await self._transition(
                    conn,
                    job_id,
                    "UPDATE jobs SET status = 'running', started_at = ? "
                    "WHERE id = ? AND status = 'queued'",
                    (started, job_id),
                    "job.started",
                )
            return items

        return await self._write(work)

    async def release(self, releases: list[Release], *, worker: str | None = None) -> None:
        if not releases:
            return

        async def work(conn: aiosqlite.Connection) -> None:
            await conn.executemany(
                "UPDATE frontier SET state = 'pending', claimed_until = NULL, claimed_by = NULL, "
                "not_before = ?, attempts = coalesce(?, attempts) "
                "WHERE id = ? AND state = 'claimed' AND (? IS NULL OR claimed_by = ?)",
                [(r.not_before, r.attempts, r.item.id, worker, worker) for r in releases],
            )

        await self._write(work)

    async def extend_leases(self, item_ids: list[int], worker: str, lease: float) -> None:
        # A single SQLite process owns its claims; leases matter for PostgreSQL.
        return None

    async def record(self, records: list[PageRecord]) -> RecordSummary:
        if not records:
            return RecordSummary()
        return await self._write(lambda conn: self._record(conn, records))

    async def _record(self, conn: aiosqlite.Connection, records: list[PageRecord]) -> RecordSummary:
        summary = RecordSummary()
        by_job: dict[str, list[PageRecord]] = defaultdict(list)
        for rec in records:
            by_job[rec.item.job_id].append(rec)
        finished = rfc3339(datetime.now().astimezone())
        for job_id, recs in by_job.items():
            unique = list({rec.item.url: rec for rec in recs}.values())
            marks = ",".join("?" * len(unique))
            cursor = await conn.execute(
                f"SELECT url FROM results WHERE job_id = ? AND url IN ({marks})",
                (job_id, *(rec.item.url for rec in unique)),
            )
            already = {row[0] for row in await cursor.fetchall()}
            fresh = [rec for rec in unique if rec.item.url not in already]
            summary.duplicates += len(recs) - len(fresh)
            await conn.executemany(
                "INSERT INTO results (job_id, url, outcome, page) VALUES (?, ?, ?, ?)",
                [(job_id, rec.item.url, rec.outcome.value, rec.page_json) for rec in fresh],
            )
            await conn.executemany(
                "UPDATE frontier SET state = 'done', attempts = ?, claimed_until = NULL "
                "WHERE id = ?",
                [(rec.attempts, rec.item.id) for rec in recs],
            )
            summary.stored += len(fresh)
            counts = {column: 0 for column in _COUNTER.values()}
            for rec in fresh:
                counts[_COUNTER[rec.outcome]] += 1
            admitted = await self._admit(conn, job_id, fresh)
            summary.admitted += admitted
            await conn.execute(
                "UPDATE jobs SET pages_discovered = pages_discovered + ?, "
                "pages_fetched = pages_fetched + ?, pages_failed = pages_failed + ?, "
                "pages_skipped = pages_skipped + ? WHERE id = ?",
                (
                    admitted,
                    counts["pages_fetched"],
                    counts["pages_failed"],
                    counts["pages_skipped"],
                    job_id,
                ),
            )
            done = await self._transition(
                conn,
                job_id,
                "UPDATE jobs SET status = 'completed', finished_at = ? "
                "WHERE id = ? AND status = 'running' AND pages_discovered = "
                "pages_fetched + pages_failed + pages_skipped",
                (finished, job_id),
                "job.completed",
            )
            if done is not None:
                summary.completed_jobs.append(job_id)
        return summary

    async def _admit(self, conn: aiosqlite.Connection, job_id: str, recs: list[PageRecord]) -> int:
        """Add discovered links to the frontier without ever passing the job's max_pages."""
        candidates: dict[str, int] = {}
        for rec in recs:
            for link in rec.links:
                candidates.setdefault(link, rec.item.depth + 1)
        if not candidates:
            return 0
        cursor = await conn.execute(
            "SELECT max_pages - pages_discovered, status FROM jobs WHERE id = ?", (job_id,)
        )
        row = await cursor.fetchone()
        if row is None or row[1] not in _ACTIVE:
            return 0
        room = int(row[0])
        pending = list(candidates.items())
        admitted = 0
        while room > 0 and pending:
            chunk, pending = pending[:room], pending[room:]
            cursor = await conn.executemany(
                "INSERT OR IGNORE INTO frontier (job_id, url, host, depth) VALUES (?, ?, ?, ?)",
                [(job_id, url, host_of(url), depth) for url, depth in chunk],
            )
            admitted += cursor.rowcount
            room -= cursor.rowcount
        return admitted

    # -- results ---------------------------------------------------------------------

    async def list_results(
        self, job_id: str, outcome: Outcome | None, limit: int, after_id: int
    ) -> list[tuple[int, str]]:
        if outcome is None:
            sql = "SELECT id, page FROM results WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?"
            params: tuple[Any, ...] = (job_id, after_id, limit)
        else:
            sql = (
                "SELECT id, page FROM results WHERE job_id = ? AND outcome = ? AND id > ? "
                "ORDER BY id LIMIT ?"
            )
            params = (job_id, outcome.value, after_id, limit)
        return [(row[0], row[1]) for row in await self._read_all(sql, params)]

    async def iter_results(self, job_id: str, outcome: Outcome | None) -> AsyncIterator[str]:
        after = 0
        while True:
            rows = await self.list_results(job_id, outcome, 500, after)
            for _, page in rows:
                yield page
            if len(rows) < 500:
                return
            after = rows[-1][0]

    # -- webhook outbox ----------------------------------------------------------------

    async def due_events(self, limit: int) -> list[OutboxEvent]:
        rows = await self._read_all(
            "SELECT id, event_id, job_id, event_type, url, payload, attempts FROM outbox "
            "WHERE delivered_at IS NULL AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?",
            (time.time(), limit),
        )
        return [
            OutboxEvent(
                id=r[0],
                event_id=r[1],
                job_id=r[2],
                event_type=r[3],
                url=r[4],
                payload=r[5],
                attempts=r[6],
            )
            for r in rows
        ]

    async def event_delivered(self, event_id: int) -> None:
        async def work(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
                (time.time(), event_id),
            )

        await self._write(work)

    async def event_failed(self, event_id: int, retry_at: float | None, error: str) -> None:
        async def work(conn: aiosqlite.Connection) -> None:
            # retry_at None = give up: mark it delivered-never by pushing it far away.
            await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ? "
                "WHERE id = ?",
                (error[:500], retry_at if retry_at is not None else float("inf"), event_id),
            )

        await self._write(work)
