"""Migrations: found as package data, recorded with checksums, edits refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.errors import StoreError
from service.store.migrate import load_migrations
from service.store.sqlite import SQLiteStore


def test_both_dialects_ship_the_same_migration_numbers() -> None:
    sqlite = [m.version for m in load_migrations("sqlite")]
    postgresql = [m.version for m in load_migrations("postgresql")]
    assert sqlite and sqlite == postgresql


def test_no_migrations_found_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no sqlite migrations found"):
        load_migrations("sqlite", tmp_path)


async def test_applied_migrations_record_checksums(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "m.db"))
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        recorded = dict(conn.execute("SELECT version, checksum FROM schema_migrations"))
    assert recorded == {m.version: m.checksum for m in load_migrations("sqlite")}


async def test_an_edited_migration_is_refused(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "m.db"))
    await store.open()
    await store.close()
    # As if 0001's file had changed since it was applied here.
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = '0001'")
    again = SQLiteStore(str(tmp_path / "m.db"))
    with pytest.raises(StoreError, match=r"0001_init\.sql was edited"):
        await again.open()


async def test_a_database_from_before_checksums_gets_them(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "m.db"))
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        # The table as versions before checksums made it.
        conn.executescript(
            "CREATE TABLE old AS SELECT version, name, applied_at FROM schema_migrations;"
            "DROP TABLE schema_migrations;"
            "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TEXT NOT NULL);"
            "INSERT INTO schema_migrations SELECT * FROM old;"
            "DROP TABLE old;"
        )
    again = SQLiteStore(str(tmp_path / "m.db"))
    await again.open()
    assert again.applied_migrations == []
    await again.close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        assert all(
            checksum for (checksum,) in conn.execute("SELECT checksum FROM schema_migrations")
        )


def test_the_service_refuses_to_start_without_migrations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service import __main__ as entry
    from service.store import migrate

    monkeypatch.setattr(migrate, "migrations_root", lambda: tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    assert entry.main([]) == 2
    assert "no sqlite migrations found" in capsys.readouterr().err
