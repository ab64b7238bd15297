"""Small statistics helpers: percentiles and Prometheus text parsing."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None."""
    present = [v for v in values if v is not None]
    return percentile(present, 50)


@dataclass(frozen=True, slots=True)
class Sample:
    """One line of Prometheus text exposition."""

    name: str
    labels: dict[str, str]
    value: float


def parse_prometheus(text: str) -> list[Sample]:
    """Parse Prometheus text format (comments and timestamps ignored)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        samples.append(Sample(match["name"], labels, float(match["value"])))
    return samples


@dataclass(frozen=True, slots=True)
class Lag:
    """Event-loop lag over a window, in milliseconds, and where it came from."""

    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    count: int
    source: str


def _buckets(samples: list[Sample], name: str) -> dict[float, float]:
    return {
        float(s.labels["le"]): s.value
        for s in samples
        if s.name == f"{name}_bucket" and "le" in s.labels
    }


def _value(samples: list[Sample], name: str) -> float | None:
    return next((s.value for s in samples if s.name == name and not s.labels), None)


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets {upper bound: count}."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound  # beyond the last finite bucket: its bound is all we know
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return previous_bound


def loop_lag(before: str | None, after: str, name: str) -> Lag | None:
    """Lag from a histogram or summary named `name`, over the window between two scrapes.

    A histogram is differenced between the scrapes, so only the window counts; a summary's
    quantiles are taken from the later scrape as exported.
    """
    end = parse_prometheus(after)
    start = parse_prometheus(before) if before else []
    end_buckets = _buckets(end, name)
    if end_buckets:
        start_buckets = _buckets(start, name)
        window = {b: c - start_buckets.get(b, 0.0) for b, c in end_buckets.items()}
        count = int(window[max(window)])
        total = (_value(end, f"{name}_sum") or 0.0) - (_value(start, f"{name}_sum") or 0.0)
        p50, p99 = histogram_quantile(0.5, window), histogram_quantile(0.99, window)
        return Lag(
            p50_ms=None if p50 is None else p50 * 1000,
            p99_ms=None if p99 is None else p99 * 1000,
            mean_ms=total / count * 1000 if count else None,
            count=count,
            source="histogram (interpolated within buckets)",
        )
    quantiles = {
        s.labels["quantile"]: s.value for s in end if s.name == name and "quantile" in s.labels
    }
    count_value = _value(end, f"{name}_count")
    if quantiles or count_value is not None:
        count = int((count_value or 0) - (_value(start, f"{name}_count") or 0))
        total = (_value(end, f"{name}_sum") or 0.0) - (_value(start, f"{name}_sum") or 0.0)
        p50, p99 = quantiles.get("0.5"), quantiles.get("0.99")
        return Lag(
            p50_ms=None if p50 is None else p50 * 1000,
            p99_ms=None if p99 is None else p99 * 1000,
            mean_ms=total / count * 1000 if count else None,
            count=count,
            source="summary",
        )
    return None
