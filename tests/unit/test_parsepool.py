"""The parser pool survives a dead child: the page fails, the next one parses."""

from __future__ import annotations

import os
import signal

import pytest

from service.crawl.parsepool import ParsePool, ParserCrashed
from service.crawl.parser import ParseOptions

OPTIONS = ParseOptions(formats=frozenset({"metadata", "text", "links"}))
PAGE = b"<html><head><title>T</title></head><body><a href='/x'>x</a></body></html>"


async def test_a_killed_parser_process_is_replaced() -> None:
    pool = ParsePool(1)
    pool.start()
    try:
        await pool.warm_up()
        first = await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
        assert first.title == "T" and first.links == ("http://a.test/x",)
        executor = pool._pool
        assert executor is not None
        for pid in list(executor._processes):  # the children of this pool
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(ParserCrashed):
            await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
        again = await pool.parse(PAGE, "http://a.test/", OPTIONS, None)
        assert again.title == "T"
        assert '"title":"T"' in again.fields_json
    finally:
        pool.close()
