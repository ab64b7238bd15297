"""The one HTTP fetcher: a guarded httpx client, manual redirects, bounded bodies.

Layers, outermost first:

    Fetcher.fetch()        total deadline, redirects, body caps, decoding; never raises
                           for page-level problems (they come back as FetchResult.error)
    httpx.AsyncClient      one per process: no env proxies, no cookies, no auto-redirects
    GuardedTransport       every connection passes the address policy (service.network)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import httpx

from service.changes import Conditional
from service.jobheaders import origin
from service.network.guard import (
    AddressPolicy,
    BlockedAddress,
    CredentialsInURL,
    check_url_host_literal,
)
from service.network.transport import GuardedTransport, guarded_client

logger = logging.getLogger(__name__)

ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
# Only what we can decode with a bounded output: brotli's Python binding cannot be bounded.
ACCEPT_ENCODING = "gzip, deflate"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# A redirect body this small is read so the connection can be reused; larger ones are
# dropped together with their connection.
_REDIRECT_DRAIN_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchOptions:
    """Knobs of the fetcher; one instance per process."""

    user_agent: str = "Trawl/0.1 (+https://github.com/trawl)"
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    # Whole page incl. redirects and body: cuts a server trickling 1 byte/s.
    total_timeout: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024  # raw bytes on the wire
    max_decoded_bytes: int = 20 * 1024 * 1024  # after gzip/deflate, enforced incrementally
    max_redirects: int = 10
    max_connections: int = 64
    max_keepalive: int = 32
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    # Ports this service listens on: connecting to them on this host is refused.
    own_ports: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchError:
    """Why a fetch produced no usable body."""

    # timeout | too_large | private_address | too_many_redirects | redirect_loop |
    # connect_error | dns_error | protocol_error | invalid_url | bad_content
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchResult:
    """Outcome of one fetch; status and headers belong to `final_url`."""

    url: str  # as requested
    final_url: str  # the last URL requested (or refused) after redirects
    status_code: int | None
    content_type: str | None  # media type only, lower-case, e.g. "text/html"
    charset: str | None  # from the Content-Type header, if any
    headers: dict[str, str]  # lower-case names, last value wins
    body: bytes  # decoded body; b"" on error or when a non-HTML body was not wanted
    elapsed_ms: float
    redirects: tuple[str, ...]  # URLs that redirected and were followed, in order
    error: FetchError | None
    retryable: bool
    # time.monotonic() when the first request's headers were written to the socket (after
    # any connection set-up): per-host spacing counts from here, as the server sees it.
    sent_at: float | None = None


class PageFetcher(Protocol):
    """The seam the crawl worker depends on."""

    async def fetch(
        self,
        url: str,
        *,
        accept_non_html: bool = True,
        headers: tuple[tuple[str, str], ...] = (),
        header_origins: frozenset[str] = frozenset(),
        conditional: Conditional | None = None,
    ) -> FetchResult: ...


# ---------------------------------------------------------------------------- decoding


class _Failure(Exception):
    """A page-level failure found by the fetcher itself (not by httpx)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _ZlibStage:
    """Undo one gzip or deflate coding incrementally, never producing more than `limit`.

    Output goes straight into the caller's buffer in steps of at most _STEP bytes, so a
    bomb costs the cap plus one step, never a copy of the cap.
    """

    _STEP = 256 * 1024

    def __init__(self, coding: str, limit: int) -> None:
        self._gzip = coding in ("gzip", "x-gzip")
        self._limit = limit
        self._produced = 0
        self._obj = self._new()
        self._probing = not self._gzip  # "deflate": zlib-wrapped (RFC) or raw (common)
        self._pending = b""  # input held while probing, or between gzip members
        self._between_members = False
        self._finished = False

    def _new(self, raw: bool = False) -> zlib._Decompress:
        if raw:
            return zlib.decompressobj(-zlib.MAX_WBITS)
        return zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)

    def decode(self, data: bytes, out: bytearray) -> None:
        if self._finished or not data:
            return
        if self._probing or self._between_members:
            data = self._pending + data
            if len(data) < 2:
                self._pending = data
                return
            self._pending = b""
            if self._between_members:
                self._between_members = False
                if not data.startswith(b"\x1f\x8b"):  # trailing padding, not a member
                    self._finished = True
                    return
                self._obj = self._new()
        if self._probing:
            self._probing = False
            mark = len(out)
            try:
                self._run(data, out)
                return
            except zlib.error:
                if self._produced:
                    raise
                del out[mark:]
                self._obj = self._new(raw=True)
        self._run(data, out)

    def _run(self, data: bytes, out: bytearray) -> None:
        while True:
            # One byte more than allowed is how an overflow shows itself.
            step = min(self._limit - self._produced + 1, self._STEP)
            piece = self._obj.decompress(data, step)
            self._produced += len(piece)
            if self._produced > self._limit:
                raise _Failure("too_large", f"decoded body exceeds {self._limit} bytes")
            out += piece
            if self._obj.eof:
                rest = self._obj.unused_data
                if self._gzip:  # gzip allows concatenated members
                    self._between_members = True
                    self.decode(rest, out)
                else:
                    self._finished = True
                return
            tail = self._obj.unconsumed_tail
            # A full step may leave output inside zlib even with no input left: go again.
            if len(piece) < step and (not tail or len(tail) == len(data)):
                return
            data = tail


class _Decoder:
    """Content-Encoding chain, bounded at every stage."""

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        for coding in codings:
            if coding not in ("gzip", "x-gzip", "deflate"):
                raise _Failure("bad_content", f"unsupported content-encoding {coding!r}")
        # Codings are listed in the order applied; undo them in reverse.
        self._stages = [_ZlibStage(c, limit) for c in reversed(codings)]

    def decode(self, data: bytes, out: bytearray) -> None:
        """Decode one raw chunk, appending the result to `out`."""
        try:
            for stage in self._stages[:-1]:
                buffer = bytearray()
                stage.decode(data, buffer)
                data = bytes(buffer)
            if self._stages:
                self._stages[-1].decode(data, out)
            else:
                out += data
        except zlib.error as exc:
            raise _Failure("bad_content", f"corrupt compressed body: {exc}") from exc


# ----------------------------------------------------------------------------- fetcher


@dataclass(slots=True)
class _Progress:
    """What is known so far about one fetch; frozen into a FetchResult at the end."""

    url: str
    final_url: str
    redirects: list[str] = field(default_factory=list)
    status_code: int | None = None
    content_type: str | None = None
    charset: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: FetchError | None = None
    retryable: bool = False
    sent_at: float | None = None

    async def trace(self, event: str, info: dict[str, object]) -> None:
        """httpcore's trace hook: note when the first request was sent."""
        if self.sent_at is None and event == "http11.send_request_headers.complete":
            self.sent_at = time.monotonic()

    def start_hop(self, url: str) -> None:
        self.final_url = url
        self.status_code, self.content_type, self.charset = None, None, None
        self.headers = {}

    def response(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = {k.lower(): v for k, v in response.headers.multi_items()}
        self.content_type, self.charset = _parse_content_type(self.headers.get("content-type"))

    def fail(self, code: str, message: str, *, retryable: bool = False) -> None:
        self.error = FetchError(code=code, message=message)
        self.retryable = retryable
        self.body = b""

    def result(self, elapsed_ms: float) -> FetchResult:
        retryable = self.retryable if self.error else self.status_code in RETRYABLE_STATUSES
        return FetchResult(
            url=self.url,
            final_url=self.final_url,
            status_code=self.status_code,
            content_type=self.content_type,
            charset=self.charset,
            headers=self.headers,
            body=self.body,
            elapsed_ms=elapsed_ms,
            redirects=tuple(self.redirects),
            sent_at=self.sent_at,
            error=self.error,
            retryable=retryable,
        )


class Fetcher:
    """Fetches pages through one shared, guarded client; see the module docstring."""

    def __init__(
        self, options: FetchOptions, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._options = options
        if transport is None:
            transport = GuardedTransport(
                options.policy,
                limits=httpx.Limits(
                    max_connections=options.max_connections,
                    max_keepalive_connections=options.max_keepalive,
                ),
                own_ports=options.own_ports,
            )
        self._client = guarded_client(
            transport,
            timeout=httpx.Timeout(
                connect=options.connect_timeout,
                read=options.read_timeout,
                write=options.read_timeout,
                pool=options.total_timeout,
            ),
            headers={
                "User-Agent": options.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client and every pooled connection."""
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        accept_non_html: bool = True,
        headers: tuple[tuple[str, str], ...] = (),
        header_origins: frozenset[str] = frozenset(),
        conditional: Conditional | None = None,
    ) -> FetchResult:
        """Fetch `url`, following redirects; page-level failures are in `.error`.

        `headers` (a job's own) go only to hops whose origin is in `header_origins`: a
        redirect elsewhere does not carry them. `conditional` (a recrawl's) goes only to
        the URL its validators came from; a 304 answer comes back as it is.

        With `accept_non_html=False` a response whose Content-Type is present and not
        HTML is not read: status and headers are returned with an empty body, no error.
        """
        started = time.perf_counter()
        progress = _Progress(url=url, final_url=url)
        total = self._options.total_timeout
        try:
            async with asyncio.timeout(total):
                await self._follow(progress, accept_non_html, headers, header_origins, conditional)
        except TimeoutError:
            progress.fail("timeout", f"page not complete within {total:g}s", retryable=True)
        except _Failure as exc:
            progress.fail(exc.code, exc.message)
        except (httpx.HTTPError, httpx.InvalidURL, BlockedAddress) as exc:
            code, retryable = _classify(exc)
            progress.fail(code, str(exc) or type(exc).__name__, retryable=retryable)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if progress.error is not None:
            logger.debug(
                "fetch %s failed: %s (%s)", url, progress.error.code, progress.error.message
            )
        return progress.result(elapsed_ms)

    async def _follow(
        self,
        progress: _Progress,
        accept_non_html: bool,
        headers: tuple[tuple[str, str], ...],
        header_origins: frozenset[str],
        conditional: Conditional | None = None,
    ) -> None:
        target = self._checked_url(progress.url)
        seen = {_loop_key(target)}
        while True:
            progress.start_hop(str(target))
            extra = list(headers) if headers and origin(str(target)) in header_origins else None
            if conditional is not None and str(target) == conditional.url:
                extra = [*(extra or ()), *conditional.headers()]
            async with self._client.stream(
                "GET", target, headers=extra, extensions={"trace": progress.trace}
            ) as response:
                progress.response(response)
                location = response.headers.get("location")
                if response.status_code not in REDIRECT_STATUSES or not location:
                    await self._read_body(response, progress, accept_non_html)
                    return
                await _drain(response)
            try:
                next_target = target.join(location.strip())
            except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
                raise _Failure("invalid_url", f"bad redirect Location {location!r}") from exc
            if next_target.scheme not in ("http", "https"):
                raise _Failure("invalid_url", f"redirect to non-http(s) URL {location!r}")
            if _loop_key(next_target) in seen:
                raise _Failure("redirect_loop", f"redirect loop back to {next_target}")
            if len(progress.redirects) >= self._options.max_redirects:
                raise _Failure(
                    "too_many_redirects", f"more than {self._options.max_redirects} redirects"
                )
            progress.redirects.append(str(target))
            progress.start_hop(str(next_target))  # refused targets count as requested
            target = self._checked_url(str(next_target))
            seen.add(_loop_key(target))

    def _checked_url(self, url: str) -> httpx.URL:
        """Parse, and refuse credentials and refused IP literals before any connection."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
            raise _Failure("invalid_url", f"invalid URL {url!r}: {exc}") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise _Failure("invalid_url", f"not an absolute http(s) URL: {url!r}")
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise _Failure("invalid_url", f"port out of range in {url!r}")
        try:
            check_url_host_literal(str(parsed), self._options.policy)
        except CredentialsInURL as exc:
            raise _Failure("invalid_url", str(exc)) from exc
        except BlockedAddress as exc:
            raise _Failure("private_address", str(exc)) from exc
        except ValueError as exc:
            raise _Failure("invalid_url", f"invalid URL {url!r}: {exc}") from exc
        return parsed

    async def _read_body(
        self, response: httpx.Response, progress: _Progress, accept_non_html: bool
    ) -> None:
        if not accept_non_html and progress.content_type not in (None, *HTML_TYPES):
            return
        max_raw = self._options.max_body_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > max_raw:
            raise _Failure("too_large", f"Content-Length {declared} exceeds {max_raw} bytes")
        decoder = _Decoder(
            response.headers.get("content-encoding"), self._options.max_decoded_bytes
        )
        received = 0
        body = bytearray()
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > max_raw:
                raise _Failure("too_large", f"body exceeds {max_raw} bytes")
            decoder.decode(chunk, body)
        progress.body = bytes(body)


def _classify(exc: httpx.HTTPError | httpx.InvalidURL | BlockedAddress) -> tuple[str, bool]:
    """Map an httpx (or guard) exception to (FetchError.code, retryable)."""
    if _find_cause(exc, BlockedAddress) is not None:
        return "private_address", False
    # httpx builds `next_request` from every Location, even with follow_redirects off,
    # and raises InvalidURL (or RemoteProtocolError from it) for one it cannot parse.
    if _find_cause(exc, httpx.InvalidURL) is not None:
        return "invalid_url", False
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", True
    if isinstance(exc, httpx.ConnectError):
        gai = _find_cause(exc, socket.gaierror)
        if gai is not None:
            return "dns_error", gai.errno == socket.EAI_AGAIN
        # A certificate that fails verification will fail again.
        return "connect_error", _find_cause(exc, ssl.SSLError) is None
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return "invalid_url", False
    if isinstance(exc, httpx.NetworkError):  # reset while reading or writing
        return "protocol_error", True
    return "protocol_error", False


_E = TypeVar("_E", bound=BaseException)


def _find_cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of `kind` in the __cause__/__context__ chain, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _loop_key(url: httpx.URL) -> str:
    return str(url.copy_with(fragment=None))


async def _drain(response: httpx.Response) -> None:
    """Read a small redirect body so its connection returns to the pool."""
    declared = response.headers.get("content-length", "").strip()
    if not declared.isdigit() or int(declared) > _REDIRECT_DRAIN_BYTES:
        return  # closing the response unread drops the connection, which is fine
    with contextlib.suppress(httpx.TransportError):
        async for _ in response.aiter_raw():
            pass


def _parse_content_type(value: str | None) -> tuple[str | None, str | None]:
    """("text/html", "utf-8") from 'text/html; charset="UTF-8"'."""
    if not value:
        return None, None
    media_type, *params = value.split(";")
    charset = None
    for param in params:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip("\"'").lower() or None
    return media_type.strip().lower() or None, charset
