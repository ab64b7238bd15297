"""robots.txt rules: RFC 9309 semantics, and bounded work for hostile files."""

from __future__ import annotations

import time

import pytest

from service.crawl.robotsrules import parse_robots
from tests.faults.hostile_content import wildcard_robots

BASE = "http://example.com"

RFC_EXAMPLE = """
User-agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot
Crawl-delay: 2.5

Sitemap: https://example.com/sitemap.xml
"""


@pytest.mark.parametrize(
    ("agent", "path", "allowed"),
    [
        ("foobot", "/example/page.html", True),
        ("foobot", "/example/allowed.gif", True),
        ("foobot", "/other", False),
        ("foobot", "/robots.txt", True),
        ("barbot", "/example/page.html", False),
        ("bazbot", "/example/page.html", False),
        ("bazbot", "/example/other.html", True),
        ("trawl", "/example/x", False),
        ("trawl", "/a/b.gif", False),
        ("trawl", "/a/b.gif?x", True),
        ("trawl", "/publications/", True),
        ("trawl", "/", True),
        ("quxbot", "/example/x", True),  # its own group has no rules
    ],
)
def test_rfc_example(agent: str, path: str, allowed: bool) -> None:
    assert parse_robots(RFC_EXAMPLE, agent).allowed(BASE + path) is allowed


def test_longest_match_wins_and_allow_wins_ties() -> None:
    rules = parse_robots("User-agent: *\nDisallow: /p\nAllow: /p\nDisallow: /p/q*\n", "x")
    assert rules.allowed(BASE + "/p/r")
    assert not rules.allowed(BASE + "/p/q/1")
    rules = parse_robots("User-agent: *\nAllow: /*.html$\nDisallow: /\n", "x")
    assert rules.allowed(BASE + "/a/b.html") and not rules.allowed(BASE + "/a/b.htm")
    assert not rules.allowed(BASE + "/a.html?x=1")


def test_percent_encoding_is_normalised_both_sides() -> None:
    rules = parse_robots("User-agent: *\nDisallow: /%7Ejoe/\nDisallow: /caf\u00e9\n", "x")
    assert not rules.allowed(BASE + "/~joe/index.html")
    assert not rules.allowed(BASE + "/caf%C3%A9/menu")
    assert not rules.allowed(BASE + "/caf%c3%a9")


def test_crawl_delay_and_sitemaps() -> None:
    rules = parse_robots(RFC_EXAMPLE, "quxbot")
    assert rules.crawl_delay == 2.5
    assert rules.sitemaps == ("https://example.com/sitemap.xml",)


def test_a_hostile_file_costs_milliseconds_per_url() -> None:
    text = wildcard_robots().decode()
    started = time.perf_counter()
    rules = parse_robots(text, "trawl")
    parse_seconds = time.perf_counter() - started
    urls = [f"{BASE}/some/page/{i}/abc.html" for i in range(50)]
    started = time.perf_counter()
    for url in urls:
        assert rules.allowed(url)
    per_url = (time.perf_counter() - started) / len(urls)
    print(f"hostile robots.txt: parse {parse_seconds * 1000:.0f} ms, {per_url * 1000:.2f} ms/URL")
    assert per_url < 0.02  # protego: 0.04-0.5 s per URL, 0.4-1 s to parse
    assert not rules.allowed(f"{BASE}/a/b/c/d17/e")
