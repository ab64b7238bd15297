"""Changes between two crawls of a page: what a result keeps, and how a recrawl compares.

Every result stores a `PageVersion`: the response's validators (ETag, Last-Modified),
and for a recrawl's pages (or a job asking for `changes`: a baseline) a hash of the
page's main-content text (whitespace-collapsed, so re-indented markup is not a change)
and that text compressed, for the `changes` diff. Results that were not parsed
(failures, robots.txt skips, non-HTML files) hash a fingerprint of what is known about
them instead: status, type, size, error code. A page of a job that kept no main content
(a plain job recrawled for the first time) is compared on what it stored: status, error
and the formats both results hold (`same_fields`). A recrawl's result is then:

- `new`: the URL has no result in the previous job (or had one saying it was gone);
- `removed`: it had one, and is now gone (404 or 410), or this job never reached it
  (the store adds those when the job completes, see store/core.py), or it still answers
  200 but no page of this job links to it any more (`removed_reason: "unlinked"`, also
  decided at completion from each result's `link_keys`; seeds are never unlinked);
- `unchanged`: the server answered 304 to the conditional request, or the hash is equal
  (or, without a previous hash, the same stored fields);
- `changed`: anything else (another text, or an error where there was a page).

Pure functions and records only: the parser processes import this module too.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from service.jsontext import compact_json
from service.models import Change, Outcome, rfc3339, utcnow
from service.urls import url_key

GONE_STATUSES = frozenset({404, 410})
# A diff is computed on at most this many lines of each version and cut at this many
# characters: difflib is quadratic in the worst case and runs off the event loop, but a
# result must stay bounded whatever the pages hold.
MAX_DIFF_INPUT_LINES = 5000
MAX_DIFF_CHARS = 64 * 1024
CONTEXT_LINES = 3
# Link keys kept per result (33 bytes each as JSON). A page with more in-scope links keeps
# none (None: not known), and a recrawl holding it reports no page as unlinked rather
# than guess.
MAX_LINK_KEYS = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class PageVersion:
    """What a later recrawl compares a result with (stored with the result)."""

    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    content: bytes | None = None  # the main-content text, zlib-compressed
    gone: bool = False  # 404/410 (not stored: read from the status code)

    def text(self) -> str | None:
        """The main-content text, if it was kept."""
        if self.content is None:
            return None
        return zlib.decompress(self.content).decode("utf-8", "replace")


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviousPage:
    """A URL's result in the job being recrawled."""

    url: str
    outcome: Outcome
    document: dict[str, Any]  # the stored result document
    change: Change | None
    version: PageVersion
    link_keys: tuple[str, ...] | None = ()  # None: not known (see MAX_LINK_KEYS)

    @property
    def fetched_at(self) -> str | None:
        value = self.document.get("fetched_at")
        return value if isinstance(value, str) else None

    @property
    def exists(self) -> bool:
        """Whether the page was there last time (not gone, not reported removed)."""
        return not self.version.gone and self.change is not Change.REMOVED

    @classmethod
    def from_row(
        cls,
        url: str,
        outcome: str,
        page: str,
        change: str | None,
        etag: str | None,
        last_modified: str | None,
        content_hash: str | None,
        content: bytes | None,
        link_keys: str | None = None,
    ) -> PreviousPage:
        document = json.loads(page)
        status = document.get("status_code")
        return cls(
            url=url,
            outcome=Outcome(outcome),
            document=document,
            change=Change(change) if change else None,
            version=PageVersion(
                etag=etag,
                last_modified=last_modified,
                content_hash=content_hash,
                content=bytes(content) if content is not None else None,
                gone=status in GONE_STATUSES,
            ),
            # A page stored before link keys were (NULL) links to what nobody knows.
            link_keys=tuple(json.loads(link_keys)) if link_keys is not None else None,
        )


def link_keys(links: Iterable[str], own: Iterable[str] = ()) -> tuple[str, ...] | None:
    """The keys a result keeps of the links followed from it: the hex url_key of each
    canonical URL, deduplicated, without the page's own URLs (a self-link keeps nothing
    linked); None past MAX_LINK_KEYS."""
    skip = {url_key(url).hex() for url in own}
    keys = dict.fromkeys(key for key in (url_key(link).hex() for link in links) if key not in skip)
    if len(keys) > MAX_LINK_KEYS:
        return None
    return tuple(keys)


def link_keys_json(keys: tuple[str, ...] | None) -> str | None:
    """link_keys as stored: a JSON array, NULL when not known."""
    return None if keys is None else compact_json(list(keys))


def digest(text: str) -> str:
    """The content hash of a main-content text (whitespace runs count as one space)."""
    normal = " ".join(text.split())
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()


def compress(text: str, max_bytes: int) -> bytes:
    """A main-content text as stored: at most `max_bytes` of UTF-8, zlib-compressed."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:  # cut at a character boundary
        raw = raw[:max_bytes].decode("utf-8", "ignore").encode("utf-8", "surrogatepass")
    return zlib.compress(raw, 6)


def fingerprint(
    *, status: int | None, content_type: str | None, size: int | None, error: str | None
) -> str:
    """The content hash of a result that was not parsed: what is known about it."""
    key = f"{status}|{content_type}|{size}|{error}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def validators(headers: dict[str, str]) -> tuple[str | None, str | None]:
    """(ETag, Last-Modified) of a response, as sent (bounded: they are sent back)."""
    etag = headers.get("etag", "").strip()[:1024] or None
    modified = headers.get("last-modified", "").strip()[:128] or None
    return etag, modified


@dataclass(frozen=True, slots=True, kw_only=True)
class Conditional:
    """A stored response's validators, sent back to the URL that gave them (RFC 9110 13.1)."""

    url: str  # the previous fetch's final URL (after its redirects)
    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> list[tuple[str, str]]:
        sent = []
        if self.etag:
            sent.append(("If-None-Match", self.etag))
        if self.last_modified:
            sent.append(("If-Modified-Since", self.last_modified))
        return sent


def conditional(previous: PreviousPage | None) -> Conditional | None:
    """What to revalidate a page fetched before with (None: fetch it in full)."""
    if previous is None or not previous.exists or previous.outcome is not Outcome.OK:
        return None
    version = previous.version
    final_url = previous.document.get("final_url")
    if not (version.etag or version.last_modified) or not isinstance(final_url, str):
        return None
    return Conditional(url=final_url, etag=version.etag, last_modified=version.last_modified)


def classify(
    previous: PreviousPage | None,
    version: PageVersion | None,
    same_fields: Callable[[], bool] | None = None,
) -> Change:
    """How a freshly fetched result compares with the previous one (see the docstring);
    `same_fields` decides when the previous result has no content hash."""
    gone = version is not None and version.gone
    if previous is None or not previous.exists:
        if previous is not None and gone:
            return Change.UNCHANGED  # gone then, still gone
        return Change.NEW
    if gone:
        return Change.REMOVED
    new_hash = version.content_hash if version is not None else None
    if previous.version.content_hash is None:
        return Change.UNCHANGED if same_fields is not None and same_fields() else Change.CHANGED
    if new_hash is not None and new_hash == previous.version.content_hash:
        return Change.UNCHANGED
    return Change.CHANGED


# What two results of a page are compared on when the previous one kept no content hash.
_COMPARED = ("title", "text", "markdown", "html", "links", "metadata", "data")


def same_fields(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether two result documents hold the same page: status, error and every format
    both hold (a format only one of them asked for is not compared)."""
    if before.get("status_code") != after.get("status_code"):
        return False
    if (before.get("error") or {}).get("code") != (after.get("error") or {}).get("code"):
        return False
    return all(before[key] == after[key] for key in _COMPARED if key in before and key in after)


def comparable_texts(
    previous: PreviousPage, version: PageVersion | None, document: Callable[[], dict[str, Any]]
) -> tuple[str, str] | None:
    """(before, after) texts to diff: the main contents, or without a previous one the
    stored `text` (else `markdown`) of both results."""
    before = previous.version.text()
    after = version.text() if version is not None else None
    if before is not None and after is not None:
        return before, after
    current = document()
    for key in ("text", "markdown"):
        old, new = previous.document.get(key), current.get(key)
        if isinstance(old, str) and isinstance(new, str):
            return old, new
    return None


def unified_diff(before: str, after: str, *, from_label: str, to_label: str) -> str:
    """A unified diff of two main-content texts, bounded (see MAX_DIFF_*)."""
    old = before.splitlines()[:MAX_DIFF_INPUT_LINES]
    new = after.splitlines()[:MAX_DIFF_INPUT_LINES]
    out: list[str] = []
    size = 0
    for line in difflib.unified_diff(
        old, new, fromfile=from_label, tofile=to_label, n=CONTEXT_LINES, lineterm=""
    ):
        size += len(line) + 1
        if size > MAX_DIFF_CHARS:
            out.append("... (diff truncated)")
            break
        out.append(line)
    return "\n".join(out)


def revisit_document(
    previous: PreviousPage, *, depth: int, elapsed_ms: float, attempts: int
) -> dict[str, Any]:
    """The result of a page the server says is unchanged (304): the previous result,
    re-dated, so the recrawl's results are complete on their own."""
    document = dict(previous.document)
    for stale in ("change", "previous_fetched_at", "changes"):
        document.pop(stale, None)
    document.update(
        depth=depth,
        fetched_at=rfc3339(utcnow()),
        elapsed_ms=round(elapsed_ms, 2),
        attempts=attempts,
        not_modified=True,
    )
    return document


def annotate(
    page_json: str,
    change: Change,
    previous: PreviousPage | None,
    diff: str | None,
    *,
    with_diff: bool,
) -> str:
    """A result document with its change fields spliced in (the page is not re-encoded)."""
    fields: dict[str, Any] = {
        "change": change.value,
        "previous_fetched_at": previous.fetched_at if previous is not None else None,
    }
    if with_diff:
        fields["changes"] = diff
    extra = compact_json(fields)
    return page_json[:-1] + "," + extra[1:]


def unlinked_document(page_json: str) -> str:
    """A fetched page's result once the recrawl found no page linking to it: removed,
    with its reason; its content (fetched now) is kept."""
    document = json.loads(page_json)
    document.update(change=Change.REMOVED.value, removed_reason="unlinked")
    return compact_json(document)
