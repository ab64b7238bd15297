"""Property-based fuzzing of the live API from its own OpenAPI document: never a 5xx.

Schemathesis generates valid and invalid requests for every documented operation (bodies,
query and path parameters, headers) and sends them to a real `python -m service web`
process. Bounded: few examples per operation and a wall-clock budget, so CI stays fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.api.service_process import ServiceProcess

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 40
# Operations that wait for a crawl (or fetch in the request): with no crawl workers a
# valid request can only time out (a documented 504); their waits are kept short.
SYNCHRONOUS = frozenset({"POST /v1/scrape", "POST /v1/map", "POST /v2/scrape", "POST /v2/map"})


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The API alone (no crawl workers: nothing is fetched), no rate limit to hide behind."""
    tmp_path: Path = tmp_path_factory.mktemp("schemathesis")
    service = ServiceProcess(
        tmp_path, args=("web",), env={"SCRAPER_RATE_LIMIT_PER_MINUTE": "0"}
    ).start()
    try:
        asyncio.run(service.wait_ready())  # a sync fixture: no loop runs here yet
        yield service
    finally:
        service.kill()
        service.reap_group()
    assert "unhandled error" not in service.log, service.log


@pytest.fixture(scope="module")
def api_schema(live_service: ServiceProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_service.base_url}/docs/openapi.json")


def fuzz(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    session: requests.Session,
    path_parameters: dict[str, str] | None = None,
) -> None:
    """Send EXAMPLES_PER_OPERATION generated requests; raise on the first 5xx (shrunk)."""

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,  # latency is not what this test is about
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same cases every run: failures reproduce
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case: Any) -> None:
        if operation.label in SYNCHRONOUS and isinstance(case.body, dict):
            timeout = case.body.get("timeout", 30)
            if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
                case.body["timeout"] = min(timeout, 0.1)  # a valid wait, kept short
        response = case.call(session=session, timeout=10)
        if response.status_code == 504 and operation.label in SYNCHRONOUS:
            return  # documented: the work did not finish in time (there are no workers)
        case.validate_response(response, checks=[not_a_server_error])

    run()


# One test driving every operation (rather than schemathesis.pytest.from_fixture, whose
# lazy loader breaks on pytest 9: it reads the removed `Function._nodeid`).
# ~60 s alone for 22 operations in two modes; twice that on a loaded 2-core machine.
@pytest.mark.timeout(300)
def test_no_request_gets_a_server_error(
    api_schema: schemathesis.BaseSchema, live_service: ServiceProcess
) -> None:
    failures: dict[str, str] = {}
    tried: list[str] = []
    with requests.Session() as session:
        # A real job, so routes under /v1/jobs/{job_id} get past the 404 to their
        # query parameters too (random ids only ever find nothing).
        created = session.post(
            f"{live_service.base_url}/v1/jobs", json={"url": "http://example.invalid/"}
        )
        assert created.status_code == 202, created.text
        existing = {"job_id": created.json()["id"]}
        # And a schedule, for /v1/schedules/{schedule_id} (a DELETE case may remove it).
        schedule = session.post(
            f"{live_service.base_url}/v1/schedules",
            json={"job": {"url": "http://example.invalid/"}, "every": "1d"},
        )
        assert schedule.status_code == 201, schedule.text
        existing_schedule = {"schedule_id": schedule.json()["id"]}
        for result in api_schema.get_all_operations():
            assert isinstance(result, Ok), f"schemathesis cannot use an operation: {result.err()}"
            operation = result.ok()
            variants: list[dict[str, str] | None] = [None]
            if "{job_id}" in operation.path:
                variants.append(existing)
            if "{schedule_id}" in operation.path:
                variants.append(existing_schedule)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for path_parameters in variants:
                    where = f", existing {next(iter(path_parameters))}" if path_parameters else ""
                    label = f"{operation.label} [{mode.value}{where}]"
                    try:
                        fuzz(operation, mode, session, path_parameters)
                    except Unsatisfiable:
                        continue  # no parameters or body: no invalid request to make
                    except Exception as exc:  # reported together below, per operation
                        failures[label] = f"{type(exc).__name__}: {exc}"[:2000]
                    tried.append(label)
    # Every operation fuzzed with valid data; those with inputs with invalid data too.
    assert len(tried) >= 16, tried
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
