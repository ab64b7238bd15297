"""Forward-only SQL migrations: numbered .sql files per dialect, applied in order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_ROOT = Path(__file__).resolve().parents[2] / "migrations"
_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str


def load_migrations(dialect: str, root: Path = MIGRATIONS_ROOT) -> list[Migration]:
    """The dialect's migrations in order; a gap or duplicate number is a packaging bug."""
    folder = root / dialect
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise RuntimeError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(Migration(match.group(1), path.name, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != [f"{i:04d}" for i in range(1, len(found) + 1)]:
        raise RuntimeError(f"migrations in {folder} must be numbered 0001.. without gaps")
    return found


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
