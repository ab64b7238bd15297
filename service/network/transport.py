"""The guarded transport: every outbound TCP connection passes the address policy.

Crawl fetches (service.crawl.fetcher) and webhook deliveries (service.webhooks) both go
through it. Layers, outermost first:

    GuardedTransport       httpx -> httpcore glue on public APIs only; maps errors
    httpcore pool          keep-alive, TLS with SNI/verification against the *hostname*
    GuardedBackend         resolve_checked() then connect to the checked IPs themselves
    AsyncioBackend         plain asyncio streams (service.network.backend)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpcore
import httpx

from service.network.backend import AsyncioBackend
from service.network.guard import AddressPolicy, BlockedAddress, resolve_checked


class BlockedConnectError(httpx.ConnectError):
    """The connect-time address check refused every connection to the host."""

    def __init__(self, blocked: BlockedAddress) -> None:
        super().__init__(str(blocked))
        self.blocked = blocked


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, by IP, never re-resolving the name."""

    def __init__(
        self,
        policy: AddressPolicy,
        inner: httpcore.AsyncNetworkBackend | None = None,
        *,
        own_ports: frozenset[int] = frozenset(),
    ) -> None:
        self._policy = policy
        self._inner = inner or AsyncioBackend()
        # resolve_checked refuses the policy's own endpoints before connecting; this is
        # the after-connect check for the host's other addresses under a wildcard bind.
        self._own_ports = own_ports | policy.own.ports

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await resolve_checked(host, port, self._policy)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from exc
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        # BlockedAddress propagates unwrapped: httpcore only retries ConnectError, and
        # GuardedTransport turns it into BlockedConnectError.
        failure: httpcore.ConnectError | None = None
        for address in addresses:  # the checked addresses, in the resolver's order
            remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
            try:
                stream = await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            if self._is_self(stream, port):
                await stream.aclose()
                raise BlockedAddress(host, f"{address} (this service's own API)")
            return stream
        assert failure is not None  # resolve_checked never returns an empty list
        raise failure

    def _is_self(self, stream: httpcore.AsyncNetworkStream, port: int) -> bool:
        """A connection from this host to one of this service's ports: its own API.

        A connection to any address of the same host leaves from that same address, so
        equal local and peer IPs mean "this machine", whatever name or alias led here.
        """
        if port not in self._own_ports:
            return False
        sock = stream.get_extra_info("socket")
        if sock is None:
            return False
        try:
            local, peer = sock.getsockname()[0], sock.getpeername()[0]
        except OSError:
            return False
        return bool(local == peer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_ERROR_MAP: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    # Most specific first.
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
)


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except BlockedAddress as exc:
        raise BlockedConnectError(exc) from exc
    except Exception as exc:
        for core_type, httpx_type in _ERROR_MAP:
            if isinstance(exc, core_type):
                raise httpx_type(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose every TCP connection passes the address policy.

    Built on public APIs only (`httpcore.AsyncConnectionPool(network_backend=...)` and
    `httpx.AsyncBaseTransport`) rather than poking `AsyncHTTPTransport._pool`; the price
    is the short request/response conversion and error mapping below.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
        local_address: str | None = None,
        own_ports: frozenset[int] = frozenset(),
    ) -> None:
        limits = limits or httpx.Limits()
        ssl_context = (
            verify
            if isinstance(verify, ssl.SSLContext)
            else httpx.create_ssl_context(verify=verify, trust_env=False)
        )
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            local_address=local_address,
            network_backend=GuardedBackend(policy, own_ports=own_ports),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped_errors():
            core_response = await self._pool.handle_async_request(core_request)
        assert isinstance(core_response.stream, AsyncIterable)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(core_response.stream),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def guarded_client(
    transport: httpx.AsyncBaseTransport, *, timeout: httpx.Timeout, headers: dict[str, str]
) -> httpx.AsyncClient:
    """An AsyncClient for outbound requests (crawl fetches, webhooks) on `transport`.

    No environment proxies (they would bypass the connect-time address check), no
    redirects followed (the caller checks every hop itself, or refuses them), no cookies
    kept (the client is shared by every job). Limits live on the transport: AsyncClient
    ignores `limits=` when given one.
    """
    return httpx.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=timeout,
        headers=headers,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )
