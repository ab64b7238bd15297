"""One key's broken webhook receiver must not delay another key's events (issue 17, item 6)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from tests.conftest import TrawlServer, eventually, wait_until
from tests.faults.hostile_server import HostileServer
from tests.integration.test_webhooks import Receiver

pytestmark = pytest.mark.timeout(120)

MakeServer = Callable[..., Awaitable[TrawlServer]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def client_for(server: TrawlServer, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10.0,
        trust_env=False,
    )


async def test_a_tarpit_receiver_of_one_key_does_not_delay_another_keys_events(
    make_server: MakeServer, hostile: HostileServer, receiver: Receiver
) -> None:
    """20 jobs of key A post to a receiver that never answers; key B's job.completed
    still arrives within a few seconds of B's job ending (it took 98 s)."""
    server = await make_server(api_keys=("key-a", "key-b"))
    tarpit = {"url": hostile.url("/tarpit"), "events": ["job.started", "job.completed"]}
    async with client_for(server, "key-a") as a, client_for(server, "key-b") as b:
        for i in range(20):
            response = await a.post(
                "/v1/jobs", json={"url": hostile.url(f"/ok?a={i}"), "webhook": tarpit}
            )
            assert response.status_code == 202, response.text

        async def a_statuses() -> set[str]:
            jobs = (await a.get("/v1/jobs", params={"limit": 100})).json()["items"]
            return {job["status"] for job in jobs}

        await wait_until(a_statuses, lambda statuses: statuses == {"completed"}, timeout=30)
        # A's deliveries are hanging in the tarpit now; B's job starts.
        hook = {"url": receiver.url(), "events": ["job.completed"]}
        response = await b.post("/v1/jobs", json={"url": hostile.url("/ok?b=1"), "webhook": hook})
        assert response.status_code == 202
        job_id = response.json()["id"]

        async def b_status() -> str:
            status: str = (await b.get(f"/v1/jobs/{job_id}")).json()["status"]
            return status

        await wait_until(b_status, lambda status: status == "completed", timeout=30, interval=0.02)
        finished = time.monotonic()
        await eventually(lambda: receiver.accepted("job.completed"), timeout=60)
        delay = time.monotonic() - finished
    assert receiver.accepted("job.completed")[0].json["job_id"] == job_id
    assert delay < 5.0, f"key B's job.completed arrived {delay:.1f}s after the job ended"
