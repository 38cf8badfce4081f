"""`GET /health`: 200 when the stack is ready to take jobs."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State
from litestar.response import Response

from services.gateway.openapi import HealthStatus, json_response


@get(
    "/health",
    summary="200 when the stack is ready to take jobs",
    description="For load balancers and orchestrators: no credential needed.",
    tags=["Operations"],
    responses={
        200: json_response(HealthStatus, "Ready to take jobs", ready={"status": "ok"}),
        503: json_response(HealthStatus, "Starting or stopping: not ready yet", starting={"status": "starting"}),
    },
)
async def health(state: State) -> Response[dict[str, str]]:
    if state.get("ready"):
        return Response({"status": "ok"}, status_code=200)
    return Response({"status": "starting"}, status_code=503)


ROUTES = [health]
