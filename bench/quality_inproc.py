"""Extraction quality in-process (no server): the fast loop behind bench/quality.py.

    python bench/quality_inproc.py [--systems trawl,trawl-main,trafilatura,readability]
                                   [--workers 2] [--limit N] [--type forum] [--dump DIR]
                                   [--half even|odd]

Each page's bytes go through Trawl's parse_page (text and markdown, with and without
only_main_content) and through the baselines, in worker processes; predictions are scored
with the dataset's own evaluate.py. Parse CPU is process time around each call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.crawl.parser import ParseOptions, parse_page

from quality_data import (
    Page,
    compact,
    dataset_dir,
    load_pages,
    markdown_text,
    score,
    scorer,
    table,
)

SYSTEMS = ("trawl", "trawl-main", "trafilatura", "readability")


def _trawl(body: bytes, url: str, main: bool) -> tuple[str, str, float]:
    options = ParseOptions(formats=frozenset({"text", "markdown"}), only_main_content=main)
    started = time.process_time()
    page = parse_page(body, url, options)
    elapsed = time.process_time() - started
    return page.text or "", page.markdown or "", elapsed


def _trafilatura(body: bytes, url: str) -> tuple[str, float]:
    import trafilatura

    started = time.process_time()
    text = trafilatura.extract(body, url=url) or ""
    return text, time.process_time() - started


def _readability(body: bytes) -> tuple[str, float]:
    import lxml.html
    from readability import Document

    started = time.process_time()
    try:
        summary = Document(body).summary(html_partial=True)
        text = lxml.html.fromstring(summary).text_content() if summary.strip() else ""
    except Exception:  # readability raises on empty and odd documents
        text = ""
    return text, time.process_time() - started


def extract(args: tuple[Page, tuple[str, ...]]) -> dict[str, Any]:
    """system -> (prediction, cpu seconds) for one page."""
    page, systems = args
    body = page.body()
    out: dict[str, Any] = {}
    for main, name in ((False, "trawl"), (True, "trawl-main")):
        if name in systems:
            text, markdown, cpu = _trawl(body, page.url, main)
            out[f"{name} text"] = (text, cpu)
            out[f"{name} markdown"] = (markdown_text(markdown), 0.0)
    if "trafilatura" in systems:
        out["trafilatura"] = _trafilatura(body, page.url)
    if "readability" in systems:
        out["readability"] = _readability(body)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset")
    parser.add_argument("--systems", default="trawl-main")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--type", default=None)
    parser.add_argument(
        "--half",
        choices=("even", "odd"),
        default=None,
        help="pages with even or odd ids: tune on one half, check on the other",
    )
    parser.add_argument("--dump", default=None, help="write predictions as DIR/<system>.json")
    parser.add_argument("--full", action="store_true", help="the full table, not F1 only")
    args = parser.parse_args()
    systems = tuple(args.systems.split(","))
    directory = dataset_dir(args.dataset)
    pages, truth = load_pages(directory)
    if args.type:
        pages = [p for p in pages if p.page_type == args.type]
    if args.half:
        parity = 0 if args.half == "even" else 1
        pages = [p for p in pages if int(p.file_id) % 2 == parity]
    if args.limit:
        pages = pages[:: max(1, len(pages) // args.limit)][: args.limit]
    truth = {p.file_id: truth[p.file_id] for p in pages}
    predictions: dict[str, dict[str, str]] = {}
    cpu: dict[str, float] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [(page, systems) for page in pages]
        for page, result in zip(pages, pool.map(extract, jobs, chunksize=8), strict=True):
            for system, (text, seconds) in result.items():
                predictions.setdefault(system, {})[page.file_id] = text
                cpu[system] = cpu.get(system, 0.0) + seconds
    evaluate = scorer(directory)
    results = {system: score(evaluate, truth, preds) for system, preds in predictions.items()}
    ms = {s: 1000 * c / len(pages) for s, c in cpu.items() if c}
    print(table(results, ms) if args.full else compact(results))
    if not args.full:
        print("  ".join(f"{s}: {v:.2f} ms" for s, v in ms.items()))
    if args.dump:
        Path(args.dump).mkdir(parents=True, exist_ok=True)
        for system, preds in predictions.items():
            name = system.replace(" ", "-")
            (Path(args.dump) / f"{name}.json").write_text(json.dumps(preds))


if __name__ == "__main__":
    main()
