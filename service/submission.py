"""Storing a validated job: the step every way of submitting one goes through.

The HTTP routes (service.api.submission.submit_job, which adds backlog limits and
in-flight idempotency keys), the schedules and the CLI's embedded engine all call
`store_job`, so a job is persisted the same way whichever door it came in by; a recrawl
of an earlier job (service/recrawl.py) is stored by `store_recrawl`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from service import recrawl
from service.errors import Conflict, NotFound
from service.models import Job, JobRequest, utcnow
from service.settings import Settings
from service.spec import CrawlSpec, JobFacts
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


async def store_recrawl(
    store: Store,
    settings: Settings,
    previous_job_id: str,
    overrides: Mapping[str, Any] | None,
    *,
    owner: str | None,
    key: str | None = None,
) -> tuple[Job, bool]:
    """Store a recrawl of `owner`'s job `previous_job_id` (the step under
    `service.api.submission.submit_recrawl`, without the backlog check and wake-ups: the
    schedules' ticker stores runs through it); returns (job, created).

    Raises NotFound, Conflict and ValidationFailed as `submit_recrawl` does, and
    IdempotencyConflict when `key` was used with another request.
    """
    previous = await store.get_job(previous_job_id, owner)
    if previous is None:
        raise unknown_job(previous_job_id)
    if not previous.status.is_final:
        raise Conflict(
            f"Job {previous.id} is still {previous.status.value}; recrawl it once it has ended."
        )
    stored = (await store.job_specs([previous.id])).get(previous.id)
    limits = limits_of(settings)
    pages = await store.revisit_urls(previous.id, limits["max_pages_cap"])
    planned = recrawl.plan_recrawl(
        previous.id,
        previous.request,
        stored.facts if stored is not None else JobFacts(),
        overrides,
        pages,
        settings,
        limits,
    )
    normalised = planned.request.normalised()
    request_hash = hashlib.sha256(
        json.dumps(
            {"recrawl_of": previous.id, "request": normalised},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    ).hexdigest()
    new_job = NewJob(
        id=str(uuid.uuid4()),
        created_at=utcnow(),
        request=normalised,
        seeds=tuple(planned.request.urls),
        max_pages=int(planned.request.max_pages or settings.default_max_pages),
        owner=owner,
        idempotency_key=key,
        request_hash=request_hash,
        webhook=normalised.get("webhook"),
        priority=planned.request.priority,
        high_priority_cap=settings.max_high_priority_jobs_per_key,
        spec=planned.spec,
        recrawl_of=previous.id,
        revisits=planned.revisits,
        facts=planned.facts,
    )
    return await store.create_job(new_job)


def unknown_job(job_id: str) -> NotFound:
    """The 404 of a job id this caller has no job for."""
    # Echo a bounded amount of what the client sent: ids are 36 characters.
    shown = job_id if len(job_id) <= 64 else job_id[:63] + "…"
    return NotFound(f"No job with id {shown!r}.")
