"""Firecrawl's v2 API at the root (`/v2/...`), so its SDKs and tools work unchanged.

Each route translates the request (service.api.firecrawl.translate), then runs it as a
Trawl job through the same path as /v1 (submit_job: limits, ownership, idempotency via
`x-idempotency-key`); errors come out in Firecrawl's shape (service.errors). The SDK
joins paths onto the API URL from the root, which is why these are not under a prefix.
"""

from __future__ import annotations

import json
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from service.api import openapi
from service.api.context import ctx
from service.api.firecrawl import schemas as fc
from service.api.firecrawl import translate
from service.api.jobs import cancel, load_job, read_json_body
from service.api.maps import map_site, parse_map_request
from service.api.params import cursor_param
from service.api.results import ResultRows
from service.api.submission import idempotency_key, job_limits, submit_job
from service.api.sync import scrape_page
from service.errors import Conflict, FetchFailed
from service.models import Job, JobStatus, Outcome, check_http_url, parse_job_request
from service.store.base import encode_cursor

bp = Blueprint("firecrawl", url_prefix="/v2")

TAG = "firecrawl"
PAGE_SIZE = 100  # documents per status page (Firecrawl pages by size; so do we, too)
MAX_ERRORS = 1000
DEFAULT_SCRAPE_TIMEOUT = 30.0
_KEY_HEADER = "x-idempotency-key"
_KEY_PARAM = openapi.header(
    "x-idempotency-key",
    "Retrying with the same key and body returns the original job",
    type="string",
    maxLength=255,
)
_JOB_ID = {"job_id": "The crawl or batch id (a Trawl job id)"}

# Page error codes of a synchronous scrape -> (HTTP status, Firecrawl error code).
_SCRAPE_FAILURES = {
    "dns_error": (500, "SCRAPE_DNS_RESOLUTION_ERROR"),
    "tls_error": (500, "SCRAPE_SSL_ERROR"),
    "timeout": (408, "SCRAPE_TIMEOUT"),
    "blocked_by_robots": (403, "SCRAPE_BLOCKED_BY_ROBOTS"),
    "private_address": (403, "SCRAPE_ADDRESS_NOT_ALLOWED"),
}


def _base(request: Request) -> str:
    return f"{request.scheme}://{request.host}"


def _warning(ignored: tuple[str, ...]) -> str | None:
    if not ignored:
        return None
    return "Trawl accepted but ignored: " + ", ".join(ignored) + "."


def _job_body(translated: translate.Translated) -> dict[str, Any]:
    body = dict(translated.job)
    if translated.headers:
        body["headers"] = translated.headers
    if translated.webhook:
        body["webhook"] = translated.webhook
    return body


async def _submit(request: Request, translated: translate.Translated) -> Job:
    limits = job_limits(request)
    job_request = parse_job_request(_job_body(translated), limits)
    job, _ = await submit_job(request, job_request, key=idempotency_key(request, _KEY_HEADER))
    return job


@bp.post("/scrape")
@openapi.operation(
    "firecrawl_scrape",
    tag=TAG,
    summary="Firecrawl: scrape one URL",
    description="Firecrawl's `POST /v2/scrape`, run as a one-page Trawl job.",
    body=openapi.Body(
        schema=fc.FcScrapeRequest,
        examples={"page": {"summary": "Markdown", "value": {"url": "https://example.com/"}}},
    ),
    responses={200: openapi.json(fc.FcScrapeResponse, "The document")},
    problems=(400, 403, 408, 409, 413, 415, 500, 503),
    params=(_KEY_PARAM,),
)
async def scrape(request: Request) -> HTTPResponse:
    translated = translate.scrape_request(read_json_body(request))
    job = await _submit(request, translated)
    page = json.loads(await scrape_page(request, job, translated.timeout or DEFAULT_SCRAPE_TIMEOUT))
    error = page.get("error")
    if error and error.get("code") != "http_error":
        status, code = _SCRAPE_FAILURES.get(error.get("code"), (500, "SCRAPE_FAILED"))
        raise FetchFailed(
            f"Could not scrape {page.get('url')}: {error.get('message') or error.get('code')}",
            status=status,
            code=code,
        )
    document = translate.document(page, job.id)
    warning = _warning(translated.ignored)
    if warning:
        document["warning"] = warning  # where the SDK reads it
    return json_response({"success": True, "data": document})


@bp.post("/crawl")
@openapi.operation(
    "firecrawl_crawl",
    tag=TAG,
    summary="Firecrawl: start a crawl",
    description="Firecrawl's `POST /v2/crawl`, run as a Trawl job (listed in /v1/jobs).",
    body=openapi.Body(
        schema=fc.FcCrawlRequest,
        examples={
            "site": {"summary": "Ten pages", "value": {"url": "https://example.com/", "limit": 10}}
        },
    ),
    responses={200: openapi.json(fc.FcStarted, "Started")},
    problems=(400, 409, 413, 415, 503),
    params=(_KEY_PARAM,),
)
async def start_crawl(request: Request) -> HTTPResponse:
    translated = translate.crawl_request(read_json_body(request), job_limits(request))
    job = await _submit(request, translated)
    return json_response(
        {"success": True, "id": job.id, "url": f"{_base(request)}/v2/crawl/{job.id}"}
    )


@bp.post("/batch/scrape")
@openapi.operation(
    "firecrawl_batch_scrape",
    tag=TAG,
    summary="Firecrawl: start a batch scrape",
    description="Firecrawl's `POST /v2/batch/scrape`: one Trawl job over the URLs.",
    body=openapi.Body(
        schema=fc.FcBatchRequest,
        examples={
            "two": {
                "summary": "Two pages",
                "value": {"urls": ["https://example.com/a", "https://example.com/b"]},
            }
        },
    ),
    responses={200: openapi.json(fc.FcStarted, "Started")},
    problems=(400, 409, 413, 415, 503),
    params=(_KEY_PARAM,),
)
async def start_batch(request: Request) -> HTTPResponse:
    translated, invalid = translate.batch_request(read_json_body(request), check_http_url)
    job = await _submit(request, translated)
    return json_response(
        {
            "success": True,
            "id": job.id,
            "url": f"{_base(request)}/v2/batch/scrape/{job.id}",
            "invalidURLs": invalid,
        }
    )


async def _status(request: Request, job_id: str, kind: str) -> HTTPResponse:
    # The status is read before the rows: a job is marked finished in the transaction
    # that stores its last result, so "completed" means every document is visible.
    job = await load_job(request, job_id)
    app = ctx(request)
    after = cursor_param(request) or 0
    budget = app.settings.max_response_bytes
    rows = ResultRows(app.db, job_id, Outcome.OK, after, budget)
    data: list[dict[str, Any]] = []
    size = 0
    last = after
    more = False
    while (row := await rows.peek(PAGE_SIZE - len(data) + 1)) is not None:
        if len(data) == PAGE_SIZE or (data and size + len(row[1]) > budget):
            more = True
            break
        rows.take()
        data.append(translate.document_json(row[1]))
        size += len(row[1])
        last = row[0]
    body = translate.status_body(job)
    if more:
        body["next"] = f"{_base(request)}/v2/{kind}/{job_id}?cursor={encode_cursor(last)}"
    body["data"] = data
    return json_response(body)


def _refuse_finished(job: Job) -> None:
    """Firecrawl answers 409 to cancelling a job that has completed or failed."""
    if job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
        raise Conflict(f"The job has already {job.status.value}; there is nothing to cancel.")


async def _cancel(request: Request, job_id: str) -> HTTPResponse:
    _refuse_finished(await load_job(request, job_id))
    # The job may finish between the read above and the cancel: what the cancel left
    # is the answer (a crawl that completed meanwhile was not cancelled).
    _refuse_finished(await cancel(request, job_id))
    return json_response({"success": True, "status": "cancelled"})


async def _errors(request: Request, job_id: str) -> HTTPResponse:
    await load_job(request, job_id)
    app = ctx(request)
    budget = app.settings.max_response_bytes
    errors: list[dict[str, Any]] = []
    async for row_id, page_json in ResultRows(app.db, job_id, Outcome.FAILED, 0, budget):
        errors.append(translate.crawl_error(row_id, json.loads(page_json)))
        if len(errors) >= MAX_ERRORS:
            break
    blocked: list[str] = []
    async for _, page_json in ResultRows(app.db, job_id, Outcome.SKIPPED, 0, budget):
        page = json.loads(page_json)
        if (page.get("error") or {}).get("code") == "blocked_by_robots":
            blocked.append(page["url"])
            if len(blocked) >= MAX_ERRORS:
                break
    return json_response({"errors": errors, "robotsBlocked": blocked})


_STATUS_RESPONSES = {200: openapi.json(fc.FcJobStatus, "Status and a page of documents")}
_STATUS_PARAMS = (openapi.query("cursor", "From `next` of the previous page", type="string"),)
_CANCEL_RESPONSES = {200: openapi.json(fc.FcCancelled, "Cancelled")}
_ERRORS_RESPONSES = {200: openapi.json(fc.FcErrors, "The errors")}


def _job_routes(kind: str, short: str, noun: str) -> None:
    """A job kind's status, cancel and errors routes: `/v2/{kind}/<id>` (crawl, batch)."""

    @bp.get(f"/{kind}/<job_id:str>", name=f"{short}_status")
    @openapi.operation(
        f"firecrawl_{short}_status",
        tag=TAG,
        summary=f"Firecrawl: {noun} status and documents",
        path=_JOB_ID,
        responses=_STATUS_RESPONSES,
        params=_STATUS_PARAMS,
        problems=(400, 404),
    )
    async def status(request: Request, job_id: str) -> HTTPResponse:
        return await _status(request, job_id, kind)

    @bp.delete(f"/{kind}/<job_id:str>", name=f"cancel_{short}")
    @openapi.operation(
        f"firecrawl_cancel_{short}",
        tag=TAG,
        summary=f"Firecrawl: cancel a {noun}",
        path=_JOB_ID,
        responses=_CANCEL_RESPONSES,
        problems=(404, 409),
    )
    async def cancel_job(request: Request, job_id: str) -> HTTPResponse:
        return await _cancel(request, job_id)

    @bp.get(f"/{kind}/<job_id:str>/errors", name=f"{short}_errors")
    @openapi.operation(
        f"firecrawl_{short}_errors",
        tag=TAG,
        summary=f"Firecrawl: a {noun}'s failed and robots-blocked URLs",
        path=_JOB_ID,
        responses=_ERRORS_RESPONSES,
        problems=(404,),
    )
    async def errors(request: Request, job_id: str) -> HTTPResponse:
        return await _errors(request, job_id)


_job_routes("crawl", "crawl", "crawl")
_job_routes("batch/scrape", "batch", "batch scrape")


@bp.post("/map")
@openapi.operation(
    "firecrawl_map",
    tag=TAG,
    summary="Firecrawl: map a site's URLs",
    description="Firecrawl's `POST /v2/map`, served by Trawl's map (see POST /v1/map).",
    body=openapi.Body(
        schema=fc.FcMapRequest,
        examples={"site": {"summary": "A site", "value": {"url": "https://example.com/"}}},
    ),
    responses={200: openapi.json(fc.FcMapResponse, "The URLs")},
    problems=(400, 409, 413, 415),
    params=(_KEY_PARAM,),
)
async def map_route(request: Request) -> HTTPResponse:
    body = parse_map_request(translate.map_request(read_json_body(request)))
    _, result = await map_site(request, body, idempotency_key(request, _KEY_HEADER))
    links = [
        {"url": link.url, **({"title": link.title} if link.title else {})} for link in result.links
    ]
    return json_response({"success": True, "links": links})
