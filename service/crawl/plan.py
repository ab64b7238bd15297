"""A job's crawl plan: its request compiled once into what the workers check per URL."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from service import jobheaders
from service.crawl.linkfilter import LinkFilter
from service.crawl.parser import ParseOptions
from service.crawl.patterns import UrlPatterns
from service.settings import Settings
from service.spec import CrawlSpec, JobFacts, WebhookSpec
from service.urls import registrable_domain


class SeenFilter:
    """Links already offered to a job's frontier, remembered up to a fixed count.

    Only an optimisation: the frontier's unique key is what dedupes, so forgetting the
    oldest entries costs a redundant offer, never a second fetch. Entries are 8-byte
    digests, not the URLs: 60 pages of 4,000 unique 2.5 KB links kept 600 MB of URLs
    in the old seen-set, for a job that could admit 60 of them.
    """

    __slots__ = ("_digests", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        # digest -> smallest depth offered; insertion-ordered: the oldest go first
        self._digests: dict[int, int] = {}

    @staticmethod
    def _digest(url: str) -> int:
        raw = hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(raw, "big")

    def add(self, url: str, depth: int = 0) -> bool:
        """Remember `url` at `depth`; False if it was already remembered at that depth or
        a smaller one (a URL found again on a shorter path is worth offering again: the
        store lowers its depth, so depth is the shortest link path)."""
        digest = self._digest(url)
        known = self._digests.get(digest)
        if known is not None:
            if known <= depth:
                return False
            self._digests[digest] = depth
            return True
        if len(self._digests) >= self.capacity:
            del self._digests[next(iter(self._digests))]
        self._digests[digest] = depth
        return True

    def depth_of(self, url: str) -> int | None:
        """The smallest depth `url` was offered at, if remembered."""
        return self._digests.get(self._digest(url))

    def __contains__(self, url: str) -> bool:
        return self._digest(url) in self._digests

    def __len__(self) -> int:
        return len(self._digests)


def seen_capacity(max_pages: int) -> int:
    """How many offered links a job remembers: a few times what it may admit."""
    return min(4 * max_pages + 1024, 1_000_000)


@dataclass(slots=True, kw_only=True)
class JobPlan:
    """Everything a worker needs to know about one job, compiled from its request."""

    job_id: str
    max_depth: int
    max_pages: int
    scope: str
    hosts: set[str]
    domains: set[str]
    patterns: UrlPatterns
    formats: frozenset[str]
    parse_options: ParseOptions
    respect_robots: bool
    follow_non_html: bool
    use_sitemap: bool
    per_host_concurrency: int | None
    per_host_delay: float | None
    adaptive_delay: bool
    max_attempts: int
    webhook: WebhookSpec | None
    priority: str = "normal"
    # The job's own headers and cookies, and the only origins they are sent to.
    request_headers: tuple[tuple[str, str], ...] = ()
    header_origins: frozenset[str] = frozenset()
    seen: SeenFilter = field(default_factory=lambda: SeenFilter(1024))
    sitemap_origins: set[str] = field(default_factory=set)
    cancelled: bool = False
    recrawl_of: str | None = None  # the job a recrawl compares with
    revalidate: bool = False  # send the previous validators (conditional requests)
    _filter: LinkFilter | None = None

    @classmethod
    def from_spec(
        cls, job_id: str, spec: CrawlSpec, settings: Settings, facts: JobFacts | None = None
    ) -> JobPlan:
        """The plan of a job's spec, with what the job has learnt so far (`facts`)."""
        facts = facts or JobFacts()
        hosts = {urlsplit(seed).hostname or "" for seed in spec.urls} | set(facts.widened_hosts)
        seen = SeenFilter(seen_capacity(spec.max_pages))
        for seed in spec.urls:
            seen.add(seed)
        max_retries = settings.max_retries if spec.max_retries is None else spec.max_retries
        return cls(
            job_id=job_id,
            max_depth=spec.max_depth,
            max_pages=spec.max_pages,
            scope=spec.scope,
            hosts=hosts,
            domains={registrable_domain(host) for host in hosts},
            patterns=UrlPatterns(include=spec.include, exclude=spec.exclude),
            formats=spec.formats,
            parse_options=ParseOptions(
                formats=spec.formats - {"changes"},  # computed here, not by the parser
                selectors=spec.selectors,
                extract_links=spec.max_depth > 0 or "links" in spec.formats,
                only_main_content=spec.only_main_content,
                respect_nofollow=spec.respect_nofollow,
                # The main content's hash and text, for recrawls to compare: a recrawl's
                # pages, and a job asking for `changes` (a baseline to watch from). Not
                # every job's: it cost +45% parse CPU (3.9 -> 5.6 ms a page, bench site,
                # default formats, load 5.8), and a recrawl of a job without it compares
                # the stored formats instead (service/changes.py).
                digest=spec.recrawl_of is not None or "changes" in spec.formats,
            ),
            respect_robots=spec.respect_robots,
            follow_non_html=spec.follow_non_html,
            use_sitemap=spec.use_sitemap,
            per_host_concurrency=spec.per_host_concurrency,
            per_host_delay=spec.per_host_delay,
            max_attempts=1 + max_retries,
            webhook=spec.webhook,
            adaptive_delay=spec.adaptive_delay,
            priority=spec.priority,
            request_headers=spec.headers,
            header_origins=jobheaders.origins(spec.urls),
            seen=seen,
            sitemap_origins=set(facts.sitemap_origins),
            recrawl_of=spec.recrawl_of,
            revalidate=spec.revalidate,
        )

    @classmethod
    def from_request(cls, job_id: str, request: dict[str, Any], settings: Settings) -> JobPlan:
        """The plan of a stored (normalised) request; see `from_spec`."""
        return cls.from_spec(job_id, CrawlSpec.from_normalised(request), settings)

    def learn(self, facts: JobFacts) -> None:
        """Take in facts another process (or an earlier run) stored for this job."""
        for host in facts.widened_hosts - self.hosts:
            self._widen(host)
        self.sitemap_origins |= facts.sitemap_origins

    @property
    def seen_count(self) -> int:
        return len(self.seen)

    @property
    def seen_capacity(self) -> int:
        return self.seen.capacity

    def link_filter(self) -> LinkFilter:
        """This job's link rules now, as a picklable snapshot (for the parser processes)."""
        if self._filter is None:
            self._filter = LinkFilter(
                scope=self.scope,
                hosts=frozenset(self.hosts),
                domains=frozenset(self.domains),
                patterns=self.patterns,
                follow_non_html=self.follow_non_html,
            )
        return self._filter

    def in_scope(self, url: str) -> bool:
        return self.link_filter().in_scope(url)

    def follows(self, url: str) -> bool:
        """Whether a discovered (canonical) link may enter this job's frontier."""
        return self.link_filter().follows(url)

    def new_links(
        self, links: tuple[str, ...], depth: int, *, filtered: bool = False
    ) -> tuple[str, ...]:
        """Links found at `depth` worth offering to the store (scope, depth, seen).

        `filtered`: the links already passed `link_filter()` (in a parser process).
        """
        if depth >= self.max_depth:
            return ()
        return self._offer(links, depth + 1, filtered=filtered)

    def cuts_links(self, depth: int) -> bool:
        """A page at this depth has its links cut by max_depth (0 never follows links)."""
        return 0 < self.max_depth <= depth

    def _offer(
        self, links: tuple[str, ...] | list[str], depth: int, *, filtered: bool = False
    ) -> tuple[str, ...]:
        # One page can never add more than max_pages URLs to the frontier, so offering
        # more would only cost memory in the record and work in the store.
        fresh: list[str] = []
        seen = self.seen
        for link in links:
            if len(fresh) >= self.max_pages:
                break
            known = seen.depth_of(link)
            if known is not None and known <= depth:
                continue
            if known is None and not (filtered or self.follows(link)):
                continue
            seen.add(link, depth)
            fresh.append(link)
        return tuple(fresh)

    def sitemap_links(self, urls: list[str], *, filtered: bool = False) -> tuple[str, ...]:
        """Sitemap URLs worth offering: they count as one hop, even when max_depth is 0."""
        return self._offer(urls, 1, filtered=filtered)

    def widen_to(self, final_url: str) -> JobFacts | None:
        """A seed redirected (http->https, bare->www): its new host is in scope too.

        Returns the fact to store with the seed's record when the host is new.
        """
        host = urlsplit(final_url).hostname
        if not host or host in self.hosts:
            return None
        self._widen(host)
        return JobFacts(widened_hosts=frozenset({host}))

    def _widen(self, host: str) -> None:
        self.hosts.add(host)
        self.domains.add(registrable_domain(host))
        self._filter = None
