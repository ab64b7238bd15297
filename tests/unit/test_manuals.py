"""The Python 3.11 and PostgreSQL 15 manuals' markdown defects (issue 12) stay fixed.

Reads Debian's python3.11-doc and postgresql-doc-15 from /usr/share/doc (.ci/run installs
them); skipped with the reason when they are absent. bench/quality_manuals.py counts the
same defects over every page.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from markdown_it import MarkdownIt

from service.crawl.parser import ParsedPage, ParseOptions, parse_page

PYTHON = Path("/usr/share/doc/python3.11/html")
POSTGRES = Path("/usr/share/doc/postgresql-doc-15/html")


def _page(path: Path, *, main: bool) -> ParsedPage:
    if not path.is_file():
        pytest.skip(f"{path} absent: apt-get install python3.11-doc postgresql-doc-15")
    options = ParseOptions(formats=frozenset({"text", "markdown"}), only_main_content=main)
    return parse_page(path.read_bytes(), f"http://127.0.0.1/{path.name}", options)


def _source_pre(path: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return len(BeautifulSoup(path.read_bytes(), "lxml").find_all("pre"))


def _rendered(markdown: str) -> BeautifulSoup:
    return BeautifulSoup(MarkdownIt("commonmark").enable("table").render(markdown), "html.parser")


@pytest.mark.parametrize("name", ["library/functions.html", "library/stdtypes.html"])
def test_python_reference_pages_render_their_code_blocks_and_nothing_else(name: str) -> None:
    path = PYTHON / name
    page = _page(path, main=False)
    assert page.markdown is not None and page.text is not None
    rendered = _rendered(page.markdown)
    # Definitions no longer turn into indented code blocks; every real example is one.
    assert len(rendered.find_all("pre")) == _source_pre(path)
    assert "¶" not in page.markdown
    assert "¶" not in page.text
    assert "\xa0" not in page.markdown
    fences = re.findall(r"^ *```(\S*)$", page.markdown, re.M)
    languages = [f for f in fences if f]
    assert languages
    assert set(languages) <= {"python", "python3", "pycon", "text", "none", "c", "sh"}


def test_python_layout_tables_are_lists_not_giant_lines() -> None:
    for name in ("genindex-all.html", "index.html"):
        page = _page(PYTHON / name, main=False)
        assert page.markdown is not None
        # Was one line of up to 300,000 characters; now the longest is one index entry.
        assert max(len(line) for line in page.markdown.split("\n")) < 5000
    index = _page(PYTHON / "genindex-all.html", main=False)
    assert index.markdown is not None
    assert len(_rendered(index.markdown).find_all("li")) > 1000


def test_python_main_content_keeps_footnotes_and_drops_the_site_footer() -> None:
    page = _page(PYTHON / "library/__future__.html", main=True)
    assert page.text is not None
    assert "Found a bug?" not in page.text
    assert "Navigation" not in page.text.split("\n")[:3]
    # The footnotes are <aside class="footnote" role="note">.
    source = (PYTHON / "library/__future__.html").read_text()
    footnote = BeautifulSoup(source, "html.parser").select_one('aside[role="note"] p')
    assert footnote is not None
    assert " ".join(footnote.get_text().split())[:40] in " ".join(page.text.split())


def test_postgres_main_content_drops_prev_up_next_navigation() -> None:
    whole = _page(POSTGRES / "sql-select.html", main=False)
    main = _page(POSTGRES / "sql-select.html", main=True)
    assert whole.text is not None and main.text is not None
    assert re.search(r"^Prev\b", whole.text, re.M)
    assert not re.search(r"^Prev\b", main.text, re.M)
    assert "Synopsis" in main.text
    assert main.markdown is not None
    assert "| Prev" not in main.markdown
    assert len(_rendered(main.markdown).find_all("pre")) == _source_pre(
        POSTGRES / "sql-select.html"
    )
