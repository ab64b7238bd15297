"""A small HTTP/1.1 server on 127.0.0.1 that misbehaves on purpose, one path per fault.

It runs in the test's own event loop (asyncio.start_server), speaks just enough HTTP/1.1
(keep-alive, Content-Length, chunked, close-delimited) and records every connection and
request so tests can assert that a refused fetch never reached it.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
import ssl
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

OK_BODY = b"<!doctype html><html><body><p>ok</p></body></html>"
BINARY_BODY = bytes(range(256)) * 16
GIB = 1 << 30
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.target).query).items()}


@functools.cache
def zeros_bomb(wbits: int, size: int = GIB) -> bytes:
    """`size` zero bytes compressed (gzip: wbits 31, zlib: 15, raw deflate: -15).

    Built from one 1 MiB segment repeated: after Z_FULL_FLUSH the compressor's output no
    longer depends on what came before, so the segments are identical. ~1 MB for 1 GiB.
    """
    block = bytes(1 << 20)
    assert size % len(block) == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush(zlib.Z_FINISH)
    checksum = zlib.crc32 if wbits > 15 else zlib.adler32
    value = checksum(b"")
    for _ in range(size // len(block) if wbits > 0 else 0):
        value = checksum(block, value)
    if wbits > 15:  # gzip trailer: CRC-32 and size, little-endian
        end = end[:-8] + value.to_bytes(4, "little") + (size % (1 << 32)).to_bytes(4, "little")
    elif wbits > 0:  # zlib trailer: Adler-32, big-endian
        end = end[:-4] + value.to_bytes(4, "big")
    return head + segment * (size // len(block) - 1) + end


Handler = Callable[["HostileServer", Request, asyncio.StreamWriter], Awaitable[bool]]
_ROUTES: dict[str, Handler] = {}


def route(path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ROUTES[path] = handler
        return handler

    return register


@dataclass
class HostileServer:
    host: str = "127.0.0.1"
    ssl_context: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str, *, host: str | None = None) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = host or self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            keep_alive = True
            while keep_alive:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                request = Request(method, target, headers)
                self.requests.append(request)
                handler = _ROUTES.get(request.path, _not_found)
                keep_alive = await handler(self, request, writer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.LimitOverrunError):
            writer.close()
        except asyncio.CancelledError:
            # Server shutdown: drop the connection at once (no TLS close_notify wait), and
            # end the task normally so asyncio does not log the cancellation as an error.
            writer.transport.abort()
        else:
            writer.close()  # flushes a close-delimited body first
        finally:
            self._tasks.discard(task)


async def send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    content_type: str | None = "text/html; charset=utf-8",
    length: bool = True,
) -> None:
    """Write a whole response; `length=False` makes it close-delimited."""
    lines = [f"HTTP/1.1 {status} X"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if length:
        lines.append(f"Content-Length: {len(body)}")
    else:
        lines.append("Connection: close")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    for start in range(0, len(body), 1 << 16):
        writer.write(body[start : start + (1 << 16)])
        await writer.drain()
    await writer.drain()


async def _not_found(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 404, b"not found")
    return True


@route("/ok")
async def _ok(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, OK_BODY)
    return True


@route("/headers")
async def _headers(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, json.dumps(req.headers).encode(), content_type="application/json")
    return True


@route("/set-cookie")
async def _set_cookie(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, OK_BODY, headers={"Set-Cookie": "session=secret; Path=/"})
    return True


@route("/empty")
async def _empty(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, b"")
    return True


@route("/binary")
async def _binary(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, BINARY_BODY, content_type="application/octet-stream")
    return True


@route("/status")
async def _status(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    code = int(req.query.get("code", "503"))
    await send(writer, code, b"<p>unavailable</p>", headers={"Retry-After": "7"})
    return True


@route("/content-type")
async def _content_type(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, OK_BODY, content_type=req.query["value"])
    return True


# -- encodings ---------------------------------------------------------------------------


def _encoded(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "raw-deflate":
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(body) + c.flush()
    if coding == "gzip-members":  # two concatenated gzip members
        half = len(body) // 2
        return gzip.compress(body[:half]) + gzip.compress(body[half:])
    raise ValueError(coding)


@route("/encoded")
async def _encoded_route(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    coding = req.query["coding"]
    header = "deflate" if coding == "raw-deflate" else coding.split("-")[0]
    await send(writer, 200, _encoded(OK_BODY, coding), headers={"Content-Encoding": header})
    return True


@route("/bomb")
async def _bomb(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    coding = req.query["coding"]
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[coding]
    header = "deflate" if coding == "raw-deflate" else coding
    await send(writer, 200, zeros_bomb(wbits), headers={"Content-Encoding": header})
    return True


@route("/br")
async def _br(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    await send(writer, 200, b"\x1b\x31\x00\xf8\xa5\x00", headers={"Content-Encoding": "br"})
    return True


@route("/corrupt-gzip")
async def _corrupt(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    body = bytearray(gzip.compress(OK_BODY * 50))
    body[20:40] = b"\xff" * 20
    await send(writer, 200, bytes(body), headers={"Content-Encoding": "gzip"})
    return True


# -- size and pacing ---------------------------------------------------------------------


@route("/big")
async def _big(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    """`size` bytes; framing=length (Content-Length), chunked, or close (close-delimited)."""
    size = int(req.query["size"])
    framing = req.query.get("framing", "length")
    block = b"x" * (1 << 16)
    if framing == "length":
        await send(writer, 200, b"x" * size)
        return True
    if framing == "close":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
    else:
        writer.write(CHUNKED_HEAD)
    sent = 0
    while sent < size:
        part = block[: size - sent]
        writer.write(b"%x\r\n%s\r\n" % (len(part), part) if framing == "chunked" else part)
        await writer.drain()
        sent += len(part)
    if framing == "chunked":
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True
    return False


@route("/trickle")
async def _trickle(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    """Headers at once, then one byte per `interval` seconds: no read ever times out."""
    interval = float(req.query.get("interval", "1"))
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
    await writer.drain()
    for _ in range(100000):
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(interval)
    return False


@route("/stall")
async def _stall(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    """Headers, then silence (a read timeout, not a total one)."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 10\r\n\r\n")
    await writer.drain()
    await asyncio.Event().wait()  # until the client hangs up and the server is closed
    return False


@route("/close-mid")
async def _close_mid(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    """Promise 1000 bytes, send 100, hang up."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n")
    writer.write(b"y" * 100)
    await writer.drain()
    return False


@route("/close-mid-chunked")
async def _close_mid_chunked(
    server: HostileServer, req: Request, writer: asyncio.StreamWriter
) -> bool:
    writer.write(CHUNKED_HEAD)
    writer.write(b"64\r\n" + b"y" * 100 + b"\r\n")
    await writer.drain()
    return False


@route("/no-response")
async def _no_response(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    return False  # close without a status line


# -- redirects ---------------------------------------------------------------------------


async def _redirect(writer: asyncio.StreamWriter, location: str, status: int = 302) -> bool:
    await send(writer, status, b"moved", headers={"Location": location})
    return True


@route("/redirect")
async def _redirect_to(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    return await _redirect(writer, req.query["to"], int(req.query.get("status", "302")))


@route("/loop/a")
async def _loop_a(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    return await _redirect(writer, "/loop/b")


@route("/loop/b")
async def _loop_b(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    return await _redirect(writer, f"http://{req.headers['host']}/loop/a#again", 301)


@route("/chain")
async def _chain(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    """/chain?n=3 -> /chain?n=2 -> ... -> /chain?n=0 (200)."""
    n = int(req.query["n"])
    if n <= 0:
        await send(writer, 200, OK_BODY)
        return True
    return await _redirect(writer, f"chain?n={n - 1}", 307)


# -- storage and tenancy (issue 17) ------------------------------------------------------

EMOJI = "\U0001f600"  # 4 bytes of UTF-8; json's default escapes it to 12


@functools.cache
def emoji_page(size: int) -> bytes:
    """An HTML page of about `size` bytes, nearly all emoji, gzip-compressed (~1000:1)."""
    head = b"<!doctype html><html><head><title>emoji</title></head><body><p>"
    tail = b"</p></body></html>"
    count = max(0, size - len(head) - len(tail)) // len(EMOJI.encode())
    return gzip.compress(head + (EMOJI * count).encode() + tail, compresslevel=9)


@route("/emoji")
async def _emoji(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    """`size` bytes (default 20 MB) of emoji HTML, sent as ~20 KB of gzip."""
    body = emoji_page(int(req.query.get("size", str(20_000_000))))
    await send(writer, 200, body, headers={"Content-Encoding": "gzip"})
    return True


def long_path(length: int, tag: str = "") -> str:
    """A same-host path+query of exactly `length` characters (unique per `tag`), in
    canonical form (query arguments sorted). The padding is random-looking, so that no
    index can compress it below PostgreSQL's 2704-byte btree row limit."""
    fixed = len("/ok?pad=") + len(f"&tag={tag}")
    return "/ok?pad=" + _noise(max(0, length - fixed), tag) + f"&tag={tag}"


def _noise(length: int, seed: str) -> str:
    """`length` deterministic pseudo-random hex digits."""
    digits: list[str] = []
    counter = 0
    while len(digits) * 128 < length:
        digits.append(hashlib.sha512(f"{seed}:{counter}".encode()).hexdigest())
        counter += 1
    return "".join(digits)[:length]


@route("/long-link")
async def _long_link(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    """A page linking one same-host URL of `len` characters (default 8000) and /ok."""
    path = long_path(int(req.query.get("len", "8000")), req.query.get("tag", "x"))
    body = f'<html><body><a href="{path}">long</a> <a href="/ok">ok</a></body></html>'
    await send(writer, 200, body.encode())
    return True


@route("/many-links")
async def _many_links(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    """Page `page` with `n` unique same-host links of `len` characters each, and links
    to the next `fan` pages (`/many-links?page=...`), which every page shares."""
    page = int(req.query.get("page", "0"))
    n = int(req.query.get("n", "4000"))
    length = int(req.query.get("len", "2500"))
    fan = int(req.query.get("fan", "60"))
    query = f"n={n}&len={length}&fan={fan}"
    parts = ["<html><body>"]
    parts += [f'<a href="/many-links?page={i}&{query}">p{i}</a>' for i in range(fan)]
    parts += [f'<a href="{long_path(length, f"{page}-{j}")}">l</a>' for j in range(n)]
    parts.append("</body></html>")
    await send(writer, 200, "".join(parts).encode())
    return True


@route("/tarpit")
async def _tarpit(server: HostileServer, req: Request, writer: asyncio.StreamWriter) -> bool:
    """Accept the request, then never answer (a webhook receiver that hangs)."""
    await asyncio.Event().wait()
    return False
