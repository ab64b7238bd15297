"""Trawl vs Scrapy on the same generated site, side by side: `python bench/run.py`.

Generates (or reuses) a deterministic site, serves it on 127.0.0.1 (nginx when on PATH,
else an asyncio sendfile server), then crawls it with Trawl (`python -m service`, driven
only through its HTTP API) and with Scrapy (its own virtualenv), and prints one markdown
table. Results also go to bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import report
import scrapy_runner
import trawl_runner
from report import RunResult
from server import free_port, install_nginx, port_is_free, serve
from sitegen import ensure_site

SITE_PORT = 18480  # fixed so the cached site's absolute links stay valid


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=3000, help="site size (default 3000)")
    parser.add_argument("--only", choices=("trawl", "scrapy"), help="run one system only")
    parser.add_argument("--concurrency", type=int, help="SCRAPER_CONCURRENCY for Trawl")
    parser.add_argument("--repeat", type=int, default=1, help="runs per system (medians shown)")
    parser.add_argument("--keep", action="store_true", help="keep temp dirs (db, logs, feeds)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--site-port", type=int, default=SITE_PORT)
    parser.add_argument(
        "--install-nginx", action="store_true", help="apt-get install nginx if it is not on PATH"
    )
    parser.add_argument("--no-nginx", action="store_true", help="use the asyncio server")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the service")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service (repeatable)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="per crawl, seconds")
    return parser.parse_args(argv)


def _site_port(preferred: int) -> int:
    if port_is_free(preferred):
        return preferred
    port = free_port()
    print(
        f"port {preferred} is busy; serving on {port} (the site is generated anew for it)",
        file=sys.stderr,
    )
    return port


def _git_revision() -> str:
    probe = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=trawl_runner.REPO,
        check=False,
    )
    return probe.stdout.strip() or "unknown"


def _service_env(args: argparse.Namespace) -> dict[str, str]:
    # Polling every 50 ms is 1,200 requests a minute: above the default rate limit.
    env = {"SCRAPER_RATE_LIMIT_PER_MINUTE": "0", "SCRAPER_LOG_LEVEL": "WARNING"}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--env wants KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    systems = [args.only] if args.only else ["trawl", "scrapy"]
    port = _site_port(args.site_port)
    began = time.monotonic()
    site = ensure_site(args.pages, args.seed, f"http://127.0.0.1:{port}")
    print(
        f"site: {site.pages} pages, max depth {site.max_depth}, {site.root} "
        f"({time.monotonic() - began:.1f}s)",
        file=sys.stderr,
    )
    if args.install_nginx and not args.no_nginx and not install_nginx():
        print("nginx install failed; using the asyncio server", file=sys.stderr)
    if "scrapy" in systems:
        scrapy_runner.ensure_venv()
    options = trawl_runner.TrawlOptions(
        python=args.python, concurrency=args.concurrency, extra_env=_service_env(args)
    )
    workdir = Path(tempfile.mkdtemp(prefix="trawl-bench-"))
    runs: list[RunResult] = []
    meta: dict[str, Any] = {
        "args": vars(args),
        "site": site.manifest,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "trawl_revision": _git_revision(),
        "trawl_env": options.extra_env,
    }
    try:
        with serve(site.root, port, prefer_nginx=not args.no_nginx) as server:
            meta["server"] = server.kind
            print(f"serving {site.url} with {server.kind}", file=sys.stderr)
            for run in range(1, args.repeat + 1):
                for system in systems:
                    print(f"run {run}/{args.repeat}: {system}...", file=sys.stderr)
                    result = _run_one(system, site, workdir, run, options, args.timeout)
                    runs.append(result)
                    print(
                        f"  {result.pages} pages in {result.seconds or 0:.1f}s"
                        + (f"  ERROR: {result.error}" if result.error else ""),
                        file=sys.stderr,
                    )
        if "scrapy" in systems:
            meta["scrapy_version"] = scrapy_runner.scrapy_version(scrapy_runner.venv_python())
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        f"{site.pages}-page site, {meta.get('server')} server, {os.cpu_count()} CPUs, "
        f"Trawl {meta['trawl_revision']}, Scrapy {meta.get('scrapy_version', '-')}"
    )
    print()
    print(report.table(runs))
    print()
    for line in report.coverage_lines(runs):
        print(f"- {line}")
    for r in runs:
        wall = f"{r.pages / r.wall_seconds:.1f} pages/s" if r.wall_seconds else "n/a"
        span = "POST to completed seen" if r.system == "Trawl" else "process start to exit"
        print(f"- {r.system} #{r.run} wall clock, {span}: {r.wall_seconds or 0:.1f} s ({wall})")
        if split := r.details.get("cpu_seconds_by_process"):
            parts = ", ".join(f"{name} {cpu:.1f}" for name, cpu in split.items())
            print(f"  CPU seconds by process: {parts}")
    lag_sources = {r.system: r.lag_source for r in runs}
    print("- loop lag: " + "; ".join(f"{k}: {v}" for k, v in lag_sources.items()))
    path = report.write(runs, meta)
    print(f"\nresults: {path}")
    return 0 if all(r.error is None and r.coverage.complete for r in runs) else 1


def _run_one(
    system: str,
    site: Any,
    workdir: Path,
    run: int,
    options: trawl_runner.TrawlOptions,
    timeout: float,
) -> RunResult:
    if system == "scrapy":
        return scrapy_runner.crawl(site, workdir, run=run, timeout=timeout)
    rundir = workdir / f"trawl-{run}"
    rundir.mkdir()
    try:
        with trawl_runner.service(options, rundir) as running:
            result = trawl_runner.crawl(running, site, run=run, timeout=timeout)
        result.details["exit_code"] = running.exit_code
        if running.exit_code != 0:
            result.details["log_tail"] = running.log_tail()
        return result
    except (RuntimeError, TimeoutError, OSError, httpx.HTTPError) as exc:
        return RunResult(system="Trawl", run=run, error=str(exc)[-3000:])


if __name__ == "__main__":
    sys.exit(main())
