"""One retry policy: the fetcher classifies each failure once, the pipeline follows it."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from service.changes import Conditional
from service.crawl.fetcher import FetchError, FetchResult, _classify
from service.crawl.hosthealth import AUTO_START, HostHealth
from service.crawl.parsepool import ParsePool
from service.crawl.pipeline import PagePipeline, PipelineConfig
from service.crawl.plan import JobPlan
from service.crawl.robots import RobotsCache
from service.crawl.scheduler import HostScheduler
from service.models import Outcome
from service.network.guard import BlockedAddress
from service.settings import Settings
from service.store.base import FrontierItem, PageRecord, Release

URL = "http://a.test/page"


def _chained(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


def classified(exc: httpx.HTTPError | BlockedAddress) -> tuple[str, bool]:
    return _classify(exc)


ERROR_CLASSES = {
    # name: (the exception the fetcher sees, retry expected)
    "nxdomain": (
        _chained(httpx.ConnectError("x"), socket.gaierror(socket.EAI_NONAME, "unknown")),
        False,
    ),
    "dns_try_again": (
        _chained(httpx.ConnectError("x"), socket.gaierror(socket.EAI_AGAIN, "again")),
        True,
    ),
    "certificate": (
        _chained(httpx.ConnectError("x"), ssl.SSLCertVerificationError("bad cert")),
        False,
    ),
    "refused": (_chained(httpx.ConnectError("x"), ConnectionRefusedError()), True),
    "timeout": (httpx.ReadTimeout("slow"), True),
    "reset": (httpx.ReadError("reset"), True),
    "private": (BlockedAddress("a.test", "10.0.0.1"), False),
    "bad_url": (httpx.UnsupportedProtocol("ftp"), False),
}


class FakeFetcher:
    def __init__(self, result: FetchResult) -> None:
        self.result = result

    async def fetch(
        self,
        url: str,
        *,
        accept_non_html: bool = True,
        headers: tuple[tuple[str, str], ...] = (),
        header_origins: frozenset[str] = frozenset(),
        conditional: Conditional | None = None,
    ) -> FetchResult:
        return self.result


def result_for(error: FetchError | None, retryable: bool, status: int | None) -> FetchResult:
    return FetchResult(
        url=URL,
        final_url=URL,
        status_code=status,
        content_type="text/html" if status else None,
        charset=None,
        headers={},
        body=b"",
        elapsed_ms=1.0,
        redirects=(),
        error=error,
        retryable=retryable,
    )


async def decide(result: FetchResult, attempts: int = 0) -> tuple[PageRecord | Release, int]:
    fetcher = FakeFetcher(result)
    scheduler = HostScheduler(ready_size=4, capacity=16, per_host_limit=2, per_host_delay=0.0)
    health = HostHealth()
    pipeline = PagePipeline(
        fetcher=fetcher,  # type: ignore[arg-type]
        parser=ParsePool(1),
        robots=RobotsCache(fetcher, "Trawl"),  # type: ignore[arg-type]
        scheduler=scheduler,
        health=health,
        config=PipelineConfig(retry_base_delay=0.01),
    )
    plan = JobPlan.from_request(
        "job", {"urls": [URL], "respect_robots": False, "max_retries": 2}, Settings()
    )
    item = FrontierItem(id=1, job_id="job", url=URL, host="a.test", depth=0, attempts=attempts)
    outcome = await pipeline.process(item, plan)
    return outcome, health.failures("a.test")


@pytest.mark.parametrize("name", sorted(ERROR_CLASSES))
async def test_each_error_class_is_retried_only_if_the_fetcher_says_so(name: str) -> None:
    exc, expected = ERROR_CLASSES[name]
    code, retryable = classified(exc)  # type: ignore[arg-type]
    assert retryable is expected, (name, code)
    outcome, failures = await decide(
        result_for(FetchError(code=code, message=name), retryable, None)
    )
    if expected:
        assert isinstance(outcome, Release), (name, outcome)
        assert failures == 1  # a transient failure counts against the host
    else:
        assert isinstance(outcome, PageRecord), (name, outcome)
        assert outcome.outcome is Outcome.FAILED and f'"code":"{code}"' in outcome.page_json
        assert failures == 0, f"{name} is not the host being down"


@pytest.mark.parametrize(
    ("status", "retried"), [(429, True), (503, True), (500, True), (404, False), (403, False)]
)
async def test_statuses(status: int, retried: bool) -> None:
    result = result_for(None, status in (429, 500, 502, 503, 504), status)
    outcome, _ = await decide(result)
    assert isinstance(outcome, Release) is retried


async def test_a_retryable_failure_on_the_last_attempt_fails_for_good() -> None:
    error = FetchError(code="timeout", message="slow")
    outcome, failures = await decide(result_for(error, True, None), attempts=2)
    assert isinstance(outcome, PageRecord) and outcome.outcome is Outcome.FAILED
    assert failures == 1


def test_host_health_remembers_a_bounded_number_of_hosts() -> None:
    health = HostHealth(max_hosts=3)
    for host in ("a.test", "b.test", "c.test", "d.test"):
        health.observe(host, latency=2.0, status=200, failed=False, floor=0.0)
    assert len(health) == 3
    assert health.auto_delay("a.test", 0.0) == AUTO_START  # the oldest was forgotten
    assert health.auto_delay("d.test", 0.0) > AUTO_START
