"""service.crawl.parser: exact outputs on fixed pages, encodings, links and hostile input."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import re
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import bs4
import pytest

from service.crawl import parser, textwalk
from service.crawl.parser import (
    FORMATS,
    ParsedPage,
    ParseError,
    ParseOptions,
    SelectorSpec,
    parse_page,
    validate_selector,
)
from service.urls import canonicalize_url, try_canonicalize

FIXTURES = Path(__file__).parent / "fixtures" / "parser"
ARTICLE = (FIXTURES / "article.html").read_bytes()
# Not under /blog/: relative links resolve against <base href>, which is.
ARTICLE_URL = "https://example.org/archive/2024/field-notes"
ALL = frozenset(FORMATS)


def opts(*formats: str, **kwargs: Any) -> ParseOptions:
    return ParseOptions(formats=frozenset(formats), **kwargs)


def parse(
    body: bytes | str, *formats: str, url: str = "https://example.org/", **kw: Any
) -> ParsedPage:
    http_charset = kw.pop("http_charset", None)
    if isinstance(body, str):
        body = body.encode()
    return parse_page(body, url, opts(*formats, **kw), http_charset=http_charset)


@pytest.fixture(autouse=True)
def _cold_link_cache() -> Iterator[None]:
    parser._canonical_link.cache_clear()
    yield


# --- the fixed article page ---------------------------------------------------------------

ARTICLE_TEXT = """\
Home
About Blog

Field Notes

By Ada

Nets are old and useful. See the weave and knots.

Kinds

Seine
Trawl (pdf)

def cast(net):
    return net

Use haul() daily.
Twice on Sundays.

Net\tMesh
Seine\t10 mm
Trawl\t40 mm

js mail tel data top ftp Sponsor the weave again

Related: more

© 2024 Example

Privacy"""

# The byline goes with only_main_content (the author is in the metadata).
ARTICLE_MAIN_TEXT = ARTICLE_TEXT[
    ARTICLE_TEXT.index("Field Notes") : ARTICLE_TEXT.index("\n\nRelated")
].replace("\n\nBy Ada", "")

ARTICLE_MAIN_MARKDOWN = """\
# Field Notes

Nets are *old* and **useful**. See [the weave](https://example.org/blog/nets.html#weave) \
and [knots](https://Example.org:443/blog/./knots?z=1&y=2).

## Kinds

- Seine
- Trawl [(pdf)](https://example.org/blog/trawl.pdf)

```python
def cast(net):
    return net
```

Use `haul()` daily.\\
Twice on Sundays.

| Net | Mesh |
| --- | --- |
| Seine | 10 mm |
| Trawl | 40 mm |

![A net](https://example.org/blog/img/net.png)

js [mail](mailto:a@example.org) [tel](tel:+100) data [top](https://example.org/blog/#top) \
[ftp](ftp://example.org/file) [Sponsor](https://example.org/blog/sponsor) \
[the weave again](https://example.org/blog/nets.html)"""

ARTICLE_LINKS = (
    "https://example.org/",
    "https://example.org/about",
    "https://example.org/blog/",
    "https://example.org/blog/nets.html",
    "https://example.org/blog/knots?y=2&z=1",
    "https://example.org/blog/trawl.pdf",
    "https://example.org/blog/sponsor",
    "https://example.org/map-target",
    "https://example.org/related",
    "https://example.org/privacy",
)

ARTICLE_METADATA = {
    "description": "A page about nets.",
    "keywords": "nets, fish",
    "author": "Ada",
    "robots": "index, follow",
    "og:title": "OG Field Notes",
    "og:image": "https://cdn.example.org/a.png",
    "twitter:card": "summary",
    "canonical": "https://example.org/blog/field-notes?a=1&b=2",
    "lang": "en-GB",
}

ARTICLE_SELECTORS = (
    ("authors", SelectorSpec(css=".author")),
    ("refs", SelectorSpec(css="a.ref", attr="href")),
    ("first_item", SelectorSpec(css="article li", all=False)),
    ("items", SelectorSpec(css="article li")),
    ("headline", SelectorSpec(css="h1")),
    ("missing", SelectorSpec(css=".nope")),
    ("missing_attr", SelectorSpec(css="li", attr="data-x")),
    ("classes", SelectorSpec(css="a.ref", attr="class")),
)


def test_article_page_all_fields() -> None:
    page = parse_page(ARTICLE, ARTICLE_URL, opts(*ALL, selectors=ARTICLE_SELECTORS))

    assert page.title == "Field Notes: Trawling"
    assert page.text == ARTICLE_TEXT
    assert page.links == ARTICLE_LINKS
    assert page.follow_links == tuple(u for u in ARTICLE_LINKS if not u.endswith(".pdf"))
    assert page.metadata == ARTICLE_METADATA
    assert page.data == {
        "authors": ["Ada"],
        "refs": ["nets.html#weave"],
        "first_item": ["Seine"],
        "items": ["Seine", "Trawl (pdf)"],
        "headline": ["Field Notes"],
        "missing": [],
        "missing_attr": [],
        "classes": ["ref"],
    }
    assert page.html == ARTICLE.decode("utf-8")
    assert page.encoding == "utf-8"
    assert page.markdown is not None
    # Without only_main_content the page chrome is in the markdown too, around the article.
    assert page.markdown.startswith("[Home](https://example.org/)\n")
    assert (
        ARTICLE_MAIN_MARKDOWN.replace("# Field Notes\n", "# Field Notes\n\nBy Ada\n")
        in page.markdown
    )
    assert page.markdown.endswith("[Privacy](https://example.org/privacy)")


def test_article_main_content_text_and_markdown() -> None:
    page = parse_page(ARTICLE, ARTICLE_URL, opts(*ALL, only_main_content=True))

    assert page.text == ARTICLE_MAIN_TEXT
    assert page.markdown == ARTICLE_MAIN_MARKDOWN
    # Links, metadata and html still describe the whole page.
    assert page.links == ARTICLE_LINKS
    assert page.metadata == ARTICLE_METADATA
    assert page.html == ARTICLE.decode("utf-8")


def test_formats_not_asked_for_are_not_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("markdown computed without being asked for")

    monkeypatch.setattr(parser, "to_markdown", boom)
    page = parse_page(ARTICLE, ARTICLE_URL, opts("links", extract_links=False))

    assert page.text is None
    assert page.markdown is None
    assert page.html is None
    assert page.metadata == {}
    assert page.data == {}
    assert page.title == "Field Notes: Trawling"
    assert page.links == ARTICLE_LINKS


def test_no_links_when_neither_asked_nor_needed() -> None:
    page = parse_page(ARTICLE, ARTICLE_URL, opts("text", extract_links=False))
    assert page.links == ()
    assert page.follow_links == ()


def test_crawler_gets_links_without_links_format() -> None:
    page = parse_page(ARTICLE, ARTICLE_URL, opts("text"))
    assert page.links == ARTICLE_LINKS


def test_one_beautifulsoup_parse_per_page(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = bs4.BeautifulSoup

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1:])
        return real(*args, **kwargs)

    monkeypatch.setattr(parser, "BeautifulSoup", counting)
    parse_page(
        ARTICLE, ARTICLE_URL, opts(*ALL, only_main_content=True, selectors=ARTICLE_SELECTORS)
    )

    assert calls == [("lxml",)]


def test_result_pickles_as_plain_data() -> None:
    page = parse_page(ARTICLE, ARTICLE_URL, opts(*ALL, selectors=ARTICLE_SELECTORS))
    blob = pickle.dumps(page)

    assert b"bs4" not in blob
    assert pickle.loads(blob) == page
    strings = [page.title, page.text, page.markdown, page.html, *page.links]
    strings += [*page.metadata.values(), *(v for values in page.data.values() for v in values)]
    assert {type(s) for s in strings} == {str}


def test_garbage_collector_state_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    # The collector is paused while a page parses and the dead tree is collected after.
    assert gc.isenabled()
    parse_page(ARTICLE, ARTICLE_URL, opts(*ALL))
    assert gc.isenabled()
    gc.disable()
    try:
        parse_page(ARTICLE, ARTICLE_URL, opts(*ALL))
        assert not gc.isenabled()
    finally:
        gc.enable()

    def deep(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError

    monkeypatch.setattr(parser, "_metadata", deep)
    with pytest.raises(ParseError):
        parse_page(ARTICLE, ARTICLE_URL, opts("text"))
    assert gc.isenabled()


@pytest.mark.slow
def test_runs_in_a_process_pool() -> None:
    options = opts(*ALL, selectors=ARTICLE_SELECTORS)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        page = pool.submit(parse_page, ARTICLE, ARTICLE_URL, options).result(timeout=60)
    assert page == parse_page(ARTICLE, ARTICLE_URL, options)


# --- title and text -------------------------------------------------------------------------


def test_title_falls_back_to_first_h1_and_ignores_svg_titles() -> None:
    html = """<body><svg><title>icon</title></svg><h1> Main
      heading </h1><h1>Second</h1></body>"""
    assert parse(html).title == "Main heading"
    assert parse("<title>  </title><h1>Fallback</h1>").title == "Fallback"
    assert parse("<p>no title</p>").title is None


def test_text_skips_invisible_elements_and_collapses_whitespace() -> None:
    html = """<html><head><title>T</title><style>p{}</style></head><body>
      <script>var s = "script";</script><noscript>noscript</noscript>
      <template>template</template><svg><text>svg</text></svg><!-- comment -->
      <div>  one
         two  <span>three</span></div>


      <div><div><p>four</p></div></div><br><br><br>
      <p>five&nbsp;&nbsp;six</p><ul><li>a</li><li>b</li></ul>
    </body></html>"""
    assert parse(html, "text").text == "one two three\n\nfour\n\nfive six\n\na\nb"


@pytest.mark.parametrize(
    "string",
    [
        "",
        " ",
        "plain words, one space apart",
        " leading",
        "trailing ",
        "two  spaces",
        "tab\there",
        "line\nbreak",
        "no\u00a0break",
        "ideographic\u3000space",
        "separators\u2028\u2029\x1c\x85end",
        "cell\x00marker",
        "zero\u200bwidth is not whitespace",
        "caf\u00e9 na\u00efve \U0001f600",
    ],
)
def test_whitespace_collapse_matches_the_regex(string: str) -> None:
    expected = re.sub(r"\s+", " ", string).strip()
    assert textwalk.collapse(string) == expected
    if "\x00" not in string:  # NUL would make the page look binary
        page = parse(f"<p>{string}</p><p>{string}</p>", "text")
        assert page.text == "\n\n".join([expected] * 2 if expected else [])


def test_text_keeps_pre_formatting() -> None:
    html = "<p>before</p><pre>\n  indented   line\n\n\n  next\t\ttab   \n</pre><p>after</p>"
    assert parse(html, "text").text == "before\n\n  indented   line\n\n\n  next\t\ttab\n\nafter"


def test_text_is_capped() -> None:
    html = "".join(f"<p>paragraph {i}</p>" for i in range(1000))
    text = parse(html, "text", max_text_chars=55).text
    assert text == "paragraph 0\n\nparagraph 1\n\nparagraph 2\n\nparagraph 3\n\npar"
    assert parse(html, "text", max_text_chars=0).text == ""


def test_only_main_content_without_main_uses_outermost_articles() -> None:
    html = """<body><nav>menu</nav><div role="navigation">crumbs</div>
      <article><header><h2>First</h2></header><p>one</p>
        <article><p>nested</p></article><aside>aside</aside><footer>by A</footer></article>
      <div role="complementary">ads</div>
      <article><p>two</p></article><footer>site footer</footer></body>"""
    page = parse(html, "text", "markdown", only_main_content=True)
    # An article's own <footer> (its byline here) goes too.
    assert page.text == "First\n\none\n\nnested\n\ntwo"
    assert page.markdown == "## First\n\none\n\nnested\n\ntwo"


def test_only_main_content_prefers_main_over_articles() -> None:
    html = """<body><article>teaser</article>
      <main><p>main body</p><article>in main</article></main></body>"""
    assert parse(html, "text", only_main_content=True).text == "main body\n\nin main"


def test_only_main_content_without_landmarks_drops_page_chrome() -> None:
    html = """<body><header>Site</header><div role="banner">Banner</div>
      <section><header>Section head</header><p>Body</p></section>
      <div role="contentinfo">Info</div><footer>Foot</footer></body>"""
    page = parse(html, "text", "markdown", only_main_content=True)
    assert page.text == "Section head\n\nBody"
    assert page.markdown == "Section head\n\nBody"
    assert parse(html, "text").text == "Site\nBanner\nSection head\n\nBody\n\nInfo\nFoot"


# --- markdown -------------------------------------------------------------------------------


def test_markdown_tables_without_header_row_get_one() -> None:
    html = "<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>"
    assert parse(html, "markdown").markdown == "| a | b |\n| --- | --- |\n| 1 | 2 |"


def test_markdown_resolves_relative_urls_against_the_page() -> None:
    html = """<h3>Links</h3><p><a href="../up?q=1#f" title="T">up</a>
      <a href="//cdn.example.org/x">cdn</a> <a href="javascript:alert(1)">js</a>
      <img src="/i.png" alt="pic"> <a>no href</a></p>
      <ol><li>one</li><li>two</li></ol><blockquote>quoted</blockquote>"""
    markdown = parse(html, "markdown", url="https://example.org/a/b/page").markdown
    assert markdown == (
        "### Links\n\n"
        '[up](https://example.org/a/up?q=1#f "T") '
        "[cdn](https://cdn.example.org/x) js "
        "![pic](https://example.org/i.png) no href\n\n"
        "1. one\n2. two\n\n"
        "> quoted"
    )


# --- links ----------------------------------------------------------------------------------


def test_links_resolve_against_page_url_without_base() -> None:
    html = """<a href="#top">top</a><a href="b">b</a><a href="../c#x">c</a>
      <a href=" /d?b=2&a=1 ">d</a>
      <a href="HTTPS://Other.Example:443/e">e</a><a href="b#again">b again</a>
      <a href="//cdn.example.org/f">f</a><a href="http://[::1">bad</a><a href="">empty</a>
      <link rel="stylesheet" href="/style.css"><img src="/img.png"><script src="/s.js"></script>"""
    page = parse(html, url="https://example.org/dir/page.html")
    assert page.links == (
        "https://example.org/dir/b",
        "https://example.org/c",
        "https://example.org/d?a=1&b=2",
        "https://other.example/e",
        "https://cdn.example.org/f",
    )
    assert page.follow_links == page.links


def test_bad_base_href_falls_back_to_page_url() -> None:
    html = '<base href="javascript:void(0)"><a href="x">x</a>'
    assert parse(html, url="https://example.org/p/").links == ("https://example.org/p/x",)


def test_non_html_links_are_kept_but_not_followed() -> None:
    html = '<a href="/report.pdf">pdf</a><a href="/photo.JPG">jpg</a><a href="/page">page</a>'
    page = parse(html)
    assert page.links == (
        "https://example.org/report.pdf",
        "https://example.org/photo.JPG",
        "https://example.org/page",
    )
    assert page.follow_links == ("https://example.org/page",)


def test_rel_nofollow_only_matters_when_respected() -> None:
    html = """<a href="/a" rel="nofollow">a</a><a href="/b" rel="noopener NoFollow">b</a>
      <a href="/c">c</a><a href="/b">b again, followable</a>"""
    assert parse(html).follow_links == (
        "https://example.org/a",
        "https://example.org/b",
        "https://example.org/c",
    )
    page = parse(html, respect_nofollow=True)
    assert page.links == ("https://example.org/a", "https://example.org/b", "https://example.org/c")
    assert page.follow_links == ("https://example.org/b", "https://example.org/c")


@pytest.mark.parametrize("content", ["noindex, nofollow", "NONE", "nofollow"])
def test_meta_robots_nofollow(content: str) -> None:
    html = f'<meta name="robots" content="{content}"><a href="/a">a</a>'
    assert parse(html, respect_nofollow=True).follow_links == ()
    assert parse(html, respect_nofollow=True).links == ("https://example.org/a",)
    assert parse(html).follow_links == ("https://example.org/a",)


def test_a_page_with_100000_links_is_capped_and_cheap() -> None:
    anchors = "".join(f'<a href="/p/{i}">{i}</a>' for i in range(100_000))
    body = f"<html><body>{anchors}</body></html>".encode()
    started = time.perf_counter()
    page = parse_page(body, "https://example.org/", opts("links"))
    elapsed = time.perf_counter() - started

    assert len(page.links) == 5000
    assert page.links[0] == "https://example.org/p/0"
    assert page.links[-1] == "https://example.org/p/4999"
    assert page.follow_links == page.links
    assert elapsed < 30  # ~4 s here, nearly all of it bs4 building the tree


def test_max_links_counts_unique_links() -> None:
    anchors = "".join(f'<a href="/p/{i % 20}">{i}</a>' for i in range(100))
    page = parse(anchors, max_links=10)
    assert page.links == tuple(f"https://example.org/p/{i}" for i in range(10))
    assert parse(anchors, max_links=0).links == ()


LINK_BASES = [
    "https://example.org/dir/page.html",
    "https://example.org",
    "http://Example.ORG:80/a/b/?q=1#f",
    "http://127.0.0.1:18480/sec-01/page-1.html",
    "http://h/a;p/b;q?x#y",
    "http://h/a//b/",
    "http://u:p@h:8080/dir/",
    "http://[::1]:80/x/y",
    "http://h/a b/c d",
    "http://h/dir/;params",
    "ftp://h/x/",
    "http:///nohost/x",
]
LINK_HREFS = [
    "", "/", "//", "///x", "//cdn.example.org/f", "/\t/evil.example", "/a/../b/./c", "/d?b=2&a=1",
    "/e#frag", "?q", "?", "#top", ";p", "x", "x.html", "./y", "../z/", "../../../../w", "a//b",
    "a b", "a\tb", "sub/x.pdf", "x?b=1&a=2#f", "x:y", "HTTP://Other.Example:443/e",
    "http://example.org/clean/path", "https://example.org:8443/p", "http://example.org:080/p",
    "http://example.org:65536/p", "https://example.org/.well-known/x", "http://EXAMPLE.org/p",
    "http://example.org/%7Ex", "http://example.org/r\u00e9sum\u00e9", "http:x", "http:/x",
    "\x01x", "\x01?q", "javascript:void(0)", "mailto:a@b", "http://[::1", " /padded ",
]  # fmt: skip


def _urljoin_and_canonicalize(base: str, href: str) -> str | None:
    href = href.strip()
    skipped = ("javascript:", "mailto:", "tel:", "data:", "vbscript:")
    if not href or href.startswith("#") or href.lower().startswith(skipped):
        return None
    try:
        return try_canonicalize(urljoin(base, href))
    except ValueError:
        return None


@pytest.mark.parametrize("base", LINK_BASES)
def test_link_resolution_matches_urljoin_and_canonicalize(base: str) -> None:
    # The resolver skips urljoin for clean absolute hrefs, joins others against the page's
    # origin or directory through a cache, and skips canonicalisation for canonical URLs.
    for href in LINK_HREFS:
        expected = _urljoin_and_canonicalize(base, href)
        for _ in range(2):  # cold, then cached
            link = parser._Resolver(base).resolve(href)
            assert (link[0] if link else None) == expected, (base, href)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/",
        "https://a-b.example.org:8443/x/y.html",
        "http://127.0.0.1:18480/sec-01/",
        "http://example.org/a~b/_c-d/e.f",
        "http://example.org:65535/",
        "http://example.org:80/",
        "https://example.org:443/",
        "http://example.org:0080/",
        "http://Example.org/",
        "http://example.org/a/./b",
        "http://example.org/a/../b",
        "http://example.org/%41",
        "http://example.org/a;b",
        "http://example.org/?",
        "http://example.org/#f",
        "http://example.org",
        "http://u@example.org/",
        "http://xn--bcher-kva.example/",
        "http://" + "a" * 64 + ".example/",
    ],
)
def test_canonical_fast_path_agrees_with_canonicalize(url: str) -> None:
    if parser._is_canonical(url):
        assert canonicalize_url(url) == url
    link = parser._canonical_link.__wrapped__(url)
    assert link is not None
    assert link[0] == canonicalize_url(url)


# --- metadata -------------------------------------------------------------------------------


def test_metadata_has_only_keys_that_are_present() -> None:
    html = (
        '<html><head><meta name="description" content="d"><link rel="canonical" href="mailto:x@y">'
    )
    assert parse(html, "metadata").metadata == {"description": "d"}
    assert parse("<p>plain</p>", "metadata").metadata == {}


# --- selectors ------------------------------------------------------------------------------


def test_validate_selector() -> None:
    validate_selector("div.a > p:nth-of-type(2), a[href^='http']")
    for bad in ("div[", "", "  ", "p:unknown-pseudo", ">>"):
        with pytest.raises(ValueError, match="CSS selector"):
            validate_selector(bad)


def test_options_reject_bad_selectors_and_formats() -> None:
    with pytest.raises(ValueError, match="invalid CSS selector 'a\\['"):
        opts("text", selectors=(("x", SelectorSpec(css="a[")),))
    with pytest.raises(ValueError, match="unknown formats: pdf"):
        opts("text", "pdf")


def test_selector_attribute_values() -> None:
    html = """<meta charset="utf-8"><p class=" a  b " data-x="" hidden>x</p>
      <input disabled value=1><a href="/x" rel="nofollow  noopener">y</a>"""
    selectors = (
        ("class", SelectorSpec(css="p.b", attr="class")),
        ("hidden", SelectorSpec(css="p[hidden]", attr="hidden")),
        ("disabled", SelectorSpec(css="input", attr="disabled")),
        ("rel", SelectorSpec(css="a", attr="rel")),
        ("charset", SelectorSpec(css="meta", attr="charset")),
        ("empty", SelectorSpec(css='[data-x=""]')),
    )
    assert parse(html, "text", selectors=selectors).data == {
        "class": ["a b"],
        "hidden": [""],
        "disabled": [""],
        "rel": ["nofollow noopener"],
        "charset": ["utf-8"],
        "empty": ["x"],
    }


# --- encodings ------------------------------------------------------------------------------


def test_encoding_from_http_header() -> None:
    html = "<title>Café</title><p>Crème brûlée \u2013 “quoted” ©</p>"
    page = parse(html.encode("cp1252"), "text", http_charset="ISO-8859-1")
    # Browsers read ISO-8859-1 as windows-1252, which has the curly quotes and the dash.
    assert (page.title, page.text, page.encoding) == (
        "Café",
        "Crème brûlée \u2013 “quoted” ©",
        "cp1252",
    )


@pytest.mark.parametrize(
    "declaration",
    [
        '<meta charset="windows-1251">',
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">',
    ],
)
def test_encoding_from_meta(declaration: str) -> None:
    html = f"<head>{declaration}<title>Привет</title></head><p>Съешь же ещё этих булок.</p>"
    page = parse(html.encode("cp1251"), "text", "html")
    assert (page.title, page.text, page.encoding) == (
        "Привет",
        "Съешь же ещё этих булок.",
        "cp1251",
    )
    assert page.html == html


def test_header_charset_beats_meta_and_wrong_header_falls_through() -> None:
    html = '<meta charset="windows-1251"><p>é</p>'
    assert parse(html.encode("cp1252"), "text", http_charset="cp1252").text == "é"
    # A header that cannot decode the body yields to the page's own declaration.
    body = '<meta charset="windows-1251"><p>Привет</p>'.encode("cp1251")
    assert parse(body, "text", http_charset="utf-8").text == "Привет"


def test_undeclared_utf8() -> None:
    html = "<title>日本語のページ</title><p>こんにちは世界 — naïve café</p>"
    page = parse(html.encode("utf-8"), "text")
    assert (page.title, page.text, page.encoding) == (
        "日本語のページ",
        "こんにちは世界 — naïve café",
        "utf-8",
    )


def test_undeclared_legacy_encoding_is_detected() -> None:
    sentence = (
        "Широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства."
    )
    html = f"<title>Новости</title>{f'<p>{sentence}</p>' * 3}"
    page = parse(html.encode("cp1251"), "text")
    assert page.encoding == "cp1251"
    assert page.title == "Новости"


def test_byte_order_mark_beats_header() -> None:
    page = parse("\ufeff<p>naïve</p>".encode(), "text", "html", http_charset="iso-8859-1")
    assert (page.text, page.encoding, page.html) == ("naïve", "utf-8", "<p>naïve</p>")
    assert parse("<p>naïve</p>".encode("utf-16"), "text").text == "naïve"


def test_declared_charset_that_cannot_decode_uses_replacement() -> None:
    page = parse(b"<p>bad \xff byte</p>", "text", http_charset="utf-8")
    assert (page.text, page.encoding) == ("bad \ufffd byte", "utf-8")
    for junk_label in ("zlib", "no-such-charset"):
        assert parse(b"<p>ok</p>", "text", http_charset=junk_label).encoding == "utf-8"


# --- hostile and degenerate input -----------------------------------------------------------


def test_empty_body_is_an_empty_page() -> None:
    options = opts(*ALL, selectors=(("x", SelectorSpec(css="p")),))
    assert parse_page(b"", "https://example.org/", options) == ParsedPage(
        title=None,
        text="",
        markdown="",
        html="",
        links=(),
        follow_links=(),
        metadata={},
        data={"x": []},
        encoding=None,
    )
    assert parse_page(b"", "https://example.org/", opts()).text is None


@pytest.mark.parametrize(
    "body",
    [
        os.urandom(4096),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8,
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)) * 4,
        b"\x00" * 10,
    ],
    ids=["random", "png", "gzip", "nul"],
)
def test_binary_junk_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError, match="binary"):
        parse_page(body, "https://example.org/", opts("text"))


def test_deeply_nested_document_does_not_recurse() -> None:
    depth = 100_000
    body = (
        "<html><head><title>Deep</title></head><body>"
        + "<div>" * depth
        + "<p>deep <a href='/x'>text</a></p>"
        + "</div>" * depth
        + "</body></html>"
    ).encode()
    options = opts(*ALL, selectors=(("p", SelectorSpec(css="div > p")),))
    started = time.perf_counter()
    page = parse_page(body, "https://example.org/", options)
    elapsed = time.perf_counter() - started

    assert page.title == "Deep"
    assert page.text == "deep text"
    assert page.markdown == "deep text"  # markdownify recursed too deep: plain text instead
    assert page.links == ("https://example.org/x",)
    assert page.data == {"p": ["deep text"]}
    assert elapsed < 60  # ~4 s here


def test_other_recursion_errors_become_parse_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def too_deep(*args: object) -> None:
        raise RecursionError

    monkeypatch.setattr(parser, "_metadata", too_deep)
    with pytest.raises(ParseError, match="nests too deeply"):
        parse_page(ARTICLE, ARTICLE_URL, opts("metadata"))


@pytest.mark.parametrize(
    "body",
    [b"<?xml version='1.0'?><html><body><p>x</p></body></html>", b"index.html", b"https://x.org/"],
    ids=["xhtml", "file-name", "url"],
)
def test_markup_bs4_would_warn_about_parses_quietly(body: bytes) -> None:
    assert parse(body, "text").text in ("x", body.decode())


_WALK_ONLY_CASES = [
    b"<p>x",
    b"<!--c--><html><body>a<!--x-->b<rt>r</rt><h1>t<rp>(</rp></h1></body></html>",
    b"<a href='#top' title='Permalink to this'>x</a><a href='/y' rel='NoFollow  x'>y</a>"
    b"<meta name=robots content=nofollow><a href='#s'>\xc2\xb6</a>",
    b"<pre>  a\n  b <b>c</b></pre> d<br>e<table><tr><td>1<td>2</table>"
    b"<svg><title>s</title></svg><title> T  x</title>",
    b"\xef\xbb\xbf<html lang=' en '><head><base href='/sub/'><link rel='Canonical'"
    b" href='c.html'><meta property='og:title' content=' O '></head><template><h1>no</h1>"
    b"</template><h1> H <script>x</script>1</h1><area href='m.html'><a href='f.pdf'>f</a>",
    b"<body><p>a<input> <b>b</b></p><!-- c --> tail <?pi x?> more<ruby>k<rt>r</rt></ruby>",
]


@pytest.mark.parametrize("body", _WALK_ONLY_CASES)
@pytest.mark.parametrize(
    "options",
    [
        ParseOptions(formats=frozenset({"metadata", "text", "links"})),
        ParseOptions(formats=frozenset({"links", "html"}), respect_nofollow=True),
        ParseOptions(formats=frozenset({"text"}), max_text_chars=7, max_links=1),
    ],
)
def test_walk_only_jobs_parse_lxml_tree_as_bs4_would(
    body: bytes, options: ParseOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parser._walk_is_enough(options)
    fast = parse_page(body, "http://h.test/a/b", options)
    built: list[object] = []
    real = parser.BeautifulSoup

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(parser, "BeautifulSoup", counting)
    assert parse_page(body, "http://h.test/a/b", options) == fast
    assert not built  # the lxml walk, not bs4
    monkeypatch.setattr(parser, "_walk_is_enough", lambda _: False)
    assert parse_page(body, "http://h.test/a/b", options) == fast
    assert built
