"""Prometheus metrics, and the event-loop lag probe behind one of them."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

JOBS = Gauge("trawl_jobs", "Jobs by status", ["status"], registry=REGISTRY)
PAGES = Counter("trawl_pages_total", "Pages finished, by outcome", ["outcome"], registry=REGISTRY)
FETCH_SECONDS = Histogram(
    "trawl_fetch_duration_seconds",
    "Time to fetch a page (all redirects and the body)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
PARSE_SECONDS = Histogram(
    "trawl_parse_duration_seconds",
    "Time to parse a page in the process pool, including the hand-off",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
    registry=REGISTRY,
)
CLAIM_SECONDS = Histogram(
    "trawl_claim_duration_seconds",
    "Time to claim a batch of URLs from the frontier (one store transaction)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "trawl_queue_depth", "URLs claimed and waiting in this process", registry=REGISTRY
)
PENDING_URLS = Gauge("trawl_pending_urls", "URLs pending in the store", registry=REGISTRY)
LINKS_DROPPED = Counter(
    "trawl_links_dropped_total",
    "Discovered links left out of results and the frontier, by reason",
    ["reason"],
    registry=REGISTRY,
)
IN_FLIGHT = Gauge("trawl_fetches_in_flight", "Fetches in progress", registry=REGISTRY)
WEBHOOKS = Counter(
    "trawl_webhook_deliveries_total", "Webhook delivery attempts", ["result"], registry=REGISTRY
)
RECRAWL_PAGES = Counter(
    "trawl_recrawl_pages_total",
    "A recrawl's pages classified by this process, by change (`not_modified`: of the "
    "unchanged, those a 304 saved downloading)",
    ["change"],
    registry=REGISTRY,
)
SCHEDULE_RUNS = Counter(
    "trawl_schedule_runs_total",
    "Schedule ticks fired by this process, by what became of them",
    ["state"],
    registry=REGISTRY,
)
SCHEDULE_LATENESS = Histogram(
    "trawl_schedule_lateness_seconds",
    "How long after its tick a schedule fired (catch-up runs excluded)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0),
    registry=REGISTRY,
)
LOOP_LAG = Histogram(
    "trawl_event_loop_lag_seconds",
    "How late a 10 ms sleep wakes up: the event loop's responsiveness",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    registry=REGISTRY,
)
LOOP_LAG_RECENT = Gauge(
    "trawl_event_loop_lag_recent_seconds",
    "Event-loop lag quantiles over the last 2,000 probes",
    ["quantile"],
    registry=REGISTRY,
)


def render() -> bytes:
    return generate_latest(REGISTRY)


class LoopLagProbe:
    """Sleeps 10 ms in a loop and records the overshoot."""

    interval = 0.01

    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=2000)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = max(0.0, time.perf_counter() - started - self.interval)
            LOOP_LAG.observe(lag)
            self._samples.append(lag)

    def quantile(self, q: float) -> float:
        if not self._samples:
            return 0.0
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def publish(self) -> None:
        for q in (0.5, 0.99):
            LOOP_LAG_RECENT.labels(quantile=str(q)).set(self.quantile(q))
