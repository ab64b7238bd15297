"""HTML to ParsedPage: the pure, CPU-bound step of a crawl, run in a process pool.

Plain data in, plain data out: no I/O, results that pickle cheaply, and no state between
calls except bounded caches of link resolution (pure functions, so they cannot change a
result). Each page is decoded once (service.crawl.htmlencoding) and parsed once
(BeautifulSoup over lxml, most of the CPU). One iterative walk of the tree
(service.crawl.textwalk) collects the title, metadata and links, and the text too unless
only_main_content is set. Markdown and selectors are computed only when they are asked for.
The cyclic garbage collector is paused while a page parses (see parse_page).

Choices worth knowing:

* Encoding: a byte-order mark, then the HTTP charset, then `<meta charset>` or http-equiv,
  each tried strictly in that order; if all of them fail, the first one is used with
  replacement characters. An undeclared page is tried as UTF-8, then charset-normalizer
  guesses from the first 64 KiB, and windows-1252 is the last resort. Following WHATWG,
  a BOM beats the header, ISO-8859-1 and ASCII labels decode as windows-1252, and a UTF-16
  label in a `<meta>` means UTF-8. `encoding` is the Python codec name (e.g. "cp1251").
* only_main_content affects text and markdown only. Links, metadata, selectors and html
  always see the whole document, because the crawler needs navigation links and html is
  the page as served. The main content is found on the tree already built
  (service.crawl.maincontent), which detaches the boilerplate, so text and markdown read
  the same content. Markdown rules: service.crawl.markdown.
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

import functools
import gc
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag, XMLParsedAsHTMLWarning
from bs4.element import AttributeDict
from lxml import etree

from service.crawl.htmlencoding import BinaryContentError, decode_html
from service.crawl.maincontent import main_content
from service.crawl.markdown import to_markdown
from service.crawl.textwalk import (
    LxmlScan,
    Scan,
    TextBuilder,
    attr,
    collapse,
    lxml_attr,
    plain_text,
    walk,
    walk_lxml,
)
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
    # Also the main content's plain text (ParsedPage.main_text): what recrawls compare.
    digest: bool = False

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
    main_text: str | None = None  # with ParseOptions.digest


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
    try:
        document, encoding = decode_html(body, http_charset)
    except BinaryContentError as exc:
        raise ParseError(str(exc)) from exc
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


_TOKEN_SPLIT = re.compile(r"[\s,]+")
_META_NAMES = frozenset({"description", "keywords", "author", "robots"})
_SKIPPED_SCHEMES = ("javascript:", "mailto:", "tel:", "data:", "vbscript:")


# --- the parts of the result --------------------------------------------------------------


def _parse(document: str, encoding: str, url: str, options: ParseOptions) -> ParsedPage:
    if _walk_is_enough(options):
        page = _parse_lxml(document, encoding, url, options)
        if page is not None:
            return page
    with warnings.catch_warnings():
        # A crawler meets XHTML and pages that look like a file name; neither is news.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        # lxml hands bs4 only str attribute values, which bs4's default attribute dict
        # (for lxml, XMLAttributeDict) would pass through a Python __setitem__ each.
        soup = BeautifulSoup(document, "lxml", attribute_dict_class=AttributeDict)
    formats = options.formats
    want_text = "text" in formats
    fused_text = want_text and not options.only_main_content
    scan = Scan()
    builder = TextBuilder(options.max_text_chars) if fused_text else None
    walk(soup, scan, builder, drop_boilerplate=False)

    base = _base_url(url, scan.base)
    metadata = _metadata(scan, base)
    links: tuple[str, ...] = ()
    follow: tuple[str, ...] = ()
    if options.extract_links or "links" in formats:
        nofollow_page = options.respect_nofollow and _robots_nofollow(metadata.get("robots"))
        links, follow = _links(scan.anchors, base, options, nofollow_page)

    # Selectors see the whole page: computed before main-content extraction prunes it.
    data = {name: _select(soup, spec) for name, spec in options.selectors}
    roots: list[Tag] = []
    if (want_text and builder is None) or "markdown" in formats:
        if options.only_main_content:
            roots = main_content(soup, scan.main, scan.articles)
        else:
            roots = _page_roots(soup)
    text = None
    if builder is not None:
        text = builder.result()
    elif want_text:
        text = plain_text(roots, options.max_text_chars, False)

    markdown = None
    if "markdown" in formats:
        markdown = to_markdown(roots, base, options.max_text_chars)
        if markdown is None:  # markdownify recursed too deep: plain text is valid markdown
            markdown = plain_text(roots, options.max_text_chars, False)

    main_text = None
    if options.digest:
        if options.only_main_content and text is not None:
            main_text = text
        else:
            # Last: extracting the main content detaches the boilerplate from the tree.
            if not options.only_main_content or not roots:
                roots = main_content(soup, scan.main, scan.articles)
            main_text = plain_text(roots, options.max_text_chars, False)

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
        main_text=main_text,
    )


def _page_roots(soup: BeautifulSoup) -> list[Tag]:
    """The body and what lxml puts after it, as the text walk reads the whole document:
    elements after `</body>` and a second <html> for content after `</html>`."""
    body = soup.body
    if body is None:
        return [soup]
    roots: list[Tag] = [body]
    roots.extend(node for node in body.next_siblings if isinstance(node, Tag))
    html = body.parent
    if isinstance(html, Tag) and html is not soup:
        roots.extend(node for node in html.next_siblings if isinstance(node, Tag))
    return roots


_HTML_END = re.compile(r"</html\s*>", re.IGNORECASE)
_TAG_START = re.compile(r"<[A-Za-z]")


def _walk_is_enough(options: ParseOptions) -> bool:
    """Whether the one walk yields every field asked for (no bs4 tree is needed)."""
    return not (
        options.selectors
        or options.only_main_content
        or options.digest
        or "markdown" in options.formats
    )


def _parse_lxml(document: str, encoding: str, url: str, options: ParseOptions) -> ParsedPage | None:
    """`_parse` over lxml's own tree (see textwalk.walk_lxml); None: let bs4 try."""
    # Markup after </html> is where libxml2's tree and the events bs4 builds from part:
    # the tree drops the elements that follow (2 of the first 1,000 WCXB pages lost text
    # that way), bs4 keeps them. Such pages (3 % there) go to bs4.
    end = _HTML_END.search(document)
    if end is not None and _TAG_START.search(document, end.end()) is not None:
        return None
    # The parser bs4's lxml builder uses, fed the same way (the whole str, then close):
    # the push parser, whose trees can differ from lxml.html.fromstring's.
    parser = etree.HTMLParser(recover=True)
    try:
        parser.feed(document)
        root = parser.close()
    except (etree.Error, ValueError):  # e.g. an empty document: bs4 has its fallbacks
        return None
    if root is None:
        return None
    formats = options.formats
    scan = LxmlScan()
    builder = TextBuilder(options.max_text_chars) if "text" in formats else None
    walk_lxml(root, scan, builder)
    base = _base_url(url, scan.base)
    metadata = _metadata(scan, base, lxml_attr)
    links: tuple[str, ...] = ()
    follow: tuple[str, ...] = ()
    if options.extract_links or "links" in formats:
        nofollow_page = options.respect_nofollow and _robots_nofollow(metadata.get("robots"))
        links, follow = _links(scan.anchors, base, options, nofollow_page, lxml_attr)
    title = None
    for candidate in (scan.title, scan.h1):
        if candidate is not None:
            title = collapse(candidate) or None
            if title:
                break
    return ParsedPage(
        title=title,
        text=builder.result() if builder is not None else None,
        markdown=None,
        html=document if "html" in formats else None,
        links=links,
        follow_links=follow,
        metadata=metadata if "metadata" in formats else {},
        data={},
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
        main_text="" if options.digest else None,
    )


def _title(scan: Scan) -> str | None:
    for tag in (scan.title, scan.h1):
        if tag is not None:
            title = collapse(tag.get_text())
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


_Getter = Callable[[Any, str], "str | None"]


def _metadata(scan: Scan | LxmlScan, base: str, get: _Getter = attr) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for tag in scan.metas:
        key = get(tag, "property") or get(tag, "name")
        content = get(tag, "content")
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
# urljoin() drops tabs and newlines before it parses, and "//" starts an authority (even
# an empty one): an href starting with "/" is origin-relative unless one of these follows.
_NOT_AFTER_SLASH = ("/", "\t", "\n", "\r")
# An href starting with one of these and without a ":" is a relative path (no scheme, no
# authority, a path that is not empty) however urljoin() cleans it.
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
    with a single "/" depends only on the base's scheme and authority (its origin), and
    a relative path only on the origin and the base path up to its last "/" (its
    directory). Those hrefs are joined against that key instead of the base, through a
    cache shared by all pages; other hrefs are joined against the base.
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
    anchors: list[Any],
    base: str,
    options: ParseOptions,
    nofollow_page: bool,
    get: _Getter = attr,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """All links in document order (deduped, capped) and the ones the crawler may follow."""
    followable: dict[str, bool] = {}  # canonical URL -> may follow; insertion-ordered
    resolved: dict[str, tuple[str, bool] | None] = {}  # raw href -> resolve(), per page
    resolve = _Resolver(base).resolve
    max_links = options.max_links
    check_rel = options.respect_nofollow and not nofollow_page
    for tag in anchors:
        href = get(tag, "href") or ""
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
            rel = get(tag, "rel")
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
            values.append(collapse(tag.get_text()))
        else:
            value = attr(tag, spec.attr)
            if value is not None:
                values.append(value.strip())
    return values
