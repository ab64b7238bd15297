"""Site mapping: a site's URLs from its sitemaps and links, fast, storing no content.

    seed --robots--> sitemaps (unless skipped)
         --fetch--> links of the seed, then of the pages they lead to, up to max_depth

Only pages closer than `max_depth` hops are fetched (the default, 1, fetches the seed
alone and lists what it links to), at most `max_pages` of them, `per_host` at a time.
The whole map has a deadline; when it passes, what was found so far is the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from service.crawl import sitemap
from service.crawl.fetcher import Fetcher
from service.crawl.pipeline import HTML_TYPES
from service.crawl.plan import JobPlan
from service.crawl.robots import RobotsCache
from service.urls import looks_like_non_html

logger = logging.getLogger(__name__)

SITEMAP_URLS_MAX = 100_000

# (body, url, http charset) -> (page title, canonical links on the page)
LinkParser = Callable[[bytes, str, str | None], Awaitable[tuple[str | None, tuple[str, ...]]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class MapSpec:
    """What one map is asked to find."""

    seed: str
    max_depth: int = 1
    limit: int = 1000
    max_pages: int = 50
    search: str | None = None
    sitemap: str = "include"  # include | skip | only
    respect_robots: bool = True
    deadline: float = 30.0  # seconds for the whole map


@dataclass(frozen=True, slots=True, kw_only=True)
class MapLink:
    url: str
    title: str | None = None


@dataclass(slots=True, kw_only=True)
class MapResult:
    links: list[MapLink]
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    timed_out: bool = False


@dataclass(slots=True)
class _Found:
    """URLs in discovery order, with the title of each one fetched."""

    titles: dict[str, str | None] = field(default_factory=dict)
    matches: int = 0

    def add(self, url: str, title: str | None, search: str | None) -> None:
        if url in self.titles:
            if title and not self.titles[url]:
                self.titles[url] = title
            return
        self.titles[url] = title
        if _matches(url, title, search):
            self.matches += 1


def _matches(url: str, title: str | None, search: str | None) -> bool:
    if not search:
        return True
    needle = search.casefold()
    return needle in url.casefold() or (title is not None and needle in title.casefold())


class SiteMapper:
    """Runs maps with the crawl's own fetcher (SSRF guard, size caps) and robots rules."""

    def __init__(
        self, fetcher: Fetcher, robots: RobotsCache, parse: LinkParser, *, per_host: int
    ) -> None:
        self._fetcher = fetcher
        self._robots = robots
        self._parse = parse
        self._per_host = max(1, per_host)

    async def run(self, job_id: str, spec: MapSpec, plan: JobPlan) -> MapResult:
        """Map one site; never raises for page-level failures (they are counted)."""
        found = _Found()
        result = MapResult(links=[])
        found.add(spec.seed, None, spec.search)
        deadline = asyncio.get_running_loop().time() + spec.deadline
        links: list[MapLink] = []
        try:
            async with asyncio.timeout_at(deadline):
                await self._explore(job_id, spec, plan, found, result)
        except TimeoutError:
            result.timed_out = True
        try:
            # Checking robots.txt can mean fetching it (for sitemap URLs on other hosts):
            # that too stays within the deadline; unchecked URLs are left out. (Cached
            # verdicts never suspend, so they get through even once the deadline passed.)
            async with asyncio.timeout_at(deadline):
                for url, title in found.titles.items():
                    if len(links) >= spec.limit:
                        break
                    if not _matches(url, title, spec.search):
                        continue
                    # A URL robots.txt forbids is not offered: a crawl would skip it.
                    allowed = not spec.respect_robots or (await self._robots.check(url)).allowed
                    if not allowed:
                        continue
                    links.append(MapLink(url=url, title=title))
        except TimeoutError:
            result.timed_out = True
        result.links = links
        return result

    def _full(self, spec: MapSpec, found: _Found) -> bool:
        return found.matches >= spec.limit

    def _listed(self, plan: JobPlan, url: str) -> bool:
        return plan.in_scope(url) and plan.patterns.allows(url)

    async def _explore(
        self, job_id: str, spec: MapSpec, plan: JobPlan, found: _Found, result: MapResult
    ) -> None:
        if spec.sitemap != "skip":
            parts = urlsplit(spec.seed)
            origin = f"{parts.scheme}://{parts.netloc}"
            listed = await self._robots.sitemaps(origin)
            try:
                # `search` filters afterwards: read well past `limit` to find matches.
                wanted = min(SITEMAP_URLS_MAX, max(spec.limit * 2, 5000))
                urls = await sitemap.discover(self._fetcher, origin, listed, wanted)
            except Exception:  # a broken sitemap must not lose the links
                logger.exception("sitemap discovery failed for %s", origin)
                urls = []
            for url in urls:
                if self._listed(plan, url):
                    found.add(url, None, spec.search)
        if spec.sitemap == "only" or spec.max_depth == 0:
            return
        level = [spec.seed]
        visited = {spec.seed}
        gate = asyncio.Semaphore(self._per_host)
        for depth in range(spec.max_depth):
            if not level or self._full(spec, found):
                return
            room = spec.max_pages - result.pages_fetched - result.pages_failed
            level = level[: max(0, room)]
            pages = await asyncio.gather(
                *(self._visit(job_id, url, spec, plan, result, gate, depth) for url in level)
            )
            next_level: list[str] = []
            for page_url, title, links in pages:
                if title:
                    found.add(page_url, title, spec.search)
                for link in links:
                    if not self._listed(plan, link):
                        continue
                    found.add(link, None, spec.search)
                    if link not in visited and not looks_like_non_html(link):
                        visited.add(link)
                        next_level.append(link)
            level = next_level

    async def _visit(
        self,
        job_id: str,
        url: str,
        spec: MapSpec,
        plan: JobPlan,
        result: MapResult,
        gate: asyncio.Semaphore,
        depth: int,
    ) -> tuple[str, str | None, tuple[str, ...]]:
        if spec.respect_robots:
            verdict = await self._robots.check(url)
            if not verdict.allowed:
                result.pages_skipped += 1
                return url, None, ()
        async with gate:
            fetched = await self._fetcher.fetch(url, accept_non_html=False)
        if fetched.error is not None or (fetched.status_code or 0) >= 400:
            result.pages_failed += 1
            return url, None, ()
        result.pages_fetched += 1
        if fetched.content_type not in HTML_TYPES:
            return url, None, ()
        if depth == 0 and fetched.final_url != url:
            plan.widen_to(fetched.final_url)
        try:
            title, links = await self._parse(fetched.body, fetched.final_url, fetched.charset)
        except Exception as exc:  # a page that does not parse has no links, nothing more
            logger.info("map could not parse %s: %s", url, type(exc).__name__)
            return url, None, ()
        return url, title, links
