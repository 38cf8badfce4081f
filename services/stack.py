"""The whole topology in one process: the embedded default (and, with ADAGENT_BUS=rabbitmq, every service of the
distributed mode inside one process, connected through the broker)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Litestar

from services.gateway import scheduler
from services.gateway.app import create_app
from services.gateway.journal import Journal
from services.gateway.webhooks import WebhookDispatcher
from services.merger import service as merger_service
from services.prompter import service as prompter_service
from services.prompter.port import PromptWriter
from services.renderer import service as renderer_service
from services.renderer.port import ClipRenderer
from services.runtime.context import Runtime, open_runtime
from services.runtime.settings import Settings
from services.voice import service as voice_service
from services.voice.port import VoiceEnhancer


@dataclass
class Stack:
    runtime: Runtime
    journal: Journal
    app: Litestar
    webhooks: WebhookDispatcher

    async def close(self) -> None:
        self.app.state.ready = False
        await self.webhooks.close()
        await self.journal.stop()
        await self.runtime.close()


async def open_stack(
    settings: Settings,
    *,
    writer: PromptWriter | None = None,
    renderer: ClipRenderer | None = None,
    enhancer: VoiceEnhancer | None = None,
) -> Stack:
    """Providers default to the local ones; tests pass their own to observe or break a step."""
    rt = await open_runtime(settings)
    try:
        await prompter_service.start(rt, writer)
        await renderer_service.start(rt, renderer)
        await merger_service.start(rt)
        await voice_service.start(rt, enhancer)
        await scheduler.start(rt)
        journal = Journal(rt.store, rt.bus, keepalive_seconds=rt.settings.sse_keepalive_seconds)
        await journal.start()
        app = create_app(rt, journal)
        webhooks = WebhookDispatcher(rt, app.state.auth.accounts.webhook_secret, delays=rt.settings.webhook_delays)
        await webhooks.start()
    except BaseException:
        await rt.close()
        raise
    app.state.ready = True
    return Stack(rt, journal, app, webhooks)
