"""robots.txt rules (RFC 9309) for one user agent, matched in bounded time per URL.

protego matched a 500 KB robots.txt of wildcard rules with one regular expression per
rule: ~0.1-0.5 s per URL on the event loop, and 1 s to parse. Here the file is read
once into three shapes, each cheap to ask:

- plain prefixes (most rules): a dict, probed once per distinct rule length;
- exact paths (`/page$`): a set;
- wildcard rules: literal segments found left to right with `str.find` (a `*` glob
  needs no backtracking), longest rule first, stopping once nothing longer can win.
  Their total segment count is capped, so the worst URL costs a few milliseconds.

Only the groups that apply to our product token are kept (or `*`'s when none does).
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

# Google reads the first 500 KiB; RFC 9309 says at least that much.
MAX_ROBOTS_BYTES = 500 * 1024
# Work bound for wildcard rules: about 2-5 ms per URL in the worst case.
MAX_WILDCARD_SEGMENTS = 20_000

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def normalise(path: str) -> str:
    """Percent-encoding as RFC 9309 compares it: unreserved octets decoded, the rest
    upper-case, non-ASCII encoded as UTF-8."""
    if "%" in path:

        def unescape(match: re.Match[str]) -> str:
            char = chr(int(match.group(1), 16))
            return char if char in _UNRESERVED else "%" + match.group(1).upper()

        path = _ESCAPE.sub(unescape, path)
    if not path.isascii():
        path = "".join(
            c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode("utf-8", "replace"))
            for c in path
        )
    return path


@dataclass(frozen=True, slots=True)
class _Wildcard:
    priority: int
    allow: bool
    segments: tuple[str, ...]  # literal pieces between the `*`s; the first is a prefix
    anchored: bool  # ended in `$`: the last segment must end the path


@dataclass(slots=True)
class _Group:
    agents: list[str] = field(default_factory=list)
    rules: list[tuple[bool, str]] = field(default_factory=list)
    crawl_delay: float | None = None


@dataclass(slots=True)
class RobotsRules:
    """The rules one agent obeys; `allowed(url)` is the question asked per URL."""

    prefixes: dict[str, tuple[int, bool]] = field(default_factory=dict)
    prefix_lengths: tuple[int, ...] = ()
    exact: dict[str, bool] = field(default_factory=dict)
    wildcards: tuple[_Wildcard, ...] = ()
    crawl_delay: float | None = None
    sitemaps: tuple[str, ...] = ()
    dropped_rules: int = 0

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        path = parts.path or "/"
        if path == "/robots.txt":
            return True
        if parts.query:
            path += "?" + parts.query
        path = normalise(path)
        best, allow = -1, True
        for length in self.prefix_lengths:
            if length > len(path):
                continue
            hit = self.prefixes.get(path[:length])
            if hit is not None and (hit[0] > best or (hit[0] == best and hit[1])):
                best, allow = hit
        exact = self.exact.get(path)
        if exact is not None:
            priority = len(path) + 1
            if priority > best or (priority == best and exact):
                best, allow = priority, exact
        for rule in self.wildcards:  # longest first, allow first among equals
            if rule.priority < best or (rule.priority == best and (allow or not rule.allow)):
                break  # nothing from here on can beat what matched
            if _glob(rule, path):
                best, allow = rule.priority, rule.allow
                break
        return allow


def _glob(rule: _Wildcard, path: str) -> bool:
    first, *middle = rule.segments
    if not path.startswith(first):
        return False
    position = len(first)
    last = middle.pop() if (rule.anchored and middle) else None
    for segment in middle:
        found = path.find(segment, position)
        if found < 0:
            return False
        position = found + len(segment)
    if last is not None:
        return path.endswith(last) and len(path) - len(last) >= position
    return True


def _token(value: str) -> str:
    return value.strip().split("/", 1)[0].split(" ", 1)[0].lower()


def parse_robots(text: str, agent: str) -> RobotsRules:
    """The rules in `text` that apply to the product token `agent`."""
    groups: list[_Group] = []
    sitemaps: list[str] = []
    current: _Group | None = None
    in_agents = False
    for raw in text[:MAX_ROBOTS_BYTES].splitlines():
        line = raw.split("#", 1)[0]
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if key in ("user-agent", "useragent", "user agent"):
            if current is None or not in_agents:
                current = _Group()
                groups.append(current)
            current.agents.append(_token(value))
            in_agents = True
            continue
        if key == "sitemap":
            if value:
                sitemaps.append(value)
            continue
        in_agents = False
        if current is None:
            continue
        if key in ("allow", "disallow") and value:
            current.rules.append((key == "allow", value))
        elif key == "crawl-delay" and current.crawl_delay is None:
            with contextlib.suppress(ValueError):
                current.crawl_delay = max(0.0, float(value))
    token = agent.lower()
    chosen = [g for g in groups if token in g.agents] or [g for g in groups if "*" in g.agents]
    rules = _compile([rule for group in chosen for rule in group.rules])
    delays = [g.crawl_delay for g in chosen if g.crawl_delay is not None]
    rules.crawl_delay = delays[0] if delays else None
    rules.sitemaps = tuple(dict.fromkeys(sitemaps))
    if rules.dropped_rules:
        logger.info("robots.txt: %d wildcard rules past the work bound", rules.dropped_rules)
    return rules


def _compile(raw_rules: list[tuple[bool, str]]) -> RobotsRules:
    rules = RobotsRules()
    wildcards: list[_Wildcard] = []
    budget = MAX_WILDCARD_SEGMENTS
    for allow, raw in raw_rules:
        pattern = normalise(re.sub(r"\*+", "*", raw))
        priority = len(pattern)
        anchored = pattern.endswith("$")
        body = pattern[:-1] if anchored else pattern
        if "$" in body:
            body = body.replace("$", "%24")  # a `$` inside a pattern is literal
        if not anchored:
            body = body.rstrip("*")  # a trailing `*` adds nothing to a prefix match
        if "*" not in body:
            if anchored:
                if body not in rules.exact or allow:
                    rules.exact[body] = allow
            else:
                known = rules.prefixes.get(body)
                if known is None or priority > known[0] or (priority == known[0] and allow):
                    rules.prefixes[body] = (priority, allow)
            continue
        segments = tuple(body.split("*"))
        if len(segments) > budget:
            rules.dropped_rules += 1
            continue
        budget -= len(segments)
        wildcards.append(_Wildcard(priority, allow, segments, anchored))
    wildcards.sort(key=lambda rule: (-rule.priority, not rule.allow))
    rules.wildcards = tuple(wildcards)
    rules.prefix_lengths = tuple(sorted({len(p) for p in rules.prefixes}, reverse=True))
    return rules
