"""Pure translation between Firecrawl's v2 API shapes and Trawl's.

Firecrawl requests become Trawl job requests (validated by Trawl afterwards, so every
server cap still applies); Trawl pages become Firecrawl documents. Nothing here does I/O.

What each Firecrawl field does here is listed in FIELDS; fields not listed are accepted
and ignored (the SDKs send many defaults, and new ones appear often).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from service.errors import Refused, ValidationFailed
from service.models import Job, JobStatus, rfc3339

# Firecrawl formats Trawl produces, and the Trawl formats behind them.
FORMATS: dict[str, str] = {
    "markdown": "markdown",
    "html": "html",
    "rawHtml": "html",
    "links": "links",
}
# Formats that need a browser, an LLM or a stored history; ignoring them would silently
# drop what the caller asked for, so they are refused.
REFUSED_FORMATS: dict[str, str] = {
    "screenshot": "needs a browser",
    "screenshot@fullPage": "needs a browser",
    "json": "needs an LLM",
    "summary": "needs an LLM",
    "changeTracking": "needs stored history",
    "branding": "needs a browser",
    "images": "is not extracted by Trawl",
    "audio": "is not extracted by Trawl",
    "video": "is not extracted by Trawl",
    "attributes": "is not extracted by Trawl (use Trawl's own `selectors`)",
    "product": "needs an LLM",
    "menu": "needs an LLM",
    "highlights": "needs an LLM",
    "answer": "needs an LLM",
}
# Actions that only wait lose nothing when skipped (Trawl does not run scripts anyway).
IGNORABLE_ACTIONS = frozenset({"wait"})

FIELDS: dict[str, tuple[str, ...]] = {
    "supported": (
        "url, urls, formats (markdown, html, rawHtml, links), onlyMainContent (default true), "
        "headers, timeout",
        "crawl: limit, maxDiscoveryDepth, includePaths, excludePaths, regexOnFullURL, "
        "sitemap (include|skip|only), allowExternalLinks, allowSubdomains, "
        "crawlEntireDomain, ignoreRobotsTxt, delay, maxConcurrency, scrapeOptions, webhook",
        "map: url, search, sitemap, includeSubdomains, limit, timeout",
        "batch: urls, scrape options at the top level, ignoreInvalidURLs, maxConcurrency, "
        "webhook, x-idempotency-key",
    ),
    "ignored": (
        "waitFor, mobile, skipTlsVerification (TLS is always verified), removeBase64Images, "
        "blockAds, proxy, maxAge, storeInCache, location, parsers, fastMode, "
        "zeroDataRetention, integration, origin, includeTags, excludeTags, "
        "ignoreQueryParameters (Trawl canonicalises URLs), deduplicateSimilarURLs, "
        "robotsUserAgent, ignoreCache, actions of type wait",
    ),
    "refused": (
        "formats screenshot, json, summary, changeTracking, branding, images, attributes; "
        "actions other than wait; prompt; appendToId",
    ),
}

# Paths (not whole URLs) are what Firecrawl's includePaths/excludePaths match. Trawl's
# patterns search the canonical URL, so each is prefixed to start after the authority.
_AUTHORITY = r"^[a-z][a-z0-9+.-]*://[^/?#]+"


@dataclass(frozen=True, slots=True, kw_only=True)
class Translated:
    """A Trawl job request body, and what the Firecrawl request asked for."""

    job: dict[str, Any]
    formats: tuple[str, ...]  # Firecrawl formats, for the documents
    ignored: tuple[str, ...] = ()  # fields accepted but not acted on (named in `warning`)
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds (Firecrawl sends milliseconds)
    webhook: dict[str, Any] | None = None  # a Trawl webhook (Firecrawl format)


def _bad(field_name: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"{field_name}: {message}", errors=[{"field": field_name, "message": message}]
    )


def _refuse(field_name: str, message: str) -> Refused:
    return Refused(
        f"{field_name}: {message}; Trawl fetches pages without a browser or an LLM.",
        errors=[{"field": field_name, "message": message}],
    )


def _object(payload: Any, name: str = "body") -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise _bad(name, "must be a JSON object")
    return payload


def _bool(body: dict[str, Any], name: str, default: bool, where: str = "") -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(where + name, "must be true or false")
    return value


def _int(body: dict[str, Any], name: str, where: str = "") -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(where + name, "must be an integer")
    return value


def _number(body: dict[str, Any], name: str, where: str = "") -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(where + name, "must be a number")
    return float(value)


def _strings(body: dict[str, Any], name: str, where: str = "") -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad(where + name, "must be an array of strings")
    return list(value)


def _url(body: dict[str, Any], name: str = "url") -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _bad(name, "required: an absolute http(s) URL")
    return value.strip()


def timeout_seconds(body: dict[str, Any], where: str = "", high: float = 120.0) -> float | None:
    """Firecrawl's `timeout` (milliseconds) in seconds, capped at `high`."""
    value = _number(body, "timeout", where)
    if value is None:
        return None
    if value <= 0:
        raise _bad(where + "timeout", "must be a positive number of milliseconds")
    return min(value / 1000.0, high)


def _format_name(item: Any, index: int, where: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("type"), str):
        name = str(item["type"])
        if name == "screenshot" and item.get("fullPage"):
            return "screenshot@fullPage"
        return name
    raise _bad(f"{where}formats[{index}]", "must be a format name or an object with `type`")


def scrape_options(options: dict[str, Any], where: str = "") -> Translated:
    """Firecrawl scrape options (a scrape body, `scrapeOptions`, or a batch body)."""
    raw_formats = options.get("formats")
    if raw_formats is None:
        raw_formats = ["markdown"]
    if not isinstance(raw_formats, list):
        raise _bad(where + "formats", "must be an array")
    formats: list[str] = []
    for index, item in enumerate(raw_formats):
        name = _format_name(item, index, where)
        if name in REFUSED_FORMATS:
            raise _refuse(f"{where}formats[{index}]", f"format {name!r} {REFUSED_FORMATS[name]}")
        if name not in FORMATS:
            raise _bad(f"{where}formats[{index}]", f"unknown format {name!r}")
        if name not in formats:
            formats.append(name)
    actions = options.get("actions")
    if actions is not None:
        if not isinstance(actions, list):
            raise _bad(where + "actions", "must be an array")
        for index, action in enumerate(actions):
            kind = action.get("type") if isinstance(action, dict) else None
            if kind not in IGNORABLE_ACTIONS:
                raise _refuse(f"{where}actions[{index}]", f"action {kind!r} needs a browser")
    trawl_formats = ["metadata", *dict.fromkeys(FORMATS[name] for name in formats)]
    job: dict[str, Any] = {
        "formats": trawl_formats,
        "only_main_content": _bool(options, "onlyMainContent", True, where),
    }
    headers = options.get("headers")
    valid = isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    if headers is not None and not valid:
        raise _bad(where + "headers", "must be an object of header names to strings")
    ignored = tuple(
        where + name
        for name in ("waitFor", "mobile", "includeTags", "excludeTags", "location", "proxy")
        if options.get(name) not in (None, False, 0, [], "basic", "auto")
    )
    return Translated(
        job=job,
        formats=tuple(formats),
        ignored=ignored,
        headers=dict(headers or {}),
        timeout=timeout_seconds(options, where),
    )


def path_pattern(pattern: str) -> str:
    """A Firecrawl path regex as a Trawl pattern over the whole canonical URL.

    RE2 has no lookaround, so the authority is kept out of the match by what follows it:
    a literal "/" (or a pattern that itself starts with "/") cannot be part of a host.
    Where the path ends, `$` now means the end of the URL (with its query): the same
    for the usual query-less URL.
    """
    if pattern.startswith("^"):
        body = pattern[1:]
        if body.startswith("/"):
            return f"{_AUTHORITY}(?:{body})"
        return f"{_AUTHORITY}/(?:{body})"  # a path starts with "/"; read "^x" as "^/x"
    inside = f"{_AUTHORITY}/[^?#]*?(?:{pattern})"
    if pattern.startswith(("/", "(/", "(?:/")):
        return f"(?:{inside}|{_AUTHORITY}(?:{pattern}))"
    return inside


def _under(seed: str) -> str | None:
    """A pattern for URLs at or below the seed's path (None: the seed is the root)."""
    path = urlsplit(seed).path.rstrip("/")
    if not path:
        return None
    return f"{_AUTHORITY}{re.escape(path)}(?:[/?#]|$)"


def crawl_request(payload: Any, limits: dict[str, int]) -> Translated:
    """`POST /v2/crawl` as a Trawl job request."""
    body = _object(payload)
    if body.get("prompt"):
        raise _refuse("prompt", "turning a prompt into crawl options needs an LLM")
    url = _url(body)
    options = _object(body.get("scrapeOptions") or {}, "scrapeOptions")
    scraped = scrape_options(options, "scrapeOptions.")
    limit = _int(body, "limit")
    if limit is not None and limit < 1:
        raise _bad("limit", "must be at least 1")
    depth = _int(body, "maxDiscoveryDepth")
    if depth is not None and depth < 0:
        raise _bad("maxDiscoveryDepth", "must be at least 0")
    full_url = _bool(body, "regexOnFullURL", False)
    include = _strings(body, "includePaths")
    exclude = _strings(body, "excludePaths")
    if not full_url:
        include = [path_pattern(p) for p in include]
        exclude = [path_pattern(p) for p in exclude]
    # Firecrawl follows only links below the seed's path unless told otherwise
    # (`crawlEntireDomain`; v1's `allowBackwardLinks`).
    everywhere = _bool(body, "crawlEntireDomain", False) or _bool(body, "allowBackwardLinks", False)
    below = None if include or everywhere else _under(url)
    if below is not None:
        include = [below]
    sitemap = body.get("sitemap", "include")
    if sitemap not in ("include", "skip", "only"):
        raise _bad("sitemap", "must be include, skip or only")
    scope = "same-host"
    if _bool(body, "allowSubdomains", False):
        scope = "same-domain"
    if _bool(body, "allowExternalLinks", False):
        scope = "any"
    job: dict[str, Any] = {
        "url": url,
        **scraped.job,
        "max_pages": min(limit or limits["max_pages_cap"], limits["max_pages_cap"]),
        "max_depth": min(
            limits["max_depth_cap"] if depth is None else depth, limits["max_depth_cap"]
        ),
        "scope": scope,
        "include": include,
        "exclude": exclude,
        "use_sitemap": sitemap != "skip",
        "respect_robots": not _bool(body, "ignoreRobotsTxt", False),
    }
    delay = _number(body, "delay")
    if delay is not None:
        job["per_host_delay"] = delay
    concurrency = _int(body, "maxConcurrency")
    if concurrency is not None:
        job["per_host_concurrency"] = max(1, min(concurrency, limits["per_host_concurrency_cap"]))
    ignored = list(scraped.ignored)
    if sitemap == "only":
        ignored.append("sitemap=only (links are followed too)")
    return Translated(
        job=job,
        formats=scraped.formats,
        ignored=tuple(ignored),
        headers=scraped.headers,
        webhook=trawl_webhook(webhook_config(body.get("webhook")), "crawl"),
    )


def scrape_request(payload: Any) -> Translated:
    """`POST /v2/scrape` as a one-page Trawl job request (plus its timeout)."""
    body = _object(payload)
    url = _url(body)
    scraped = scrape_options(body)
    # A synchronous scrape runs at high priority, as POST /v1/scrape does.
    job = {"url": url, **scraped.job, "max_depth": 0, "max_pages": 1, "priority": "high"}
    return Translated(
        job=job,
        formats=scraped.formats,
        ignored=scraped.ignored,
        headers=scraped.headers,
        timeout=scraped.timeout,
    )


def batch_request(payload: Any, check_url: Any) -> tuple[Translated, list[str]]:
    """`POST /v2/batch/scrape` as a Trawl job over its URLs; also the invalid URLs."""
    body = _object(payload)
    if body.get("appendToId"):
        raise _refuse("appendToId", "adding URLs to a running batch is not supported")
    urls = body.get("urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise _bad("urls", "required: a non-empty array of URLs")
    ignore_invalid = _bool(body, "ignoreInvalidURLs", True)
    valid: list[str] = []
    invalid: list[str] = []
    for index, url in enumerate(urls):
        try:
            check_url(url)
        except ValueError as exc:
            if not ignore_invalid:
                raise _bad(f"urls[{index}]", str(exc)) from None
            invalid.append(url)
            continue
        valid.append(url)
    if not valid:
        raise _bad("urls", "no valid URL to scrape")
    scraped = scrape_options(body)
    job: dict[str, Any] = {"urls": valid, **scraped.job, "max_depth": 0}
    job["max_pages"] = len(valid)
    concurrency = _int(body, "maxConcurrency")
    if concurrency is not None:
        job["per_host_concurrency"] = max(1, concurrency)
    translated = Translated(
        job=job,
        formats=scraped.formats,
        ignored=scraped.ignored,
        headers=scraped.headers,
        webhook=trawl_webhook(webhook_config(body.get("webhook")), "batch_scrape"),
    )
    return translated, invalid


def map_request(payload: Any) -> dict[str, Any]:
    """`POST /v2/map` as a Trawl map request body (`POST /v1/map`)."""
    body = _object(payload)
    url = _url(body)
    sitemap = body.get("sitemap", "include")
    if sitemap not in ("include", "skip", "only"):
        raise _bad("sitemap", "must be include, skip or only")
    out: dict[str, Any] = {
        "url": url,
        "sitemap": sitemap,
        "scope": "same-domain" if _bool(body, "includeSubdomains", True) else "same-host",
    }
    search = body.get("search")
    if search is not None:
        if not isinstance(search, str):
            raise _bad("search", "must be a string")
        if search.strip():
            out["search"] = search.strip()
    limit = _int(body, "limit")
    if limit is not None:
        out["limit"] = limit
    seconds = timeout_seconds(body)
    if seconds is not None:
        out["timeout"] = max(0.1, seconds)
    return out


WEBHOOK_EVENTS = ("started", "page", "completed", "failed")


def webhook_config(value: Any) -> dict[str, Any] | None:
    """Firecrawl's `webhook` (a URL, or {url, headers, metadata, events})."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        raise _bad("webhook", "must be a URL or an object with `url`")
    events = value.get("events") or list(WEBHOOK_EVENTS)
    if not isinstance(events, list) or any(event not in WEBHOOK_EVENTS for event in events):
        raise _bad("webhook.events", f"must list some of {', '.join(WEBHOOK_EVENTS)}")
    metadata = value.get("metadata") or {}
    headers = value.get("headers") or {}
    if not isinstance(metadata, dict):
        raise _bad("webhook.metadata", "must be an object")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _bad("webhook.headers", "must be an object of strings")
    return {"url": value["url"], "events": events, "metadata": metadata, "headers": headers}


_TRAWL_EVENTS = {
    "started": "job.started",
    "page": "job.page",
    "completed": "job.completed",
    "failed": "job.failed",
}


def trawl_webhook(config: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    """A Firecrawl webhook config as a Trawl webhook delivering Firecrawl-shaped bodies.

    One page per `page` event, as Firecrawl sends them; `kind` is "crawl" or
    "batch_scrape" (the event types' prefix).
    """
    if config is None:
        return None
    webhook: dict[str, Any] = {
        "url": config["url"],
        "events": [_TRAWL_EVENTS[event] for event in config["events"]],
        "format": f"firecrawl.{kind}",
        "page_batch_size": 1,
    }
    if config["metadata"]:
        webhook["metadata"] = config["metadata"]
    if config["headers"]:
        webhook["headers"] = config["headers"]
    return webhook


# -- Trawl -> Firecrawl --------------------------------------------------------------

# Trawl page metadata keys (lower-cased meta names) -> Firecrawl's camelCase names.
_META = {
    "description": "description",
    "keywords": "keywords",
    "robots": "robots",
    "og:title": "ogTitle",
    "og:description": "ogDescription",
    "og:url": "ogUrl",
    "og:image": "ogImage",
    "og:site_name": "ogSiteName",
    "og:locale": "ogLocale",
    "og:type": "ogType",
    "canonical": "canonical",
    "lang": "language",
}

STATUS = {
    JobStatus.QUEUED: "scraping",
    JobStatus.RUNNING: "scraping",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


def document(page: dict[str, Any], job_id: str | None = None) -> dict[str, Any]:
    """A Trawl result as a Firecrawl document."""
    metadata: dict[str, Any] = {}
    for key, value in (page.get("metadata") or {}).items():
        name = _META.get(key)
        if name is None and key.startswith(("og:", "twitter:")):
            name = key
        if name is not None:
            metadata[name] = value
    metadata["title"] = page.get("title")
    metadata["sourceURL"] = page.get("url")
    metadata["url"] = page.get("final_url") or page.get("url")
    metadata["statusCode"] = page.get("status_code")
    metadata["contentType"] = page.get("content_type")
    if job_id is not None:
        metadata["scrapeId"] = job_id
    error = page.get("error")
    if error:
        metadata["error"] = error.get("message") or error.get("code")
    doc: dict[str, Any] = {"metadata": metadata}
    if page.get("markdown") is not None:
        doc["markdown"] = page["markdown"]
    if page.get("html") is not None:
        doc["html"] = page["html"]
        doc["rawHtml"] = page["html"]
    if page.get("links") is not None:
        doc["links"] = page["links"]
    return doc


def document_json(page_json: str, job_id: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(page_json)
    return document(result, job_id)


def crawl_error(row_id: int, page: dict[str, Any]) -> dict[str, Any]:
    """A failed Trawl result as an entry of Firecrawl's `errors`."""
    error = page.get("error") or {}
    return {
        "id": str(row_id),
        "timestamp": page.get("fetched_at"),
        "url": page.get("url"),
        "code": error.get("code"),
        "error": error.get("message") or error.get("code") or "failed",
    }


def expires_at(job: Job, retention: timedelta = timedelta(days=1)) -> str | None:
    """When Firecrawl would expire the results (Trawl keeps them; a day from the end)."""
    moment: datetime = job.finished_at or job.created_at
    return rfc3339(moment + retention)


def status_body(job: Job) -> dict[str, Any]:
    """The counters of a Firecrawl crawl/batch status (without data and next)."""
    stats = job.stats
    done = stats.pages_fetched + stats.pages_failed + stats.pages_skipped
    return {
        "success": True,
        "status": STATUS[job.status],
        "total": max(stats.pages_discovered, done),
        "completed": stats.pages_fetched,
        "creditsUsed": stats.pages_fetched,
        "expiresAt": expires_at(job),
    }
