"""One URL's journey: robots -> fetch -> classify -> parse -> a record for the store.

Two stages: `fetch` (robots, the request, the verdict; it holds a fetch task and its
host's slot) and `finish` (the parse in a parser process, a seed's sitemap; it holds
neither). The engine runs them in different tasks with a bounded queue between them.
Page-level failures are data: every path ends in a PageRecord (a result, possibly with
an `error`) or a Release (try again later). Nothing here raises past `process`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from service import changes, metrics, recrawl
from service.changes import PageVersion, PreviousPage
from service.crawl import sitemap
from service.crawl.fetcher import Fetcher, FetchResult
from service.crawl.hosthealth import HostHealth
from service.crawl.parsepool import ParseOutput, ParsePool, ParserCrashed, ParseTimeout
from service.crawl.parser import ParseError
from service.crawl.plan import JobPlan
from service.crawl.robots import RobotsCache
from service.crawl.scheduler import HostScheduler
from service.jsontext import compact_json
from service.models import Outcome, rfc3339
from service.spec import JobFacts
from service.store.base import FrontierItem, PageRecord, Release

logger = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Whether a fetch is worth retrying is decided once, by the fetcher (FetchResult.retryable:
# timeouts, resets, refused connections, temporary DNS failures, 429 and 5xx; never
# NXDOMAIN, a failed certificate, a refused address or a body too large). The pipeline
# only follows that verdict; a host's failure count goes up only for retryable errors.
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineConfig:
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    host_failure_threshold: int = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetched:
    """A page whose body is read, waiting for the parse stage."""

    item: FrontierItem
    result: FetchResult
    attempt: int
    free_at: float | None  # when its host may start the next request (epoch seconds)
    facts: JobFacts | None  # what the job learnt from it (a seed's redirect widens scope)
    previous: PreviousPage | None = None  # a recrawl's: the page's previous result

    @property
    def size(self) -> int:
        return len(self.result.body)


class PagePipeline:
    """Turns a claimed URL into a PageRecord or a Release."""

    def __init__(
        self,
        *,
        fetcher: Fetcher,
        parser: ParsePool,
        robots: RobotsCache,
        scheduler: HostScheduler,
        health: HostHealth,
        config: PipelineConfig,
        history: recrawl.PageHistory | None = None,
    ) -> None:
        self._history = history  # a recrawl's previous results (the store)
        self._fetcher = fetcher
        self._parser = parser
        self._robots = robots
        self._scheduler = scheduler
        self._health = health
        self._config = config

    async def process(self, item: FrontierItem, plan: JobPlan) -> PageRecord | Release:
        """Both stages in one go (tests, and anything without a parse queue)."""
        outcome = await self.fetch(item, plan)
        if isinstance(outcome, Release):
            return outcome
        return await self.finish(outcome, plan)

    async def fetch(self, item: FrontierItem, plan: JobPlan) -> Fetched | PageRecord | Release:
        """The fetch stage: robots, the request, the verdict on the response. A page to
        parse comes back as Fetched; anything settled without a parser as its record."""
        previous = None
        if plan.recrawl_of is not None and self._history is not None:
            previous = await recrawl.previous_page(self._history, plan.recrawl_of, item.url)
        outcome = await self._fetch(item, plan, previous)
        if plan.recrawl_of is not None and isinstance(outcome, PageRecord):
            outcome = await recrawl.compare(outcome, previous, plan.formats)
        return outcome

    def needs_finish(self, outcome: Fetched | PageRecord, plan: JobPlan) -> bool:
        """Whether `finish` has work for this outcome (a parse, or a seed's sitemap)."""
        if isinstance(outcome, Fetched):
            return True
        return self._wants_sitemap(outcome.item, plan)

    async def finish(self, outcome: Fetched | PageRecord, plan: JobPlan) -> PageRecord:
        """The parse stage: parse a fetched page; a seed also reads its site's sitemap."""
        if isinstance(outcome, Fetched):
            record = await self._parse(outcome.item, plan, outcome.result, outcome.attempt)
            if plan.recrawl_of is not None:
                record = await recrawl.compare(record, outcome.previous, plan.formats)
            if outcome.free_at:
                record = replace(record, host_free_at=outcome.free_at)
            if outcome.facts is not None:
                # Stored with the seed's record: every process, and a restart, widen the
                # same way.
                record = replace(record, facts=outcome.facts)
        else:
            record = outcome
        item = record.item
        if self._wants_sitemap(item, plan):
            origin = _origin(item.url)
            plan.sitemap_origins.add(origin)
            listed, extra = await self._sitemap_links(origin, plan)
            # The origin is stored as done with the seed's record (any process).
            done = JobFacts(sitemap_origins=frozenset({origin}))
            facts = record.facts.merged(done) if record.facts else done
            # The sitemap links its pages as the seed's links do (a recrawl must not
            # report a page listed there as unlinked).
            keys = record.link_keys
            if keys is not None and listed:
                keys = _union_keys(keys, changes.link_keys(listed, (item.url,)))
            record = replace(record, links=record.links + extra, facts=facts, link_keys=keys)
        return record

    @staticmethod
    def _wants_sitemap(item: FrontierItem, plan: JobPlan) -> bool:
        return (
            item.depth == 0 and plan.use_sitemap and _origin(item.url) not in plan.sitemap_origins
        )

    async def _sitemap_links(self, origin: str, plan: JobPlan) -> tuple[list[str], tuple[str, ...]]:
        """(every URL the sitemap lists in the job's rules, those worth offering)."""
        listed = await self._robots.sitemaps(origin)
        try:
            urls = await sitemap.discover(
                self._fetcher,
                origin,
                listed,
                plan.max_pages,
                pool=self._parser,
                links=plan.link_filter(),
            )
        except Exception:  # a broken sitemap must not lose the seed's result
            logger.exception("sitemap discovery failed for %s", origin)
            return [], ()
        return urls, plan.sitemap_links(urls, filtered=True)

    async def _fetch(
        self, item: FrontierItem, plan: JobPlan, previous: PreviousPage | None
    ) -> Fetched | PageRecord | Release:
        attempt = item.attempts + 1
        if self._health.failures(item.host) >= self._config.host_failure_threshold:
            return self._failed(
                item,
                attempt,
                "host_unreachable",
                f"{item.host} failed {self._config.host_failure_threshold} times in a row; "
                "its remaining URLs are failed fast",
            )
        if plan.respect_robots:
            verdict = await self._robots.check(item.url)
            if verdict.crawl_delay:
                self._scheduler.set_delay(item.host, min(verdict.crawl_delay, 60.0))
            if verdict.allowed is None and not _one_page(plan):
                return Release(item=item, not_before=verdict.retry_at)
            if not verdict.allowed:  # a one-page job (a scrape) is not held: RFC 9309 2.3.1.4
                return self._record(
                    item,
                    Outcome.SKIPPED,
                    attempt,
                    page_document(
                        item, error=("blocked_by_robots", verdict.reason), attempts=attempt
                    ),
                )

        spacing = self._scheduler.request_started(item.host)
        # Without follow_non_html a body that is not HTML by its Content-Type is not read.
        conditional = changes.conditional(previous) if plan.revalidate else None
        result = await self._fetcher.fetch(
            item.url,
            accept_non_html=plan.follow_non_html,
            headers=plan.request_headers,
            header_origins=plan.header_origins,
            conditional=conditional,
        )
        if plan.adaptive_delay:
            self._health.observe(
                item.host,
                latency=result.elapsed_ms / 1000,
                status=result.status_code,
                failed=result.error is not None,
                floor=plan.per_host_delay or 0.0,
            )
        free_at = None
        if spacing:
            sent = result.sent_at
            if sent is not None:
                self._scheduler.request_sent(item.host, sent)
            # Epoch time for the store (another process's clock is not our monotonic one).
            free_at = time.time() - time.monotonic() + (sent or time.monotonic()) + spacing
        metrics.FETCH_SECONDS.observe(result.elapsed_ms / 1000)
        outcome = self._verdict(item, plan, result, attempt, conditional, previous, free_at)
        if free_at is None or isinstance(outcome, Fetched) or outcome.host_free_at:
            return outcome
        # A failure or a retry sent its request too: the host's spacing counts from it on
        # a shared frontier as a fetched page's does (another process may claim the host
        # as soon as this settles).
        return replace(outcome, host_free_at=free_at)

    def _verdict(
        self,
        item: FrontierItem,
        plan: JobPlan,
        result: FetchResult,
        attempt: int,
        conditional: changes.Conditional | None,
        previous: PreviousPage | None,
        free_at: float | None,
    ) -> Fetched | PageRecord | Release:
        """What the response makes of the URL: a page to parse, a record, or a retry."""
        retry = self._maybe_retry(item, plan, result, attempt)
        if retry is not None:
            return retry
        if result.error is not None:
            if result.retryable:  # retries used up; an unreachable host counts
                self._health.note_failure(item.host)
            return self._failed(
                item, attempt, result.error.code, result.error.message, result=result
            )
        self._health.note_success(item.host)
        status = result.status_code or 0
        if status == 304 and conditional is not None and previous is not None:
            # Not modified: not downloaded again; the previous result carries on.
            return recrawl.unchanged(item, previous, result, attempt)
        if status >= 400:
            return self._failed(item, attempt, "http_error", f"HTTP {status}", result=result)
        if result.content_type not in HTML_TYPES and not _sniff_html(result):
            if not plan.follow_non_html:
                # Not an HTML page: its type and size are kept, and it counts as skipped
                # (not as a page fetched); its body was never read.
                kind = result.content_type or "no Content-Type"
                return self._record(
                    item,
                    Outcome.SKIPPED,
                    attempt,
                    page_document(
                        item,
                        result=result,
                        attempts=attempt,
                        error=(
                            "not_html",
                            f"{kind} ({_size(result)} bytes) is not HTML; not parsed "
                            "(follow_non_html is false)",
                        ),
                    ),
                    result,
                )
            # Asked for: keep what we know about it, extract nothing.
            return self._record(
                item,
                Outcome.OK,
                attempt,
                page_document(item, result=result, attempts=attempt),
                result,
            )
        learnt = None
        if item.depth == 0 and result.final_url != item.url:
            learnt = plan.widen_to(result.final_url)
        return Fetched(
            item=item,
            result=result,
            attempt=attempt,
            free_at=free_at,
            facts=learnt,
            previous=previous,
        )

    async def _parse(
        self, item: FrontierItem, plan: JobPlan, result: FetchResult, attempt: int
    ) -> PageRecord:
        started = time.perf_counter()
        # Links are matched against the job's scope and patterns in the parser process,
        # and only when they can be followed at all.
        link_filter = plan.link_filter() if item.depth < plan.max_depth else None
        try:
            parsed = await self._parser.parse(
                result.body, result.final_url, plan.parse_options, result.charset, link_filter
            )
        except ParseError as exc:
            return self._failed(item, attempt, "bad_content", str(exc), result=result)
        except ParseTimeout as exc:
            return self._failed(item, attempt, "parse_timeout", str(exc), result=result)
        except ParserCrashed as exc:
            return self._failed(item, attempt, "parser_crashed", str(exc), result=result)
        except Exception as exc:  # a parser bug must not kill the fetch task
            logger.exception("parser failed on %s", item.url)
            return self._failed(
                item,
                attempt,
                "bad_content",
                f"could not parse: {type(exc).__name__}",
                result=result,
            )
        finally:
            metrics.PARSE_SECONDS.observe(time.perf_counter() - started)
        if parsed.links_dropped:
            metrics.LINKS_DROPPED.labels(reason="too_long").inc(parsed.links_dropped)
        follow = parsed.follow_links  # filtered by link_filter in the parser process
        if parsed.canonical and parsed.canonical != item.url and plan.follows(parsed.canonical):
            # The page names its preferred URL: crawl that one too (deduped like any link).
            follow = (parsed.canonical, *follow)
        links = plan.new_links(tuple(follow), item.depth, filtered=True)
        page = page_document(item, result=result, parsed=parsed, attempts=attempt)
        etag, modified = changes.validators(result.headers)
        return PageRecord(
            item=item,
            outcome=Outcome.OK,
            page_json=page,
            attempts=attempt,
            links=links,
            links_cut=plan.cuts_links(item.depth) and bool(follow),
            # Every link the crawl follows from here (not only the unseen ones in
            # `links`): what keeps a page linked for a recrawl. At max_depth none are
            # followed (and `follow` is unfiltered there).
            link_keys=changes.link_keys(
                follow if item.depth < plan.max_depth else (), (item.url, result.final_url)
            ),
            version=PageVersion(
                etag=etag,
                last_modified=modified,
                content_hash=parsed.content_hash,
                content=parsed.content,
            ),
        )

    def _maybe_retry(
        self, item: FrontierItem, plan: JobPlan, result: FetchResult, attempt: int
    ) -> Release | None:
        if not result.retryable:
            return None
        retry_after = _retry_after(result.headers.get("retry-after"))
        if retry_after is not None:
            self._scheduler.defer_host(item.host, retry_after)
        if attempt >= plan.max_attempts:
            return None
        if result.error is not None:
            failures = self._health.note_failure(item.host)
            if failures >= self._config.host_failure_threshold:
                return None
        backoff = min(
            self._config.retry_max_delay, self._config.retry_base_delay * 2 ** (attempt - 1)
        )
        delay = max(retry_after or 0.0, backoff * random.uniform(0.5, 1.5))
        return Release(item=item, not_before=time.time() + delay, attempts=attempt)

    def _failed(
        self,
        item: FrontierItem,
        attempt: int,
        code: str,
        message: str,
        *,
        result: FetchResult | None = None,
    ) -> PageRecord:
        """A page that failed for good: a result carrying the error."""
        page = page_document(item, result=result, error=(code, message), attempts=attempt)
        return self._record(item, Outcome.FAILED, attempt, page, result)

    @staticmethod
    def _record(
        item: FrontierItem,
        outcome: Outcome,
        attempt: int,
        page: str,
        result: FetchResult | None = None,
    ) -> PageRecord:
        return PageRecord(
            item=item,
            outcome=outcome,
            page_json=page,
            attempts=attempt,
            version=_unparsed_version(page, result),
        )


def _union_keys(keys: tuple[str, ...], more: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Two sets of link keys as one (None, not known, if either is or it grows too big)."""
    if more is None:
        return None
    union = tuple(dict.fromkeys(keys + more))
    return union if len(union) <= changes.MAX_LINK_KEYS else None


def _unparsed_version(page: str, result: FetchResult | None) -> PageVersion:
    """The version of a result that was not parsed: its fingerprint (changes.py) and,
    when it was fetched without error, its validators. The document is small (no body)."""
    document = json.loads(page)
    error = (document.get("error") or {}).get("code")
    status = document.get("status_code")
    etag, modified = (None, None)
    if result is not None and error is None:
        etag, modified = changes.validators(result.headers)
    return PageVersion(
        etag=etag,
        last_modified=modified,
        content_hash=changes.fingerprint(
            status=status,
            content_type=document.get("content_type"),
            size=document.get("size"),
            error=error,
        ),
        gone=status in changes.GONE_STATUSES,
    )


def _sniff_html(result: FetchResult) -> bool:
    """A missing Content-Type with an HTML-looking body is still a page."""
    if result.content_type:
        return False
    head = result.body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _size(result: FetchResult) -> int:
    """Body size: what was read, else what Content-Length announced (a body not read)."""
    declared = result.headers.get("content-length", "").strip()
    if not result.body and result.error is None and declared.isdigit():
        return int(declared)
    return len(result.body)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max(0.0, (moment - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER)


def page_document(
    item: FrontierItem,
    *,
    result: FetchResult | None = None,
    parsed: ParseOutput | None = None,
    error: tuple[str, str] | None = None,
    attempts: int = 1,
) -> str:
    """The result document for one URL, serialised once (parsed fields come pre-encoded)."""
    page: dict[str, Any] = {
        "url": item.url,
        "final_url": result.final_url if result else None,
        "depth": item.depth,
        "status_code": result.status_code if result else None,
        "content_type": result.content_type if result else None,
        "fetched_at": rfc3339(datetime.now(UTC)),
        "elapsed_ms": round(result.elapsed_ms, 2) if result else None,
        "size": _size(result) if result else None,
        "attempts": attempts,
    }
    if result is not None and result.redirects:
        page["redirects"] = list(result.redirects)
    page["error"] = {"code": error[0], "message": error[1]} if error else None
    head = compact_json(page)
    if parsed is None or not parsed.fields_json:
        return head
    return head[:-1] + "," + parsed.fields_json + "}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _one_page(plan: JobPlan) -> bool:
    """A one-page job (a scrape): someone waits for its answer. Held back while
    robots.txt answers 5xx, it would time out; it gets RFC 9309's answer, disallowed."""
    return plan.max_depth == 0 and plan.max_pages == 1
