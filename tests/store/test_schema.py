"""The two dialects' migrations build the same schema: tables, columns and indexes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.store.postgres import PostgresStore
from service.store.sqlite import SQLiteStore
from tests.store import pgdb

Schema = tuple[set[tuple[str, str]], set[tuple[str, str, bool]], set[tuple[str, tuple[str, ...]]]]


def sqlite_schema(path: str) -> Schema:
    """(table, column)s, (table, index, unique)s of named indexes, unique column sets."""
    with sqlite3.connect(path) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        columns = {
            (table, row[1])
            for table in tables
            for row in conn.execute(f"PRAGMA table_info({table})")
        }
        indexes: set[tuple[str, str, bool]] = set()
        uniques: set[tuple[str, tuple[str, ...]]] = set()
        for table in tables:
            for _, name, unique, origin, _partial in conn.execute(f"PRAGMA index_list({table})"):
                if origin == "c":
                    indexes.add((table, name, bool(unique)))
                elif origin == "u":
                    cols = tuple(row[2] for row in conn.execute(f"PRAGMA index_info({name})"))
                    uniques.add((table, cols))
    return columns, indexes, uniques


async def postgres_schema(url: str) -> Schema:
    rows = await pgdb.query(
        url,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()",
    )
    columns = {(row["table_name"], row["column_name"]) for row in rows}
    rows = await pgdb.query(
        url,
        """
        SELECT t.relname AS tbl, i.relname AS idx, x.indisunique AS uniq,
               c.conname IS NOT NULL AS constraint_backed,
               array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k (attnum, n)
                     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                     ORDER BY k.n) AS cols
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace ns ON ns.oid = t.relnamespace AND ns.nspname = current_schema()
        LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype = 'u'
        WHERE NOT x.indisprimary
        """,
    )
    indexes = {(r["tbl"], r["idx"], r["uniq"]) for r in rows if not r["constraint_backed"]}
    uniques = {(r["tbl"], tuple(r["cols"])) for r in rows if r["constraint_backed"]}
    return columns, indexes, uniques


@pytest.mark.postgres
async def test_sqlite_and_postgresql_schemas_agree(tmp_path: Path) -> None:
    reason = pgdb.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    path = str(tmp_path / "schema.db")
    lite = SQLiteStore(path)
    await lite.open()
    await lite.close()
    url = pgdb.create_database("trawl_schema")
    try:
        pg = PostgresStore(url, pool_size=2)
        await pg.open()
        await pg.close()
        lite_columns, lite_indexes, lite_uniques = sqlite_schema(path)
        pg_columns, pg_indexes, pg_uniques = await postgres_schema(url)
    finally:
        pgdb.drop_database(url)
    assert lite_columns == pg_columns
    assert lite_indexes == pg_indexes
    assert lite_uniques == pg_uniques
    assert {table for table, _ in lite_columns} >= {"jobs", "frontier", "results", "outbox"}
