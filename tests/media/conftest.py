from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from contracts.commands import RenderClip
from contracts.events import ClipPlan
from services.merger.concat import SUFFIX, concat_clips
from services.renderer.local import LocalClipRenderer

LINES = (
    "Hi, I'm Joe.",
    "Tired of bitter coffee? So was I.",
    "Try Brewmaster today, and taste the difference in every cup.",
)


@dataclass(frozen=True)
class Rendered:
    line: str
    path: Path
    duration_s: float


def render_command(line: str, aspect_ratio: str, resolution: str, index: int = 1) -> RenderClip:
    return RenderClip(
        command_id=f"cmd-{index}",
        job_id="job-media-test",
        clip=ClipPlan(index=index, line=line, prompt="a friendly barista", est_seconds=3.0),
        total_clips=len(LINES),
        avatar_ref="file:///avatar.png",
        character_name="Joe",
        voice_id=None,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
    )


@pytest.fixture(scope="session")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A portrait cartoon face: portrait so that every aspect ratio needs the blurred fill on some side."""
    img = Image.new("RGB", (512, 640), (70, 130, 180))
    d = ImageDraw.Draw(img)
    d.ellipse((106, 120, 406, 480), fill=(240, 200, 160), outline=(90, 60, 40), width=6)
    for x in (176, 286):
        d.ellipse((x, 230, x + 50, 280), fill=(255, 255, 255))
        d.ellipse((x + 14, 244, x + 36, 266), fill=(30, 30, 30))
    d.arc((186, 320, 326, 420), 20, 160, fill=(160, 40, 40), width=8)
    d.rectangle((106, 540, 406, 640), fill=(200, 60, 60))
    path = tmp_path_factory.mktemp("avatar") / "avatar.png"
    img.save(path)
    return path


def _render_all(commands: list[RenderClip], avatar: Path, folder: Path) -> list[Rendered]:
    async def go() -> list[Rendered]:
        renderer = LocalClipRenderer()
        done = []
        for command in commands:
            shape = command.aspect_ratio.replace(":", "x")
            out = folder / f"clip-{command.clip.index}-{shape}-{command.resolution}.mp4"
            done.append(Rendered(command.clip.line, out, (await renderer.render(command, avatar, out)).duration))
        return done

    return asyncio.run(go())


@pytest.fixture(scope="session")
def ad_clips(avatar: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Rendered]:
    """The three lines of one ad at 16:9 720p: rendered once, shared by the renderer and merger tests."""
    commands = [render_command(line, "16:9", "720p", i) for i, line in enumerate(LINES, start=1)]
    return _render_all(commands, avatar, tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="session")
def render_one(avatar: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Rendered]:
    """Render the middle line of the ad in another format."""
    folder = tmp_path_factory.mktemp("formats")

    def render(aspect_ratio: str, resolution: str) -> Rendered:
        return _render_all([render_command(LINES[1], aspect_ratio, resolution)], avatar, folder)[0]

    return render


@pytest.fixture(scope="session")
def merged(ad_clips: list[Rendered], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The ad's clips joined: what the merger hands the voice step."""
    out = tmp_path_factory.mktemp("merged") / f"merged{SUFFIX}"
    duration = asyncio.run(concat_clips([clip.path for clip in ad_clips], out))
    return out, duration
