"""A page of the local test site that answers only once opened (a crawl still running)."""

from __future__ import annotations

import threading
from typing import Any

from tests.site import Response, Site

PAGE = b"<html><head><title>Gate</title></head><body>open</body></html>"


class Gate:
    """`site.url(path)` blocks each request (up to `hold` seconds) until `open()`."""

    def __init__(self, site: Site, path: str = "/gate", hold: float = 30.0) -> None:
        self.opened = threading.Event()
        self.hold = hold
        site.route(path, self._serve)
        self.url = site.url(path)

    def _serve(self, handler: Any) -> Response:
        self.opened.wait(self.hold)
        return Response(body=PAGE)

    def open(self) -> None:
        self.opened.set()
