"""Issue 17's storage cases against a real `python -m service`: RSS and /health latency.

    python bench/hostile_storage.py [--database-url URL] [--case emoji|links|longlink|tarpit]

The hostile site (tests/faults/hostile_server.py) runs in this process on 127.0.0.1; the
service runs as a child process, so its RSS is its own. Prints one JSON object per case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.hostile_server import HostileServer  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Service:
    def __init__(self, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environ = {
            **os.environ,
            "PORT": str(self.port),
            "DATABASE_URL": database_url,
            "SCRAPER_ALLOW_PRIVATE_NETWORKS": "1",
            "SCRAPER_PER_HOST_CONCURRENCY": "4",
            "SCRAPER_RATE_LIMIT_PER_MINUTE": "0",
            "SCRAPER_LOG_LEVEL": "WARNING",
            # The pages are slow to parse on purpose; the cases measure what they cost
            # afterwards, so the parse deadline (5 s) must not cut them off.
            "SCRAPER_PARSE_TIMEOUT": "120",
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=ROOT, env=environ, stdout=subprocess.DEVNULL
        )

    async def ready(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if (await client.get(self.base + "/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("service did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


async def wait_job(
    client: httpx.AsyncClient, base: str, job_id: str, timeout: float = 300, **kw: Any
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = (await client.get(f"{base}/v1/jobs/{job_id}", **kw)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.2)
    raise RuntimeError(f"job {job_id} did not finish")


async def health_while(client: httpx.AsyncClient, base: str, task: asyncio.Future[Any]) -> float:
    worst = 0.0
    while not task.done():
        started = time.perf_counter()
        await client.get(base + "/health")
        worst = max(worst, time.perf_counter() - started)
        await asyncio.sleep(0.05)
    return worst


async def case_emoji(database_url: str, site: HostileServer) -> dict[str, Any]:
    service = Service(database_url)
    async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
        await service.ready(client)
        seeds = [site.url(f"/emoji?n={i}") for i in range(8)]
        job = (
            await client.post(
                service.base + "/v1/jobs",
                json={"urls": seeds, "formats": ["html", "text", "markdown"]},
            )
        ).json()
        crawl = asyncio.ensure_future(wait_job(client, service.base, job["id"]))
        crawl_health = await health_while(client, service.base, crawl)
        done = await crawl
        rss_before = rss_mb(service.proc.pid)
        started = time.perf_counter()
        read = asyncio.ensure_future(
            client.get(f"{service.base}/v1/jobs/{job['id']}/results", params={"limit": 8})
        )
        read_health = await health_while(client, service.base, read)
        response = await read
        seconds = time.perf_counter() - started
        body = response.json()
        ndjson_started = time.perf_counter()
        streamed = await client.get(f"{service.base}/v1/jobs/{job['id']}/results.ndjson")
        ndjson_seconds = time.perf_counter() - ndjson_started
        rss_after = rss_mb(service.proc.pid)
    service.stop()
    return {
        "case": "20 KB gzip -> 20 MB emoji HTML x8, html+text+markdown",
        "pages_fetched": done["stats"]["pages_fetched"],
        "health_max_s_during_crawl": round(crawl_health, 3),
        "results_limit8_s": round(seconds, 2),
        "results_limit8_items": len(body["items"]),
        "results_limit8_bytes": len(response.content),
        "bytes_per_page": len(response.content) // max(1, len(body["items"])),
        "health_max_s_during_read": round(read_health, 3),
        "ndjson_s": round(ndjson_seconds, 2),
        "ndjson_bytes": len(streamed.content),
        "rss_mb_before_read": round(rss_before),
        "rss_mb_after_reads": round(rss_after),
    }


async def case_links(database_url: str, site: HostileServer) -> dict[str, Any]:
    service = Service(database_url)
    async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
        await service.ready(client)
        rss_start = rss_mb(service.proc.pid)
        job = (
            await client.post(
                service.base + "/v1/jobs",
                json={
                    "url": site.url("/many-links?page=0&n=4000&len=2500&fan=60"),
                    "max_depth": 2,
                    "max_pages": 60,
                    "formats": ["metadata"],
                },
            )
        ).json()
        peak = 0.0
        crawl = asyncio.ensure_future(wait_job(client, service.base, job["id"], timeout=1500))
        worst = 0.0
        while not crawl.done():
            peak = max(peak, rss_mb(service.proc.pid))
            started = time.perf_counter()
            await client.get(service.base + "/health")
            worst = max(worst, time.perf_counter() - started)
            await asyncio.sleep(0.1)
        done = await crawl
        await asyncio.sleep(2)
        rss_end = rss_mb(service.proc.pid)
    service.stop()
    return {
        "case": "60 pages x 4,000 unique 2.5 KB links (max_pages 60, max_depth 2)",
        "pages_fetched": done["stats"]["pages_fetched"],
        "rss_mb_start": round(rss_start),
        "rss_mb_peak": round(peak),
        "rss_mb_after_job": round(rss_end),
        "health_max_s": round(worst, 3),
    }


async def case_longlink(database_url: str, site: HostileServer) -> dict[str, Any]:
    service = Service(database_url, SCRAPER_API_KEYS="key-a,key-b")
    a = {"Authorization": "Bearer key-a"}
    b = {"Authorization": "Bearer key-b"}
    async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
        await service.ready(client)
        crawl = (
            await client.post(
                service.base + "/v1/jobs",
                json={"url": site.url("/long-link?len=8000"), "max_depth": 1},
                headers=a,
            )
        ).json()
        started = time.perf_counter()
        other = (
            await client.post(
                service.base + "/v1/jobs", json={"url": site.url("/ok?b=1")}, headers=b
            )
        ).json()
        other_done = await wait_job(client, service.base, other["id"], 60, headers=b)
        other_seconds = time.perf_counter() - started
        crawl_done = await wait_job(client, service.base, crawl["id"], 60, headers=a)
        seed = await client.post(
            service.base + "/v1/jobs",
            json={"url": site.url("/ok?pad=" + "x" * 9000)},
            headers=a,
        )
    service.stop()
    return {
        "case": "8,000-character same-host link; another key's one-page job",
        "crawl": crawl_done["status"],
        "crawl_pages_fetched": crawl_done["stats"]["pages_fetched"],
        "other_job": other_done["status"],
        "other_job_s": round(other_seconds, 2),
        "seed_9000_chars_status": seed.status_code,
    }


async def case_tarpit(database_url: str, site: HostileServer) -> dict[str, Any]:
    from tests.integration.test_webhooks import Receiver

    receiver = Receiver().start()
    service = Service(database_url, SCRAPER_API_KEYS="key-a,key-b")
    a = {"Authorization": "Bearer key-a"}
    b = {"Authorization": "Bearer key-b"}
    tarpit = {"url": site.url("/tarpit"), "events": ["job.started", "job.completed"]}
    try:
        async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
            await service.ready(client)
            ids = []
            for i in range(20):
                job = await client.post(
                    service.base + "/v1/jobs",
                    json={"url": site.url(f"/ok?a={i}"), "webhook": tarpit},
                    headers=a,
                )
                ids.append(job.json()["id"])
            for job_id in ids:
                await wait_job(client, service.base, job_id, 60, headers=a)
            hook = {"url": receiver.url(), "events": ["job.completed"]}
            job = (
                await client.post(
                    service.base + "/v1/jobs",
                    json={"url": site.url("/ok?b=1"), "webhook": hook},
                    headers=b,
                )
            ).json()
            await wait_job(client, service.base, job["id"], 60, headers=b)
            finished = time.monotonic()
            while not receiver.accepted("job.completed"):
                if time.monotonic() - finished > 120:
                    break
                await asyncio.sleep(0.02)
            delay = time.monotonic() - finished
    finally:
        service.stop()
        receiver.stop()
    return {
        "case": "20 jobs of key A -> tarpit receiver; key B's job.completed",
        "delay_s": round(delay, 2),
    }


CASES = {"emoji": case_emoji, "links": case_links, "longlink": case_longlink, "tarpit": case_tarpit}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    args = parser.parse_args()
    site = await HostileServer().start()
    try:
        for name in args.case or sorted(CASES):
            with tempfile.TemporaryDirectory() as tmp:
                url = args.database_url or f"sqlite:///{tmp}/bench.db"
                result = await CASES[name](url, site)
                result["database"] = url.split(":", 1)[0]
                print(json.dumps(result), flush=True)
    finally:
        await site.close()


if __name__ == "__main__":
    asyncio.run(main())
