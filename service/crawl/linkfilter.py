"""Which discovered links a job follows: scope, file type, include/exclude patterns.

A frozen, picklable snapshot of a job's rules, so the check runs where the links are
found: in the parser processes (a page may carry thousands of links, and matching them
against a hundred patterns would otherwise be event-loop time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from service.crawl.patterns import UrlPatterns
from service.urls import MAX_URL_LENGTH, looks_like_non_html, registrable_domain


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkFilter:
    """A job's link rules at one moment (its scope may widen later)."""

    scope: str = "same-host"
    hosts: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    patterns: UrlPatterns = field(default_factory=UrlPatterns)
    follow_non_html: bool = False

    def in_scope(self, url: str) -> bool:
        if self.scope == "any":
            return True
        host = urlsplit(url).hostname or ""
        if self.scope == "same-host":
            return host in self.hosts
        return registrable_domain(host) in self.domains

    def follows(self, url: str) -> bool:
        """Whether a discovered (canonical) link may enter the job's frontier."""
        if len(url) > MAX_URL_LENGTH or not self.in_scope(url):
            return False
        if not self.follow_non_html and looks_like_non_html(url):
            return False
        return self.patterns.allows(url)

    def select(self, links: Iterable[str]) -> tuple[str, ...]:
        """The links this filter follows, in order, without duplicates."""
        return tuple(link for link in dict.fromkeys(links) if self.follows(link))
