"""Firecrawl-style webhooks for crawls submitted through /v2 (and through the SDK)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from firecrawl import Firecrawl
from firecrawl.v2.types import WebhookConfig

from tests.conftest import TrawlServer, eventually
from tests.integration.test_webhooks import SECRET, Receiver, receiver, receiver_factory
from tests.site import Site

__all__ = ["receiver", "receiver_factory"]  # fixtures


async def test_crawl_webhook_in_firecrawl_shape(
    trawl: TrawlServer, site: Site, receiver: Receiver
) -> None:
    sdk = Firecrawl(api_key=None, api_url=trawl.base_url, max_retries=1)
    hook = WebhookConfig(
        url=receiver.url("/fc"),
        headers={"X-Receiver-Token": "tok-123"},
        metadata={"run": "42"},
        events=["started", "page", "completed"],
    )
    started = await asyncio.to_thread(
        sdk.start_crawl, site.url("/"), limit=4, sitemap="skip", webhook=hook
    )
    await eventually(
        lambda: any(d.json.get("type") == "crawl.completed" for d in receiver.deliveries), 20
    )
    bodies = [d.json for d in receiver.deliveries]
    types = [body["type"] for body in bodies]
    assert types[0] == "crawl.started" and types[-1] == "crawl.completed"
    pages = [body for body in bodies if body["type"] == "crawl.page"]
    assert len(pages) == 4  # one event per page, as Firecrawl sends them
    urls = {body["data"][0]["metadata"]["sourceURL"] for body in pages}
    assert site.url("/") in urls
    for delivery in receiver.deliveries:
        body = delivery.json
        assert body["id"] == started.id and body["metadata"] == {"run": "42"}
        assert body["success"] is True
        expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["x-firecrawl-signature"] == f"sha256={expected}"
        assert delivery.headers["x-receiver-token"] == "tok-123"
    # The receiver's token is a credential too: the job shows it redacted.
    job = await trawl.job(started.id)
    assert job["request"]["webhook"]["headers"] == {"X-Receiver-Token": "[redacted]"}
    assert job["request"]["webhook"]["format"] == "firecrawl.crawl"


async def test_batch_webhook_failed_event_type(
    trawl: TrawlServer, site: Site, receiver: Receiver
) -> None:
    response = await trawl.client.post(
        "/v2/batch/scrape",
        json={"urls": [site.url("/p/1")], "webhook": receiver.url("/b")},
    )
    assert response.status_code == 200, response.text
    await eventually(
        lambda: any(d.json.get("type") == "batch_scrape.completed" for d in receiver.deliveries),
        20,
    )
    types = [d.json["type"] for d in receiver.deliveries]
    assert types == ["batch_scrape.started", "batch_scrape.page", "batch_scrape.completed"]
