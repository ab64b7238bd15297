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


def _outcome(request: Request) -> Outcome | None:
    value = choice_param(request, "outcome", _OUTCOMES)
    return Outcome(value) if value else None


@bp.get("/<job_id:str>/results")
@openapi.definition(
    summary="Page through a job's results",
    parameter=[
        openapi.definitions.Parameter("limit", int, location="query"),
        openapi.definitions.Parameter("cursor", str, location="query"),
        openapi.definitions.Parameter("outcome", str, location="query"),
    ],
    response=[openapi.definitions.Response({"application/json": schemas.PageList}, status=200)],
)
async def list_results(request: Request, job_id: str) -> HTTPResponse:
    outcome = _outcome(request)
    limit = int_param(request, "limit", 50, 1, 1000)
    after = cursor_param(request) or 0
    await load_job(request, job_id)
    rows = await ctx(request).db.list_results(job_id, outcome, limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(rows[-1][0]) if more else None
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
    parameter=[openapi.definitions.Parameter("outcome", str, location="query")],
    response=[openapi.definitions.Response({"application/x-ndjson": schemas.PageOut})],
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
