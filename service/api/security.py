"""Request guards: API-key auth, per-key rate limiting, and security headers."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass

from sanic import Request
from sanic.response import HTTPResponse

from service.api.context import ctx
from service.errors import RateLimited, Unauthorized

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Everything is pure data; pages (/docs) set their own policy.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def key_owner(key: str) -> str:
    """A stable, non-reversible owner id for an API key (keys are never stored)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client: `per_minute` requests, bursting up to the same number."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, _Bucket] = {}

    def check(self, client: str) -> float:
        """0 if allowed now, else seconds until the next request would be."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic()
        rate = self.per_minute / 60.0
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) > 100_000:  # bound memory under a flood of clients
                self._buckets.clear()
            bucket = self._buckets[client] = _Bucket(float(self.per_minute), now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def _match_key(presented: str, keys: tuple[str, ...]) -> str | None:
    # Compare against every key in constant time: no early exit reveals a prefix or
    # which key came close. Digests first, so differing lengths take the same time too.
    digest = hashlib.sha256(presented.encode()).digest()
    matched = None
    for key in keys:
        if hmac.compare_digest(digest, hashlib.sha256(key.encode()).digest()):
            matched = key
    return matched


def _throttle(request: Request, client: str) -> None:
    limiter: RateLimiter | None = getattr(request.app.ctx, "rate_limiter", None)
    if limiter is not None:
        wait = limiter.check(client)
        if wait > 0:
            raise RateLimited(math.ceil(wait))


def authenticate(request: Request) -> None:
    """Set `request.ctx.owner` from the bearer key, or raise 401 when keys are required."""
    request.ctx.owner = None
    # /v2/ is the Firecrawl-compatible API: the same keys, the same limits.
    if not request.path.startswith(("/v1/", "/v2/")):
        return
    settings = ctx(request).settings
    address = request.remote_addr or request.ip or "unknown"
    if not settings.api_keys:
        _throttle(request, f"ip:{address}")
        return
    header = request.headers.get("authorization") or ""
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    matched = _match_key(presented, settings.api_keys) if presented else None
    if scheme.lower() != "bearer" or matched is None:
        # Failed attempts spend the caller address's budget, so keys cannot be guessed
        # at line rate.
        _throttle(request, f"ip:{address}")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("Missing API key: send `Authorization: Bearer <key>`.")
        raise Unauthorized("Invalid API key.")
    request.ctx.owner = key_owner(matched)
    _throttle(request, f"key:{request.ctx.owner}")


def add_security_headers(request: Request, response: HTTPResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", API_CSP)
