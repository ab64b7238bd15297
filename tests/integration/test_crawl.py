"""End-to-end crawls through the public API against the local site."""

from __future__ import annotations

import pytest

from tests.conftest import TrawlServer
from tests.site import Site


@pytest.mark.parametrize("depth", [0, 1, 3])
async def test_crawl_yields_exactly_the_expected_urls(
    trawl: TrawlServer, site: Site, depth: int
) -> None:
    job = await trawl.submit({"url": site.url("/"), "max_depth": depth, "max_pages": 1000})
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"
    results = await trawl.results(job["id"])
    urls = [item["url"] for item in results]
    assert len(urls) == len(set(urls)), "a page was stored twice"
    assert set(urls) == site.expected_urls(depth)
    assert done["stats"]["pages_fetched"] == len(urls)
    assert done["stats"]["pages_discovered"] == len(urls)
    assert done["stats"]["pages_queued"] == 0
    assert all(item["error"] is None and item["status_code"] == 200 for item in results)
