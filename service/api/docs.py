"""/docs: the OpenAPI document and a Swagger UI served from the package (no CDN)."""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file, html
from sanic.response import json as json_response

from service.api import openapi
from service.errors import NotFound

bp = Blueprint("docs", url_prefix="/docs")

SWAGGER_UI_VERSION = "5.35.0"
ASSETS = Path(__file__).with_name("swagger_ui")
# Swagger UI needs no inline script, no eval and no third party: only its own files, the
# spec (fetched), `data:` images from its stylesheet, and the API itself for "Try it out".
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SERVED = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "init.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-16x16.png": "image/png",
    "favicon-32x32.png": "image/png",
}
_PAGE = (ASSETS / "index.html").read_text(encoding="utf-8")


@bp.get("")
async def index(request: Request) -> HTTPResponse:
    # Relative links, so the page also works behind a proxy that adds a path prefix.
    base = "" if request.path.endswith("/") else "docs/"
    page = _PAGE.replace("__ASSETS__", f"{base}assets").replace("__SPEC__", f"{base}openapi.json")
    return html(page, headers={"Content-Security-Policy": DOCS_CSP})


@bp.get("/openapi.json")
async def spec(request: Request) -> HTTPResponse:
    return json_response(openapi.document(request.app))


@bp.get("/assets/<name:str>")
async def asset(request: Request, name: str) -> HTTPResponse:
    mime_type = _SERVED.get(name)
    if mime_type is None:
        raise NotFound()
    return await file(
        ASSETS / name,
        mime_type=mime_type,
        request_headers=request.headers,
        validate_when_requested=True,
        max_age=86400,
        headers={"Content-Security-Policy": DOCS_CSP},
    )
