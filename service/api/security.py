"""Request guards: API-key auth, per-key rate limiting, and security headers."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from sanic import Request
from sanic.response import HTTPResponse

from service.api.context import ctx
from service.errors import RateLimited, Unauthorized
from service.network.guard import is_loopback_host

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


MAX_ANONYMOUS_BUCKETS = 100_000


class RateLimiter:
    """A token bucket per client: `per_minute` requests, bursting up to the same number.

    Clients are named by `client_key`: an API key's owner first, else the address (an
    IPv6 /64 counts as one client: one host gets a whole /64 to pick from). Key buckets
    are never evicted (there are as many as configured keys); address buckets are kept
    in least-recently-used order up to MAX_ANONYMOUS_BUCKETS and the oldest go first,
    so a flood of addresses cannot reset anyone's budget wholesale.
    """

    def __init__(self, per_minute: int, *, max_anonymous: int = MAX_ANONYMOUS_BUCKETS) -> None:
        self.per_minute = per_minute
        self._max_anonymous = max(1, max_anonymous)
        self._keyed: dict[str, _Bucket] = {}
        self._anonymous: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keyed) + len(self._anonymous)

    def check(self, client: str) -> float:
        """0 if allowed now, else seconds until the next request would be."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic()
        rate = self.per_minute / 60.0
        bucket = self._bucket(client, now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def _bucket(self, client: str, now: float) -> _Bucket:
        if client.startswith("key:"):
            bucket = self._keyed.get(client)
            if bucket is None:
                bucket = self._keyed[client] = _Bucket(float(self.per_minute), now)
            return bucket
        bucket = self._anonymous.get(client)
        if bucket is not None:
            self._anonymous.move_to_end(client)
            return bucket
        while len(self._anonymous) >= self._max_anonymous:
            self._anonymous.popitem(last=False)  # the least recently seen address
        bucket = self._anonymous[client] = _Bucket(float(self.per_minute), now)
        return bucket


def address_key(address: str) -> str:
    """The rate-limit client for an address: IPv4 as is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return f"ip:{address}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"ip:{ip.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((int(ip) >> 64 << 64, 64))}"
    return f"ip:{ip}"


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
    if request.path == "/metrics":
        _authorize_metrics(request)
        return
    # /v2/ is the Firecrawl-compatible API: the same keys, the same limits.
    if not request.path.startswith(("/v1/", "/v2/")):
        return
    settings = ctx(request).settings
    address = address_key(request.remote_addr or request.ip or "unknown")
    if not settings.api_keys:
        _throttle(request, address)
        return
    header = request.headers.get("authorization") or ""
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    matched = _match_key(presented, settings.api_keys) if presented else None
    if scheme.lower() != "bearer" or matched is None:
        # Failed attempts spend the caller address's budget, so keys cannot be guessed
        # at line rate.
        _throttle(request, address)
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("Missing API key: send `Authorization: Bearer <key>`.")
        raise Unauthorized("Invalid API key.")
    request.ctx.owner = key_owner(matched)
    _throttle(request, f"key:{request.ctx.owner}")


def _authorize_metrics(request: Request) -> None:
    """/metrics shows every tenant's counts: an API key or SCRAPER_METRICS_TOKEN reads it.

    With neither configured it is open only while the service is bound to loopback.
    """
    settings = ctx(request).settings
    header = request.headers.get("authorization") or ""
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    accepted = tuple(settings.api_keys) + (
        (settings.metrics_token,) if settings.metrics_token else ()
    )
    if not accepted:
        if is_loopback_host(settings.host):
            return
        raise Unauthorized(
            "/metrics is closed on a non-loopback bind: set SCRAPER_METRICS_TOKEN and send "
            "`Authorization: Bearer <token>`."
        )
    if scheme.lower() != "bearer" or not presented or _match_key(presented, accepted) is None:
        _throttle(request, address_key(request.remote_addr or request.ip or "unknown"))
        raise Unauthorized("/metrics needs an API key or SCRAPER_METRICS_TOKEN as a bearer token.")


def add_security_headers(request: Request, response: HTTPResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", API_CSP)
