"""HTML to ParsedPage: the pure, CPU-bound step of a crawl, run in a process pool.

Plain data in, plain data out: no I/O, results that pickle cheaply, and no state between
calls except a bounded cache of URL canonicalisation (a pure function, so it cannot change a
result). Each page is decoded once and parsed once (BeautifulSoup over lxml). One iterative
walk of the tree collects the title, metadata and links, and the text too unless
only_main_content is set. Markdown and selectors are computed only when they are asked for.

Choices worth knowing:

* Encoding: a byte-order mark, then the HTTP charset, then `<meta charset>` or http-equiv,
  each tried strictly in that order; if all of them fail, the first one is used with
  replacement characters. An undeclared page is tried as UTF-8, then charset-normalizer
  guesses from the first 64 KiB, and windows-1252 is the last resort. Following WHATWG,
  a BOM beats the header, ISO-8859-1 and ASCII labels decode as windows-1252, and a UTF-16
  label in a `<meta>` means UTF-8. `encoding` is the Python codec name (e.g. "cp1251").
* only_main_content affects text and markdown only. Links, metadata, selectors and html
  always see the whole document, because the crawler needs navigation links and html is
  the page as served. The content root is the first `<main>`, else every outermost
  `<article>`, else `<body>`. Inside it, nav, aside and elements with role navigation,
  banner, contentinfo or complementary are dropped. header and footer are dropped only
  at page level: an article's own header (its headline) stays, as in ARIA.
* Links: `<a href>` and `<area href>` are resolved against `<base href>` and
  canonicalised. Fragment-only hrefs ("#top") are skipped because they point back at this
  page. Once max_links unique links are kept, further anchors are not looked at.
* nofollow: with respect_nofollow, rel=nofollow links and every link on a page with
  `<meta name=robots content=nofollow|none>` are left out of follow_links. A URL is
  followable if any of its occurrences is.
* Depth: the walks are iterative, so deeply nested pages parse. markdownify recurses; if
  it hits the recursion limit, markdown falls back to the plain text. Any other
  RecursionError becomes a ParseError.
"""

from __future__ import annotations

import codecs
import functools
import gc
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag, XMLParsedAsHTMLWarning
from bs4.dammit import EncodingDetector
from bs4.element import NavigableString, PageElement, RubyParenthesisString, RubyTextString
from charset_normalizer import from_bytes
from markdownify import ATX, MarkdownConverter

from service.urls import looks_like_non_html, try_canonicalize

__all__ = [
    "FORMATS",
    "ParseError",
    "ParseOptions",
    "ParsedPage",
    "SelectorSpec",
    "parse_page",
    "validate_selector",
]

FORMATS = frozenset({"metadata", "text", "markdown", "links", "html"})


class ParseError(Exception):
    """The content cannot be parsed as HTML."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectorSpec:
    """A named CSS selector to extract: element text, or one attribute's value."""

    css: str
    attr: str | None = None
    all: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseOptions:
    """What to extract from a page."""

    formats: frozenset[str]
    selectors: tuple[tuple[str, SelectorSpec], ...] = ()
    extract_links: bool = True
    only_main_content: bool = False
    respect_nofollow: bool = False
    max_links: int = 5000
    max_text_chars: int = 2_000_000

    def __post_init__(self) -> None:
        unknown = self.formats - FORMATS
        if unknown:
            raise ValueError(f"unknown formats: {', '.join(sorted(unknown))}")
        if self.max_links < 0 or self.max_text_chars < 0:
            raise ValueError("max_links and max_text_chars must not be negative")
        for _, spec in self.selectors:
            validate_selector(spec.css)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedPage:
    """What one page yielded; fields for formats that were not asked for are None or empty."""

    title: str | None
    text: str | None
    markdown: str | None
    html: str | None
    links: tuple[str, ...]
    follow_links: tuple[str, ...]
    metadata: dict[str, str]
    data: dict[str, list[str]]
    encoding: str | None


def validate_selector(css: str) -> None:
    """Raise ValueError with a readable message if `css` is not a usable CSS selector."""
    if not css.strip():
        raise ValueError("empty CSS selector")
    try:
        soupsieve.compile(css)
    except (soupsieve.SelectorSyntaxError, NotImplementedError, ValueError) as exc:
        message = str(exc).splitlines()[0]
        raise ValueError(f"invalid CSS selector {css!r}: {message}") from exc


def parse_page(
    body: bytes, url: str, options: ParseOptions, *, http_charset: str | None = None
) -> ParsedPage:
    """Decode and parse one HTML document into the formats `options` asks for."""
    if not body:
        return _empty_page(options)
    document, encoding = _decode(body, http_charset)
    # The tree bs4 builds is thousands of objects linked both ways. With the collector on,
    # the young ones are traversed again and again while the tree grows (about a tenth
    # of the parse). With it off until the page is done, the dead tree is collected in
    # one pass of the youngest generation.
    collect = gc.isenabled()
    gc.disable()
    try:
        return _parse(document, encoding, url, options)
    except RecursionError as exc:
        raise ParseError("document nests too deeply to parse") from exc
    finally:
        if collect:
            gc.enable()
            gc.collect(0)


# --- decoding -----------------------------------------------------------------------------

_DETECT_BYTES = 64 * 1024
_SNIFF_BYTES = 1024
_MAX_CONTROL_RATIO = 0.05
# C0 controls that never appear in text (tab, LF, FF, CR and ESC, used by ISO-2022, do),
# plus DEL. Translating these away and comparing lengths counts them at C speed.
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])


def _codec(label: str | None, *, from_meta: bool = False) -> str | None:
    """Python codec for a charset label, mapped the way browsers map it; None if unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    if name in ("iso8859-1", "ascii"):
        return "cp1252"
    if from_meta and name.startswith(("utf-16", "utf-32")):
        # A meta tag readable as ASCII cannot be UTF-16; WHATWG says to read UTF-8.
        return "utf-8"
    return name


def _decode(body: bytes, http_charset: str | None) -> tuple[str, str]:
    """Decode the body; return the text and the codec used. Raises ParseError for binary."""
    data, bom = EncodingDetector.strip_byte_order_mark(body)
    declared: list[str] = []
    for codec in (
        _codec(bom),
        _codec(http_charset),
        _codec(EncodingDetector.find_declared_encoding(data, is_html=True), from_meta=True),
    ):
        if codec is not None and codec not in declared:
            declared.append(codec)
    if not (declared and declared[0].startswith(("utf-16", "utf-32"))):
        sample = data[:_SNIFF_BYTES]
        controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
        if controls > len(sample) * _MAX_CONTROL_RATIO:
            raise ParseError("content looks binary, not HTML")
    for codec in declared:
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    for codec in declared:
        try:
            return data.decode(codec, errors="replace"), codec
        except LookupError:  # a non-text codec such as "zlib" named in a header
            continue
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:_DETECT_BYTES]).best()
    guessed = _codec(best.encoding) if best is not None else None
    if guessed is not None:
        try:
            return data.decode(guessed), guessed
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode("cp1252", errors="replace"), "cp1252"


# --- the document walk --------------------------------------------------------------------

# Marks a table cell boundary inside a line; lxml turns NUL in input into U+FFFD.
_CELL = "\x00"
_SEPARATORS = ("\n", "\n", "\n\n")  # between lines, by the strongest break pending
_AROUND_CELL = re.compile(" ?\x00 ?")
_TOKEN_SPLIT = re.compile(r"[\s,]+")

# Strings of these types are page text; comments, doctypes, CDATA and script/style
# contents are other NavigableString subclasses.
_TEXT_TYPES = frozenset({NavigableString, RubyTextString, RubyParenthesisString})
# Elements whose contents are never readable text.
_MUTED = frozenset(
    {"head", "title", "script", "style", "noscript", "template", "svg", "iframe", "object"}
)
# Elements that end a paragraph (blank line) or a line in the text output.
_PARAGRAPH_BLOCKS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table", "hr", "figure"}
)
_LINE_BLOCKS = frozenset(
    {
        "address", "article", "aside", "body", "caption", "center", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "footer", "form", "header",
        "hgroup", "html", "legend", "li", "main", "menu", "nav", "ol", "option", "section",
        "summary", "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_BREAKS = dict.fromkeys(_LINE_BLOCKS, 1) | dict.fromkeys(_PARAGRAPH_BLOCKS, 2)
_SECTIONING = frozenset({"article", "aside", "main", "nav", "section"})
_ALWAYS_BOILERPLATE = frozenset({"nav", "aside"})
_PAGE_BOILERPLATE = frozenset({"header", "footer"})
_BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary"})
_COLLECTED = frozenset({"a", "area", "meta", "link", "base", "title", "h1", "main", "html"})
_META_NAMES = frozenset({"description", "keywords", "author", "robots"})
_SKIPPED_SCHEMES = ("javascript:", "mailto:", "tel:", "data:", "vbscript:")

# Flags a walk frame carries for what to undo when its element ends.
_MUTE, _SVG, _ARTICLE, _SECTION, _PRE, _LINE, _PARAGRAPH = (1 << n for n in range(7))


def _attr(tag: Tag, name: str) -> str | None:
    """An attribute as a plain str (multi-valued ones such as rel joined by spaces)."""
    value = tag.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)  # a plain str, so results pickle without bs4 types
    return " ".join(value)


def _is_boilerplate(tag: Tag, in_sectioning: bool) -> bool:
    name = tag.name
    if name in _ALWAYS_BOILERPLATE or (name in _PAGE_BOILERPLATE and not in_sectioning):
        return True
    role = tag.get("role")
    return isinstance(role, str) and role.strip().lower() in _BOILERPLATE_ROLES


class _TextBuilder:
    """Accumulates readable text: block elements become line or paragraph breaks."""

    __slots__ = ("_out", "_pending", "_pre", "_size", "full", "limit", "line")

    def __init__(self, limit: int) -> None:
        self._out: list[str] = []
        self.line: list[str] = []  # raw strings; whitespace is collapsed once per line
        self._pending = 0
        self._pre = 0
        self._size = 0
        self.limit = limit
        self.full = limit == 0

    def cell(self) -> None:
        if not self._pre:
            self.line.append(_CELL)

    def newline(self) -> None:
        if self._pre:
            self.line.append("\n")
        else:
            self.brk(1)

    def brk(self, level: int) -> None:
        if self._pre:
            return
        if self.line:
            line = _collapse("".join(self.line))
            self.line.clear()
            if _CELL in line:
                line = _AROUND_CELL.sub("\t", line).strip(" \t")
            if line and not self.full:
                self._emit(line)
        if level > self._pending:
            self._pending = level

    def start_pre(self) -> None:
        if not self._pre:
            self.brk(2)
        self._pre += 1

    def end_pre(self) -> None:
        self._pre -= 1
        if self._pre:
            return
        block = "".join(self.line).replace("\r\n", "\n").replace(_CELL, "").strip("\n")
        self.line.clear()
        self._emit("\n".join(line.rstrip() for line in block.split("\n")))
        self._pending = 2

    def _emit(self, line: str) -> None:
        if not line or self.full:
            return
        out = self._out
        if out:
            separator = _SEPARATORS[self._pending]
            out.append(separator)
            self._size += len(separator) + len(line)
        else:
            self._size += len(line)
        out.append(line)
        self._pending = 0
        self.full = self._size >= self.limit

    def result(self) -> str:
        if self._pre:  # a pre still open at the end of a walk
            self._pre = 1
            self.end_pre()
        self.brk(0)
        return "".join(self._out)[: self.limit]


class _Scan:
    """Elements of interest found in the document walk."""

    __slots__ = ("anchors", "articles", "base", "canonical", "h1", "lang", "main", "metas", "title")

    def __init__(self) -> None:
        self.anchors: list[Tag] = []
        self.metas: list[Tag] = []
        self.articles: list[Tag] = []
        self.base: str | None = None
        self.canonical: str | None = None
        self.lang: str | None = None
        self.title: Tag | None = None
        self.h1: Tag | None = None
        self.main: Tag | None = None

    def see(self, tag: Tag, name: str, in_svg: bool) -> None:
        if name == "a" or name == "area":
            if "href" in tag.attrs:
                self.anchors.append(tag)
        elif name == "meta":
            self.metas.append(tag)
        elif name == "link":
            rel = _attr(tag, "rel")
            if self.canonical is None and rel and "canonical" in rel.lower().split():
                self.canonical = _attr(tag, "href")
        elif name == "base":
            if self.base is None:
                self.base = _attr(tag, "href")
        elif name == "title":
            if self.title is None and not in_svg:
                self.title = tag
        elif name == "h1":
            if self.h1 is None:
                self.h1 = tag
        elif name == "main":
            if self.main is None:
                self.main = tag
        elif name == "html" and self.lang is None:
            self.lang = _attr(tag, "lang")


def _walk(
    root: Tag, scan: _Scan | None, text: _TextBuilder | None, *, drop_boilerplate: bool
) -> None:
    """Visit `root`'s subtree once, without recursion, feeding the scan and the text."""
    # > 0 inside elements whose strings are not page text; with no text wanted, always.
    mute = 0 if text is not None else 1
    builder = text if text is not None else _TextBuilder(0)  # never fed while muted
    # Fed only the NavigableStrings (str subclasses) that are text, checked below.
    add = cast("Callable[[PageElement], None]", builder.line.append)
    brk = builder.brk
    svg = 0
    article = 0
    sectioning = 1 if root.name in _SECTIONING else 0
    anchors = scan.anchors if scan is not None else []
    stack: list[tuple[Iterator[PageElement], int]] = [(iter(root.contents), 0)]
    while stack:
        for node in stack[-1][0]:
            if not isinstance(node, Tag):
                if not mute and type(node) in _TEXT_TYPES:
                    add(node)
                continue
            tag = node
            name = tag.name
            flags = 0
            if scan is not None:
                if name == "a":
                    if "href" in tag.attrs:
                        anchors.append(tag)
                elif name in _COLLECTED:
                    scan.see(tag, name, svg > 0)
                elif name == "article":
                    if article == 0:
                        scan.articles.append(tag)
                    article += 1
                    flags = _ARTICLE
                elif name == "svg":
                    svg += 1
                    flags = _SVG
            if not mute:
                level = _BREAKS.get(name)
                if drop_boilerplate and _is_boilerplate(tag, sectioning > 0):
                    if scan is None:
                        continue  # nothing else wants this subtree
                    mute += 1
                    flags |= _MUTE
                elif level is not None:
                    brk(level)
                    flags |= _PARAGRAPH if level == 2 else _LINE
                    if name == "pre":
                        builder.start_pre()
                        flags |= _PRE
                    elif drop_boilerplate and name in _SECTIONING:
                        sectioning += 1
                        flags |= _SECTION
                elif name == "td" or name == "th":
                    builder.cell()
                elif name in _MUTED:
                    if scan is None:
                        continue
                    mute += 1
                    flags |= _MUTE
                elif name == "br":
                    builder.newline()
                if builder.full and scan is None:
                    return
            stack.append((iter(tag.contents), flags))
            break
        else:
            flags = stack.pop()[1]
            if flags:
                if flags & _MUTE:
                    mute -= 1
                if flags & _SVG:
                    svg -= 1
                if flags & _ARTICLE:
                    article -= 1
                if flags & _SECTION:
                    sectioning -= 1
                if flags & _PRE:
                    builder.end_pre()
                if flags & _PARAGRAPH:
                    brk(2)
                elif flags & _LINE:
                    brk(1)
                if builder.full and scan is None:
                    return


def _content_roots(soup: BeautifulSoup, scan: _Scan, only_main_content: bool) -> list[Tag]:
    if only_main_content:
        if scan.main is not None:
            return [scan.main]
        if scan.articles:
            return scan.articles
    body = soup.body
    return [body] if body is not None else [soup]


def _plain_text(roots: list[Tag], limit: int, drop_boilerplate: bool) -> str:
    builder = _TextBuilder(limit)
    for root in roots:
        _walk(root, None, builder, drop_boilerplate=drop_boilerplate)
        builder.brk(2)
    return builder.result()


# --- the parts of the result --------------------------------------------------------------


def _parse(document: str, encoding: str, url: str, options: ParseOptions) -> ParsedPage:
    with warnings.catch_warnings():
        # A crawler meets XHTML and pages that look like a file name; neither is news.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(document, "lxml")
    formats = options.formats
    want_text = "text" in formats
    fused_text = want_text and not options.only_main_content
    scan = _Scan()
    builder = _TextBuilder(options.max_text_chars) if fused_text else None
    _walk(soup, scan, builder, drop_boilerplate=False)

    base = _base_url(url, scan.base)
    metadata = _metadata(scan, base)
    links: tuple[str, ...] = ()
    follow: tuple[str, ...] = ()
    if options.extract_links or "links" in formats:
        nofollow_page = options.respect_nofollow and _robots_nofollow(metadata.get("robots"))
        links, follow = _links(scan.anchors, base, options, nofollow_page)

    roots: list[Tag] = []
    if (want_text and builder is None) or "markdown" in formats:
        roots = _content_roots(soup, scan, options.only_main_content)
    text = None
    if builder is not None:
        text = builder.result()
    elif want_text:
        text = _plain_text(roots, options.max_text_chars, options.only_main_content)

    data = {name: _select(soup, spec) for name, spec in options.selectors}
    markdown = None
    if "markdown" in formats:
        markdown = _markdown(roots, base, options)
        if markdown is None:  # markdownify recursed too deep: plain text is valid markdown
            markdown = _plain_text(roots, options.max_text_chars, options.only_main_content)

    return ParsedPage(
        title=_title(scan),
        text=text,
        markdown=markdown,
        html=document if "html" in formats else None,
        links=links,
        follow_links=follow,
        metadata=metadata if "metadata" in formats else {},
        data=data,
        encoding=encoding,
    )


def _empty_page(options: ParseOptions) -> ParsedPage:
    formats = options.formats
    return ParsedPage(
        title=None,
        text="" if "text" in formats else None,
        markdown="" if "markdown" in formats else None,
        html="" if "html" in formats else None,
        links=(),
        follow_links=(),
        metadata={},
        data={name: [] for name, _ in options.selectors},
        encoding=None,
    )


def _collapse(string: str) -> str:
    """Whitespace runs as one space, none at the ends: `re.sub(r"\\s+", " ", s).strip()`."""
    # Every whitespace character but the space is unprintable, so most lines of text pass
    # this check, which is cheaper than splitting them into words. str.split() and the
    # regex \s agree on what whitespace is.
    collapsed = string.isprintable() and "  " not in string
    if collapsed and string[:1] != " " and string[-1:] != " ":
        return string
    return " ".join(string.split())


def _title(scan: _Scan) -> str | None:
    for tag in (scan.title, scan.h1):
        if tag is not None:
            title = _collapse(tag.get_text())
            if title:
                return title
    return None


def _base_url(url: str, base_href: str | None) -> str:
    if base_href and base_href.strip():
        try:
            base = urljoin(url, base_href.strip())
        except ValueError:
            return url
        if urlsplit(base).scheme in ("http", "https"):
            return base
    return url


def _metadata(scan: _Scan, base: str) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for tag in scan.metas:
        key = _attr(tag, "property") or _attr(tag, "name")
        content = _attr(tag, "content")
        if key is None or content is None:
            continue
        key = key.strip().lower()
        if key in metadata:
            continue
        if key in _META_NAMES or key.startswith(("og:", "twitter:")):
            metadata[key] = content.strip()
    if scan.canonical:
        canonical = _Resolver(base).resolve(scan.canonical)
        if canonical is not None:
            metadata["canonical"] = canonical[0]
    if scan.lang and scan.lang.strip():
        metadata["lang"] = scan.lang.strip()
    return metadata


def _robots_nofollow(robots: str | None) -> bool:
    if not robots:
        return False
    tokens = set(_TOKEN_SPLIT.split(robots.lower()))
    return "nofollow" in tokens or "none" in tokens


# An absolute http(s) URL that canonicalize_url() returns unchanged: lower-case host
# labels, no userinfo, a port without leading zeros, a path of unreserved characters and
# no dot segments (no segment starts with "."), no params, query or fragment.
_CANONICAL_URL = re.compile(
    r"(https?)://[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
    r"(?::([1-9][0-9]{0,4}))?(?:/(?:[A-Za-z0-9_~-][A-Za-z0-9._~-]*)?)+"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# First characters of an href that can only be a relative path (with neither a scheme
# nor an authority) once urljoin has stripped and cleaned it; it must also lack ":".
# urljoin() drops tabs and newlines first, and "//" starts an authority, even an empty one.
_NOT_AFTER_SLASH = ("/", "\t", "\n", "\r")
_PATH_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-")


def _is_canonical(url: str) -> bool:
    """True only if canonicalize_url(url) == url (a cheap test; False means "don't know")."""
    match = _CANONICAL_URL.fullmatch(url)
    if match is None:
        return False
    port = match[2]
    return port is None or (port != _DEFAULT_PORTS[match[1]] and int(port) <= 65535)


@functools.lru_cache(maxsize=16384)
def _canonical_link(url: str) -> tuple[str, bool] | None:
    # Canonicalisation is most of a link's cost and pure; site-wide navigation links recur
    # on every page a worker process parses, so a bounded cache pays for itself.
    canonical = url if _is_canonical(url) else try_canonicalize(url)
    if canonical is None:
        return None
    return canonical, looks_like_non_html(canonical)


@functools.lru_cache(maxsize=16384)
def _joined_link(key: str, href: str) -> tuple[str, bool] | None:
    # urljoin() costs as much again as a cached canonicalisation. Joined against a page's
    # origin or directory (see _Resolver) instead of the page URL, the same navigation
    # hrefs recur across the pages of a site, so the join is cached too.
    try:
        return _canonical_link(urljoin(key, href))
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


class _Resolver:
    """Resolves one page's hrefs to (canonical absolute http(s) URL, looks non-HTML).

    urljoin(base, href) depends on less than the whole base for most hrefs. One starting
    with a single "/" depends only on the base's scheme and authority (its origin), and a relative
    path (one that cannot have a scheme or authority) only on the origin and the base
    path up to its last "/" (its directory). Those hrefs are joined against that key
    instead of the base, through a cache; other hrefs are joined against the base.
    """

    __slots__ = ("_base", "_directory", "_origin")

    def __init__(self, base: str) -> None:
        self._base = base
        self._origin: str | None = None
        self._directory: str | None = None
        try:
            scheme, netloc, path, _, _ = urlsplit(base)
            if scheme not in _DEFAULT_PORTS or not netloc:
                return
            origin = f"{scheme}://{netloc}"
            directory = origin + path[: path.rfind("/") + 1]
            # Each key must parse back into the parts it was built from.
            if urlsplit(origin) != (scheme, netloc, "", "", ""):
                return
            if urlsplit(directory) != (scheme, netloc, directory[len(origin) :], "", ""):
                return
        except ValueError:
            return
        self._origin = origin
        self._directory = directory

    def resolve(self, href: str) -> tuple[str, bool] | None:
        """The link for an href; None for fragment-only, non-web and unusable hrefs."""
        href = href.strip()
        if not href or href[0] == "#" or href[:11].lower().startswith(_SKIPPED_SCHEMES):
            return None
        first = href[0]
        if first == "/" and href[1:2] not in _NOT_AFTER_SLASH:
            key = self._origin
        elif first in _PATH_START and ":" not in href:
            key = self._directory
        elif _CANONICAL_URL.fullmatch(href):
            # Already canonical and absolute: urljoin() would return it unchanged.
            return _canonical_link(href)
        else:
            key = None
        if key is not None:
            return _joined_link(key, href)
        try:
            return _canonical_link(urljoin(self._base, href))
        except ValueError:  # e.g. an unclosed IPv6 bracket
            return None


def _links(
    anchors: list[Tag], base: str, options: ParseOptions, nofollow_page: bool
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """All links in document order (deduped, capped) and the ones the crawler may follow."""
    followable: dict[str, bool] = {}  # canonical URL -> may follow; insertion-ordered
    resolved: dict[str, tuple[str, bool] | None] = {}  # raw href -> resolve(), per page
    resolve = _Resolver(base).resolve
    max_links = options.max_links
    check_rel = options.respect_nofollow and not nofollow_page
    for tag in anchors:
        href = _attr(tag, "href") or ""
        if href in resolved:
            link = resolved[href]
        elif len(followable) >= max_links:
            break  # full: only repeats of hrefs already seen could still matter
        else:
            link = resolved[href] = resolve(href)
        if link is None:
            continue
        url, non_html = link
        follow = not nofollow_page and not non_html
        if follow and check_rel:
            rel = _attr(tag, "rel")
            follow = not (rel and "nofollow" in rel.lower().split())
        if url not in followable:
            if len(followable) < max_links:
                followable[url] = follow
        elif follow:
            followable[url] = True
    links = tuple(followable)
    return links, tuple(url for url in links if followable[url])


def _select(soup: BeautifulSoup, spec: SelectorSpec) -> list[str]:
    matches: list[Tag]
    try:
        if spec.all:
            matches = list(soup.select(spec.css))
        else:
            first = soup.select_one(spec.css)
            matches = [first] if first is not None else []
    except soupsieve.SelectorSyntaxError as exc:  # callers validate; this is a bug upstream
        raise ValueError(f"invalid CSS selector {spec.css!r}") from exc
    values: list[str] = []
    for tag in matches:
        if spec.attr is None:
            values.append(_collapse(tag.get_text()))
        else:
            value = _attr(tag, spec.attr)
            if value is not None:
                values.append(value.strip())
    return values


# --- markdown -----------------------------------------------------------------------------


def _code_language(el: Any) -> str | None:
    """Language of a `<pre>` block from a `language-*` class on it or on its `<code>`."""
    tags = [el]
    code = el.find("code", recursive=False)
    if code is not None:
        tags.append(code)
    for tag in tags:
        for cls in tag.get("class") or ():
            if cls.startswith(("language-", "lang-")):
                return str(cls.split("-", 1)[1])
    return None


class _MarkdownConverter(MarkdownConverter):
    """markdownify with absolute URLs, no invisible elements, and boilerplate dropped."""

    def __init__(self, base: str, drop_boilerplate: bool) -> None:
        super().__init__(
            heading_style=ATX,
            bullets="-",
            table_infer_header=True,
            code_language_callback=_code_language,
        )
        self._base = base
        self._drop_boilerplate = drop_boilerplate

    def process_tag(self, node: Any, parent_tags: set[str] | None = None) -> str:
        if node.name in _MUTED or (
            self._drop_boilerplate
            and _is_boilerplate(node, bool(parent_tags and parent_tags & _SECTIONING))
        ):
            return ""
        result: str = super().process_tag(node, parent_tags)  # type: ignore[misc]
        return result

    def _url(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        url = value.strip()
        if url[:11].lower().startswith(("javascript:", "data:", "vbscript:")):
            return None
        try:
            return urljoin(self._base, url)
        except ValueError:
            return None

    def convert_a(self, el: Any, text: str, parent_tags: set[str]) -> str:
        if "_noformat" in parent_tags:
            return text
        stripped = text.strip()
        if not stripped:
            return ""
        href = self._url(el.get("href"))
        if href is None:
            return text
        prefix = " " if text[0] == " " else ""
        suffix = " " if text[-1] == " " else ""
        title = el.get("title")
        title_part = ' "{}"'.format(title.replace('"', r"\"")) if isinstance(title, str) else ""
        return f"{prefix}[{stripped}]({href}{title_part}){suffix}"

    def convert_img(self, el: Any, text: str, parent_tags: set[str]) -> str:
        alt = el.get("alt") or ""
        if "_inline" in parent_tags:
            return str(alt)
        src = self._url(el.get("src"))
        return f"![{alt}]({src})" if src else str(alt)


def _markdown(roots: list[Tag], base: str, options: ParseOptions) -> str | None:
    """Markdown for the content roots; None if markdownify hits the recursion limit."""
    converter = _MarkdownConverter(base, options.only_main_content)
    parts: list[str] = []
    try:
        for root in roots:
            part = converter.convert_soup(root).strip()
            if part:
                parts.append(part)
    except RecursionError:
        return None
    return _squeeze_blank_lines("\n\n".join(parts))[: options.max_text_chars]


def _squeeze_blank_lines(markdown: str) -> str:
    """Collapse runs of blank lines (left by dropped elements) outside fenced code."""
    lines: list[str] = []
    in_fence = False
    for line in markdown.split("\n"):
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and not line.strip() and lines and not lines[-1]:
            continue
        lines.append("" if not in_fence and not line.strip() else line)
    return "\n".join(lines)
