"""Markdown defects on the Python 3.11 and PostgreSQL 15 manuals (Debian's python3.11-doc
and postgresql-doc-15, read from /usr/share/doc), counted page by page.

    apt-get install python3.11-doc postgresql-doc-15
    python bench/quality_manuals.py [--limit N] [--workers 2]

Each page goes through parse_page (markdown, with and without only_main_content), the
markdown is rendered back with markdown-it-py (CommonMark + GFM tables) and compared with
the page: code blocks that are not code, examples lost, lines of more than 2,000
characters, permalink glyphs, fences without the language the page gave, Prev/Up/Next
navigation and site footers left in main content, no-break spaces, blank-line runs.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from service.crawl.parser import ParseOptions, parse_page

MANUALS = {
    "python3.11": Path("/usr/share/doc/python3.11/html"),
    "postgresql-15": Path("/usr/share/doc/postgresql-doc-15/html"),
}
_FENCE_OPEN = re.compile(r"^[ >]*(`{3,})(\S*)\s*$")
_MD = MarkdownIt("commonmark").enable("table")


def _fence_languages(markdown: str) -> tuple[int, int]:
    """(fences, fences with a language) in the markdown."""
    fences = tagged = 0
    inside: str | None = None
    for line in markdown.split("\n"):
        match = _FENCE_OPEN.match(line)
        if match is None:
            continue
        if inside is None:
            inside = match[1]
            fences += 1
            tagged += bool(match[2])
        elif len(match[1]) >= len(inside) and not match[2]:
            inside = None
    return fences, tagged


def _blank_runs(markdown: str) -> int:
    runs = 0
    inside = False
    blank = 0
    for line in markdown.split("\n"):
        if _FENCE_OPEN.match(line) or line.lstrip(" >").startswith("```"):
            inside = not inside
        if not inside and not line.strip():
            blank += 1
            runs += blank == 2
        else:
            blank = 0
    return runs


def check(path: Path) -> Counter[str]:
    """Defect counts for one page."""
    body = path.read_bytes()
    url = f"http://127.0.0.1/{path.name}"
    counts: Counter[str] = Counter(pages=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XHTML pages parsed as HTML, as Trawl does
        source = BeautifulSoup(body, "lxml")
    source_pre = len(source.find_all("pre"))
    marked = sum(
        1
        for pre in source.find_all("pre")
        if any(
            "highlight-" in " ".join(t.get("class") or ())
            for t in (pre.parent, pre.parent.parent if pre.parent else None)
            if t is not None
        )
    )
    for main in (False, True):
        options = ParseOptions(formats=frozenset({"markdown", "text"}), only_main_content=main)
        page = parse_page(body, url, options)
        markdown = page.markdown or ""
        text = page.text or ""
        suffix = " (main)" if main else ""
        rendered = BeautifulSoup(_MD.render(markdown), "html.parser")
        code_blocks = len(rendered.find_all("pre"))
        counts["false code blocks" + suffix] += max(0, code_blocks - source_pre)
        counts["lost code blocks" + suffix] += max(0, source_pre - code_blocks) if not main else 0
        counts["lines > 2000 chars" + suffix] += sum(
            1 for line in markdown.split("\n") if len(line) > 2000
        )
        counts["¶ in markdown" + suffix] += markdown.count("¶")
        counts["¶ in text" + suffix] += text.count("¶")
        counts["no-break spaces" + suffix] += markdown.count("\xa0")
        counts["blank-line runs" + suffix] += _blank_runs(markdown)
        fences, tagged = _fence_languages(markdown)
        counts["fences" + suffix] += fences
        counts["fences with language" + suffix] += tagged
        if main:
            counts["pages with Prev/Up/Next in main"] += bool(
                re.search(r"\bPrev\b.*\bUp\b.*\bNext\b", text, re.S)
                and re.search(r"^Prev\b", text, re.M)
            )
            counts["pages with footer in main"] += "Found a bug?" in text or (
                "Copyright" in text[-400:] and "Python Software Foundation" in text[-400:]
            )
    counts["source <pre> marked with a language"] += marked
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="a spread sample of N pages each")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    status = 0
    for name, root in MANUALS.items():
        files = sorted(root.rglob("*.html"))
        if not files:
            print(f"{name}: not installed at {root} (apt-get install ...), skipped")
            status = 1
            continue
        if args.limit:
            files = files[:: max(1, len(files) // args.limit)][: args.limit]
        totals: Counter[str] = Counter()
        with ProcessPoolExecutor(args.workers) as pool:
            for counts in pool.map(check, files, chunksize=8):
                totals.update(counts)
        print(f"\n{name} ({totals['pages']} pages)")
        for key in sorted(totals):
            if key != "pages":
                print(f"  {key:<42} {totals[key]:>8}")
    return status


if __name__ == "__main__":
    sys.exit(main())
