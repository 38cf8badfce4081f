"""The whole topology in one process: the embedded default (and, with ADAGENT_BUS=rabbitmq, every service of the
distributed mode inside one process, connected through the broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
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
from services.runtime.ffmpeg_build import check_ffmpeg
from services.runtime.settings import Settings
from services.runtime.store.port import EventStore
from services.voice import service as voice_service
from services.voice.port import VoiceEnhancer

WORKERS = ("prompter", "renderer", "merger", "voice")
FFMPEG_USERS = frozenset({"renderer", "merger", "voice"})


async def start_worker(
    rt: Runtime,
    name: str,
    *,
    writer: PromptWriter | None = None,
    renderer: ClipRenderer | None = None,
    enhancer: VoiceEnhancer | None = None,
) -> None:
    """Register one worker service's consumers on the runtime's bus."""
    starters: dict[str, Callable[[], Awaitable[None]]] = {
        "prompter": lambda: prompter_service.start(rt, writer),
        "renderer": lambda: renderer_service.start(rt, renderer),
        "merger": lambda: merger_service.start(rt),
        "voice": lambda: voice_service.start(rt, enhancer),
    }
    if name not in starters:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(WORKERS)}")
    if name in FFMPEG_USERS:
        # Before consuming anything: an ffmpeg that cannot do the job stops the service with a message saying why,
        # rather than failing every job at its first clip or at the merge. Probed once per process.
        await asyncio.to_thread(check_ffmpeg)
    await starters[name]()


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
    workers: Collection[str] = WORKERS,
    writer: PromptWriter | None = None,
    renderer: ClipRenderer | None = None,
    enhancer: VoiceEnhancer | None = None,
    store: EventStore | None = None,
) -> Stack:
    """The gateway (with scheduler, journal and webhooks) plus the `workers` named, in this process.
    Providers (and the event store) default to the local ones; tests pass their own to observe or break a step."""
    rt = await open_runtime(settings, store=store)
    try:
        for name in workers:
            await start_worker(rt, name, writer=writer, renderer=renderer, enhancer=enhancer)
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
