"""PostgreSQL dialect: many web and worker processes sharing one database (scale-out).

What differs from SQLite is below the store's algorithm (core.py): a connection pool,
transactions retried on deadlocks and serialisation failures, per-host claims and
migrations serialised by transaction-scoped advisory locks, leadership held by a
session advisory lock, and "many" statements sent once with one array per column.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from service.errors import StoreError, StoreUnavailable
from service.store.connection import Connection, Row
from service.store.core import SQLStore
from service.store.queries import load_queries

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Advisory lock keys (64-bit, database-scoped): "trawl" + a purpose byte.
MIGRATION_LOCK = 0x74_72_61_77_6C_01
CLAIM_LOCK = 0x74_72_61_77_6C_02

DEFAULT_POOL_SIZE = 10
_RETRIES = 5  # deadlocks and serialisation failures are retried this often
_TRANSIENT = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# No write can succeed now (disk full, out of resources, read-only, connection gone);
# the write itself is fine and is tried again later.
_UNWRITABLE = (
    asyncpg.InsufficientResourcesError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    OSError,
)
_DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
# Short OLTP queries: JIT compiling them (triggered by row estimates the planner cannot
# make for LIMITs computed per host) costs 100+ ms each.
_SERVER_SETTINGS = {"jit": "off"}


def _rowcount(status: str) -> int:
    # asyncpg returns the command tag: "UPDATE 3", "INSERT 0 5", "SELECT 1".
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresConnection:
    """`Connection` over one asyncpg connection inside a transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._conn.execute(sql, *args))

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        # One statement over unnest()ed column arrays: one round trip for the batch.
        if not rows:
            return 0
        columns = [list(column) for column in zip(*rows, strict=True)]
        return _rowcount(await self._conn.execute(sql, *columns))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = await self._conn.fetch(sql, *args)
        return rows

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        return await self._conn.fetchrow(sql, *args)


class PostgresDatabase:
    """The `Database` seam over a PostgreSQL database shared by many processes."""

    dialect = "postgresql"
    # Many processes claim from one frontier: claims enforce per-host limits across them.
    shared_frontier = True

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        command_timeout: float = 60.0,
    ) -> None:
        self.database_url = database_url
        self.queries = load_queries(self.dialect)
        self.pool_size = max(1, pool_size)
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._leader: dict[str, asyncpg.Connection] = {}  # role -> connection holding its lock
        self._listeners: list[asyncpg.Connection] = []  # one connection per LISTEN

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.database_url,
                min_size=min(2, self.pool_size),
                max_size=self.pool_size,
                command_timeout=self._command_timeout,
                server_settings=_SERVER_SETTINGS,
            )
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        for conn in [*self._leader.values(), *self._listeners]:
            with contextlib.suppress(Exception):
                await conn.close()
        self._leader.clear()
        self._listeners.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def _p(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    async def transaction(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `work` in one transaction, retrying deadlocks and serialisation failures."""
        for attempt in range(_RETRIES):
            try:
                async with self._p.acquire() as conn, conn.transaction():
                    return await work(_PostgresConnection(conn))
            except _TRANSIENT as exc:
                logger.warning("transaction retried (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(0.01 * 2**attempt)
            except _UNWRITABLE as exc:
                raise StoreUnavailable(f"database cannot be written: {exc}") from exc
            except _DATABASE_ERRORS as exc:
                raise StoreError(f"database error: {exc}") from exc
        raise StoreError("transaction kept failing (deadlock or serialisation failure)")

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            rows: list[Row] = await self._p.fetch(sql, *args)
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc
        return rows

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        try:
            return await self._p.fetchrow(sql, *args)
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc

    async def serialise_claims(self, conn: Connection) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", CLAIM_LOCK)

    async def serialise_migrations(self, conn: Connection) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)

    async def run_script(self, conn: Connection, sql: str) -> None:
        await conn.execute(sql)  # without parameters asyncpg runs a whole script

    async def reclaim_space(self) -> None:
        """VACUUM the tables deletions free rows in (not VACUUM FULL: it locks them).

        Plain VACUUM makes the space reusable and gives the tables' empty tail pages
        back to the filesystem; it cannot run in a transaction.
        """
        try:
            async with self._p.acquire() as conn:
                await conn.execute("VACUUM (ANALYZE) results, frontier, outbox, jobs")
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc

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
            conn = await asyncpg.connect(self.database_url, server_settings=_SERVER_SETTINGS)
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

    async def listen(self, channel: str, callback: Callable[[], None]) -> bool:
        """LISTEN on a connection of its own (notifications arrive between queries, so
        not on a pooled one). If it drops, notifications stop: listeners poll too."""
        try:
            conn = await asyncpg.connect(self.database_url, server_settings=_SERVER_SETTINGS)
            await conn.add_listener(channel, lambda *_: callback())
        except _DATABASE_ERRORS as exc:
            logger.warning("cannot LISTEN on %s: %s", channel, exc)
            return False
        self._listeners.append(conn)
        return True


class PostgresStore(SQLStore):
    """The Store over a PostgreSQL database shared by many processes."""

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        command_timeout: float = 60.0,
    ) -> None:
        super().__init__(
            PostgresDatabase(database_url, pool_size=pool_size, command_timeout=command_timeout)
        )
        self.database_url = database_url
