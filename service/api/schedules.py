"""Schedule routes: create, list, read, change (pause, resume, retime), delete. Thin:
validate (service/schedules.py), call the store, wake the ticker, serialise."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from service.api import openapi, schemas
from service.api.context import AppContext, ctx
from service.api.jobs import read_json_body
from service.api.params import cursor_param, int_param
from service.api.submission import owner_of
from service.errors import Conflict, NotFound, field_error
from service.schedules import Schedule, ScheduleInput, ScheduleLimits, Timing, parse_schedule
from service.store.base import encode_cursor
from service.store.schedules import NewSchedule, ScheduleChange
from service.submission import limits_of
from service.ticker import ScheduleTicker, SystemClock

bp = Blueprint("schedules", url_prefix="/v1/schedules")

SCHEDULE_ID = {"schedule_id": "The schedule's id (from `POST /v1/schedules`)"}
RUNS_SHOWN = 10  # recent runs in a schedule's JSON
_SYSTEM_CLOCK = SystemClock()


def limits(app: AppContext) -> ScheduleLimits:
    settings = app.settings
    return ScheduleLimits(
        min_interval=settings.min_schedule_interval,
        job_limits=limits_of(settings),
    )


def _now(app: AppContext) -> float:
    return (app.clock or _SYSTEM_CLOCK).now()


def _changed(app: AppContext) -> None:
    # Other processes' tickers hear of it by NOTIFY (store/schedules.py).
    if app.ticker is not None:
        app.ticker.wake()


async def render(app: AppContext, schedules: list[Schedule]) -> list[dict[str, Any]]:
    """Schedules as JSON with their recent runs and those runs' jobs (three queries)."""
    store = app.db
    runs = await store.schedules.recent_runs([s.id for s in schedules], RUNS_SHOWN)
    job_ids = sorted({r.job_id for rs in runs.values() for r in rs if r.job_id})
    jobs = {job.id: job.as_dict() for job in await store.get_jobs(job_ids)}
    return [s.as_dict(runs.get(s.id, []), jobs) for s in schedules]


@bp.post("")
@openapi.operation(
    "create_schedule",
    summary="Run a job on a schedule",
    description=(
        "`job` is validated exactly as `POST /v1/jobs` validates a job. Give `cron` (five "
        "fields or `@daily`, read in `timezone`, default UTC) or `every` (`30m`, `6h`, `1d`: "
        "the first run is at once). Each run is a recrawl of the previous run's job (the "
        "first is a plain job); a run is skipped while the previous one is still queued or "
        "running; runs missed while the service was down make one catch-up run."
    ),
    body=openapi.Body(schema=schemas.ScheduleIn, examples=schemas.SCHEDULE_EXAMPLES),
    responses={
        201: openapi.json(
            schemas.ScheduleOut,
            "Created; `Location: /v1/schedules/{id}`",
            headers={"Location": "string"},
        )
    },
    problems=(400, 413, 415, 422, 503),
)
async def create_schedule(request: Request) -> HTTPResponse:
    app = ctx(request)
    value = parse_schedule(read_json_body(request), limits(app))
    assert value.job is not None  # required on create
    now = _now(app)
    timing = Timing(
        cron=value.cron, every=value.every, timezone=value.timezone or "UTC", anchor=now
    )
    paused = bool(value.paused)
    schedule = await app.db.schedules.create(
        NewSchedule(
            id=str(uuid.uuid4()),
            owner=owner_of(request) or "",
            name=value.name,
            request=value.job.normalised(),
            timing=timing,
            paused=paused,
            next_run_at=None if paused else timing.first_tick(now),
            created_at=now,
        ),
        limit=app.settings.max_schedules_per_key,
    )
    _changed(app)
    (body,) = await render(app, [schedule])
    return json_response(body, status=201, headers={"Location": f"/v1/schedules/{schedule.id}"})


@bp.get("")
@openapi.operation(
    "list_schedules",
    summary="List schedules, newest first",
    params=(
        openapi.query("limit", "Page size", type="integer", minimum=1, maximum=100, default=20),
        openapi.query("cursor", "`next_cursor` of the previous page", type="string"),
    ),
    responses={200: openapi.json(schemas.ScheduleList, "A page of schedules")},
    problems=(422,),
)
async def list_schedules(request: Request) -> HTTPResponse:
    app = ctx(request)
    limit = int_param(request, "limit", 20, 1, 100)
    page = await app.db.schedules.page(owner_of(request), limit + 1, cursor_param(request))
    more = len(page) > limit
    page = page[:limit]
    return json_response(
        {
            "items": await render(app, page),
            "next_cursor": encode_cursor(page[-1].seq) if more and page else None,
        }
    )


def unknown_schedule(schedule_id: str) -> NotFound:
    shown = schedule_id if len(schedule_id) <= 64 else schedule_id[:63] + "…"
    return NotFound(f"No schedule with id {shown!r}.")


@bp.get("/<schedule_id:str>")
@openapi.operation(
    "get_schedule",
    summary="Read a schedule and its recent runs",
    path=SCHEDULE_ID,
    responses={200: openapi.json(schemas.ScheduleOut, "The schedule")},
    problems=(404,),
)
async def get_schedule(request: Request, schedule_id: str) -> HTTPResponse:
    app = ctx(request)
    schedule = await app.db.schedules.get(schedule_id, owner_of(request))
    if schedule is None:
        raise unknown_schedule(schedule_id)
    (body,) = await render(app, [schedule])
    return json_response(body)


@bp.get("/<schedule_id:str>/runs")
@openapi.operation(
    "list_schedule_runs",
    summary="A schedule's runs, newest first",
    description=(
        "Each tick the schedule fired for: the job it started (with its status and change "
        "counts) or why it was skipped. The newest 50 runs are kept."
    ),
    path=SCHEDULE_ID,
    params=(
        openapi.query("limit", "Page size", type="integer", minimum=1, maximum=100, default=20),
        openapi.query("cursor", "`next_cursor` of the previous page", type="string"),
    ),
    responses={200: openapi.json(schemas.ScheduleRunList, "A page of runs")},
    problems=(404, 422),
)
async def list_schedule_runs(request: Request, schedule_id: str) -> HTTPResponse:
    app = ctx(request)
    limit = int_param(request, "limit", 20, 1, 100)
    before = cursor_param(request)
    if await app.db.schedules.get(schedule_id, owner_of(request)) is None:
        raise unknown_schedule(schedule_id)
    runs = await app.db.schedules.runs(schedule_id, limit + 1, before)
    more = len(runs) > limit
    runs = runs[:limit]
    job_ids = sorted({run.job_id for run in runs if run.job_id})
    jobs = {job.id: job.as_dict() for job in await app.db.get_jobs(job_ids)}
    return json_response(
        {
            "items": [run.as_dict(jobs.get(run.job_id or "")) for run in runs],
            "next_cursor": encode_cursor(runs[-1].id) if more and runs else None,
        }
    )


@bp.post("/<schedule_id:str>/run")
@openapi.operation(
    "run_schedule",
    summary="Run a schedule now (an extra run; its next tick stays)",
    description=(
        "Starts its job now by the same rules as a tick: a recrawl of the previous run "
        "(a plain job the first time), or a run recorded as `skipped` while the previous "
        "one is still queued or running. Answers the schedule, its new run first in `runs`."
    ),
    path=SCHEDULE_ID,
    body=openapi.Body(
        schema=schemas.RunNow,
        required=False,
        examples={"none": {"summary": "No options", "value": {}}},
    ),
    responses={202: openapi.json(schemas.ScheduleOut, "The schedule with its new run")},
    problems=(400, 404, 409, 413, 415, 422, 503),
)
async def run_schedule(request: Request, schedule_id: str) -> HTTPResponse:
    app = ctx(request)
    owner = owner_of(request)
    if request.body:
        payload = read_json_body(request)
        if not isinstance(payload, dict):
            raise field_error("body", "must be a JSON object (or empty)")
        for name in payload:
            raise field_error(str(name), "unknown field")
    schedule = await app.db.schedules.get(schedule_id, owner)
    if schedule is None:
        raise unknown_schedule(schedule_id)
    # The process's own ticker if it has one (it wakes this process's crawler), else one
    # for this request (a web process: the workers crawl the job).
    ticker = app.ticker or ScheduleTicker(app.settings, app.db, clock=app.clock)
    if await ticker.run_now(schedule) is None:
        raise Conflict("A run of this schedule started at this very moment; try again.")
    if app.ticker is None and app.crawler is not None:
        app.crawler.notify_new_work()
    current = await app.db.schedules.get(schedule_id, owner)
    if current is None:
        raise unknown_schedule(schedule_id)
    (body,) = await render(app, [current])
    return json_response(body, status=202)


def changed(current: Schedule, value: ScheduleInput, now: float) -> ScheduleChange:
    """The schedule after a PATCH (pure: the store runs it on the locked row)."""
    timing = current.timing
    if value.cron is not None:
        timing = dataclasses.replace(timing, cron=value.cron, every=None)
    if value.every is not None:
        # A new interval counts from now: the next run is one interval away.
        timing = dataclasses.replace(timing, every=value.every, cron=None, anchor=now + value.every)
    if value.timezone is not None:
        timing = dataclasses.replace(timing, timezone=value.timezone)
    paused = current.paused if value.paused is None else value.paused
    if paused:
        next_run_at = None
    elif value.retimed:
        next_run_at = timing.first_tick(now)
    elif current.paused or current.next_run_at is None:
        next_run_at = timing.next_or_none(now)  # resumed: no catch-up for the paused time
    else:
        next_run_at = current.next_run_at
    return ScheduleChange(
        name=value.name if value.name_given else current.name,
        request=value.job.normalised() if value.job is not None else current.request,
        timing=timing,
        paused=paused,
        next_run_at=next_run_at,
        # A new job request starts afresh: its first run is a plain job, not a recrawl.
        base_job_id=None if value.job is not None else current.base_job_id,
        updated_at=now,
    )


@bp.patch("/<schedule_id:str>")
@openapi.operation(
    "update_schedule",
    summary="Change a schedule: pause or resume it, retime it, change its job",
    description=(
        "Only the fields given change. `paused: true` stops its runs (`next_run_at` "
        "becomes null); `paused: false` resumes it at its next tick (ticks passed while "
        "paused are not caught up). Giving `cron` replaces `every` and the other way "
        "round; a new `every` counts from now. A new `job` makes the next run a plain job."
    ),
    path=SCHEDULE_ID,
    body=openapi.Body(schema=schemas.SchedulePatch, examples=schemas.SCHEDULE_PATCH_EXAMPLES),
    responses={200: openapi.json(schemas.ScheduleOut, "The schedule as it now is")},
    problems=(400, 404, 413, 415, 422, 503),
)
async def update_schedule(request: Request, schedule_id: str) -> HTTPResponse:
    app = ctx(request)
    value = parse_schedule(read_json_body(request), limits(app), patch=True)
    now = _now(app)
    schedule = await app.db.schedules.update(
        schedule_id, owner_of(request), lambda current: changed(current, value, now)
    )
    if schedule is None:
        raise unknown_schedule(schedule_id)
    _changed(app)
    (body,) = await render(app, [schedule])
    return json_response(body)


@bp.delete("/<schedule_id:str>")
@openapi.operation(
    "delete_schedule",
    summary="Delete a schedule and its run history (its jobs stay)",
    description="Answers the schedule as it was last; afterwards it is a 404.",
    path=SCHEDULE_ID,
    responses={200: openapi.json(schemas.ScheduleOut, "The schedule, as it was")},
    problems=(404, 503),
)
async def delete_schedule(request: Request, schedule_id: str) -> HTTPResponse:
    app = ctx(request)
    owner = owner_of(request)
    schedule = await app.db.schedules.get(schedule_id, owner)
    if schedule is None:
        raise unknown_schedule(schedule_id)
    (body,) = await render(app, [schedule])
    if not await app.db.schedules.delete(schedule_id, owner):
        raise unknown_schedule(schedule_id)
    _changed(app)
    return json_response(body)
