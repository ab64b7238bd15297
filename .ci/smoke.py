"""Smoke test of an installed Trawl, run from outside the checkout (CI's non-editable run).

Serves a three-page site on 127.0.0.1, starts `python -m service` with the interpreter
running this script (whose Trawl is the installed package) in an empty directory, checks
/health, crawls the site and checks every page came back. Standard library only.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

PAGES = {
    "/": '<html><head><title>home</title></head><body><a href="/a">a</a> <a href="/b">b</a>',
    "/a": "<html><head><title>a</title></head><body>page a</body></html>",
    "/b": '<html><head><title>b</title></head><body><a href="/">home</a></body></html>',
}


class Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(method: str, url: str, body: object | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def wait_for(probe: object, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()  # type: ignore[operator]
            if value:
                return value
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"smoke: {what} not within {timeout}s")
        time.sleep(0.2)


def main() -> int:
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{site.server_address[1]}"
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as workdir:
        env = {
            **os.environ,
            "PORT": str(port),
            "DATABASE_URL": f"sqlite:///{workdir}/trawl.db",
            "SCRAPER_ALLOW_PRIVATE_NETWORKS": "1",
        }
        service = subprocess.Popen([sys.executable, "-m", "service"], cwd=workdir, env=env)
        try:
            wait_for(lambda: call("GET", f"{api}/health").get("status") == "ok", 60, "/health")
            job = call("POST", f"{api}/v1/jobs", {"url": f"{origin}/", "max_depth": 1})

            def finished() -> dict[str, object] | None:
                state = call("GET", f"{api}/v1/jobs/{job['id']}")
                return state if state["status"] in ("completed", "failed", "cancelled") else None

            final = wait_for(finished, 60, "job completion")
            assert isinstance(final, dict)
            stats = final["stats"]
            assert isinstance(stats, dict)
            if final["status"] != "completed" or stats["pages_fetched"] != len(PAGES):
                raise SystemExit(f"smoke: unexpected job {json.dumps(final)}")
            # /docs: the spec and the vendored Swagger UI come from the installed package.
            if "paths" not in call("GET", f"{api}/docs/openapi.json"):
                raise SystemExit("smoke: /docs/openapi.json has no paths")
            with urllib.request.urlopen(f"{api}/docs/assets/swagger-ui-bundle.js") as asset:
                if len(asset.read()) < 100_000:
                    raise SystemExit("smoke: /docs/assets/swagger-ui-bundle.js is not the bundle")
            print(f"smoke: ok ({Path(sys.executable).parent.parent}, {stats})")
        finally:
            service.terminate()
            code = service.wait(timeout=30)
            site.shutdown()
        if code != 0:
            raise SystemExit(f"smoke: service exited {code} on SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
