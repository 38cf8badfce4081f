"""The renderer service: consumes RenderClip commands, up to ADAGENT_RENDER_CONCURRENCY at once per process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial

from services.renderer.handler import handle_render_clip
from services.renderer.local import LocalClipRenderer
from services.renderer.port import ClipRenderer
from services.runtime.context import Runtime
from services.runtime.settings import SettingsError

QUEUE = "renderer"


STEP = (2, "Generating a clip")


def make_renderer(rt: Runtime, env: Mapping[str, str] | None = None) -> ClipRenderer:
    """The provider ADAGENT_RENDERER names; a cloud one checks its credentials here, at start."""
    if rt.settings.renderer == "veo":
        from services.renderer.operation_log import HistoryOperationLog
        from services.renderer.rate_limit import RateLimit, RequestRate
        from services.renderer.shared_rate_limit import SharedRateLimit
        from services.renderer.veo import VeoClipRenderer, VeoConfig
        from services.runtime.google_client import GoogleClientConfig, make_client

        env = os.environ if env is None else env
        config = VeoConfig.from_env(env)
        if config.output_gcs_uri and rt.settings.storage != "gcs":
            raise SettingsError("ADAGENT_VEO_OUTPUT_GCS_URI needs ADAGENT_STORAGE=gcs to read the clips back")
        google = GoogleClientConfig.from_env(env, vertex_required=True, needed_by="ADAGENT_RENDERER=veo")
        client = make_client(google)
        rt.closers.append(client.aio.aclose)
        limit: RequestRate = RateLimit(config.requests_per_minute)
        if rt.settings.store == "postgres":
            # Renderer processes of the distributed mode draw on one project quota: they share one limit.
            shared = SharedRateLimit(
                rt.settings.database_url, rt.settings.database_schema, f"veo:{config.model}", config.requests_per_minute
            )
            rt.closers.append(shared.close)
            limit = shared
        return VeoClipRenderer(
            config,
            client,
            HistoryOperationLog(rt),
            rt.storage.fetch,
            rate_limit=limit,
            credentials_source=google.credentials_source,
        )
    return LocalClipRenderer(voice_from_request=rt.settings.voice == "local")


async def start(rt: Runtime, renderer: ClipRenderer | None = None) -> None:
    rt.steps[QUEUE] = STEP
    handler = partial(handle_render_clip, rt=rt, renderer=renderer or make_renderer(rt))
    await rt.bus.consume_commands(QUEUE, ["RenderClip"], handler, concurrency=rt.settings.render_concurrency)
