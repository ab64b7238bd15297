"""robots.txt fetches against a real server on 127.0.0.1 whose robots.txt hangs or 5xxs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from service.crawl.fetcher import Fetcher
from service.crawl.robots import RobotsCache
from service.runtime import fetch_options
from service.settings import Settings
from tests.conftest import TrawlServer


class RobotsServer:
    """Answers /robots.txt per `mode` ("hang": never, "503"), and any other path with a page."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.asked: Counter[str] = Counter()
        self.release = asyncio.Event()  # set at teardown: hanging answers end then
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    def url(self, path: str) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                self.asked[path] += 1
                if path == "/robots.txt" and self.mode == "hang":
                    await self.release.wait()
                    return
                if path == "/robots.txt":
                    status, body, kind = "503 Service Unavailable", b"down", "text/plain"
                else:
                    status, body, kind = "200 OK", b"<title>Up</title><p>up</p>", "text/html"
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def robots_server() -> AsyncIterator[list[RobotsServer]]:
    servers: list[RobotsServer] = []
    yield servers
    for server in servers:
        await server.close()


async def serve(servers: list[RobotsServer], mode: str) -> RobotsServer:
    server = RobotsServer(mode)
    await server.start()
    servers.append(server)
    return server


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    fetcher = Fetcher(fetch_options(Settings(allow_private_networks=True)))
    yield fetcher
    await fetcher.aclose()


async def test_a_hanging_robots_txt_is_given_up_on_within_the_fetch_bound(
    robots_server: list[RobotsServer], fetcher: Fetcher
) -> None:
    server = await serve(robots_server, "hang")
    robots = RobotsCache(fetcher, "Trawl/1.0", fetch_timeout=0.5, retry_after=60)
    started = time.monotonic()
    verdict = await robots.check(server.url("/page"))
    waited = time.monotonic() - started
    # Taken but never answered is a server error (RFC 9309 2.3.1.4): held back, not let
    # through to pages the server may well serve.
    assert verdict.allowed is None
    assert time.time() + 55 < verdict.retry_at <= time.time() + 60
    assert 0.5 <= waited < 3.0, waited
    # Another job's check of the same host is answered from the cache, at once.
    started = time.monotonic()
    assert (await robots.check(server.url("/other"))).allowed is None
    assert time.monotonic() - started < 0.1
    assert server.asked["/robots.txt"] == 1
    assert server.asked["/page"] == server.asked["/other"] == 0


async def test_an_unreachable_robots_txt_lets_the_pages_go_ahead(fetcher: Fetcher) -> None:
    # A port nothing listens on: the pages' own fetch meets the same refusal and says so.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    robots = RobotsCache(fetcher, "Trawl/1.0", retry_after=60)
    verdict = await robots.check(f"http://127.0.0.1:{port}/page")
    assert verdict.allowed is True
    assert robots.fetches == 1


async def test_robots_5xx_is_fetched_once_for_every_job(
    robots_server: list[RobotsServer], fetcher: Fetcher
) -> None:
    server = await serve(robots_server, "503")
    robots = RobotsCache(fetcher, "Trawl/1.0")
    verdicts = await asyncio.gather(*(robots.check(server.url(f"/p{i}")) for i in range(5)))
    assert {v.allowed for v in verdicts} == {None}  # held back, RFC 9309 2.3.1.4
    assert server.asked["/robots.txt"] == 1


async def test_scrape_answers_at_once_when_robots_txt_5xxs(
    make_server: object, robots_server: list[RobotsServer]
) -> None:
    server = await serve(robots_server, "503")
    trawl: TrawlServer = await make_server()  # type: ignore[operator]
    started = time.monotonic()
    first = await trawl.client.post("/v1/scrape", json={"url": server.url("/a"), "timeout": 20})
    second = await trawl.client.post("/v1/scrape", json={"url": server.url("/b"), "timeout": 20})
    # Not held for the 30 s robots.txt pause (a 504 at the scrape's timeout): blocked now.
    assert time.monotonic() - started < 10
    for response in (first, second):
        assert response.status_code == 200, response.text
        assert response.json()["error"]["code"] == "blocked_by_robots"
    assert server.asked["/a"] == server.asked["/b"] == 0
    assert server.asked["/robots.txt"] == 1  # the second job used the first's answer
