"""The document walk: one iterative pass over a bs4 tree for its readable text and the
elements the parser needs (anchors, metas, title, ...). Nothing here changes the tree.

Text: block elements end lines or paragraphs, table cells are separated by tabs, `<pre>`
keeps its formatting, whitespace elsewhere collapses to single spaces, and the contents
of head, script, style, svg and similar elements are never text. The walk is the hot
loop of a crawl after bs4 itself, so it avoids per-node calls where it reasonably can.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, cast

from bs4 import Tag
from bs4.element import NavigableString, PageElement, RubyParenthesisString, RubyTextString

__all__ = [
    "MUTED",
    "SECTIONING",
    "Scan",
    "TextBuilder",
    "attr",
    "collapse",
    "is_boilerplate",
    "is_permalink",
    "plain_text",
    "walk",
]

# Marks a table cell boundary inside a line; lxml turns NUL in input into U+FFFD.
_CELL = "\x00"
_SEPARATORS = ("\n", "\n", "\n\n")  # between lines, by the strongest break pending
_AROUND_CELL = re.compile(" ?\x00 ?")

# Strings of these types are page text; comments, doctypes, CDATA and script/style
# contents are other NavigableString subclasses.
_TEXT_TYPES = frozenset({NavigableString, RubyTextString, RubyParenthesisString})
# Elements whose contents are never readable text.
MUTED = frozenset(
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
# Block elements and the line breaks their edges make in text (markdown ends lines there too).
BREAKS = dict.fromkeys(_LINE_BLOCKS, 1) | dict.fromkeys(_PARAGRAPH_BLOCKS, 2)
SECTIONING = frozenset({"article", "aside", "main", "nav", "section"})
_ALWAYS_BOILERPLATE = frozenset({"nav", "aside"})
_PAGE_BOILERPLATE = frozenset({"header", "footer"})
_BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary"})
_COLLECTED = frozenset({"a", "area", "meta", "link", "base", "title", "h1", "main", "html"})

# Flags a walk frame carries for what to undo when its element ends.
_MUTE, _SVG, _ARTICLE, _SECTION, _PRE, _LINE, _PARAGRAPH = (1 << n for n in range(7))


def attr(tag: Tag, name: str) -> str | None:
    """An attribute as a plain str (multi-valued ones such as rel joined by spaces)."""
    value = tag.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)  # a plain str, so results pickle without bs4 types
    return " ".join(value)


def is_boilerplate(tag: Tag, in_sectioning: bool) -> bool:
    """Whether only_main_content drops the element (nav, aside, page header/footer, ...)."""
    name = tag.name
    if name in _ALWAYS_BOILERPLATE or (name in _PAGE_BOILERPLATE and not in_sectioning):
        return True
    role = tag.get("role")
    return isinstance(role, str) and role.strip().lower() in _BOILERPLATE_ROLES


_PERMALINK_GLYPHS = frozenset({"¶", "#", "§", "🔗", "⁋", "¶#"})
_PERMALINK_TITLES = ("permalink", "link to this", "direct link to")


def is_permalink(tag: Tag) -> bool:
    """A heading's self-link (Sphinx's `¶`, "Permalink to this heading"), not content."""
    href = tag.get("href")
    if not isinstance(href, str) or not href.startswith("#"):
        return False
    title = tag.get("title")
    if isinstance(title, str) and title.lower().startswith(_PERMALINK_TITLES):
        return True
    text = tag.get_text()
    return len(text) <= 4 and text.strip() in _PERMALINK_GLYPHS


class TextBuilder:
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
            line = collapse("".join(self.line))
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


class Scan:
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
            rel = attr(tag, "rel")
            if self.canonical is None and rel and "canonical" in rel.lower().split():
                self.canonical = attr(tag, "href")
        elif name == "base":
            if self.base is None:
                self.base = attr(tag, "href")
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
            self.lang = attr(tag, "lang")


def walk(root: Tag, scan: Scan | None, text: TextBuilder | None, *, drop_boilerplate: bool) -> None:
    """Visit `root`'s subtree once, without recursion, feeding the scan and the text."""
    # > 0 inside elements whose strings are not page text; with no text wanted, always.
    mute = 0 if text is not None else 1
    builder = text if text is not None else TextBuilder(0)  # never fed while muted
    # Fed only the NavigableStrings (str subclasses) that are text, checked below.
    add = cast("Callable[[PageElement], None]", builder.line.append)
    brk = builder.brk
    svg = 0
    article = 0
    sectioning = 1 if root.name in SECTIONING else 0
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
                level = BREAKS.get(name)
                if (drop_boilerplate and is_boilerplate(tag, sectioning > 0)) or (
                    name == "a" and is_permalink(tag)
                ):
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
                    elif drop_boilerplate and name in SECTIONING:
                        sectioning += 1
                        flags |= _SECTION
                elif name == "td" or name == "th":
                    builder.cell()
                elif name in MUTED:
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


def plain_text(roots: list[Tag], limit: int, drop_boilerplate: bool) -> str:
    """The text of the subtrees, a paragraph apart, capped at `limit` characters."""
    builder = TextBuilder(limit)
    for root in roots:
        walk(root, None, builder, drop_boilerplate=drop_boilerplate)
        builder.brk(2)
    return builder.result()


def collapse(string: str) -> str:
    """Whitespace runs as one space, none at the ends: `re.sub(r"\\s+", " ", s).strip()`."""
    # Every whitespace character but the space is unprintable, so most lines of text pass
    # this check, which is cheaper than splitting them into words. str.split() and the
    # regex \s agree on what whitespace is.
    collapsed = string.isprintable() and "  " not in string
    if collapsed and string[:1] != " " and string[-1:] != " ":
        return string
    return " ".join(string.split())


# --- the same walk over an lxml tree -------------------------------------------------------
#
# bs4 is ~80 % of a page's parse (8.4 of 10.8 ms a page on the bench site, process time;
# lxml alone builds the same tree in 0.5 ms). When a job needs nothing but this walk (no
# markdown, main content, selectors or digest), the parser walks lxml's own tree instead.
# bs4 builds its tree from the events of the same libxml2 push parser, so the elements and
# strings are the same; what bs4 adds is string types, mirrored here: strings inside
# rt/rp/script/style/template ("string containers", the innermost wins) are not plain
# NavigableStrings, and comments and processing instructions are not text.

_STRING_CONTAINERS = frozenset({"rt", "rp", "script", "style", "template"})


def lxml_text(element: Any, container: str | None) -> str:
    """bs4's `get_text()` of an lxml element: its descendant strings of the plain type.

    `container` is the innermost string-container element around `element` (or None).
    """
    parts: list[str] = []
    own = element.tag if element.tag in _STRING_CONTAINERS else container
    if own is None and element.text:
        parts.append(element.text)
    stack: list[tuple[Any, Iterator[Any], str | None]] = [(element, iter(element), own)]
    while stack:
        _, children, context = stack[-1]
        for child in children:
            tag = child.tag
            if isinstance(tag, str):
                inner = tag if tag in _STRING_CONTAINERS else context
                if inner is None and child.text:
                    parts.append(child.text)
                stack.append((child, iter(child), inner))
                break
            if context is None and child.tail:  # a comment's or PI's tail
                parts.append(child.tail)
        else:
            done = stack.pop()[0]
            if len(stack) and stack[-1][2] is None and done.tail:
                parts.append(done.tail)
    return "".join(parts)


class LxmlScan:
    """What `Scan` finds, from an lxml tree; title and h1 as their text."""

    __slots__ = ("anchors", "base", "canonical", "h1", "lang", "metas", "title")

    def __init__(self) -> None:
        self.anchors: list[Any] = []
        self.metas: list[Any] = []
        self.base: str | None = None
        self.canonical: str | None = None
        self.lang: str | None = None
        self.title: str | None = None
        self.h1: str | None = None


def lxml_attr(element: Any, name: str) -> str | None:
    """An attribute as `attr` returns it (multi-valued rel joined by single spaces)."""
    value: str | None = element.get(name)
    if value is not None and name in _LIST_ATTRIBUTES:
        return " ".join(value.split())
    return value


_LIST_ATTRIBUTES = frozenset({"rel", "class", "rev", "headers", "accesskey", "dropzone"})


def walk_lxml(root: Any, scan: LxmlScan, text: TextBuilder | None) -> None:
    """`walk(soup, scan, text, drop_boilerplate=False)` over lxml's tree of the page."""
    mute = 0 if text is not None else 1
    builder = text if text is not None else TextBuilder(0)
    add = builder.line.append
    brk = builder.brk
    svg = 0
    containers: list[str] = []  # open string-container elements
    anchors = scan.anchors
    # The document node's children: comments and doctype around <html>, and a second
    # <html> for content after `</html>` (bs4 has the same; WCXB dev page 0310).
    top = [*reversed(list(root.itersiblings(preceding=True))), root, *root.itersiblings()]
    frame: tuple[Any, Iterator[Any], int] = (None, iter(top), 0)
    stack = [frame]
    while stack:
        for node in stack[-1][1]:
            name = node.tag
            if not isinstance(name, str):  # comment, processing instruction, entity
                if not mute and node.tail and stack[-1][0] is not None:
                    add(node.tail)
                continue
            flags = 0
            if name == "a":
                if "href" in node.attrib:
                    anchors.append(node)
            elif name in _COLLECTED:
                _see(scan, node, name, svg > 0, containers)
            elif name == "article":
                flags = _ARTICLE
            elif name == "svg":
                svg += 1
                flags = _SVG
            if name in _STRING_CONTAINERS:
                containers.append(name)
                flags |= _CONTAINER
            if not mute:
                level = BREAKS.get(name)
                if name == "a" and _lxml_permalink(node, containers):
                    mute += 1
                    flags |= _MUTE
                elif level is not None:
                    brk(level)
                    flags |= _PARAGRAPH if level == 2 else _LINE
                    if name == "pre":
                        builder.start_pre()
                        flags |= _PRE
                elif name == "td" or name == "th":
                    builder.cell()
                elif name in MUTED:
                    mute += 1
                    flags |= _MUTE
                elif name == "br":
                    builder.newline()
            if not mute and node.text:
                add(node.text)
            stack.append((node, iter(node), flags))
            break
        else:
            element, _, flags = stack.pop()
            if flags:
                if flags & _MUTE:
                    mute -= 1
                if flags & _SVG:
                    svg -= 1
                if flags & _CONTAINER:
                    containers.pop()
                if flags & _PRE:
                    builder.end_pre()
                if flags & _PARAGRAPH:
                    brk(2)
                elif flags & _LINE:
                    brk(1)
            if not mute and element is not None and element.tail and stack[-1][0] is not None:
                add(element.tail)


_CONTAINER = 1 << 7


def _see(scan: LxmlScan, node: Any, name: str, in_svg: bool, containers: list[str]) -> None:
    if name == "area":
        if "href" in node.attrib:
            scan.anchors.append(node)
    elif name == "meta":
        scan.metas.append(node)
    elif name == "link":
        rel = node.get("rel")
        if scan.canonical is None and rel and "canonical" in rel.lower().split():
            scan.canonical = node.get("href")
    elif name == "base":
        if scan.base is None:
            scan.base = node.get("href")
    elif name == "title":
        if scan.title is None and not in_svg:
            scan.title = lxml_text(node, containers[-1] if containers else None)
    elif name == "h1":
        if scan.h1 is None:
            scan.h1 = lxml_text(node, containers[-1] if containers else None)
    elif name == "html" and scan.lang is None:
        scan.lang = node.get("lang")


def _lxml_permalink(node: Any, containers: list[str]) -> bool:
    href = node.get("href")
    if href is None or not href.startswith("#"):
        return False
    title = node.get("title")
    if title is not None and title.lower().startswith(_PERMALINK_TITLES):
        return True
    text = lxml_text(node, containers[-1] if containers else None)
    return len(text) <= 4 and text.strip() in _PERMALINK_GLYPHS
