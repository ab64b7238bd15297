"""POST /v1/map: a site's URLs from its sitemaps and links, answered in the request.

The map is recorded as a job (listed in /v1/jobs, completed with its page counts) but
nothing else is stored: no frontier, no results. See service.crawl.mapper.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)
from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from service.api import openapi
from service.api.jobs import read_json_body
from service.api.submission import idempotency_key, job_limits, submit_job
from service.api.sync import run_map
from service.crawl.mapper import MapResult, MapSpec
from service.errors import ValidationFailed
from service.models import HttpUrl, JobRequest, Pattern, describe_errors, parse_job_request

bp = Blueprint("map", url_prefix="/v1")


class MapRequest(BaseModel):
    """The body of `POST /v1/map`."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="The site's seed page")
    max_depth: StrictInt = Field(
        default=1,
        ge=0,
        le=5,
        description="Link hops listed from the seed: 1 lists the seed's links (fetching only it)",
    )
    limit: StrictInt = Field(default=1000, ge=1, le=100_000, description="Most URLs answered")
    max_pages: StrictInt = Field(
        default=50, ge=1, le=1000, description="Most pages fetched to find links"
    )
    scope: Literal["same-host", "same-domain", "any"] = Field(
        default="same-host", description="Which URLs are listed"
    )
    include: list[Pattern] = Field(default_factory=list, max_length=100)
    exclude: list[Pattern] = Field(default_factory=list, max_length=100)
    search: Annotated[StrictStr, Field(max_length=500)] | None = Field(
        default=None, description="Only URLs (or titles) containing this, case-insensitively"
    )
    sitemap: Literal["include", "skip", "only"] = Field(
        default="include", description="Use sitemaps too, not at all, or only them"
    )
    respect_robots: StrictBool = Field(default=True, description="Obey robots.txt")
    timeout: Annotated[StrictFloat, Field(ge=0.1, le=120)] = Field(
        default=30.0, description="Seconds for the whole map; then what was found is answered"
    )


class MapLinkOut(BaseModel):
    url: str
    title: str | None


class MapOut(BaseModel):
    links: list[MapLinkOut]
    job_id: str


def parse_map_request(payload: Any) -> MapRequest:
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "The request body must be a JSON object.",
            errors=[{"field": "body", "message": "must be a JSON object"}],
        )
    try:
        return MapRequest.model_validate(payload)
    except ValidationError as exc:
        errors = describe_errors(exc)
        fields = ", ".join(dict.fromkeys(error["field"] for error in errors))
        raise ValidationFailed(f"Invalid request: {fields}", errors=errors) from None


def map_spec(body: MapRequest) -> MapSpec:
    return MapSpec(
        seed=body.url,
        max_depth=body.max_depth,
        limit=body.limit,
        max_pages=body.max_pages,
        search=body.search,
        sitemap=body.sitemap,
        respect_robots=body.respect_robots,
        deadline=body.timeout,
    )


def map_job_request(body: MapRequest, limits: dict[str, int]) -> JobRequest:
    """The job a map is recorded as (what /v1/jobs shows for it)."""
    return parse_job_request(
        {
            "url": body.url,
            "max_depth": body.max_depth,
            "max_pages": body.max_pages,
            "scope": body.scope,
            "include": body.include,
            "exclude": body.exclude,
            "formats": ["links"],
            "respect_robots": body.respect_robots,
            "use_sitemap": body.sitemap != "skip",
        },
        limits,
    )


async def map_site(request: Request, body: MapRequest, key: str | None) -> tuple[str, MapResult]:
    """Record the map's job, run it; returns (job id, result)."""
    job_request = map_job_request(body, job_limits(request))
    job, _ = await submit_job(request, job_request, key=key, queue_seeds=False)
    return job.id, await run_map(request, job, map_spec(body))


@bp.post("/map")
@openapi.operation(
    "map_site",
    summary="Map a site's URLs (sitemaps plus links), fast",
    description=(
        "Lists URLs from the site's sitemaps and from the links of the seed page (and of "
        "pages up to `max_depth` hops, default 1: only the seed is fetched). Recorded as a "
        "job in /v1/jobs; no page content is stored."
    ),
    body=openapi.Body(
        schema=MapRequest,
        examples={
            "site": {"summary": "A site's URLs", "value": {"url": "https://example.com/"}},
            "search": {
                "summary": "Only blog URLs, two hops deep",
                "value": {"url": "https://example.com/", "max_depth": 2, "search": "blog"},
            },
        },
    ),
    params=(openapi.IDEMPOTENCY_KEY,),
    responses={200: openapi.json(MapOut, "The URLs found, in discovery order")},
    problems=(400, 409, 413, 415, 422),
)
async def map_route(request: Request) -> HTTPResponse:
    body = parse_map_request(read_json_body(request))
    job_id, result = await map_site(request, body, idempotency_key(request))
    return json_response(
        {
            "links": [{"url": link.url, "title": link.title} for link in result.links],
            "job_id": job_id,
        }
    )
