"""A job's URL patterns (include/exclude), matched with RE2: linear in the URL's length.

Python's `re` backtracks: `^http://h/(a+)+b` against a link of 40 a's runs for minutes,
and one such job on the event loop stops the whole service. RE2 guarantees linear-time
matching, at the price of what it cannot express (backreferences, lookaround); those
are refused at submit time with a message that says so. Patterns are compiled once per
process (an LRU keyed by the pattern) and carried around as plain strings, so a
`UrlPatterns` pickles into the parser processes where links are filtered.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import re2

__all__ = [
    "MAX_PATTERNS",
    "MAX_PATTERN_LENGTH",
    "PatternError",
    "UrlPatterns",
    "compile_pattern",
]

MAX_PATTERN_LENGTH = 1000
MAX_PATTERNS = 100
# RE2's own default is 8 MiB per pattern; a 1000-character pattern never needs more
# than this, and a bounded program keeps 100 of them small.
_MAX_PROGRAM_BYTES = 2 << 20


class PatternError(ValueError):
    """The pattern is not a regular expression RE2 can run."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    options.max_mem = _MAX_PROGRAM_BYTES
    return options


_OPTIONS = _options()

# What RE2's parser says (as bytes) for the constructs it deliberately leaves out.
_UNSUPPORTED = (
    (b"invalid perl operator: (?=", "lookahead (?=...)"),
    (b"invalid perl operator: (?!", "negative lookahead (?!...)"),
    (b"invalid perl operator: (?<=", "lookbehind (?<=...)"),
    (b"invalid perl operator: (?<!", "negative lookbehind (?<!...)"),
    (b"invalid perl operator: (?>", "atomic groups (?>...)"),
    (b"invalid perl operator: (?#", "comments (?#...)"),
)


def _explain(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else b""
    text = raw if isinstance(raw, bytes) else str(raw).encode()
    for marker, construct in _UNSUPPORTED:
        if marker in text:
            return (
                f"{construct} is not supported: patterns run on RE2 (linear-time matching), "
                "which has no lookaround or backreferences"
            )
    if b"invalid escape sequence: \\" in text and any(
        text.rstrip().endswith(b"\\" + bytes([d])) for d in b"123456789"
    ):
        return (
            "backreferences (\\1 ...) are not supported: patterns run on RE2 "
            "(linear-time matching), which has no lookaround or backreferences"
        )
    if b"pattern too large" in text:
        return "regular expression is too large (RE2 program over its memory budget)"
    detail = text.decode("utf-8", "replace").strip() or type(exc).__name__
    return f"invalid regular expression (RE2 syntax): {detail}"


@functools.lru_cache(maxsize=2048)
def compile_pattern(pattern: str) -> Any:
    """The compiled RE2 program for `pattern`; PatternError if RE2 cannot run it."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise PatternError(_explain(exc)) from None
    except (TypeError, ValueError) as exc:  # e.g. an unpaired surrogate
        raise PatternError(f"invalid regular expression: {exc}") from None


@dataclass(frozen=True, slots=True)
class UrlPatterns:
    """include/exclude as strings; matching compiles them once per process."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def allows(self, url: str) -> bool:
        """Matches some include (if any are given) and no exclude."""
        if self.include and not any(compile_pattern(p).search(url) for p in self.include):
            return False
        return not any(compile_pattern(p).search(url) for p in self.exclude)

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)
