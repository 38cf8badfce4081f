"""The Litestar application: its routes, error handling and state."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException

from services.gateway.auth import current_user, make_auth
from services.gateway.cors import cors_config
from services.gateway.errors import RequestError, http_error_handler, request_error_handler
from services.gateway.journal import Journal
from services.gateway.openapi import docs_routes, openapi_config
from services.gateway.routes import account, auth, files, health, jobs, stream
from services.gateway.routes.web import web_routes
from services.runtime.context import Runtime


def create_app(rt: Runtime, journal: Journal) -> Litestar:
    state = State({"runtime": rt, "journal": journal, "ready": False, "auth": make_auth(rt)})
    # Room for the largest allowed avatar in base64 plus the rest of the body.
    max_body = rt.settings.max_image_bytes * 4 // 3 + 1_000_000
    return Litestar(
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
        exception_handlers={RequestError: request_error_handler, HTTPException: http_error_handler},
        request_max_body_size=max_body,
        logging_config=None,  # logging is configured once, with secret scrubbing, by services.runtime.logging
    )
