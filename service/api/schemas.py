"""The OpenAPI document's schemas: pydantic models, published as `components.schemas`.

Requests are validated with `service.models.JobRequest`; responses are built directly
(stored JSON is spliced, not re-encoded), so the response models here exist only to
document them. sanic-ext's own pydantic conversion inlines models badly (it lists
`model_config` as a property and types enums as objects), so every model is converted
here from pydantic's JSON Schema to OpenAPI 3.0 and referenced with `$ref`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from sanic_ext.extensions.openapi.builders import SpecificationBuilder
from sanic_ext.extensions.openapi.definitions import Parameter, Reference, Response
from sanic_ext.extensions.openapi.types import Schema

from service.models import JobRequest

JobStatusName = Literal["queued", "running", "completed", "failed", "cancelled"]


class Stats(BaseModel):
    pages_discovered: int = Field(description="Distinct URLs admitted to the frontier")
    pages_queued: int = Field(description="Admitted and not yet finished")
    pages_fetched: int = Field(description="Fetched and stored without error")
    pages_failed: int = Field(description="Fetch or parse failed for good")
    pages_skipped: int = Field(description="Not fetched on purpose (robots.txt, filters, caps)")


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
    fetched_at: str = Field(description="RFC 3339")
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


class Health(BaseModel):
    status: Literal["ok"]


MODELS: tuple[type[BaseModel], ...] = (
    JobRequest,
    JobOut,
    JobList,
    PageOut,
    PageList,
    Problem,
    Health,
)
_REF_PREFIX = "#/components/schemas/"
_DROP = frozenset({"propertyNames"})  # JSON Schema keywords OpenAPI 3.0 does not have


def to_openapi30(schema: Any) -> Any:
    """Rewrite pydantic's JSON Schema (2020-12) in OpenAPI 3.0's dialect."""
    if isinstance(schema, list):
        return [to_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: to_openapi30(value) for key, value in schema.items() if key not in _DROP}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    variants = out.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        rest = [variant for variant in variants if variant != {"type": "null"}]
        del out["anyOf"]
        out["nullable"] = True
        if len(rest) == 1 and "$ref" not in rest[0]:
            out = {**rest[0], **out}
        elif len(rest) == 1:
            out["allOf"] = rest  # siblings of a $ref are ignored in 3.0
        else:
            out["anyOf"] = rest
    if "$ref" in out and len(out) > 1:
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def component_schemas() -> dict[str, Any]:
    """Every documented model, keyed by its name, in OpenAPI 3.0 form."""
    _, document = models_json_schema(
        [(model, "validation") for model in MODELS],
        ref_template=_REF_PREFIX + "{model}",
    )
    schemas: dict[str, Any] = to_openapi30(document.get("$defs", {}))
    return schemas


def ref(model: type[BaseModel]) -> dict[str, Any]:
    """A media type entry pointing at a model's component schema."""
    return {"schema": Reference(_REF_PREFIX + model.__name__)}  # type: ignore[no-untyped-call]


class RawSchema(Schema):
    """A schema given as plain JSON Schema (sanic-ext would otherwise drop unknown keys)."""

    def __init__(self, **fields: Any) -> None:
        super().__init__(**fields)  # type: ignore[no-untyped-call]

    def guard(self, fields: dict[str, Any]) -> dict[str, Any]:
        return fields


def query(name: str, description: str, **schema: Any) -> Parameter:
    """An optional query parameter with an exact schema."""
    return Parameter(name, RawSchema(**schema), "query", description=description)


_PROBLEM_TEXT = {
    400: "Malformed JSON body",
    401: "Missing or invalid API key (only when the server sets SCRAPER_API_KEYS)",
    404: "No such job (or it belongs to another API key)",
    409: "The same Idempotency-Key is still being processed",
    413: "Request body too large",
    415: "Body is not `application/json`",
    422: "Invalid request; `errors` names each offending field",
    429: "Rate limited; see Retry-After",
    503: "Too much work queued; see Retry-After",
}


def ok(status: int, model: type[BaseModel], description: str) -> Response:
    return Response({"application/json": ref(model)}, status=status, description=description)


def problems(*statuses: int) -> list[Response]:
    """Error responses, all problem+json."""
    return [
        Response(
            {"application/problem+json": ref(Problem)},
            status=status,
            description=_PROBLEM_TEXT[status],
        )
        for status in statuses
    ]


def register() -> None:
    """Publish the components once per process (sanic-ext's spec builder is a singleton)."""
    spec = SpecificationBuilder()
    for name, schema in component_schemas().items():
        spec.add_component("schemas", name, schema)
    spec.add_component(
        "securitySchemes",
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "Needed on /v1/* when the server sets SCRAPER_API_KEYS.",
        },
    )


register()
