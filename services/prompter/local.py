"""Rule-based prompt writer: works offline, same script in, same clips out."""

from __future__ import annotations

from contracts.events import ClipPlan, JobRequested
from services.prompter.script_split import speech_seconds, split_script
from services.runtime.errors import ScriptError

_CAMERA = (
    "medium close-up, eye level, slow push-in",
    "medium shot, slight low angle, gentle handheld drift",
    "close-up, eye level, shallow depth of field",
)


def _emotion(line: str) -> str:
    if line.rstrip().endswith("!"):
        return "enthusiastic and energetic"
    if line.rstrip().endswith("?"):
        return "curious, inviting the viewer in"
    return "warm, confident and friendly"


class LocalPromptWriter:
    async def write_prompts(self, job: JobRequested) -> list[ClipPlan]:
        lines = split_script(job.script)
        if not lines:
            raise ScriptError("the script has no words to speak")
        name = job.character_name or "character"
        return [
            ClipPlan(
                index=i,
                line=line,
                prompt=(
                    f'{name}, exactly as in the reference image, speaks straight to camera: "{line}" '
                    f"Bright, clean studio setting; {_CAMERA[(i - 1) % len(_CAMERA)]}; {_emotion(line)}; "
                    "lips in sync with the words."
                ),
                est_seconds=round(speech_seconds(line), 2),
            )
            for i, line in enumerate(lines, start=1)
        ]
