"""Operational routes: liveness and Prometheus metrics."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from service import metrics
from service.api import openapi, schemas
from service.api.context import ctx
from service.errors import Overloaded

bp = Blueprint("ops")


@bp.get("/health")
@openapi.operation(
    "health",
    summary="Liveness; also checks the database answers",
    responses={200: openapi.json(schemas.Health, "Serving, and the database answers")},
    problems=(503,),
)
async def health(request: Request) -> HTTPResponse:
    try:
        await ctx(request).db.ping()
    except Exception:
        raise Overloaded(5, "The database is not reachable.") from None
    return json({"status": "ok"})


@bp.get("/metrics")
@openapi.operation(
    "metrics",
    summary="Prometheus metrics (text exposition format)",
    description=(
        "Every tenant's counts, so it needs a bearer credential: an API key or "
        "`SCRAPER_METRICS_TOKEN`. With neither configured it is open on a loopback bind "
        "only."
    ),
    secured=True,
    responses={
        200: openapi.content("Prometheus text format 0.0.4", {"text/plain": {"type": "string"}})
    },
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
