"""A raw Server-Sent Events reader for tests: what is on the wire, message by message."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Message:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


async def messages(response: httpx.Response) -> AsyncIterator[Message]:
    """Parse an open `text/event-stream` response (comment-only blocks included)."""
    current = Message()
    data: list[str] = []
    touched = False
    async for line in response.aiter_lines():
        if line == "":
            if touched:
                current.data = "\n".join(data)
                yield current
            current, data, touched = Message(), [], False
            continue
        touched = True
        if line.startswith(":"):
            current.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            current.event = value
        elif name == "id":
            current.id = value
        elif name == "retry":
            current.retry = int(value)


async def job_events(
    client: httpx.AsyncClient, path: str, **headers: str
) -> AsyncIterator[dict[str, Any]]:
    """The `event: job` documents of one stream, until the server ends it."""
    async with client.stream("GET", path, headers=headers, timeout=60.0) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for message in messages(response):
            if message.event == "job":
                yield message.json()
