"""Run Trawl as a subprocess and drive one crawl through its public HTTP API."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from measures import loop_lag, parse_prometheus, percentile
from procstat import TreeSampler, cpu_by_process, read_tree
from report import Coverage, RunResult
from server import free_port, stop_process
from sitegen import Site, canonical, expected_urls

REPO = Path(__file__).resolve().parent.parent
LAG_METRIC = "trawl_event_loop_lag_seconds"
FINAL = {"completed", "failed", "cancelled"}


@dataclass(frozen=True, slots=True, kw_only=True)
class TrawlOptions:
    """How to start the service."""

    python: str = sys.executable
    repo: Path = REPO
    concurrency: int | None = None
    per_host_concurrency: int = 64
    extra_env: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = 60.0


@dataclass(slots=True)
class TrawlService:
    """A running `python -m service`."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    exit_code: int | None = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def service(options: TrawlOptions, workdir: Path) -> Iterator[TrawlService]:
    """Start Trawl on a free port with a fresh database; SIGTERM it on exit."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{(workdir / 'bench.db').resolve()}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SCRAPER_ALLOW_PRIVATE_NETWORKS": "1",
        "SCRAPER_PER_HOST_CONCURRENCY": str(options.per_host_concurrency),
        **({"SCRAPER_CONCURRENCY": str(options.concurrency)} if options.concurrency else {}),
        **options.extra_env,
    }
    log_path = workdir / "trawl.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [options.python, "-m", "service"],
            cwd=options.repo,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        running = TrawlService(f"http://127.0.0.1:{port}", process, log_path)
        try:
            _wait_healthy(running, options.startup_timeout)
            yield running
        finally:
            # A clean SIGTERM exit (code 0) is part of the contract; record it.
            running.exit_code = stop_process(process, grace=35.0)


def _wait_healthy(running: TrawlService, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=running.base_url, timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                raise RuntimeError(
                    f"service exited with {running.process.returncode}:\n{running.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/health").status_code == 200:
                    return
            time.sleep(0.1)
    raise TimeoutError(f"/health not 200 after {timeout:.0f}s:\n{running.log_tail()}")


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _metrics(client: httpx.Client) -> str | None:
    try:
        response = client.get("/metrics")
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def crawl(
    running: TrawlService,
    site: Site,
    *,
    run: int,
    max_pages: int | None = None,
    timeout: float = 1800.0,
    poll_interval: float = 0.05,
) -> RunResult:
    """Submit one crawl of `site`, poll it to the end and measure the service meanwhile."""
    result = RunResult(system="Trawl", run=run)
    request = {
        "url": site.url,
        "max_depth": 50,
        "max_pages": max_pages or site.pages + 1000,
        "scope": "same-host",
        "formats": ["metadata", "text", "links"],
    }
    sampler = TreeSampler(running.process.pid, interval=0.1).start()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    with httpx.Client(base_url=running.base_url, timeout=30.0, trust_env=False) as client:
        metrics_before = _metrics(client)
        cpu_before = read_tree(running.process.pid, with_pss=False).cpu_seconds
        per_process_before = cpu_by_process(running.process.pid)
        submitted = time.monotonic()
        response = client.post("/v1/jobs", json=request)
        if response.status_code != 202:
            sampler.stop()
            result.error = f"POST /v1/jobs -> {response.status_code}: {response.text[:500]}"
            return result
        job: dict[str, Any] = response.json()
        deadline = submitted + timeout
        while job["status"] not in FINAL and time.monotonic() < deadline:
            time.sleep(poll_interval)
            started = time.perf_counter()
            try:
                poll = client.get(f"/v1/jobs/{job['id']}")
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[str(poll.status_code)] += 1
            if poll.status_code == 200:
                job = poll.json()
        seen_final = time.monotonic()
        cpu_after = read_tree(running.process.pid, with_pss=False).cpu_seconds
        per_process_after = cpu_by_process(running.process.pid)
        metrics_after = _metrics(client)
        sampler.stop()
        if job["status"] not in FINAL:
            client.delete(f"/v1/jobs/{job['id']}")
            result.error = f"job still {job['status']} after {timeout:.0f}s"
        elif job["status"] != "completed":
            result.error = f"job {job['status']}: {job.get('error')}"
        result.coverage = _coverage(client, job["id"], expected_urls(site))

    stats = job.get("stats", {})
    result.pages = int(stats.get("pages_fetched", 0))
    if job.get("started_at") and job.get("finished_at"):
        window = _timestamp(job["finished_at"]) - _timestamp(job["started_at"])
        result.seconds = window.total_seconds()
    result.wall_seconds = seen_final - submitted
    result.cpu_seconds = cpu_after - cpu_before
    result.peak_rss_bytes = sampler.peak_rss
    result.peak_pss_bytes = sampler.peak_pss
    if metrics_after is not None and (lag := loop_lag(metrics_before, metrics_after, LAG_METRIC)):
        result.lag_p50_ms, result.lag_p99_ms = lag.p50_ms, lag.p99_ms
        result.lag_source = f"{LAG_METRIC} {lag.source}, {lag.count} probes"
        result.details["lag_mean_ms"] = lag.mean_ms
    result.polls = len(latencies)
    result.poll_p50_ms = _ms(percentile(latencies, 50))
    result.poll_p99_ms = _ms(percentile(latencies, 99))
    result.details.update(
        job_id=job["id"],
        status=job["status"],
        stats=stats,
        poll_status_codes=dict(statuses),
        poll_max_ms=_ms(max(latencies, default=None)),
        processes=max((s.processes for s in sampler.samples), default=0),
        fetch_metrics=_histogram_means(metrics_before, metrics_after),
        cpu_seconds_by_process=_cpu_split(
            running.process.pid, per_process_before, per_process_after
        ),
    )
    return result


def _cpu_split(
    root: int,
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
) -> dict[str, float]:
    """CPU seconds each process of the tree spent during the crawl: where the time went."""
    split: dict[str, float] = {}
    for pid, (command, cpu) in sorted(after.items()):
        if pid == root:
            label = "service"
        elif "resource_tracker" in command:
            label = f"resource tracker {pid}"
        elif "multiprocessing" in command:
            label = f"worker process {pid}"  # the parser pool's processes
        else:
            label = f"child {pid}: {command[:40]}"
        split[label] = round(cpu - before.get(pid, ("", 0.0))[1], 2)
    return split


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _coverage(client: httpx.Client, job_id: str, expected: set[str]) -> Coverage:
    coverage = Coverage(expected=len(expected))
    ok_urls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    with client.stream("GET", f"/v1/jobs/{job_id}/results.ndjson") as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.strip():
                continue
            page = json.loads(line)
            coverage.records += 1
            if page.get("error"):
                errors[page["error"].get("code", "?")] += 1
            else:
                ok_urls[canonical(page["url"])] += 1
    for outcome in ("failed", "skipped"):
        with client.stream(
            "GET", f"/v1/jobs/{job_id}/results.ndjson", params={"outcome": outcome}
        ) as response:
            count = sum(1 for line in response.iter_lines() if line.strip())
            setattr(coverage, outcome, count if response.status_code == 200 else -1)
    coverage.ok = sum(ok_urls.values())
    coverage.matched = len(expected & ok_urls.keys())
    coverage.unexpected = len(ok_urls.keys() - expected)
    coverage.duplicates = sum(n - 1 for n in ok_urls.values() if n > 1)
    coverage.errors = dict(errors)
    return coverage


def _histogram_means(before: str | None, after: str | None) -> dict[str, float | None]:
    """Mean fetch and parse time over the crawl, where Trawl exports them (diagnostics)."""
    if after is None:
        return {}
    start = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for s in parse_prometheus(before or "")
    }
    end = parse_prometheus(after)
    means: dict[str, float | None] = {}
    for s in end:
        if s.name.endswith("_seconds_sum") and not s.labels:
            base = s.name[: -len("_sum")]
            count = next((c.value for c in end if c.name == f"{base}_count" and not c.labels), 0)
            d_count = count - start.get((f"{base}_count", ()), 0.0)
            d_sum = s.value - start.get((s.name, ()), 0.0)
            means[f"{base}_mean_ms"] = d_sum / d_count * 1000 if d_count else None
    return means
