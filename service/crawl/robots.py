"""robots.txt (RFC 9309): fetched once per host per job, then cached (rules: robotsrules)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from service.crawl.fetcher import Fetcher
from service.crawl.robotsrules import MAX_ROBOTS_BYTES, RobotsRules, parse_robots

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RobotsVerdict:
    """allowed None means robots.txt is unreachable for now: try the URL again later."""

    allowed: bool | None
    crawl_delay: float | None = None
    reason: str = ""


@dataclass(slots=True)
class _Entry:
    parser: RobotsRules | None = None
    allow_all: bool = False
    unavailable_until: float = 0.0
    allow_until: float = 0.0
    failures: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sitemaps: tuple[str, ...] = ()


class RobotsCache:
    """Per-(job, origin) robots.txt rules."""

    def __init__(
        self,
        fetcher: Fetcher,
        user_agent: str,
        *,
        retry_after: float = 30.0,
        max_failures: int = 3,
    ) -> None:
        self._fetcher = fetcher
        self._agent = product_token(user_agent)
        self._retry_after = retry_after
        self._max_failures = max_failures
        self._entries: dict[tuple[str, str], _Entry] = {}

    async def check(self, job_id: str, url: str) -> RobotsVerdict:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        entry = self._entries.setdefault((job_id, origin), _Entry())
        async with entry.lock:  # one fetch per origin; the others wait for it
            now = time.monotonic()
            if entry.parser is None and not entry.allow_all and entry.allow_until <= now:
                if entry.unavailable_until > now:
                    return self._verdict(entry, url)
                await self._load(entry, origin)
        return self._verdict(entry, url)

    async def sitemaps(self, job_id: str, origin: str) -> tuple[str, ...]:
        """Sitemap URLs the origin's robots.txt lists (fetching it if needed)."""
        await self.check(job_id, origin + "/")
        entry = self._entries.get((job_id, origin))
        return entry.sitemaps if entry else ()

    def _verdict(self, entry: _Entry, url: str) -> RobotsVerdict:
        if entry.allow_all or entry.allow_until > time.monotonic():
            return RobotsVerdict(True)
        if entry.parser is None:
            if entry.failures >= self._max_failures:
                return RobotsVerdict(
                    False, reason="robots.txt kept answering 5xx; host treated as disallowed"
                )
            return RobotsVerdict(None, reason="robots.txt unavailable")
        allowed = entry.parser.allowed(url)
        delay = entry.parser.crawl_delay
        return RobotsVerdict(
            allowed,
            crawl_delay=float(delay) if delay is not None else None,
            reason="" if allowed else "disallowed by robots.txt",
        )

    async def _load(self, entry: _Entry, origin: str) -> None:
        result = await self._fetcher.fetch(origin + "/robots.txt")
        status = result.status_code
        if result.error is None and status is not None and 200 <= status < 300:
            text = result.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
            try:
                # ~90 ms for a hostile 500 KiB file: in a thread, so the loop keeps
                # getting the GIL every switch interval meanwhile.
                entry.parser = await asyncio.to_thread(parse_robots, text, self._agent)
                entry.sitemaps = entry.parser.sitemaps
            except Exception:  # a garbled file is as good as none
                logger.info("unparseable robots.txt at %s; allowing all", origin)
                entry.allow_all = True
        elif result.error is None and status is not None and 400 <= status < 500:
            entry.allow_all = True  # RFC 9309 2.3.1.3: "unavailable" means allow all
        elif result.error is not None:
            # No answer at all (refused address, DNS, connection, timeout): let the pages
            # go ahead for a while, as Scrapy does. Their fetch meets the same fault and
            # reports it with its own code and retries, which tells the user more than a
            # robots.txt hold-up would; robots.txt is asked again after the pause.
            entry.allow_until = time.monotonic() + self._retry_after
            logger.info("robots.txt at %s failed (%s)", origin, result.error.code)
        else:
            # 5xx: RFC 9309 2.3.1.4 says assume complete disallow for now, and ask again.
            entry.failures += 1
            entry.unavailable_until = time.monotonic() + self._retry_after
            logger.info("robots.txt at %s answered %s; holding the host back", origin, status)

    def forget_job(self, job_id: str) -> None:
        for key in [key for key in self._entries if key[0] == job_id]:
            del self._entries[key]


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against ("Trawl/0.1 (...)" -> "Trawl")."""
    token = user_agent.strip().split("/", 1)[0].split(" ", 1)[0]
    return token or "*"
