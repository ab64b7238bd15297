"""Serve a directory on 127.0.0.1 cheaply: Debian's nginx if present, else asyncio + sendfile.

`serve(root, port)` is a context manager that starts the server as a child process and
stops it on exit. `python bench/server.py --root DIR --port N` runs the fallback server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import mimetypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"

_NGINX_CONF = """\
daemon off;
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{
        text/html html;
        text/plain txt;
        application/xml xml;
        application/pdf pdf;
        image/jpeg jpg;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/html text/plain application/xml;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {host}:{port} backlog=4096;
        root {root};
        index index.html;
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
"""


@dataclass(frozen=True, slots=True)
class SiteServer:
    """A running static server."""

    kind: str  # "nginx" or "asyncio"
    origin: str
    pid: int


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (and we may bind it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the kernel considers free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Block until 127.0.0.1:port accepts connections or the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {HOST}:{port} after {timeout:.0f}s")


def install_nginx() -> bool:
    """apt-get install nginx (asked for explicitly with --install-nginx)."""
    if shutil.which("nginx"):
        return True
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "nginx"]):
        logger.info("running %s", " ".join(command))
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(command, env=env, check=False).returncode != 0:
            return False
    return shutil.which("nginx") is not None


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> int | None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; return the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def serve(root: Path, port: int, *, prefer_nginx: bool = True) -> Iterator[SiteServer]:
    """Serve `root` at http://127.0.0.1:port until the block exits."""
    nginx = shutil.which("nginx") if prefer_nginx else None
    with tempfile.TemporaryDirectory(prefix="trawl-bench-server-") as tmp:
        if nginx:
            conf = Path(tmp) / "nginx.conf"
            user = "user root;" if os.geteuid() == 0 else ""
            conf.write_text(
                _NGINX_CONF.format(user=user, tmp=tmp, host=HOST, port=port, root=root.resolve())
            )
            command = [nginx, "-e", f"{tmp}/error.log", "-p", tmp, "-c", str(conf)]
            kind = "nginx"
        else:
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--root",
                str(root),
                "--port",
                str(port),
            ]
            kind = "asyncio"
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc)
            yield SiteServer(kind=kind, origin=f"http://{HOST}:{port}", pid=proc.pid)
        except BaseException:
            log.flush()
            sys.stderr.write((Path(tmp) / "server.log").read_text(errors="replace")[-2000:])
            raise
        finally:
            stop_process(proc, grace=5.0)
            log.close()


# --- fallback server ------------------------------------------------------------------

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
}


class _StaticHandler:
    """HTTP/1.1 GET/HEAD for files under one root, keep-alive, bodies sent with sendfile."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, target: str) -> Path | None:
        path = unquote(urlsplit(target).path)
        file = (self.root / path.lstrip("/")).resolve()
        if file != self.root and self.root not in file.parents:
            return None
        if file.is_dir():
            file = file / "index.html"
        return file if file.is_file() else None

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, version = request_line.split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in header_lines if line)
                }
                if length := int(headers.get("content-length", "0")):
                    await reader.readexactly(length)
                keep_alive = headers.get("connection", "").lower() != "close" and version.endswith(
                    "1.1"
                )
                file = self.resolve(target) if method in ("GET", "HEAD") else None
                connection = "keep-alive" if keep_alive else "close"
                if file is None:
                    status = (
                        "405 Method Not Allowed"
                        if method not in ("GET", "HEAD")
                        else ("404 Not Found")
                    )
                    writer.write(
                        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
                        f"Connection: {connection}\r\n\r\nnot found".encode()
                    )
                else:
                    content_type = _TYPES.get(file.suffix) or (
                        mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                    )
                    with file.open("rb") as body:
                        size = os.fstat(body.fileno()).st_size
                        writer.write(
                            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                            f"Content-Length: {size}\r\nConnection: {connection}\r\n\r\n".encode()
                        )
                        if method == "GET":
                            await writer.drain()
                            await loop.sendfile(writer.transport, body)
                await writer.drain()
                if not keep_alive:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except ValueError:
            with contextlib.suppress(ConnectionError):
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _serve_forever(root: Path, port: int) -> None:
    server = await asyncio.start_server(_StaticHandler(root), HOST, port, backlog=4096)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a directory on 127.0.0.1.")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The default selector loop does real os.sendfile; uvloop would copy through Python.
    asyncio.run(_serve_forever(args.root, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
