"""Job routes: submit, poll, list, cancel. Thin: validate, call the store, serialise."""

from __future__ import annotations

import json
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from service.api import openapi, schemas
from service.api.context import ctx
from service.api.params import bool_param, choice_param, cursor_param, int_param
from service.api.submission import (
    idempotency_key,
    job_limits,
    owner_of,
    submit_job,
    submit_recrawl,
)
from service.errors import BadRequest, UnsupportedMedia
from service.models import Job, JobRequest, JobStatus, parse_job_request
from service.store.base import encode_cursor
from service.submission import unknown_job

bp = Blueprint("jobs", url_prefix="/v1/jobs")

JOB_ID = {"job_id": "The job's id (from `POST /v1/jobs`)"}
_STATUSES = [status.value for status in JobStatus]


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not.
    raise ValueError(f"{name} is not valid JSON")


def read_json_body(request: Request) -> Any:
    """The request body as JSON, or 415/400 problems."""
    content_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMedia()
    try:
        return json.loads(request.body or b"", parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.") from None
    except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
        raise BadRequest(f"The request body is not valid JSON: {exc}") from None


@bp.post("")
@openapi.operation(
    "create_job",
    summary="Submit a scrape or crawl job",
    description=(
        "Validates and stores the job, then answers at once; poll the `Location` "
        "URL. `url` (one string) may be given instead of `urls`."
    ),
    body=openapi.Body(schema=JobRequest, examples=schemas.JOB_REQUEST_EXAMPLES),
    params=(openapi.IDEMPOTENCY_KEY,),
    responses={
        202: openapi.json(
            schemas.JobOut,
            "Accepted; poll `Location: /v1/jobs/{id}`",
            headers={"Location": "string", "Idempotent-Replayed": "string"},
        )
    },
    problems=(400, 409, 413, 415, 422, 503),
)
async def create_job(request: Request) -> HTTPResponse:
    payload = read_json_body(request)
    job_request = parse_job_request(payload, job_limits(request))
    job, created = await submit_job(request, job_request, key=idempotency_key(request))
    return accepted(job, created)


def accepted(job: Job, created: bool) -> HTTPResponse:
    """202 with the job and its `Location`; `Idempotent-Replayed` when it was stored before."""
    headers = {"Location": f"/v1/jobs/{job.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(job.as_dict(), status=202, headers=headers)


@bp.post("/<job_id:str>/recrawl")
@openapi.operation(
    "recrawl_job",
    summary="Recrawl a job: fetch its pages again and say what changed",
    description=(
        "Starts a new job from this (ended) job's request, with the body's fields "
        "replacing the stored ones (validated like a job request; an empty body or `{}` "
        "changes nothing). It fetches the previous job's pages again, revalidating them "
        "with their `ETag` / `Last-Modified` (a `304` is not downloaded again: the result "
        "is the previous one), and discovers new pages by the usual rules. Each result "
        "has `change` (`new`, `changed`, `unchanged`, `removed`) and "
        "`previous_fetched_at`; the job has `recrawl_of` and `stats.changes`."
    ),
    path=JOB_ID,
    body=openapi.Body(
        schema=schemas.RecrawlOverrides, required=False, examples=schemas.RECRAWL_EXAMPLES
    ),
    params=(openapi.IDEMPOTENCY_KEY,),
    responses={
        202: openapi.json(
            schemas.JobOut,
            "Accepted: the recrawl job; poll `Location: /v1/jobs/{id}`",
            headers={"Location": "string", "Idempotent-Replayed": "string"},
        )
    },
    problems=(400, 404, 409, 413, 415, 422, 503),
)
async def recrawl_job(request: Request, job_id: str) -> HTTPResponse:
    overrides = read_json_body(request) if request.body else None
    job, created = await submit_recrawl(
        ctx(request),
        job_id,
        overrides,
        owner=owner_of(request),
        key=idempotency_key(request),
    )
    return accepted(job, created)


@bp.get("")
@openapi.operation(
    "list_jobs",
    summary="List jobs, newest first",
    params=(
        openapi.query("status", "Only jobs in this status", type="string", enum=_STATUSES),
        openapi.query("limit", "Page size", type="integer", minimum=1, maximum=100, default=20),
        openapi.query("cursor", "`next_cursor` of the previous page", type="string"),
    ),
    responses={200: openapi.json(schemas.JobList, "A page of jobs")},
    problems=(422,),
)
async def list_jobs(request: Request) -> HTTPResponse:
    status_text = choice_param(request, "status", tuple(s.value for s in JobStatus))
    limit = int_param(request, "limit", 20, 1, 100)
    before = cursor_param(request)
    jobs = await ctx(request).db.list_jobs(
        owner_of(request), JobStatus(status_text) if status_text else None, limit + 1, before
    )
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return json_response(
        {
            "items": [job.as_dict() for job in jobs],
            "next_cursor": encode_cursor(jobs[-1].seq) if more and jobs else None,
        }
    )


async def load_job(request: Request, job_id: str) -> Job:
    """The caller's job, or 404 (another key's job is indistinguishable from none)."""
    job = await ctx(request).db.get_job(job_id, owner_of(request))
    if job is None:
        raise unknown_job(job_id)
    return job


@bp.get("/<job_id:str>")
@openapi.operation(
    "get_job",
    summary="Poll a job",
    path=JOB_ID,
    responses={200: openapi.json(schemas.JobOut, "The job")},
    problems=(404,),
)
async def get_job(request: Request, job_id: str) -> HTTPResponse:
    return json_response((await load_job(request, job_id)).as_dict())


@bp.delete("/<job_id:str>")
@openapi.operation(
    "cancel_job",
    summary="Cancel a job (idempotent); with `purge=true`, delete it and all its data",
    description=(
        "Answers the job: `cancelled`, or its final status if it had already ended. "
        "With `?purge=true` a running job is cancelled first, then the job, its results "
        "and its frontier are deleted (the answer is the job as it was last); afterwards "
        "the job is a 404."
    ),
    path=JOB_ID,
    params=[
        openapi.query(
            "purge", "Also delete the job and all its data", type="boolean", default=False
        )
    ],
    responses={200: openapi.json(schemas.JobOut, "The job")},
    problems=(404, 422, 503),
)
async def cancel_job(request: Request, job_id: str) -> HTTPResponse:
    return json_response((await cancel(request, job_id)).as_dict())


async def cancel(request: Request, job_id: str) -> Job:
    """Cancel the caller's job (idempotent): the job as it now is, or 404."""
    app = ctx(request)
    purge = bool_param(request, "purge")
    job = await app.db.cancel_job(job_id, owner_of(request))
    if job is None:
        raise unknown_job(job_id)
    if app.crawler is not None and job.status is JobStatus.CANCELLED:
        await app.crawler.job_cancelled(job_id)
    app.completions.finished([job_id])
    app.pending_changed(None)
    if purge:
        await app.db.purge_job(job_id)
        if app.retention is not None:
            app.retention.purged()
    if app.webhooks is not None:
        app.webhooks.wake()
    return job
