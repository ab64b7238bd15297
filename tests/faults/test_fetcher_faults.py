"""The fetcher against a hostile local server: every fault is a result, never a crash.

Each test asserts the error code and then that the same Fetcher still fetches a normal
page, so no fault can poison the shared client or its connection pool.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from service.crawl.fetcher import (
    ACCEPT_ENCODING,
    Fetcher,
    FetchOptions,
    FetchResult,
)
from service.network.guard import AddressPolicy, IPNetwork
from service.network.transport import GuardedTransport
from tests.faults.hostile_server import BINARY_BODY, OK_BODY, HostileServer, zeros_bomb

pytestmark = pytest.mark.timeout(20)

LOOPBACK_ONE: tuple[IPNetwork, ...] = (ipaddress.ip_network("127.0.0.1/32"),)
MiB = 1 << 20


class StaticResolver:
    """The resolver seam: names from `table`; anything else does not exist."""

    def __init__(self, table: dict[str, Sequence[str]], errno: int = socket.EAI_NONAME) -> None:
        self.table = table
        self.errno = errno
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(self.errno, "Name or service not known")
        return self.table[host]


MakeFetcher = Callable[..., Fetcher]


@pytest.fixture
async def server() -> AsyncIterator[HostileServer]:
    srv = await HostileServer().start()
    yield srv
    await srv.close()


@pytest.fixture
async def private_server() -> AsyncIterator[HostileServer]:
    """A second server on 127.0.0.2, outside the tests' allow-list: it must stay untouched."""
    srv = await HostileServer(host="127.0.0.2").start()
    yield srv
    await srv.close()


@pytest.fixture
async def make_fetcher() -> AsyncIterator[MakeFetcher]:
    fetchers: list[Fetcher] = []

    def make(
        *,
        allowed: tuple[IPNetwork, ...] = LOOPBACK_ONE,
        resolver: StaticResolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> Fetcher:
        settings: dict[str, Any] = {
            "connect_timeout": 2.0,
            "read_timeout": 2.0,
            "total_timeout": 5.0,
            "max_body_bytes": MiB,
            "max_decoded_bytes": 2 * MiB,
            **options,
        }
        # Never the system resolver: no test may send a DNS query anywhere.
        resolver = resolver or StaticResolver({})
        policy = AddressPolicy(allowed_networks=allowed, resolver=resolver)
        fetcher = Fetcher(FetchOptions(policy=policy, **settings), transport=transport)
        fetchers.append(fetcher)
        return fetcher

    yield make
    for fetcher in fetchers:
        await fetcher.aclose()


async def assert_usable(fetcher: Fetcher, server: HostileServer) -> None:
    result = await fetcher.fetch(server.url("/ok"))
    assert result.error is None, result.error
    assert (result.status_code, result.body) == (200, OK_BODY)


def assert_error(result: FetchResult, code: str, *, retryable: bool = False) -> None:
    assert result.error is not None, f"expected {code}, got {result.status_code}"
    assert result.error.code == code, result.error
    assert result.error.message
    assert result.body == b""
    assert result.retryable is retryable


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the happy path and what the client sends -------------------------------------------


async def test_plain_fetch(server: HostileServer, make_fetcher: MakeFetcher) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(server.url("/ok"))
    assert result.error is None
    assert result.url == result.final_url == server.url("/ok")
    assert result.status_code == 200
    assert (result.content_type, result.charset) == ("text/html", "utf-8")
    assert result.headers["content-length"] == str(len(OK_BODY))
    assert all(name == name.lower() for name in result.headers)
    assert result.body == OK_BODY
    assert result.redirects == ()
    assert result.retryable is False
    assert result.elapsed_ms > 0


async def test_request_headers_advertise_only_bounded_encodings(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    result = await make_fetcher(user_agent="TrawlTest/1").fetch(server.url("/headers"))
    sent = json.loads(result.body)
    assert sent["accept-encoding"] == ACCEPT_ENCODING == "gzip, deflate"
    assert sent["user-agent"] == "TrawlTest/1"
    assert sent["accept"].startswith("text/html")


async def test_cookies_are_not_carried_between_requests(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher()
    assert (await fetcher.fetch(server.url("/set-cookie"))).error is None
    sent = json.loads((await fetcher.fetch(server.url("/headers"))).body)
    assert "cookie" not in sent


async def test_proxy_environment_is_ignored(
    server: HostileServer, make_fetcher: MakeFetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fetcher = make_fetcher()
    await assert_usable(fetcher, server)
    assert server.requests[-1].target == "/ok"  # origin-form: not sent through a proxy


async def test_multiple_addresses_are_tried_in_order(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    # Nothing listens on 127.0.0.3: the first checked address is refused, the second works.
    resolver = StaticResolver({"multi.example": ["127.0.0.3", "127.0.0.1"]})
    fetcher = make_fetcher(allowed=(ipaddress.ip_network("127.0.0.0/8"),), resolver=resolver)
    result = await fetcher.fetch(server.url("/ok", host="multi.example"))
    assert result.error is None
    assert result.body == OK_BODY
    assert server.connections == 1
    assert server.requests[0].headers["host"] == f"multi.example:{server.port}"


async def test_custom_transport_seam(make_fetcher: MakeFetcher) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # stream=, not content=: httpx pre-reads (and decodes) `content`, leaving no raw stream.
        return httpx.Response(
            200,
            stream=httpx.ByteStream(gzip.compress(b"<p>mock</p>")),
            headers={"Content-Type": "text/html", "Content-Encoding": "gzip"},
        )

    fetcher = make_fetcher(transport=httpx.MockTransport(handler))
    result = await fetcher.fetch("https://example.com/")
    assert (result.error, result.body) == (None, b"<p>mock</p>")


# -- bodies: encodings, bombs, sizes -----------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "gzip-members"])
async def test_encodings_are_decoded(
    coding: str, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    result = await make_fetcher().fetch(server.url(f"/encoded?coding={coding}"))
    assert result.error is None
    assert result.body == OK_BODY


@pytest.mark.parametrize(("coding", "wbits"), [("gzip", 31), ("deflate", 15), ("raw-deflate", -15)])
async def test_compression_bomb_is_cut_with_little_memory(
    coding: str, wbits: int, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    options = FetchOptions()  # the production caps: 10 MiB raw, 20 MiB decoded
    bomb = zeros_bomb(wbits)  # 1 GiB of zeros in ~1 MiB: under the raw cap
    assert len(bomb) < options.max_body_bytes
    fetcher = make_fetcher(
        max_body_bytes=options.max_body_bytes, max_decoded_bytes=options.max_decoded_bytes
    )
    tracemalloc.start()
    try:
        result = await fetcher.fetch(server.url(f"/bomb?coding={coding}"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_error(result, "too_large")
    assert "decoded" in result.error.message  # type: ignore[union-attr]
    # The decoded cap plus one read's worth of output, not the gigabyte behind it.
    assert peak < options.max_decoded_bytes + 4 * MiB, peak
    await assert_usable(fetcher, server)


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
async def test_body_over_the_raw_cap(
    framing: str, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher(max_body_bytes=100_000)
    result = await fetcher.fetch(server.url(f"/big?size={5 * MiB}&framing={framing}"))
    assert_error(result, "too_large")
    assert result.status_code == 200
    await assert_usable(fetcher, server)


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
async def test_body_exactly_at_the_cap_is_accepted(
    framing: str, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher(max_body_bytes=300_000)
    result = await fetcher.fetch(server.url(f"/big?size=300000&framing={framing}"))
    assert result.error is None
    assert result.body == b"x" * 300_000


async def test_unbounded_encoding_is_bad_content(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(server.url("/br"))
    assert_error(result, "bad_content")
    assert "br" in result.error.message  # type: ignore[union-attr]
    assert result.status_code == 200
    await assert_usable(fetcher, server)


async def test_corrupt_gzip_is_bad_content(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher()
    assert_error(await fetcher.fetch(server.url("/corrupt-gzip")), "bad_content")
    await assert_usable(fetcher, server)


async def test_empty_200(server: HostileServer, make_fetcher: MakeFetcher) -> None:
    result = await make_fetcher().fetch(server.url("/empty"))
    assert (result.status_code, result.error, result.body) == (200, None, b"")


async def test_binary_body_is_returned_verbatim(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(server.url("/binary"))
    assert (result.error, result.content_type, result.charset) == (
        None,
        "application/octet-stream",
        None,
    )
    assert result.body == BINARY_BODY
    skipped = await fetcher.fetch(server.url("/binary"), accept_non_html=False)
    assert (skipped.status_code, skipped.error, skipped.body) == (200, None, b"")
    assert skipped.content_type == "application/octet-stream"
    await assert_usable(fetcher, server)


@pytest.mark.parametrize(
    ("value", "media_type", "charset"),
    [
        ('Text/HTML; Charset="ISO-8859-1"', "text/html", "iso-8859-1"),
        ("application/xhtml+xml;charset=utf-8", "application/xhtml+xml", "utf-8"),
        ("text/html;", "text/html", None),
    ],
)
async def test_content_type_parsing(
    value: str,
    media_type: str,
    charset: str | None,
    server: HostileServer,
    make_fetcher: MakeFetcher,
) -> None:
    result = await make_fetcher().fetch(
        server.url(f"/content-type?value={quote(value)}"), accept_non_html=False
    )
    assert (result.content_type, result.charset) == (media_type, charset)
    assert result.body == OK_BODY  # HTML types are read even when non-HTML is not wanted


# -- time --------------------------------------------------------------------------------


async def test_trickling_server_is_cut_by_the_total_deadline(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    # Each byte arrives well within read_timeout, so only the total deadline can stop it.
    fetcher = make_fetcher(total_timeout=1.0, read_timeout=5.0)
    result = await fetcher.fetch(server.url("/trickle?interval=0.2"))
    assert_error(result, "timeout", retryable=True)
    assert 900 <= result.elapsed_ms < 3000
    await assert_usable(fetcher, server)


async def test_stalled_body_hits_the_read_timeout(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher(read_timeout=0.3, total_timeout=5.0)
    result = await fetcher.fetch(server.url("/stall"))
    assert_error(result, "timeout", retryable=True)
    assert result.elapsed_ms < 3000
    await assert_usable(fetcher, server)


# -- broken connections ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/close-mid", "/close-mid-chunked"])
async def test_server_closing_mid_body(
    path: str, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(server.url(path))
    assert_error(result, "protocol_error")
    assert result.status_code == 200
    await assert_usable(fetcher, server)


async def test_server_closing_without_a_response(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(server.url("/no-response"))
    assert_error(result, "protocol_error")
    assert result.status_code is None
    await assert_usable(fetcher, server)


async def test_connection_refused_is_a_retryable_connect_error(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(f"http://127.0.0.1:{closed_port()}/")
    assert_error(result, "connect_error", retryable=True)
    await assert_usable(fetcher, server)


@pytest.mark.parametrize(
    ("errno", "retryable"), [(socket.EAI_NONAME, False), (socket.EAI_AGAIN, True)]
)
async def test_resolution_failure_is_a_dns_error(
    errno: int, retryable: bool, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher(resolver=StaticResolver({}, errno=errno))
    result = await fetcher.fetch("http://nowhere.example/")
    assert_error(result, "dns_error", retryable=retryable)
    await assert_usable(fetcher, server)


# -- statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(503, True), (429, True), (500, True), (502, True), (504, True), (404, False), (403, False)],
)
async def test_http_errors_are_statuses_not_errors(
    code: int, retryable: bool, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    result = await make_fetcher().fetch(server.url(f"/status?code={code}"))
    assert (result.status_code, result.error, result.retryable) == (code, None, retryable)
    assert result.headers["retry-after"] == "7"
    assert result.body == b"<p>unavailable</p>"


# -- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_relative_redirect_is_followed(
    status: int, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    start = server.url(f"/redirect?to=ok&status={status}")
    result = await make_fetcher().fetch(start)
    assert result.error is None
    assert (result.url, result.final_url, result.redirects) == (
        start,
        server.url("/ok"),
        (start,),
    )
    assert result.body == OK_BODY


async def test_redirect_loop(server: HostileServer, make_fetcher: MakeFetcher) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(server.url("/loop/a"))
    assert_error(result, "redirect_loop")
    assert result.redirects == (server.url("/loop/a"),)
    assert result.final_url == server.url("/loop/b")
    assert result.status_code == 301
    assert server.paths() == ["/loop/a", "/loop/b"]
    await assert_usable(fetcher, server)


async def test_redirect_chain_longer_than_the_limit(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher(max_redirects=3)
    at_limit = await fetcher.fetch(server.url("/chain?n=3"))
    assert at_limit.error is None
    assert len(at_limit.redirects) == 3
    over = await fetcher.fetch(server.url("/chain?n=4"))
    assert_error(over, "too_many_redirects")
    assert len(over.redirects) == 3
    assert over.final_url == server.url("/chain?n=1")
    await assert_usable(fetcher, server)


@pytest.mark.parametrize(
    "location", ["ftp://127.0.0.1/x", "file:///etc/passwd", "javascript:alert(1)", "gopher://x/"]
)
async def test_redirect_to_a_non_http_scheme(
    location: str, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(server.url(f"/redirect?to={quote(location)}"))
    assert_error(result, "invalid_url")
    assert server.paths() == ["/redirect"]
    await assert_usable(fetcher, server)


async def test_redirect_to_a_private_literal_is_refused(
    server: HostileServer, private_server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    # 127.0.0.1 is allow-listed for the first hop; 127.0.0.2 is not.
    fetcher = make_fetcher()
    target = private_server.url("/ok")
    result = await fetcher.fetch(server.url(f"/redirect?to={target}"))
    assert_error(result, "private_address")
    assert result.final_url == target
    assert result.redirects == (server.url(f"/redirect?to={target}"),)
    assert private_server.connections == 0
    await assert_usable(fetcher, server)


async def test_redirect_to_a_name_resolving_private_is_refused_at_connect(
    server: HostileServer, private_server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    resolver = StaticResolver({"evil.example": ["127.0.0.2"]})
    fetcher = make_fetcher(resolver=resolver)
    target = private_server.url("/ok", host="evil.example")
    result = await fetcher.fetch(server.url(f"/redirect?to={target}"))
    assert_error(result, "private_address")
    assert "127.0.0.2" in result.error.message  # type: ignore[union-attr]
    assert resolver.calls == ["evil.example"]
    assert private_server.connections == 0
    await assert_usable(fetcher, server)


# -- the address guard at connect time ---------------------------------------------------


async def test_rebinding_to_loopback_never_reaches_the_server(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    resolver = StaticResolver({"public.example": ["127.0.0.1"]})
    fetcher = make_fetcher(allowed=(), resolver=resolver)  # the production default policy
    result = await fetcher.fetch(server.url("/ok", host="public.example"))
    assert_error(result, "private_address")
    assert resolver.calls == ["public.example"]
    assert server.connections == 0
    assert server.requests == []
    # Nothing on this machine is allowed under the default policy, so "still usable" is
    # shown by the next test; here: the refusal repeats and nothing was cached.
    again = await fetcher.fetch(server.url("/ok", host="public.example"))
    assert_error(again, "private_address")
    assert server.connections == 0


async def test_rebinding_to_another_private_address(
    server: HostileServer, private_server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    resolver = StaticResolver({"public.example": ["127.0.0.2"]})
    fetcher = make_fetcher(resolver=resolver)
    result = await fetcher.fetch(private_server.url("/ok", host="public.example"))
    assert_error(result, "private_address")
    assert private_server.connections == 0
    await assert_usable(fetcher, server)


async def test_one_private_record_refuses_the_whole_host(
    server: HostileServer, private_server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    resolver = StaticResolver({"mixed.example": ["127.0.0.1", "127.0.0.2"]})
    fetcher = make_fetcher(resolver=resolver)
    result = await fetcher.fetch(server.url("/ok", host="mixed.example"))
    assert_error(result, "private_address")
    assert server.connections == private_server.connections == 0
    await assert_usable(fetcher, server)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://localhost/",
    ],
)
async def test_private_literals_are_refused_before_connecting(
    url: str, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher(allowed=())
    result = await fetcher.fetch(url)
    assert_error(result, "private_address")
    assert server.connections == 0


@pytest.mark.parametrize(
    "url",
    ["not a url", "ftp://127.0.0.1/", "http://", "//127.0.0.1/", "http://[::1/", "http://h:99999/"],
)
async def test_invalid_urls(url: str, server: HostileServer, make_fetcher: MakeFetcher) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(url)
    assert_error(result, "invalid_url")
    assert result.url == url
    await assert_usable(fetcher, server)


async def test_credentials_in_url_are_refused(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher()
    url = f"http://user:secret@127.0.0.1:{server.port}/ok"
    assert_error(await fetcher.fetch(url), "invalid_url")
    assert server.connections == 0


# -- TLS: the guard connects by IP, but SNI and verification use the hostname ------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=public.example", "-addext", "subjectAltName=DNS:public.example",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_uses_the_hostname_for_sni_and_verification(
    tls_files: tuple[Path, Path], make_fetcher: MakeFetcher
) -> None:
    cert, key = tls_files
    server_names: list[str | None] = []
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.sni_callback = lambda _sock, name, _ctx: server_names.append(name)  # type: ignore[func-returns-value]
    client_ctx = ssl.create_default_context(cafile=str(cert))
    policy = AddressPolicy(
        allowed_networks=LOOPBACK_ONE,
        resolver=StaticResolver({"public.example": ["127.0.0.1"]}),
    )
    fetcher = make_fetcher(transport=GuardedTransport(policy, verify=client_ctx))
    tls_server = await HostileServer(ssl_context=server_ctx).start()
    try:
        result = await fetcher.fetch(tls_server.url("/ok", host="public.example"))
        assert result.error is None, result.error
        assert result.body == OK_BODY
        assert server_names == ["public.example"]
        # By IP the certificate does not match: verification is not skipped.
        mismatch = await fetcher.fetch(tls_server.url("/ok"))
        assert_error(mismatch, "connect_error", retryable=False)
    finally:
        await fetcher.aclose()
        await tls_server.close()


async def test_concurrent_faults_do_not_disturb_normal_fetches(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    fetcher = make_fetcher(max_connections=8, max_keepalive=4, total_timeout=2.0)
    paths = ["/ok", "/close-mid", "/br", "/loop/a", "/big?size=3000000", "/ok"] * 5
    results = await asyncio.gather(*(fetcher.fetch(server.url(p)) for p in paths))
    codes = [r.error.code if r.error else "ok" for r in results]
    assert codes == [
        "ok", "protocol_error", "bad_content", "redirect_loop", "too_large", "ok",
    ] * 5  # fmt: skip
    await assert_usable(fetcher, server)


class ChunkedStream(httpx.AsyncByteStream):
    """A response body delivered in fixed-size pieces, to hit every decoder boundary."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), self.size):
            yield self.data[start : start + self.size]


def _compress(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body)
    wbits = 15 if coding == "deflate" else -15
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(body) + compressor.flush()


@pytest.mark.parametrize("chunk", [1, 7, 65536])
@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "deflate, gzip"])
async def test_decoding_is_exact_across_chunk_and_step_boundaries(
    coding: str, chunk: int, make_fetcher: MakeFetcher
) -> None:
    # ~1.3 MB decoded: several 256 KiB decoder steps, long matches straddling them.
    body = b"".join(b"<p>line %d</p>" % (i % 977) for i in range(100_000))
    wire = body
    for layer in [c.strip() for c in coding.split(",")]:
        wire = _compress(wire, layer)
    header = coding.replace("raw-deflate", "deflate")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, stream=ChunkedStream(wire, chunk), headers={"Content-Encoding": header}
        )

    fetcher = make_fetcher(transport=httpx.MockTransport(handler))
    result = await fetcher.fetch("https://example.com/")
    assert result.error is None, result.error
    assert result.body == body
    capped = make_fetcher(transport=httpx.MockTransport(handler), max_decoded_bytes=len(body) - 1)
    assert_error(await capped.fetch("https://example.com/"), "too_large")
    exact = make_fetcher(transport=httpx.MockTransport(handler), max_decoded_bytes=len(body))
    assert (await exact.fetch("https://example.com/")).body == body
