"""The WCXB dev split for the quality bench: pages, the dataset's own scorer, the table."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parent.parent
# The dataset lives beside the repository (../shared; ../../shared from a worktree in
# /work/wt/<name>), never in it.
_CANDIDATES = (REPO.parent / "shared", REPO.parent.parent / "shared")
DEFAULT_DATASET = next((c for c in _CANDIDATES if c.is_dir()), _CANDIDATES[0]) / "data" / "wcxb-dev"
TYPE_ORDER = ("article", "forum", "product", "collection", "listing", "documentation", "service")


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of the split: its id, type and the path of its gzipped HTML."""

    file_id: str
    page_type: str
    url: str
    html_path: Path

    def body(self) -> bytes:
        return gzip.decompress(self.html_path.read_bytes())


def dataset_dir(flag: str | None = None) -> Path:
    """The split's directory: the flag, then $TRAWL_WCXB_DIR, then ../shared/data/wcxb-dev."""
    path = Path(flag or os.environ.get("TRAWL_WCXB_DIR") or DEFAULT_DATASET)
    if not (path / "evaluate.py").is_file():
        raise SystemExit(f"no WCXB split at {path} (set --dataset or TRAWL_WCXB_DIR)")
    return path


def scorer(directory: Path) -> ModuleType:
    """The dataset's own evaluate.py, imported from its file."""
    spec = importlib.util.spec_from_file_location("wcxb_evaluate", directory / "evaluate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_pages(directory: Path, split: str = "dev") -> tuple[list[Page], dict[str, Any]]:
    """Pages of the split and the scorer's ground truth (evaluate.load_ground_truth)."""
    evaluate = scorer(directory)
    truth: dict[str, Any] = evaluate.load_ground_truth(split)
    pages = []
    for file_id, gt in sorted(truth.items()):
        data = json.loads((directory / split / "ground-truth" / f"{file_id}.json").read_text())
        pages.append(
            Page(
                file_id=file_id,
                page_type=gt["page_type"],
                url=data.get("url") or f"https://example.invalid/{file_id}",
                html_path=directory / split / "html" / f"{file_id}.html.gz",
            )
        )
    return pages, truth


_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_BLOCK_ENDS = frozenset(
    {"paragraph_close", "heading_close", "list_item_close", "blockquote_close", "tr_close"}
)


def markdown_text(markdown: str) -> str:
    """The text a reader sees of the markdown, rendered with markdown-it (CommonMark + GFM).

    Emphasis markers, backticks and backslash escapes go with the rendering, soft line
    breaks read as spaces, table cells are tab-separated; link targets and images are
    dropped (a URL's words are not content, and an image's alt text is not shown on the
    page: the ground truth and Trawl's `text` have neither).
    """
    out: list[str] = []
    for token in _MD.parse(markdown):
        if token.type == "inline":
            for child in token.children or ():
                if child.type in ("text", "code_inline"):
                    out.append(child.content)
                elif child.type == "softbreak":
                    out.append(" ")
                elif child.type == "hardbreak":
                    out.append("\n")
        elif token.type in ("fence", "code_block", "html_block"):
            out.append(token.content + "\n")
        elif token.type in ("th_close", "td_close"):
            out.append("\t")
        elif token.type in _BLOCK_ENDS:
            out.append("\n")
    return "".join(out)


# Typographic punctuation as the ASCII the snippets are often written in. The bench's own
# extra column, not the dataset's figure: Trawl keeps the page's punctuation as it is.
_FOLD = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
     "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
     "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2015": "-", "\u2212": "-",
     "\u2026": "...", "\u00a0": " ", "\u202f": " ", "\u2009": " "}
)  # fmt: skip


def _folded_check(text: str, snippets: list[str]) -> float:
    """evaluate.snippet_check with typographic punctuation folded on both sides."""
    if not snippets:
        return 1.0
    folded = text.translate(_FOLD).lower()
    return sum(1 for s in snippets if s.translate(_FOLD).lower() in folded) / len(snippets)


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """Mean scores over a set of pages."""

    n: int
    f1: float
    precision: float
    recall: float
    with_rate: float
    without_rate: float
    with_folded: float  # "with" found once typographic punctuation is folded to ASCII


def score(
    evaluate: ModuleType, truth: dict[str, Any], predictions: dict[str, str]
) -> dict[str, Score]:
    """Per page type and "all": the dataset's word F1 and snippet rates, as evaluate.py does."""
    groups: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    for file_id, gt in truth.items():
        predicted = predictions.get(file_id, "") or ""
        p, r, f1 = evaluate.word_f1(predicted, gt["main_content"])
        row = (
            f1,
            p,
            r,
            evaluate.snippet_check(predicted, gt["with"]),
            evaluate.snippet_check(predicted, gt["without"]),
            _folded_check(predicted, gt["with"]),
        )
        groups[gt["page_type"]].append(row)
        groups["all"].append(row)
    return {name: _mean(rows) for name, rows in groups.items()}


def _mean(rows: list[tuple[float, ...]]) -> Score:
    n = len(rows)
    sums = [sum(column) for column in zip(*rows, strict=True)]
    return Score(
        n=n,
        f1=sums[0] / n,
        precision=sums[1] / n,
        recall=sums[2] / n,
        with_rate=sums[3] / n,
        without_rate=sums[4] / n,
        with_folded=sums[5] / n,
    )


def table(results: dict[str, dict[str, Score]], cpu_ms: dict[str, float] | None = None) -> str:
    """A markdown table: one row per system and page type."""
    lines = [
        "| system | type | pages | F1 | precision | recall | with | without "
        "| with, punct.-folded |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for system, scores in results.items():
        for name in ("all", *TYPE_ORDER):
            s = scores.get(name)
            if s is None:
                continue
            label = f"**{system}**" if name == "all" else ""
            lines.append(
                f"| {label} | {name} | {s.n} | {s.f1:.3f} | {s.precision:.3f} | "
                f"{s.recall:.3f} | {s.with_rate:.1%} | {s.without_rate:.1%} | "
                f"{s.with_folded:.1%} |"
            )
    if cpu_ms:
        lines += ["", "| parse | CPU ms/page |", "|---|---:|"]
        lines += [f"| {name} | {ms:.2f} |" for name, ms in cpu_ms.items()]
    return "\n".join(lines)


def compact(results: dict[str, dict[str, Score]]) -> str:
    """F1 per type, one line per system: the quick view while iterating."""
    header = "system".ljust(28) + "".join(n[:7].rjust(8) for n in ("all", *TYPE_ORDER))
    lines = [header + "    with  without  with*"]
    for system, scores in results.items():
        row = system.ljust(28)
        row += "".join(
            f"{scores[n].f1:8.3f}" if n in scores else " " * 8 for n in ("all", *TYPE_ORDER)
        )
        every = scores["all"]
        row += f"  {every.with_rate:6.1%}  {every.without_rate:6.1%}  {every.with_folded:6.1%}"
        lines.append(row)
    lines.append(
        "with*: with, typographic punctuation folded to ASCII (the bench's, not the scorer's)"
    )
    return "\n".join(lines)


def run_all(
    pages: Iterable[Page], extract: Callable[[Page], dict[str, str]]
) -> dict[str, dict[str, str]]:
    """system -> file_id -> prediction, from a per-page function returning system -> text."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for page in pages:
        for system, text in extract(page).items():
            out[system][page.file_id] = text
    return out
