"""Firecrawl's v2 shapes, for the OpenAPI document (tag "firecrawl").

Only the fields Trawl reads or writes are spelled out; Firecrawl's SDKs send many more,
which are accepted (`extra="allow"`). Requests are validated in `translate`, then by
Trawl's own job request model; these models only document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_OPEN = ConfigDict(extra="allow")
Format = Literal["markdown", "html", "rawHtml", "links"]


class FcScrapeOptions(BaseModel):
    model_config = _OPEN

    formats: list[Format] = Field(
        default=["markdown"], description="screenshot, json, summary, ... are refused (400)"
    )
    onlyMainContent: bool = True
    headers: dict[str, str] | None = Field(
        default=None, description="Sent only to the job's seed hosts; never echoed back"
    )
    timeout: int | None = Field(default=None, description="Milliseconds (at most 120000)")


class FcScrapeRequest(FcScrapeOptions):
    url: str


class FcMetadata(BaseModel):
    model_config = _OPEN

    title: str | None = None
    description: str | None = None
    language: str | None = None
    sourceURL: str | None = None
    url: str | None = None
    statusCode: int | None = None
    contentType: str | None = None
    scrapeId: str | None = None
    error: str | None = None


class FcDocument(BaseModel):
    markdown: str | None = None
    html: str | None = None
    rawHtml: str | None = None
    links: list[str] | None = None
    metadata: FcMetadata


class FcScrapeResponse(BaseModel):
    success: Literal[True]
    data: FcDocument
    warning: str | None = None


class FcWebhook(BaseModel):
    model_config = _OPEN

    url: str
    headers: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None
    events: list[Literal["started", "page", "completed", "failed"]] | None = None


class FcCrawlRequest(BaseModel):
    model_config = _OPEN

    url: str
    limit: int | None = None
    maxDiscoveryDepth: int | None = None
    includePaths: list[str] | None = Field(default=None, description="Regexes over the path")
    excludePaths: list[str] | None = None
    regexOnFullURL: bool = False
    sitemap: Literal["include", "skip", "only"] = "include"
    allowExternalLinks: bool = False
    allowSubdomains: bool = False
    crawlEntireDomain: bool = False
    ignoreRobotsTxt: bool = False
    delay: float | None = None
    maxConcurrency: int | None = None
    webhook: str | FcWebhook | None = None
    scrapeOptions: FcScrapeOptions | None = None


class FcBatchRequest(FcScrapeOptions):
    urls: list[str]
    ignoreInvalidURLs: bool = True
    maxConcurrency: int | None = None
    webhook: str | FcWebhook | None = None


class FcStarted(BaseModel):
    success: Literal[True]
    id: str = Field(description="A Trawl job id (also listed in /v1/jobs)")
    url: str
    invalidURLs: list[str] | None = None


class FcJobStatus(BaseModel):
    success: Literal[True]
    status: Literal["scraping", "completed", "failed", "cancelled"]
    total: int
    completed: int
    creditsUsed: int
    expiresAt: str | None
    next: str | None = Field(description="The next page of `data`; absent when none")
    data: list[FcDocument]


class FcCancelled(BaseModel):
    success: Literal[True]
    status: Literal["cancelled"]


class FcCrawlError(BaseModel):
    id: str
    timestamp: str | None
    url: str | None
    code: str | None
    error: str


class FcErrors(BaseModel):
    errors: list[FcCrawlError]
    robotsBlocked: list[str]


class FcMapRequest(BaseModel):
    model_config = _OPEN

    url: str
    search: str | None = None
    sitemap: Literal["include", "skip", "only"] = "include"
    includeSubdomains: bool = True
    limit: int | None = None
    timeout: int | None = Field(default=None, description="Milliseconds")


class FcLink(BaseModel):
    url: str
    title: str | None = None
    description: str | None = None


class FcMapResponse(BaseModel):
    success: Literal[True]
    links: list[FcLink]
