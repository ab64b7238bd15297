"""Forward-only SQL migrations: numbered .sql files per dialect, applied in order.

Each applied migration's checksum is recorded; a landed migration whose file has since
changed is refused at start-up (fix it with a new migration, never by editing).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from service.errors import StoreError

if TYPE_CHECKING:
    from service.store.connection import Connection, Database

logger = logging.getLogger(__name__)

# Where a source checkout keeps them (the project's top-level migrations/ folder).
CHECKOUT_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text (line endings folded, so a checkout's do not count)."""
        return hashlib.sha256(self.sql.replace("\r\n", "\n").encode()).hexdigest()


def migrations_root() -> Traversable:
    """The migrations folder: package data of an installed package, else the checkout's."""
    try:
        packaged = resources.files("service.migrations")
    except ModuleNotFoundError:
        return CHECKOUT_MIGRATIONS
    return packaged if packaged.joinpath("sqlite").is_dir() else CHECKOUT_MIGRATIONS


def load_migrations(dialect: str, root: Traversable | None = None) -> list[Migration]:
    """The dialect's migrations in order; a gap or duplicate number is a packaging bug."""
    folder = (root or migrations_root()) / dialect
    found: list[Migration] = []
    if folder.is_dir():
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            if not path.name.endswith(".sql"):
                continue
            match = _NAME.match(path.name)
            if not match:
                raise RuntimeError(f"migration file name must be NNNN_name.sql: {path.name}")
            found.append(Migration(match.group(1), path.name, path.read_text(encoding="utf-8")))
    if not found:
        raise StoreError(
            f"no {dialect} migrations found in {folder}: the package was installed without "
            "its data files (reinstall it); refusing to start without a schema"
        )
    versions = [m.version for m in found]
    if versions != [f"{i:04d}" for i in range(1, len(found) + 1)]:
        raise RuntimeError(f"migrations in {folder} must be numbered 0001.. without gaps")
    return found


def dialect_of(database_url: str) -> str:
    """The migrations' dialect folder for a DATABASE_URL."""
    return "sqlite" if database_url.startswith("sqlite:") else "postgresql"


def check_migrations(database_url: str) -> None:
    """Refuse to start (StoreError) when the package's migrations cannot be found."""
    load_migrations(dialect_of(database_url))


async def apply_migrations(db: Database) -> list[str]:
    """Apply the missing migrations in one transaction; the versions applied."""
    migrations = load_migrations(db.dialect)

    async def work(conn: Connection) -> list[str]:
        q = db.queries
        await db.serialise_migrations(conn)
        await conn.execute(q.create_migrations)
        columns = {row[0] for row in await conn.fetch(q.migration_columns)}
        if "checksum" not in columns:  # made before checksums were recorded
            await conn.execute(q.add_migration_checksum)
        done = {row[0]: row[1] for row in await conn.fetch(q.applied_migrations)}
        applied: list[str] = []
        for migration in migrations:
            if migration.version not in done:
                await db.run_script(conn, migration.sql)
                await conn.execute(
                    q.mark_applied, migration.version, migration.name, migration.checksum
                )
                applied.append(migration.version)
                logger.info("applied migration %s", migration.name)
            elif done[migration.version] is None:
                await conn.execute(q.set_checksum, migration.version, migration.checksum)
            elif done[migration.version] != migration.checksum:
                raise StoreError(
                    f"migration {migration.name} was edited after it was applied to this "
                    "database (its checksum differs); add a new migration instead"
                )
        return applied

    return await db.transaction(work)


def split_statements(sql: str) -> list[str]:
    """Split a SQLite script into statements (triggers with inner semicolons stay whole)."""
    import sqlite3

    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
