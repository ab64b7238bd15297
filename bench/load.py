"""Trawl under API load, and Trawl's memory over a long crawl.

    python bench/load.py             # 100 clients for 30 s while a 2,000-page crawl runs
    python bench/load.py --memory    # crawl a 20,000-page site, RSS sampled every second

Load mode: each client loops (with a short think time) over polling the big job, polling
the small jobs it submitted, listing jobs, and submitting one-page jobs. Everything is
bounded: the clients stop after --duration seconds, every request has a timeout, and
the crawl is awaited for at most --timeout seconds. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import report
import trawl_runner
from measures import loop_lag, percentile
from procstat import TreeSampler
from server import free_port, port_is_free, serve
from sitegen import Site, ensure_site

SITE_PORT = 18480
MB = 1024 * 1024
FINAL = {"completed", "failed", "cancelled"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", action="store_true", help="the long-crawl memory mode")
    parser.add_argument("--pages", type=int, help="site size (load: 2000, memory: 20000)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of client load")
    parser.add_argument("--think-ms", type=float, default=100.0, help="pause between requests")
    parser.add_argument(
        "--submit-ratio",
        type=float,
        default=0.05,
        help="share of requests that submit a one-page job",
    )
    parser.add_argument(
        "--calibrate",
        type=float,
        default=5.0,
        help="seconds of the same clients against the static server first",
    )
    parser.add_argument("--concurrency", type=int, help="SCRAPER_CONCURRENCY for Trawl")
    parser.add_argument("--timeout", type=float, default=1800.0, help="max wait for the crawl")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--site-port", type=int, default=SITE_PORT)
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service (repeatable)",
    )
    parser.add_argument("--keep", action="store_true")
    return parser.parse_args(argv)


def _env(items: list[str]) -> dict[str, str]:
    # 100 clients on one address would otherwise mostly measure the rate limiter's 429s.
    env = {"SCRAPER_RATE_LIMIT_PER_MINUTE": "0", "SCRAPER_LOG_LEVEL": "WARNING"}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--env wants KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def _crawl_request(site: Site) -> dict[str, Any]:
    return {
        "url": site.url,
        "max_depth": 50,
        "max_pages": site.pages + 1000,
        "scope": "same-host",
        "formats": ["metadata", "text", "links"],
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# --- load mode --------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """What the clients saw, by request kind."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    small_jobs: list[str] = field(default_factory=list)
    sent: int = 0

    def record(self, kind: str, seconds: float, status: int, expected: int) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.statuses[f"{kind} {status}"] += 1
        if status == 429:
            return  # counted on its own: refusing politely is not failing
        if status != expected:
            self.errors[f"{kind} HTTP {status}"] += 1

    def all_latencies(self) -> list[float]:
        return [s for values in self.latencies.values() for s in values]

    def summary(self, seconds: float) -> dict[str, Any]:
        latencies = self.all_latencies()
        return {
            "requests": self.sent,
            "requests_per_s": round(len(latencies) / seconds, 1),
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "rate_limited": sum(v for k, v in self.statuses.items() if k.endswith(" 429")),
            "p50_ms": _ms(percentile(latencies, 50)),
            "p99_ms": _ms(percentile(latencies, 99)),
            "max_ms": _ms(max(latencies, default=None)),
            "by_kind": {
                kind: {
                    "count": len(values),
                    "p50_ms": _ms(percentile(values, 50)),
                    "p99_ms": _ms(percentile(values, 99)),
                }
                for kind, values in sorted(self.latencies.items())
            },
            "statuses": dict(self.statuses),
        }


@dataclass(frozen=True, slots=True)
class Call:
    """One request a client makes."""

    kind: str
    method: str
    url: str
    expected: int
    body: dict[str, Any] | None = None


class Mix:
    """Chooses each client's next request: mostly polling, some listing and submitting."""

    def __init__(self, big_job: str, page_urls: list[str], submit_ratio: float) -> None:
        self.big_job = big_job
        self.page_urls = page_urls
        self.submit_ratio = submit_ratio

    def next(self, rng: random.Random, own: list[str]) -> Call:
        roll = rng.random()
        if roll < self.submit_ratio:
            body = {"url": rng.choice(self.page_urls), "max_depth": 0, "formats": ["metadata"]}
            return Call("submit", "POST", "/v1/jobs", 202, body)
        if roll < self.submit_ratio + 0.10:
            return Call("list", "GET", "/v1/jobs?limit=20", 200)
        if own and roll < 0.40:
            return Call("poll-small", "GET", f"/v1/jobs/{own[-1]}", 200)
        return Call("poll-big", "GET", f"/v1/jobs/{self.big_job}", 200)


async def _client(
    client: httpx.AsyncClient,
    choose: Mix | Call,
    tally: Tally,
    deadline: float,
    think: float,
    rng: random.Random,
) -> None:
    own: list[str] = []
    while time.monotonic() < deadline:
        call = choose.next(rng, own) if isinstance(choose, Mix) else choose
        started = time.perf_counter()
        tally.sent += 1
        try:
            response = await client.request(call.method, call.url, json=call.body)
        except httpx.HTTPError as exc:
            tally.errors[f"{call.kind} {type(exc).__name__}"] += 1
        else:
            tally.record(
                call.kind, time.perf_counter() - started, response.status_code, call.expected
            )
            if call.kind == "submit" and response.status_code == 202:
                own.append(response.json()["id"])
                tally.small_jobs.append(own[-1])
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))


async def _drive(
    clients: list[httpx.AsyncClient], choose: Mix | Call, seconds: float, args: argparse.Namespace
) -> tuple[Tally, float]:
    """Run every client for `seconds`; return what they saw and how long it took."""
    tally = Tally()
    rngs = [random.Random(f"load/{args.seed}/{n}") for n in range(len(clients))]
    deadline = time.monotonic() + seconds
    began = time.monotonic()
    # Clients stop themselves at the deadline; the outer bound covers a hung request.
    async with asyncio.timeout(seconds + 30):
        await asyncio.gather(
            *(
                _client(client, choose, tally, deadline, args.think_ms / 1000, rng)
                for client, rng in zip(clients, rngs, strict=True)
            )
        )
    return tally, time.monotonic() - began


async def _wait_job(client: httpx.AsyncClient, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/jobs/{job_id}")
        if response.status_code == 200:
            job = response.json()
            if job["status"] in FINAL:
                break
        await asyncio.sleep(0.5)
    return job


async def _small_job_outcomes(client: httpx.AsyncClient, ids: list[str]) -> Counter[str]:
    limit = asyncio.Semaphore(8)

    async def status(job_id: str) -> str:
        async with limit:
            try:
                response = await client.get(f"/v1/jobs/{job_id}")
            except httpx.HTTPError as exc:
                return type(exc).__name__
            if response.status_code != 200:
                return str(response.status_code)
            return str(response.json()["status"])

    return Counter(await asyncio.gather(*(status(j) for j in ids)))


async def _load(base_url: str, site: Site, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    # One client (one connection) per simulated user: a shared httpx client slows down as
    # its in-flight requests grow, which would be measured as Trawl's latency. No TLS here,
    # so verify=False just skips loading CA certificates 100 times.
    clients = [
        httpx.AsyncClient(base_url=base_url, timeout=10.0, trust_env=False, verify=False)
        for _ in range(args.clients)
    ]
    control = clients[0]
    try:
        # The load generator shares two cores with Trawl: measure its own floor first by
        # running the same clients against the static server.
        floor, floor_seconds = await _drive(
            clients,
            Call("static", "GET", f"{site.origin}/robots.txt", 200),
            args.calibrate,
            args,
        )
        metrics_before = (await control.get("/metrics")).text
        response = await control.post("/v1/jobs", json=_crawl_request(site))
        response.raise_for_status()
        big_job = response.json()["id"]
        crawl_started = time.monotonic()
        sampler = TreeSampler(pid, interval=0.25).start()
        page_urls = [site.url] + [f"{site.origin}/sec-{k:02d}/" for k in range(1, 13)]
        mix = Mix(big_job, page_urls, args.submit_ratio)
        tally, load_seconds = await _drive(clients, mix, args.duration, args)
        metrics_during = (await control.get("/metrics")).text
        job = await _wait_job(control, big_job, args.timeout)
        crawl_seconds = time.monotonic() - crawl_started
        sampler.stop()
        small = await _small_job_outcomes(control, tally.small_jobs)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    lag = loop_lag(metrics_before, metrics_during, trawl_runner.LAG_METRIC)
    floor_summary = floor.summary(floor_seconds)
    return {
        "clients": args.clients,
        "think_ms": args.think_ms,
        "duration_s": round(load_seconds, 1),
        **tally.summary(load_seconds),
        "client_floor": {
            key: floor_summary[key] for key in ("requests_per_s", "p50_ms", "p99_ms", "errors")
        },
        "small_jobs": {"submitted": len(tally.small_jobs), "final_status": dict(small)},
        "loop_lag_during_load_ms": None
        if lag is None
        else {"p50": lag.p50_ms, "p99": lag.p99_ms, "mean": lag.mean_ms},
        "crawl": {
            "status": job.get("status"),
            "stats": job.get("stats"),
            "seconds_incl_wait": round(crawl_seconds, 1),
        },
        "peak_rss_mb": round(sampler.peak_rss / MB, 1),
        "peak_pss_mb": round(sampler.peak_pss / MB, 1),
    }


def _print_load(result: dict[str, Any]) -> None:
    print(
        f"\n{result['clients']} clients for {result['duration_s']} s against a "
        f"{result['site_pages']}-page crawl"
    )
    print("\n| requests | req/s | errors | 429s | p50 ms | p99 ms | max ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {result['requests']} | {result['requests_per_s']} | {result['errors']} "
        f"| {result['rate_limited']} | {result['p50_ms']} | {result['p99_ms']} "
        f"| {result['max_ms']} |"
    )
    print("\n| request kind | count | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for kind, row in result["by_kind"].items():
        print(f"| {kind} | {row['count']} | {row['p50_ms']} | {row['p99_ms']} |")
    print()
    if result["error_kinds"]:
        print(f"- errors: {result['error_kinds']}")
    floor = result["client_floor"]
    print(
        f"- load generator's own floor (same clients against the static server): "
        f"{floor['requests_per_s']} req/s, p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms"
    )
    print(f"- small jobs: {result['small_jobs']}")
    print(f"- big crawl: {result['crawl']}")
    print(f"- event-loop lag during load (ms): {result['loop_lag_during_load_ms']}")
    print(f"- peak RSS {result['peak_rss_mb']} MB (PSS {result['peak_pss_mb']} MB)")


# --- memory mode ------------------------------------------------------------------------


def _memory(base_url: str, site: Site, pid: int, timeout: float) -> dict[str, Any]:
    series: list[dict[str, float]] = []
    sampler = TreeSampler(pid, interval=1.0).start()
    with httpx.Client(base_url=base_url, timeout=30.0, trust_env=False) as client:
        response = client.post("/v1/jobs", json=_crawl_request(site))
        response.raise_for_status()
        job = response.json()
        started = time.monotonic()
        while job["status"] not in FINAL and time.monotonic() - started < timeout:
            time.sleep(1.0)
            polled = client.get(f"/v1/jobs/{job['id']}")
            if polled.status_code == 200:
                job = polled.json()
            last = sampler.samples[-1] if sampler.samples else None
            if last is not None:
                series.append(
                    {
                        "t": round(time.monotonic() - started, 1),
                        "rss_mb": round(last.rss_bytes / MB, 1),
                        "pss_mb": round(last.pss_bytes / MB, 1),
                        "pages": job["stats"]["pages_fetched"],
                    }
                )
        sampler.stop()
        if job["status"] not in FINAL:
            client.delete(f"/v1/jobs/{job['id']}")
    rss = [point["rss_mb"] for point in series]
    half = len(rss) // 2
    first, second = max(rss[:half], default=0.0), max(rss[half:], default=0.0)
    return {
        "status": job["status"],
        "stats": job["stats"],
        "seconds": round(time.monotonic() - started, 1),
        "samples": len(series),
        "peak_rss_mb": max(rss, default=0.0),
        "peak_pss_mb": max((p["pss_mb"] for p in series), default=0.0),
        "first_half_max_mb": first,
        "second_half_max_mb": second,
        "growth": round(second / first, 3) if first else None,
        # Flat: the second half never climbs more than 10 % above the first half's peak.
        "flat": bool(first) and second <= first * 1.10,
        "series": series,
    }


def _print_memory(result: dict[str, Any]) -> None:
    print(
        f"\nRSS of the Trawl process tree, every second ({result['samples']} samples), "
        f"MB [pages fetched]:"
    )
    row: list[str] = []
    for point in result["series"]:
        row.append(f"{point['t']:>6.0f}s {point['rss_mb']:>7.1f} [{point['pages']}]")
        if len(row) == 5:
            print("  ".join(row))
            row = []
    if row:
        print("  ".join(row))
    print(f"\n- crawl {result['status']}: {result['stats']} in {result['seconds']} s")
    print(
        f"- peak RSS {result['peak_rss_mb']} MB (PSS {result['peak_pss_mb']} MB); "
        f"max first half {result['first_half_max_mb']} MB, second half "
        f"{result['second_half_max_mb']} MB, ratio {result['growth']}: "
        f"{'flat' if result['flat'] else 'GROWING'}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pages = args.pages or (20_000 if args.memory else 2_000)
    port = args.site_port if port_is_free(args.site_port) else free_port()
    site = ensure_site(pages, args.seed, f"http://127.0.0.1:{port}")
    options = trawl_runner.TrawlOptions(
        python=args.python, concurrency=args.concurrency, extra_env=_env(args.env)
    )
    workdir = Path(tempfile.mkdtemp(prefix="trawl-load-"))
    try:
        with (
            serve(site.root, port, prefer_nginx=not args.no_nginx) as server,
            trawl_runner.service(options, workdir) as running,
        ):
            print(
                f"site {site.url} ({site.pages} pages, {server.kind}); Trawl at {running.base_url}",
                file=sys.stderr,
            )
            if args.memory:
                result = _memory(running.base_url, site, running.process.pid, args.timeout)
            else:
                result = asyncio.run(_load(running.base_url, site, running.process.pid, args))
        result["site_pages"] = site.pages
        result["service_exit_code"] = running.exit_code
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.memory:
        _print_memory(result)
    else:
        _print_load(result)
    mode = "memory" if args.memory else "load"
    path = report.result_path(f"{mode}-{time.strftime('%Y%m%dT%H%M%S')}")
    path.write_text(json.dumps({"args": vars(args), **result}, indent=2) + "\n")
    print(f"\nresults: {path}")
    if args.memory:
        return 0 if result["status"] == "completed" and result["flat"] else 1
    return 0 if result["errors"] == 0 and result["crawl"]["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
