"""Recrawls: a new job that fetches an earlier job's pages again and says what changed.

A recrawl is an ordinary job built from the previous one: its request with the caller's
overrides applied (validated like any job request), its seeds, then the previous job's
result URLs at the depths they had (shallowest first, within `max_pages`), so links are
discovered from there by the usual rules. The previous job's learnt scope (hosts its
seeds redirected to) carries over. Pages fetched before are revalidated with their
stored ETag / Last-Modified when the previous results can stand in for this job's (same
formats, content options and link rules, no deeper crawl); a 304 keeps the previous
result, re-dated, so the recrawl's results are complete on their own. Each result gets a
`change` (service/changes.py) and the store reports the pages it never reached, and
those no page of it links to any more, as removed when the job completes. A recrawl
keeps each page's main content (hash and text) for the next one to compare with; so
does a plain job that asks for the `changes` format, the baseline to watch a site from.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from service import changes, metrics
from service.changes import PreviousPage
from service.crawl.fetcher import FetchResult
from service.crawl.plan import JobPlan
from service.errors import ValidationFailed
from service.jsontext import compact_json
from service.models import Change, JobRequest, parse_job_request
from service.settings import Settings
from service.spec import CrawlSpec, JobFacts
from service.store.base import FrontierItem, PageRecord

# Request fields whose change makes a previous result unfit to stand in for a page the
# server says is unchanged: what the result holds, and which links it would have led to.
_REVALIDATION_KEYS = (
    "formats",
    "selectors",
    "only_main_content",
    "scope",
    "include",
    "exclude",
    "respect_nofollow",
    "follow_non_html",
    "headers",
    "cookies",
)


class PageHistory(Protocol):
    """Where a recrawl reads the previous job's results (the store)."""

    async def previous_pages(self, job_id: str, urls: list[str]) -> dict[str, PreviousPage]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Recrawl:
    """A recrawl ready to be stored: its request and spec, and what it starts from."""

    request: JobRequest
    spec: CrawlSpec
    revisits: tuple[tuple[str, int], ...]  # the previous job's pages (url, depth)
    facts: JobFacts


def merged_request(
    previous: Mapping[str, Any], overrides: Any, limits: Mapping[str, int]
) -> JobRequest:
    """The previous job's request with `overrides` applied, validated as a job request
    (a bad override is a 422 naming its field)."""
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise ValidationFailed(
            "The request body must be a JSON object of overrides.",
            errors=[{"field": "body", "message": "must be a JSON object"}],
        )
    merged = dict(previous)
    if "url" in overrides:
        merged.pop("urls", None)  # the shorthand replaces the stored seeds
    merged.update(overrides)
    return parse_job_request(merged, dict(limits))


def may_revalidate(previous: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    """Whether the previous results can stand in for this request's unchanged pages."""
    if int(request.get("max_depth") or 0) > int(previous.get("max_depth") or 0):
        return False  # pages at the old depth limit have links this job follows
    wanted = set(request.get("formats") or ()) - {"changes"}
    kept = set(previous.get("formats") or ()) - {"changes"}
    if not wanted <= kept:
        return False
    return all(
        previous.get(key) == request.get(key) for key in _REVALIDATION_KEYS if key != "formats"
    )


def plan_recrawl(
    previous_id: str,
    previous_request: Mapping[str, Any],
    previous_facts: JobFacts,
    overrides: Any,
    pages: list[tuple[str, int]],
    settings: Settings,
    limits: Mapping[str, int],
) -> Recrawl:
    """The recrawl of a job from its request, learnt facts and result URLs (`pages`)."""
    request = merged_request(previous_request, overrides, limits)
    normalised = request.normalised()
    spec = replace(
        CrawlSpec.from_request(request),
        recrawl_of=previous_id,
        revalidate=may_revalidate(previous_request, normalised),
    )
    facts = JobFacts(widened_hosts=previous_facts.widened_hosts)
    rules = JobPlan.from_spec("recrawl", spec, settings, facts)
    seeds = set(request.urls)
    revisits = tuple(
        (url, depth)
        for url, depth in pages
        if url not in seeds and depth <= spec.max_depth and rules.follows(url)
    )
    return Recrawl(request=request, spec=spec, revisits=revisits, facts=facts)


async def previous_page(history: PageHistory, job_id: str, url: str) -> PreviousPage | None:
    """A URL's result in the job being recrawled, if it has one."""
    return (await history.previous_pages(job_id, [url])).get(url)


def unchanged(
    item: FrontierItem, previous: PreviousPage, result: FetchResult, attempt: int
) -> PageRecord:
    """The record of a page the server answered 304 for: the previous result carried
    forward (no links to admit: the previous job's pages are all in this job's frontier;
    its link keys, the same page's, keep the pages it links to linked)."""
    document = changes.revisit_document(
        previous, depth=item.depth, elapsed_ms=result.elapsed_ms, attempts=attempt
    )
    etag, modified = changes.validators(result.headers)
    version = replace(
        previous.version,
        etag=etag or previous.version.etag,
        last_modified=modified or previous.version.last_modified,
    )
    return PageRecord(
        item=item,
        outcome=previous.outcome,
        page_json=compact_json(document),
        attempts=attempt,
        version=version,
        change=Change.UNCHANGED,
        link_keys=previous.link_keys,
    )


async def compare(
    record: PageRecord, previous: PreviousPage | None, formats: frozenset[str]
) -> PageRecord:
    """A recrawl's record with its change (and diff, with the `changes` format)."""
    parsed: list[dict[str, Any]] = []

    def document() -> dict[str, Any]:
        # Read only when the previous result kept no main content (parsed once).
        if not parsed:
            parsed.append(json.loads(record.page_json))
        return parsed[0]

    change = record.change or changes.classify(
        previous,
        record.version,
        lambda: previous is not None and changes.same_fields(previous.document, document()),
    )
    with_diff = "changes" in formats
    diff = None
    if with_diff and change is Change.CHANGED and previous is not None:
        texts = changes.comparable_texts(previous, record.version, document)
        if texts is not None:
            # difflib holds the GIL, but a thread keeps the loop's other tasks going
            # between its steps; the inputs and output are bounded (changes.py).
            diff = await asyncio.to_thread(
                changes.unified_diff,
                *texts,
                from_label=f"{previous.url} ({previous.fetched_at})",
                to_label=f"{record.item.url} (now)",
            )
    page_json = changes.annotate(record.page_json, change, previous, diff, with_diff=with_diff)
    metrics.RECRAWL_PAGES.labels(change=change.value).inc()
    if record.change is Change.UNCHANGED:  # set by `unchanged`: a 304
        metrics.RECRAWL_PAGES.labels(change="not_modified").inc()
    return replace(record, change=change, page_json=page_json)
