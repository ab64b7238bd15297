"""Storing a validated job: the step every way of submitting one goes through.

The HTTP routes (service.api.submission.submit_job, which adds backlog limits and
in-flight idempotency keys), the schedules and the CLI's embedded engine all call
`store_job`, so a job is persisted the same way whichever door it came in by.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from service.models import Job, JobRequest, utcnow
from service.settings import Settings
from service.spec import CrawlSpec
from service.store.base import NewJob, Store


def limits_of(settings: Settings) -> dict[str, int]:
    """The server caps a job request is validated against."""
    return {
        "max_urls_per_job": settings.max_urls_per_job,
        "max_pages_cap": settings.max_pages_cap,
        "max_depth_cap": settings.max_depth_cap,
        "default_max_pages": settings.default_max_pages,
        "per_host_concurrency_cap": max(16, settings.per_host_concurrency),
        "max_result_ttl": int(settings.max_result_ttl),
    }


async def store_job(
    store: Store,
    settings: Settings,
    job_request: JobRequest,
    *,
    owner: str | None,
    key: str | None = None,
    queue_seeds: bool = True,
) -> tuple[Job, bool]:
    """Store a validated job for `owner`; returns (job, created).

    `queue_seeds=False` stores the job alone, for work done outside the frontier (a map).
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
