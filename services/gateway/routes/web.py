"""`GET /`: the web page (sign in, create an ad, watch its progress), and its script and style sheet under `/web/`.

The page is a client of the public API like any other: it signs in with `POST /api/auth/login` (or takes an API
key), keeps the credential in `sessionStorage` and sends it in `Authorization`. No build step and no CDN: three files
in `services/gateway/web/`, shipped as package data.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath
from litestar.response import Response

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
NO_CACHE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def content_security_policy(public_url: str) -> str:
    """Only this origin's script, style and API; images from data:/blob: (the avatar preview); media from anywhere
    over the network (a Cloud Storage signed URL is another origin, a local `/files` link is this one or the
    configured public URL) and blob: (captions read with fetch from another origin)."""
    parts = urlsplit(public_url)
    public_origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    connect = " ".join(filter(None, ["'self'", "https:", public_origin]))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"media-src * blob:; connect-src {connect}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def web_routes(public_url: str) -> list[BaseRouteHandler]:
    """The page and its two assets, read once when the app is made."""
    page = (WEB_DIR / "index.html").read_bytes()
    assets = {name: (WEB_DIR / name).read_bytes() for name in ASSETS}
    page_headers = {
        **NO_CACHE,
        "Content-Security-Policy": content_security_policy(public_url),
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }

    @get("/", include_in_schema=False, sync_to_thread=False)
    def index() -> Response[bytes]:
        return Response(page, media_type="text/html; charset=utf-8", headers=page_headers)

    @get("/web/{name:str}", include_in_schema=False, sync_to_thread=False)
    def asset(name: FromPath[str]) -> Response[bytes]:
        if name not in assets:
            raise NotFoundException(f"no file {name}")
        return Response(assets[name], media_type=ASSETS[name], headers=NO_CACHE)

    return [index, asset]
