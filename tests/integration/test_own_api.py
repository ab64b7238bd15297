"""A job cannot reach this service's own API, whatever loopback alias or bind it uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import TrawlServer

MakeServer = Callable[..., Awaitable[TrawlServer]]


@pytest.mark.parametrize(
    ("bind", "target"),
    [
        ("127.0.0.2", "127.0.0.2"),  # Linux connects from 127.0.0.1: the two ends differ
        ("0.0.0.0", "127.0.0.3"),  # any loopback alias reaches a wildcard bind
        ("0.0.0.0", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),  # a connect to 0.0.0.0 is delivered locally
    ],
)
async def test_own_api_is_refused(make_server: MakeServer, bind: str, target: str) -> None:
    trawl = await make_server(host=bind, insecure_no_auth=True)
    port = trawl.settings.port
    before = len((await trawl.client.get("/v1/jobs")).json()["items"])
    job = await trawl.submit(
        {"urls": [f"http://{target}:{port}/v1/jobs", f"http://{target}:{port}/health"]}
    )
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"
    results = await trawl.results(job["id"])
    assert [r["error"]["code"] for r in results] == ["private_address"] * 2, results
    assert all("own API" in r["error"]["message"] for r in results)
    assert len((await trawl.client.get("/v1/jobs")).json()["items"]) == before + 1
