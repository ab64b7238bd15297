"""Scale-out throughput: pages/s of one crawl for 1..N PostgreSQL workers and for SQLite.

    python bench/pg_scaleout.py                      # 1 and 2 PG workers, SQLite single
    python bench/pg_scaleout.py --workers 1 2 3 --pages 2000 --per-host 64
    python bench/pg_scaleout.py --page-delay 0.05 --concurrency 8 --per-host 64  # latency-bound

Every run crawls the same local site (tests.site.Site, served from this process) through
the public API on a fresh database: PostgreSQL runs `python -m service web` plus N
`python -m service worker` processes; SQLite runs one `python -m service`. The time is
the job's own created_at -> finished_at; each run is checked to have stored every page
exactly once. PostgreSQL: $TRAWL_TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1/test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.scaleout.cluster import Api, Cluster
from tests.site import Site
from tests.store import pgdb

logger = logging.getLogger("bench.pg_scaleout")


@dataclass(frozen=True, slots=True)
class Run:
    backend: str
    workers: int
    pages: int
    seconds: float
    pages_per_second: float
    max_concurrent: int


def _elapsed(job: dict[str, object]) -> float:
    created = datetime.fromisoformat(str(job["created_at"]).replace("Z", "+00:00"))
    finished = datetime.fromisoformat(str(job["finished_at"]).replace("Z", "+00:00"))
    return (finished - created).total_seconds()


def _depth_for(site: Site) -> int:
    depth = 0
    while len(site.expected_urls(depth)) < site.pages + 1:
        depth += 1
    return depth


async def crawl_once(
    backend: str, workers: int, site: Site, env: dict[str, str], log_dir: Path
) -> Run:
    """One fresh database, one cluster, one crawl of the whole site."""
    depth = _depth_for(site)
    expected = site.expected_urls(depth)
    pg_url = pgdb.create_database("trawl_bench") if backend == "postgresql" else None
    database_url = pg_url or f"sqlite:///{log_dir}/bench-{workers}.db"
    cluster = Cluster(database_url, log_dir, env)
    try:
        if backend == "postgresql":
            [web] = await cluster.start_ready("web")
            await cluster.start_ready("worker", workers)
        else:
            [web] = await cluster.start_ready("all")
        site.reset()
        api = Api(web)
        try:
            job = await api.submit(
                {"url": site.url("/"), "max_depth": depth, "max_pages": len(expected) + 10}
            )
            done = await api.wait_job(job["id"], timeout=600, interval=0.05)
            if done["status"] != "completed":
                raise RuntimeError(f"crawl ended {done['status']}:\n{cluster.logs()}")
            urls = [item["url"] for item in await api.results(job["id"])]
        finally:
            await api.aclose()
        if len(urls) != len(set(urls)) or set(urls) != expected:
            raise RuntimeError(f"wrong results: {len(urls)} stored, {len(set(urls))} distinct")
        seconds = _elapsed(done)
        return Run(
            backend=backend,
            workers=workers,
            pages=len(urls),
            seconds=round(seconds, 3),
            pages_per_second=round(len(urls) / seconds, 1),
            max_concurrent=site.max_concurrent,
        )
    finally:
        cluster.close(grace=10)
        if pg_url is not None:
            pgdb.drop_database(pg_url)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000, help="pages in the site (+ home)")
    parser.add_argument("--fanout", type=int, default=10)
    parser.add_argument(
        "--page-delay", type=float, default=0.0, help="seconds the site waits per page (latency)"
    )
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite baseline")
    parser.add_argument("--concurrency", type=int, default=32, help="SCRAPER_CONCURRENCY")
    parser.add_argument("--per-host", type=int, default=32, help="SCRAPER_PER_HOST_CONCURRENCY")
    parser.add_argument("--parsers", type=int, default=1, help="SCRAPER_PARSER_PROCESSES")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the runs here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    reason = pgdb.unavailable_reason()
    if reason is not None:
        logger.error("%s", reason)
        return 2
    env = {
        "SCRAPER_CONCURRENCY": str(args.concurrency),
        "SCRAPER_PER_HOST_CONCURRENCY": str(args.per_host),
        "SCRAPER_PARSER_PROCESSES": str(args.parsers),
        "SCRAPER_LOG_LEVEL": "INFO",  # workers say "ready" at INFO
    }
    plan = [("postgresql", n) for n in args.workers]
    if not args.no_sqlite:
        plan.append(("sqlite", 1))
    runs: list[Run] = []
    with (
        tempfile.TemporaryDirectory(prefix="trawl-bench-") as tmp,
        Site(pages=args.pages, fanout=args.fanout, page_delay=args.page_delay) as site,
    ):
        for _ in range(args.repeat):
            for backend, workers in plan:
                run = await crawl_once(backend, workers, site, env, Path(tmp))
                logger.info(
                    "%-10s workers=%d pages=%d %.2fs %.1f pages/s (site peak %d in flight)",
                    run.backend,
                    run.workers,
                    run.pages,
                    run.seconds,
                    run.pages_per_second,
                    run.max_concurrent,
                )
                runs.append(run)
    if args.json:
        args.json.write_text(json.dumps([asdict(run) for run in runs], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
