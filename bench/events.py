"""Does watching a crawl slow it down? `python bench/events.py [--streams 200]`.

Crawls the generated site with Trawl (`python -m service`), alternating runs with no event
streams and runs with `--streams` clients holding `GET /v1/jobs/{id}/events` open for the
whole crawl (in a separate reader process, as remote dashboards would be). Prints pages/s
and the event loop's lag (the service's own histogram, over the crawl) for each kind of
run, their medians, and how many events the readers received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import trawl_runner
from report import RunResult
from server import free_port, port_is_free, serve
from sitegen import ensure_site

SITE_PORT = 18480  # the cached site's links name this port (see run.py)


async def _reader(client: httpx.AsyncClient, path: str, counts: list[int]) -> None:
    async with client.stream("GET", path, timeout=None) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("event: job"):
                counts[0] += 1


async def _watch(base_url: str, streams: int, report: Any) -> None:
    """Wait for the next active job, hold `streams` event streams on it until they end."""
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, trust_env=False) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                jobs = (await client.get("/v1/jobs", params={"limit": 1})).json()["items"]
            except httpx.HTTPError:
                jobs = []
            if jobs and jobs[0]["status"] in ("queued", "running"):
                break
            await asyncio.sleep(0.01)
        else:
            report.put({"error": "no job appeared"})
            return
        path = f"/v1/jobs/{jobs[0]['id']}/events"
        counts = [0]
        opened = time.monotonic()
        results = await asyncio.gather(
            *(_reader(client, path, counts) for _ in range(streams)), return_exceptions=True
        )
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        report.put(
            {
                "events": counts[0],
                "streams": streams,
                "errors": errors[:3],
                "seconds": time.monotonic() - opened,
            }
        )


def _reader_process(base_url: str, streams: int, report: Any) -> None:
    asyncio.run(_watch(base_url, streams, report))


def _one_run(
    site: Any, workdir: Path, run: int, streams: int, options: trawl_runner.TrawlOptions
) -> tuple[RunResult, dict[str, Any] | None]:
    rundir = workdir / f"run-{run}-{streams}"
    rundir.mkdir()
    with trawl_runner.service(options, rundir) as running:
        reader = None
        report: Any = multiprocessing.Queue()
        if streams:
            reader = multiprocessing.Process(
                target=_reader_process, args=(running.base_url, streams, report)
            )
            reader.start()
        result = trawl_runner.crawl(running, site, run=run)
        watched = None
        if reader is not None:
            reader.join(60)
            watched = report.get(timeout=5) if not reader.is_alive() else {"error": "hung"}
            if reader.is_alive():
                reader.kill()
    return result, watched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (alternated)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    port = SITE_PORT if port_is_free(SITE_PORT) else free_port()
    site = ensure_site(args.pages, args.seed, f"http://127.0.0.1:{port}")
    options = trawl_runner.TrawlOptions(
        extra_env={"SCRAPER_RATE_LIMIT_PER_MINUTE": "0", "SCRAPER_LOG_LEVEL": "WARNING"}
    )
    rows: dict[int, list[tuple[RunResult, dict[str, Any] | None]]] = {0: [], args.streams: []}
    with tempfile.TemporaryDirectory(prefix="trawl-events-") as tmp, serve(site.root, port):
        for run in range(1, args.repeat + 1):
            for streams in (0, args.streams):
                result, watched = _one_run(site, Path(tmp), run, streams, options)
                rows[streams].append((result, watched))
                rate = result.pages / result.seconds if result.seconds else 0.0
                print(
                    f"run {run} streams={streams}: {result.pages} pages, {rate:.0f} pages/s, "
                    f"lag p99 {result.lag_p99_ms or 0:.1f} ms, "
                    f"CPU {result.cpu_seconds or 0:.1f} s"
                    + (f", readers: {json.dumps(watched)}" if watched else "")
                    + (f"  ERROR {result.error}" if result.error else ""),
                    file=sys.stderr,
                )
    print(f"\n{args.pages}-page site, {args.repeat} runs each, alternated\n")
    print(
        "| streams | pages/s (median) | runs | lag p99 ms (median) | runs "
        "| service CPU s per 1000 pages (median) |"
    )
    print("|---|---|---|---|---|---|")
    medians = {}
    for streams, results in rows.items():
        rates = [r.pages / r.seconds for r, _ in results if r.seconds]
        lags = [r.lag_p99_ms for r, _ in results if r.lag_p99_ms is not None]
        medians[streams] = statistics.median(rates) if rates else 0.0
        lag = statistics.median(lags) if lags else 0.0
        cpu = [r.cpu_seconds / r.pages * 1000 for r, _ in results if r.cpu_seconds and r.pages]
        print(
            f"| {streams} | {medians[streams]:.0f} | {', '.join(f'{x:.0f}' for x in rates)} | "
            f"{lag:.1f} | {', '.join(f'{x:.1f}' for x in lags)} | "
            f"{statistics.median(cpu) if cpu else 0:.2f} |"
        )
    if medians[0]:
        change = (medians[args.streams] - medians[0]) / medians[0] * 100
        print(f"\npages/s with {args.streams} streams vs none: {change:+.1f}%")
    ok = all(r.error is None for results in rows.values() for r, _ in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
