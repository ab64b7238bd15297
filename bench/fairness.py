"""Fair sharing: a one-page job behind a big crawl, and two keys' shares of the fetches.

    python bench/fairness.py                   # both parts, 10 runs of each latency case
    python bench/fairness.py --repeat 20 --only latency
    python bench/fairness.py --only shares --duration 30

Latency: Trawl (SQLite, SCRAPER_PER_HOST_CONCURRENCY=8) and hosts answering in
`--latency` (20 ms). A 1,000-URL job (max_depth 0) is submitted on host A; one second
later a one-page job on host A (same host) or host B (another host), also once through
the synchronous `POST /v1/scrape`. Each case is timed from submit to completion (job
polled every 10 ms; the scrape is its response time) and compared with the same
one-page job on the idle service; between runs the big job is cancelled.

Shares: keys A and B (SCRAPER_API_KEYS), A crawling three hosts and B one, each with more
backlog than the run can fetch (SCRAPER_CONCURRENCY=8, per-host 8). Every fetch is
counted where the server sees it; each key's share is reported per 5-second window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.scaleout.cluster import Api, Cluster, Member

from wideserver import WideSite, host_address

from measures import percentile

logger = logging.getLogger("bench.fairness")
FINAL = {"completed", "failed", "cancelled"}


async def _wait(api: Api, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = await api.job(job_id)
        if job["status"] in FINAL:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} not done in {timeout}s: {job}")
        await asyncio.sleep(0.01)


async def _one_page(api: Api, url: str) -> float:
    started = time.monotonic()
    job = await api.submit({"url": url})
    done = await _wait(api, job["id"])
    assert done["status"] == "completed", done
    return time.monotonic() - started


async def _scrape(web: Member, url: str) -> float:
    async with httpx.AsyncClient(base_url=web.base_url, timeout=60, trust_env=False) as client:
        started = time.monotonic()
        response = await client.post("/v1/scrape", json={"url": url})
        assert response.status_code == 200, response.text
        return time.monotonic() - started


async def latency_part(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    site = WideSite(hosts=2, pages=1100, latency=args.latency)
    env = {
        "SCRAPER_PER_HOST_CONCURRENCY": "8",
        "SCRAPER_LOG_LEVEL": "WARNING",
        "SCRAPER_PARSER_PROCESSES": "2",
    }
    samples: dict[str, list[float]] = {
        "idle": [],
        "same host": [],
        "other host": [],
        "scrape, same host": [],
    }
    with site.serve():
        cluster = Cluster(f"sqlite:///{tmp}/fair-latency.db", tmp, env)
        try:
            [web] = await cluster.start_ready("all")
            api = Api(web)
            base = f"http://{{host}}:{site.port}"
            a, b = (base.format(host=host_address(i)) for i in (0, 1))
            big_urls = [f"{a}/p{i}" for i in range(100, 1100)]
            for run in range(args.repeat):
                samples["idle"].append(await _one_page(api, f"{a}/p{run}"))
                for case, url in (
                    ("same host", f"{a}/p{10 + run}"),
                    ("other host", f"{b}/p{10 + run}"),
                    ("scrape, same host", f"{a}/p{40 + run}"),
                ):
                    big = await api.submit({"urls": big_urls, "max_pages": 1000})
                    await asyncio.sleep(1.0)  # the setup: one second later
                    if case.startswith("scrape"):
                        samples[case].append(await _scrape(web, url))
                    else:
                        samples[case].append(await _one_page(api, url))
                    state = await api.job(big["id"])
                    await api.cancel(big["id"])
                    logger.info(
                        "run %d %s: %.3f s (big job had %d of 1000)",
                        run,
                        case,
                        samples[case][-1],
                        state["stats"]["pages_fetched"],
                    )
                    await asyncio.sleep(0.5)  # let cancelled fetches drain
            await api.aclose()
        finally:
            cluster.close(grace=10)
    return {
        case: {
            "p50_s": round(percentile(values, 50) or 0, 3),
            "p95_s": round(percentile(values, 95) or 0, 3),
            "max_s": round(max(values), 3),
            "runs": len(values),
        }
        for case, values in samples.items()
    }


async def shares_part(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    site = WideSite(hosts=4, pages=6000, latency=args.latency)
    env = {
        "SCRAPER_API_KEYS": "key-a,key-b",
        "SCRAPER_CONCURRENCY": "8",
        "SCRAPER_PER_HOST_CONCURRENCY": "8",
        "SCRAPER_PARSER_PROCESSES": "2",
        "SCRAPER_LOG_LEVEL": "WARNING",
        "SCRAPER_MAX_PAGES_CAP": "100000",
    }
    with site.serve():
        cluster = Cluster(f"sqlite:///{tmp}/fair-shares.db", tmp, env)
        try:
            [web] = await cluster.start_ready("all")
            api = Api(web)
            hosts = [f"http://{host_address(i)}:{site.port}" for i in range(4)]
            owners = {host_address(i): "A" if i < 3 else "B" for i in range(4)}
            jobs: list[tuple[dict[str, str], str]] = []
            started = time.monotonic()
            # Six 1,000-URL jobs per key, submitted alternately: A's spread over its three
            # hosts, B's all on its one.
            a_hosts = hosts[: args.a_hosts]
            plans = {
                "key-a": [(a_hosts[n % len(a_hosts)], n // len(a_hosts) * 1000) for n in range(6)],
                "key-b": [(hosts[3], first) for first in range(0, 6000, 1000)],
            }
            for turn in range(6):
                for key, plan in plans.items():
                    host, first = plan[turn]
                    auth = {"Authorization": f"Bearer {key}"}
                    urls = [f"{host}/p{i}" for i in range(first, first + 1000)]
                    job = await api.submit({"urls": urls, "max_pages": 1000}, headers=auth)
                    jobs.append((auth, job["id"]))
            await asyncio.sleep(args.duration)
            for auth, job_id in jobs:
                await api.client.delete(f"/v1/jobs/{job_id}", headers=auth)
            await api.aclose()
        finally:
            cluster.close(grace=10)
        hits = [h for h in site._hits() if h.path != "/robots.txt" and h.start >= started]
    windows = []
    # From a second after both keys' first fetch (every job has been claimed from).
    first = max(min(h.start for h in hits if owners[h.host] == key) for key in "AB") + 1.0
    edge = first
    while edge + 5.0 <= first + args.duration - 1.0:
        inside = [h for h in hits if edge <= h.start < edge + 5.0]
        a = sum(owners[h.host] == "A" for h in inside)
        b = len(inside) - a
        share = a / (a + b) if a + b else 0.0
        windows.append({"from_s": round(edge - first, 1), "A": a, "B": b, "A_share": share})
        edge += 5.0
    shares = [w["A_share"] for w in windows]
    return {
        "windows": windows,
        "A_share_min": round(min(shares), 3),
        "A_share_max": round(max(shares), 3),
    }


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("latency", "shares"))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per answer")
    parser.add_argument("--duration", type=float, default=21.0, help="shares run, seconds")
    parser.add_argument("--a-hosts", type=int, default=1, choices=(1, 2, 3), help="key A hosts")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = tempfile.mkdtemp(prefix="trawl-fair-")
            logger.info("logs and databases kept in %s", tmp)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="trawl-fair-"))
        if args.only != "shares":
            out["latency"] = await latency_part(args, Path(tmp))
            print("| one-page job | p50 s | p95 s | max s | runs |")
            print("|---|---|---|---|---|")
            for case, row in out["latency"].items():
                cells = (case, row["p50_s"], row["p95_s"], row["max_s"], row["runs"])
                print("| " + " | ".join(str(c) for c in cells) + " |")
        if args.only != "latency":
            out["shares"] = await shares_part(args, Path(tmp))
            print("\n| window (s) | key A fetches | key B fetches | A share |")
            print("|---|---|---|---|")
            for w in out["shares"]["windows"]:
                span = f"{w['from_s']}-{w['from_s'] + 5}"
                print(f"| {span} | {w['A']} | {w['B']} | {w['A_share']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
