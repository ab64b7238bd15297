"""HTML tables for markdown: a GFM grid with merged cells expanded, or the table's blocks.

A data table becomes a GFM table: rowspan repeats a cell's text in each row it spans
(every row then reads as a whole record), colspan leaves the extra columns empty, and `|`
in a cell is escaped. A layout table, one used to place blocks side by side (Sphinx's
genindex, a docs home page, presentation roles, cells holding lists, headings or several
paragraphs, nested tables, a single column), is not a grid: its cells are written out as
the blocks they hold, in reading order.
"""

from __future__ import annotations

from collections.abc import Callable

from bs4 import Tag

__all__ = ["grid_markdown", "is_layout_table", "table_rows"]

_SECTIONS = frozenset({"thead", "tbody", "tfoot"})
_CELLS = ("td", "th")
# Inside a data cell these make it a layout cell.
_BLOCKY = frozenset(
    {"table", "ul", "ol", "dl", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
     "hr", "figure"}
)  # fmt: skip
_MAX_SPAN = 100
_MAX_COLUMNS = 64
_LAYOUT_CELL_CHARS = 2000


def table_rows(table: Tag) -> list[Tag]:
    """The table's own rows (not those of tables nested in it), in order."""
    rows: list[Tag] = []
    for child in table.children:
        if not isinstance(child, Tag):
            continue
        if child.name == "tr":
            rows.append(child)
        elif child.name in _SECTIONS:
            rows.extend(c for c in child.children if isinstance(c, Tag) and c.name == "tr")
    return rows


def _cells(row: Tag) -> list[Tag]:
    return [c for c in row.children if isinstance(c, Tag) and c.name in _CELLS]


def _span(cell: Tag, name: str) -> int:
    value = cell.get(name)
    if isinstance(value, str) and value.strip().isdigit():
        return max(1, min(_MAX_SPAN, int(value.strip())))
    return 1


def is_layout_table(table: Tag, rows: list[Tag]) -> bool:
    """Whether the table lays out blocks rather than holding data."""
    role = table.get("role")
    if isinstance(role, str) and role.strip().lower() in ("presentation", "none"):
        return True
    if not rows:
        return True
    widest = 0
    for row in rows:
        cells = _cells(row)
        widest = max(widest, sum(_span(c, "colspan") for c in cells))
        for cell in cells:
            paragraphs = 0
            for tag in cell.find_all(True):
                name = tag.name
                if name in _BLOCKY:
                    return True
                if name == "p" or name == "div":
                    paragraphs += 1
                    if paragraphs > 1:
                        return True
            if len(cell.get_text()) > _LAYOUT_CELL_CHARS:
                return True
    return widest < 2 or widest > _MAX_COLUMNS


def grid_markdown(table: Tag, rows: list[Tag], cell_text: Callable[[Tag], str]) -> str:
    """A GFM table; cell_text gives a cell's inline markdown on one line."""
    grid: list[list[str]] = []
    carried: dict[int, tuple[str, int]] = {}  # column -> (text, rows still spanned)
    header_rows = 0
    for index, row in enumerate(rows):
        cells = _cells(row)
        if index == header_rows and (
            (row.parent is not None and row.parent.name == "thead")
            or (cells and all(c.name == "th" for c in cells) and index == 0)
        ):
            header_rows += 1
        out: list[str] = []
        column = 0
        queue = list(cells)
        while queue or any(c >= column for c in carried):
            if column in carried:
                text, left = carried[column]
                out.append(text)
                if left > 1:
                    carried[column] = (text, left - 1)
                else:
                    del carried[column]
                column += 1
                continue
            if not queue:
                out.append("")
                column += 1
                continue
            cell = queue.pop(0)
            text = cell_text(cell).replace("|", "\\|")
            rowspan = _span(cell, "rowspan")
            for offset in range(_span(cell, "colspan")):
                out.append(text if offset == 0 else "")
                if rowspan > 1:
                    carried[column] = (text if offset == 0 else "", rowspan - 1)
                column += 1
        grid.append(out)
    width = max((len(r) for r in grid), default=0)
    if width == 0:
        return ""
    for r in grid:
        r.extend([""] * (width - len(r)))
    # A GFM table needs exactly one header row: the first row (header rows after it
    # become ordinary rows).
    lines = [_row(grid[0]), "| " + " | ".join(["---"] * width) + " |"]
    lines.extend(_row(r) for r in grid[1:])
    return "\n".join(lines)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
