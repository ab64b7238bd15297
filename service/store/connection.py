"""The seam between the store's algorithm (core.py) and a database dialect.

The algorithm is written once against `Connection` (a transaction's statements) and
`Database` (reads, transactions, and the few things that truly differ per dialect:
how claims are serialised, how leadership is held, how a migration script runs). A
dialect supplies its queries as named blocks (queries.py) with the same parameters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeAlias, TypeVar

from service.store.queries import Queries

T = TypeVar("T")

# sqlite3.Row or asyncpg.Record: read by position (and by column name).
Row: TypeAlias = Any


class Connection(Protocol):
    """Statements inside one transaction."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run a "many" statement for every row; the number of rows changed in all."""
        ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetch_one(self, sql: str, *args: Any) -> Row | None: ...


class Database(Protocol):
    """One database in one dialect, as the store algorithm needs it."""

    dialect: str  # "sqlite" or "postgresql": names the queries and migrations
    queries: Queries
    # True when several processes claim from one frontier (PostgreSQL): claims must then
    # respect per-host limits across all of them, and leases of dead workers expire.
    shared_frontier: bool

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def transaction(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `work` in one transaction (retried whole on the dialect's transient errors)."""
        ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """A read outside any transaction."""
        ...

    async def fetch_one(self, sql: str, *args: Any) -> Row | None: ...

    async def serialise_claims(self, conn: Connection) -> None:
        """Make per-host claims of concurrent claimers see each other (in the transaction)."""
        ...

    async def serialise_migrations(self, conn: Connection) -> None:
        """Make concurrent starters apply migrations one after another."""
        ...

    async def run_script(self, conn: Connection, sql: str) -> None:
        """Run a migration file's statements."""
        ...

    async def try_lead(self, role: str) -> bool: ...

    async def listen(self, channel: str, callback: Callable[[], None]) -> bool:
        """Call `callback` whenever another process notifies `channel` (PostgreSQL
        LISTEN); False where the dialect has no such thing (one SQLite process)."""
        ...

    async def reclaim_space(self) -> None:
        """Hand space freed by deletions back to the filesystem (outside transactions)."""
        ...
