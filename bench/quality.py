"""Extraction quality through the public API, against trafilatura and readability-lxml.

    python bench/quality.py [--dataset DIR] [--workers 2] [--limit N]

The WCXB dev split (../shared/data/wcxb-dev, or $TRAWL_WCXB_DIR) is written out as files
and served from 127.0.0.1; Trawl (`python -m service`, fresh SQLite) crawls every page as
a seed with max_depth 0, once with only_main_content and once without, formats text and
markdown. trafilatura and readability-lxml run on the same bytes in this invocation. All
outputs are scored by the dataset's own evaluate.py (markdown with link targets dropped).
Parse CPU is the user+sys time of the service's parser processes over each crawl, per
page. The table goes to standard output and bench/results/quality-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from procstat import cpu_by_process, read_tree
from quality_data import (
    Page,
    Score,
    dataset_dir,
    load_pages,
    markdown_text,
    score,
    scorer,
    table,
)
from quality_inproc import _readability, _trafilatura
from server import free_port, serve
from trawl_runner import FINAL, TrawlOptions, TrawlService, service

RESULTS = Path(__file__).resolve().parent / "results"
MAX_SEEDS = 1000  # the API's limit of URLs per job


def _baselines(page: Page) -> dict[str, str]:
    body = page.body()
    return {
        "trafilatura": _trafilatura(body, page.url)[0],
        "readability-lxml": _readability(body)[0],
    }


def _parser_cpu(running: TrawlService) -> float:
    """CPU seconds of the service's child processes (the parser pool), reaped ones too."""
    pid = running.process.pid
    return read_tree(pid, with_pss=False).cpu_seconds - cpu_by_process(pid)[pid][1]


def _crawl(
    running: TrawlService, urls: list[str], only_main_content: bool, timeout: float
) -> tuple[dict[str, dict[str, Any]], float]:
    """url -> result for every seed, and the parser CPU seconds the crawl took."""
    results: dict[str, dict[str, Any]] = {}
    before = _parser_cpu(running)
    with httpx.Client(base_url=running.base_url, timeout=60.0, trust_env=False) as client:
        for start in range(0, len(urls), MAX_SEEDS):
            request = {
                "urls": urls[start : start + MAX_SEEDS],
                "max_depth": 0,
                "max_pages": MAX_SEEDS,
                "formats": ["text", "markdown"],
                "respect_robots": False,
                "only_main_content": only_main_content,
            }
            response = client.post("/v1/jobs", json=request)
            response.raise_for_status()
            job = response.json()
            deadline = time.monotonic() + timeout
            while job["status"] not in FINAL:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job['id']} still {job['status']}")
                time.sleep(0.5)
                job = client.get(f"/v1/jobs/{job['id']}").json()
            # Split on "\n" only: iter_lines() also splits on U+2028 and other line
            # breaks that JSON leaves unescaped inside strings.
            response = client.get(f"/v1/jobs/{job['id']}/results.ndjson")
            response.raise_for_status()
            for line in response.content.split(b"\n"):
                if line.strip():
                    item = json.loads(line)
                    results[item["url"]] = item
    return results, _parser_cpu(running) - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", help="the WCXB split directory")
    parser.add_argument("--workers", type=int, default=2, help="processes for the baselines")
    parser.add_argument("--limit", type=int, default=0, help="a spread sample of N pages")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per job, seconds")
    parser.add_argument("--parse-timeout", type=float, default=120.0, help="per page, seconds")
    args = parser.parse_args()

    directory = dataset_dir(args.dataset)
    pages, truth = load_pages(directory)
    if args.limit:
        pages = pages[:: max(1, len(pages) // args.limit)][: args.limit]
    truth = {p.file_id: truth[p.file_id] for p in pages}
    evaluate = scorer(directory)

    with tempfile.TemporaryDirectory(prefix="trawl-quality-") as scratch:
        root = Path(scratch) / "site"
        (root / "p").mkdir(parents=True)
        for page in pages:
            (root / "p" / f"{page.file_id}.html").write_bytes(page.body())
        port = free_port()
        predictions: dict[str, dict[str, str]] = {}
        cpu_ms: dict[str, float] = {}
        # The parse deadline (5 s by default) is meant for hostile pages; on a shared
        # machine a big page's wall time can pass it, and a timed-out page scores 0.
        timeout_env = {"SCRAPER_PARSE_TIMEOUT": str(args.parse_timeout)}
        options = TrawlOptions(per_host_concurrency=16, extra_env=timeout_env)
        with serve(root, port), service(options, Path(scratch)) as running:
            urls = {f"http://127.0.0.1:{port}/p/{p.file_id}.html": p.file_id for p in pages}
            for main_only, label in ((False, "whole page"), (True, "only_main_content")):
                started = time.monotonic()
                results, cpu = _crawl(running, list(urls), main_only, args.timeout)
                print(
                    f"Trawl {label}: {len(results)} results in {time.monotonic() - started:.0f} s",
                    file=sys.stderr,
                )
                text: dict[str, str] = {}
                markdown: dict[str, str] = {}
                for url, item in results.items():
                    file_id = urls.get(url)
                    if file_id is None:
                        continue
                    text[file_id] = item.get("text") or ""
                    markdown[file_id] = markdown_text(item.get("markdown") or "")
                predictions[f"Trawl text, {label}"] = text
                predictions[f"Trawl markdown, {label}"] = markdown
                cpu_ms[f"Trawl parse (text+markdown), {label}"] = 1000 * cpu / max(1, len(text))
        started = time.monotonic()
        with ProcessPoolExecutor(args.workers) as pool:
            for page, out in zip(pages, pool.map(_baselines, pages, chunksize=8), strict=True):
                for system, prediction in out.items():
                    predictions.setdefault(system, {})[page.file_id] = prediction
        print(f"baselines: {time.monotonic() - started:.0f} s", file=sys.stderr)

    results: dict[str, dict[str, Score]] = {
        system: score(evaluate, truth, preds) for system, preds in predictions.items()
    }
    print(table(results, cpu_ms))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out_path = RESULTS / f"quality-{stamp}.json"
    out_path.write_text(
        json.dumps(
            {
                "pages": len(pages),
                "scores": {s: {t: _fields(v) for t, v in r.items()} for s, r in results.items()},
                "parse_cpu_ms_per_page": cpu_ms,
            },
            indent=1,
        )
    )
    print(f"\nresults: {out_path.relative_to(RESULTS.parent.parent)}", file=sys.stderr)
    return 0


def _fields(value: Score) -> dict[str, float]:
    return {name: getattr(value, name) for name in Score.__slots__}


if __name__ == "__main__":
    sys.exit(main())
