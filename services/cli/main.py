"""`adagent`: serve the embedded stack, create an ad with a live progress bar, print a job's history."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
from pathlib import Path

from contracts.formats import ASPECT_RATIOS, RESOLUTIONS
from services.cli import accounts_cmd, dev_cmd, service_cmd
from services.cli.admin_store import admin_store
from services.cli.create import CreateFailed, create_ad, request_body
from services.cli.events import format_history
from services.cli.server import bind, public_url, running_server
from services.cli.signals import stop_on_signals
from services.gateway.accounts import AccountError
from services.gateway.auth import Auth
from services.runtime.logging import configure_logging
from services.runtime.settings import SettingsError, load_settings


async def local_user_token(auth: Auth) -> str:
    """The embedded stack is this process's own: act as its built-in user "local", made on first use."""
    if "local" not in await auth.accounts.list_users():
        with contextlib.suppress(AccountError):  # another process made it first
            await auth.accounts.add_user("local", secrets.token_urlsafe(24))
    token, _ = auth.issue_token("local")
    return token


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adagent", description="Script and avatar in, finished video ad out.")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway and every service in one process (embedded default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)

    create = sub.add_parser("create", help="render an ad, with a live progress bar")
    create.add_argument("--script", type=Path, required=True, help="a text file with what the character says")
    create.add_argument("--avatar", type=Path, required=True, help="a PNG, JPEG or WebP image of the character")
    create.add_argument("--out", type=Path, default=Path("ad.mp4"))
    create.add_argument("--aspect-ratio", choices=ASPECT_RATIOS, default=None)
    create.add_argument("--resolution", choices=RESOLUTIONS, default=None)
    create.add_argument("--character-name", default=None)
    create.add_argument("--voice-id", default=None)
    create.add_argument(
        "--server", default=None, help="a running AdAgent, e.g. http://127.0.0.1:8001 (default: embedded)"
    )
    create.add_argument(
        "--token",
        default=os.environ.get("ADAGENT_TOKEN"),
        help="with --server: a bearer token or API key (default: $ADAGENT_TOKEN)",
    )

    events = sub.add_parser("events", help="print a job's history from the event store")
    events.add_argument("job_id")

    sub.add_parser(
        "rebuild-views",
        help="rebuild every job's view (status, lists, the queue) from the event store",
        description="Replays the whole event store into the job views, replacing them; appends wait meanwhile. For "
        "views lost or damaged, or made by an older version that did not keep a field the code now reads.",
    )

    accounts_cmd.add_parsers(sub)
    service_cmd.add_parser(sub)
    dev_cmd.add_parser(sub)
    return p


async def _serve(host: str, port: int) -> None:
    settings = load_settings(public_url=os.environ.get("ADAGENT_PUBLIC_URL") or public_url(host, port))
    stop = stop_on_signals()
    sock = bind(host, port)
    async with running_server(settings, sock):
        print(f"AdAgent is serving on {public_url(host, port)}  (state in {settings.home})", file=sys.stderr)
        await stop.wait()
        print("stopping…", file=sys.stderr)


async def _create(args: argparse.Namespace) -> int:
    if not args.script.is_file():
        print(f"adagent: no script file at {args.script}", file=sys.stderr)
        return 2
    if not args.avatar.is_file():
        print(f"adagent: no avatar image at {args.avatar}", file=sys.stderr)
        return 2
    body = request_body(
        args.script.read_text(encoding="utf-8"),
        args.avatar,
        aspect_ratio=args.aspect_ratio,
        resolution=args.resolution,
        character_name=args.character_name,
        voice_id=args.voice_id,
    )
    try:
        if args.server:
            outcome = await create_ad(args.server.rstrip("/"), body, args.out, token=args.token)
        else:
            sock = bind("127.0.0.1", 0)
            port = sock.getsockname()[1]
            settings = load_settings(public_url=public_url("127.0.0.1", port))
            async with running_server(settings, sock) as stack:
                token = await local_user_token(stack.app.state.auth)
                outcome = await create_ad(public_url("127.0.0.1", port), body, args.out, token=token)
    except CreateFailed as exc:
        print(f"adagent: the ad failed: {exc}", file=sys.stderr)
        return 1
    total = outcome.events[-1][2] if outcome.events else 0.0
    print(f"job {outcome.job_id}: {args.out.resolve()}  ({total:.1f}s)")
    steps = "  ".join(f"{k} {v:.1f}s" for k, v in outcome.step_times().items())
    print(f"steps: {steps}", file=sys.stderr)
    return 0


async def _rebuild_views() -> int:
    async with admin_store() as store:
        jobs, events = await store.rebuild_views()
    print(f"rebuilt {jobs} job views from {events} events")
    return 0


async def _events(job_id: str) -> int:
    async with admin_store() as store:
        history = await store.history(job_id)
    if not history:
        print(f"adagent: no events for job {job_id}", file=sys.stderr)
        return 1
    print(format_history(history))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(os.environ.get("ADAGENT_LOG_LEVEL", "WARNING"))
    try:
        if args.command == "serve":
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_serve(args.host, args.port))
            return 0
        if args.command == "create":
            return asyncio.run(_create(args))
        if args.command == "service":
            return asyncio.run(service_cmd.run_service(args.name, args.host, args.port))
        if args.command == "dev":
            return asyncio.run(dev_cmd.run(args))
        if args.command == "rebuild-views":
            return asyncio.run(_rebuild_views())
        if args.command in accounts_cmd.COMMANDS:
            return asyncio.run(accounts_cmd.run(args))
        return asyncio.run(_events(args.job_id))
    except SettingsError as exc:
        print(f"adagent: bad setting: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
