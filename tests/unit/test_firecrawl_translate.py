"""The pure Firecrawl <-> Trawl translation."""

from __future__ import annotations

import pytest

from service.api.firecrawl import translate
from service.crawl.patterns import UrlPatterns
from service.errors import Refused, ValidationFailed
from service.models import Job, JobStats, JobStatus, check_http_url, utcnow

LIMITS = {
    "max_urls_per_job": 1000,
    "max_pages_cap": 5000,
    "max_depth_cap": 20,
    "default_max_pages": 100,
    "per_host_concurrency_cap": 16,
}


def test_scrape_defaults_follow_firecrawl() -> None:
    out = translate.scrape_request({"url": "https://example.com/a", "origin": "python-sdk"})
    assert out.job == {
        "url": "https://example.com/a",
        "formats": ["metadata", "markdown"],
        "only_main_content": True,
        "max_depth": 0,
        "max_pages": 1,
        "priority": "high",
    }
    assert out.formats == ("markdown",)
    assert out.timeout is None


def test_formats_map_onto_trawl_formats() -> None:
    out = translate.scrape_request(
        {
            "url": "https://example.com/",
            "formats": ["rawHtml", {"type": "html"}, "links", "markdown", "html"],
            "onlyMainContent": False,
            "timeout": 45000,
        }
    )
    assert out.job["formats"] == ["metadata", "html", "links", "markdown"]
    assert out.job["only_main_content"] is False
    assert out.formats == ("rawHtml", "html", "links", "markdown")
    assert out.timeout == 45.0
    assert translate.scrape_request({"url": "https://x.test/", "timeout": 10**9}).timeout == 120


@pytest.mark.parametrize(
    "formats",
    [
        ["screenshot"],
        [{"type": "screenshot", "fullPage": True}],
        ["json"],
        ["summary"],
        [{"type": "json", "schema": {}}],
        ["changeTracking"],
        ["markdown", "branding"],
    ],
)
def test_formats_needing_a_browser_or_llm_are_refused(formats: list[object]) -> None:
    with pytest.raises(Refused) as caught:
        translate.scrape_request({"url": "https://example.com/", "formats": formats})
    assert caught.value.status == 400
    assert caught.value.errors and caught.value.errors[0]["field"].startswith("formats[")


def test_unknown_format_and_bad_types_are_validation_errors() -> None:
    with pytest.raises(ValidationFailed):
        translate.scrape_request({"url": "https://example.com/", "formats": ["pdf"]})
    with pytest.raises(ValidationFailed):
        translate.scrape_request({"url": "https://example.com/", "onlyMainContent": "yes"})
    with pytest.raises(ValidationFailed):
        translate.scrape_request({"formats": ["markdown"]})
    with pytest.raises(ValidationFailed):
        translate.scrape_request(["not", "an", "object"])


def test_actions_wait_is_ignored_others_refused() -> None:
    ok = translate.scrape_request(
        {"url": "https://example.com/", "actions": [{"type": "wait", "milliseconds": 5}]}
    )
    assert ok.job["formats"] == ["metadata", "markdown"]
    with pytest.raises(Refused):
        translate.scrape_request({"url": "https://example.com/", "actions": [{"type": "scroll"}]})


def test_browser_options_that_lose_only_extras_are_named_in_the_warning() -> None:
    out = translate.scrape_request(
        {"url": "https://example.com/", "mobile": True, "waitFor": 100, "blockAds": True}
    )
    assert set(out.ignored) == {"mobile", "waitFor"}


def test_crawl_translation() -> None:
    out = translate.crawl_request(
        {
            "url": "https://example.com/docs/",
            "limit": 10**7,
            "maxDiscoveryDepth": 3,
            "excludePaths": ["^/docs/old"],
            "allowSubdomains": True,
            "ignoreRobotsTxt": True,
            "delay": 1.5,
            "maxConcurrency": 100,
            "sitemap": "skip",
            "scrapeOptions": {"formats": ["html"], "onlyMainContent": False},
        },
        LIMITS,
    )
    job = out.job
    assert job["max_pages"] == 5000  # clamped to the server cap
    assert job["max_depth"] == 3
    assert job["scope"] == "same-domain"
    assert job["respect_robots"] is False
    assert job["per_host_delay"] == 1.5
    assert job["per_host_concurrency"] == 16
    assert job["use_sitemap"] is False
    assert job["formats"] == ["metadata", "html"]
    assert job["only_main_content"] is False
    # Only links below the seed's path, as Firecrawl does without crawlEntireDomain.
    below = UrlPatterns(include=tuple(job["include"]), exclude=tuple(job["exclude"]))
    assert below.allows("https://example.com/docs/a")
    assert below.allows("https://example.com/docs")
    assert not below.allows("https://example.com/docsx")
    assert not below.allows("https://example.com/blog/")
    assert not below.allows("https://example.com/docs/old/page")


def test_crawl_defaults() -> None:
    job = translate.crawl_request({"url": "https://example.com/"}, LIMITS).job
    assert job["max_pages"] == 5000 and job["max_depth"] == 20
    assert job["scope"] == "same-host" and job["include"] == [] and job["exclude"] == []
    assert job["use_sitemap"] is True and job["respect_robots"] is True
    assert job["only_main_content"] is True
    entire = translate.crawl_request(
        {"url": "https://example.com/a/", "crawlEntireDomain": True}, LIMITS
    ).job
    assert entire["include"] == []
    external = translate.crawl_request(
        {"url": "https://example.com/", "allowExternalLinks": True}, LIMITS
    ).job
    assert external["scope"] == "any"
    with pytest.raises(Refused):
        translate.crawl_request({"url": "https://example.com/", "prompt": "docs only"}, LIMITS)


@pytest.mark.parametrize(
    ("pattern", "url", "matches"),
    [
        ("^/blog/", "https://example.com/blog/a", True),
        ("^/blog/", "https://example.com/x/blog/a", False),
        ("blog", "https://example.com/x/blog/a", True),
        ("blog", "https://blog.example.com/x", False),  # a path pattern, not the host
        ("blog", "https://xblog.example.com/x", False),
        ("/blog/", "https://example.com/blog/a", True),
        ("/blog/", "https://example.com/x/blog/a", True),
        ("(/blog|/news)/", "https://example.com/news/a", True),
        ("^blog", "https://blog.test/blog/a", True),
        ("^blog", "https://blog.test/a", False),
        ("a$", "https://example.com/x/a", True),
        ("^/p/[0-9]$", "https://example.com/p/7", True),
        ("^/p/[0-9]$", "https://example.com/p/17", False),
    ],
)
def test_path_patterns_match_the_path_only(pattern: str, url: str, matches: bool) -> None:
    patterns = UrlPatterns(include=(translate.path_pattern(pattern),))
    assert patterns.allows(url) is matches


def test_full_url_patterns_pass_through() -> None:
    job = translate.crawl_request(
        {
            "url": "https://example.com/",
            "includePaths": ["example\\.com/a"],
            "regexOnFullURL": True,
        },
        LIMITS,
    ).job
    assert job["include"] == ["example\\.com/a"]


def test_batch_translation() -> None:
    out, invalid = translate.batch_request(
        {"urls": ["https://example.com/a", "nope", "https://example.com/b"], "formats": ["links"]},
        check_http_url,
    )
    assert out.job["urls"] == ["https://example.com/a", "https://example.com/b"]
    assert out.job["max_pages"] == 2 and out.job["max_depth"] == 0
    assert out.job["formats"] == ["metadata", "links"]
    assert invalid == ["nope"]
    with pytest.raises(ValidationFailed):
        translate.batch_request(
            {"urls": ["https://example.com/a", "nope"], "ignoreInvalidURLs": False},
            check_http_url,
        )
    with pytest.raises(ValidationFailed):
        translate.batch_request({"urls": ["nope"]}, check_http_url)


def test_map_translation() -> None:
    assert translate.map_request(
        {"url": "https://example.com/", "search": " docs ", "limit": 5, "timeout": 2000}
    ) == {
        "url": "https://example.com/",
        "sitemap": "include",
        "scope": "same-domain",
        "search": "docs",
        "limit": 5,
        "timeout": 2.0,
    }
    narrow = translate.map_request({"url": "https://example.com/", "includeSubdomains": False})
    assert narrow["scope"] == "same-host"


def test_trawl_webhook_delivers_firecrawl_events() -> None:
    config = translate.webhook_config(
        {"url": "https://hooks.test/", "events": ["page", "completed"], "metadata": {"a": 1}}
    )
    assert translate.trawl_webhook(config, "batch_scrape") == {
        "url": "https://hooks.test/",
        "events": ["job.page", "job.completed"],
        "format": "firecrawl.batch_scrape",
        "page_batch_size": 1,
        "metadata": {"a": 1},
    }
    assert translate.trawl_webhook(None, "crawl") is None


def test_webhook_config() -> None:
    assert translate.webhook_config("https://hooks.test/x") == {
        "url": "https://hooks.test/x",
        "events": ["started", "page", "completed", "failed"],
        "metadata": {},
        "headers": {},
    }
    with pytest.raises(ValidationFailed):
        translate.webhook_config({"url": "https://hooks.test/", "events": ["paged"]})


def test_document_from_a_trawl_page() -> None:
    page = {
        "url": "https://example.com/a",
        "final_url": "https://example.com/a/",
        "status_code": 200,
        "content_type": "text/html",
        "title": "A",
        "markdown": "# A",
        "html": "<h1>A</h1>",
        "links": ["https://example.com/b"],
        "metadata": {"description": "About A", "lang": "en", "og:title": "A!", "canonical": "x"},
        "error": None,
    }
    doc = translate.document(page, "job-1")
    assert doc == {
        "markdown": "# A",
        "html": "<h1>A</h1>",
        "rawHtml": "<h1>A</h1>",
        "links": ["https://example.com/b"],
        "metadata": {
            "title": "A",
            "description": "About A",
            "language": "en",
            "ogTitle": "A!",
            "canonical": "x",
            "sourceURL": "https://example.com/a",
            "url": "https://example.com/a/",
            "statusCode": 200,
            "contentType": "text/html",
            "scrapeId": "job-1",
        },
    }
    failed = translate.document(
        {"url": "u", "error": {"code": "http_error", "message": "HTTP 404"}}
    )
    assert failed["metadata"]["error"] == "HTTP 404"


def test_status_body() -> None:
    now = utcnow()
    job = Job(
        id="j",
        status=JobStatus.RUNNING,
        created_at=now,
        started_at=now,
        finished_at=None,
        request={},
        stats=JobStats(pages_discovered=10, pages_fetched=4, pages_failed=1),
    )
    body = translate.status_body(job)
    assert body["status"] == "scraping"
    assert body["total"] == 10 and body["completed"] == 4 and body["creditsUsed"] == 4
    assert body["expiresAt"]
    assert translate.STATUS[JobStatus.CANCELLED] == "cancelled"
