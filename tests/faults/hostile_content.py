"""Hostile *content* for the crawl tests: pages, sitemaps and robots.txt that cost.

Routes register on the shared HostileServer (tests/faults/hostile_server.py); per-test
knobs are attributes set on the server instance (`server.robots_txt = ...`).
"""

from __future__ import annotations

import asyncio
import functools
import gzip

from tests.faults.hostile_server import HostileServer, Request, route, send

# 40 a's and no b: `^.../(a+)+b` backtracks for minutes on this under Python's `re`.
CATASTROPHIC_PATH = "/" + "a" * 40 + "!"
CATASTROPHIC_PATTERN = r"^http://127\.0\.0\.1:\d+/(a+)+b"


def _page(*links: str, title: str = "page") -> bytes:
    anchors = "".join(f'<a href="{link}">{link[:40]}</a>' for link in links)
    head = f"<!doctype html><html><head><title>{title}</title></head>"
    return f"{head}<body><p>{title}</p>{anchors}</body></html>".encode()


@route("/re2/seed")
async def _re2_seed(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, _page(CATASTROPHIC_PATH, "/ok", "/re2/b", title="seed"))
    return True


@route("/re2/b")
async def _re2_b(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, _page(title="b"))
    return True


@functools.cache
def slow_parse_body() -> bytes:
    """4.4 MB of tiny nested elements: 10-40 s of BeautifulSoup plus a selector or
    markdown (text alone takes the lxml walk: about a second)."""
    return b"<html><body>" + b"<p><b><i>x</i></b></p>" * 200_000 + b"</body></html>"


@route("/parse/seed")
async def _parse_seed(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, _page("/parse/slow", "/parse/fine", title="seed"))
    return True


@route("/parse/slow")
async def _parse_slow(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, slow_parse_body())
    return True


@route("/parse/fine")
async def _parse_fine(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, _page(title="fine"))
    return True


@route("/robots.txt")
async def _robots(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    body: bytes | None = getattr(server, "robots_txt", None)
    if body is None:
        await send(writer, 404, b"no robots.txt")
    else:
        await send(writer, 200, body, content_type="text/plain")
    return True


@route("/sitemap.xml")
async def _sitemap(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    body: bytes | None = getattr(server, "sitemap_xml", None)
    if body is None:
        await send(writer, 404, b"no sitemap")
    else:
        await send(writer, 200, body, content_type="application/xml")
    return True


def huge_sitemap_gz(base: str, count: int = 800_000) -> bytes:
    """A gzip sitemap of `count` <loc>s under `base` (~2 MB compressed, ~40 MB raw)."""
    prefix = f"<url><loc>{base}/ok?i=".encode()
    locs = b"".join(b"%s%d</loc></url>" % (prefix, i) for i in range(count))
    xml = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + locs + b"</urlset>"
    )
    return gzip.compress(xml, 9)


@functools.cache
def wildcard_robots(rules: int = 28_000) -> bytes:
    """~500 KB of wildcard rules: each robots check cost ~0.1-0.5 s with protego."""
    lines = [b"User-agent: *"]
    lines += [b"Disallow: /*a*b*c*d%d*e$" % i for i in range(rules)]
    return b"\n".join(lines)[: 500 * 1024] + b"\n"


@route("/pages/page")
async def _plain(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    n, last = int(req.query.get("n", "0")), int(req.query.get("last", "5"))
    links = [f"/pages/page?n={n + 1}&last={last}"] if n < last else []
    await send(writer, 200, _page(*links, title=f"page {n}"))
    return True


# -- non-HTML links (issue 9 item 6) -------------------------------------------------------

NON_HTML_SEED_LINKS = (
    "/_downloads/9a2b/tzinfo_examples.py",  # as the Python manual links its examples
    "/files/report.pdf",
    "/api/data",  # no extension: only its Content-Type can tell
    "/page2.html",
)


@route("/nonhtml/seed")
async def _nonhtml_seed(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, _page(*NON_HTML_SEED_LINKS, title="seed"))
    return True


@route("/_downloads/9a2b/tzinfo_examples.py")
async def _python_file(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, b"import datetime\n" * 100, content_type="text/x-python")
    return True


@route("/files/report.pdf")
async def _pdf(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, b"%PDF-1.4\n" + bytes(5000), content_type="application/pdf")
    return True


@route("/api/data")
async def _json(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, b'{"a": 1}' * 1000, content_type="application/json")
    return True


@route("/page2.html")
async def _page2(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, _page(title="page 2"))
    return True
