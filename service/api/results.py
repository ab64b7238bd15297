"""Result routes: cursor pages and an NDJSON stream, straight from stored JSON."""

from __future__ import annotations

import json

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from service.api import schemas
from service.api.context import ctx
from service.api.jobs import load_job
from service.api.params import choice_param, cursor_param, int_param
from service.models import Outcome
from service.store.base import encode_cursor

bp = Blueprint("results", url_prefix="/v1/jobs")

_OUTCOMES = tuple(o.value for o in Outcome)
_JOB_ID = openapi.definitions.Parameter(
    "job_id", str, "path", description="The job's id", required=True
)
_OUTCOME = schemas.query(
    "outcome", "Only results with this outcome", type="string", enum=list(_OUTCOMES)
)


def _outcome(request: Request) -> Outcome | None:
    value = choice_param(request, "outcome", _OUTCOMES)
    return Outcome(value) if value else None


@bp.get("/<job_id:str>/results")
@openapi.definition(
    summary="Page through a job's results",
    description=(
        "Results in storage order; pages are stable while the job runs. Until the job "
        "has finished, `next_cursor` is always set (an empty page means: poll again "
        "later); it is null once every result of a finished job has been returned."
    ),
    parameter=[
        _JOB_ID,
        schemas.query("limit", "Page size", type="integer", minimum=1, maximum=1000, default=50),
        schemas.query("cursor", "`next_cursor` of the previous page", type="string"),
        _OUTCOME,
    ],
    response=[
        schemas.ok(200, schemas.PageList, "A page of results"),
        *schemas.problems(401, 404, 422, 429),
    ],
    secured={"bearerAuth": []},
)
async def list_results(request: Request, job_id: str) -> HTTPResponse:
    outcome = _outcome(request)
    limit = int_param(request, "limit", 50, 1, 1000)
    after = cursor_param(request) or 0
    # The status is read before the rows: a job is marked finished in the transaction
    # that stores its last result, so "finished" here means every row is visible below.
    job = await load_job(request, job_id)
    rows = await ctx(request).db.list_results(job_id, outcome, limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    if rows and (more or not job.status.is_final):
        cursor: str | None = encode_cursor(rows[-1][0])
    elif not job.status.is_final:
        # Caught up with a job that is still running: the same position, to poll again.
        cursor = encode_cursor(after)
    else:
        cursor = None
    # The pages are stored as JSON documents: splice them in rather than re-encode.
    body = (
        '{"items":['
        + ",".join(page for _, page in rows)
        + '],"next_cursor":'
        + json.dumps(cursor)
        + "}"
    )
    return HTTPResponse(body.encode(), content_type="application/json")


@bp.get("/<job_id:str>/results.ndjson")
@openapi.definition(
    summary="Stream every result, one JSON document per line",
    parameter=[_JOB_ID, _OUTCOME],
    response=[
        openapi.definitions.Response(
            {"application/x-ndjson": schemas.ref(schemas.PageOut)},
            status=200,
            description="One PageOut JSON document per line",
        ),
        *schemas.problems(401, 404, 422, 429),
    ],
    secured={"bearerAuth": []},
)
async def stream_results(request: Request, job_id: str) -> None:
    outcome = _outcome(request)
    await load_job(request, job_id)
    response = await request.respond(content_type="application/x-ndjson")
    buffer: list[str] = []
    async for page in ctx(request).db.iter_results(job_id, outcome):
        buffer.append(page)
        if len(buffer) >= 100:
            await response.send(("\n".join(buffer) + "\n").encode())
            buffer.clear()
    if buffer:
        await response.send(("\n".join(buffer) + "\n").encode())
    await response.eof()
