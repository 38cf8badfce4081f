"""`adagent events JOB_ID`: a job's history from the event store, one line an event."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from contracts.events import RecordedEvent, event_type

_HIDDEN = {"event_id", "job_id", "v", "type"}
# Signed links that v1 JobCompleted events stored: live credentials until they expire, so never printed.
_LINKS = ("final_video_url", "captions_url")


def format_event(recorded: RecordedEvent, started: float) -> str:
    ev = recorded.event
    fields: dict[str, Any] = {k: v for k, v in msgspec.to_builtins(ev).items() if k not in _HIDDEN}
    for link in _LINKS:
        if link in fields:
            if fields[link] is None:
                del fields[link]
            else:
                fields[link] = "(signed link, not shown)"
    if "clips" in fields:
        fields["clips"] = [f"{c['index']}: {c['line']!r} (~{c['est_seconds']}s)" for c in fields["clips"]]
    if "script" in fields and len(fields["script"]) > 60:
        fields["script"] = fields["script"][:57] + "..."
    when = dt.datetime.fromtimestamp(recorded.recorded_at, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
    detail = "  ".join(f"{k}={v}" for k, v in fields.items() if not isinstance(v, list))
    lines = [f"{recorded.seq:>3}  {when}  +{recorded.recorded_at - started:7.2f}s  {event_type(ev):<24} {detail}"]
    for v in fields.values():
        if isinstance(v, list):
            lines.extend(f"{'':>44}{item}" for item in v)
    return "\n".join(line.rstrip() for line in lines)


def format_history(history: list[RecordedEvent]) -> str:
    if not history:
        return ""
    started = history[0].recorded_at
    return "\n".join(format_event(r, started) for r in history)
