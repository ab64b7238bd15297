"""The parser process pool: BeautifulSoup holds the GIL, so parsing runs in processes.

Each child is its own one-process executor, so one child can be killed without
touching the others' pages. A child holds two pages at a time (it parses the second while
the first's result travels back to the event loop); the second one's deadline starts when
the first ends, and if the first gets the child killed, the second goes to another child.

- a page (or a job's selectors) that parses past the deadline gets its child killed
  and replaced; the page fails with ParseTimeout and the crawl goes on;
- a child is retired (and replaced) after `max_pages_per_child` pages or once its
  resident memory passes `max_child_rss`: lxml and codec caches only ever grow.

Whatever comes from crawled bytes and can cost (parsing, link filtering with a job's
patterns, sitemaps) runs here, never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from service import changes
from service.crawl.linkfilter import LinkFilter
from service.crawl.parser import ParsedPage, ParseOptions, parse_page
from service.crawl.sitemap import SitemapFile, parse_sitemap
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
    # With ParseOptions.digest: the main content's hash and compressed text (changes.py).
    content_hash: str | None = None
    content: bytes | None = None


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


class ParseTimeout(Exception):
    """The page took longer than the parse deadline; its process was replaced."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolLimits:
    """Per-page deadline and the recycling thresholds of the parser processes."""

    parse_timeout: float = 5.0
    max_pages_per_child: int = 2000
    max_child_rss: int = 512 * 1024 * 1024


PARSER_NICENESS = 10
_T = TypeVar("_T")


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


_WARM_UP_PAGE = b"<html><head><title>t</title></head><body><p>warm <a href='/x'>up</a></p>"


def _warm_up() -> int:
    # Importing bs4/lxml in each child, and one small parse (lazy imports, caches) up
    # front keep the first real page fast: it runs under the deadline. The pid is how the
    # parent kills this child, and only this one, past the deadline.
    with contextlib.suppress(Exception):
        parse_page(
            _WARM_UP_PAGE,
            "http://warm.up/",
            ParseOptions(formats=frozenset({"metadata", "text", "markdown", "links"})),
        )
    return os.getpid()


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss() -> int:
    """This process's resident memory in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def _consume(future: asyncio.Future[Any]) -> None:
    # A killed child's future ends in BrokenProcessPool that nobody awaits any more.
    if not future.cancelled():
        future.exception()


# Calls in flight per child: while the result of one travels back to the event loop (a
# thread hop and a loop wake-up, several ms on a busy loop) the child parses the next
# instead of waiting idle. With one, the parsers sat idle three quarters of the time on a
# fast single-host crawl (bench/run.py: ~250 pages/s with 2 children at 25% CPU each).
SLOTS = 2


@dataclass(slots=True, eq=False)
class _Child:
    executor: ProcessPoolExecutor
    pid: int
    pages: int = 0
    # Up to a quarter more than max_pages_per_child, at random: children started together
    # (pages alternate between them) would otherwise all retire, and leave no parser,
    # at once.
    spread: float = 0.0
    in_flight: int = 0  # calls sent to it and not yet settled (at most SLOTS)
    # The last call sent to it: the next one waits behind it before its deadline starts.
    tail: asyncio.Future[Any] | None = None
    killed: bool = False  # killed for a page past the deadline or a crash


class ParsePool:
    """Parser processes with a per-page deadline; see the module docstring."""

    def __init__(
        self,
        processes: int,
        limits: PoolLimits | None = None,
        *,
        max_format_bytes: int = DEFAULT_MAX_FORMAT_BYTES,
    ) -> None:
        self._processes = max(1, processes)
        self.limits = limits or PoolLimits()
        self._max_format_bytes = max_format_bytes
        # spawn: the parent runs threads (aiosqlite, the loop); forking them is unsafe.
        self._context = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Child] | None = None
        self._children: set[_Child] = set()
        self._spawning: set[asyncio.Task[None]] = set()
        self._ready: asyncio.Task[None] | None = None
        self._closed = False
        self.replaced = 0  # children killed or retired and replaced (for tests and logs)

    @classmethod
    def for_settings(cls, settings: Any) -> ParsePool:
        return cls(
            settings.parser_processes,
            PoolLimits(
                parse_timeout=settings.parse_timeout,
                max_pages_per_child=settings.parser_max_pages,
                max_child_rss=settings.parser_max_memory_mb * 1024 * 1024,
            ),
            max_format_bytes=settings.max_format_bytes,
        )

    def start(self) -> None:
        """Nothing to do before the loop runs; children start in `warm_up`."""
        self._closed = False

    async def warm_up(self) -> None:
        """Start every child and wait until each has imported the parser."""
        if self._ready is None:
            self._idle = asyncio.Queue()
            self._ready = asyncio.get_running_loop().create_task(self._start_children())
        await asyncio.shield(self._ready)

    async def _start_children(self) -> None:
        await asyncio.gather(*(self._add_child() for _ in range(self._processes)))

    def _spawn(self) -> tuple[ProcessPoolExecutor, concurrent.futures.Future[int]]:
        executor = ProcessPoolExecutor(
            max_workers=1, mp_context=self._context, initializer=_init_child
        )
        return executor, executor.submit(_warm_up)

    async def _add_child(self) -> None:
        # Starting a process (fork/exec, its preparation data pickled down a pipe) blocks:
        # a thread does it, so replacing a child never stalls the event loop.
        executor, started = await asyncio.to_thread(self._spawn)
        try:
            pid = await asyncio.wrap_future(started)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        child = _Child(executor, pid, spread=random.random() / 4)
        if self._closed:
            self._stop_child(child)
            return
        self._children.add(child)
        assert self._idle is not None
        for _ in range(SLOTS):
            self._idle.put_nowait(child)

    def _replace(self, child: _Child, *, kill: bool) -> None:
        """Drop `child` (killing it if it is stuck) and start a new one in the background."""
        if kill:
            child.killed = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child.pid, signal.SIGKILL)
        if child not in self._children:
            return  # retired already (its last queued page overran): its successor is coming
        self._children.discard(child)
        self.replaced += 1
        if self._closed:
            child.executor.shutdown(wait=False, cancel_futures=True)
            return
        task = asyncio.get_running_loop().create_task(self._succeed(child, kill=kill))
        self._spawning.add(task)
        task.add_done_callback(self._spawned)

    async def _succeed(self, child: _Child, *, kill: bool) -> None:
        # The old process has exited before its successor starts. Started side by side
        # (shutdown(wait=False)), the old one lingered for seconds while the new one
        # imported lxml: ~65 MB per child above the pool's size at every recycling
        # (bench/wide.py, 2,000 hosts, 2 parsers: 367 MB peak, 243 MB between them).
        # A retired child still parses the call queued behind its last page: not cancelled.
        await asyncio.to_thread(self._stop_child, child, kill)
        await self._add_child()

    def _spawned(self, task: asyncio.Task[None]) -> None:
        self._spawning.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("could not start a parser process", exc_info=task.exception())

    async def _call(
        self, fn: Callable[..., tuple[_T, int]], *args: Any, seconds: float | None = None
    ) -> _T:
        """Run `fn(*args)` in an idle child within the deadline; it returns (value, rss)."""
        deadline = self.limits.parse_timeout if seconds is None else seconds
        await self.warm_up()
        # A call queued behind a page that got its child killed is not at fault: it is
        # sent once more, to another child.
        for _ in range(2):
            child = await self._take()
            ahead = child.tail
            future = asyncio.get_running_loop().run_in_executor(child.executor, fn, *args)
            future.add_done_callback(_consume)
            child.tail = future
            child.in_flight += 1
            if ahead is not None and not ahead.done():
                try:
                    # The child works on the call ahead: this one's deadline starts after.
                    await asyncio.wait({ahead})
                except asyncio.CancelledError:
                    future.add_done_callback(self._settler(child))
                    raise
            if not child.killed:
                return await self._await(child, future, deadline)
            child.in_flight -= 1
        raise ParserCrashed("the parser process died on the page queued before this one")

    def _settler(self, child: _Child) -> Callable[[asyncio.Future[Any]], None]:
        return lambda _: self._settle(child, 0)

    async def _take(self) -> _Child:
        """A free slot of a live child (a replaced child's slots are skipped)."""
        assert self._idle is not None
        while True:
            child = await self._idle.get()
            if child in self._children:
                return child

    async def _await(
        self, child: _Child, future: asyncio.Future[tuple[_T, int]], deadline: float
    ) -> _T:
        try:
            value, rss = await asyncio.wait_for(asyncio.shield(future), deadline)
        except TimeoutError:
            logger.warning(
                "parser process %d passed the %gs deadline; replacing it", child.pid, deadline
            )
            self._replace(child, kill=True)
            raise ParseTimeout(f"parsing took longer than {deadline:g}s") from None
        except BrokenProcessPool as exc:
            logger.error("parser process %d died; replacing it", child.pid)
            self._replace(child, kill=True)
            raise ParserCrashed("the parser process died on this page") from exc
        except asyncio.CancelledError:
            # The child still works on it: it goes back to the idle queue when done.
            future.add_done_callback(self._settler(child))
            raise
        except BaseException:
            self._settle(child, 0)  # the page's own failure; the child is fine
            raise
        self._settle(child, rss)
        return value

    def _settle(self, child: _Child, rss: int) -> None:
        child.in_flight -= 1
        if child not in self._children:
            return
        child.pages += 1
        budget = self.limits.max_pages_per_child
        budget += int(budget * child.spread)
        if child.pages >= budget or rss > self.limits.max_child_rss:
            logger.info(
                "recycling parser process %d after %d pages (%.0f MB resident)",
                child.pid,
                child.pages,
                rss / 1e6,
            )
            self._replace(child, kill=False)
            return
        assert self._idle is not None
        self._idle.put_nowait(child)

    async def parse(
        self,
        body: bytes,
        url: str,
        options: ParseOptions,
        http_charset: str | None,
        links: LinkFilter | None = None,
    ) -> ParseOutput:
        """Parse in a child process.

        ParseTimeout past the deadline, ParserCrashed if the child died (either way the
        child is replaced). With `links`, `follow_links` holds only the links it follows.
        """
        return await self._call(
            _parse, body, url, options, http_charset, links, self._max_format_bytes
        )

    async def sitemap(
        self, body: bytes, origin: str, max_urls: int, links: LinkFilter | None = None
    ) -> SitemapFile:
        """Parse one sitemap file in a child (the errors of `parse`).

        One file per origin holds up to 50,000 URLs to canonicalise (~2 s here), and there
        are few of them: a longer deadline than a page's.
        """
        seconds = max(6 * self.limits.parse_timeout, 30.0)
        return await self._call(_sitemap, body, origin, max_urls, links, seconds=seconds)

    def close(self) -> None:
        self._closed = True
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()
        for task in list(self._spawning):
            task.cancel()
        for child in list(self._children):
            if child.in_flight > 0:  # busy: it may never finish on its own
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child.pid, signal.SIGKILL)
            self._stop_child(child)
        self._children.clear()
        self._ready = None
        self._idle = None

    @staticmethod
    def _stop_child(child: _Child, cancel: bool = True) -> None:
        with contextlib.suppress(Exception):
            child.executor.shutdown(wait=True, cancel_futures=cancel)


def _parse(
    body: bytes,
    url: str,
    options: ParseOptions,
    http_charset: str | None,
    links: LinkFilter | None = None,
    max_format_bytes: int = DEFAULT_MAX_FORMAT_BYTES,
) -> tuple[ParseOutput, int]:
    parsed = parse_page(body, url, options, http_charset=http_charset)
    dropped = 0
    if any(len(link) > MAX_URL_LENGTH for link in parsed.links):
        kept = tuple(link for link in parsed.links if len(link) <= MAX_URL_LENGTH)
        dropped = len(parsed.links) - len(kept)
        follow = tuple(link for link in parsed.follow_links if len(link) <= MAX_URL_LENGTH)
        parsed = replace(parsed, links=kept, follow_links=follow)
    fields = page_fields(parsed, options.formats)
    cut = cap_fields(fields, max_format_bytes)
    if cut:
        fields["truncated"] = True
        fields["truncated_formats"] = cut
    if dropped:
        fields["links_dropped"] = dropped
    encoded = compact_json(fields)
    canonical = parsed.metadata.get("canonical")
    follow_links = parsed.follow_links
    if links is not None:
        # The parser leaves non-HTML-looking links out of follow_links; a job may want them.
        follow_links = links.select(parsed.links if links.follow_non_html else follow_links)
    output = ParseOutput(
        links=parsed.links,
        follow_links=follow_links,
        fields_json=encoded[1:-1],
        title=parsed.title,
        canonical=canonical if canonical and len(canonical) <= MAX_URL_LENGTH else None,
        links_dropped=dropped,
        content_hash=changes.digest(parsed.main_text) if parsed.main_text is not None else None,
        content=(
            changes.compress(parsed.main_text, max_format_bytes)
            if parsed.main_text is not None
            else None
        ),
    )
    return output, _rss()


def _sitemap(
    body: bytes, origin: str, max_urls: int, links: LinkFilter | None
) -> tuple[SitemapFile, int]:
    return parse_sitemap(body, origin, max_urls, links), _rss()
