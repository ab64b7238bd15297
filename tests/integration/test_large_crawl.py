"""A 500-page crawl through the public API stores exactly the expected pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.conftest import TrawlServer
from tests.site import Site


async def test_500_page_crawl_is_complete_and_exact(
    make_server: Callable[..., Any], site_factory: Callable[..., Site]
) -> None:
    trawl: TrawlServer = await make_server(concurrency=16, per_host_concurrency=16)
    site = site_factory(pages=499, fanout=8)
    expected = site.expected_urls(10)
    assert len(expected) == 500
    job = await trawl.submit(
        {
            "url": site.url("/"),
            "max_depth": 10,
            "max_pages": 1000,
            "formats": ["metadata", "text", "links"],
        }
    )
    done = await trawl.wait_job(job["id"], timeout=90)
    assert done["status"] == "completed"
    assert done["stats"]["pages_fetched"] == 500
    response = await trawl.client.get(f"/v1/jobs/{job['id']}/results.ndjson")
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    urls = [line["url"] for line in lines]
    assert len(urls) == len(set(urls)) == 500
    assert set(urls) == expected
    page = next(line for line in lines if line["url"] == site.url("/p/3"))
    assert page["title"] == "Page 3"
    assert page["metadata"]["description"] == "Description of page 3"
    # Every page request was made once (robots.txt aside).
    assert len([r for r in site.requests if r.path != "/robots.txt"]) == 500
