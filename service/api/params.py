"""Query-string parsing that answers bad input with a 422 naming the parameter."""

from __future__ import annotations

import re

from sanic import Request

from service.errors import field_error
from service.store.base import decode_cursor

# int() would also take " 7", "1_0" and non-ASCII digits; a query parameter should not.
_DIGITS = re.compile(r"[0-9]{1,9}")
# Positions are SQLite/PostgreSQL BIGINTs: a forged cursor beyond that must not reach SQL.
_MAX_POSITION = 2**63 - 1


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise field_error(name, f"must be an integer from {low} to {high}")
    return int(raw)


def cursor_param(request: Request) -> int | None:
    raw = request.args.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        position = decode_cursor(raw)
    except ValueError:
        position = -1
    if not 0 <= position <= _MAX_POSITION:
        raise field_error("cursor", "invalid cursor; use next_cursor from a previous page")
    return position


def choice_param(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise field_error(name, f"must be one of {', '.join(choices)}")
    return str(raw)


_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise field_error(name, "must be true or false")
