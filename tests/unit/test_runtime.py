"""The composition root: open in order, and close what was opened when a step fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.crawl.parsepool import ParsePool
from service.runtime import Runtime
from service.settings import Settings
from service.store.core import SQLStore


def settings_for(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/rt.db", parser_processes=1)


async def test_web_role_opens_store_and_fetcher_only(tmp_path: Path) -> None:
    runtime = await Runtime.open(settings_for(tmp_path), crawl=False)
    try:
        await runtime.store.ping()
        assert runtime.fetcher is not None
        assert runtime.crawler is None and runtime.parser is None and runtime.webhooks is None
    finally:
        await runtime.close()
    with pytest.raises(RuntimeError):
        runtime.store  # noqa: B018 - closed


async def test_a_failing_step_closes_what_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []

    async def broken_warm_up(self: ParsePool) -> None:
        raise OSError("no processes today")

    original_close = ParsePool.close

    def close(self: ParsePool) -> None:
        closed.append("parser")
        original_close(self)

    original_store_close = SQLStore.close

    async def store_close(self: SQLStore) -> None:
        closed.append("store")
        await original_store_close(self)

    monkeypatch.setattr(ParsePool, "warm_up", broken_warm_up)
    monkeypatch.setattr(ParsePool, "close", close)
    monkeypatch.setattr(SQLStore, "close", store_close)
    with pytest.raises(OSError, match="no processes today"):
        await Runtime.open(settings_for(tmp_path), crawl=True)
    assert closed == ["parser", "store"]  # in reverse order of opening


async def test_crawl_role_drains_then_closes_in_reverse(tmp_path: Path) -> None:
    runtime = await Runtime.open(settings_for(tmp_path), crawl=True)
    assert runtime.crawler is not None and runtime.webhooks is not None
    await runtime.drain()
    assert runtime.stop.is_set()
    await runtime.close()
    await runtime.close()  # idempotent
