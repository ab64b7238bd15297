"""What a recrawl costs: a crawl, then recrawls of the same site served by nginx (which
sends ETag / Last-Modified and answers 304), with and without revalidation, and after an
edit of some pages and the deletion of others.

    python bench/recrawl.py --pages 1000 --edit 0.1 --delete 0.02

Runs, in one service and against one site:
  crawl       the first job (formats metadata, text, links, changes: a baseline)
  recrawl     nothing changed: every page revalidated (304s)
  full        nothing changed, revalidation off (a `headers` override): every page
              downloaded and compared by main-content hash
  edited      after `--edit` of the pages had a paragraph added and `--delete` removed:
              a recrawl of `recrawl`
Prints one JSON object (seconds, pages/s, change counts, 304s) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import trawl_runner
from server import free_port, serve
from sitegen import ensure_site

FORMATS = ["metadata", "text", "links", "changes"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--edit", type=float, default=0.1, help="share of pages edited")
    parser.add_argument("--delete", type=float, default=0.02, help="share of pages deleted")
    parser.add_argument("--concurrency", type=int, default=None)
    return parser.parse_args(argv)


def wait(client: httpx.Client, job_id: str, timeout: float = 600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in trawl_runner.FINAL:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']}")
        time.sleep(0.1)


def summary(client: httpx.Client, job: dict[str, Any], wall: float) -> dict[str, Any]:
    not_modified = 0
    with client.stream("GET", f"/v1/jobs/{job['id']}/results.ndjson") as response:
        for line in response.iter_lines():
            if line and json.loads(line).get("not_modified"):
                not_modified += 1
    stats = job["stats"]
    pages = stats["pages_fetched"] + stats["pages_failed"] + stats["pages_skipped"]
    return {
        "status": job["status"],
        "seconds": round(wall, 2),
        "pages": pages,
        "pages_per_s": round(pages / wall, 1) if wall else None,
        "not_modified": not_modified,
        "changes": stats.get("changes"),
    }


def run(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = client.post(path, json=body)
    response.raise_for_status()
    job = wait(client, response.json()["id"])
    return job, time.monotonic() - started


def edit_site(root: Path, share_edit: float, share_delete: float, seed: int) -> tuple[int, int]:
    """Add a paragraph to the main content of some pages; delete others (not the home)."""
    pages = sorted(p for p in root.rglob("*.html") if p.name != "index.html")
    rng = random.Random(seed)
    rng.shuffle(pages)
    chosen = pages[: int(len(pages) * share_edit)]
    deleted = pages[len(chosen) : len(chosen) + int(len(pages) * share_delete)]
    edited = 0
    for page in chosen:
        text = page.read_text()
        if "</article>" in text:  # pages without an article (listings) are left alone
            page.write_text(text.replace("</article>", "<p>An added paragraph.</p></article>", 1))
            edited += 1
    for page in deleted:
        page.unlink()
    return edited, len(deleted)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    port = free_port()
    site = ensure_site(args.pages, args.seed, f"http://127.0.0.1:{port}")
    results: dict[str, Any] = {"pages": args.pages, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="trawl-recrawl-") as tmp:
        root = Path(tmp) / "site"
        shutil.copytree(site.root, root)  # edited below: never the cached copy
        options = trawl_runner.TrawlOptions(concurrency=args.concurrency)
        with serve(root, port) as server, trawl_runner.service(options, Path(tmp)) as trawl:
            results["server"] = server.kind
            with httpx.Client(base_url=trawl.base_url, timeout=30.0, trust_env=False) as client:
                request = {
                    "url": site.url,
                    "max_depth": site.max_depth,
                    "max_pages": args.pages + 100,
                    "formats": FORMATS,
                }
                first, wall = run(client, "/v1/jobs", request)
                results["crawl"] = summary(client, first, wall)
                again, wall = run(client, f"/v1/jobs/{first['id']}/recrawl", {})
                results["recrawl"] = summary(client, again, wall)
                full, wall = run(
                    client, f"/v1/jobs/{first['id']}/recrawl", {"headers": {"X-Bench": "full"}}
                )
                results["full"] = summary(client, full, wall)
                edited, deleted = edit_site(root, args.edit, args.delete, args.seed)
                results["edits"] = {"edited": edited, "deleted": deleted}
                after, wall = run(client, f"/v1/jobs/{again['id']}/recrawl", {})
                results["edited"] = summary(client, after, wall)
    results["load_after"] = os.getloadavg()
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
