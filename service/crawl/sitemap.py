"""Sitemap discovery: robots.txt Sitemap lines and /sitemap.xml, indexes and gzip."""

from __future__ import annotations

import logging
import zlib
from collections import deque

from lxml import etree

from service.crawl.fetcher import Fetcher
from service.urls import try_canonicalize

logger = logging.getLogger(__name__)

MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit, uncompressed
MAX_SITEMAP_FILES = 50
_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(data: bytes, limit: int = MAX_SITEMAP_BYTES) -> bytes:
    """Decompress gzip with a bound on the output (a sitemap.gz can be a bomb too)."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = decoder.decompress(data, limit)
    if decoder.unconsumed_tail:
        raise ValueError("sitemap larger than the 50 MB limit")
    return out


def parse_sitemap(data: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) from a urlset or sitemapindex document."""
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(data)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError:
        return [], []
    if root is None:
        return [], []
    pages: list[str] = []
    children: list[str] = []
    is_index = etree.QName(root).localname == "sitemapindex"
    for loc in root.iter("{*}loc"):
        text = (loc.text or "").strip()
        if text:
            (children if is_index else pages).append(text)
    return pages, children


async def discover(fetcher: Fetcher, origin: str, listed: tuple[str, ...], limit: int) -> list[str]:
    """Canonical page URLs from the origin's sitemaps, breadth-first, at most `limit`."""
    queue: deque[str] = deque(listed or (origin + "/sitemap.xml",))
    if listed and origin + "/sitemap.xml" not in listed:
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
            pages, children = parse_sitemap(result.body)
        except ValueError as exc:
            logger.info("skipping sitemap %s: %s", url, exc)
            continue
        for page in pages:
            canonical = try_canonicalize(page)
            if canonical is not None:
                found[canonical] = None
        queue.extend(child for child in children if child not in seen_maps)
    return list(found)[:limit]
