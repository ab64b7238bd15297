"""Charset labels: only WHATWG's, from a fixed table; a page cannot pick a Python codec
or grow the codec registry's cache."""

from __future__ import annotations

import codecs
import encodings
import time

import pytest

from service.crawl.encodings import MAX_LABEL_LENGTH, WHATWG_CODECS, codec_for_label
from service.crawl.htmlencoding import codec_for, decode_html
from service.crawl.parser import ParseOptions, parse_page


def test_every_whatwg_label_names_a_working_codec() -> None:
    assert len(WHATWG_CODECS) > 200
    for label, codec in WHATWG_CODECS.items():
        assert codecs.lookup(codec).name == codec, label
        b"abc".decode(codec) if not codec.startswith("utf-16") else b"a\x00".decode(codec)


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("UTF-8", "utf-8"),
        (" latin1 ", "cp1252"),
        ("ISO-8859-1", "cp1252"),
        ("us-ascii", "cp1252"),
        ('"windows-1251"', "cp1251"),
        ("gb2312", "gb18030"),
        ("shift_jis", "cp932"),
        ("euc-kr", "cp949"),
        ("big5", "big5hkscs"),
        ("koi8-u", "koi8-u"),
    ],
)
def test_labels_map_the_way_browsers_map_them(label: str, codec: str) -> None:
    assert codec_for_label(label) == codec


@pytest.mark.parametrize(
    "label", ["punycode", "rot13", "zlib", "base64", "idna", "utf-7", "cp037", "hex", "uu"]
)
def test_python_only_codecs_are_not_labels(label: str) -> None:
    assert codec_for(label) is None
    assert codec_for(label, from_meta=True) is None


def test_punycode_costs_nothing() -> None:
    body = b"<html><body>" + b"abcdefghij" * 100_000 + b"</body></html>"  # 1 MB
    started = time.perf_counter()
    text, codec = decode_html(body, "punycode")
    assert time.perf_counter() - started < 1.0  # punycode itself: ~27 s
    assert codec == "utf-8" and text.startswith("<html>")


def test_unique_long_labels_never_reach_the_codec_cache() -> None:
    cache: dict[str, object] = encodings._cache  # type: ignore[attr-defined]
    before = len(cache)
    options = ParseOptions(formats=frozenset({"text"}))
    for i in range(50):
        label = f"x{i}" + "y" * 90_000
        page = f'<html><head><meta charset="{label}"></head><body>hi</body></html>'.encode()
        parsed = parse_page(page, "http://a.test/", options, http_charset=label)
        assert parsed.text and "hi" in parsed.text
    assert len(cache) - before < 5  # unknown labels used to be cached forever, 90 KB each
    assert codec_for_label("u" * (MAX_LABEL_LENGTH + 1)) is None


def test_bom_still_wins_including_utf32() -> None:
    assert decode_html(codecs.BOM_UTF16_LE + "hé".encode("utf-16-le"), "cp1251")[0] == "hé"
    body = codecs.BOM_UTF32_BE + "hé".encode("utf-32-be")
    assert decode_html(body, None)[0] == "hé"
