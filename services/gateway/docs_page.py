"""The Swagger UI page at /docs, with a Content-Security-Policy that lets only this page's own code run.

Swagger UI needs one inline script (the spec and the options it starts with) and the page one inline style. Rather
than `'unsafe-inline'`, the policy names their SHA-256, computed from the very bytes the page serves when the page is
built at start-up (the spec is complete only once the app is), so a change to the spec or to the page can never
leave a stale hash behind. Everything else (Swagger UI's script, style sheet and icon) comes from this origin, no CDN.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import msgspec
from litestar import Litestar, Request, Response
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.router import Router
from litestar.utils import ensure_async_callable

_INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.S)


def csp_hash(content: bytes) -> str:
    """A CSP source for an inline element whose text is `content` (CSP3: the hash of its UTF-8 text)."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(content).digest()).decode() + "'"


def content_security_policy(page: bytes) -> str:
    """This page's policy: its inline script and style by hash; Swagger UI's assets, the icon and the API calls of
    "Try it out" from this origin; images also from data: (Swagger UI's icons) and blob: (a binary answer shown);
    nothing may frame it."""
    hashes: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for tag, content in _INLINE.findall(page):
        hashes[tag].append(csp_hash(content))
    return (
        f"default-src 'none'; script-src 'self' {' '.join(hashes[b'script'])}; "
        f"style-src 'self' {' '.join(hashes[b'style'])}; img-src 'self' data: blob:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class SwaggerPage(OpenAPIRenderPlugin):
    """Swagger UI with the spec inline, built once; its headers are set on every answer of the docs' router."""

    def __init__(self, assets: str) -> None:
        super().__init__(path="/", favicon=f'<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">')
        self._assets = assets
        self._page = b""
        self.headers: dict[str, str] = {}

    def build(self, app: Litestar) -> None:
        """Render the page from the app's spec and compute its policy: called when the app is made (create_app)."""
        # `<` escaped keeps a `</script>` inside a description from ending the script: JSON and JavaScript both
        # read \u003c as `<`.
        spec = msgspec.json.encode(app.openapi_schema.to_schema()).replace(b"<", b"\\u003c")
        title = msgspec.json.encode(app.openapi_schema.info.title).decode()[1:-1].replace("<", "&lt;")
        script = b"".join(
            [
                b"\nconst ui = SwaggerUIBundle({\n  spec: ",
                spec,
                b",\n  dom_id: '#swagger-container',\n  deepLinking: true,\n  showExtensions: true,\n"
                b"  showCommonExtensions: true,\n"
                b"  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],\n});\n",
            ]
        )
        head = (
            f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n{self.favicon}\n'
            f'<link href="{self._assets}/swagger-ui.css" rel="stylesheet">\n'
            f'<script src="{self._assets}/swagger-ui-bundle.js"></script>\n'
            f'<script src="{self._assets}/swagger-ui-standalone-preset.js"></script>\n'
            "<style>body { margin: 0; padding: 0 }</style>\n</head>\n"
        ).encode()
        body = b'<body>\n<div id="swagger-container"></div>\n<script>' + script + b"</script>\n</body>\n</html>\n"
        self._page = head + body
        self.headers = {
            "Content-Security-Policy": content_security_policy(self._page),
            "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
        }

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if not self._page:  # an app made otherwise than by create_app: build on first use instead
            self.build(request.app)
        return self._page

    def receive_router(self, router: Router) -> None:
        # The router serving /docs (and /docs/openapi.json, and its "not found" page) is Litestar's own: give its
        # answers this page's headers as they leave.
        async def with_headers(response: Response[Any]) -> Response[Any]:
            for name, value in self.headers.items():
                response.headers.setdefault(name, value)
            return response

        router.after_request = ensure_async_callable(with_headers)


def build_docs_pages(app: Litestar) -> None:
    """Render every Swagger page of the app, and their policies, once its routes are all known."""
    for plugin in app.openapi_config.render_plugins if app.openapi_config else ():
        if isinstance(plugin, SwaggerPage):
            plugin.build(app)
