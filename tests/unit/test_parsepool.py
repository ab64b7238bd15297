"""The parser pool: a dead child is replaced, a page past the deadline is killed alone,
and children are recycled after N pages or past a memory limit."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from service.crawl.linkfilter import LinkFilter
from service.crawl.parsepool import ParsePool, ParserCrashed, ParseTimeout, PoolLimits
from service.crawl.parser import ParseOptions
from service.crawl.patterns import UrlPatterns
from tests.conftest import wait_until
from tests.faults.hostile_content import slow_parse_body

OPTIONS = ParseOptions(formats=frozenset({"metadata", "text", "links"}))
# Markdown needs the bs4 tree: the slow page takes seconds there (text alone is one lxml
# walk, about as long as the deadline below, so it would race it).
SLOW_OPTIONS = ParseOptions(formats=frozenset({"markdown"}))
PAGE = b"<html><head><title>T</title></head><body><a href='/x'>x</a></body></html>"


async def test_a_killed_parser_process_is_replaced() -> None:
    pool = ParsePool(1)
    pool.start()
    try:
        await pool.warm_up()
        first = await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
        assert first.title == "T" and first.links == ("http://a.test/x",)
        for child in list(pool._children):
            os.kill(child.pid, signal.SIGKILL)
        with pytest.raises(ParserCrashed):
            await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
        again = await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
        assert again.title == "T"
        assert '"title":"T"' in again.fields_json
    finally:
        pool.close()


async def test_a_page_past_the_deadline_kills_only_its_child() -> None:
    pool = ParsePool(2, PoolLimits(parse_timeout=1.0))
    try:
        await pool.warm_up()
        pids = {child.pid for child in pool._children}
        slow = asyncio.create_task(
            pool.parse(slow_parse_body(), "http://a.test/", SLOW_OPTIONS, None)
        )
        # The other child keeps parsing meanwhile.
        for _ in range(5):
            assert (await pool.parse(PAGE, "http://a.test/", OPTIONS, None)).title == "T"
        with pytest.raises(ParseTimeout):
            await slow
        assert pool.replaced == 1
        again = await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
        assert again.title == "T"
        assert len(pids & {child.pid for child in pool._children}) == 1
    finally:
        pool.close()


async def test_a_page_queued_behind_a_killed_one_is_parsed_by_the_next_child() -> None:
    """One child holds two pages (the second is sent while the first parses): the one
    behind a page past the deadline is not at fault, and is parsed all the same."""
    pool = ParsePool(1, PoolLimits(parse_timeout=1.0))
    try:
        await pool.warm_up()
        slow = asyncio.create_task(
            pool.parse(slow_parse_body(), "http://a.test/", SLOW_OPTIONS, None)
        )
        behind = asyncio.create_task(pool.parse(PAGE, "http://a.test/", OPTIONS, None))
        with pytest.raises(ParseTimeout):
            await slow
        assert (await behind).title == "T"
        assert pool.replaced == 1
    finally:
        pool.close()


async def test_one_child_parses_the_next_page_while_the_last_result_travels() -> None:
    pool = ParsePool(1)
    try:
        await pool.warm_up()
        [child] = pool._children
        first = asyncio.create_task(pool.parse(PAGE, "http://a.test/", OPTIONS, None))
        second = asyncio.create_task(pool.parse(PAGE, "http://a.test/", OPTIONS, None))

        async def in_flight() -> int:
            return child.in_flight

        # Both pages are with the child before the first result is back.
        await wait_until(in_flight, lambda n: n == 2, timeout=5, interval=0.001)
        assert [(await first).title, (await second).title] == ["T", "T"]
        assert child.in_flight == 0
    finally:
        pool.close()


async def test_children_are_recycled_after_n_pages() -> None:
    pool = ParsePool(1, PoolLimits(max_pages_per_child=3))
    try:
        seen = set()
        for _ in range(7):
            await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
            await pool.warm_up()
            seen |= {child.pid for child in pool._children}
        assert pool.replaced == 2
        assert len(seen) >= 2
    finally:
        pool.close()


async def test_a_recycled_child_exits_before_its_successor_starts() -> None:
    pool = ParsePool(1, PoolLimits(max_pages_per_child=1))
    try:
        await pool.warm_up()
        [first] = [child.pid for child in pool._children]
        await pool.parse(PAGE, "http://a.test/", OPTIONS, None)  # retires the first
        await pool.parse(PAGE, "http://a.test/", OPTIONS, None)  # on its successor
        # Reaped, not just told to stop: never two parsers' memory for one slot.
        with pytest.raises(ProcessLookupError):
            os.kill(first, 0)
        assert pool.replaced == 2
    finally:
        pool.close()


async def test_children_are_recycled_past_the_memory_limit() -> None:
    pool = ParsePool(1, PoolLimits(max_child_rss=1))  # every child is over 1 byte
    try:
        await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
        await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
        assert pool.replaced == 2
    finally:
        pool.close()


async def test_links_are_filtered_in_the_child() -> None:
    page = b"<a href='/keep/1'>a</a><a href='/drop/2'>b</a><a href='http://b.test/keep'>c</a>"
    rules = LinkFilter(
        hosts=frozenset({"a.test"}), patterns=UrlPatterns(include=("/keep/",), exclude=())
    )
    pool = ParsePool(1)
    try:
        out = await pool.parse(page, "http://a.test/", OPTIONS, None, rules)
        assert out.follow_links == ("http://a.test/keep/1",)
        assert len(out.links) == 3
    finally:
        pool.close()
