"""A job's crawl spec: the validated request as a frozen, typed record, built once.

`CrawlSpec.from_request` runs at the API edge on the validated `JobRequest`; the store
keeps it as JSON with `SPEC_VERSION` and gives it back with `CrawlSpec.from_row`, so the
engine, the webhooks and the API read typed fields instead of restating defaults.
What a job learns while it runs (hosts its seeds redirected to, origins whose sitemaps
were read) is `JobFacts`, persisted with the job in the transaction that learns it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service import jobheaders
from service.crawl.parser import SelectorSpec
from service.models import JobRequest, JobStatus

SPEC_VERSION = 2  # 2: the webhook's format, metadata and headers (1 is read from the request)

# Stored requests were validated against the server's caps when they were submitted;
# reading one back must not refuse it because a cap has since been lowered.
_NO_CAPS = {
    "max_urls_per_job": 2**31,
    "max_pages_cap": 2**31,
    "max_depth_cap": 2**31,
    "per_host_concurrency_cap": 2**31,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSpec:
    """Where a job's events go, which ones, and in which shape."""

    url: str
    events: tuple[str, ...]
    page_batch_size: int = 50
    # "trawl", or "firecrawl.crawl" / "firecrawl.batch_scrape" for jobs submitted
    # through /v2 (service.webhooks.firecrawl shapes those bodies).
    format: str = "trawl"
    metadata: Mapping[str, Any] | None = None  # echoed in every Firecrawl-format body
    headers: tuple[tuple[str, str], ...] = ()  # sent with every delivery (the real values)

    def wants(self, event_type: str) -> bool:
        return event_type in self.events

    @property
    def firecrawl(self) -> bool:
        return self.format.startswith("firecrawl.")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> WebhookSpec | None:
        """From the webhook object of a normalised request (None stays None)."""
        if not data or not isinstance(data.get("url"), str):
            return None
        metadata = data.get("metadata")
        return cls(
            url=data["url"],
            events=tuple(data.get("events") or ()),
            page_batch_size=int(data.get("page_batch_size") or 50),
            format=str(data.get("format") or "trawl"),
            metadata=metadata if isinstance(metadata, dict) else None,
            headers=tuple((str(k), str(v)) for k, v in (data.get("headers") or {}).items()),
        )

    @classmethod
    def from_json(cls, text: str | None) -> WebhookSpec | None:
        return cls.from_dict(json.loads(text)) if text else None

    def as_dict(self) -> dict[str, Any]:
        """The stored form (`from_dict` reads it back)."""
        return {
            "url": self.url,
            "events": list(self.events),
            "page_batch_size": self.page_batch_size,
            "format": self.format,
            "metadata": dict(self.metadata) if self.metadata is not None else None,
            "headers": dict(self.headers),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlSpec:
    """Everything a job asked for, defaults applied (see the module docstring)."""

    urls: tuple[str, ...]
    max_depth: int
    max_pages: int
    scope: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    formats: frozenset[str] = frozenset()
    selectors: tuple[tuple[str, SelectorSpec], ...] = ()
    respect_robots: bool = True
    only_main_content: bool = False
    respect_nofollow: bool = False
    follow_non_html: bool = False
    use_sitemap: bool = False
    per_host_concurrency: int | None = None
    per_host_delay: float | None = None
    adaptive_delay: bool = False
    max_retries: int | None = None  # None: the server's SCRAPER_MAX_RETRIES
    priority: str = "normal"  # low | normal | high
    # What the job sends to its seeds' origins: its headers, then its cookies as Cookie.
    headers: tuple[tuple[str, str], ...] = ()
    webhook: WebhookSpec | None = None
    # A recrawl (service/recrawl.py): the job it compares with, and whether its pages may
    # be revalidated (a 304 keeps the previous result, so it must hold what this asks for).
    recrawl_of: str | None = None
    revalidate: bool = False

    @classmethod
    def from_request(cls, request: JobRequest) -> CrawlSpec:
        """The spec of a validated request (its validators applied the defaults)."""
        selectors = []
        for name, selector in request.selectors.items():
            if isinstance(selector, str):
                selectors.append((name, SelectorSpec(css=selector)))
            else:
                selectors.append(
                    (name, SelectorSpec(css=selector.css, attr=selector.attr, all=selector.all))
                )
        if request.max_pages is None:  # the validator always sets it
            raise ValueError("max_pages was not resolved")
        hook = request.webhook
        return cls(
            urls=tuple(request.urls),
            max_depth=request.max_depth,
            max_pages=request.max_pages,
            scope=request.scope,
            include=tuple(request.include),
            exclude=tuple(request.exclude),
            formats=frozenset(request.formats),
            selectors=tuple(selectors),
            respect_robots=request.respect_robots,
            only_main_content=request.only_main_content,
            respect_nofollow=request.respect_nofollow,
            follow_non_html=request.follow_non_html,
            use_sitemap=request.use_sitemap,
            per_host_concurrency=request.per_host_concurrency,
            per_host_delay=request.per_host_delay,
            adaptive_delay=request.adaptive_delay,
            max_retries=request.max_retries,
            priority=request.priority,
            headers=jobheaders.outgoing(request.normalised()),
            webhook=(
                WebhookSpec(
                    url=hook.url,
                    events=tuple(hook.events),
                    page_batch_size=hook.page_batch_size,
                    format=hook.format,
                    metadata=hook.metadata,
                    headers=tuple((hook.headers or {}).items()),
                )
                if hook is not None
                else None
            ),
        )

    @classmethod
    def from_normalised(cls, request: dict[str, Any]) -> CrawlSpec:
        """The spec of a stored, already validated request (`JobRequest.normalised()`)."""
        return cls.from_request(JobRequest.model_validate(request, context=_NO_CAPS))

    def to_json(self) -> str:
        """The stored form (see `from_row`); its layout is SPEC_VERSION's."""
        data: dict[str, Any] = {
            "urls": list(self.urls),
            "max_depth": self.max_depth,
            "max_pages": self.max_pages,
            "scope": self.scope,
            "include": list(self.include),
            "exclude": list(self.exclude),
            "formats": sorted(self.formats),
            "selectors": [
                [name, {"css": s.css, "attr": s.attr, "all": s.all}] for name, s in self.selectors
            ],
            "respect_robots": self.respect_robots,
            "only_main_content": self.only_main_content,
            "respect_nofollow": self.respect_nofollow,
            "follow_non_html": self.follow_non_html,
            "use_sitemap": self.use_sitemap,
            "per_host_concurrency": self.per_host_concurrency,
            "per_host_delay": self.per_host_delay,
            "adaptive_delay": self.adaptive_delay,
            "max_retries": self.max_retries,
            "priority": self.priority,
            "headers": [list(pair) for pair in self.headers],
            "webhook": self.webhook.as_dict() if self.webhook is not None else None,
        }
        if self.recrawl_of is not None:
            data["recrawl_of"] = self.recrawl_of
            data["revalidate"] = self.revalidate
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_row(cls, spec: str | None, version: int | None, request: str) -> CrawlSpec:
        """The stored spec; jobs stored before specs were (version NULL) from their request."""
        if spec is None or version is None or version == 1:
            # Version 1 left out the webhook's format, metadata and headers: the request,
            # stored alongside, has them all.
            return cls.from_normalised(json.loads(request))
        if version != SPEC_VERSION:
            raise ValueError(f"unknown crawl spec version {version}")
        data = json.loads(spec)
        return cls(
            urls=tuple(data["urls"]),
            max_depth=data["max_depth"],
            max_pages=data["max_pages"],
            scope=data["scope"],
            include=tuple(data["include"]),
            exclude=tuple(data["exclude"]),
            formats=frozenset(data["formats"]),
            selectors=tuple(
                (name, SelectorSpec(css=s["css"], attr=s["attr"], all=s["all"]))
                for name, s in data["selectors"]
            ),
            respect_robots=data["respect_robots"],
            only_main_content=data["only_main_content"],
            respect_nofollow=data["respect_nofollow"],
            follow_non_html=data["follow_non_html"],
            use_sitemap=data["use_sitemap"],
            per_host_concurrency=data["per_host_concurrency"],
            per_host_delay=data["per_host_delay"],
            adaptive_delay=data["adaptive_delay"],
            max_retries=data["max_retries"],
            priority=data["priority"],
            headers=tuple((name, value) for name, value in data["headers"]),
            webhook=WebhookSpec.from_dict(data["webhook"]),
            recrawl_of=data.get("recrawl_of"),
            revalidate=bool(data.get("revalidate", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFacts:
    """What a running job has learnt, persisted with it (every process reads the same)."""

    widened_hosts: frozenset[str] = frozenset()  # hosts a seed redirected to: in scope
    sitemap_origins: frozenset[str] = frozenset()  # origins whose sitemaps were read

    @classmethod
    def from_row(cls, widened: str | None, sitemaps: str | None) -> JobFacts:
        return cls(
            widened_hosts=frozenset(json.loads(widened) if widened else ()),
            sitemap_origins=frozenset(json.loads(sitemaps) if sitemaps else ()),
        )

    def merged(self, other: JobFacts) -> JobFacts:
        return JobFacts(
            widened_hosts=self.widened_hosts | other.widened_hosts,
            sitemap_origins=self.sitemap_origins | other.sitemap_origins,
        )

    def row(self) -> tuple[str, str]:
        """(widened_hosts, sitemap_origins) as stored: sorted JSON lists."""
        return json.dumps(sorted(self.widened_hosts)), json.dumps(sorted(self.sitemap_origins))

    def __bool__(self) -> bool:
        return bool(self.widened_hosts or self.sitemap_origins)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    """A job's spec and facts as a crawl process loads them, with its status."""

    status: JobStatus
    spec: CrawlSpec
    facts: JobFacts = field(default_factory=JobFacts)
