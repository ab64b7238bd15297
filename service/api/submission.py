"""Submitting a validated job: the one path every route that creates jobs goes through.

`POST /v1/jobs`, `POST /v1/scrape`, `POST /v1/map` and the Firecrawl routes all end here,
so backlog limits, idempotency keys and owner scoping hold the same way for each.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from sanic import Request

from service.api.context import ctx
from service.errors import Conflict, Overloaded, ValidationFailed, field_error
from service.models import Job, JobRequest, utcnow
from service.settings import Settings
from service.spec import CrawlSpec
from service.store.base import IdempotencyConflict, NewJob, Store


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


def limits_of(settings: Settings) -> dict[str, int]:
    """The server caps a job request is validated against (without a request)."""
    return {
        "max_urls_per_job": settings.max_urls_per_job,
        "max_pages_cap": settings.max_pages_cap,
        "max_depth_cap": settings.max_depth_cap,
        "default_max_pages": settings.default_max_pages,
        "per_host_concurrency_cap": max(16, settings.per_host_concurrency),
        "max_result_ttl": int(settings.max_result_ttl),
    }


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
    settings = app.settings
    if queue_seeds and await app.pending_urls() >= settings.max_pending_urls:
        raise Overloaded(30, "Too many URLs are waiting to be crawled; retry later.")
    owner = owner_of(request)
    flight = (owner or "", key) if key else None
    if flight is not None:
        if flight in app.in_flight_keys:
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        app.in_flight_keys.add(flight)
    try:
        job, created = await store_job(
            app.db, settings, job_request, owner=owner, key=key, queue_seeds=queue_seeds
        )
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


async def store_job(
    store: Store,
    settings: Settings,
    job_request: JobRequest,
    *,
    owner: str | None,
    key: str | None = None,
    queue_seeds: bool = True,
) -> tuple[Job, bool]:
    """Store a validated job for `owner` (the step under `submit_job`, without HTTP: the
    schedules' ticker submits through it); returns (job, created).

    Raises IdempotencyConflict when `key` was used with another request. The caller wakes
    the crawler and the webhook dispatcher.
    """
    normalised = job_request.normalised()
    request_hash = hashlib.sha256(
        json.dumps(normalised, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    new_job = NewJob(
        id=str(uuid.uuid4()),
        created_at=utcnow(),
        request=normalised,
        seeds=tuple(job_request.urls) if queue_seeds else (),
        max_pages=int(job_request.max_pages or settings.default_max_pages),
        owner=owner,
        idempotency_key=key,
        request_hash=request_hash,
        webhook=normalised.get("webhook"),
        priority=job_request.priority,
        high_priority_cap=settings.max_high_priority_jobs_per_key,
        spec=CrawlSpec.from_request(job_request),
    )
    return await store.create_job(new_job)
