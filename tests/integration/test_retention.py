"""Retention, purge, space and an unwritable database (issue 9, item 7), on both backends."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from service.store.sqlite import sqlite_path
from tests.conftest import TrawlServer, wait_until
from tests.faults.health import health_latency
from tests.faults.hostile_server import HostileServer
from tests.store import pgdb

pytestmark = pytest.mark.timeout(120)

MakeServer = Callable[..., Awaitable[TrawlServer]]
TABLES = ("results", "frontier")


@pytest.fixture
def server_defaults(database_url: str) -> dict[str, Any]:
    return {"database_url": database_url, "db_pool_size": 4}


async def query(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """One read straight from the database (SQL in PostgreSQL's $n style)."""
    if database_url.startswith("sqlite"):
        import re

        lite = re.sub(r"\$\d+", "?", sql)
        with sqlite3.connect(sqlite_path(database_url)) as conn:
            return [tuple(row) for row in conn.execute(lite, args).fetchall()]
    return [tuple(row) for row in await pgdb.query(database_url, sql, *args)]


async def rows_of(database_url: str, job_id: str) -> dict[str, int]:
    counts = {}
    for table in (*TABLES, "jobs"):
        column = "id" if table == "jobs" else "job_id"
        rows = await query(
            database_url, f"SELECT count(*) FROM {table} WHERE {column} = $1", job_id
        )
        counts[table] = int(rows[0][0])
    return counts


def seeds(hostile: HostileServer, n: int, tag: str = "p") -> list[str]:
    return [hostile.url(f"/ok?{tag}={i}") for i in range(n)]


# -- purge -----------------------------------------------------------------------------


async def test_purge_deletes_a_finished_job_and_all_its_data(
    make_server: MakeServer, hostile: HostileServer, database_url: str
) -> None:
    server = await make_server()
    job = await server.submit({"urls": seeds(hostile, 5), "formats": ["html"]})
    keep = await server.submit({"urls": seeds(hostile, 2, "keep")})
    done = await server.wait_job(job["id"])
    await server.wait_job(keep["id"])
    assert (await rows_of(database_url, job["id"]))["results"] == 5

    response = await server.client.delete(f"/v1/jobs/{job['id']}", params={"purge": "true"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"  # as DELETE answers a finished job
    assert response.json()["stats"] == done["stats"]
    assert await rows_of(database_url, job["id"]) == {"results": 0, "frontier": 0, "jobs": 0}
    gone = await server.client.get(f"/v1/jobs/{job['id']}")
    assert gone.status_code == 404
    assert (await server.client.get(f"/v1/jobs/{job['id']}/results")).status_code == 404
    assert (await server.client.delete(f"/v1/jobs/{job['id']}?purge=true")).status_code == 404
    # Nobody else's data went with it.
    assert (await rows_of(database_url, keep["id"]))["results"] == 2
    assert (await server.client.get(f"/v1/jobs/{keep['id']}")).status_code == 200


async def test_purge_cancels_a_running_job_first(
    make_server: MakeServer, hostile: HostileServer, database_url: str
) -> None:
    server = await make_server(concurrency=2, per_host_concurrency=2)
    # /stall answers headers and then nothing: the job stays running until cut off.
    job = await server.submit({"urls": [hostile.url(f"/stall?i={i}") for i in range(6)]})
    await server.wait_job(job["id"], {"running"})
    response = await server.client.delete(f"/v1/jobs/{job['id']}?purge=1")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert (await server.client.get(f"/v1/jobs/{job['id']}")).status_code == 404
    await server.wait_until_idle(timeout=20)
    assert await rows_of(database_url, job["id"]) == {"results": 0, "frontier": 0, "jobs": 0}


async def test_purge_parameter_is_validated(make_server: MakeServer) -> None:
    server = await make_server(role="web")
    job = await server.submit({"url": "http://example.invalid/"})
    response = await server.client.delete(f"/v1/jobs/{job['id']}?purge=maybe")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "purge"


# -- retention -------------------------------------------------------------------------


async def test_finished_jobs_expire_after_the_server_ttl(
    make_server: MakeServer, hostile: HostileServer, database_url: str
) -> None:
    server = await make_server(result_ttl=1.0, retention_interval=0.2)
    job = await server.submit({"urls": seeds(hostile, 3)})
    await server.wait_job(job["id"])

    async def status() -> int:
        return (await server.client.get(f"/v1/jobs/{job['id']}")).status_code

    await wait_until(status, lambda code: code == 404, timeout=20)
    assert await rows_of(database_url, job["id"]) == {"results": 0, "frontier": 0, "jobs": 0}


async def test_a_jobs_retention_overrides_the_server_default_within_bounds(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    server = await make_server(max_result_ttl=3600.0, retention_interval=0.2)
    too_long = await server.client.post(
        "/v1/jobs", json={"url": hostile.url("/ok"), "retention": 7200}
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "retention"
    short = await server.submit({"urls": seeds(hostile, 2, "short"), "retention": 1})
    kept = await server.submit({"urls": seeds(hostile, 2, "kept")})  # default: keep
    await server.wait_job(short["id"])
    await server.wait_job(kept["id"])
    assert short["request"]["retention"] == 1

    async def status() -> int:
        return (await server.client.get(f"/v1/jobs/{short['id']}")).status_code

    await wait_until(status, lambda code: code == 404, timeout=20)
    assert (await server.client.get(f"/v1/jobs/{kept['id']}")).status_code == 200


async def test_expiry_runs_in_small_batches_while_the_crawl_goes_on(
    make_server: MakeServer, hostile: HostileServer
) -> None:
    """Expiring a 600-result job does not stall another job's crawl or /health."""
    server = await make_server(retention_interval=0.2, result_batch_size=50)
    big = await server.submit(
        {"urls": seeds(hostile, 600, "big"), "max_pages": 600, "formats": ["html"]}
    )
    await server.wait_job(big["id"], timeout=90)
    crawl = await server.submit({"urls": seeds(hostile, 200, "live"), "max_pages": 200})
    purge = asyncio.ensure_future(server.client.delete(f"/v1/jobs/{big['id']}?purge=true"))
    latencies = await health_latency(server.client, purge, 0.02)
    assert (await purge).status_code == 200
    done = await server.wait_job(crawl["id"], timeout=60)
    assert done["stats"]["pages_fetched"] == 200
    assert max(latencies) < 1.0, latencies


# -- space -----------------------------------------------------------------------------


async def test_space_is_returned_to_the_filesystem(
    make_server: MakeServer, hostile: HostileServer, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's VACUUM is checked in tests/store")
    server = await make_server()
    path = Path(sqlite_path(database_url))

    def size() -> int:
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size

    job = await server.submit(
        {
            "urls": [hostile.url(f"/emoji?size=400000&i={i}") for i in range(10)],
            "formats": ["html", "text"],
        }
    )
    await server.wait_job(job["id"], timeout=60)
    full = size()
    assert full > 4_000_000
    response = await server.client.delete(f"/v1/jobs/{job['id']}?purge=true")
    assert response.status_code == 200

    async def probe() -> int:
        return size()

    await wait_until(probe, lambda now: now < full / 4, timeout=20)


# -- an unwritable database ------------------------------------------------------------


async def _freeze(server: TrawlServer, database_url: str, frozen: bool) -> None:
    """Make the database refuse every write that needs space (disk full), or undo it."""
    if database_url.startswith("sqlite"):
        # SQLite's max_page_count (per connection): the writer's file cannot grow.
        writer = server.app.ctx.store.db._writer
        cursor = await writer.execute("PRAGMA page_count")
        (pages,) = await cursor.fetchone()
        await cursor.close()
        limit = pages if frozen else 1 << 30
        cursor = await writer.execute(f"PRAGMA max_page_count = {limit}")
        await cursor.close()
        return
    # PostgreSQL: a trigger answering every write with the disk_full error class.
    if frozen:
        await pgdb.query(
            database_url,
            """
            CREATE OR REPLACE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'
               USING ERRCODE = 'disk_full'; END $$
            """,
        )
        for table in ("jobs", "frontier", "results", "outbox"):
            await pgdb.query(
                database_url,
                f"CREATE TRIGGER test_disk_full BEFORE INSERT OR UPDATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION test_disk_full()",
            )
    else:
        for table in ("jobs", "frontier", "results", "outbox"):
            await pgdb.query(database_url, f"DROP TRIGGER IF EXISTS test_disk_full ON {table}")


async def test_an_unwritable_database_pauses_the_crawl_and_it_resumes_by_itself(
    make_server: MakeServer, hostile: HostileServer, database_url: str
) -> None:
    # The test is about storage: a loaded machine must not turn a slow parse into a
    # parse_timeout failure (the 5 s default), which would break the exact counts below.
    server = await make_server(concurrency=4, per_host_concurrency=4, parse_timeout=120.0)
    job = await server.submit(
        {
            "urls": [hostile.url(f"/emoji?size=200000&i={i}") for i in range(40)],
            "formats": ["html", "text"],
        }
    )
    await wait_until(
        lambda: server.job(job["id"]), lambda j: j["stats"]["pages_fetched"] >= 3, timeout=30
    )
    await _freeze(server, database_url, True)
    try:
        # New jobs: 503 problem+json with Retry-After.
        seeds = [hostile.url("/ok?" + "x" * 2000 + str(i)) for i in range(300)]
        refused = await server.client.post("/v1/jobs", json={"urls": seeds})
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        # The crawl pauses: nothing more is stored, and the service stays responsive.
        await wait_until(lambda: _paused(server), lambda paused: paused, timeout=20)
        before = (await server.job(job["id"]))["stats"]["pages_fetched"]
        await asyncio.sleep(1.0)
        assert (await server.job(job["id"]))["stats"]["pages_fetched"] == before
        assert (await server.client.get("/health")).status_code == 200
    finally:
        await _freeze(server, database_url, False)
    # Writes succeed again: the crawl resumes by itself, every page stored exactly once.
    done = await server.wait_job(job["id"], timeout=60)
    assert done["status"] == "completed", done
    assert done["stats"]["pages_fetched"] == 40
    assert done["stats"]["pages_failed"] == 0
    pages = await server.results(job["id"])
    assert len(pages) == 40 and len({p["url"] for p in pages}) == 40
    assert all(p["error"] is None for p in pages)
    accepted = await server.client.post("/v1/jobs", json={"url": hostile.url("/ok?after=1")})
    assert accepted.status_code == 202


async def _paused(server: TrawlServer) -> bool:
    # Either side may meet the unwritable database first: the writer with a page in
    # flight, or the claim loop when nothing is in flight (then the writer has nothing
    # to fail on, as seen on PostgreSQL on a quiet machine).
    crawler = server.crawler
    return bool(crawler.writer.paused or crawler.claims_paused)
