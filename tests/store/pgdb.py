"""Throwaway PostgreSQL databases for tests (skipped when no server is reachable)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

T = TypeVar("T")

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    """The server to test against: $TRAWL_TEST_POSTGRES_URL or the local default."""
    return os.environ.get("TRAWL_TEST_POSTGRES_URL") or DEFAULT_URL


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh loop in its own thread (safe in fixtures)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="pg-admin")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def unavailable_reason() -> str | None:
    """Why PostgreSQL cannot be used for tests, or None when it can."""

    async def probe() -> None:
        conn = await asyncpg.connect(admin_url(), timeout=3)
        await conn.close()

    try:
        run_sync(probe())
    except Exception as exc:
        return f"no PostgreSQL reachable at {admin_url()} ({type(exc).__name__}: {exc})"
    return None


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(prefix: str = "trawl_test") -> str:
    """Create a uniquely named database; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_url(), timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run_sync(create())
    return with_database(admin_url(), name)


def drop_database(url: str) -> None:
    """Drop a database made by `create_database`, disconnecting whoever is left."""
    name = urlsplit(url).path.lstrip("/")

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url(), timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_sync(drop())


def reset_schema(url: str) -> None:
    """Empty a test database: drop every table (migrations then start from scratch)."""

    async def reset() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()

    run_sync(reset())


async def query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Run one query on its own connection (tests peek at the database with it)."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


def fresh_database(prefix: str) -> Iterator[str]:
    """A new, empty database, dropped when the fixture ends (skips without PostgreSQL).

    For fixtures: `yield from pgdb.fresh_database("trawl_x")`.
    """
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    url = create_database(prefix)
    yield url
    drop_database(url)
