"""Live progress routes: Server-Sent Events fed by the one progress watcher."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from service.api import openapi
from service.api.context import ctx
from service.api.jobs import JOB_ID, load_job
from service.errors import Overloaded, field_error
from service.models import Job
from service.progress import Subscription

bp = Blueprint("events", url_prefix="/v1")

_MAX_JOBS_PER_STREAM = 100
# A browser reconnects this many milliseconds after a dropped stream.
_RETRY_MS = 2000
_HEADERS = {
    "Cache-Control": "no-store",
    # Tell reverse proxies (nginx) not to buffer the stream.
    "X-Accel-Buffering": "no",
}
_STREAM_DOC = (
    "`text/event-stream`. Each message is `event: job` with the job's JSON as `data` and "
    "an `id` naming that state. The current state is sent at once (also to a client "
    "reconnecting with `Last-Event-ID`), then a message whenever the job changes (at most "
    "4 a second: changes in between are coalesced), ending with the final state, after "
    "which the stream closes. Comment lines keep an idle stream open."
)


def _event_stream_response(description: str) -> openapi.Reply:
    return openapi.content(description, {"text/event-stream": {"type": "string"}})


async def _stream(request: Request, jobs: list[Job]) -> HTTPResponse | None:
    hub = ctx(request).progress
    if hub is None or hub.stopped:
        raise Overloaded(5, "The service is shutting down; reconnect shortly.")
    if request.method == "HEAD":
        return HTTPResponse(content_type="text/event-stream", headers=_HEADERS)
    response = await request.respond(content_type="text/event-stream", headers=_HEADERS)
    await response.send(f"retry: {_RETRY_MS}\n\n".encode())
    subscription: Subscription
    with hub.subscribe(jobs) as subscription:
        async for frame in subscription.frames():
            await response.send(frame)
    await response.eof()
    return None


@bp.get("/jobs/<job_id:str>/events")
@openapi.operation(
    "job_events",
    summary="Live progress of a job (Server-Sent Events)",
    description=_STREAM_DOC,
    path=JOB_ID,
    params=(
        openapi.header(
            "Last-Event-ID",
            "Sent by reconnecting clients; the current state is sent at once",
            type="string",
        ),
    ),
    responses={200: _event_stream_response("A stream of `event: job` messages")},
    problems=(404, 503),
)
async def job_events(request: Request, job_id: str) -> HTTPResponse | None:
    return await _stream(request, [await load_job(request, job_id)])


@bp.get("/events")
@openapi.operation(
    "jobs_events",
    summary="Live progress of several jobs (Server-Sent Events)",
    description=(
        "Like `GET /v1/jobs/{id}/events` for up to 100 jobs at once (`?job=ID&job=ID`), in "
        "one connection: browsers allow only a few per origin. Unknown ids are ignored. "
        "The stream ends once every listed job is final."
    ),
    params=(
        openapi.query(
            "job",
            "A job id; repeat for more (at most 100)",
            required=True,
            type="array",
            items={"type": "string"},
            maxItems=_MAX_JOBS_PER_STREAM,
        ),
    ),
    responses={
        200: _event_stream_response("A stream of `event: job` messages, one job per message")
    },
    problems=(422, 503),
)
async def jobs_events(request: Request) -> HTTPResponse | None:
    ids = list(dict.fromkeys(request.args.getlist("job") or []))
    if not ids:
        raise field_error("job", "give at least one job id (?job=ID)")
    if len(ids) > _MAX_JOBS_PER_STREAM:
        raise field_error("job", f"at most {_MAX_JOBS_PER_STREAM} jobs per stream")
    owner: str | None = getattr(request.ctx, "owner", None)
    jobs = [
        job for job in await ctx(request).db.get_jobs(ids) if (job.owner or "") == (owner or "")
    ]
    return await _stream(request, jobs)
