"""`python -m services.NAME`: DESIGN.md's entry point of each service, the same process as `adagent service NAME`.

It goes through `adagent`'s own `main` rather than calling `run_service` directly, so that both commands share
everything: argument parsing (the gateway's --host/--port), logging set-up, and the exit codes and messages (2 and
`adagent: bad setting: ...` for a bad setting)."""

from __future__ import annotations

import sys

from services.cli.main import main


def run_service_module(name: str, argv: list[str] | None = None) -> int:
    """Run service `name` with the command line's arguments (those after `python -m services.NAME`)."""
    return main(["service", name, *(sys.argv[1:] if argv is None else argv)])
