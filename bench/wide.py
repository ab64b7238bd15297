"""The wide crawl: many hosts held to a per-host delay, Trawl and Scrapy side by side.

    python bench/wide.py                              # 200 hosts x 10 pages, SQLite
    python bench/wide.py --hosts 2000 --pages 20      # the larger one
    python bench/wide.py --database postgresql --workers 1 3
    python bench/wide.py --only trawl --repeat 3

Hosts 127.0.1.1.. on one port (bench/wideserver.py), every answer `--latency` late,
robots.txt 404. The seed links every host's /p0; /p0 links /p1../p{pages-1}. Both
crawlers: scope any, one request per host at a time, `--delay` seconds between request
starts to a host, robots.txt obeyed. The politeness limit is (1 + pages) x delay: robots.txt
plus each page, one delay apart, every host in parallel. Politeness is checked from the
server's side (most requests in flight per host, smallest gap between page starts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.scaleout.cluster import Api, Cluster
from tests.store import pgdb

from wideserver import WideSite

from measures import histogram_quantile, parse_prometheus
from procstat import TreeSampler

BENCH = Path(__file__).resolve().parent
logger = logging.getLogger("bench.wide")


def _moment(job: dict[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(str(job[key]).replace("Z", "+00:00"))


def _elapsed(job: dict[str, Any], since: str = "started_at") -> float:
    return (_moment(job, "finished_at") - _moment(job, since)).total_seconds()


def _claim_quantiles(metrics: str) -> tuple[float | None, float | None]:
    samples = parse_prometheus(metrics)
    buckets = {
        float(s.labels["le"]): s.value
        for s in samples
        if s.name == "trawl_claim_duration_seconds_bucket"
    }
    return histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)


def _politeness(site: WideSite, since: float, delay: float) -> dict[str, Any]:
    seen = site.politeness(since)
    worst_flight = max((p.max_in_flight for p in seen.values()), default=0)
    worst_gap = min((p.min_gap for p in seen.values()), default=float("inf"))
    first, last, pace = site.timeline(since)
    return {
        "first_request_s": round(first, 2),
        "last_answer_s": round(last, 2),
        "median_host_gap_s": round(pace, 3),
        "max_in_flight_per_host": worst_flight,
        "min_gap_s": round(worst_gap, 3),
        # 1% of slack for the server reading its own clock late under load.
        "violations": sum(
            1 for p in seen.values() if p.max_in_flight > 1 or p.min_gap < 0.99 * delay
        ),
    }


async def trawl_run(
    site: WideSite, args: argparse.Namespace, workers: int, log_dir: Path
) -> dict[str, Any]:
    """One fresh database, one service (or web + N workers), one crawl."""
    pg_url = pgdb.create_database("trawl_wide") if args.database == "postgresql" else None
    database_url = pg_url or f"sqlite:///{log_dir}/wide-{time.monotonic_ns()}.db"
    env = {
        "SCRAPER_CONCURRENCY": str(args.concurrency),
        "SCRAPER_PARSER_PROCESSES": str(args.parsers),
        "SCRAPER_MAX_PAGES_CAP": str(max(100_000, site.expected + 10)),
        "SCRAPER_DB_POOL_SIZE": "8",
        **dict(item.split("=", 1) for item in args.env),
    }
    cluster = Cluster(database_url, log_dir, env)
    try:
        if pg_url is not None:
            [web] = await cluster.start_ready("web")
            await cluster.start_ready("worker", workers)
        else:
            [web] = await cluster.start_ready("all")
        samplers = [TreeSampler(m.pid, interval=0.2).start() for m in cluster.members]
        api = Api(web)
        site.reset()
        since = time.monotonic()
        try:
            body = {
                "urls": [site.seed],
                "max_depth": 2,
                "max_pages": site.expected + 10,
                "scope": "any",
                "per_host_concurrency": 1,
                "per_host_delay": args.delay,
                "formats": ["metadata"],
            }
            if args.adaptive:
                body["adaptive_delay"] = True
            job = await api.submit(body)
            done = await api.wait_job(job["id"], timeout=args.timeout, interval=0.1)
            metrics = [
                (await m.client().get("/metrics")).text
                for m in cluster.members
                if m.role in ("all", "worker") and m.port
            ]
        finally:
            await api.aclose()
            for sampler in samplers:
                sampler.stop()
        if done["status"] != "completed":
            raise RuntimeError(f"crawl ended {done['status']}:\n{cluster.logs()}")
        fetched = done["stats"]["pages_fetched"]
        p50, p99 = _claim_quantiles(metrics[0]) if metrics else (None, None)
        return {
            "system": f"Trawl ({args.database}, {workers} worker{'s' * (workers > 1)})",
            "seconds": round(_elapsed(done), 2),
            # From the submission: the wait for the first claim included.
            "submitted_s": round(_elapsed(done, "created_at"), 2),
            "pages": fetched,
            "complete": fetched == site.expected,
            "rss_mb": round(sum(s.peak_rss for s in samplers) / 2**20, 1),
            "claim_p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
            "claim_p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
            **_politeness(site, since, args.delay),
        }
    finally:
        cluster.close(grace=10)
        if pg_url is not None:
            pgdb.drop_database(pg_url)


def scrapy_run(site: WideSite, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    import scrapy_runner

    python = scrapy_runner.ensure_venv()
    report = log_dir / f"scrapy-wide-{time.monotonic_ns()}.json"
    site.reset()
    since = time.monotonic()
    command = [
        str(python),
        str(BENCH / "scrapy_wide.py"),
        "--seed",
        site.seed,
        "--report",
        str(report),
        "--delay",
        str(args.delay),
        "--concurrency",
        str(args.concurrency),
        "--queue",
        args.scrapy_queue,
    ]
    with (log_dir / "scrapy-wide.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeSampler(process.pid, interval=0.2).start()
        process.wait(timeout=args.timeout)
        sampler.stop()
    data = json.loads(report.read_text())
    return {
        "system": f"Scrapy ({args.scrapy_queue} queue)",
        "seconds": round(data["seconds"], 2),
        "pages": data["pages"],
        "complete": data["pages"] == site.expected,
        "rss_mb": round(sampler.peak_rss / 2**20, 1),
        "claim_p50_ms": None,
        "claim_p99_ms": None,
        **_politeness(site, since, args.delay),
    }


def _table(rows: list[dict[str, Any]], limit: float, scrapy: float | None) -> str:
    head = (
        "| system | s | limit s | /limit | /Scrapy | pages | RSS MB | claim p50/p99 ms "
        "| max in flight/host | min gap s | first req / last answer s | median host gap s |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        claim = f"{r['claim_p50_ms']}/{r['claim_p99_ms']}" if r["claim_p50_ms"] is not None else "-"
        versus = f"{r['seconds'] / scrapy:.2f}" if scrapy else "-"
        lines.append(
            f"| {r['system']} | {r['seconds']} | {limit:.1f} | {r['seconds'] / limit:.2f} "
            f"| {versus} | {r['pages']}{'' if r['complete'] else ' (incomplete)'} "
            f"| {r['rss_mb']} | {claim} | {r['max_in_flight_per_host']} | {r['min_gap_s']} "
            f"| {r['first_request_s']} / {r['last_answer_s']} | {r['median_host_gap_s']} |"
        )
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--pages", type=int, default=10, help="pages per host")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per answer")
    parser.add_argument("--delay", type=float, default=1.0, help="per-host delay, seconds")
    parser.add_argument("--concurrency", type=int, default=64, help="both crawlers")
    parser.add_argument(
        "--parsers",
        type=int,
        default=os.cpu_count() or 1,
        help="SCRAPER_PARSER_PROCESSES (default: one per core, as the service's default)",
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, nargs="*", default=[1], help="PG workers")
    parser.add_argument("--only", choices=("trawl", "scrapy"))
    parser.add_argument("--scrapy-queue", choices=("dap", "default"), default="dap")
    parser.add_argument("--adaptive", action="store_true", help="job adaptive_delay: true")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.database == "postgresql" and (reason := pgdb.unavailable_reason()):
        logger.error("%s", reason)
        return 2
    limit = (1 + args.pages) * args.delay
    rows: list[dict[str, Any]] = []
    site = WideSite(hosts=args.hosts, pages=args.pages, latency=args.latency)
    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = tempfile.mkdtemp(prefix="trawl-wide-")
            logger.info("logs and databases kept in %s", tmp)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="trawl-wide-"))
        stack.enter_context(site.serve())
        logger.info(
            "%d hosts x %d pages on port %d, %.0f ms latency, %.1f s delay; limit %.1f s",
            args.hosts,
            args.pages,
            site.port,
            args.latency * 1000,
            args.delay,
            limit,
        )
        for _ in range(args.repeat):
            if args.only != "scrapy":
                for workers in args.workers if args.database == "postgresql" else [1]:
                    row = await trawl_run(site, args, workers, Path(tmp))
                    logger.info("%s", row)
                    rows.append(row)
            if args.only != "trawl":
                row = scrapy_run(site, args, Path(tmp))
                logger.info("%s", row)
                rows.append(row)
    scrapy_times = [r["seconds"] for r in rows if r["system"].startswith("Scrapy")]
    scrapy = sorted(scrapy_times)[len(scrapy_times) // 2] if scrapy_times else None
    print(_table(rows, limit, scrapy))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(r["complete"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
