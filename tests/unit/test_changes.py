"""Change tracking's pure parts: hashes, classification, diffs, conditional requests, and
the recrawl's request merging; the fetcher sending validators only where they belong."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from service import changes, recrawl
from service.changes import Conditional, PageVersion, PreviousPage
from service.crawl.fetcher import Fetcher
from service.crawl.parser import ParseOptions, parse_page
from service.errors import ValidationFailed
from service.models import Change, Outcome
from service.runtime import fetch_options
from service.settings import Settings
from service.urls import url_key

LIMITS = {"max_pages_cap": 1000, "max_depth_cap": 10, "default_max_pages": 100}


def previous(
    *,
    status: int | None = 200,
    outcome: Outcome = Outcome.OK,
    content_hash: str | None = "h1",
    change: Change | None = None,
    etag: str | None = '"v1"',
    modified: str | None = None,
    **document: Any,
) -> PreviousPage:
    doc = {"url": "http://a.test/", "final_url": "http://a.test/", "status_code": status}
    doc.update(fetched_at="2026-12-01T00:00:00.000Z", error=None, **document)
    return PreviousPage.from_row(
        "http://a.test/",
        outcome.value,
        json.dumps(doc),
        change.value if change else None,
        etag,
        modified,
        content_hash,
        None,
    )


def test_digest_ignores_whitespace_only() -> None:
    assert changes.digest("a  b\n\nc ") == changes.digest(" a b c")
    assert changes.digest("a b c") != changes.digest("a b d")


@pytest.mark.parametrize(
    ("prev", "version", "expected"),
    [
        (None, PageVersion(content_hash="h1"), Change.NEW),
        (None, PageVersion(gone=True), Change.NEW),  # a new broken link is new
        ("ok", PageVersion(content_hash="h1"), Change.UNCHANGED),
        ("ok", PageVersion(content_hash="h2"), Change.CHANGED),
        ("ok", PageVersion(content_hash="h9", gone=True), Change.REMOVED),
        ("gone", PageVersion(content_hash="h9", gone=True), Change.UNCHANGED),
        ("gone", PageVersion(content_hash="h1"), Change.NEW),  # back again
        ("removed", PageVersion(content_hash="h1"), Change.NEW),
    ],
)
def test_classify(prev: str | None, version: PageVersion, expected: Change) -> None:
    before = {
        None: None,
        "ok": previous(),
        "gone": previous(status=404, outcome=Outcome.FAILED, content_hash="h404"),
        "removed": previous(status=None, outcome=Outcome.SKIPPED, change=Change.REMOVED),
    }[prev]
    assert changes.classify(before, version) is expected


def test_classify_without_a_previous_hash_compares_the_stored_fields() -> None:
    untracked = previous(content_hash=None, text="Hello", title="T")
    same = {"status_code": 200, "error": None, "text": "Hello", "title": "T", "markdown": "x"}
    assert changes.same_fields(untracked.document, same)  # markdown: only one has it
    assert not changes.same_fields(untracked.document, dict(same, text="Bye"))
    assert not changes.same_fields(untracked.document, dict(same, status_code=500))
    failed = {"status_code": None, "error": {"code": "timeout"}}
    assert not changes.same_fields(untracked.document, failed)
    version = PageVersion(content_hash="main")
    assert changes.classify(untracked, version, lambda: True) is Change.UNCHANGED
    assert changes.classify(untracked, version, lambda: False) is Change.CHANGED


def test_unified_diff_is_bounded() -> None:
    diff = changes.unified_diff("a\nb\nc", "a\nB\nc", from_label="old", to_label="new")
    assert diff.splitlines() == ["--- old", "+++ new", "@@ -1,3 +1,3 @@", " a", "-b", "+B", " c"]
    before = "\n".join(f"line {i}" for i in range(20_000))
    after = "\n".join(f"LINE {i} " + "x" * 50 for i in range(20_000))
    big = changes.unified_diff(before, after, from_label="old", to_label="new")
    assert len(big) <= changes.MAX_DIFF_CHARS + 100
    assert big.endswith("... (diff truncated)")


def test_conditional_only_for_pages_with_validators() -> None:
    assert changes.conditional(previous()) == Conditional(url="http://a.test/", etag='"v1"')
    assert changes.conditional(previous(etag=None)) is None
    assert changes.conditional(previous(status=404, outcome=Outcome.FAILED)) is None
    assert changes.conditional(None) is None
    both = Conditional(url="u", etag='"e"', last_modified="Tue, 14 Nov 2023 22:13:20 GMT")
    assert both.headers() == [
        ("If-None-Match", '"e"'),
        ("If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT"),
    ]


def test_compressed_main_text_round_trips_and_is_capped() -> None:
    version = PageVersion(content=changes.compress("é" * 10, 7))
    assert version.text() == "é" * 3  # 7 bytes: cut at a character boundary


def test_link_keys_are_the_url_keys_without_the_page_itself() -> None:
    keys = changes.link_keys(
        ["http://a.test/x", "http://a.test/", "http://a.test/x", "http://a.test/y"],
        ("http://a.test/",),
    )
    assert keys == (url_key("http://a.test/x").hex(), url_key("http://a.test/y").hex())
    assert changes.link_keys_json(keys) == json.dumps(list(keys), separators=(",", ":"))
    assert changes.link_keys_json(()) == "[]"
    # Too many to keep: not known (stored NULL), which turns the unlinked rule off.
    many = [f"http://a.test/{n}" for n in range(changes.MAX_LINK_KEYS + 1)]
    assert changes.link_keys(many) is None and changes.link_keys_json(None) is None
    # A result stored before link keys were (NULL) has unknown links; an empty list none.
    assert previous().link_keys is None
    row = ("http://a.test/", "ok", json.dumps({"status_code": 200}), None, None, None, None)
    assert PreviousPage.from_row(*row, None, "[]").link_keys == ()


def test_unlinked_document_keeps_the_page() -> None:
    page = json.dumps({"url": "http://a.test/x", "text": "Still here", "change": "unchanged"})
    assert json.loads(changes.unlinked_document(page)) == {
        "url": "http://a.test/x",
        "text": "Still here",
        "change": "removed",
        "removed_reason": "unlinked",
    }


def test_parser_keeps_the_main_content_only_when_asked() -> None:
    body = (
        b"<html><body><nav><a href='/x'>Menu</a></nav><main><h1>Title</h1>"
        b"<p>The content.</p></main><footer>Footer</footer></body></html>"
    )
    options = ParseOptions(formats=frozenset({"text"}))
    assert parse_page(body, "http://a.test/", options).main_text is None
    tracked = parse_page(body, "http://a.test/", ParseOptions(formats=options.formats, digest=True))
    assert tracked.main_text == "Title\n\nThe content."
    assert tracked.text is not None and "Footer" in tracked.text  # text is still the whole page


def test_merged_request_applies_overrides_and_names_bad_fields() -> None:
    stored = {"urls": ["http://a.test/"], "max_depth": 1, "formats": ["text"]}
    merged = recrawl.merged_request(stored, {"max_depth": 2}, LIMITS)
    assert merged.max_depth == 2 and merged.urls == ["http://a.test/"]
    assert recrawl.merged_request(stored, {"url": "http://b.test/"}, LIMITS).urls == [
        "http://b.test/"
    ]
    with pytest.raises(ValidationFailed) as caught:
        recrawl.merged_request(stored, {"max_depth": -1}, LIMITS)
    assert [e["field"] for e in caught.value.errors or []] == ["max_depth"]
    with pytest.raises(ValidationFailed):
        recrawl.merged_request(stored, ["max_depth"], LIMITS)


def test_revalidation_needs_results_that_can_stand_in() -> None:
    stored = {"max_depth": 1, "formats": ["metadata", "text", "changes"], "scope": "same-host"}
    assert recrawl.may_revalidate(stored, dict(stored))
    assert recrawl.may_revalidate(stored, dict(stored, formats=["text"], max_depth=0))
    assert not recrawl.may_revalidate(stored, dict(stored, formats=["markdown"]))
    assert not recrawl.may_revalidate(stored, dict(stored, max_depth=2))
    assert not recrawl.may_revalidate(stored, dict(stored, scope="any"))
    assert not recrawl.may_revalidate(stored, dict(stored, cookies={"session": "x"}))


async def test_fetcher_sends_validators_only_to_the_url_they_came_from() -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(
            (
                str(request.url),
                request.headers.get("if-none-match"),
                request.headers.get("if-modified-since"),
            )
        )
        if request.url.path == "/old":
            return httpx.Response(301, headers={"location": "/new"}, stream=httpx.ByteStream(b""))
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304, headers={"etag": '"v1"'}, stream=httpx.ByteStream(b""))
        body = httpx.ByteStream(b"<p>x</p>")
        return httpx.Response(200, headers={"content-type": "text/html"}, stream=body)

    stamp = "Tue, 14 Nov 2023 22:13:20 GMT"
    async with Fetcher(
        fetch_options(Settings(allow_private_networks=True)),
        transport=httpx.MockTransport(handler),
    ) as fetcher:
        validators = Conditional(url="http://a.test/new", etag='"v1"', last_modified=stamp)
        result = await fetcher.fetch("http://a.test/old", conditional=validators)
        assert result.status_code == 304 and result.body == b"" and result.error is None
        assert seen == [("http://a.test/old", None, None), ("http://a.test/new", '"v1"', stamp)]
        plain = await fetcher.fetch("http://a.test/new")
        assert plain.status_code == 200 and seen[-1] == ("http://a.test/new", None, None)
