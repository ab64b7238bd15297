"""Claim latency and memory as the frontier grows: `python bench/frontier_scale.py`.

    python bench/frontier_scale.py                         # SQLite, up to 1,000,000 pending
    python bench/frontier_scale.py --database postgresql   # the same on PostgreSQL
    python bench/frontier_scale.py --steps 10000 100000 --hosts 2000

Fills one store's frontier with pending URLs spread over `--hosts` hosts (one job per
10,000 URLs, written straight into the tables in large batches, as the store's own
admission would leave them), and at each step measures `claim(256)` the way the engine
calls it for a polite wide crawl (per-host limit 1, look-ahead 2 x that), each claim
followed by recording what it took
(so hosts have room again), plus this process's RSS. The claims are the store's real
transactions; only the filling bypasses the API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.models import Outcome, utcnow
from service.store.base import NewJob, PageRecord, Store
from service.store.postgres import PostgresStore
from service.store.sqlite import SQLiteStore
from tests.store import pgdb

from measures import percentile

logger = logging.getLogger("bench.frontier_scale")
JOB_SIZE = 10_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _fill(store: Store, start: int, stop: int, hosts: int) -> None:
    """Add pending URLs start..stop, JOB_SIZE per job, round robin over the hosts."""
    for first in range(start, stop, JOB_SIZE):
        count = min(JOB_SIZE, stop - first)
        seed = f"http://h0.test/seed-{first}"
        job = NewJob(
            id=str(uuid.uuid4()),
            created_at=utcnow(),
            request={"urls": [seed], "max_pages": count + 1, "max_depth": 1, "scope": "any"},
            seeds=(seed,),
            max_pages=count + 1,
        )
        await store.create_job(job)
        rows = [
            (f"http://h{(first + i) % hosts}.test/u{first + i}", f"h{(first + i) % hosts}.test")
            for i in range(count)
        ]
        await _insert(store, job.id, rows)


async def _insert(store: Store, job_id: str, rows: list[tuple[str, str]]) -> None:
    hosts = sorted({host for _, host in rows})
    if isinstance(store, SQLiteStore):
        async with store._transaction() as conn:
            await conn.executemany(
                "INSERT INTO frontier (job_id, url, host, depth, tag) VALUES (?, ?, ?, 1, ?)",
                [(job_id, url, host, float(n)) for n, (url, host) in enumerate(rows)],
            )
            await conn.executemany(
                "INSERT INTO hosts (host) VALUES (?) ON CONFLICT (host) DO UPDATE "
                "SET queued = queued + 1",
                [(host,) for host in hosts],
            )
            await conn.execute(
                "UPDATE jobs SET pages_discovered = pages_discovered + ? WHERE id = ?",
                (len(rows), job_id),
            )
    else:
        assert isinstance(store, PostgresStore)
        async with store._p.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table(
                "frontier",
                records=[(job_id, url, host, 1, float(n)) for n, (url, host) in enumerate(rows)],
                columns=["job_id", "url", "host", "depth", "tag"],
            )
            await conn.execute(
                "INSERT INTO hosts (host) SELECT h FROM unnest($1::text[]) AS h ORDER BY h "
                "ON CONFLICT (host) DO UPDATE SET queued = hosts.queued + 1",
                hosts,
            )
            await conn.execute(
                "UPDATE jobs SET pages_discovered = pages_discovered + $2 WHERE id = $1",
                job_id,
                len(rows),
            )


async def _measure(store: Store, claims: int) -> dict[str, Any]:
    times: list[float] = []
    for _ in range(claims):
        started = time.perf_counter()
        items = await store.claim(256, "bench", 600, 1, ahead=2)
        times.append((time.perf_counter() - started) * 1000)
        await store.record(
            [
                PageRecord(item=item, outcome=Outcome.OK, page_json="{}", attempts=1)
                for item in items
            ]
        )
    return {
        "claims": len(times),
        "p50_ms": round(percentile(times, 50) or 0, 2),
        "p99_ms": round(percentile(times, 99) or 0, 2),
        "max_ms": round(max(times), 2),
    }


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--steps", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--claims", type=int, default=200, help="claims measured per step")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pg_url = None
    with tempfile.TemporaryDirectory(prefix="trawl-scale-") as tmp:
        store: Store
        if args.database == "postgresql":
            if reason := pgdb.unavailable_reason():
                logger.error("%s", reason)
                return 2
            pg_url = pgdb.create_database("trawl_scale")
            store = PostgresStore(pg_url)
        else:
            store = SQLiteStore(str(Path(tmp) / "scale.db"))
        await store.open()
        rows = []
        try:
            filled = 0
            for step in args.steps:
                started = time.monotonic()
                await _fill(store, filled, step, args.hosts)
                filled = step
                logger.info("filled to %d pending in %.1f s", step, time.monotonic() - started)
                row = {
                    "pending": await store.pending_count(),
                    **await _measure(store, args.claims),
                    "rss_mb": round(_rss_mb(), 1),
                }
                logger.info("%s", row)
                rows.append(row)
        finally:
            await store.close()
            if pg_url is not None:
                pgdb.drop_database(pg_url)
    print(f"| {args.database} pending | claim p50 ms | p99 ms | max ms | RSS MB |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['pending']:,} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['rss_mb']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
