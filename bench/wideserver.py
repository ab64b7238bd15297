"""Many loopback hosts on one port, each answering late: the wide-crawl benchmark's web.

Host i (0-based) is 127.0.{1 + i // 250}.{1 + i % 250}. Every host serves `/p0`, which
links to `/p1` .. `/p{pages-1}`; those are leaves. The first host also serves `/seed`,
linking every host's `/p0`. Every answer (also robots.txt's 404) is `latency` seconds
late. Each request's host, path, start and end are recorded, so the benchmark checks
politeness from the server's side.

`WideSite.serve()` runs the server in its own process (`python bench/wideserver.py`), so
its timestamps do not wait for the benchmark's own Python code; hits go to a file, one
JSON line each, with CLOCK_MONOTONIC times (the same clock in every process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def host_address(index: int) -> str:
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


@dataclass(frozen=True, slots=True)
class Hit:
    host: str
    path: str
    start: float
    end: float


@dataclass(slots=True)
class Politeness:
    """What the server saw, per host."""

    max_in_flight: int
    min_gap: float  # smallest start-to-start gap between page requests to one host
    requests: int


@dataclass(slots=True)
class WideSite:
    hosts: int
    pages: int
    latency: float
    port: int = 0
    hits_path: Path | None = None
    _out: IO[str] | None = None
    _extra: list[Hit] = field(default_factory=list)

    @property
    def seed(self) -> str:
        return f"http://{host_address(0)}:{self.port}/seed"

    @property
    def expected(self) -> int:
        return self.hosts * self.pages + 1  # every host's pages plus the seed

    def page_html(self, host: str, path: str) -> bytes | None:
        if path == "/seed" and host == host_address(0):
            links = [f"http://{host_address(i)}:{self.port}/p0" for i in range(self.hosts)]
        elif path == "/p0":
            links = [f"/p{i}" for i in range(1, self.pages)]
        elif path.startswith("/p") and path[2:].isdigit() and int(path[2:]) < self.pages:
            links = []
        else:
            return None
        anchors = "".join(f'<a href="{link}">{link}</a>\n' for link in links)
        return (
            f"<!DOCTYPE html><html><head><title>{host}{path}</title></head>"
            f"<body><h1>{path}</h1><p>Page {path} of {host}.</p>{anchors}</body></html>"
        ).encode()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                start = time.monotonic()
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                parts = line.split(" ")
                path = parts[1] if len(parts) > 1 else "/"
                await asyncio.sleep(self.latency)
                body = self.page_html(host, path.split("?", 1)[0])
                status = "200 OK" if body is not None else "404 Not Found"
                body = body if body is not None else b"not found"
                ctype = "text/html; charset=utf-8" if status.startswith("200") else "text/plain"
                writer.write(
                    (
                        f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n"
                    ).encode()
                    + body
                )
                await writer.drain()
                if self._out is not None:
                    self._out.write(json.dumps([host, path, start, time.monotonic()]) + "\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _bind_all(self) -> list[socket.socket]:
        """One listening socket per host address, all on one port."""
        for _ in range(50):
            first = socket.socket()
            first.bind((host_address(0), self.port))
            port = first.getsockname()[1]
            sockets = [first]
            try:
                for i in range(1, self.hosts):
                    sock = socket.socket()
                    sockets.append(sock)
                    sock.bind((host_address(i), port))
            except OSError:
                for sock in sockets:
                    sock.close()
                continue
            for sock in sockets:
                sock.listen(256)
                sock.setblocking(False)
            self.port = port
            return sockets
        raise RuntimeError("no port free on every host address")

    @contextlib.contextmanager
    def serve(self) -> Iterator[WideSite]:
        """Run the server in a child process until the block ends."""
        with tempfile.TemporaryDirectory(prefix="wide-site-") as tmp:
            self.hits_path = Path(tmp) / "hits.jsonl"
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--hosts",
                str(self.hosts),
                "--pages",
                str(self.pages),
                "--latency",
                str(self.latency),
                "--hits",
                str(self.hits_path),
            ]
            child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            try:
                assert child.stdout is not None
                line = child.stdout.readline()
                if not line.startswith("port "):
                    raise RuntimeError(f"wide site did not start: {line!r}")
                self.port = int(line.split()[1])
                yield self
            finally:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()

    async def run_forever(self, hits: Path) -> None:
        sockets = self._bind_all()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        with hits.open("a", buffering=1) as out:
            self._out = out
            servers = [
                await asyncio.start_server(self._handle, sock=sock, limit=65536) for sock in sockets
            ]
            print(f"port {self.port}", flush=True)
            await stop.wait()
            for server in servers:
                server.close()

    def _hits(self) -> list[Hit]:
        if self.hits_path is None or not self.hits_path.exists():
            return []
        out = []
        for line in self.hits_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                host, path, start, end = json.loads(line)
                out.append(Hit(host, path, start, end))
        return out

    def politeness(self, since: float = 0.0) -> dict[str, Politeness]:
        """Per host: most requests in flight at once, smallest gap between page starts."""
        by_host: dict[str, list[Hit]] = defaultdict(list)
        for hit in self._hits():
            if hit.start >= since:
                by_host[hit.host].append(hit)
        out: dict[str, Politeness] = {}
        for host, hits in by_host.items():
            events = sorted([(h.start, 1) for h in hits] + [(h.end, -1) for h in hits])
            level = peak = 0
            for _, step in events:
                level += step
                peak = max(peak, level)
            starts = sorted(h.start for h in hits if h.path != "/robots.txt")
            gaps = [b - a for a, b in itertools.pairwise(starts)]
            out[host] = Politeness(
                max_in_flight=peak, min_gap=min(gaps, default=float("inf")), requests=len(hits)
            )
        return out

    def timeline(self, since: float = 0.0) -> tuple[float, float, float]:
        """Seconds from `since` to the first request and to the last answer, and the
        median host's mean gap between page starts: a slow crawl that started late
        reads differently from one that ran slow throughout."""
        hits = [hit for hit in self._hits() if hit.start >= since]
        if not hits:
            return (float("nan"),) * 3
        by_host: dict[str, list[float]] = defaultdict(list)
        for hit in hits:
            if hit.path != "/robots.txt":
                by_host[hit.host].append(hit.start)
        paces = sorted(
            (max(starts) - min(starts)) / (len(starts) - 1)
            for starts in by_host.values()
            if len(starts) > 1
        )
        pace = paces[len(paces) // 2] if paces else float("nan")
        return min(h.start for h in hits) - since, max(h.end for h in hits) - since, pace

    def reset(self) -> None:
        """Nothing to clear: `politeness(since)` looks at hits after a time."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--hits", type=Path, required=True)
    args = parser.parse_args()
    site = WideSite(hosts=args.hosts, pages=args.pages, latency=args.latency)
    asyncio.run(site.run_forever(args.hits))


if __name__ == "__main__":
    main()
