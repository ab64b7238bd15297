"""Submitting a validated job: the one path every route that creates jobs goes through.

`POST /v1/jobs`, `POST /v1/scrape`, `POST /v1/map` and the Firecrawl routes all end here,
so backlog limits, idempotency keys and owner scoping hold the same way for each; the
storing itself is `service.submission.store_job`, shared with the embedded engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sanic import Request

from service.api.context import AppContext, ctx
from service.errors import Conflict, Overloaded, ValidationFailed, field_error
from service.models import Job, JobRequest
from service.store.base import IdempotencyConflict
from service.submission import limits_of, store_job, store_recrawl


def owner_of(request: Request) -> str | None:
    """The API key's owner id set by authentication (None without auth)."""
    owner: str | None = getattr(request.ctx, "owner", None)
    return owner


def idempotency_key(request: Request, header: str = "idempotency-key") -> str | None:
    """The request's idempotency key, or None; over 255 characters is a 422."""
    key = (request.headers.get(header) or "").strip() or None
    if key is not None and len(key) > 255:
        raise field_error(header.title(), "must be at most 255 characters")
    return key


def job_limits(request: Request) -> dict[str, int]:
    """The server caps a job request is validated against."""
    return limits_of(ctx(request).settings)


async def submit_job(
    request: Request,
    job_request: JobRequest,
    *,
    key: str | None = None,
    queue_seeds: bool = True,
) -> tuple[Job, bool]:
    """Store a job (or replay the one stored under `key`); returns (job, created).

    `queue_seeds=False` stores the job alone, for work done outside the frontier (a map):
    its caller completes it.
    """
    app = ctx(request)
    owner = owner_of(request)
    return await _submitted(
        app,
        owner,
        key,
        queue_seeds,
        lambda: store_job(
            app.db, app.settings, job_request, owner=owner, key=key, queue_seeds=queue_seeds
        ),
    )


async def submit_recrawl(
    app: AppContext,
    previous_job_id: str,
    overrides: Mapping[str, Any] | None,
    *,
    owner: str | None,
    key: str | None = None,
) -> tuple[Job, bool]:
    """Start a recrawl of `owner`'s job `previous_job_id` (service/recrawl.py), as
    `POST /v1/jobs/{id}/recrawl` does; returns (job, created).

    `overrides` replace fields of the previous job's request. Raises NotFound (no such job
    of this owner), Conflict (it is still queued or running), ValidationFailed (a bad
    override, naming its field), Overloaded (backlog full). Wakes the crawler.
    """
    return await _submitted(
        app,
        owner,
        key,
        True,
        lambda: store_recrawl(
            app.db, app.settings, previous_job_id, overrides, owner=owner, key=key
        ),
    )


async def _submitted(
    app: AppContext,
    owner: str | None,
    key: str | None,
    queue_seeds: bool,
    store: Callable[[], Awaitable[tuple[Job, bool]]],
) -> tuple[Job, bool]:
    """Run `store` under the submission rules: backlog, in-flight idempotency keys; then
    wake the crawler and the webhook dispatcher."""
    settings = app.settings
    if queue_seeds and await app.pending_urls() >= settings.max_pending_urls:
        raise Overloaded(30, "Too many URLs are waiting to be crawled; retry later.")
    flight = (owner or "", key) if key else None
    if flight is not None:
        if flight in app.in_flight_keys:
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        app.in_flight_keys.add(flight)
    try:
        job, created = await store()
    except IdempotencyConflict:
        raise ValidationFailed(
            "This Idempotency-Key was used with a different request body.",
            errors=[{"field": "Idempotency-Key", "message": "reused with a different body"}],
        ) from None
    finally:
        if flight is not None:
            app.in_flight_keys.discard(flight)
    if created and queue_seeds:
        app.pending_changed(job.stats.pages_discovered)
    if app.crawler is not None and queue_seeds:
        app.crawler.notify_new_work()
    if app.webhooks is not None:
        app.webhooks.wake()
    return job, created
