"""A real local HTTP site for the test suite: a generated link graph plus fault endpoints.

`Site` runs a threaded HTTP/1.1 (keep-alive) server on a loopback address in a background
thread, independent of any asyncio loop, and records every request it serves.

Endpoints (all deterministic):

    /                        home page, links to /p/0 (plus same-page spellings, see below)
    /p/{i}                   page i of a K-ary tree in BFS order: links to i*K+j+1, j < K
    /q?a=1&b=2               leaf page, linked from / in both query orders (query_dupes=True)
    /orphan/{i}              leaf pages listed only in the sitemaps (i < orphans)
    /robots.txt              `robots` text ("{base}" is replaced), `robots_status`, or 404
    /sitemap.xml             / and /p/0../p/4, plus the orphans
    /sitemap_index.xml       points to /sitemap-a.xml (graph part) and /sitemap-b.xml.gz
    /redirect/{n}            302 -> /redirect/{n-1}; /redirect/0 -> /p/0
    /redirect-loop           302 -> itself
    /redirect-abs            301 -> absolute {base}/p/0
    /status/{code}           that status with a small HTML body (none for 204/304)
    /flaky/{name}            ?fail=1&code=503[&retry_after=S]: first `fail` requests fail
    /retry-after             ?seconds=1&fail=1&name=: first `fail` requests get 429 + Retry-After
    /slow                    ?delay=1.0 seconds before answering
    /trickle                 ?bytes=10&interval=0.1: the body one byte at a time
    /files/doc.pdf           application/pdf;  /files/data.json: application/json
    /latin1, /cp1251, /nocharset   charset declared in the header / only in <meta> / nowhere
    /fixed                   FIXED_PAGE_HTML
    /empty, /binary, /close-mid-body, /gzip
    /big-links?n=1000        n links to /big/{i} (leaf pages);  /deep?n=1000: nested divs

Custom routes (`Site.route`, `Site.add_page`) take precedence over all of these.
"""

from __future__ import annotations

import contextlib
import gzip
import html
import json
import logging
import random
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape as xml_escape

import pytest

from tests.waiting import eventually

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ROBOTS = "User-agent: *\nAllow: /\nSitemap: {base}/sitemap.xml\n"
EXTERNAL_URL = "http://external.invalid/x"
PDF_PATH = "/files/doc.pdf"
QUERY_PAGE = "/q?a=1&b=2"
QUERY_PAGE_REORDERED = "/q?b=2&a=1"
SITEMAP_GRAPH_PAGES = 5  # /sitemap.xml lists / and the first this-many graph pages

LATIN1_TEXT = "café"
CP1251_TEXT = "Привет мир"
NOCHARSET_TEXT = "Grüße aus Köln, naïve café — 日本語のテキスト"
GZIP_TEXT = "This page was gzip-compressed."
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
JSON_DATA: dict[str, Any] = {"name": "trawl", "items": [1, 2, 3]}
BINARY_BYTES = random.Random(20240101).randbytes(4096)
CLOSE_MID_BODY_LENGTH = 10_000  # announced Content-Length
CLOSE_MID_BODY_SENT = 100  # bytes actually sent before the connection is closed

FIXED_PAGE_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Fixed page</title>
<meta name="description" content="A fixed page for comparing output formats">
<meta property="og:title" content="Fixed page (Open Graph)">
<link rel="canonical" href="/fixed">
<style>.should-not-appear-css { display: none; }</style>
<script>window.trackingId = "should-not-appear-js";</script>
</head>
<body>
<header><nav><a href="/">Home</a> | <a href="/p/0">All pages</a></nav></header>
<main>
<article>
<h1>Main heading</h1>
<p>An introduction with <em>emphasis</em>, <strong>strong text</strong> and \
<code>inline_code()</code>, plus <a href="/p/1">a link to page 1</a>.</p>
<h2>Lists</h2>
<ul>
<li>First bullet</li>
<li>Second bullet</li>
</ul>
<ol>
<li>First step</li>
<li>Second step</li>
</ol>
<h3>Code block</h3>
<pre><code>def hello():
    return "world"
</code></pre>
<h2>Table</h2>
<table>
<thead><tr><th>Name</th><th>Value</th></tr></thead>
<tbody>
<tr><td>alpha</td><td>1</td></tr>
<tr><td>beta</td><td>2</td></tr>
</tbody>
</table>
</article>
<aside>Related links sidebar</aside>
</main>
<footer>Footer text &copy; Trawl tests</footer>
</body>
</html>
"""

HTML = "text/html; charset=utf-8"
_BODYLESS = frozenset({204, 304})


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A complete response; Content-Length is added unless given."""

    status: int = 200
    body: bytes = b""
    content_type: str = HTML
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class RequestRecord:
    """One request as the site saw it; `ended` and `status` are filled in as it completes.

    `ended` is when the response started going out (for Response-based endpoints) or when
    the handler returned (streaming endpoints and routes that write their own response).
    """

    method: str
    path: str  # including the query string
    headers: dict[str, str]  # names lower-cased
    host: str | None
    client_port: int  # equal ports on two records mean one reused connection
    started: float  # time.monotonic()
    ended: float | None = None
    status: int | None = None

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("user-agent")


class BadParam(ValueError):
    """A query parameter could not be parsed; answered with 400."""


class SiteHandler(BaseHTTPRequestHandler):
    # Headers and body go out in separate sends; with Nagle on, each response would wait
    # for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    """Request handler; custom routes receive it (use `params`, `route_path`, `send`)."""

    protocol_version = "HTTP/1.1"
    server: _Server
    record: RequestRecord | None = None
    route_path: str = "/"
    params: dict[str, str] = {}  # replaced per request

    @property
    def site(self) -> Site:
        return self.server.site

    def setup(self) -> None:
        super().setup()
        self.site._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.site._untrack(self.connection)

    def do_GET(self) -> None:
        self.site._serve(self)

    def do_HEAD(self) -> None:
        self.site._serve(self)

    def send_response(self, code: int, message: str | None = None) -> None:
        if self.record is not None:
            self.record.status = code
        super().send_response(code, message)

    def send(self, response: Response) -> None:
        """Write a complete response (no body for HEAD, 204 and 304)."""
        bodyless = response.status in _BODYLESS
        names = {name.lower() for name in response.headers}
        self.send_response(response.status)
        if "content-type" not in names:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if "content-length" not in names and not bodyless:
            self.send_header("Content-Length", str(len(response.body)))
        if self.record is not None:
            # Done before the first byte goes out, so a client that has read this response
            # never sees it still in flight (nor counts it against its next request).
            self.site._complete(self.record)
        self.end_headers()
        if self.command != "HEAD" and not bodyless:
            self.wfile.write(response.body)

    def int_param(self, name: str, default: int) -> int:
        try:
            return int(self.params.get(name, default))
        except ValueError as exc:
            raise BadParam(name) from exc

    def float_param(self, name: str, default: float) -> float:
        try:
            return float(self.params.get(name, default))
        except ValueError as exc:
            raise BadParam(name) from exc

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


Endpoint = Callable[[SiteHandler], Response | None]
"""Returns a Response, or None after writing the response itself."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # Site.stop() closes connections and waits itself
    request_queue_size = 128  # the default 5 drops connections under parallel crawls

    def __init__(self, address: tuple[str, int], site: Site) -> None:
        self.site = site
        super().__init__(address, SiteHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that stalls offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response is routine here (timeouts, cancelled crawls).
        logger.debug("error while serving %s", client_address, exc_info=True)


def _document(
    title: str, body: str, *, description: str | None = None, charset: str | None = "utf-8"
) -> str:
    head = [f'<meta charset="{charset}">'] if charset else []
    head.append(f"<title>{html.escape(title)}</title>")
    if description is not None:
        head.append(f'<meta name="description" content="{html.escape(description)}">')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        + "\n".join(head)
        + f"\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _html(title: str, body: str = "", *, status: int = 200, **kwargs: Any) -> Response:
    text = body or f"<h1>{html.escape(title)}</h1>"
    return Response(status=status, body=_document(title, text, **kwargs).encode())


def _link(href: str, label: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(label)}</a>'


def _redirect(status: int, location: str) -> Response:
    body = f"<p>Moved to {_link(location, location)}</p>"
    return Response(
        status=status, body=_document("Redirect", body).encode(), headers={"Location": location}
    )


class Site:
    """A local HTTP site on a loopback address; use as a context manager or via fixtures."""

    def __init__(
        self,
        *,
        pages: int = 30,
        fanout: int = 3,
        host: str = "127.0.0.1",
        port: int = 0,
        robots: str | None = DEFAULT_ROBOTS,
        robots_status: int | None = None,
        orphans: int = 0,
        query_dupes: bool = False,
        extras: bool = False,
        page_delay: float = 0.0,
    ) -> None:
        if pages < 0 or fanout < 1:
            raise ValueError("need pages >= 0 and fanout >= 1")
        self.pages = pages
        self.fanout = fanout
        self.host = host
        self.robots = robots
        self.robots_status = robots_status
        self.orphans = orphans
        self.query_dupes = query_dupes
        self.extras = extras
        self.page_delay = page_delay
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._counters: dict[str, int] = {}
        self._connections: set[socket.socket] = set()
        self._in_flight = 0
        self._max_concurrent = 0
        self._routes: dict[str, Endpoint] = {}
        self._endpoints: list[tuple[re.Pattern[str], Callable[[SiteHandler, re.Match[str]], Any]]]
        self._endpoints = [
            (re.compile(pattern), endpoint)
            for pattern, endpoint in [
                (r"/", self._home),
                (r"/p/(0|[1-9]\d*)", self._page),
                (r"/q", self._query_page),
                (r"/orphan/(0|[1-9]\d*)", self._orphan),
                (r"/big/(0|[1-9]\d*)", self._big_leaf),
                (r"/robots\.txt", self._robots),
                (r"/sitemap\.xml", self._sitemap),
                (r"/sitemap_index\.xml", self._sitemap_index),
                (r"/sitemap-a\.xml", self._sitemap_a),
                (r"/sitemap-b\.xml\.gz", self._sitemap_b),
                (r"/redirect/(\d+)", self._redirect_chain),
                (r"/redirect-loop", lambda h, m: _redirect(302, "/redirect-loop")),
                (r"/redirect-abs", lambda h, m: _redirect(301, self.url("/p/0"))),
                (r"/status/([2-5]\d\d)", self._status),
                (r"/flaky/([^/]+)", self._flaky),
                (r"/retry-after", self._retry_after),
                (r"/slow", self._slow),
                (r"/trickle", self._trickle),
                (r"/files/doc\.pdf", self._pdf),
                (r"/files/data\.json", self._json),
                (r"/latin1", self._latin1),
                (r"/cp1251", self._cp1251),
                (r"/nocharset", self._nocharset),
                (r"/fixed", lambda h, m: Response(body=FIXED_PAGE_HTML.encode())),
                (r"/empty", lambda h, m: Response()),
                (r"/binary", lambda h, m: Response(body=BINARY_BYTES)),
                (r"/close-mid-body", self._close_mid_body),
                (r"/gzip", self._gzip),
                (r"/big-links", self._big_links),
                (r"/deep", self._deep),
            ]
        ]

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Site:
        """Bind (a free port unless one was given) and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("site already started")
        self._stopping.clear()
        self._server = _Server(self._address, self)
        self._address = (self.host, self._server.server_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"site-{self.base_url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: interrupt delays, close every connection, wait for handlers."""
        server, self._server = self._server, None
        if server is None:
            return
        with self._lock:
            self._stopping.set()
            connections = list(self._connections)
        server.shutdown()
        server.server_close()
        for connection in connections:
            # Wakes handler threads blocked reading the next keep-alive request.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(TimeoutError):
            self.wait_for(lambda: not self._connections and self._in_flight == 0, timeout=5)

    def __enter__(self) -> Site:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._address[1] == 0:
            raise RuntimeError("site not started")
        return self._address[1]

    @property
    def base_url(self) -> str:
        """Like "http://127.0.0.1:54321" (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of a path on this site."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- the link graph ----------------------------------------------------------------

    def children(self, i: int) -> list[int]:
        """Indexes of the graph pages that /p/i links to."""
        first = i * self.fanout + 1
        return list(range(first, min(first + self.fanout, self.pages)))

    def graph_links(self, path: str) -> list[str]:
        """Canonical paths a page links to, excluding same-page spellings and extras."""
        if path == "/":
            links = ["/p/0"] if self.pages else []
            if self.query_dupes:
                links.append(QUERY_PAGE)
            return links
        match = re.fullmatch(r"/p/(0|[1-9]\d*)", path)
        if match and int(match[1]) < self.pages:
            return [f"/p/{child}" for child in self.children(int(match[1]))]
        return []

    def expected_urls(self, max_depth: int, seed: str = "/") -> set[str]:
        """Canonical absolute URLs within `max_depth` link hops of `seed` (a path or URL).

        Follows graph links only (plus /q when query_dupes=True); never the extras, the
        orphans or anything in the sitemaps.
        """
        if max_depth < 0:
            raise ValueError("max_depth must be >= 0")
        start = self._path_of(seed)
        seen = {start}
        level = [start]
        for _ in range(max_depth):
            next_level = []
            for path in level:
                for link in self.graph_links(path):
                    if link not in seen:
                        seen.add(link)
                        next_level.append(link)
            level = next_level
        return {self.url(path) for path in seen}

    def sitemap_urls(self) -> set[str]:
        """URLs listed by /sitemap.xml; /sitemap-a.xml and /sitemap-b.xml.gz split them."""
        return {self.url(path) for path in self._sitemap_graph() + self._sitemap_orphans()}

    # -- request log -------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def paths(self) -> list[str]:
        """Requested paths (with query strings), in arrival order."""
        return [record.path for record in self.requests]

    def requests_for(self, path: str) -> list[RequestRecord]:
        """Requests for `path`; a path without "?" matches it with any query string."""
        return [r for r in self.requests if r.path == path or r.path.split("?")[0] == path]

    def count(self, path: str) -> int:
        """How many requests `requests_for(path)` finds."""
        return len(self.requests_for(path))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def max_concurrent(self) -> int:
        """Most requests ever in flight at once, across all connections."""
        return self._max_concurrent

    def reset(self) -> None:
        """Forget requests, flaky counters and the concurrency peak."""
        with self._lock:
            self._requests.clear()
            self._counters.clear()
            self._max_concurrent = self._in_flight

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Poll `predicate` until it returns something truthy; TimeoutError at the deadline."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(0.005)
        return result

    async def wait_for_async(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,
    ) -> T:
        """`wait_for` for async tests: yields to the event loop between polls."""
        try:
            result: T = await eventually(predicate, timeout, 0.005)
        except AssertionError as exc:
            raise TimeoutError(str(exc)) from None
        return result

    # -- custom routes -----------------------------------------------------------------

    def route(self, path: str, handler: Endpoint) -> None:
        """Serve `path` (query ignored) with `handler`, ahead of the built-in endpoints."""
        self._routes[path] = handler

    def add_page(
        self,
        path: str,
        body: bytes | str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = HTML,
    ) -> None:
        """Serve a static response at `path`."""
        response = Response(
            status=status,
            body=body.encode() if isinstance(body, str) else body,
            content_type=content_type,
            headers=dict(headers or {}),
        )
        self.route(path, lambda handler: response)

    # -- serving -----------------------------------------------------------------------

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self._connections.add(connection)
                return
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _serve(self, handler: SiteHandler) -> None:
        split = urlsplit(handler.path)
        handler.route_path = split.path or "/"
        handler.params = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        record = RequestRecord(
            method=handler.command,
            path=handler.path,
            headers=headers,
            host=headers.get("host"),
            client_port=handler.client_address[1],
            started=time.monotonic(),
        )
        handler.record = record
        with self._lock:
            self._requests.append(record)
            self._in_flight += 1
            self._max_concurrent = max(self._max_concurrent, self._in_flight)
        try:
            if self.page_delay:
                self._stopping.wait(self.page_delay)
            response = self._dispatch(handler)
            if response is not None:
                handler.send(response)
        finally:
            self._complete(record)
            handler.record = None

    def _complete(self, record: RequestRecord) -> None:
        with self._lock:
            if record.ended is None:
                record.ended = time.monotonic()
                self._in_flight -= 1

    def _dispatch(self, handler: SiteHandler) -> Response | None:
        custom = self._routes.get(handler.route_path)
        if custom is not None:
            return custom(handler)
        for pattern, endpoint in self._endpoints:
            match = pattern.fullmatch(handler.route_path)
            if match:
                try:
                    return endpoint(handler, match)  # type: ignore[no-any-return]
                except BadParam as exc:
                    return _html(f"Bad parameter: {exc}", status=400)
        return _html("Not found", status=404)

    def _bump(self, key: str) -> int:
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + 1
            return self._counters[key]

    def _path_of(self, seed: str) -> str:
        if not seed.startswith(("http://", "https://")):
            return seed
        if not (seed + "/").startswith(self.base_url + "/"):
            raise ValueError(f"{seed!r} is not on {self.base_url}")
        parts = urlsplit(seed)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    # -- endpoints: the graph ----------------------------------------------------------

    def _extras(self) -> str:
        if not self.extras:
            return ""
        return f"<p>{_link(EXTERNAL_URL, 'External site')} {_link(PDF_PATH, 'A PDF')}</p>"

    def _home(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        parts = [
            "<h1>Home</h1>",
            f"<p>A generated test site: {self.pages} pages, each linking to "
            f"{self.fanout} more.</p>",
        ]
        if self.pages:
            parts.append(f"<ul>\n<li>{_link('/p/0', 'Page 0')}</li>\n</ul>")
            # The same page spelled differently: a crawler must fetch /p/0 once.
            parts.append(
                f"<p>{_link('/p/0#top', 'Page 0, top')} {_link('/p/0?', 'Page 0, again')}</p>"
            )
        if self.query_dupes:
            parts.append(
                f"<p>{_link(QUERY_PAGE, 'Query page')} "
                f"{_link(QUERY_PAGE_REORDERED, 'Query page, reordered')}</p>"
            )
        parts.append(self._extras())
        return _html("Home", "\n".join(parts), description="Description of the home page")

    def _page(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        i = int(match[1])
        if i >= self.pages:
            return _html("Not found", status=404)
        children = self.children(i)
        parts = [
            f"<h1>Page {i}</h1>",
            f"<p>This is page {i} of the generated test site. It links to "
            f"{len(children)} other pages.</p>",
        ]
        if children:
            items = "".join(f"<li>{_link(f'/p/{c}', f'Page {c}')}</li>\n" for c in children)
            parts.append(f"<ul>\n{items}</ul>")
            parts.append(f"<p>{_link(f'/p/{children[0]}#more', f'Page {children[0]}, more')}</p>")
        parts.append(f"<p>{_link('#top', 'Back to top')}</p>")
        parts.append(self._extras())
        return _html(f"Page {i}", "\n".join(parts), description=f"Description of page {i}")

    def _query_page(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        body = f"<h1>Query page</h1>\n<p>Parameters: {html.escape(str(handler.params))}</p>"
        return _html("Query page", body + self._extras(), description="A page with a query")

    def _orphan(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        i = int(match[1])
        if i >= self.orphans:
            return _html("Not found", status=404)
        body = f"<h1>Orphan {i}</h1>\n<p>Only the sitemap knows this page.</p>" + self._extras()
        return _html(f"Orphan {i}", body, description=f"Description of orphan {i}")

    def _big_leaf(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        return _html(f"Big {match[1]}")

    # -- endpoints: robots and sitemaps ------------------------------------------------

    def _robots(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        text = "text/plain; charset=utf-8"
        if self.robots_status is not None:
            return Response(status=self.robots_status, body=b"unavailable\n", content_type=text)
        if self.robots is None:
            return Response(status=404, body=b"not found\n", content_type=text)
        return Response(
            body=self.robots.replace("{base}", self.base_url).encode(), content_type=text
        )

    def _sitemap_graph(self) -> list[str]:
        return ["/"] + [f"/p/{i}" for i in range(min(self.pages, SITEMAP_GRAPH_PAGES))]

    def _sitemap_orphans(self) -> list[str]:
        return [f"/orphan/{i}" for i in range(self.orphans)]

    def _urlset(self, paths: list[str]) -> bytes:
        entries = "".join(
            f"<url><loc>{xml_escape(self.url(p))}</loc><lastmod>2024-01-01</lastmod></url>\n"
            for p in paths
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            f"{entries}</urlset>\n"
        ).encode()

    def _sitemap(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        paths = self._sitemap_graph() + self._sitemap_orphans()
        return Response(body=self._urlset(paths), content_type="application/xml")

    def _sitemap_index(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        entries = "".join(
            f"<sitemap><loc>{self.url(p)}</loc></sitemap>\n"
            for p in ("/sitemap-a.xml", "/sitemap-b.xml.gz")
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            f"{entries}</sitemapindex>\n"
        )
        return Response(body=body.encode(), content_type="application/xml")

    def _sitemap_a(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        return Response(body=self._urlset(self._sitemap_graph()), content_type="application/xml")

    def _sitemap_b(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        body = gzip.compress(self._urlset(self._sitemap_orphans()), mtime=0)
        return Response(body=body, content_type="application/gzip")

    # -- endpoints: statuses and faults ------------------------------------------------

    def _redirect_chain(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        n = int(match[1])
        return _redirect(302, f"/redirect/{n - 1}" if n > 0 else "/p/0")

    def _status(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        code = int(match[1])
        return _html(f"Status {code}", status=code)

    def _fail_first(
        self, handler: SiteHandler, key: str, title: str, code: int, retry_after: str | None
    ) -> Response:
        """Fail the first `fail` requests counted under `key`, then serve a page."""
        if self._bump(key) > handler.int_param("fail", 1):
            return _html(title)
        failure = _document(f"Failure {code}", f"<h1>Failure {code}</h1>")
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return Response(status=code, body=failure.encode(), headers=headers)

    def _flaky(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        code = handler.int_param("code", 503)
        retry_after = handler.params.get("retry_after")
        return self._fail_first(
            handler, f"flaky:{match[1]}", f"Flaky {match[1]}", code, retry_after
        )

    def _retry_after(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        key = f"retry-after:{handler.params.get('name', '')}"
        seconds = handler.params.get("seconds", "1")
        return self._fail_first(handler, key, "Retry-After page", 429, seconds)

    def _slow(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        delay = handler.float_param("delay", 1.0)
        self._stopping.wait(delay)
        return _html("Slow page", f"<h1>Slow page</h1>\n<p>Answered after {delay}s.</p>")

    def _trickle(self, handler: SiteHandler, match: re.Match[str]) -> None:
        size = handler.int_param("bytes", 10)
        interval = handler.float_param("interval", 0.1)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        if handler.command == "HEAD":
            return
        for i in range(size):
            if i and self._stopping.wait(interval):
                handler.close_connection = True
                return
            handler.wfile.write(b"x")

    def _close_mid_body(self, handler: SiteHandler, match: re.Match[str]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", HTML)
        handler.send_header("Content-Length", str(CLOSE_MID_BODY_LENGTH))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(b"<" + b"x" * (CLOSE_MID_BODY_SENT - 1))
        handler.close_connection = True

    # -- endpoints: content types and odd bodies ---------------------------------------

    def _pdf(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        return Response(body=PDF_BYTES, content_type="application/pdf")

    def _json(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        return Response(body=json.dumps(JSON_DATA).encode(), content_type="application/json")

    def _encoded(self, text: str, encoding: str, content_type: str, meta: str | None) -> Response:
        page = _document(text, f"<h1>{text}</h1>\n<p>{text}</p>", charset=meta)
        return Response(body=page.encode(encoding), content_type=content_type)

    def _latin1(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        return self._encoded(LATIN1_TEXT, "latin-1", "text/html; charset=ISO-8859-1", None)

    def _cp1251(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        return self._encoded(CP1251_TEXT, "cp1251", "text/html", "windows-1251")

    def _nocharset(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        return self._encoded(NOCHARSET_TEXT, "utf-8", "text/html", None)

    def _gzip(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        page = _document("Gzip page", f"<h1>Gzip page</h1>\n<p>{GZIP_TEXT}</p>")
        body = gzip.compress(page.encode(), mtime=0)
        return Response(body=body, headers={"Content-Encoding": "gzip"})

    def _big_links(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        n = handler.int_param("n", 1000)
        items = "".join(f'<li><a href="/big/{i}">Link {i}</a></li>\n' for i in range(n))
        return _html(f"{n} links", f"<h1>{n} links</h1>\n<ul>\n{items}</ul>")

    def _deep(self, handler: SiteHandler, match: re.Match[str]) -> Response:
        n = handler.int_param("n", 1000)
        return _html(f"Depth {n}", "<div>" * n + "<p>deep</p>" + "</div>" * n)


# -- pytest fixtures (the main conftest.py imports these) ------------------------------

SiteFactory = Callable[..., Site]


@pytest.fixture
def site_factory() -> Iterator[SiteFactory]:
    """`make_site(**options)`: a started Site, stopped when the test ends."""
    sites: list[Site] = []

    def make_site(**options: Any) -> Site:
        new = Site(**options).start()
        sites.append(new)
        return new

    yield make_site
    for each in reversed(sites):
        each.stop()


@pytest.fixture
def site(site_factory: SiteFactory) -> Site:
    """The default site: 30 pages, fanout 3, permissive robots.txt."""
    return site_factory()
