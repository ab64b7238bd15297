"""Operational routes: liveness and Prometheus metrics."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from service import metrics
from service.api import schemas
from service.api.context import ctx
from service.errors import Overloaded

bp = Blueprint("ops")


@bp.get("/health")
@openapi.definition(
    summary="Liveness; also checks the database answers",
    response=[
        schemas.ok(200, schemas.Health, "Serving, and the database answers"),
        *schemas.problems(503),
    ],
)
async def health(request: Request) -> HTTPResponse:
    try:
        await ctx(request).db.ping()
    except Exception:
        raise Overloaded(5, "The database is not reachable.") from None
    return json({"status": "ok"})


@bp.get("/metrics")
@openapi.definition(
    summary="Prometheus metrics (text exposition format)",
    response=openapi.definitions.Response(
        {"text/plain": {"schema": schemas.RawSchema(type="string")}},
        status=200,
        description="Prometheus text format 0.0.4",
    ),
)
async def prometheus(request: Request) -> HTTPResponse:
    app = ctx(request)
    counts = await app.db.jobs_by_status()
    for status in ("queued", "running", "completed", "failed", "cancelled"):
        metrics.JOBS.labels(status=status).set(counts.get(status, 0))
    if app.probe is not None:
        app.probe.publish()
    if app.crawler is not None:
        metrics.QUEUE_DEPTH.set(app.crawler.scheduler.buffered)
    return HTTPResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")
