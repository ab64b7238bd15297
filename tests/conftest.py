"""Shared fixtures: a real Trawl server on 127.0.0.1 and a real local site to crawl."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.settings import Settings
from tests.faults.hostile_server import HostileServer
from tests.jobsapi import JobsApi
from tests.site import site, site_factory  # noqa: F401  (fixtures)
from tests.store import pgdb
from tests.waiting import eventually, wait_until  # noqa: F401  (the tests import them from here)

TERMINAL = {"completed", "failed", "cancelled"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test server: private networks allowed (the site is on 127.0.0.1)."""
    base = Settings(
        host="127.0.0.1",
        port=0,
        database_url=f"sqlite:///{tmp_path}/trawl.db",
        allow_private_networks=True,
        concurrency=8,
        per_host_concurrency=8,
        parser_processes=1,
        retry_base_delay=0.05,
        grace_period=5.0,
        rate_limit_per_minute=0,
        webhook_secret="test-secret",
        page_timeout=10.0,
    )
    return base.with_overrides(**overrides)


class TrawlServer(JobsApi):
    """A running Trawl app, with an HTTP client pointed at it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.with_overrides(port=settings.port or free_port())
        self.app = create_app(self.settings)
        # Sanic's TouchUp recompiles class methods per app; a second app in one process
        # then fails to find their source. Tests build many apps, production one.
        self.app.config.TOUCHUP = False
        host = self.settings.host
        client_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.base_url = f"http://{client_host}:{self.settings.port}"
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=10.0, trust_env=False)
        self._server: Any = None

    async def start(self) -> TrawlServer:
        server = await self.app.create_server(
            host=self.settings.host,
            port=self.settings.port,
            return_asyncio_server=True,
            access_log=False,
        )
        assert server is not None
        await server.startup()
        await server.before_start()
        await server.after_start()
        self._server = server
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        await self.client.aclose()
        if server is None:
            return
        await server.before_stop()
        closing = server.close()
        if closing is not None:
            await closing
        await server.after_stop()

    @property
    def crawler(self) -> Any:
        return self.app.ctx.crawler

    async def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Wait until no fetch is in progress in this server's crawler."""

        async def busy() -> int:
            return int(self.crawler.in_flight)

        await wait_until(busy, lambda n: n == 0, timeout)

    async def wait_job(
        self, job_id: str, statuses: set[str] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll until the job reaches one of `statuses` (default: any final status)."""
        wanted = statuses or TERMINAL
        return await wait_until(lambda: self.job(job_id), lambda j: j["status"] in wanted, timeout)


@pytest.fixture
def server_defaults() -> dict[str, Any]:
    """Settings every `make_server` server gets unless the call overrides them (a module
    overrides this fixture, e.g. to run its servers on each backend's `database_url`)."""
    return {}


@pytest.fixture
async def make_server(
    tmp_path: Path, server_defaults: dict[str, Any]
) -> AsyncIterator[Callable[..., Awaitable[TrawlServer]]]:
    """Factory: `await make_server(**settings)` starts a Trawl server; stopped at teardown."""
    servers: list[TrawlServer] = []

    async def make(**overrides: Any) -> TrawlServer:
        server = TrawlServer(test_settings(tmp_path, **{**server_defaults, **overrides}))
        servers.append(server)
        return await server.start()

    yield make
    for server in reversed(servers):
        await server.stop()


@pytest.fixture
async def trawl(make_server: Callable[..., Awaitable[TrawlServer]]) -> TrawlServer:
    return await make_server()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the parametrised backend: a SQLite file, or a new PostgreSQL
    database named after the test module (tests/store has its own, per schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/trawl.db"
        return
    yield from pgdb.fresh_database("trawl_" + request.module.__name__.rsplit("_", 1)[-1])


@pytest.fixture
async def hostile() -> AsyncIterator[HostileServer]:
    """A hostile HTTP server on 127.0.0.1 (tests/faults/hostile_server.py)."""
    server = await HostileServer().start()
    yield server
    await server.close()
