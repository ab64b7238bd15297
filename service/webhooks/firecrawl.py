"""Firecrawl-style webhook bodies and signatures, for jobs submitted through /v2.

Such a job's webhook has `format` "firecrawl.crawl" or "firecrawl.batch_scrape"; the
dispatcher (service.webhooks.dispatcher) delivers its events as usual (outbox, retries, at least
once) but shapes each body as Firecrawl does: `{success, type: "crawl.page", id, data:
[documents], metadata, error}`, signed in `X-Firecrawl-Signature: sha256=<hex HMAC-SHA256
of the raw body>`, with the webhook's own `headers` added.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from service.api.firecrawl.translate import document
from service.spec import WebhookSpec

# Trawl event type -> Firecrawl's suffix (job.cancelled has no Firecrawl counterpart).
SUFFIXES = {
    "job.started": "started",
    "job.page": "page",
    "job.completed": "completed",
    "job.failed": "failed",
}
FIRECRAWL_TO_TRAWL = {suffix: event for event, suffix in SUFFIXES.items()}
# Headers of our own a webhook's `headers` may not replace.
_RESERVED = frozenset({"content-type", "content-length", "host", "x-firecrawl-signature"})


def _prefix(webhook: WebhookSpec) -> str:
    return webhook.format.removeprefix("firecrawl.")


def _metadata(webhook: WebhookSpec) -> dict[str, Any]:
    return dict(webhook.metadata or {})


def lifecycle_body(webhook: WebhookSpec, event_type: str, payload: str) -> bytes | None:
    """The body for an outbox event (None: Firecrawl has no such event; skip it)."""
    suffix = SUFFIXES.get(event_type)
    if suffix is None or suffix == "page":
        return None
    job = json.loads(payload).get("job") or {}
    body: dict[str, Any] = {
        "success": suffix != "failed",
        "type": f"{_prefix(webhook)}.{suffix}",
        "id": job.get("id"),
        "data": [],
        "metadata": _metadata(webhook),
    }
    if suffix == "failed":
        body["error"] = (job.get("error") or {}).get("message") or "the job failed"
    return json.dumps(body, separators=(",", ":")).encode()


def page_body(webhook: WebhookSpec, job_id: str, rows: list[tuple[int, str]]) -> bytes | None:
    """A page event carrying the documents of the successfully fetched rows (None: none)."""
    documents = []
    for _, page_json in rows:
        page = json.loads(page_json)
        if page.get("error") is None:
            documents.append(document(page, job_id))
    if not documents:
        return None
    body = {
        "success": True,
        "type": f"{_prefix(webhook)}.page",
        "id": job_id,
        "data": documents,
        "metadata": _metadata(webhook),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def sign(secret: str, body: bytes) -> str:
    """`X-Firecrawl-Signature`: `sha256=` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(webhook: WebhookSpec, secret: str, body: bytes) -> dict[str, str]:
    """The webhook's own headers, then the signature (which they cannot replace)."""
    own = {name: value for name, value in webhook.headers if name.lower() not in _RESERVED}
    own["X-Firecrawl-Signature"] = sign(secret, body)
    return own
