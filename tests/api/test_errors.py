"""The one error handler: every exception becomes a problem document with the right status."""

from __future__ import annotations

import json

import pytest
from sanic import exceptions as sanic_exceptions

from service.errors import (
    ApiError,
    Overloaded,
    RateLimited,
    StoreError,
    Unauthorized,
    field_error,
    problem,
    to_api_error,
)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (sanic_exceptions.NotFound("x"), 404),
        (sanic_exceptions.MethodNotAllowed("x", "PUT", ["GET"]), 405),
        (sanic_exceptions.PayloadTooLarge("x"), 413),
        (sanic_exceptions.BadRequest("x"), 400),
        (sanic_exceptions.RequestTimeout("Request Timeout"), 408),
        (sanic_exceptions.HeaderNotFound("x"), 400),
        # Sanic raises this when a handler overruns RESPONSE_TIMEOUT: still a 503, not a 500.
        (sanic_exceptions.ServiceUnavailable("Response Timeout"), 503),
        (sanic_exceptions.ServerError("boom"), 500),
        (StoreError("disk I/O error at /var/lib/trawl/trawl.db"), 500),
        (RuntimeError("secret internals"), 500),
        (KeyError("k"), 500),
    ],
)
def test_every_exception_maps_to_a_status(exc: Exception, status: int) -> None:
    error = to_api_error(exc)

    assert isinstance(error, ApiError)
    assert error.status == status
    assert error.title and error.type_slug
    if status >= 500:
        # Server-side failures never echo the exception's text.
        assert str(exc) not in error.message or not str(exc)


def test_retry_after_and_www_authenticate_headers() -> None:
    assert RateLimited(0).headers == {"Retry-After": "1"}
    assert RateLimited(17).headers == {"Retry-After": "17"}
    assert Overloaded(30).headers == {"Retry-After": "30"}
    assert Unauthorized().headers["WWW-Authenticate"].startswith("Bearer")


def test_problem_document_shape() -> None:
    error = field_error("limit", "must be an integer from 1 to 100")

    response = problem(
        error.status, error.title, error.message, type_slug=error.type_slug, errors=error.errors
    )

    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert response.body is not None
    body = json.loads(response.body)
    assert body == {
        "type": "about:blank",  # RFC 9457: no domain Trawl does not own
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "limit: must be an integer from 1 to 100",
        "errors": [{"field": "limit", "message": "must be an integer from 1 to 100"}],
    }
