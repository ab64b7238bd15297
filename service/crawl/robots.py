"""robots.txt (RFC 9309): fetched once per origin, shared by every job (rules: robotsrules).

The cache is a bounded LRU keyed by origin. What robots.txt said lives `ttl` seconds
(RFC 9309 2.4: "SHOULD NOT use a cached version for more than 24 hours"; 15 minutes
here, so an edit is seen within a crawl), then it is asked again:

- 2xx: its rules; an unparseable file allows all;
- 4xx: allow all (2.3.1.3);
- 5xx: complete disallow for now (2.3.1.4); asked again after `retry_after` seconds,
  doubling per answer in a row; after `max_failures` in a row the host is disallowed;
- connected but no answer within `fetch_timeout` (a server error, 2.3.1.4): as a 5xx;
- not reached at all (refused, DNS, reset): the pages go ahead for `retry_after`
  seconds, as Scrapy does (their own fetch meets the same fault and says so with its
  own code), then robots.txt is asked again.

The fetch is bounded by `fetch_timeout` (below the fetcher's 30 s total), so a robots.txt
that hangs holds a URL at most that long: a scrape (30 s by default) still gets its page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from service.crawl.fetcher import Fetcher
from service.crawl.robotsrules import MAX_ROBOTS_BYTES, RobotsRules, parse_robots

logger = logging.getLogger(__name__)

DEFAULT_TTL = 900.0
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_FETCH_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RobotsVerdict:
    """allowed None means robots.txt is unavailable for now: try the URL at `retry_at`
    (time.time()), when robots.txt will be asked again."""

    allowed: bool | None
    crawl_delay: float | None = None
    reason: str = ""
    retry_at: float = 0.0


@dataclass(slots=True)
class _Entry:
    parser: RobotsRules | None = None
    allow_all: bool = False
    expires: float = 0.0  # monotonic: what robots.txt said holds until then
    unavailable: bool = False  # 5xx: held back until `expires`
    failures: int = 0  # 5xx answers in a row
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sitemaps: tuple[str, ...] = ()


class RobotsCache:
    """robots.txt rules by origin, shared by every job; see the module docstring."""

    def __init__(
        self,
        fetcher: Fetcher,
        user_agent: str,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        fetch_timeout: float = DEFAULT_FETCH_TIMEOUT,
        retry_after: float = 30.0,
        max_failures: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._agent = product_token(user_agent)
        self._ttl = ttl
        self._max_entries = max_entries
        self._fetch_timeout = fetch_timeout
        self._retry_after = retry_after
        self._max_failures = max_failures
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.fetches = 0  # robots.txt requests made (tests, metrics)

    def __len__(self) -> int:
        return len(self._entries)

    async def check(self, url: str) -> RobotsVerdict:
        """May `url` be fetched? Fetches the origin's robots.txt when not known (or stale)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        entry = self._entry(origin)
        async with entry.lock:  # one fetch per origin; the others wait for it
            if entry.expires <= self._clock() and not self._given_up(entry):
                await self._load(entry, origin)
        return self._verdict(entry, url)

    def known(self, url: str) -> bool:
        """Whether `check(url)` would answer without fetching robots.txt."""
        parts = urlsplit(url)
        entry = self._entries.get(f"{parts.scheme}://{parts.netloc}")
        return entry is not None and (entry.expires > self._clock() or self._given_up(entry))

    async def sitemaps(self, origin: str) -> tuple[str, ...]:
        """Sitemap URLs the origin's robots.txt lists (fetching it if needed)."""
        await self.check(origin + "/")
        entry = self._entries.get(origin)
        return entry.sitemaps if entry else ()

    def _entry(self, origin: str) -> _Entry:
        entry = self._entries.get(origin)
        if entry is None:
            entry = self._entries[origin] = _Entry()
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)  # least recently asked
        else:
            self._entries.move_to_end(origin)
        return entry

    def _given_up(self, entry: _Entry) -> bool:
        return entry.failures >= self._max_failures and entry.expires > self._clock()

    def _verdict(self, entry: _Entry, url: str) -> RobotsVerdict:
        if entry.unavailable:
            if entry.failures >= self._max_failures:
                return RobotsVerdict(
                    False,
                    reason="robots.txt kept failing (5xx or no answer); host treated as disallowed",
                )
            retry_at = time.time() + max(0.0, entry.expires - self._clock())
            return RobotsVerdict(
                None, reason="robots.txt unavailable (5xx or no answer)", retry_at=retry_at
            )
        if entry.parser is None:
            return RobotsVerdict(True)
        allowed = entry.parser.allowed(url)
        delay = entry.parser.crawl_delay
        return RobotsVerdict(
            allowed,
            crawl_delay=float(delay) if delay is not None else None,
            reason="" if allowed else "disallowed by robots.txt",
        )

    async def _load(self, entry: _Entry, origin: str) -> None:
        self.fetches += 1
        try:
            async with asyncio.timeout(self._fetch_timeout):
                result = await self._fetcher.fetch(origin + "/robots.txt")
        except TimeoutError:
            result = None
        now = self._clock()
        status = result.status_code if result is not None else None
        # A server that takes the request and never answers is a server error: pages it
        # may well serve must not go ahead without its rules (RFC 9309 2.3.1.4).
        hung = result is None or (result.error is not None and result.error.code == "timeout")
        if result is not None and result.error is None and status is not None and status < 500:
            parser: RobotsRules | None = None
            if 200 <= status < 300:
                text = result.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
                try:
                    # ~90 ms for a hostile 500 KiB file: in a thread, so the loop keeps
                    # getting the GIL every switch interval meanwhile.
                    parser = await asyncio.to_thread(parse_robots, text, self._agent)
                except Exception:  # a garbled file is as good as none
                    logger.info("unparseable robots.txt at %s; allowing all", origin)
            # 4xx (RFC 9309 2.3.1.3: "unavailable") and anything else below 500: allow all.
            entry.parser = parser
            entry.sitemaps = parser.sitemaps if parser is not None else ()
            entry.allow_all = parser is None
            entry.unavailable = False
            entry.failures = 0
            entry.expires = now + self._ttl
        elif not hung and result is not None and result.error is not None:
            # Not reached at all (refused address, DNS, reset): let the pages
            # go ahead for a while, as Scrapy does. Their fetch meets the same fault and
            # reports it with its own code and retries, which tells the user more than a
            # robots.txt hold-up would; robots.txt is asked again after the pause.
            entry.parser = None
            entry.allow_all = True
            entry.unavailable = False
            entry.expires = now + self._retry_after
            logger.info("robots.txt at %s failed (%s)", origin, result.error.code)
        else:
            # 5xx or no answer: RFC 9309 2.3.1.4 says assume complete disallow for now,
            # and ask again.
            entry.failures += 1
            entry.unavailable = True
            pause = self._retry_after * 2 ** (entry.failures - 1)
            entry.expires = now + min(pause, self._ttl)
            answer = status if not hung else "nothing"
            logger.info("robots.txt at %s answered %s; holding the host back", origin, answer)


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against ("Trawl/0.1 (...)" -> "Trawl")."""
    token = user_agent.strip().split("/", 1)[0].split(" ", 1)[0]
    return token or "*"
