"""The parser process pool: BeautifulSoup holds the GIL, so parsing runs in processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any

from service.crawl.parser import ParsedPage, ParseOptions, parse_page
from service.jsontext import compact_json
from service.urls import MAX_URL_LENGTH

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseOutput:
    """What comes back from a parser process: links to follow and the encoded fields.

    The page's output fields are JSON-encoded in the child, so the event loop only
    splices strings instead of encoding tens of kilobytes of text per page.
    """

    links: tuple[str, ...]
    follow_links: tuple[str, ...]
    fields_json: str  # `"title": ..., "text": ...` without the braces
    title: str | None
    canonical: str | None = None  # <link rel=canonical>, absolute and canonicalised
    links_dropped: int = 0  # links longer than MAX_URL_LENGTH, left out


DEFAULT_MAX_FORMAT_BYTES = 2 * 1024 * 1024
_CAPPED_TEXT = ("title", "text", "markdown", "html")


def cap_fields(fields: dict[str, Any], max_bytes: int) -> list[str]:
    """Cut each format to `max_bytes` of UTF-8, in place; the names of those cut.

    html, text and markdown (and the title) are cut at a character boundary; links and
    selector data keep whole entries up to the cap. So a stored page is at most a few
    times `max_bytes`, whatever the site sends.
    """
    cut: list[str] = []
    for name in _CAPPED_TEXT:
        value = fields.get(name)
        if isinstance(value, str) and len(value) > max_bytes // 4:
            raw = value.encode("utf-8", "surrogatepass")
            if len(raw) > max_bytes:
                fields[name] = raw[:max_bytes].decode("utf-8", "ignore")
                cut.append(name)
    links = fields.get("links")
    if isinstance(links, list):
        kept = _within(links, max_bytes)
        if kept < len(links):
            fields["links"] = links[:kept]
            cut.append("links")
    metadata = fields.get("metadata")
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            if isinstance(value, str) and len(value) > max_bytes // 4:
                metadata[key] = value.encode("utf-8", "surrogatepass")[:max_bytes].decode(
                    "utf-8", "ignore"
                )
                if "metadata" not in cut:
                    cut.append("metadata")
    data = fields.get("data")
    if isinstance(data, dict):
        budget = max_bytes  # all selectors together
        for key, values in data.items():
            kept = _within(values, budget)
            budget -= sum(len(v) for v in values[:kept])
            if kept < len(values):
                data[key] = values[:kept]
                if "data" not in cut:
                    cut.append("data")
    return cut


def _within(values: list[str], max_bytes: int) -> int:
    """How many leading strings fit in `max_bytes` (characters, a cheap upper bound)."""
    total = 0
    for index, value in enumerate(values):
        total += len(value) + 3  # quotes and comma
        if total > max_bytes:
            return index
    return len(values)


def page_fields(parsed: ParsedPage, formats: frozenset[str]) -> dict[str, Any]:
    """The result fields a job's formats ask for."""
    fields: dict[str, Any] = {"title": parsed.title}
    if "text" in formats:
        fields["text"] = parsed.text
    if "markdown" in formats:
        fields["markdown"] = parsed.markdown
    if "html" in formats:
        fields["html"] = parsed.html
    if "links" in formats:
        fields["links"] = list(parsed.links)
    if "metadata" in formats:
        fields["metadata"] = parsed.metadata
    if parsed.data:
        fields["data"] = parsed.data
    return fields


class ParserCrashed(Exception):
    """A parser process died while handling the page."""


PARSER_NICENESS = 10


def _init_child() -> None:
    # Parsing is throughput work; the API and the fetch loop are latency work. With the
    # parsers a notch down the scheduler lets the event loop run the moment it is ready
    # instead of sharing the cores equally with them.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(PARSER_NICENESS)
    # A parser must not outlive a service that was killed with SIGKILL (no chance to shut
    # the pool down): it would hold memory and pile up under a restarting supervisor.
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _warm_up() -> int:
    # Importing bs4/lxml in each child up front keeps the first pages fast.
    return 0


class ParsePool:
    """A ProcessPoolExecutor that replaces itself when a child dies."""

    def __init__(self, processes: int, *, max_format_bytes: int = DEFAULT_MAX_FORMAT_BYTES) -> None:
        self._processes = max(1, processes)
        self._max_format_bytes = max_format_bytes
        # spawn: the parent runs threads (aiosqlite, the loop); forking them is unsafe.
        self._context = multiprocessing.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = None
        self._generation = 0

    def start(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=self._processes, mp_context=self._context, initializer=_init_child
        )
        self._generation += 1

    async def warm_up(self) -> None:
        loop = asyncio.get_running_loop()
        pool = self._require()
        await asyncio.gather(
            *(loop.run_in_executor(pool, _warm_up) for _ in range(self._processes))
        )

    def _require(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self.start()
        assert self._pool is not None
        return self._pool

    async def parse(
        self, body: bytes, url: str, options: ParseOptions, http_charset: str | None
    ) -> ParseOutput:
        """Parse in a child process; ParserCrashed if the child died (the pool is renewed)."""
        pool = self._require()
        generation = self._generation
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                pool, _parse, body, url, options, http_charset, self._max_format_bytes
            )
        except BrokenProcessPool as exc:
            self._renew(generation)
            raise ParserCrashed("the parser process died on this page") from exc

    def _renew(self, generation: int) -> None:
        # Many in-flight pages see the same broken pool; only the first replaces it.
        if generation != self._generation:
            return
        logger.error("parser process pool broke; starting a new one")
        old = self._pool
        self.start()
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _parse(
    body: bytes,
    url: str,
    options: ParseOptions,
    http_charset: str | None,
    max_format_bytes: int = DEFAULT_MAX_FORMAT_BYTES,
) -> ParseOutput:
    parsed = parse_page(body, url, options, http_charset=http_charset)
    dropped = 0
    if any(len(link) > MAX_URL_LENGTH for link in parsed.links):
        links = tuple(link for link in parsed.links if len(link) <= MAX_URL_LENGTH)
        dropped = len(parsed.links) - len(links)
        follow = tuple(link for link in parsed.follow_links if len(link) <= MAX_URL_LENGTH)
        parsed = replace(parsed, links=links, follow_links=follow)
    fields = page_fields(parsed, options.formats)
    cut = cap_fields(fields, max_format_bytes)
    if cut:
        fields["truncated"] = True
        fields["truncated_formats"] = cut
    if dropped:
        fields["links_dropped"] = dropped
    encoded = compact_json(fields)
    canonical = parsed.metadata.get("canonical")
    return ParseOutput(
        links=parsed.links,
        follow_links=parsed.follow_links,
        fields_json=encoded[1:-1],
        title=parsed.title,
        canonical=canonical if canonical and len(canonical) <= MAX_URL_LENGTH else None,
        links_dropped=dropped,
    )
