"""A job's own request headers and cookies: validated, sent only to its seed origins, redacted.

Logged-in pages and custom Accept-Language need them, and they are credentials: they go
only to the origins (scheme, host, port) of the job's seed URLs, never to another origin
a redirect or a link leads to, and they are never echoed (job JSON, webhooks, logs show
"[redacted]"). They are stored with the job so a restarted worker still sends them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

# Connection-level headers a client must not forward (RFC 9110 7.6.1), plus the ones the
# HTTP client sets itself from the request.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Accept-Encoding too: the fetcher decodes (with a size bound) only what it asks for.
FORBIDDEN = HOP_BY_HOP | {"host", "content-length", "accept-encoding"}
MAX_HEADERS = 50
MAX_NAME = 100
MAX_VALUE = 4096
MAX_HEADER_BYTES = 16 * 1024
MAX_COOKIES = 50
MAX_COOKIE_BYTES = 8 * 1024
REDACTED = "[redacted]"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")  # no CR, LF, NUL or other controls
_COOKIE_OCTETS = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")  # RFC 6265
_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_header_name(name: str) -> str:
    if not 1 <= len(name) <= MAX_NAME or not _TOKEN.fullmatch(name):
        raise ValueError(f"must be an HTTP header name (a token of at most {MAX_NAME} chars)")
    if name.lower() in FORBIDDEN:
        kind = "hop-by-hop" if name.lower() in HOP_BY_HOP else "set by the HTTP client"
        raise ValueError(f"{name} is {kind} and cannot be set per job")
    return name


def check_header_value(value: str) -> str:
    if len(value) > MAX_VALUE or not _FIELD_VALUE.fullmatch(value):
        raise ValueError(f"must be printable ASCII without line breaks, at most {MAX_VALUE} chars")
    return value


def check_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    """The whole set: bounded in count and size, no name given twice (in any case)."""
    if headers is None:
        return None
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"at most {MAX_HEADERS} headers")
    lowered = [name.lower() for name in headers]
    if len(set(lowered)) != len(lowered):
        raise ValueError("a header is given twice (names are case-insensitive)")
    if sum(len(k) + len(v) + 4 for k, v in headers.items()) > MAX_HEADER_BYTES:
        raise ValueError(f"at most {MAX_HEADER_BYTES} bytes of headers")
    return headers


def check_cookie_name(name: str) -> str:
    if not 1 <= len(name) <= MAX_NAME or not _TOKEN.fullmatch(name):
        raise ValueError(f"must be a cookie name (a token of at most {MAX_NAME} chars)")
    return name


def check_cookie_value(value: str) -> str:
    if len(value) > MAX_VALUE or not _COOKIE_OCTETS.fullmatch(value):
        raise ValueError("must be cookie octets (no spaces, quotes, commas, semicolons)")
    return value


def check_cookies(cookies: dict[str, str] | None) -> dict[str, str] | None:
    if cookies is None:
        return None
    if len(cookies) > MAX_COOKIES:
        raise ValueError(f"at most {MAX_COOKIES} cookies")
    if sum(len(k) + len(v) + 2 for k, v in cookies.items()) > MAX_COOKIE_BYTES:
        raise ValueError(f"at most {MAX_COOKIE_BYTES} bytes of cookies")
    return cookies


def redact(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request with header and cookie values hidden (names stay, to show what is set)."""
    out = dict(request)
    for key in ("headers", "cookies"):
        values = out.get(key)
        if isinstance(values, dict):
            out[key] = dict.fromkeys(values, REDACTED)
    webhook = out.get("webhook")
    if isinstance(webhook, dict) and isinstance(webhook.get("headers"), dict):
        out["webhook"] = {**webhook, "headers": dict.fromkeys(webhook["headers"], REDACTED)}
    return out


def outgoing(request: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The headers a job sends to its seed origins: its `headers`, then its `cookies`."""
    headers: dict[str, str] = dict(request.get("headers") or {})
    cookies: dict[str, str] = dict(request.get("cookies") or {})
    if cookies:
        jar = "; ".join(f"{name}={value}" for name, value in cookies.items())
        existing = next((name for name in headers if name.lower() == "cookie"), None)
        if existing is None:
            headers["Cookie"] = jar
        else:
            headers[existing] = f"{headers[existing]}; {jar}"
    return tuple(headers.items())


def origin(url: str) -> str:
    """scheme://host:port, with the default port spelled out."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{scheme}://{(parts.hostname or '').lower()}:{port or _DEFAULT_PORTS.get(scheme, 0)}"


def origins(urls: Iterable[str]) -> frozenset[str]:
    return frozenset(origin(url) for url in urls)
