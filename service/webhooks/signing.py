"""Webhook signatures: `X-Trawl-Signature`, an HMAC-SHA256 of the timestamp and the body."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between timestamp and now


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The `X-Trawl-Signature` value: `sha256=` + hex HMAC-SHA256 of `{timestamp}.{body}`.

    The key is the server's SCRAPER_WEBHOOK_SECRET (UTF-8); the message is the decimal
    `X-Trawl-Timestamp` header value, one ".", then the raw request body bytes exactly as
    sent. Signing the timestamp lets receivers refuse replays of old requests.
    """
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    signature: str,
    tolerance: int = SIGNATURE_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """Whether a webhook request is authentic and fresh (for receivers and tests).

    `timestamp` and `signature` are the `X-Trawl-Timestamp` and `X-Trawl-Signature`
    headers, `body` the raw body. The timestamp must be within `tolerance` seconds of
    `now`. The header may list several comma-separated `sha256=` values; one match is
    enough (room for secret rotation).
    """
    stamp = str(timestamp).strip()
    if not stamp.isascii() or not stamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, stamp, raw).encode()
    return any(
        hmac.compare_digest(expected, candidate.strip().encode("utf-8", "replace"))
        for candidate in signature.split(",")
    )
