"""Measure /health latency while something hostile runs (the service must stay < 1 s)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from types import TracebackType
from typing import Any

import httpx


class HealthProbe:
    """Polls GET /health every `interval` seconds, recording each answer's latency."""

    def __init__(self, base_url: str, interval: float = 0.1) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=120.0, trust_env=False)
        self._interval = interval
        self.latencies: list[float] = []
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        # Latency counts from when the request was due, not from when this task got to
        # send it: a frozen event loop delays the send too (this probe shares the loop
        # with the in-process server), and a real client would have been waiting.
        due = time.perf_counter()
        while True:
            try:
                response = await self._client.get("/health")
                if response.status_code != 200:
                    self.failures += 1
            except httpx.HTTPError:
                self.failures += 1
            answered = time.perf_counter()
            self.latencies.append(answered - due)
            due = max(due + self._interval, answered)
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async def __aenter__(self) -> HealthProbe:
        # The first request opens the connection: not what is being measured.
        await self._client.get("/health")
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._client.aclose()

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def summary(self) -> str:
        if not self.latencies:
            return "no /health samples"
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return (
            f"/health n={len(ordered)} p50={statistics.median(ordered) * 1000:.1f}ms "
            f"p99={p99 * 1000:.1f}ms max={ordered[-1] * 1000:.1f}ms failures={self.failures}"
        )

    def assert_responsive(self, limit: float = 1.0) -> None:
        assert self.latencies, "no /health samples were taken"
        assert self.failures == 0, self.summary()
        assert self.worst < limit, self.summary()


async def health_latency(
    client: httpx.AsyncClient, until: asyncio.Future[Any], interval: float = 0.05
) -> list[float]:
    """GET /health every `interval` s until `until` is done; each latency in seconds
    (from sending, unlike HealthProbe's from when it was due); every answer must be 200."""
    latencies: list[float] = []
    while not until.done():
        started = time.perf_counter()
        response = await client.get("/health")
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        await asyncio.sleep(interval)
    return latencies
