"""Store fixtures: every test runs once per backend (SQLite file, fresh PostgreSQL schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from service.store.base import Store
from service.store.postgres import PostgresStore
from service.store.sqlite import SQLiteStore
from tests.store import pgdb

MakeStore = Callable[[], Awaitable[Store]]


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """One throwaway database for the session's PostgreSQL store tests."""
    yield from pgdb.fresh_database("trawl_store")


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL of the parametrised backend, empty for each test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    url: str = request.getfixturevalue("pg_session_url")
    pgdb.reset_schema(url)
    return url


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgres"


@pytest.fixture
async def make_store(database_url: str) -> AsyncIterator[MakeStore]:
    """`await make_store()`: another open store on this test's database (another worker)."""
    stores: list[Store] = []

    async def make() -> Store:
        store: Store
        if database_url.startswith("sqlite"):
            store = SQLiteStore.from_url(database_url)
        else:
            store = PostgresStore(database_url, pool_size=4)
        await store.open()
        stores.append(store)
        return store

    yield make
    for store in reversed(stores):
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> Store:
    return await make_store()
