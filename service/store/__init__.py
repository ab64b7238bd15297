"""Storage: one algorithm (core.py) over two dialects (sqlite.py, postgres.py); see base.py."""

from __future__ import annotations

from service.errors import ConfigError
from service.store.base import Store


def store_for(database_url: str, *, pool_size: int = 10) -> Store:
    """The Store for a DATABASE_URL: sqlite:///path (default) or postgresql://...

    `pool_size` is the PostgreSQL connections per process (Settings.db_pool_size).
    """
    if database_url.startswith("sqlite:"):
        from service.store.sqlite import SQLiteStore

        try:
            return SQLiteStore.from_url(database_url)
        except ValueError as exc:
            raise ConfigError(f"DATABASE_URL: {exc}") from exc
    if database_url.startswith(("postgresql://", "postgres://")):
        try:
            from service.store.postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - asyncpg is a dependency
            raise ConfigError("PostgreSQL support needs asyncpg installed") from exc
        return PostgresStore(database_url, pool_size=pool_size)
    raise ConfigError("DATABASE_URL must start with sqlite:/// or postgresql://")
