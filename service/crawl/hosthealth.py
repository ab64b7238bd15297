"""Host health: what the crawl learns about a host from its answers, apart from dispatch.

Two facts per host, both in memory and per process: consecutive failures (a host that
failed `host_failure_threshold` times in a row has its remaining URLs failed fast) and
the adaptive delay (Scrapy's AutoThrottle: follow the host's latency, back off on 429,
503 and errors). The scheduler asks for the delay when it spaces a host's requests;
when to start a request is its business, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass

# Aim at this many requests in flight per host (delay = latency / target), start at
# AUTO_START, double on 429/503 and errors, never above AUTO_MAX.
AUTO_TARGET_CONCURRENCY = 1.0
AUTO_START = 0.5
AUTO_MAX = 60.0
# Hosts remembered at most; the oldest is forgotten first (it starts again at AUTO_START
# and no failures). Failure counts are dropped on a success, but an adaptive delay stays:
# without a bound a broad adaptive crawl keeps ~150 bytes for every host it ever met.
MAX_HOSTS = 50_000


@dataclass(slots=True)
class _Health:
    failures: int = 0
    auto: float | None = None  # adaptive delay, once a response was seen


class HostHealth:
    """Failure counts and adaptive delays by host."""

    def __init__(self, max_hosts: int = MAX_HOSTS) -> None:
        self._hosts: dict[str, _Health] = {}
        self._max_hosts = max_hosts

    def __len__(self) -> int:
        return len(self._hosts)

    def observe(
        self, host: str, *, latency: float, status: int | None, failed: bool, floor: float
    ) -> None:
        """Adaptive delay: follow the host's latency, back off when it struggles."""
        state = self._state(host)
        current = state.auto if state.auto is not None else max(floor, AUTO_START)
        if failed or status in (429, 503):
            new = max(current * 2, 1.0)
        else:
            target = latency / AUTO_TARGET_CONCURRENCY
            new = max(target, (current + target) / 2)
            # Error pages and redirects are small and fast: they must not lower the delay.
            if status != 200 and new <= current:
                new = current
        state.auto = min(AUTO_MAX, max(floor, new))

    def auto_delay(self, host: str, floor: float) -> float:
        """The host's adaptive delay (before any response: the starting one)."""
        state = self._hosts.get(host)
        if state is None or state.auto is None:
            return max(floor, AUTO_START)
        return max(floor, state.auto)

    def note_failure(self, host: str) -> int:
        """One more failure in a row; returns the count."""
        state = self._state(host)
        state.failures += 1
        return state.failures

    def note_success(self, host: str) -> None:
        state = self._hosts.get(host)
        if state is not None:
            state.failures = 0
            if state.auto is None:
                del self._hosts[host]

    def failures(self, host: str) -> int:
        state = self._hosts.get(host)
        return state.failures if state else 0

    def _state(self, host: str) -> _Health:
        state = self._hosts.get(host)
        if state is None:
            if len(self._hosts) >= self._max_hosts:
                del self._hosts[next(iter(self._hosts))]  # the longest known
            state = self._hosts[host] = _Health()
        return state
