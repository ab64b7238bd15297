"""One run's numbers, the side-by-side table and the results file."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measures import median

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024


@dataclass(slots=True, kw_only=True)
class Coverage:
    """How a crawl's output compares with the pages the site should yield."""

    records: int = 0  # result lines / feed items
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    expected: int = 0
    matched: int = 0  # expected pages present with an ok result
    unexpected: int = 0  # ok results for URLs outside the expected set
    duplicates: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.matched == self.expected and self.unexpected == 0 and not self.duplicates


@dataclass(slots=True, kw_only=True)
class RunResult:
    """One crawl by one system."""

    system: str
    run: int
    pages: int = 0
    seconds: float | None = None  # the crawl itself (job started..finished, spider open..close)
    wall_seconds: float | None = None  # submit..seen completed / process start..exit
    cpu_seconds: float | None = None  # CPU of the process tree during the crawl
    peak_rss_bytes: int = 0  # sum over the process tree
    peak_pss_bytes: int = 0  # the same with shared pages split between processes
    lag_p50_ms: float | None = None
    lag_p99_ms: float | None = None
    lag_source: str = "n/a"
    poll_p50_ms: float | None = None
    poll_p99_ms: float | None = None
    polls: int = 0
    coverage: Coverage = field(default_factory=Coverage)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def pages_per_s(self) -> float | None:
        return self.pages / self.seconds if self.seconds else None

    @property
    def cpu_ms_per_page(self) -> float | None:
        return self.cpu_seconds / self.pages * 1000 if self.cpu_seconds and self.pages else None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["pages_per_s"] = self.pages_per_s
        data["cpu_ms_per_page"] = self.cpu_ms_per_page
        data["coverage"]["complete"] = self.coverage.complete
        return data


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _pair(a: float | None, b: float | None, digits: int = 1) -> str:
    if a is None and b is None:
        return "n/a"
    return f"{_fmt(a, digits)} / {_fmt(b, digits)}"


def _agg(runs: Sequence[RunResult], get: Callable[[RunResult], float | None]) -> float | None:
    return median(get(r) for r in runs)


def summarise(runs: Sequence[RunResult]) -> dict[str, dict[str, float | None]]:
    """Median of each metric per system, over the runs that did not fail."""
    summary: dict[str, dict[str, float | None]] = {}
    for system in dict.fromkeys(r.system for r in runs):
        good = [r for r in runs if r.system == system and r.error is None]
        summary[system] = {
            "runs": len(good),
            "pages": _agg(good, lambda r: r.pages),
            "seconds": _agg(good, lambda r: r.seconds),
            "pages_per_s": _agg(good, lambda r: r.pages_per_s),
            "cpu_ms_per_page": _agg(good, lambda r: r.cpu_ms_per_page),
            "peak_rss_mb": _agg(good, lambda r: r.peak_rss_bytes / MB),
            "peak_pss_mb": _agg(good, lambda r: r.peak_pss_bytes / MB),
            "lag_p50_ms": _agg(good, lambda r: r.lag_p50_ms),
            "lag_p99_ms": _agg(good, lambda r: r.lag_p99_ms),
            "poll_p50_ms": _agg(good, lambda r: r.poll_p50_ms),
            "poll_p99_ms": _agg(good, lambda r: r.poll_p99_ms),
        }
    return summary


def table(runs: Sequence[RunResult]) -> str:
    """The markdown table: one row per system (medians), plus one per run when repeated."""
    summary = summarise(runs)
    trawl = summary.get("Trawl", {}).get("pages_per_s")
    scrapy = summary.get("Scrapy", {}).get("pages_per_s")
    ratio = f"{trawl / scrapy:.2f}" if trawl and scrapy else "n/a"
    lines = [
        "| system | pages | seconds | pages/s | CPU ms/page | peak RSS MB | peak PSS MB "
        "| loop lag p50/p99 ms | status poll p50/p99 ms | Trawl/Scrapy pages/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for system, s in summary.items():
        repeated = sum(1 for r in runs if r.system == system) > 1
        label = f"{system} (median of {int(s['runs'] or 0)})" if repeated else system
        lines.append(
            f"| {label} | {_fmt(s['pages'], 0)} | {_fmt(s['seconds'])} | {_fmt(s['pages_per_s'])} "
            f"| {_fmt(s['cpu_ms_per_page'], 2)} | {_fmt(s['peak_rss_mb'], 0)} "
            f"| {_fmt(s['peak_pss_mb'], 0)} | {_pair(s['lag_p50_ms'], s['lag_p99_ms'])} "
            f"| {_pair(s['poll_p50_ms'], s['poll_p99_ms']) if system == 'Trawl' else '—'} "
            f"| {ratio if system == 'Trawl' else '—'} |"
        )
    if any(sum(1 for r in runs if r.system == s) > 1 for s in summary):
        for r in runs:
            lines.append(
                f"| {r.system} #{r.run} | {r.pages:,} | {_fmt(r.seconds)} | {_fmt(r.pages_per_s)} "
                f"| {_fmt(r.cpu_ms_per_page, 2)} | {r.peak_rss_bytes / MB:,.0f} "
                f"| {r.peak_pss_bytes / MB:,.0f} | {_pair(r.lag_p50_ms, r.lag_p99_ms)} "
                f"| {_pair(r.poll_p50_ms, r.poll_p99_ms) if r.system == 'Trawl' else '—'} | |"
            )
    return "\n".join(lines)


def coverage_lines(runs: Sequence[RunResult]) -> list[str]:
    """One line per run saying whether every expected page came back."""
    out = []
    for r in runs:
        c = r.coverage
        verdict = "complete" if c.complete else "INCOMPLETE"
        errors = ", ".join(f"{k}={v}" for k, v in sorted(c.errors.items())) or "none"
        out.append(
            f"{r.system} #{r.run}: {verdict}: {c.matched}/{c.expected} expected pages ok; "
            f"{c.records} records (ok {c.ok}, failed {c.failed}, skipped {c.skipped}), "
            f"unexpected {c.unexpected}, duplicates {c.duplicates}; error codes: {errors}"
            + (f"; RUN ERROR: {r.error}" if r.error else "")
        )
    return out


def result_path(stem: str, directory: Path = RESULTS_DIR) -> Path:
    """A new file in `directory` named after `stem`, never one another run just wrote."""
    directory.mkdir(parents=True, exist_ok=True)
    path, n = directory / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}.json"
    return path


def write(runs: Sequence[RunResult], meta: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write bench/results/<timestamp>.json and return its path."""
    path = result_path(time.strftime("%Y%m%dT%H%M%S"), directory)
    data = {"meta": meta, "summary": summarise(runs), "runs": [r.to_json() for r in runs]}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
