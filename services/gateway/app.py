"""The Litestar application: its routes, error handling and state."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException

from services.gateway.auth import current_user, make_auth
from services.gateway.cors import cors_config
from services.gateway.docs_page import build_docs_pages
from services.gateway.errors import (
    RequestError,
    http_error_handler,
    provider_error_handler,
    request_error_handler,
)
from services.gateway.head_requests import head_as_get, is_head
from services.gateway.journal import Journal
from services.gateway.openapi import docs_routes, openapi_config
from services.gateway.routes import account, auth, files, health, jobs, stream
from services.gateway.routes.web import web_routes
from services.gateway.security_headers import add_security_headers
from services.runtime.context import Runtime
from services.runtime.errors import ProviderError, TransientError


class Gateway(Litestar):
    """The app, answering HEAD wherever it answers GET (services.gateway.head_requests): before routing, so that
    every route has it, the docs' and the static assets' included."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if is_head(scope):
            await head_as_get(super().__call__, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(rt: Runtime, journal: Journal) -> Litestar:
    state = State({"runtime": rt, "journal": journal, "ready": False, "auth": make_auth(rt)})
    # Room for the largest allowed avatar in base64 plus the rest of the body.
    max_body = rt.settings.max_image_bytes * 4 // 3 + 1_000_000
    app = Gateway(
        route_handlers=[
            *stream.ROUTES,
            *jobs.ROUTES,
            *auth.ROUTES,
            *account.ROUTES,
            *health.ROUTES,
            *files.ROUTES,
            *docs_routes(),
            *web_routes(rt.settings.public_url),
        ],
        openapi_config=openapi_config(rt.settings),
        cors_config=cors_config(rt.settings),
        # Every route that names a `user` parameter needs a credential; the events routes widen it (URL token).
        dependencies={"user": Provide(current_user)},
        state=state,
        exception_handlers={
            RequestError: request_error_handler,
            HTTPException: http_error_handler,
            ProviderError: provider_error_handler,
            TransientError: provider_error_handler,
        },
        request_max_body_size=max_body,
        before_send=[add_security_headers],  # nosniff and Referrer-Policy on every answer, 404s and streams included
        logging_config=None,  # logging is configured once, with secret scrubbing, by services.runtime.logging
    )
    # Now, not in a lifespan hook (the server runs without lifespan): /docs, and the hashes its policy names.
    build_docs_pages(app)
    return app
