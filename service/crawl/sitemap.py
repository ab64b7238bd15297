"""Sitemap discovery: robots.txt Sitemap lines and /sitemap.xml, indexes and gzip.

A sitemap is crawled bytes that can cost: a 2 MB gzip file of 800,000 `<loc>`s froze
the event loop for 13.6 s (decompression, XML parse, canonicalisation). So a file is
parsed in the parser processes (`parse_sitemap`, under their deadline), streamed with
iterparse and cut at `MAX_SITEMAP_URLS` locs, decompressed to at most
`MAX_SITEMAP_BYTES`; only http(s) locs count, child sitemaps must be on the same
origin, and at most `MAX_SITEMAP_FILES` files are read per origin.
"""

from __future__ import annotations

import asyncio
import io
import logging
import zlib
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lxml import etree

from service.crawl.fetcher import Fetcher
from service.urls import MAX_URL_LENGTH, try_canonicalize

if TYPE_CHECKING:
    from service.crawl.linkfilter import LinkFilter
    from service.crawl.parsepool import ParsePool

logger = logging.getLogger(__name__)

MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit, uncompressed
MAX_SITEMAP_URLS = 50_000  # the sitemaps.org limit of <loc>s per file
MAX_SITEMAP_FILES = 20  # per origin and job, index files included
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True, kw_only=True)
class SitemapFile:
    """What one sitemap file yielded."""

    pages: tuple[str, ...]  # canonical, http(s), followed by the job (when a filter is given)
    children: tuple[str, ...]  # same-origin sitemaps an index points to
    locs: int  # <loc>s read (at most MAX_SITEMAP_URLS)


def _gunzip(data: bytes, limit: int = MAX_SITEMAP_BYTES) -> bytes:
    """Decompress gzip with a bound on the output (a sitemap.gz can be a bomb too)."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = decoder.decompress(data, limit)
    if decoder.unconsumed_tail:
        raise ValueError("sitemap larger than the 50 MB limit")
    return out


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def parse_sitemap(
    data: bytes,
    origin: str = "",
    max_urls: int = MAX_SITEMAP_URLS,
    links: LinkFilter | None = None,
) -> SitemapFile:
    """Pages and child sitemaps of a urlset or sitemapindex (pure: runs in a parser process).

    ValueError for a body that decompresses past the limit.
    """
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(data)
    max_urls = min(max_urls, MAX_SITEMAP_URLS)
    origin = origin.lower()
    pages: dict[str, None] = {}
    children: dict[str, None] = {}
    is_index: bool | None = None
    locs = 0
    events = etree.iterparse(
        io.BytesIO(data),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        recover=True,
    )
    try:
        for event, element in events:
            if event == "start":
                if is_index is None:
                    is_index = etree.QName(element).localname == "sitemapindex"
                continue
            tag = element.tag
            if isinstance(tag, str) and (tag == "loc" or tag.endswith("}loc")):
                locs += 1
                url = _accepted(element.text, origin if is_index else "", links)
                if url is not None:
                    (children if is_index else pages)[url] = None
                if locs >= MAX_SITEMAP_URLS or len(pages) >= max_urls:
                    break
            element.clear()  # keep memory flat: nothing already read is needed again
    except etree.XMLSyntaxError:
        pass  # keep what was read before the damage
    return SitemapFile(pages=tuple(pages), children=tuple(children), locs=locs)


def _accepted(text: str | None, same_origin: str, links: LinkFilter | None) -> str | None:
    value = (text or "").strip()
    if not value or len(value) > MAX_URL_LENGTH:
        return None
    if not value[:8].lower().startswith(("http://", "https://")):
        return None
    canonical = try_canonicalize(value)
    if canonical is None:
        return None
    if same_origin:
        return canonical if _origin(canonical) == same_origin else None
    if links is not None and not links.follows(canonical):
        return None
    return canonical


async def discover(
    fetcher: Fetcher,
    origin: str,
    listed: tuple[str, ...],
    limit: int,
    *,
    pool: ParsePool | None = None,
    links: LinkFilter | None = None,
) -> list[str]:
    """Canonical page URLs from the origin's sitemaps, breadth-first, at most `limit`.

    With `pool`, each file is parsed in a parser process; with `links`, only URLs the
    job follows are returned.
    """
    from service.crawl.parsepool import ParserCrashed, ParseTimeout

    start = [url for url in listed if url.lower().startswith(("http://", "https://"))]
    queue: deque[str] = deque(start or (origin + "/sitemap.xml",))
    if start and origin + "/sitemap.xml" not in start:
        queue.append(origin + "/sitemap.xml")
    seen_maps: set[str] = set()
    found: dict[str, None] = {}
    while queue and len(seen_maps) < MAX_SITEMAP_FILES and len(found) < limit:
        url = queue.popleft()
        if url in seen_maps:
            continue
        seen_maps.add(url)
        result = await fetcher.fetch(url)
        if result.error is not None or (result.status_code or 0) >= 400:
            continue
        try:
            if pool is not None:
                parsed = await pool.sitemap(result.body, origin, limit - len(found), links)
            else:  # no parser processes (the web role): a thread, so the loop keeps going
                parsed = await asyncio.to_thread(
                    parse_sitemap, result.body, origin, limit - len(found), links
                )
        except (ValueError, ParseTimeout, ParserCrashed) as exc:
            logger.info("skipping sitemap %s: %s", url, exc)
            continue
        for page in parsed.pages:
            found[page] = None
        queue.extend(child for child in parsed.children if child not in seen_maps)
    return list(found)[:limit]
