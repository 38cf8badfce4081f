"""The renderer service: consumes RenderClip commands, as many at once per process as its provider can work on.

The local renderer uses this machine's cores: ADAGENT_RENDER_CONCURRENCY clips at once. Veo makes clips elsewhere
and a clip mostly waits on it, so the service takes as many as the quota lets start (`RemoteClipRenderer`), and
ADAGENT_RENDER_CONCURRENCY bounds only the part of each clip that runs here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial

from services.renderer.handler import handle_render_clip
from services.renderer.local import LocalClipRenderer
from services.renderer.port import ClipRenderer, RemoteClipRenderer
from services.runtime.context import Runtime
from services.runtime.settings import Settings, SettingsError

QUEUE = "renderer"


STEP = (2, "Generating a clip")


def make_renderer(rt: Runtime, env: Mapping[str, str] | None = None) -> ClipRenderer:
    """The provider ADAGENT_RENDERER names; a cloud one checks its credentials here, at start."""
    if rt.settings.renderer == "veo":
        from services.renderer.operation_log import HistoryOperationLog
        from services.renderer.rate_limit import RateLimit
        from services.renderer.veo import VeoClipRenderer, VeoConfig
        from services.runtime.google_client import GoogleClientConfig, make_client
        from services.runtime.limits_storage import close_limits_storage, limits_storage

        env = os.environ if env is None else env
        config = VeoConfig.from_env(env)
        if config.output_gcs_uri and rt.settings.storage != "gcs":
            raise SettingsError("ADAGENT_VEO_OUTPUT_GCS_URI needs ADAGENT_STORAGE=gcs to read the clips back")
        google = GoogleClientConfig.from_env(env, vertex_required=True, needed_by="ADAGENT_RENDERER=veo")
        client = make_client(google)
        rt.closers.append(client.aio.aclose)
        # One count for the project's quota: in this process's memory when embedded, in PostgreSQL (every renderer
        # process of the distributed mode, a 429 met by one holding back all) when the store is shared.
        storage = limits_storage(rt.settings)
        rt.closers.append(lambda: close_limits_storage(storage))
        limit = RateLimit(config.requests_per_minute, name=f"veo:{config.model}", storage=storage)
        return VeoClipRenderer(
            config,
            client,
            HistoryOperationLog(rt),
            rt.storage.fetch,
            rate_limit=limit,
            credentials_source=google.credentials_source,
            local_slots=rt.settings.render_concurrency,
        )
    return LocalClipRenderer(voice_from_request=rt.settings.voice == "local")


def clips_at_once(renderer: ClipRenderer, settings: Settings) -> int:
    """How many RenderClip commands this process takes at once (the bus's prefetch) with `renderer`."""
    if isinstance(renderer, RemoteClipRenderer):
        return renderer.clips_at_once
    return settings.render_concurrency


async def start(rt: Runtime, renderer: ClipRenderer | None = None) -> None:
    rt.steps[QUEUE] = STEP
    renderer = renderer or make_renderer(rt)
    handler = partial(handle_render_clip, rt=rt, renderer=renderer)
    await rt.bus.consume_commands(QUEUE, ["RenderClip"], handler, concurrency=clips_at_once(renderer, rt.settings))
