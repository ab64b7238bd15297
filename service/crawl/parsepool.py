"""The parser process pool: BeautifulSoup holds the GIL, so parsing runs in processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from service.crawl.parser import ParsedPage, ParseOptions, parse_page

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

    def __init__(self, processes: int) -> None:
        self._processes = max(1, processes)
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
            return await loop.run_in_executor(pool, _parse, body, url, options, http_charset)
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


def _parse(body: bytes, url: str, options: ParseOptions, http_charset: str | None) -> ParseOutput:
    parsed = parse_page(body, url, options, http_charset=http_charset)
    encoded = json.dumps(page_fields(parsed, options.formats), separators=(",", ":"))
    return ParseOutput(
        links=parsed.links,
        follow_links=parsed.follow_links,
        fields_json=encoded[1:-1],
        title=parsed.title,
        canonical=parsed.metadata.get("canonical"),
    )
