"""The API's documented shapes: pydantic models published in /docs/openapi.json.

How a route names them is in `service/api/openapi.py` (read its docstring before adding a
route). Requests are validated with `service.models.JobRequest`; responses are built
directly (stored JSON is spliced, not re-encoded), so the response models here exist to
document them, and tests check real responses against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from service.models import JobRequest

JobStatusName = Literal["queued", "running", "completed", "failed", "cancelled"]


class ChangeCounts(BaseModel):
    new: int = Field(description="Not in the previous job's results")
    changed: int = Field(description="Another main-content text (or an error where it was not)")
    unchanged: int = Field(description="A 304 answer, or the same main-content hash")
    removed: int = Field(description="Gone (404/410), or not reached by this job")


class Stats(BaseModel):
    pages_discovered: int = Field(description="Distinct URLs admitted to the frontier")
    pages_queued: int = Field(description="Admitted and not yet finished")
    pages_fetched: int = Field(description="Fetched and stored without error")
    pages_failed: int = Field(description="Fetch or parse failed for good")
    pages_skipped: int = Field(description="Not fetched on purpose (robots.txt, filters, caps)")
    changes: ChangeCounts | None = Field(
        default=None, description="A recrawl's results by `change` (absent on other jobs)"
    )


class ErrorDetail(BaseModel):
    code: str
    message: str


class JobOut(BaseModel):
    """A job, as returned by every job route."""

    id: str
    status: JobStatusName
    created_at: str = Field(description="RFC 3339")
    started_at: str | None = Field(description="RFC 3339")
    finished_at: str | None = Field(description="RFC 3339")
    request: JobRequest = Field(description="The request as validated and normalised")
    stats: Stats
    error: ErrorDetail | None
    recrawl_of: str | None = Field(
        default=None, description="The job this one recrawls (`POST /v1/jobs/{id}/recrawl`)"
    )


class JobList(BaseModel):
    items: list[JobOut] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: end")


class PageOut(BaseModel):
    """One result: a page fetched (or failed, or skipped) by a job."""

    url: str = Field(description="Canonical form of the requested URL")
    final_url: str | None = Field(description="After redirects")
    depth: int
    status_code: int | None
    content_type: str | None
    fetched_at: str = Field(
        description="RFC 3339; on a recrawl's `removed` page not reached, when that was found"
    )
    elapsed_ms: float | None
    size: int | None = None
    attempts: int = 1
    redirects: list[str] | None = None
    title: str | None = None
    text: str | None = None
    markdown: str | None = None
    html: str | None = None
    links: list[str] | None = None
    metadata: dict[str, str] | None = None
    data: dict[str, list[str]] | None = Field(default=None, description="Selector matches")
    truncated: bool = Field(
        default=False,
        description="Some format was cut at the server's per-format cap (SCRAPER_MAX_FORMAT_BYTES)",
    )
    truncated_formats: list[str] | None = Field(
        default=None, description="Which formats were cut, when `truncated`"
    )
    links_dropped: int | None = Field(
        default=None, description="Links longer than 8192 characters, left out"
    )
    change: Literal["new", "changed", "unchanged", "removed"] | None = Field(
        default=None,
        description=(
            "A recrawl's results only: how the page compares with the previous job's "
            "(`unchanged`: a 304, or the same main-content hash; `removed`: now 404/410, "
            "not reached by this job, or no longer linked: see `removed_reason`)"
        ),
    )
    removed_reason: Literal["unlinked"] | None = Field(
        default=None,
        description=(
            "On a `removed` page still served (200): `unlinked`, no page of this job links "
            "to it any more (its content is the one fetched now)"
        ),
    )
    previous_fetched_at: str | None = Field(
        default=None, description="A recrawl's results: when the previous job fetched the page"
    )
    changes: str | None = Field(
        default=None,
        description=(
            "With the `changes` format, on a `changed` page: a unified diff of the "
            "main-content text against the previous version (at most 64 KiB)"
        ),
    )
    not_modified: bool | None = Field(
        default=None,
        description="The server answered 304: this is the previous result, not downloaded again",
    )
    error: ErrorDetail | None


class PageList(BaseModel):
    items: list[PageOut]
    next_cursor: str | None = Field(
        description=(
            "Pass as ?cursor= for the next page. Always set while the job runs (poll it); "
            "null once a finished job's last result has been returned"
        )
    )


class FieldError(BaseModel):
    field: str = Field(description="Offending field or parameter, like `urls[2]` or `limit`")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document: every error response."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    job_id: str | None = Field(
        default=None, description="On a 504 from a synchronous route: the job still running"
    )


class FirecrawlError(BaseModel):
    """An error of the Firecrawl-compatible API (/v2/): Firecrawl's own shape."""

    success: Literal[False]
    error: str = Field(description="What went wrong")
    code: str | None = Field(default=None, description="A machine-readable error code")
    details: list[FieldError] | None = Field(
        default=None, description="Each offending field, for invalid requests"
    )


class Health(BaseModel):
    status: Literal["ok"]


# Shown in /docs as a drop-down of ready-to-send bodies for POST /v1/jobs.
JOB_REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "scrape": {
        "summary": "Scrape one page",
        "value": {"urls": ["https://example.com/"], "formats": ["metadata", "markdown"]},
    },
    "crawl": {
        "summary": "Crawl a site two links deep",
        "value": {
            "urls": ["https://example.com/"],
            "max_depth": 2,
            "max_pages": 100,
            "scope": "same-host",
            "include": [],
            "exclude": ["/login"],
            "formats": ["metadata", "text", "links"],
            "respect_robots": True,
        },
    },
    "selectors": {
        "summary": "Extract data with CSS selectors",
        "value": {
            "urls": ["https://example.com/products"],
            "selectors": {"name": "h1", "price": {"css": ".price", "all": False}},
        },
    },
    "webhook": {
        "summary": "Be told when it finishes",
        "value": {
            "urls": ["https://example.com/"],
            "max_depth": 1,
            "webhook": {
                "url": "https://hooks.example.com/trawl",
                "events": ["job.completed", "job.failed"],
            },
        },
    },
}


def _optional(annotation: Any) -> Any:
    return annotation | None


# POST /v1/jobs/{id}/recrawl: any job request field, each replacing the stored one.
RecrawlOverrides: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "RecrawlOverrides",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Fields of the previous job's request to replace (all optional).",
    url=(str | None, Field(default=None, description="One seed URL, replacing `urls`")),
    **{
        name: (_optional(info.annotation), Field(default=None, description=info.description))
        for name, info in JobRequest.model_fields.items()
    },
)

RECRAWL_EXAMPLES: dict[str, dict[str, Any]] = {
    "as_before": {"summary": "The same job again", "value": {}},
    "with_diffs": {
        "summary": "With a diff of each changed page, and a webhook when anything changed",
        "value": {
            "formats": ["metadata", "text", "links", "changes"],
            "webhook": {"url": "https://hooks.example.com/trawl", "events": ["job.changed"]},
        },
    },
}


class ScheduleIn(BaseModel):
    """The body of `POST /v1/schedules` (give exactly one of `cron` and `every`)."""

    job: JobRequest = Field(description="A job request, validated as `POST /v1/jobs` does")
    cron: str | None = Field(
        default=None,
        description="Five cron fields (minute hour day month weekday) or @hourly/@daily/...",
        examples=["0 6 * * *"],
    )
    every: str | int | None = Field(
        default=None,
        description="An interval: `30m`, `6h`, `1d` (or seconds); at least the server's "
        "SCRAPER_MIN_SCHEDULE_INTERVAL. The first run is at once",
        examples=["6h"],
    )
    timezone: str = Field(
        default="UTC", description="IANA time zone the cron expression is read in"
    )
    name: str | None = Field(default=None, max_length=200)
    paused: bool = Field(default=False, description="Create it paused")


class SchedulePatch(BaseModel):
    """The body of `PATCH /v1/schedules/{id}`: only the fields given change."""

    job: JobRequest | None = None
    cron: str | None = None
    every: str | int | None = None
    timezone: str | None = None
    name: str | None = Field(default=None, max_length=200)
    paused: bool | None = Field(default=None, description="true pauses, false resumes")


class ScheduleRunOut(BaseModel):
    """One tick of a schedule: the job it started, or why it was skipped."""

    tick_at: str = Field(description="RFC 3339: when it was due")
    fired_at: str = Field(description="RFC 3339: when it fired")
    status: str = Field(
        description="The job's status (queued, running, completed, ...), or `skipped`, "
        "`failed`, `pending` (its job is being created)"
    )
    job_id: str | None
    reason: str | None = Field(
        description="Why it was skipped or failed: `previous_run_active`, `overloaded`, "
        "`invalid_request: ...`"
    )
    missed: int = Field(description="Ticks passed over while no process ran (a catch-up run)")
    stats: dict[str, Any] | None = Field(description="The job's stats")
    changes: ChangeCounts | None = Field(
        description="Pages by change against the previous run (recrawls), or null"
    )


class ScheduleOut(BaseModel):
    """A schedule, as returned by every schedule route."""

    id: str
    name: str | None
    job: JobRequest = Field(description="The job request each run submits")
    cron: str | None
    every: str | None = Field(description="The interval, like `6h`")
    every_seconds: float | None
    timezone: str
    paused: bool
    next_run_at: str | None = Field(description="RFC 3339; null while paused")
    last_run_at: str | None = Field(description="RFC 3339")
    last_job_id: str | None = Field(description="The job the last run started")
    created_at: str = Field(description="RFC 3339")
    updated_at: str = Field(description="RFC 3339")
    runs: list[ScheduleRunOut] = Field(description="Recent runs, newest first")


class RunNow(BaseModel):
    """The (optional, empty) body of `POST /v1/schedules/{id}/run`."""

    model_config = ConfigDict(extra="forbid")


class ScheduleRunList(BaseModel):
    items: list[ScheduleRunOut] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: end")


class ScheduleList(BaseModel):
    items: list[ScheduleOut] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: end")


SCHEDULE_EXAMPLES: dict[str, dict[str, Any]] = {
    "daily": {
        "summary": "Recrawl a site every morning at 6, Paris time",
        "value": {
            "job": {"urls": ["https://example.com/"], "max_depth": 2, "formats": ["markdown"]},
            "cron": "0 6 * * *",
            "timezone": "Europe/Paris",
            "name": "example.com docs",
        },
    },
    "interval": {
        "summary": "Check one page every 6 hours",
        "value": {"job": {"url": "https://example.com/pricing"}, "every": "6h"},
    },
}

SCHEDULE_PATCH_EXAMPLES: dict[str, dict[str, Any]] = {
    "pause": {"summary": "Pause", "value": {"paused": True}},
    "resume": {"summary": "Resume", "value": {"paused": False}},
    "retime": {"summary": "Run hourly instead", "value": {"cron": "0 * * * *"}},
}
