"""The client's SSE handling over a mock transport: reconnects, Last-Event-ID, errors."""

from __future__ import annotations

import json

import httpx
import pytest

from service.client import AsyncClient, Client, NotFoundError, RateLimitError


def job(status: str, fetched: int) -> dict[str, object]:
    return {
        "id": "j1",
        "status": status,
        "created_at": "2026-01-01T00:00:00.000Z",
        "started_at": None,
        "finished_at": None,
        "request": {"urls": ["https://example.com/"]},
        "stats": {"pages_discovered": 5, "pages_fetched": fetched},
        "error": None,
    }


def frame(state: dict[str, object], event_id: str) -> bytes:
    return f"id: {event_id}\nevent: job\ndata: {json.dumps(state)}\n\n".encode()


class Streams:
    """First connection: one state then a cut; second: the final state."""

    def __init__(self) -> None:
        self.last_event_ids: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.last_event_ids.append(request.headers.get("last-event-id"))
        if len(self.last_event_ids) == 1:
            body = b"retry: 10\n\n: hello\n\n" + frame(job("running", 1), "a")
        else:
            body = frame(job("running", 3), "b") + frame(job("completed", 5), "c")
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


async def test_async_watch_reconnects_with_last_event_id() -> None:
    streams = Streams()
    async with AsyncClient("http://t", transport=httpx.MockTransport(streams)) as client:
        states = [state async for state in client.watch("j1")]
    assert [s.stats.pages_fetched for s in states] == [1, 3, 5]
    assert states[-1].status == "completed"
    assert streams.last_event_ids == [None, "a"]


def test_blocking_watch_reconnects_with_last_event_id() -> None:
    streams = Streams()
    with Client("http://t", transport=httpx.MockTransport(streams)) as client:
        final = client.wait("j1")
    assert final.status == "completed" and streams.last_event_ids == [None, "a"]


def test_problem_fields_and_retry_after() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(
                404,
                json={"type": "t", "title": "Not Found", "status": 404, "detail": "no job"},
            )
        return httpx.Response(
            429,
            json={"type": "t", "title": "Too Many Requests", "status": 429, "detail": "slow"},
            headers={"Retry-After": "7"},
        )

    with Client("http://t", transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(RateLimitError) as limited:
            client.get("j1")
        assert limited.value.retry_after == 7.0 and limited.value.detail == "slow"
        with pytest.raises(NotFoundError) as missing:
            list(client.watch("j1"))
        assert missing.value.detail == "no job"
