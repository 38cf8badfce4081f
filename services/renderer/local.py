"""Render a clip on this machine: piper speaks the line over the avatar still, with a slow push-in."""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from pathlib import Path
from typing import Final

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from contracts.commands import RenderClip
from contracts.formats import frame_size
from services.renderer import tts
from services.runtime.ffmpeg import run_ffmpeg

FPS: Final = 25
AUDIO_RATE: Final = 48000
# Silence after each line so consecutive clips do not run the speech together.
TAIL_FRAMES: Final = round(0.25 * FPS)
# Total zoom over a clip. Small, because a fast zoom on a still reads as an effect, not as life.
PUSH_IN: Final = 0.05
CRF: Final = 20

_BACKDROP_SHRINK: Final = 16  # blurring a thumbnail and scaling it up is ~100x cheaper than blurring at full size
_BACKDROP_BRIGHTNESS: Final = 0.6  # darker than the subject, so the eye goes to the face


def _even(x: float) -> int:
    return 2 * round(x / 2)


def compose_still(avatar: Path, size: tuple[int, int], dest: Path) -> None:
    """The avatar fitted without distortion, over a blurred, darkened copy of itself that covers the whole frame."""
    width, height = size
    with Image.open(avatar) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGBA")
    flat = Image.new("RGBA", image.size, (128, 128, 128, 255))
    flat.alpha_composite(image)
    backdrop = ImageOps.fit(
        flat.convert("RGB"),
        (max(1, width // _BACKDROP_SHRINK), max(1, height // _BACKDROP_SHRINK)),
        Image.Resampling.BILINEAR,
    ).filter(ImageFilter.GaussianBlur(4))
    canvas = ImageEnhance.Brightness(backdrop.resize(size, Image.Resampling.BICUBIC)).enhance(_BACKDROP_BRIGHTNESS)
    subject = ImageOps.contain(image, size, Image.Resampling.LANCZOS)
    canvas.paste(subject, ((width - subject.width) // 2, (height - subject.height) // 2), subject)
    # BMP: no compression to spend time on, for a file ffmpeg reads once.
    canvas.save(dest, format="BMP")


def _video_filter(width: int, height: int, frames: int, push_in: float) -> str:
    # Convert and loop the single decoded still in memory: ffmpeg then decodes and converts the image once, not
    # once per frame as `-loop 1` would.
    chain = [
        "scale=out_color_matrix=bt709:out_range=tv",
        "format=yuv420p",
        f"loop=loop={frames - 1}:size=1:start=0",
        f"setpts=N/({FPS}*TB)",
    ]
    if push_in > 0:
        # The still is composed at the final zoom; each frame scales it down less. Sizes stay even so the
        # centred crop lands on whole pixels and the picture does not wobble; bilinear is plenty for <5 %.
        grow = f"(1+{push_in}*n/{max(1, frames - 1)})"
        chain += [
            f"scale=w='2*round({width}*{grow}/2)':h='2*round({height}*{grow}/2)':eval=frame:flags=bilinear",
            f"crop={width}:{height}",
        ]
    chain.append("setsar=1")
    return "[0:v]" + ",".join(chain) + "[v]"


def _audio_filter(frames: int) -> str:
    # Pad with silence, then cut at the sample where the last video frame ends: audio and video are exactly
    # equally long, which the merger's sample-exact join relies on.
    end_sample = frames * AUDIO_RATE // FPS
    return f"[1:a]aresample={AUDIO_RATE},apad,atrim=end_sample={end_sample}[a]"


class LocalClipRenderer:
    def __init__(self, *, push_in: float = PUSH_IN, threads: int = 2) -> None:
        self._push_in = push_in
        self._threads = threads

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> float:
        width, height = frame_size(command.aspect_ratio, command.resolution)
        canvas_size = (_even(width * (1 + self._push_in)), _even(height * (1 + self._push_in)))
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside `out` and renamed at the end, so a crash never leaves a half clip under the real name.
        partial = out.with_name(f".{out.stem}.partial.mp4")
        with tempfile.TemporaryDirectory(prefix="adagent-clip-") as tmp:
            speech = Path(tmp) / "speech.wav"
            still = Path(tmp) / "still.bmp"
            speech_s, _ = await asyncio.gather(
                asyncio.to_thread(tts.write_wav, command.clip.line, speech),
                asyncio.to_thread(compose_still, avatar, canvas_size, still),
            )
            frames = math.ceil(speech_s * FPS) + TAIL_FRAMES
            try:
                await self._encode(still, speech, width, height, frames, partial)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        os.replace(partial, out)
        return frames / FPS

    async def _encode(self, still: Path, speech: Path, width: int, height: int, frames: int, out: Path) -> None:
        await run_ffmpeg(
            "-i",
            str(still),
            "-i",
            str(speech),
            "-filter_complex",
            _video_filter(width, height, frames, self._push_in) + ";" + _audio_filter(frames),
            "-map",
            "[v]",
            "-map",
            "[a]",
            "-frames:v",
            str(frames),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            str(CRF),
            "-threads",
            str(self._threads),
            # B-frames cost ~30 % of the encode on this slow, even motion and save nothing measurable in size.
            "-bf",
            "0",
            "-r",
            str(FPS),
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-color_range",
            "tv",
            # Mono: the voice is mono, and the AAC encoder takes half the time.
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ar",
            str(AUDIO_RATE),
            "-ac",
            "1",
            "-movflags",
            "+faststart",
            str(out),
        )
