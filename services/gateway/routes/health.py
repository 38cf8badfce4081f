"""`GET /health`: 200 when the stack is ready to take jobs."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State
from litestar.response import Response


@get("/health", summary="200 when the stack is ready to take jobs", tags=["Operations"])
async def health(state: State) -> Response[dict[str, str]]:
    if state.get("ready"):
        return Response({"status": "ok"}, status_code=200)
    return Response({"status": "starting"}, status_code=503)


ROUTES = [health]
