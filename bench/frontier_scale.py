"""Claim latency and memory as the frontier grows: `python bench/frontier_scale.py`.

    python bench/frontier_scale.py                         # SQLite, up to 1,000,000 pending
    python bench/frontier_scale.py --database postgresql   # the same on PostgreSQL
    python bench/frontier_scale.py --steps 10000 100000 --hosts 2000

Fills one store's frontier with pending URLs spread over `--hosts` hosts (one job per
10,000 URLs, written straight into the tables in large batches, as the store's own
admission would leave them), and at each step measures `claim(MAX_CLAIM)` the way the
engine calls it for a polite wide crawl (per-host limit 1; look-ahead 2 x that on SQLite's
private frontier, none on PostgreSQL's shared one), each claim followed by recording what
it took (so hosts have room again), plus this process's RSS. The claims are the store's
real transactions; only the filling bypasses the API. After each fill PostgreSQL's
tables are ANALYZEd, as autovacuum would within a minute of such a bulk load: without statistics
PostgreSQL reads every pending row of a host to find its first three (~200 ms a claim).

`--service SECONDS` (SQLite): the URLs are on `--hosts` loopback hosts served by
wideserver.py (an empty page each, `--latency` late), and after each fill the real
service (`python -m service all`) crawls that frontier for SECONDS: the peak RSS of its
process tree (service and parser processes, sampled every 200 ms) and the URLs it
settled. Its memory should not depend on the backlog, only on what it holds in flight.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.crawl.engine import MAX_CLAIM
from service.models import Outcome, utcnow
from service.store.base import NewJob, PageRecord
from service.store.connection import Connection
from service.store.core import SQLStore
from service.store.postgres import PostgresStore
from service.store.sqlite import SQLiteStore
from tests.scaleout.cluster import Cluster
from tests.store import pgdb

from wideserver import WideSite, host_address

from measures import percentile
from procstat import TreeSampler

logger = logging.getLogger("bench.frontier_scale")
JOB_SIZE = 10_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _test_url(n: int, hosts: int) -> tuple[str, str]:
    host = f"h{n % hosts}.test"
    return f"http://{host}/u{n}", host


async def _fill(
    store: SQLStore,
    start: int,
    stop: int,
    hosts: int,
    url: Callable[[int, int], tuple[str, str]] = _test_url,
) -> None:
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
        rows = [url(first + i, hosts) for i in range(count)]
        await _insert(store, job.id, rows)


async def _insert(store: SQLStore, job_id: str, rows: list[tuple[str, str]]) -> None:
    """The store's own admission statements, minus the per-link bookkeeping."""
    q = store.q

    async def work(conn: Connection) -> None:
        await conn.execute_many(
            q.insert_frontier,
            [(job_id, url, host, 1, float(n)) for n, (url, host) in enumerate(rows)],
        )
        await conn.execute_many(q.queue_hosts, [(host,) for host in sorted({h for _, h in rows})])
        await conn.execute(q.set_discovered, job_id, len(rows) + 1)

    await store.db.transaction(work)


async def _analyze(store: SQLStore) -> None:
    async def work(conn: Connection) -> None:
        await conn.execute("ANALYZE")

    await store.db.transaction(work)


async def _measure(store: SQLStore, claims: int, batch: int) -> dict[str, Any]:
    times: list[float] = []
    cpu: list[float] = []
    claimed = 0
    for _ in range(claims):
        started, cpu_started = time.perf_counter(), time.process_time()
        ahead = 0 if store.shared_frontier else 2  # as the engine claims
        items = await store.claim(batch, "bench", 600, 1, ahead=ahead)
        times.append((time.perf_counter() - started) * 1000)
        # CPU time of this process (SQLite works in aiosqlite's thread, counted too): the
        # claim's own cost, whatever else the shared machine is doing.
        cpu.append((time.process_time() - cpu_started) * 1000)
        claimed += len(items)
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
        "cpu_p50_ms": round(percentile(cpu, 50) or 0, 2),
        "cpu_p99_ms": round(percentile(cpu, 99) or 0, 2),
        "claimed_per_claim": round(claimed / len(times), 1),
    }


async def _crawl_memory(
    database_url: str, seconds: float, log_dir: Path, store: SQLStore
) -> dict[str, Any]:
    """Run the service on the filled frontier for `seconds`: its tree's peak RSS."""
    before = await store.pending_count()
    cluster = Cluster(
        database_url,
        log_dir,
        {"SCRAPER_PARSER_PROCESSES": "2", "SCRAPER_MAX_PAGES_CAP": "2000000"},
    )
    try:
        [member] = await cluster.start_ready("all")
        sampler = TreeSampler(member.pid, interval=0.2).start()
        await asyncio.sleep(seconds)  # the measurement window, not synchronisation
        sampler.stop()
        totals = sorted((s.rss_bytes for s in sampler.samples), reverse=True)
        last = sampler.samples[-1] if sampler.samples else None
    finally:
        cluster.close(grace=10)
    return {
        "service_peak_rss_mb": round((totals[0] if totals else 0) / 2**20, 1),
        "service_last_rss_mb": round((last.rss_bytes if last else 0) / 2**20, 1),
        "service_processes": last.processes if last else 0,
        "settled": before - await store.pending_count(),
    }


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--steps", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--claims", type=int, default=200, help="claims measured per step")
    parser.add_argument("--batch", type=int, default=MAX_CLAIM, help="URLs per claim")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--service", type=float, default=0.0, metavar="SECONDS", help="crawl each step (SQLite)"
    )
    parser.add_argument("--latency", type=float, default=0.05, help="--service: answer delay")
    args = parser.parse_args(argv)
    if args.service:
        site = WideSite(hosts=args.hosts, pages=2, latency=args.latency)
        with site.serve():
            return await _main(args, site)
    return await _main(args, None)


async def _main(args: argparse.Namespace, site: WideSite | None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pg_url = None
    with tempfile.TemporaryDirectory(prefix="trawl-scale-") as tmp:
        store: SQLStore
        if args.database == "postgresql":
            if reason := pgdb.unavailable_reason():
                logger.error("%s", reason)
                return 2
            pg_url = pgdb.create_database("trawl_scale")
            store = PostgresStore(pg_url)
        else:
            store = SQLiteStore(str(Path(tmp) / "scale.db"))
        url = _test_url
        if site is not None:
            port = site.port

            def url(n: int, hosts: int) -> tuple[str, str]:
                # /p1 is an empty page; the query keeps the URLs distinct.
                host = host_address(n % hosts)
                return f"http://{host}:{port}/p1?u={n}", host

        await store.open()
        rows = []
        try:
            filled = 0
            for step in args.steps:
                started = time.monotonic()
                await _fill(store, filled, step, args.hosts, url)
                filled = step
                logger.info("filled to %d pending in %.1f s", step, time.monotonic() - started)
                if store.shared_frontier:  # PostgreSQL (SQLite has no autovacuum to mimic)
                    await _analyze(store)
                row = {
                    "pending": await store.pending_count(),
                    **await _measure(store, args.claims, args.batch),
                    "rss_mb": round(_rss_mb(), 1),
                }
                if site is not None:
                    row |= await _crawl_memory(
                        f"sqlite:///{tmp}/scale.db", args.service, Path(tmp), store
                    )
                logger.info("%s", row)
                rows.append(row)
        finally:
            await store.close()
            if pg_url is not None:
                pgdb.drop_database(pg_url)
    print(
        f"| {args.database} pending | URLs/claim | claim p50 ms | p99 ms | max ms "
        "| CPU p50 ms | CPU p99 ms | RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [
            f"{r['pending']:,}",
            r["claimed_per_claim"],
            r["p50_ms"],
            r["p99_ms"],
            r["max_ms"],
            r["cpu_p50_ms"],
            r["cpu_p99_ms"],
            r["rss_mb"],
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if args.service:
        print(
            f"\n| pending | service peak RSS MB | last RSS MB "
            f"| URLs settled in {args.service:g} s |"
        )
        print("|---|---|---|---|")
        for r in rows:
            cells = [f"{r['pending']:,}", r["service_peak_rss_mb"], r["service_last_rss_mb"]]
            print("| " + " | ".join(str(c) for c in [*cells, r["settled"]]) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
