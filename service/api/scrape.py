"""POST /v1/scrape: fetch one URL now and answer with its page.

A scrape is a one-page job (max_depth 0, max_pages 1) like any other, so it is listed in
/v1/jobs and keeps every guarantee a job has; the request waits for the engine's signal
that the job finished (see service.completion), up to `timeout` seconds.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import ConfigDict, Field, create_model
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from service.api import openapi, schemas
from service.api.jobs import read_json_body
from service.api.submission import idempotency_key, job_limits, submit_job
from service.api.sync import scrape_page
from service.errors import ValidationFailed, field_error
from service.models import HttpUrl, JobRequest, parse_job_request

bp = Blueprint("scrape", url_prefix="/v1")

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 120.0


def parse_scrape_request(payload: Any, limits: dict[str, int]) -> tuple[JobRequest, float]:
    """A scrape body as a one-page job request and its timeout in seconds."""
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "The request body must be a JSON object.",
            errors=[{"field": "body", "message": "must be a JSON object"}],
        )
    body = dict(payload)
    timeout = scrape_timeout(body.pop("timeout", DEFAULT_TIMEOUT))
    if "urls" in body:
        raise field_error("urls", "a scrape fetches one page: give `url` (POST /v1/jobs for more)")
    if "url" not in body:
        raise field_error("url", "required")
    if body.get("max_depth", 0) != 0:
        raise field_error("max_depth", "a scrape fetches one page: must be 0")
    if body.get("max_pages", 1) != 1:
        raise field_error("max_pages", "a scrape fetches one page: must be 1")
    body["max_depth"] = 0
    body["max_pages"] = 1
    # Someone is waiting on the answer: ahead of crawls (within politeness), unless the
    # caller chose a priority (a key's "high" jobs are bounded in number anyway).
    body.setdefault("priority", "high")
    return parse_job_request(body, limits), timeout


def scrape_timeout(value: Any, field: str = "timeout", high: float = MAX_TIMEOUT) -> float:
    """Seconds to wait: a number above 0 and at most `high`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= high
    ):
        raise field_error(field, f"must be a number of seconds above 0 and at most {high:g}")
    return float(value)


# Documentation only (parse_scrape_request validates): a job's options, for one `url`.
_JOB_OPTIONS: dict[str, Any] = {
    name: (info.annotation, info)
    for name, info in JobRequest.model_fields.items()
    if name not in ("urls", "max_depth", "max_pages")
}
ScrapeRequest = create_model(
    "ScrapeRequest",
    __config__=ConfigDict(extra="forbid"),
    __doc__="The body of `POST /v1/scrape`: a job's options (as in POST /v1/jobs) for one `url`.",
    url=(HttpUrl, Field(description="The page: an absolute http(s) URL")),
    timeout=(
        float,
        Field(
            default=DEFAULT_TIMEOUT,
            gt=0,
            le=MAX_TIMEOUT,
            description="Seconds to wait for the page; then a 504 names the job",
        ),
    ),
    max_depth=(Literal[0], Field(default=0, description="A scrape fetches only the page")),
    max_pages=(Literal[1], Field(default=1, description="A scrape fetches only the page")),
    **_JOB_OPTIONS,
)


class ScrapeOut(schemas.PageOut):
    """The scraped page: a result as in `GET /v1/jobs/{id}/results`, plus its job."""

    job_id: str = Field(description="The one-page job the scrape ran as")


@bp.post("/scrape")
@openapi.operation(
    "scrape",
    summary="Scrape one URL and answer with its page",
    description=(
        "Runs a one-page job (listed in /v1/jobs) and waits for it. Takes a job's options "
        "with `url` (not `urls`) and `timeout` (seconds, default 30, at most 120). When the "
        "page is not ready in time the answer is 504 with the `job_id` of the job, which "
        "carries on. The page is a result as in `GET /v1/jobs/{id}/results`, plus `job_id`."
    ),
    body=openapi.Body(
        schema=ScrapeRequest,
        examples={
            "markdown": {
                "summary": "One page as markdown",
                "value": {"url": "https://example.com/", "formats": ["metadata", "markdown"]},
            }
        },
    ),
    params=(openapi.IDEMPOTENCY_KEY,),
    responses={
        200: openapi.json(
            ScrapeOut,
            "The page (a fetch failure is a page with `error`)",
            headers={"Location": "string"},
        )
    },
    problems=(400, 409, 413, 415, 422, 503, 504),
)
async def scrape(request: Request) -> HTTPResponse:
    job_request, timeout = parse_scrape_request(read_json_body(request), job_limits(request))
    job, _ = await submit_job(request, job_request, key=idempotency_key(request))
    page = await scrape_page(request, job, timeout)
    body = '{"job_id":"' + job.id + '",' + page[1:]
    return HTTPResponse(
        body, content_type="application/json", headers={"Location": f"/v1/jobs/{job.id}"}
    )
