"""SQLite's one reader connection: a read started after a commit sees it, however many
other reads are in flight (an active statement pins the connection's snapshot)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.store.connection import Connection
from service.store.sqlite import SQLiteDatabase


async def test_a_read_after_a_commit_sees_it_while_other_reads_run(tmp_path: Path) -> None:
    db = SQLiteDatabase(str(tmp_path / "reads.db"))
    await db.open()
    try:

        async def setup(conn: Connection) -> None:
            await conn.execute("CREATE TABLE t (x INTEGER)")
            await conn.execute("CREATE TABLE filler (x INTEGER)")
            await conn.execute_many("INSERT INTO filler VALUES (?1)", [(i,) for i in range(5000)])

        await db.transaction(setup)
        stop = asyncio.Event()

        async def reader() -> None:
            while not stop.is_set():
                await db.fetch("SELECT x FROM filler")

        readers = [asyncio.create_task(reader()) for _ in range(12)]
        try:
            for k in range(1, 301):

                async def write(conn: Connection, k: int = k) -> None:
                    await conn.execute("INSERT INTO t VALUES (?1)", k)

                await db.transaction(write)
                row = await db.fetch_one("SELECT count(*) FROM t")
                assert row is not None
                assert row[0] == k, f"a read after commit {k} saw {row[0]} rows"
        finally:
            stop.set()
            await asyncio.gather(*readers)
    finally:
        await db.close()
