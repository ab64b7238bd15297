"""SQLite dialect: the embedded default (WAL, one writer connection, one reader connection)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from service.errors import StoreError, StoreUnavailable
from service.models import rfc3339
from service.store.connection import Connection, Row
from service.store.core import SQLStore
from service.store.migrate import split_statements
from service.store.queries import load_queries
from service.urls import url_key

logger = logging.getLogger(__name__)

T = TypeVar("T")

_LOCK_RETRIES = 5
_WAL_SIZE_LIMIT = 64 * 1024 * 1024
# WAL pages at which a commit checkpoints (copies the WAL into the file and fsyncs it,
# ~15 ms at 1,000 pages here). A claim checkpoints only past the larger backstop: with
# SQLite's default 1,000 for every commit, one claim in ten or so paid it (claim p99 at
# 1,000,000 pending 23 ms with, 5 ms without); now the next other write (a record) does.
_AUTOCHECKPOINT = 1000
_CLAIM_AUTOCHECKPOINT = 8000
_VACUUM_ON_OPEN_LIMIT = 256 * 1024 * 1024  # an older file is converted at start-up up to this
_VACUUM_SLICE = 2048  # pages freed per write transaction by reclaim_space
# Error codes that mean "no write can succeed now", not "this write is wrong".
_UNWRITABLE = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")


def _url_key(url: str) -> bytes:
    return url_key(url)


def _unwritable(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(_UNWRITABLE)


async def _pragma(conn: aiosqlite.Connection, sql: str) -> int:
    cursor = await conn.execute(sql)
    row = await cursor.fetchone()
    await cursor.close()
    return int(row[0]) if row else 0


def sqlite_path(database_url: str) -> str:
    """File path of a `sqlite:///relative` or `sqlite:////absolute` URL."""
    if not database_url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {database_url!r}")
    rest = database_url.removeprefix("sqlite://")
    if rest in ("", "/", "/:memory:", ":memory:"):
        raise ValueError("an in-memory SQLite database cannot be shared; give a file path")
    # sqlite:///data/x.db -> "data/x.db" (relative); sqlite:////tmp/x.db -> "/tmp/x.db"
    return rest[1:] if rest.startswith("/") else rest


def _param(value: Any) -> Any:
    # The queries take lists as JSON (json_each) and times as RFC 3339 text.
    if isinstance(value, list | tuple):
        return json.dumps(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    return value


def _params(args: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_param(value) for value in args)


class _SQLiteConnection:
    """`Connection` over one aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        cursor = await self._conn.execute(sql, _params(args))
        count = cursor.rowcount
        await cursor.close()
        return max(count, 0)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        cursor = await self._conn.executemany(sql, [_params(row) for row in rows])
        count = cursor.rowcount
        await cursor.close()
        return max(count, 0)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        cursor = await self._conn.execute(sql, _params(args))
        rows = await cursor.fetchall()
        await cursor.close()
        return list(rows)

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        cursor = await self._conn.execute(sql, _params(args))
        row = await cursor.fetchone()
        await cursor.close()
        return row


class SQLiteDatabase:
    """The `Database` seam over one SQLite file."""

    dialect = "sqlite"
    # One process owns the file, so per-host limits are kept by its in-memory scheduler.
    shared_frontier = False

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.queries = load_queries(self.dialect)
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._autocheckpoint = _AUTOCHECKPOINT  # the writer's current setting
        # One writer: every write transaction holds this lock, so statements of two
        # coroutines never interleave inside one transaction on the shared connection.
        self._write_lock = asyncio.Lock()
        # One reader, one read at a time: a statement stays active from its execute to
        # its close (three calls to the connection's thread), and while one is active
        # every other statement on the connection reads the same snapshot. Interleaved,
        # a read started after a commit could miss it (a delivered webhook event read
        # as still due, and sent twice).
        self._read_lock = asyncio.Lock()

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Incremental auto-vacuum lets deleted jobs' pages go back to the filesystem
        # (reclaim_space). It can only be chosen before the first table exists; older
        # files keep what they have until a VACUUM (see _ensure_incremental_vacuum).
        self._writer = await self._connect(
            "PRAGMA auto_vacuum=INCREMENTAL",
            "PRAGMA journal_mode=WAL",
            # Without a limit the WAL file keeps its largest size after a checkpoint.
            f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}",
            f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT}",
        )
        self._autocheckpoint = _AUTOCHECKPOINT
        try:
            await self._ensure_incremental_vacuum()
            self._reader = await self._connect()
        except BaseException:
            await self.close()
            raise

    async def _ensure_incremental_vacuum(self) -> None:
        conn = self._open(self._writer)
        mode = await _pragma(conn, "PRAGMA auto_vacuum")
        if mode == 2:
            return
        size = await _pragma(conn, "PRAGMA page_count") * await _pragma(conn, "PRAGMA page_size")
        if size > _VACUUM_ON_OPEN_LIMIT:
            logger.warning(
                "%s predates incremental vacuum and is %d MB: deleted jobs' space is reused "
                "but not returned to the filesystem until `VACUUM` is run once, offline",
                self.path,
                size >> 20,
            )
            return
        logger.info("switching %s to incremental auto-vacuum (one VACUUM)", self.path)
        await conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        await conn.execute("VACUUM")

    async def _connect(self, *pragmas: str) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        # Unique URL keys are computed in SQL (see migration 4), by both dialects alike.
        await conn.create_function("trawl_url_key", 1, _url_key, deterministic=True)
        for pragma in (
            f"PRAGMA busy_timeout={self._busy_timeout_ms}",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
            *pragmas,
        ):
            # Closed at once: a PRAGMA's unread result row would hold a read lock.
            cursor = await conn.execute(pragma)
            await cursor.close()
        return conn

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    def _open(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise StoreError("store is not open")
        return conn

    async def transaction(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `work` in a write transaction, retrying briefly if the file is locked."""
        for attempt in range(_LOCK_RETRIES):
            try:
                async with self._write_lock:
                    conn = self._open(self._writer)
                    # BEGIN IMMEDIATE takes the write lock up front, so busy_timeout
                    # applies; a deferred read-then-write transaction would fail with
                    # "database is locked".
                    await conn.execute("BEGIN IMMEDIATE")
                    try:
                        # A claim raises it again (serialise_claims), for its own commit.
                        await self._set_autocheckpoint(conn, _AUTOCHECKPOINT)
                        result = await work(_SQLiteConnection(conn))
                    except BaseException:
                        await conn.rollback()
                        raise
                    await conn.commit()
                    return result
            except sqlite3.OperationalError as exc:
                if _unwritable(exc):
                    raise StoreUnavailable(f"database cannot be written: {exc}") from exc
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise StoreError(f"database error: {exc}") from exc
                logger.warning("database locked, retrying (attempt %d)", attempt + 1)
                await asyncio.sleep(0.05 * 2**attempt)
        raise StoreError("database stayed locked")

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._read_lock:
            return await _SQLiteConnection(self._open(self._reader)).fetch(sql, *args)

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        async with self._read_lock:
            return await _SQLiteConnection(self._open(self._reader)).fetch_one(sql, *args)

    async def _set_autocheckpoint(self, conn: aiosqlite.Connection, pages: int) -> None:
        if self._autocheckpoint != pages:
            # Per connection, read at each commit; closed at once (see _connect).
            cursor = await conn.execute(f"PRAGMA wal_autocheckpoint={pages}")
            await cursor.close()
            self._autocheckpoint = pages

    async def serialise_claims(self, conn: Connection) -> None:
        """Nothing to serialise: the transaction holds the file's only write lock. The
        claim's commit leaves the WAL checkpoint to the next other write (see
        _CLAIM_AUTOCHECKPOINT), so claims do not wait for it."""
        await self._set_autocheckpoint(self._open(self._writer), _CLAIM_AUTOCHECKPOINT)

    async def serialise_migrations(self, conn: Connection) -> None:
        """Nothing to do: BEGIN IMMEDIATE already made other starters wait."""

    async def run_script(self, conn: Connection, sql: str) -> None:
        # One statement per execute (the sqlite3 module refuses several at once).
        for statement in split_statements(sql):
            await conn.execute(statement)

    async def try_lead(self, role: str) -> bool:
        """One process owns the file, so it always leads."""
        return True

    async def listen(self, channel: str, callback: Callable[[], None]) -> bool:
        """One process owns the file: nobody else changes it, so nothing to listen to."""
        return False

    async def reclaim_space(self) -> None:
        """Free pages back to the filesystem, a slice per write transaction."""
        while True:
            async with self._write_lock:
                conn = self._open(self._writer)
                await self._set_autocheckpoint(conn, _AUTOCHECKPOINT)
                # The pragma frees a page per step of its statement: executescript steps
                # it to the end (execute + fetchall freed one page per call here).
                await conn.executescript(f"PRAGMA incremental_vacuum({_VACUUM_SLICE});")
                left = await _pragma(conn, "PRAGMA freelist_count")
            if not left:
                break
            await asyncio.sleep(0.01)  # let the crawl's writes in between slices
        async with self._write_lock:
            # Truncate the WAL too (the pages were moved through it); readers may hold
            # it, in which case it shrinks at a later checkpoint.
            cursor = await self._open(self._writer).execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await cursor.fetchall()
            await cursor.close()


class SQLiteStore(SQLStore):
    """The Store over one SQLite file."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000) -> None:
        super().__init__(SQLiteDatabase(path, busy_timeout_ms=busy_timeout_ms))
        self.path = path

    @classmethod
    def from_url(cls, database_url: str) -> SQLiteStore:
        return cls(sqlite_path(database_url))
