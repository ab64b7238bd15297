"""LangChain's FireCrawlLoader (langchain-community) pointed at Trawl."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

from tests.conftest import TrawlServer
from tests.site import Site

with warnings.catch_warnings():
    # langchain-community warns on import that it is being sunset; the loader still works.
    warnings.simplefilter("ignore", DeprecationWarning)
    loaders = pytest.importorskip("langchain_community.document_loaders")

KEY = "lc-test-key"


@pytest.fixture
async def server(make_server: Any) -> TrawlServer:
    server: TrawlServer = await make_server(api_keys=(KEY,))
    return server


def load(server: TrawlServer, url: str, mode: str, **params: Any) -> list[Any]:
    loader = loaders.FireCrawlLoader(
        url=url, api_key=KEY, api_url=server.base_url, mode=mode, params=params
    )
    return list(loader.load())


async def test_scrape_crawl_and_map_modes(server: TrawlServer, site: Site) -> None:
    scraped = await asyncio.to_thread(load, server, site.url("/p/1"), "scrape")
    assert len(scraped) == 1
    assert "Page 1" in scraped[0].page_content
    assert scraped[0].metadata["title"] == "Page 1"

    crawled = await asyncio.to_thread(
        load, server, site.url("/"), "crawl", limit=5, max_discovery_depth=2, poll_interval=1
    )
    assert len(crawled) == 5
    assert all(doc.page_content for doc in crawled)

    mapped = await asyncio.to_thread(load, server, site.url("/"), "map")
    assert site.url("/p/0") in {doc.page_content for doc in mapped}
