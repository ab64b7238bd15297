"""One webhook POST: signed, through the guarded client, never raising for the receiver.

The sender owns the dispatcher's small httpx client (on the same guarded transport as
crawl fetches: a webhook must not reach private addresses, nor this service's own API)
and the receivers' health (service.webhooks.fairness), which shortens attempts for
receivers that timed out and opens a circuit breaker for those that keep failing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from dataclasses import dataclass
from enum import Enum

import httpx

from service import metrics
from service.network.guard import (
    BlockedAddress,
    CredentialsInURL,
    check_url_host_literal,
    policy_for,
)
from service.network.transport import BlockedConnectError, GuardedTransport, guarded_client
from service.settings import Settings
from service.webhooks.fairness import TOTAL_TIMEOUT, ReceiverHealth
from service.webhooks.signing import sign

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
MAX_BACKOFF = 600.0
RESPONSE_DRAIN_BYTES = 64 * 1024  # a response body is read this far (for keep-alive), no more


class Result(Enum):
    """How one POST went."""

    DELIVERED = "delivered"
    RETRY = "retry"  # non-2xx status, network error, timeout
    GONE = "gone"  # 410: the receiver asks us to stop
    REFUSED = "refused"  # the URL's address is not allowed, or the URL is unusable
    STOPPED = "stopped"  # shutting down; nothing was recorded


@dataclass(frozen=True, slots=True)
class Attempt:
    result: Result
    detail: str


def backoff(base: float, failures: int) -> float:
    """Seconds to wait after `failures` failed attempts: base x 2^(n-1), +-25%, capped."""
    delay = base * 2.0 ** min(max(failures - 1, 0), 30)
    return min(MAX_BACKOFF, delay * random.uniform(0.75, 1.25))


class Sender:
    """Signs and POSTs webhook bodies; `open()` before the first post, `aclose()` after."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        connections: int = 16,
    ) -> None:
        # Without a configured secret, sign with a random one: receivers cannot verify it,
        # but nobody can forge it either (an empty key would let anyone sign).
        self.secret = settings.webhook_secret or secrets.token_hex(32)
        self._secret_configured = bool(settings.webhook_secret)
        self._warned_unsigned = False
        self._user_agent = settings.user_agent
        # The same rule as for crawl URLs: a webhook must not reach private addresses.
        # ... nor this service's own API (a webhook could otherwise drive it).
        self.policy = policy_for(
            allow_private=settings.allow_private_networks,
            allowed_networks=settings.allowed_networks,
            host=settings.host,
            ports=(settings.port,),
        )
        self.health = ReceiverHealth()
        self._transport = transport
        self._connections = connections
        self._client: httpx.AsyncClient | None = None

    def open(self) -> None:
        """Build the client (posting before this, or after `aclose`, is STOPPED)."""
        transport = self._transport or GuardedTransport(
            self.policy,
            limits=httpx.Limits(
                max_connections=self._connections,
                max_keepalive_connections=self._connections,
            ),
        )
        # Redirects are not followed: a receiver must answer at its own URL.
        self._client = guarded_client(
            transport,
            timeout=httpx.Timeout(
                connect=CONNECT_TIMEOUT, read=READ_TIMEOUT, write=READ_TIMEOUT, pool=TOTAL_TIMEOUT
            ),
            headers={"User-Agent": self._user_agent, "Accept": "*/*"},
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def post(
        self,
        url: str,
        event_type: str,
        event_id: str,
        job_id: str,
        body: bytes,
        attempt_number: int,
        extra: dict[str, str] | None = None,
    ) -> Attempt:
        """One signed POST; never raises for receiver or network trouble."""
        if not self._secret_configured and not self._warned_unsigned:
            # Said when a webhook is actually delivered, not at every start-up.
            self._warned_unsigned = True
            logger.warning(
                "SCRAPER_WEBHOOK_SECRET is not set: webhooks are signed with a random key "
                "that receivers cannot verify; set it to check signatures"
            )
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Trawl-Event": event_type,
            "X-Trawl-Event-Id": event_id,
            "X-Trawl-Job-Id": job_id,
            "X-Trawl-Timestamp": timestamp,
            "X-Trawl-Signature": sign(self.secret, timestamp, body),
            "X-Trawl-Delivery-Attempt": str(attempt_number),
            **(extra or {}),
        }
        attempt = await self._send(url, body, headers)
        if attempt.result is not Result.STOPPED:
            metrics.WEBHOOKS.labels(result=attempt.result.value).inc()
        return attempt

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        client = self._client
        if client is None:
            return Attempt(Result.STOPPED, "dispatcher is not running")
        try:
            # Cheap and certain for literal addresses; names are checked at connect time.
            check_url_host_literal(url, self.policy)
        except (BlockedAddress, CredentialsInURL) as exc:
            return Attempt(Result.REFUSED, str(exc))
        except ValueError as exc:
            return Attempt(Result.REFUSED, f"invalid webhook URL: {exc}")
        status: int | None = None
        limit = self.health.timeout_for(url)
        self.health.starting(url)
        try:
            async with asyncio.timeout(limit):
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    self.health.answered(url)
                    await _drain(response)
        except TimeoutError:
            if status is None:
                self.health.failed(url, timed_out=True)
                return Attempt(Result.RETRY, f"no response within {limit:g}s")
        except BlockedConnectError as exc:
            self.health.answered(url)  # a refusal of ours, not the receiver's fault
            return Attempt(Result.REFUSED, str(exc))
        except httpx.InvalidURL as exc:
            self.health.answered(url)
            return Attempt(Result.REFUSED, f"invalid webhook URL: {exc}")
        except httpx.HTTPError as exc:
            if status is None:
                self.health.failed(url, timed_out=isinstance(exc, httpx.TimeoutException))
                return Attempt(Result.RETRY, f"{type(exc).__name__}: {exc}".rstrip(": "))
        # A status already received decides, even if reading the body then failed.
        assert status is not None
        if 200 <= status < 300:
            return Attempt(Result.DELIVERED, f"HTTP {status}")
        if status == 410:
            return Attempt(Result.GONE, "HTTP 410")
        return Attempt(Result.RETRY, f"HTTP {status}")


async def _drain(response: httpx.Response) -> None:
    """Read a little of the response so its connection can be reused; ignore the rest."""
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > RESPONSE_DRAIN_BYTES:
            return  # closing it unread drops the connection, which is fine
