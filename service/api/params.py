"""Query-string parsing that answers bad input with a 422 naming the parameter."""

from __future__ import annotations

from sanic import Request

from service.errors import field_error
from service.store.base import decode_cursor


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise field_error(name, f"must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise field_error(name, f"must be an integer from {low} to {high}")
    return value


def cursor_param(request: Request) -> int | None:
    raw = request.args.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        return decode_cursor(raw)
    except ValueError:
        raise field_error(
            "cursor", "invalid cursor; use next_cursor from a previous page"
        ) from None


def choice_param(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise field_error(name, f"must be one of {', '.join(choices)}")
    return raw
