"""The web dashboard at `/`: a page and its assets, all shipped in the package.

The page holds no data: its script calls the /v1 API (with the key the user types, kept in
session storage), so it is served without authentication. It runs under a strict
Content-Security-Policy: scripts, styles and connections to this origin only, no inline
code, no third party.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from service.errors import NotFound

bp = Blueprint("dashboard")

DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_ASSET_PREFIX = "/dashboard"


def _load() -> dict[str, tuple[bytes, str, str]]:
    """Every asset, read once: name -> (body, content type, ETag)."""
    assets = {}
    for entry in resources.files("service.dashboard").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.name.startswith(("_", ".")) or suffix not in _TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[entry.name] = (body, _TYPES[suffix], etag)
    return assets


_ASSETS = _load()
_PAGE = _ASSETS.pop("index.html")[0].decode().replace("__ASSETS__", _ASSET_PREFIX)


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Content-Security-Policy": DASHBOARD_CSP, **(extra or {})}


@bp.get("/")
async def index(request: Request) -> HTTPResponse:
    headers = _headers({"Cache-Control": "no-cache"})
    return HTTPResponse(_PAGE, content_type="text/html; charset=utf-8", headers=headers)


@bp.get(f"{_ASSET_PREFIX}/<name:str>")
async def asset(request: Request, name: str) -> HTTPResponse:
    found = _ASSETS.get(name)
    if found is None:
        raise NotFound()
    body, content_type, etag = found
    # Revalidated on every load (a 304 is cheap): an upgrade never leaves stale scripts.
    headers = _headers({"ETag": etag, "Cache-Control": "no-cache"})
    if request.headers.get("if-none-match") == etag:
        return HTTPResponse(status=304, headers=headers)
    return HTTPResponse(body, content_type=content_type, headers=headers)
