"""Sanity tests for the local test site (tests/site.py): every endpoint, over real HTTP."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urldefrag, urlencode, urljoin, urlsplit, urlunsplit

import pytest

import tests.site as site_module
from tests.site import (
    BINARY_BYTES,
    CLOSE_MID_BODY_LENGTH,
    CLOSE_MID_BODY_SENT,
    CP1251_TEXT,
    EXTERNAL_URL,
    FIXED_PAGE_HTML,
    GZIP_TEXT,
    JSON_DATA,
    LATIN1_TEXT,
    NOCHARSET_TEXT,
    PDF_BYTES,
    PDF_PATH,
    QUERY_PAGE,
    QUERY_PAGE_REORDERED,
    Response,
    Site,
    SiteHandler,
)

# The fixtures, until tests/conftest.py provides them for every module.
site = site_module.site
site_factory = site_module.site_factory

MakeSite = Callable[..., Site]
SITEMAP_NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}


def fetch(
    site: Site, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request on a fresh connection; redirects are not followed."""
    connection = http.client.HTTPConnection(site.host, site.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def fetch_text(site: Site, path: str) -> str:
    status, _, body = fetch(site, path)
    assert status == 200, path
    return body.decode()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href is not None:
            self.hrefs.append(href)


def hrefs(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def canonical(url: str) -> str:
    """Enough canonicalisation for this site: no fragment, no empty query, sorted query."""
    parts = urlsplit(urldefrag(url)[0])
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def crawl(site: Site, max_depth: int) -> set[str]:
    """Breadth-first crawl over real HTTP, staying on the site."""
    seen = {site.url("/")}
    level = [site.url("/")]
    for _ in range(max_depth):
        next_level = []
        for url in level:
            for href in hrefs(fetch_text(site, urlsplit(url).path + _query(url))):
                link = canonical(urljoin(url, href))
                if link.startswith(site.base_url + "/") and link not in seen:
                    seen.add(link)
                    next_level.append(link)
        level = next_level
    return seen


def _query(url: str) -> str:
    query = urlsplit(url).query
    return f"?{query}" if query else ""


# -- addresses and lifecycle -------------------------------------------------------------


def test_base_url_and_url(site: Site) -> None:
    assert site.base_url == f"http://127.0.0.1:{site.port}"
    assert site.url("/p/3") == f"{site.base_url}/p/3"
    assert site.url("p/3") == f"{site.base_url}/p/3"
    assert site.url() == f"{site.base_url}/"


def test_other_loopback_host_is_a_distinct_site(site_factory: MakeSite) -> None:
    first = site_factory()
    second = site_factory(host="127.0.0.2")
    assert second.base_url.startswith("http://127.0.0.2:")
    assert fetch(second, "/")[0] == 200
    assert second.count("/") == 1
    assert first.count("/") == 0
    assert second.requests[0].host == f"127.0.0.2:{second.port}"


def test_context_manager_starts_and_stops() -> None:
    with Site(pages=2) as running:
        assert fetch(running, "/p/1")[0] == 200
    with pytest.raises(ConnectionRefusedError):
        fetch(running, "/")


def test_stop_does_not_wait_for_idle_keep_alive_connections(site_factory: MakeSite) -> None:
    running = site_factory()
    connection = http.client.HTTPConnection(running.host, running.port, timeout=10)
    connection.request("GET", "/")
    connection.getresponse().read()
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 2
    connection.close()


def test_stop_interrupts_slow_responses(site_factory: MakeSite) -> None:
    running = site_factory()
    errors: list[BaseException] = []

    def slow_request() -> None:
        try:
            fetch(running, "/slow?delay=30")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    worker = threading.Thread(target=slow_request)
    worker.start()
    running.wait_for(lambda: running.in_flight == 1)
    started = time.monotonic()
    running.stop()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert time.monotonic() - started < 3


def test_keep_alive_reuses_one_connection(site: Site) -> None:
    connection = http.client.HTTPConnection(site.host, site.port, timeout=10)
    try:
        for path in ("/", "/p/0", "/p/1"):
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 200
            response.read()
    finally:
        connection.close()
    assert len({record.client_port for record in site.requests}) == 1


# -- the link graph ----------------------------------------------------------------------


def test_expected_urls_for_default_site(site: Site) -> None:
    root, page = site.url("/"), site.url
    assert site.expected_urls(0) == {root}
    assert site.expected_urls(1) == {root, page("/p/0")}
    assert site.expected_urls(2) == {root} | {page(f"/p/{i}") for i in range(4)}
    assert site.expected_urls(3) == {root} | {page(f"/p/{i}") for i in range(13)}
    everything = {root} | {page(f"/p/{i}") for i in range(30)}
    assert site.expected_urls(4) == everything
    assert site.expected_urls(50) == everything


def test_expected_urls_from_other_seeds(site: Site) -> None:
    children = {site.url(f"/p/{i}") for i in (1, 4, 5, 6)}
    assert site.expected_urls(1, seed="/p/1") == children
    assert site.expected_urls(1, seed=site.url("/p/1")) == children
    assert site.expected_urls(5, seed="/p/29") == {site.url("/p/29")}
    with pytest.raises(ValueError):
        site.expected_urls(-1)
    with pytest.raises(ValueError):
        site.expected_urls(1, seed="http://elsewhere.invalid/")


def test_expected_urls_with_other_shapes(site_factory: MakeSite) -> None:
    binary = site_factory(pages=7, fanout=2)
    assert binary.expected_urls(2) == {binary.url(p) for p in ("/", "/p/0", "/p/1", "/p/2")}
    assert len(binary.expected_urls(9)) == 8
    empty = site_factory(pages=0)
    assert empty.expected_urls(3) == {empty.url("/")}


def test_expected_urls_are_canonical(site_factory: MakeSite) -> None:
    urls = pytest.importorskip("service.urls")
    running = site_factory(query_dupes=True)
    for url in running.expected_urls(10):
        assert urls.canonicalize_url(url) == url


@pytest.mark.parametrize(
    "options",
    [{}, {"pages": 20, "fanout": 2}, {"query_dupes": True}, {"pages": 5, "fanout": 10}],
    ids=["default", "binary", "query-dupes", "wide"],
)
def test_expected_urls_match_a_real_crawl(site_factory: MakeSite, options: dict[str, int]) -> None:
    running = site_factory(**options)
    for depth in range(6):
        assert crawl(running, depth) == running.expected_urls(depth), depth


def test_page_content(site: Site) -> None:
    page = fetch_text(site, "/p/2")
    assert '<html lang="en">' in page
    assert "<title>Page 2</title>" in page
    assert '<meta name="description" content="Description of page 2">' in page
    assert "<h1>Page 2</h1>" in page
    assert "<p>This is page 2" in page
    assert hrefs(page) == ["/p/7", "/p/8", "/p/9", "/p/7#more", "#top"]
    assert hrefs(fetch_text(site, "/p/29")) == ["#top"]


def test_home_links_to_same_page_spellings(site: Site) -> None:
    home = fetch_text(site, "/")
    assert "<title>Home</title>" in home
    assert hrefs(home) == ["/p/0", "/p/0#top", "/p/0?"]


def test_pages_outside_the_graph_are_missing(site: Site) -> None:
    assert fetch(site, "/p/30")[0] == 404
    assert fetch(site, "/p/01")[0] == 404
    assert fetch(site, "/orphan/0")[0] == 404
    assert fetch(site, "/nowhere")[0] == 404


def test_query_dupes(site_factory: MakeSite) -> None:
    running = site_factory(query_dupes=True)
    home = hrefs(fetch_text(running, "/"))
    assert QUERY_PAGE in home
    assert QUERY_PAGE_REORDERED in home
    assert running.url(QUERY_PAGE) in running.expected_urls(1)
    assert "<title>Query page</title>" in fetch_text(running, QUERY_PAGE_REORDERED)


def test_extras_are_off_by_default(site: Site) -> None:
    for path in ("/", "/p/0", "/p/29"):
        links = hrefs(fetch_text(site, path))
        assert EXTERNAL_URL not in links
        assert PDF_PATH not in links


def test_extras_link_out_and_to_a_pdf(site_factory: MakeSite) -> None:
    running = site_factory(extras=True)
    for path in ("/", "/p/0", "/p/29"):
        links = hrefs(fetch_text(running, path))
        assert EXTERNAL_URL in links
        assert PDF_PATH in links
    assert running.url(PDF_PATH) not in running.expected_urls(10)


# -- robots.txt and sitemaps ---------------------------------------------------------------


def test_default_robots_points_to_sitemap(site: Site) -> None:
    status, headers, body = fetch(site, "/robots.txt")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert body.decode() == f"User-agent: *\nAllow: /\nSitemap: {site.base_url}/sitemap.xml\n"


def test_custom_robots(site_factory: MakeSite) -> None:
    text = "User-agent: *\nDisallow: /private\n"
    assert fetch(site_factory(robots=text), "/robots.txt")[2] == text.encode()
    assert fetch(site_factory(robots=None), "/robots.txt")[0] == 404
    assert fetch(site_factory(robots_status=500), "/robots.txt")[0] == 500
    assert fetch(site_factory(robots_status=404), "/robots.txt")[0] == 404


def sitemap_locs(body: bytes) -> set[str]:
    return {loc.text or "" for loc in ET.fromstring(body).iterfind(".//sm:loc", SITEMAP_NS)}


def test_sitemap_lists_pages_and_orphans(site_factory: MakeSite) -> None:
    running = site_factory(orphans=3)
    status, headers, body = fetch(running, "/sitemap.xml")
    assert status == 200
    assert "xml" in headers["Content-Type"]
    orphans = {running.url(f"/orphan/{i}") for i in range(3)}
    assert sitemap_locs(body) == running.sitemap_urls()
    assert orphans <= running.sitemap_urls()
    assert running.url("/p/0") in running.sitemap_urls()
    assert not orphans & running.expected_urls(50)
    assert "<title>Orphan 2</title>" in fetch_text(running, "/orphan/2")
    assert fetch(running, "/orphan/3")[0] == 404


def test_sitemap_index_and_gzipped_child(site_factory: MakeSite) -> None:
    running = site_factory(orphans=3)
    index = ET.fromstring(fetch(running, "/sitemap_index.xml")[2])
    children = [loc.text for loc in index.iterfind("sm:sitemap/sm:loc", SITEMAP_NS)]
    assert children == [running.url("/sitemap-a.xml"), running.url("/sitemap-b.xml.gz")]
    part_a = sitemap_locs(fetch(running, "/sitemap-a.xml")[2])
    status, headers, compressed = fetch(running, "/sitemap-b.xml.gz")
    assert status == 200
    assert headers["Content-Type"] in ("application/gzip", "application/x-gzip")
    assert "Content-Encoding" not in headers
    part_b = sitemap_locs(gzip.decompress(compressed))
    assert part_b == {running.url(f"/orphan/{i}") for i in range(3)}
    assert part_a | part_b == running.sitemap_urls()


# -- redirects, statuses, faults -----------------------------------------------------------


def test_redirect_chain(site: Site) -> None:
    status, headers, _ = fetch(site, "/redirect/2")
    assert (status, headers["Location"]) == (302, "/redirect/1")
    status, headers, _ = fetch(site, "/redirect/0")
    assert (status, headers["Location"]) == (302, "/p/0")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(site.url("/redirect/3"), timeout=10) as response:
        assert response.geturl() == site.url("/p/0")
    assert site.paths()[-5:] == ["/redirect/3", "/redirect/2", "/redirect/1", "/redirect/0", "/p/0"]


def test_redirect_loop_and_absolute(site: Site) -> None:
    status, headers, _ = fetch(site, "/redirect-loop")
    assert (status, headers["Location"]) == (302, "/redirect-loop")
    status, headers, _ = fetch(site, "/redirect-abs")
    assert (status, headers["Location"]) == (301, site.url("/p/0"))


@pytest.mark.parametrize("code", [200, 403, 404, 410, 500, 503])
def test_status(site: Site, code: int) -> None:
    status, _, body = fetch(site, f"/status/{code}")
    assert status == code
    assert f"Status {code}".encode() in body


def test_status_without_body(site: Site) -> None:
    status, _, body = fetch(site, "/status/204")
    assert (status, body) == (204, b"")


def test_flaky_fails_then_recovers_per_name(site: Site) -> None:
    path = "/flaky/a?fail=2&code=502&retry_after=3"
    first, second, third = (fetch(site, path) for _ in range(3))
    assert [first[0], second[0], third[0]] == [502, 502, 200]
    assert first[1]["Retry-After"] == "3"
    assert b"Flaky a" in third[2]
    status, headers, _ = fetch(site, "/flaky/b")
    assert status == 503
    assert "Retry-After" not in headers
    assert fetch(site, "/flaky/b")[0] == 200
    assert site.count("/flaky/a") == 3


def test_retry_after(site: Site) -> None:
    status, headers, _ = fetch(site, "/retry-after?seconds=2")
    assert (status, headers["Retry-After"]) == (429, "2")
    assert fetch(site, "/retry-after?seconds=2")[0] == 200


def test_bad_parameter_is_400(site: Site) -> None:
    assert fetch(site, "/slow?delay=soon")[0] == 400
    assert fetch(site, "/flaky/x?fail=many")[0] == 400


def test_slow(site: Site) -> None:
    started = time.monotonic()
    status, _, _ = fetch(site, "/slow?delay=0.2")
    assert status == 200
    assert time.monotonic() - started >= 0.2
    (record,) = site.requests_for("/slow")
    assert record.ended is not None
    assert record.ended - record.started >= 0.2


def test_trickle(site: Site) -> None:
    started = time.monotonic()
    status, headers, body = fetch(site, "/trickle?bytes=5&interval=0.05")
    assert (status, body) == (200, b"xxxxx")
    assert headers["Content-Length"] == "5"
    assert time.monotonic() - started >= 0.2


def test_close_mid_body(site: Site) -> None:
    connection = http.client.HTTPConnection(site.host, site.port, timeout=10)
    try:
        connection.request("GET", "/close-mid-body")
        response = connection.getresponse()
        assert response.headers["Content-Length"] == str(CLOSE_MID_BODY_LENGTH)
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            response.read()
        assert len(excinfo.value.partial) == CLOSE_MID_BODY_SENT
    finally:
        connection.close()


# -- content types and odd bodies ----------------------------------------------------------


def test_files(site: Site) -> None:
    status, headers, body = fetch(site, "/files/doc.pdf")
    assert (status, headers["Content-Type"], body) == (200, "application/pdf", PDF_BYTES)
    status, headers, body = fetch(site, "/files/data.json")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(body) == JSON_DATA


def test_latin1_declared_in_header(site: Site) -> None:
    _, headers, body = fetch(site, "/latin1")
    assert headers["Content-Type"] == "text/html; charset=ISO-8859-1"
    assert LATIN1_TEXT.encode("latin-1") in body
    assert b"charset" not in body
    assert LATIN1_TEXT in body.decode("latin-1")


def test_cp1251_declared_only_in_meta(site: Site) -> None:
    _, headers, body = fetch(site, "/cp1251")
    assert headers["Content-Type"] == "text/html"
    assert b'<meta charset="windows-1251">' in body
    assert CP1251_TEXT.encode("cp1251") in body
    assert CP1251_TEXT in body.decode("cp1251")


def test_nocharset_is_undeclared_utf8(site: Site) -> None:
    _, headers, body = fetch(site, "/nocharset")
    assert headers["Content-Type"] == "text/html"
    assert b"charset" not in body
    assert NOCHARSET_TEXT in body.decode("utf-8")


def test_fixed_page(site: Site) -> None:
    _, headers, body = fetch(site, "/fixed")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert body.decode() == FIXED_PAGE_HTML
    for marker in ("<h3>", "<ol>", "<pre><code>", "<th>", "<aside>", "og:title", "canonical"):
        assert marker in FIXED_PAGE_HTML


def test_empty_and_binary(site: Site) -> None:
    status, headers, body = fetch(site, "/empty")
    assert (status, headers["Content-Type"], body) == (200, "text/html; charset=utf-8", b"")
    status, headers, body = fetch(site, "/binary")
    assert (status, body) == (200, BINARY_BYTES)
    assert headers["Content-Type"].startswith("text/html")
    assert fetch(site, "/binary")[2] == body


def test_gzip_encoded_page(site: Site) -> None:
    _, headers, body = fetch(site, "/gzip")
    assert headers["Content-Encoding"] == "gzip"
    assert GZIP_TEXT in gzip.decompress(body).decode()


def test_big_links_and_deep(site: Site) -> None:
    big = fetch_text(site, "/big-links?n=100000")
    assert big.count("<a href=") == 100_000
    assert '<a href="/big/99999">' in big
    assert fetch(site, "/big/99999")[0] == 200
    deep = fetch_text(site, "/deep?n=100000")
    assert deep.count("<div>") == deep.count("</div>") == 100_000


def test_head_has_headers_but_no_body(site: Site) -> None:
    get_body = fetch(site, "/p/0")[2]
    status, headers, body = fetch(site, "/p/0", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(len(get_body))
    assert site.requests[-1].method == "HEAD"


# -- custom routes -------------------------------------------------------------------------


def test_add_page(site: Site) -> None:
    site.add_page("/custom", "<p>hi</p>", headers={"X-Test": "1"})
    site.add_page("/teapot", b"short and stout", status=418, content_type="text/plain")
    status, headers, body = fetch(site, "/custom?ignored=1")
    assert (status, headers["X-Test"], body) == (200, "1", b"<p>hi</p>")
    status, headers, body = fetch(site, "/teapot")
    assert (status, headers["Content-Type"], body) == (418, "text/plain", b"short and stout")


def test_route_overrides_builtin(site: Site) -> None:
    def echo(handler: SiteHandler) -> Response:
        return Response(body=handler.params.get("say", "").encode(), content_type="text/plain")

    site.route("/p/0", echo)
    assert fetch(site, "/p/0?say=hello")[2] == b"hello"


def test_route_may_write_its_own_response(site: Site) -> None:
    def raw(handler: SiteHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    site.route("/raw", raw)
    assert fetch(site, "/raw")[:3:2] == (200, b"ok")
    assert site.requests[-1].status == 200


# -- request log and concurrency -----------------------------------------------------------


def test_request_log(site: Site) -> None:
    fetch(site, "/p/1?x=1", headers={"User-Agent": "TrawlTest/1.0"})
    fetch(site, "/p/1")
    fetch(site, "/nowhere")
    assert site.paths() == ["/p/1?x=1", "/p/1", "/nowhere"]
    assert site.count("/p/1") == 2
    assert site.count("/p/1?x=1") == 1
    first = site.requests[0]
    assert first.method == "GET"
    assert first.user_agent == "TrawlTest/1.0"
    assert first.headers["user-agent"] == "TrawlTest/1.0"
    assert first.host == f"127.0.0.1:{site.port}"
    assert first.status == 200
    assert site.requests[-1].status == 404
    assert all(r.ended is not None and r.started <= r.ended for r in site.requests)


def test_reset(site: Site) -> None:
    fetch(site, "/flaky/r")
    site.reset()
    assert site.requests == []
    assert site.max_concurrent == 0
    assert fetch(site, "/flaky/r")[0] == 503


def test_sequential_requests_are_not_concurrent(site: Site) -> None:
    for path in ("/", "/p/0", "/p/1"):
        fetch(site, path)
    assert site.max_concurrent == 1
    assert site.in_flight == 0


def test_max_concurrent_with_parallel_slow_requests(site: Site) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: fetch(site, "/slow?delay=0.5"), range(4)))
    assert [status for status, _, _ in results] == [200] * 4
    assert site.max_concurrent == 4
    records = site.requests_for("/slow")
    assert max(r.started for r in records) < min(r.ended or 0.0 for r in records)
    assert site.in_flight == 0


def test_in_flight_and_max_concurrent_are_exact(site: Site) -> None:
    release = threading.Event()

    def blocked(handler: SiteHandler) -> Response:
        release.wait(5)
        return Response(body=b"done")

    site.route("/blocked", blocked)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(fetch, site, "/blocked") for _ in range(3)]
        site.wait_for(lambda: site.in_flight == 3)
        release.set()
        assert [future.result()[2] for future in futures] == [b"done"] * 3
    site.wait_for(lambda: site.in_flight == 0)
    assert site.max_concurrent == 3


def test_page_delay_applies_to_every_page(site_factory: MakeSite) -> None:
    running = site_factory(page_delay=0.3)
    started = time.monotonic()
    fetch(running, "/p/0")
    assert time.monotonic() - started >= 0.3
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda i: fetch(running, f"/p/{i}"), range(1, 4)))
    assert running.max_concurrent == 3


def test_wait_for(site: Site) -> None:
    assert site.wait_for(lambda: 42) == 42
    with pytest.raises(TimeoutError):
        site.wait_for(lambda: False, timeout=0.05)


async def test_wait_for_async(site: Site) -> None:
    task = asyncio.create_task(asyncio.to_thread(fetch, site, "/p/0"))
    await site.wait_for_async(lambda: site.count("/p/0") == 1 and site.in_flight == 0)
    assert (await task)[0] == 200
    with pytest.raises(TimeoutError):
        await site.wait_for_async(lambda: False, timeout=0.05)
