"""HTML to markdown that renders as the page reads, in CommonMark + GFM (markdownify, adapted).

What differs from markdownify's defaults, and why:

* Definition lists: CommonMark has none, and markdownify's `:   definition` indents the
  definition by four spaces, which renders as a code block. A term is a bold paragraph and
  its definition ordinary unindented blocks.
* Tables: see service.crawl.mdtables (merged cells expanded, `|` escaped, layout tables as
  their blocks).
* Code: `<pre>` is written byte for byte (its text, not its markup) in a fence longer than
  any backtick run inside, with the language the page names on the block or its wrappers
  (`language-js`, `lang-js`, Sphinx's `highlight-python3`, SyntaxHighlighter's `brush: js`,
  `data-lang`).
* Permalink anchors (`¶`, "Permalink to this heading") are dropped, admonitions (Sphinx
  and DocBook `note`/`warning` boxes) become blockquotes led by their bold title, SVG
  figures in `<object data>` become images, no-break spaces become spaces, and no run of
  blank lines outside code is longer than one.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

from bs4 import Tag
from markdownify import ATX, MarkdownConverter

from service.crawl.mdtables import grid_markdown, is_layout_table, table_rows
from service.crawl.textwalk import BREAKS, MUTED, is_permalink

__all__ = ["to_markdown"]

_CODE_CLASS = re.compile(
    r"^(?:language|lang|highlight|sourceCode|brush)[-:]\s*([A-Za-z0-9_+#.-]+)$", re.IGNORECASE
)
_BRUSH = re.compile(r"brush\s*:\s*([A-Za-z0-9_+#.-]+)", re.IGNORECASE)
# Class words that name no language.
_NOT_LANGUAGES = frozenset({"none", "plain", "default", "notranslate", "highlight", "source"})
_ADMONITIONS = frozenset(
    {
        "admonition", "note", "warning", "tip", "caution", "important", "hint", "danger",
        "attention", "error", "seealso", "callout",
    }
)  # fmt: skip
_TITLE_CLASSES = frozenset({"admonition-title", "title", "callout-title"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_FENCE = re.compile(r"^[ >]*(`{3,}|~{3,})")
# Elements whose edges end a line: the spaces of text beside them go (the text walk's
# blocks and <br>).
_LINE_ENDS = frozenset(BREAKS) | {"br"}
_WHITESPACE = re.compile(r"\s+")  # str's whitespace: newlines, no-break and thin spaces
# Text that would open a block at the start of a line (list item, heading, quote, fence,
# setext underline); `*` and `_` markdownify escapes everywhere.
_BLOCK_START = re.compile(
    r"(?:[-+](?=[ \t]|$)|#{1,6}(?=[ \t]|$)|>|\d{1,9}[.)](?=[ \t]|$)|`{3}|~{3}|[-=]+[ \t]*$)"
)
# Placed before such text; at a line's start (after quote and list markers) it becomes
# an escape, anywhere else nothing.
_MARK = "\ue000"
_BREAK = "\ue001"  # a <br>: a hard break within a paragraph, nothing at its end
_LINE_START_MARK = re.compile(r"^([ \t>]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+)*)\ue000(\d{1,9}(?=[.)]))?")


def code_language(pre: Tag) -> str | None:
    """The language a `<pre>` block is marked with, on it, its `<code>` or two wrappers."""
    tags: list[Tag] = [pre]
    code = pre.find("code", recursive=False)
    if isinstance(code, Tag):
        tags.insert(0, code)
    parent = pre.parent
    for _ in range(2):
        if not isinstance(parent, Tag):
            break
        tags.append(parent)
        parent = parent.parent
    for tag in tags:
        for name in ("data-lang", "data-language"):
            value = tag.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        classes = tag.get("class") or ()
        joined = " ".join(classes)
        if "sourceCode" in classes:  # pandoc: class="sourceCode python"
            others = [c for c in classes if c != "sourceCode"]
            if others:
                return str(others[0])
        if "brush" in joined:
            match = _BRUSH.search(joined)
            if match:
                return match[1].rstrip(";")
        for cls in classes:
            match = _CODE_CLASS.match(cls)
            if match:
                language = match[1]
                if language.lower() in _NOT_LANGUAGES:
                    # Sphinx's "highlight-default" is its default lexer: Python.
                    return "python" if cls.lower() == "highlight-default" else None
                return language
    return None


def _admonition_kind(tag: Tag) -> str | None:
    classes = tag.get("class")
    if not classes or tag.name not in ("div", "aside", "section"):
        return None
    kinds = [c for c in classes if c.lower() in _ADMONITIONS]
    if not kinds:
        return None
    specific = [c for c in kinds if c.lower() != "admonition"]
    return (specific or kinds)[0]


def _admonition_title(tag: Tag) -> Tag | None:
    for child in tag.children:
        if isinstance(child, Tag):
            classes = set(child.get("class") or ())
            if classes & _TITLE_CLASSES or child.name in _HEADINGS:
                return child
            return None
        if str(child).strip():
            return None
    return None


def _code_span(code: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    ticks = "`" * (longest + 1)
    return f"{ticks} {code} {ticks}" if longest else f"{ticks}{code}{ticks}"


def _ends_line(node: Any) -> bool:
    return isinstance(node, Tag) and node.name in _LINE_ENDS


class _Converter(MarkdownConverter):
    """markdownify with absolute URLs, no invisible elements, and the rules above."""

    def __init__(self, base: str) -> None:
        super().__init__(heading_style=ATX, bullets="-", table_infer_header=True)
        self._base = base

    # --- dispatch ---------------------------------------------------------------------

    def process_tag(self, node: Any, parent_tags: set[str] | None = None) -> str:
        name = node.name
        parent_tags = parent_tags if parent_tags is not None else set()
        if name == "object":
            return self._object(node, parent_tags)
        if name in MUTED:
            return ""
        if name == "a" and is_permalink(node):
            return ""
        if name == "pre":
            return self._pre(node, parent_tags)
        if name == "table":
            return self._table(node, parent_tags)
        if "_inline" not in parent_tags and _admonition_kind(node) is not None:
            return self._admonition(node, parent_tags)
        result: str = super().process_tag(node, parent_tags)  # type: ignore[misc]
        return result

    def process_text(self, el: Any, parent_tags: set[str] | None = None) -> str:
        """markdownify's, but every whitespace run is one space (source newlines are not
        breaks, no-break and thin spaces are spaces) and block-start markup is marked."""
        parent_tags = parent_tags if parent_tags is not None else set()
        if "pre" in parent_tags:
            text: str = super().process_text(el, parent_tags)  # type: ignore[misc]
            return text
        text = _WHITESPACE.sub(" ", str(el).replace(_MARK, "").replace(_BREAK, ""))
        if "_noformat" not in parent_tags:
            text = self.escape(text, parent_tags)  # type: ignore[attr-defined]
            body = text.lstrip(" ")
            if _BLOCK_START.match(body):
                text = text[: len(text) - len(body)] + _MARK + body
        before, after, parent = el.previous_sibling, el.next_sibling, el.parent
        if _ends_line(before) or (before is None and _ends_line(parent)):
            text = text.lstrip(" ")
        if _ends_line(after) or (after is None and _ends_line(parent)):
            text = text.rstrip(" ")
        return text

    # --- inline -----------------------------------------------------------------------

    def _emphasis(self, markup: str, same: tuple[str, ...]) -> Any:
        def convert(el: Any, text: str, parent_tags: set[str]) -> str:
            if "_noformat" in parent_tags or any(t in parent_tags for t in same):
                return text  # nested: the outer element emits the markers once
            if "\n\n" in text.strip():
                return text  # blocks inside: markers cannot close across them
            stripped = text.strip()
            if not stripped:
                return " " if text else ""
            prefix = " " if text[0] == " " else ""
            suffix = " " if text[-1] == " " else ""
            return f"{prefix}{markup}{stripped}{markup}{suffix}"

        return convert

    def convert_b(self, el: Any, text: str, parent_tags: set[str]) -> str:
        return str(self._emphasis("**", ("b", "strong"))(el, text, parent_tags))

    convert_strong = convert_b

    def convert_em(self, el: Any, text: str, parent_tags: set[str]) -> str:
        return str(self._emphasis("*", ("em", "i"))(el, text, parent_tags))

    convert_i = convert_em

    def convert_br(self, el: Any, text: str, parent_tags: set[str]) -> str:
        if "_inline" in parent_tags:
            return text + " " if text else " "
        return _BREAK + "\n" + text

    # --- blocks -----------------------------------------------------------------------

    def _pre(self, node: Tag, parent_tags: set[str]) -> str:
        code = node.get_text().replace("\r\n", "\n").replace("\r", "\n")
        code = code.lstrip("\n").rstrip("\n")
        if not code.strip():
            return ""
        if "_inline" in parent_tags:
            return _code_span(" ".join(code.split()))
        longest = max((len(m) for m in re.findall(r"`{3,}", code)), default=2)
        fence = "`" * (longest + 1)
        language = code_language(node) or ""
        return f"\n\n{fence}{language}\n{code}\n{fence}\n\n"

    def _table(self, node: Tag, parent_tags: set[str]) -> str:
        rows = table_rows(node)
        caption = node.find("caption", recursive=False)
        head = ""
        if isinstance(caption, Tag):
            head = self._inline(caption)
        if "_inline" in parent_tags:
            return " " + " ".join(filter(None, [head, *(self._inline(r) for r in rows)])) + " "
        if is_layout_table(node, rows):
            blocks = [head] if head else []
            for row in rows:
                for cell in row.children:
                    if isinstance(cell, Tag) and cell.name in ("td", "th"):
                        block = self._blocks(cell, parent_tags).strip()
                        if block:
                            blocks.append(block)
            return "\n\n" + "\n\n".join(blocks) + "\n\n" if blocks else ""
        grid = grid_markdown(node, rows, self._inline)
        if not grid:
            return ""
        return "\n\n" + (head + "\n\n" if head else "") + grid + "\n\n"

    def _admonition(self, node: Tag, parent_tags: set[str]) -> str:
        title_tag = _admonition_title(node)
        kind = _admonition_kind(node) or ""
        title = self._inline(title_tag) if title_tag is not None else kind.capitalize()
        if title_tag is not None:
            title_tag.extract()  # markdown is the tree's last reader
        body = self._blocks(node, parent_tags).strip()
        text = f"**{title}**" if title else ""
        if body:
            text = f"{text}\n\n{body}" if text else body
        quoted = "\n".join("> " + line if line else ">" for line in text.split("\n"))
        return f"\n\n{quoted}\n\n"

    def _object(self, node: Tag, parent_tags: set[str]) -> str:
        data = node.get("data")
        kind = str(node.get("type") or "")
        if not isinstance(data, str) or not (
            data.lower().split("?")[0].endswith(".svg") or kind.startswith("image/")
        ):
            return ""
        src = self._url(data)
        if src is None:
            return ""
        alt = " ".join(node.get_text().split()) or str(node.get("aria-label") or "")
        return alt if "_inline" in parent_tags else f"![{alt}]({src})"

    def _blocks(self, node: Tag, parent_tags: set[str]) -> str:
        """A cell or box converted as the blocks it holds (as a div would be)."""
        name = node.name
        node.name = "div"
        try:  # markdownify's own dispatch: this element is not to be seen as a box again
            return str(super().process_tag(node, parent_tags))  # type: ignore[misc]
        finally:
            node.name = name

    def _inline(self, node: Tag, *tags: str) -> str:
        """Inline markdown of an element's contents, on one line."""
        name = node.name
        node.name = "td"  # converts its contents inline; convert_td below adds nothing
        try:
            text = str(self.process_tag(node, {"_inline", *tags}))
        finally:
            node.name = name
        return " ".join(text.split())

    # The text walk's blocks that markdownify leaves inline are blocks here too (their
    # edges end lines, see process_text).
    def convert_nav(self, el: Any, text: str, parent_tags: set[str]) -> str:
        return str(super().convert_div(el, text, parent_tags))  # type: ignore[misc]

    convert_address = convert_aside = convert_center = convert_details = convert_nav
    convert_dialog = convert_fieldset = convert_figcaption = convert_figure = convert_nav
    convert_footer = convert_form = convert_header = convert_hgroup = convert_nav
    convert_legend = convert_main = convert_menu = convert_summary = convert_nav

    def convert_td(self, el: Any, text: str, parent_tags: set[str]) -> str:
        return text

    def convert_li(self, el: Any, text: str, parent_tags: set[str]) -> str:
        if "_link_line" in parent_tags:  # items in one linked line: no bullets mid-line
            return f" {text.strip()} "
        return str(super().convert_li(el, text, parent_tags))  # type: ignore[misc]

    convert_th = convert_td

    # --- definition lists -------------------------------------------------------------

    def convert_dt(self, el: Any, text: str, parent_tags: set[str]) -> str:
        text = " ".join(text.split())
        if "_inline" in parent_tags:
            return f" {text} "
        if not text:
            return ""
        if text.startswith("**") and text.endswith("**") and text.count("**") == 2:
            return f"\n\n{text}\n\n"
        return f"\n\n**{text}**\n\n"

    def convert_dd(self, el: Any, text: str, parent_tags: set[str]) -> str:
        text = text.strip()
        if "_inline" in parent_tags:
            return f" {text} "
        return f"\n\n{text}\n\n" if text else ""

    # --- links and images -------------------------------------------------------------

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
            return " " if text else ""  # a whitespace-only link still parts the words
        href = self._url(el.get("href"))
        if href is None:
            return text
        if "\n" in stripped:  # blocks inside the link: one linked line
            # A card's carousel of images is not the link's text: its words are; a link
            # of images only keeps its first image.
            inline = self._inline(el, "_link_line")
            if not inline:
                image = el.find("img")
                src = self._url(image.get("src")) if isinstance(image, Tag) else None
                if src is None:
                    return ""
                inline = f"![{image.get('alt') or ''}]({src})" if isinstance(image, Tag) else ""
            stripped = inline
            if "_inline" not in parent_tags:
                return f"\n\n[{stripped}]({href})\n\n"
        prefix = " " if text[0] == " " else ""
        suffix = " " if text[-1] == " " else ""
        title = el.get("title")
        title_part = ""
        if isinstance(title, str):
            title_part = ' "{}"'.format(" ".join(title.split()).replace('"', r"\""))
        return f"{prefix}[{stripped}]({href}{title_part}){suffix}"

    def convert_img(self, el: Any, text: str, parent_tags: set[str]) -> str:
        alt = el.get("alt") or ""
        if "_link_line" in parent_tags:
            return ""
        if "_inline" in parent_tags:
            return str(alt)
        src = self._url(el.get("src"))
        return f"![{alt}]({src})" if src else str(alt)


def to_markdown(roots: list[Tag], base: str, limit: int) -> str | None:
    """Markdown for the content roots; None if markdownify hits the recursion limit."""
    converter = _Converter(base)
    parts: list[str] = []
    try:
        for root in roots:
            part = converter.convert_soup(root).strip()
            if part:
                parts.append(part)
    except RecursionError:
        return None
    return squeeze_blank_lines("\n\n".join(parts))[:limit]


def _finish(line: str, next_line: str) -> str:
    """A line outside code with its marks resolved and no trailing spaces."""
    if _MARK in line:
        line = _LINE_START_MARK.sub(
            lambda m: m[1] + (m[2] + "\\" if m[2] else "\\"), line, count=1
        ).replace(_MARK, "")
    if _BREAK in line:
        end = line.endswith(_BREAK) and next_line.strip() != ""
        line = line.replace(_BREAK, "").rstrip()
        return line + "\\" if end and line else line
    return line.rstrip()


def squeeze_blank_lines(markdown: str) -> str:
    """At most one blank line in a row, and none with spaces, outside fenced code; lines
    without trailing spaces, and the marks process_text and convert_br leave resolved."""
    lines: list[str] = []
    fence: str | None = None
    source = markdown.split("\n")
    for index, line in enumerate(source):
        match = _FENCE.match(line)
        if match is not None:
            marker = match[1]
            if fence is None:
                fence = marker
            else:
                # A closing fence: the opening's character, as long or longer, nothing after.
                closes = marker[0] == fence[0] and len(marker) >= len(fence)
                if closes and not line[match.end() :].strip():
                    fence = None
            lines.append(line)
            continue
        if fence is not None:
            lines.append(line)
            continue
        line = _finish(line, source[index + 1] if index + 1 < len(source) else "")
        if not line.strip():
            if lines and not lines[-1]:
                continue
            line = ""
        elif line.strip() == ">" and lines and lines[-1].strip() == ">":
            continue
        lines.append(line)
    return "\n".join(lines)
