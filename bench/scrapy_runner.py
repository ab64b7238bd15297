"""Run the Scrapy baseline (scrapy_spider.py) in its own virtualenv and measure it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from procstat import TreeSampler
from report import Coverage, RunResult
from sitegen import Site, canonical, expected_urls

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-scrapy"
SPIDER = BENCH / "scrapy_spider.py"
# start() (2.13) replaced start_requests(); the spider uses it.
REQUIREMENT = "scrapy>=2.13"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> Path:
    """Create bench/.venv-scrapy with Scrapy on first use; return its python."""
    python = venv_python()
    if python.exists():
        probe = subprocess.run([python, "-c", "import scrapy"], capture_output=True, check=False)
        if probe.returncode == 0:
            return python
    print(f"installing {REQUIREMENT} into {VENV} (first run only)...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REQUIREMENT],
        check=True,
    )
    return python


def scrapy_version(python: Path) -> str:
    probe = subprocess.run(
        [python, "-c", "import scrapy, twisted; print(scrapy.__version__, twisted.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip()


def crawl(
    site: Site, workdir: Path, *, run: int, concurrency: int = 64, timeout: float = 1800.0
) -> RunResult:
    """Crawl `site` with Scrapy; numbers come from the spider's report and /proc sampling."""
    python = ensure_venv()
    result = RunResult(system="Scrapy", run=run, lag_source="10 ms asyncio sleep probe")
    items, report_path = workdir / f"scrapy-{run}.jsonl", workdir / f"scrapy-{run}.report.json"
    log_path = workdir / f"scrapy-{run}.log"
    items.unlink(missing_ok=True)
    command = [
        str(python),
        str(SPIDER),
        "--url",
        site.url,
        "--out",
        str(items),
        "--report",
        str(report_path),
        "--concurrency",
        str(concurrency),
    ]
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        sampler = TreeSampler(process.pid, interval=0.1).start()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            result.error = f"scrapy still running after {timeout:.0f}s"
        finally:
            sampler.stop()
    result.wall_seconds = time.monotonic() - started
    result.peak_rss_bytes = sampler.peak_rss
    result.peak_pss_bytes = sampler.peak_pss
    if not report_path.exists():
        tail = log_path.read_text(errors="replace")[-3000:]
        result.error = result.error or f"scrapy exited {process.returncode}:\n{tail}"
        return result
    report = json.loads(report_path.read_text())
    result.pages = int(report["pages"])
    result.seconds = report["seconds"]
    result.cpu_seconds = report["cpu_seconds"]
    result.lag_p50_ms, result.lag_p99_ms = report["lag_p50_ms"], report["lag_p99_ms"]
    result.coverage = _coverage(items, expected_urls(site), report["stats"])
    stats = report["stats"]
    result.details.update(
        reason=report["reason"],
        exit_code=process.returncode,
        lag_samples=report["lag_samples"],
        lag_max_ms=report["lag_max_ms"],
        elapsed_time_seconds=stats.get("elapsed_time_seconds"),
        requests=stats.get("downloader/request_count"),
        robots_forbidden=stats.get("robotstxt/forbidden"),
        dupefilter_filtered=stats.get("dupefilter/filtered"),
        max_depth=stats.get("request_depth_max"),
    )
    if report["reason"] != "finished":
        result.error = f"spider closed: {report['reason']}"
    return result


def _coverage(items: Path, expected: set[str], stats: dict[str, object]) -> Coverage:
    urls: Counter[str] = Counter()
    if items.exists():
        with items.open() as feed:
            for line in feed:
                if line.strip():
                    urls[canonical(json.loads(line)["url"])] += 1
    errors = {
        key.rsplit("/", 1)[-1]: int(value)  # type: ignore[call-overload]
        for key, value in stats.items()
        # robots.txt refusals surface as IgnoreRequest; they are counted as skipped.
        if key.startswith("downloader/exception_type_count/") and not key.endswith("IgnoreRequest")
    }
    forbidden = stats.get("robotstxt/forbidden", 0)
    return Coverage(
        records=sum(urls.values()),
        ok=sum(urls.values()),
        failed=sum(errors.values()),
        skipped=int(forbidden),  # type: ignore[call-overload]
        expected=len(expected),
        matched=len(expected & urls.keys()),
        unexpected=len(urls.keys() - expected),
        duplicates=sum(n - 1 for n in urls.values() if n > 1),
        errors=errors,
    )
