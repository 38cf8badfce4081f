"""The SSE mapping is a fold over the history: parallel clip completion in any order gives the seed's sequence."""

from __future__ import annotations

import itertools

from contracts.events import (
    ClipPlan,
    ClipRendered,
    ClipRenderingStarted,
    PromptingStarted,
    PromptsGenerated,
    RecordedEvent,
)
from contracts.sse import project


def _history(order: tuple[int, ...]) -> list[RecordedEvent]:
    n = len(order)
    clips = [ClipPlan(index=i, line="x", prompt="p", est_seconds=1) for i in range(1, n + 1)]
    events = [
        PromptingStarted(event_id="a/1", job_id="ad_1"),
        PromptsGenerated(event_id="a/2", job_id="ad_1", clips=clips),
        ClipRenderingStarted(event_id="a/3", job_id="ad_1", total_clips=n),
        *(
            ClipRendered(event_id=f"a/c{i}", job_id="ad_1", index=i, total_clips=n, clip_ref="r", duration_s=1)
            for i in order
        ),
    ]
    return [RecordedEvent(seq=s, recorded_at=0, event=e) for s, e in enumerate(events, start=1)]


def test_clip_events_follow_the_seed_in_every_completion_order() -> None:
    for order in itertools.permutations(range(1, 5)):
        sse = project(_history(order))
        clips = [e for e in sse if e.event == "step2_clip"]
        assert [c.data["current_clip"] for c in clips] == [1, 2, 3, 4]
        assert [c.data["progress"] for c in clips] == [30, 35, 40, 45]


def test_six_clips_give_the_seeds_progress_numbers() -> None:
    clips = [e for e in project(_history((2, 1, 4, 3, 6, 5))) if e.event == "step2_clip"]
    assert [c.data["progress"] for c in clips] == [30, 33, 36, 40, 43, 46]
    assert clips[2].data["message"] == "Generating clip 3/6"
