"""The exception tree, and the one place that turns errors into problem+json.

TrawlError                  base; never shown to clients as-is
├── ConfigError             bad settings: the service refuses to start
├── StoreError              the database failed (after retries)
│   └── StoreUnavailable    it cannot be written now (disk full, read-only): 503 to clients
├── LimitReached            a per-key limit (schedules per key): 422 naming the field
└── ApiError                carries an HTTP status; rendered as RFC 9457 problem+json
    ├── BadRequest          400
    ├── Refused             400 (an option that needs a browser or an LLM)
    ├── Unauthorized        401
    ├── NotFound            404
    ├── MethodNotAllowed    405
    ├── Conflict            409
    ├── PayloadTooLarge     413
    ├── UnsupportedMedia    415
    ├── ValidationFailed    422 (with `errors`: one entry per offending field)
    ├── RateLimited         429 (with Retry-After)
    ├── Overloaded          503 (with Retry-After)
    ├── GatewayTimeout      504 (a synchronous request ran out of time; names its job)
    └── FetchFailed         500, 403, 408 (a synchronous Firecrawl scrape's page failed)

Routes under /v2/ speak Firecrawl's API, so the same errors are rendered in Firecrawl's
shape there (`{"success": false, "error": ..., "code": ..., "details": ...}`).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from sanic import Request, Sanic
from sanic import exceptions as sanic_exceptions
from sanic.response import HTTPResponse, json

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "about:blank"
STORE_RETRY_AFTER = 30  # seconds a client is told to wait while the database is unwritable


class TrawlError(Exception):
    """Something went wrong inside Trawl."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(TrawlError):
    """The service's settings are invalid."""


class StoreError(TrawlError):
    """The database could not complete the operation."""


class StoreUnavailable(StoreError):
    """The database cannot be written right now (disk full, read-only or unreachable)."""


class LimitReached(TrawlError):
    """A per-key limit was reached."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ApiError(TrawlError):
    """The request could not be served."""

    status: int = 500
    title: str = "Internal Server Error"
    type_slug: str = "internal"

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.errors = errors
        self.headers = headers or {}
        # RFC 9457 extension members (e.g. `job_id`), added to the problem document.
        self.extensions = extensions or {}


class BadRequest(ApiError):
    """The request body is not valid JSON."""

    status, title, type_slug = 400, "Bad Request", "bad-request"


class Unauthorized(ApiError):
    """A valid API key is required: send `Authorization: Bearer <key>`."""

    status, title, type_slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="trawl"'})


class NotFound(ApiError):
    """No such resource."""

    status, title, type_slug = 404, "Not Found", "not-found"


class MethodNotAllowed(ApiError):
    """That method is not allowed on this resource."""

    status, title, type_slug = 405, "Method Not Allowed", "method-not-allowed"


class Conflict(ApiError):
    """The request conflicts with one still in progress."""

    status, title, type_slug = 409, "Conflict", "conflict"


class PayloadTooLarge(ApiError):
    """The request body is too large."""

    status, title, type_slug = 413, "Payload Too Large", "payload-too-large"


class UnsupportedMedia(ApiError):
    """Send the request body as `Content-Type: application/json`."""

    status, title, type_slug = 415, "Unsupported Media Type", "unsupported-media-type"


class ValidationFailed(ApiError):
    """The request is invalid."""

    status, title, type_slug = 422, "Unprocessable Content", "validation-error"


class RateLimited(ApiError):
    """Too many requests: slow down."""

    status, title, type_slug = 429, "Too Many Requests", "rate-limited"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class Overloaded(ApiError):
    """The service is at capacity: retry later."""

    status, title, type_slug = 503, "Service Unavailable", "overloaded"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class GatewayTimeout(ApiError):
    """The work did not finish in time; it carries on in the background."""

    status, title, type_slug = 504, "Gateway Timeout", "timeout"

    def __init__(self, message: str | None = None, *, job_id: str) -> None:
        super().__init__(message, extensions={"job_id": job_id})
        self.job_id = job_id


class FetchFailed(ApiError):
    """The target page could not be fetched (Firecrawl's API reports that as an error)."""

    status, title, type_slug = 500, "Fetch Failed", "fetch-failed"

    def __init__(self, message: str, *, status: int = 500, code: str = "fetch-failed") -> None:
        super().__init__(message)
        self.status, self.type_slug = status, code


class Refused(ApiError):
    """The request asks for something this server does not do (it needs a browser, an LLM)."""

    status, title, type_slug = 400, "Bad Request", "unsupported-option"


def field_error(field: str, message: str) -> ValidationFailed:
    """A 422 naming one offending field."""
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_slug: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> HTTPResponse:
    """Render an RFC 9457 problem document."""
    body: dict[str, Any] = {
        # RFC 9457 4.2.1: "about:blank" means the problem is what the status says, and the
        # title is the status phrase (ours are). A made-up domain would be a URI clients
        # might dereference; `type_slug` stays available should Trawl serve real pages.
        "type": PROBLEM_TYPE,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    for key, value in (extensions or {}).items():
        body.setdefault(key, value)
    return json(body, status=status, headers=headers, content_type=PROBLEM_JSON)


# Firecrawl answers invalid bodies with 400 and a timed-out scrape with 408; its SDKs map
# those statuses to their exception classes.
_FIRECRAWL_STATUS = {422: 400, 504: 408}


def firecrawl_error(error: ApiError) -> HTTPResponse:
    """Render an error in Firecrawl's shape, for the routes that speak its API."""
    body: dict[str, Any] = {"success": False, "error": error.message, "code": error.type_slug}
    if error.errors is not None:
        body["details"] = error.errors
    body.update(error.extensions)
    status = _FIRECRAWL_STATUS.get(error.status, error.status)
    return json(body, status=status, headers=error.headers)


# Sanic's own exceptions, mapped onto ours so clients see one error format.
_SANIC_MAP: tuple[tuple[type[Exception], type[ApiError]], ...] = (
    (sanic_exceptions.NotFound, NotFound),
    (sanic_exceptions.MethodNotAllowed, MethodNotAllowed),
    (sanic_exceptions.PayloadTooLarge, PayloadTooLarge),
    (sanic_exceptions.BadRequest, BadRequest),
)


def to_api_error(exc: Exception) -> ApiError:
    """Map any exception to the ApiError a client should see."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, LimitReached):
        return field_error(exc.field, exc.message)
    if isinstance(exc, StoreUnavailable):
        # Not this request's fault, and it passes: the crawl pauses and resumes by itself.
        return Overloaded(
            STORE_RETRY_AFTER, "The database cannot be written right now; retry later."
        )
    for sanic_type, ours in _SANIC_MAP:
        if isinstance(exc, sanic_type):
            if ours is BadRequest:
                return BadRequest("The request could not be understood (malformed body?).")
            return ours()
    if isinstance(exc, sanic_exceptions.SanicException):
        status = int(getattr(exc, "status_code", 500) or 500)
        if status != 500 and 400 <= status < 600:
            # Sanic's own conditions (408 request timeout, 503 response timeout, ...)
            # keep their status. Server-side ones say no more than the status does.
            phrase = HTTPStatus(status).phrase
            detail = (str(exc) or phrase) if status < 500 else f"{phrase}."
            error = ApiError(detail)
            error.status, error.title = status, phrase
            error.type_slug = phrase.lower().replace(" ", "-")
            return error
    return ApiError("An unexpected error occurred; it has been logged.")


def handle_exception(request: Request, exc: Exception) -> HTTPResponse:
    """The one error handler: everything becomes problem+json, with no internals leaked."""
    error = to_api_error(exc)
    if error.status == 500 and not isinstance(exc, FetchFailed):
        logger.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    elif error.status > 500 and not isinstance(exc, Overloaded | GatewayTimeout):
        logger.warning("%s on %s %s: %s", error.status, request.method, request.path, exc)
    if request.path.startswith("/v2/"):
        return firecrawl_error(error)
    return problem(
        error.status,
        error.title,
        error.message,
        type_slug=error.type_slug,
        errors=error.errors,
        headers=error.headers,
        extensions=error.extensions,
    )


def install(app: Sanic[Any, Any]) -> None:
    """Register the handler for every exception type."""
    app.error_handler.add(Exception, handle_exception)
