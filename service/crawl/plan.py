"""A job's crawl plan: its request compiled once into what the workers check per URL."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from service.crawl.parser import ParseOptions, SelectorSpec
from service.settings import Settings
from service.urls import looks_like_non_html, registrable_domain


@dataclass(slots=True, kw_only=True)
class JobPlan:
    """Everything a worker needs to know about one job, compiled from its request."""

    job_id: str
    max_depth: int
    max_pages: int
    scope: str
    hosts: set[str]
    domains: set[str]
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    formats: frozenset[str]
    parse_options: ParseOptions
    respect_robots: bool
    follow_non_html: bool
    use_sitemap: bool
    per_host_concurrency: int | None
    per_host_delay: float | None
    max_attempts: int
    webhook: dict[str, Any] | None
    seen: set[str] = field(default_factory=set)
    sitemap_origins: set[str] = field(default_factory=set)
    cancelled: bool = False

    @classmethod
    def from_request(cls, job_id: str, request: dict[str, Any], settings: Settings) -> JobPlan:
        seeds: list[str] = request["urls"]
        selectors: list[tuple[str, SelectorSpec]] = []
        for name, spec in (request.get("selectors") or {}).items():
            if isinstance(spec, str):
                selectors.append((name, SelectorSpec(css=spec)))
            else:
                selectors.append(
                    (
                        name,
                        SelectorSpec(
                            css=spec["css"], attr=spec.get("attr"), all=spec.get("all", True)
                        ),
                    )
                )
        formats = frozenset(request.get("formats") or ())
        max_depth = int(request.get("max_depth", 0))
        max_retries = request.get("max_retries")
        hosts = {urlsplit(seed).hostname or "" for seed in seeds}
        return cls(
            job_id=job_id,
            max_depth=max_depth,
            max_pages=int(request.get("max_pages") or settings.default_max_pages),
            scope=request.get("scope", "same-host"),
            hosts=hosts,
            domains={registrable_domain(host) for host in hosts},
            include=tuple(re.compile(p) for p in request.get("include") or ()),
            exclude=tuple(re.compile(p) for p in request.get("exclude") or ()),
            formats=formats,
            parse_options=ParseOptions(
                formats=formats,
                selectors=tuple(selectors),
                extract_links=max_depth > 0 or "links" in formats,
                only_main_content=bool(request.get("only_main_content", False)),
                respect_nofollow=bool(request.get("respect_nofollow", False)),
            ),
            respect_robots=bool(request.get("respect_robots", True)),
            follow_non_html=bool(request.get("follow_non_html", False)),
            use_sitemap=bool(request.get("use_sitemap", False)),
            per_host_concurrency=request.get("per_host_concurrency"),
            per_host_delay=request.get("per_host_delay"),
            max_attempts=1 + (settings.max_retries if max_retries is None else int(max_retries)),
            webhook=request.get("webhook"),
            seen=set(seeds),
        )

    def in_scope(self, url: str) -> bool:
        if self.scope == "any":
            return True
        host = urlsplit(url).hostname or ""
        if self.scope == "same-host":
            return host in self.hosts
        return registrable_domain(host) in self.domains

    def follows(self, url: str) -> bool:
        """Whether a discovered (canonical) link may enter this job's frontier."""
        if not self.in_scope(url):
            return False
        if not self.follow_non_html and looks_like_non_html(url):
            return False
        if self.include and not any(p.search(url) for p in self.include):
            return False
        return not any(p.search(url) for p in self.exclude)

    def new_links(self, links: tuple[str, ...], depth: int) -> tuple[str, ...]:
        """Links found at `depth` worth offering to the store (scope, depth, seen)."""
        if depth >= self.max_depth:
            return ()
        fresh: list[str] = []
        for link in links:
            if link in self.seen or not self.follows(link):
                continue
            self.seen.add(link)
            fresh.append(link)
        return tuple(fresh)

    def sitemap_links(self, urls: list[str]) -> tuple[str, ...]:
        """Sitemap URLs worth offering: they count as one hop, even when max_depth is 0."""
        fresh: list[str] = []
        for url in urls:
            if url in self.seen or not self.follows(url):
                continue
            self.seen.add(url)
            fresh.append(url)
        return tuple(fresh)

    def widen_to(self, final_url: str) -> None:
        """A seed redirected (http->https, bare->www): its new host is in scope too."""
        host = urlsplit(final_url).hostname
        if host:
            self.hosts.add(host)
            self.domains.add(registrable_domain(host))
