"""How a route is documented in /docs/openapi.json: one decorator, next to the route.

Every API route carries `@openapi.operation(...)`, written below its route decorator:

    from service.api import openapi, schemas

    @bp.get("/<job_id:str>")
    @openapi.operation(
        "get_job",                            # operationId: the generated client's function
        summary="Poll a job",
        responses={200: openapi.json(schemas.JobOut, "The job")},
        problems=(404,),                      # error statuses; every one is problem+json
    )
    async def get_job(request: Request, job_id: str) -> HTTPResponse: ...

- Path parameters come from the route itself and are always required; `path={"job_id":
  "..."}` only describes them.
- Query and header parameters: `params=(openapi.query(...), openapi.header(...))`.
- Bodies and responses name pydantic models (`service/api/schemas.py`, or next to the
  routes they serve); each is published once under `components/schemas` and `$ref`ed.
  Give JSON request bodies `examples`. Non-JSON responses: `openapi.content(...)`.
- The tag is the blueprint's name unless `tag=` says otherwise (Firecrawl's: "firecrawl").
- Routes under /v1/ and /v2/ need the bearer key (`secured=` overrides): their 401 and
  429 problems are added here, so `problems` lists only the route's own.
- tests/api/test_openapi.py fails for any route without an operation, except the few
  non-API routes (docs and dashboard assets) on its explicit allow-list, and checks the
  document with openapi-spec-validator and openapi-python-client.

The document is OpenAPI 3.1, whose schemas are JSON Schema 2020-12: pydantic's output
as it is. (3.0's `nullable` cannot be put on a `$ref`: `X | None` would not validate.)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from sanic import Sanic

from service.api.schemas import FirecrawlError, Problem

OPENAPI_VERSION = "3.1.0"
REF_PREFIX = "#/components/schemas/"
SECURITY_SCHEME = "bearerAuth"
SECURED_PREFIXES = ("/v1/", "/v2/")

# A schema is a pydantic model (published as a component and referenced) or a plain
# OpenAPI schema object.
SchemaLike = type[BaseModel] | Mapping[str, Any]
Handler = TypeVar("Handler", bound=Callable[..., Any])

_ATTRIBUTE = "__trawl_operation__"


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """A query or header parameter."""

    name: str
    location: str
    description: str
    schema: Mapping[str, Any]
    required: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One response: its description, bodies by media type, and headers."""

    description: str
    content: Mapping[str, SchemaLike] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Body:
    """A request body with named examples (`{name: {"summary": ..., "value": ...}}`)."""

    schema: SchemaLike
    description: str | None = None
    media_type: str = "application/json"
    examples: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    required: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """What `operation()` records on a handler."""

    operation_id: str
    summary: str
    description: str | None
    tag: str | None
    body: Body | None
    responses: Mapping[int, Reply]
    problems: tuple[int, ...]
    params: tuple[Param, ...]
    path: Mapping[str, str]
    secured: bool | None
    deprecated: bool


def operation(
    operation_id: str,
    *,
    summary: str,
    responses: Mapping[int, Reply],
    description: str | None = None,
    tag: str | None = None,
    body: Body | type[BaseModel] | None = None,
    problems: Iterable[int] = (),
    params: Sequence[Param] = (),
    path: Mapping[str, str] | None = None,
    secured: bool | None = None,
    deprecated: bool = False,
) -> Callable[[Handler], Handler]:
    """Document the decorated route handler (see the module docstring)."""
    if isinstance(body, type):
        body = Body(schema=body)
    record = Operation(
        operation_id=operation_id,
        summary=summary,
        description=description,
        tag=tag,
        body=body,
        responses=dict(responses),
        problems=tuple(problems),
        params=tuple(params),
        path=dict(path or {}),
        secured=secured,
        deprecated=deprecated,
    )
    unknown = [status for status in record.problems if status not in PROBLEMS]
    if unknown:
        raise ValueError(f"{operation_id}: describe problem statuses {unknown} in PROBLEMS")

    def decorate(handler: Handler) -> Handler:
        setattr(handler, _ATTRIBUTE, record)
        return handler

    return decorate


def operation_of(handler: Any) -> Operation | None:
    """The operation documented on a route handler, if any."""
    found = getattr(handler, _ATTRIBUTE, None)
    if found is None and isinstance(handler, functools.partial):
        found = getattr(handler.func, _ATTRIBUTE, None)
    return found if isinstance(found, Operation) else None


def json(model: SchemaLike, description: str, *, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON response."""
    return Reply(
        description=description, content={"application/json": model}, headers=headers or {}
    )


def content(
    description: str,
    bodies: Mapping[str, SchemaLike],
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A response with other media types (streams, text), `{media_type: schema}`."""
    return Reply(description=description, content=dict(bodies), headers=headers or {})


def query(name: str, description: str, *, required: bool = False, **schema: Any) -> Param:
    """A query parameter with an exact schema (`type="integer", minimum=1`, ...)."""
    return Param(
        name=name, location="query", description=description, schema=schema, required=required
    )


def header(name: str, description: str, *, required: bool = False, **schema: Any) -> Param:
    """A request header parameter."""
    return Param(
        name=name, location="header", description=description, schema=schema, required=required
    )


IDEMPOTENCY_KEY = header(
    "Idempotency-Key",
    "Retrying with the same key and body returns the original response "
    "(`Idempotent-Replayed: true`); the same key with another body is a 422.",
    type="string",
    maxLength=255,
)

# Every error status a route may list, with the text shown for it.
PROBLEMS: dict[int, str] = {
    400: "Malformed JSON body",
    401: "Missing or invalid API key (only when the server sets SCRAPER_API_KEYS)",
    402: "Payment required (never sent by Trawl; listed for Firecrawl compatibility)",
    404: "No such resource (another API key's job is indistinguishable from none)",
    403: "The target is off limits (robots.txt, or a private address)",
    408: "The request took too long to arrive (or, on /v2/scrape, to be scraped)",
    409: "The same Idempotency-Key is still being processed",
    413: "Request body too large",
    415: "Body is not `application/json`",
    422: "Invalid request; `errors` names each offending field",
    429: "Rate limited; see Retry-After",
    500: "Unexpected server error (logged); on /v2/scrape: the page could not be fetched",
    502: "The target site could not be fetched",
    503: "Too much work queued, or the database cannot be reached or written; see Retry-After",
    504: "Timed out waiting for the result",
}
DEFAULT_ERROR = "Any other error (405 method not allowed, 500, ...), in the same shape"
_RETRY_AFTER = frozenset({429, 503})
_HEADER_TEXT = {
    "Location": "Where the created resource can be polled",
    "Retry-After": "Seconds to wait before retrying",
    "Idempotent-Replayed": "`true` when an Idempotency-Key replay answered",
    "WWW-Authenticate": "The authentication scheme expected",
}

# sanic-routing's parameter types, as OpenAPI schemas.
_PATH_TYPES: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}
_PATH_PARAM = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>")


# --------------------------------------------------------------------------- schemas


@functools.cache
def component_schemas(models: frozenset[type[BaseModel]]) -> dict[str, Any]:
    """The models (and every model they use), keyed by name."""
    _, document = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF_PREFIX + "{model}",
    )
    schemas: dict[str, Any] = document.get("$defs", {})
    return dict(sorted(schemas.items()))


def _schema(value: SchemaLike, models: set[type[BaseModel]]) -> dict[str, Any]:
    if isinstance(value, type):
        models.add(value)
        return {"$ref": REF_PREFIX + value.__name__}
    return dict(value)


# --------------------------------------------------------------------------- document


def _operation_object(
    op: Operation, uri: str, names: list[tuple[str, str]], tag: str, models: set[type[BaseModel]]
) -> dict[str, Any]:
    secured = op.secured if op.secured is not None else uri.startswith(SECURED_PREFIXES)
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [tag]}
    if op.description:
        out["description"] = op.description
    if op.deprecated:
        out["deprecated"] = True
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": op.path.get(name, f"The {name.replace('_', ' ')}"),
            "schema": dict(_PATH_TYPES.get(label, {"type": "string"})),
        }
        for name, label in names
    ]
    for param in op.params:
        entry: dict[str, Any] = {
            "name": param.name,
            "in": param.location,
            "description": param.description,
            "schema": dict(param.schema),
        }
        if param.required:
            entry["required"] = True
        parameters.append(entry)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        media: dict[str, Any] = {"schema": _schema(op.body.schema, models)}
        if op.body.examples:
            media["examples"] = {name: dict(example) for name, example in op.body.examples.items()}
        body: dict[str, Any] = {
            "required": op.body.required,
            "content": {op.body.media_type: media},
        }
        if op.body.description:
            body["description"] = op.body.description
        out["requestBody"] = body
    responses: dict[str, Any] = {}
    for status, reply in sorted(op.responses.items()):
        responses[str(status)] = _response(reply, models)
    # /v2/ is Firecrawl's API: its errors come in Firecrawl's shape (service.errors).
    error: dict[str, SchemaLike] = (
        {"application/json": FirecrawlError}
        if uri.startswith("/v2/")
        else {"application/problem+json": Problem}
    )
    statuses = set(op.problems) | ({401, 429} if secured else set())
    for status in sorted(statuses):
        headers = {"Retry-After": "integer"} if status in _RETRY_AFTER else {}
        if status == 401:
            headers = {"WWW-Authenticate": "string"}
        responses[str(status)] = _response(
            Reply(description=PROBLEMS[status], content=error, headers=headers), models
        )
    # Whatever else may happen on any route (405, 408, 500, ...) is an error too.
    responses["default"] = _response(Reply(description=DEFAULT_ERROR, content=error), models)
    out["responses"] = responses
    if secured:
        out["security"] = [{SECURITY_SCHEME: []}]
    return out


def _response(reply: Reply, models: set[type[BaseModel]]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.headers:
        out["headers"] = {
            name: {"description": _HEADER_TEXT.get(name, name), "schema": {"type": kind}}
            for name, kind in reply.headers.items()
        }
    if reply.content:
        out["content"] = {
            media_type: {"schema": _schema(schema, models)}
            for media_type, schema in reply.content.items()
        }
    return out


def documented_routes(app: Sanic[Any, Any]) -> list[tuple[str, str, Any, Operation | None]]:
    """(OpenAPI path, method, route, operation) for every route and method of the app.

    HEAD and OPTIONS are left out: Sanic answers them for every GET route by itself.
    """
    found = []
    for route in app.router.routes:
        uri = "/" + _PATH_PARAM.sub(r"{\1}", route.path).lstrip("/")
        for method in sorted(route.methods):
            if method in ("HEAD", "OPTIONS"):
                continue
            found.append((uri, method.lower(), route, operation_of(route.handler)))
    return found


def document(app: Sanic[Any, Any]) -> dict[str, Any]:
    """The OpenAPI document of every documented route of `app`.

    Built on each request (0.3 ms here; the component schemas, 15 ms, are cached), so it
    never goes stale and nothing is kept per app.
    """
    models: set[type[BaseModel]] = {Problem}
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: dict[str, str] = {}
    tags: dict[str, None] = {}
    for uri, method, route, op in documented_routes(app):
        if op is None:
            continue
        where = f"{method.upper()} {uri}"
        if op.operation_id in operation_ids:
            raise ValueError(
                f"operationId {op.operation_id!r} of {where} is already used by "
                f"{operation_ids[op.operation_id]}"
            )
        operation_ids[op.operation_id] = where
        parts = route.name.split(".")
        tag = op.tag or (parts[1] if len(parts) > 2 else "service")
        tags[tag] = None
        names = [(param.name, param.label) for param in route.params.values()]
        paths.setdefault(uri, {})[method] = _operation_object(op, uri, names, tag, models)
    config = app.config
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": str(getattr(config, "API_TITLE", "Trawl")),
            "version": str(getattr(config, "API_VERSION", "1.0.0")),
            "description": str(getattr(config, "API_DESCRIPTION", "")),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [{"name": name, "description": TAG_TEXT.get(name, name)} for name in tags],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": component_schemas(frozenset(models)),
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "`Authorization: Bearer <key>`: needed on /v1/* and /v2/* when the "
                        "server sets SCRAPER_API_KEYS."
                    ),
                }
            },
        },
    }


TAG_TEXT = {
    "jobs": "Submit, poll, list and cancel crawl jobs",
    "results": "Page through or stream a job's results",
    "events": "Live progress as Server-Sent Events",
    "scrape": "One page now: a one-page job, answered when it is done",
    "map": "A site's URLs now, from its sitemaps and links",
    "ops": "Liveness and metrics",
    "firecrawl": "Firecrawl v2 compatible routes, for Firecrawl's SDKs and the tools on them",
}
