"""Render a clip on this machine: a local voice speaks the line; the avatar performs it, and the camera moves.

The picture is made in numpy and streamed to ffmpeg as raw 4:2:0 frames, so ffmpeg only encodes:

1. Compose once: the avatar framed on its face, sharp over its own background continued to the whole canvas
   (`framing`, `backdrop`), on a canvas `1 + push_in` times the frame size, converted once to Y'CbCr (BT.709,
   limited range); the face rig (`animation.face_rig`) is built from the face mesh found once per avatar.
2. The performance (`animation.performance`): a pose per frame (visemes from the voice's phonemes, blinks, head
   motion), the same for the same line.
3. Per frame: the rig draws the pose's picture of the head, which replaces that region of the canvas planes, then the
   camera (`camera.PushIn`) maps the canvas to the frame with one sub-pixel affine warp per plane, so the face moves
   with the camera and every clip starts and ends on the same framing and pose.
4. ffmpeg burns in captions, if any (`captions.ass_filter`), after the camera so they hold still, encodes H.264,
   pads the speech with silence to exactly the video's length and muxes with the index up front.

Without a detectable face the clip renders with camera motion only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from contracts.commands import RenderClip
from contracts.formats import frame_size
from services.renderer import backdrop, face, face_model, framing
from services.renderer.animation.face_rig import FaceRig
from services.renderer.animation.performance import perform, seed_for
from services.renderer.animation.pose import NEUTRAL, PoseTrack
from services.renderer.camera import PushIn, move_for
from services.renderer.captions import ass_filter, write_ass
from services.renderer.port import RenderedClip
from services.renderer.voices import get_voice
from services.runtime.ffmpeg import FfmpegError, ffmpeg_exe

FPS: Final = 25
AUDIO_RATE: Final = 48000
# Silence after each line so consecutive clips do not run the speech together.
TAIL_FRAMES: Final = round(0.25 * FPS)
# The camera's margin: the canvas is this much larger than the frame, and each clip's move (camera.py) spends it.
# Small, because a fast zoom on a still reads as an effect, not as life.
PUSH_IN: Final = 0.08
CRF: Final = 20

_PIPE_BYTES: Final = 1 << 20  # a bigger pipe buffer: fewer wake-ups per frame between this process and ffmpeg

Planes = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]

# BT.709 R'G'B' -> Y'CbCr, limited ("tv") range: rows Y, Cb, Cr.
_BT709: Final = np.array(
    [
        [0.2126 * 219 / 255, 0.7152 * 219 / 255, 0.0722 * 219 / 255],
        [-0.114572 * 224 / 255, -0.385428 * 224 / 255, 0.5 * 224 / 255],
        [0.5 * 224 / 255, -0.454153 * 224 / 255, -0.045847 * 224 / 255],
    ],
    np.float32,
)


def _even(x: float) -> int:
    return 2 * round(x / 2)


def rgb_to_yuv420(rgb: npt.NDArray[np.uint8]) -> Planes:
    """8-bit RGB (even width and height) to BT.709 limited-range Y, Cb, Cr planes, chroma averaged over 2x2."""
    height, width = rgb.shape[:2]
    pixels = rgb.astype(np.float32)
    luma = pixels @ _BT709[0] + 16.5
    quads = cv2.resize(pixels, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    cb = quads @ _BT709[1] + 128.5
    cr = quads @ _BT709[2] + 128.5
    y, u, v = (np.clip(p, 0, 255).astype(np.uint8) for p in (luma, cb, cr))
    return y, u, v


@dataclass(frozen=True)
class Scene:
    """The composed canvas (RGB) and what the animation needs of it.

    `rig`: the mouth rig, when the avatar has a findable face (and the mouth is animated). `landmarks`: the avatar's
    face mesh mapped onto the canvas (same conventions as `face_model`: pixel centres at .5), None without a face.
    `mask`: the person on the canvas (float32 0-1, the alpha the sharp photo was laid with), None when there is no
    trustworthy person mask (no face, or a segmentation that misses the face).
    """

    canvas: npt.NDArray[np.uint8]
    rig: FaceRig | None
    landmarks: face_model.FaceLandmarks | None = None
    mask: npt.NDArray[np.float32] | None = None


def _on_canvas(landmarks: face_model.FaceLandmarks, placed: framing.Framing) -> face_model.FaceLandmarks:
    s, (ox, oy) = placed.scale, placed.offset
    box = landmarks.box
    return face_model.FaceLandmarks(
        points=placed.to_canvas(landmarks.points),
        depth=(landmarks.depth * np.float32(s)).astype(np.float32),  # depth is in pixels too
        box=face_model.FaceBox(box.x0 * s + ox, box.y0 * s + oy, box.x1 * s + ox, box.y1 * s + oy),
        keypoints=placed.to_canvas(landmarks.keypoints),
        score=landmarks.score,
    )


def compose_scene(avatar: Path, size: tuple[int, int], *, animate_mouth: bool = True) -> Scene:
    """The avatar framed on its face (`framing`), sharp, over its own background continued to the whole canvas
    (`backdrop`); without a face, contained and centred. The composition does not depend on `animate_mouth`."""
    photo = face.load_rgb(avatar)
    photo_size = (photo.shape[1], photo.shape[0])
    landmarks = face.find_landmarks(avatar)
    mask = face.find_person_mask(avatar) if landmarks is not None else None
    if mask is not None and landmarks is not None and not backdrop.mask_holds_face(mask, landmarks.box):
        mask = None  # the segmentation missed the person: keep the whole photo sharp instead
    cut = framing.person_edges(mask) if mask is not None else framing.PORTRAIT
    placed = framing.frame(photo_size, size, landmarks, cut)
    pixels, alpha = backdrop.compose(photo, mask, placed)
    on_canvas = _on_canvas(landmarks, placed) if landmarks is not None else None
    canvas_mask = alpha if mask is not None else None
    rig = FaceRig(pixels, on_canvas, canvas_mask) if animate_mouth and on_canvas is not None else None
    return Scene(pixels, rig, on_canvas, canvas_mask)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _produce_frames(fd: int, scene: Scene, track: PoseTrack, push: PushIn, stop: threading.Event) -> None:
    """Write every frame as raw yuv420p to `fd` (closed at the end); a closed reader ends it quietly."""
    try:
        luma, cb, cr = rgb_to_yuv420(scene.canvas)
        width, height = push.frame
        frame = np.empty(width * height * 3 // 2, np.uint8)
        out_y = frame[: width * height].reshape(height, width)
        out_u = frame[width * height : width * height * 5 // 4].reshape(height // 2, width // 2)
        out_v = frame[width * height * 5 // 4 :].reshape(height // 2, width // 2)
        shown = NEUTRAL
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        for n in range(track.frames):
            if stop.is_set():
                return
            rig = scene.rig
            pose = track.at(n)
            if rig is not None and pose != shown:
                r = rig.rect
                py, pu, pv = rgb_to_yuv420(rig.draw(pose))
                luma[r.y : r.y + r.h, r.x : r.x + r.w] = py
                cb[r.y // 2 : (r.y + r.h) // 2, r.x // 2 : (r.x + r.w) // 2] = pu
                cr[r.y // 2 : (r.y + r.h) // 2, r.x // 2 : (r.x + r.w) // 2] = pv
                shown = pose
            full, half = push.matrix(n), push.matrix(n, chroma=True)
            cv2.warpAffine(luma, full, (width, height), dst=out_y, flags=flags, borderMode=cv2.BORDER_REPLICATE)
            cv2.warpAffine(cb, half, (width // 2, height // 2), dst=out_u, flags=flags, borderMode=cv2.BORDER_REPLICATE)
            cv2.warpAffine(cr, half, (width // 2, height // 2), dst=out_v, flags=flags, borderMode=cv2.BORDER_REPLICATE)
            _write_all(fd, memoryview(frame.data))
    except BrokenPipeError:
        return  # ffmpeg stopped reading: it failed (its error says why) or was killed
    finally:
        os.close(fd)


def _audio_filter(frames: int) -> str:
    # Pad with silence, then cut at the sample where the last video frame ends: audio and video are exactly
    # equally long, which the merger's sample-exact join relies on.
    end_sample = frames * AUDIO_RATE // FPS
    return f"[1:a]aresample={AUDIO_RATE},apad,atrim=end_sample={end_sample}[a]"


def _video_filter(captions: str | None) -> str:
    chain = ["setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv", "setsar=1"]
    if captions:
        chain.append(captions)  # last: after the push-in, so the captions hold still
    chain.append("format=yuv420p")
    return "[0:v]" + ",".join(chain) + "[v]"


class LocalClipRenderer:
    def __init__(
        self,
        *,
        push_in: float = PUSH_IN,
        threads: int = 2,
        animate_mouth: bool = True,
        liveness: bool = True,
        captions: bool = True,
        voice_from_request: bool = True,
    ) -> None:
        """`voice_from_request=False`: the request's voice_id belongs to a cloud voice provider (ElevenLabs changes
        the voice at step 4), so the clips speak in the default local voice."""
        self._push_in = push_in
        self._voice_from_request = voice_from_request
        self._threads = threads
        self._animate_mouth = animate_mouth
        self._liveness = liveness
        self._captions = captions

    def push_in(self, command: RenderClip, frames: int) -> PushIn:
        """The zoom a clip of `frames` frames for `command` gets: maps canvas points to frame points."""
        width, height = frame_size(command.aspect_ratio, command.resolution)
        canvas = (_even(width * (1 + self._push_in)), _even(height * (1 + self._push_in)))
        return PushIn(canvas, (width, height), frames, move_for(command.clip.index))

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        """Write the clip to `out`, with word-timed captions burnt in (unless made with captions=False).

        Returns the clip's duration and, from the voice, when each word is heard.
        """
        canvas = self.push_in(command, 1).canvas
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside `out` and renamed at the end, so a crash never leaves a half clip under the real name.
        partial = out.with_name(f".{out.stem}.partial.mp4")
        voice = get_voice(command.voice_id if self._voice_from_request else None)
        with tempfile.TemporaryDirectory(prefix="adagent-clip-") as tmp:
            wav = Path(tmp) / "speech.wav"
            speech, scene = await asyncio.gather(
                asyncio.to_thread(voice.synthesize, command.clip.line),
                asyncio.to_thread(compose_scene, avatar, canvas, animate_mouth=self._animate_mouth),
            )
            speech.write_wav(wav)
            frames = math.ceil(speech.duration_s * FPS) + TAIL_FRAMES
            track = await asyncio.to_thread(
                perform, speech, frames, FPS, seed=seed_for(command.clip.line), liveness=self._liveness
            )
            caption_filter = None
            if self._captions and speech.words:
                ass = Path(tmp) / "captions.ass"
                await asyncio.to_thread(
                    write_ass, speech.words, *frame_size(command.aspect_ratio, command.resolution), ass
                )
                caption_filter = ass_filter(ass)
            try:
                await self._encode(scene, track, self.push_in(command, frames), wav, caption_filter, partial)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        os.replace(partial, out)
        return RenderedClip(frames / FPS, list(speech.words))

    async def _encode(
        self,
        scene: Scene,
        track: PoseTrack,
        push: PushIn,
        speech: Path,
        caption_filter: str | None,
        out: Path,
    ) -> None:
        width, height = push.frame
        frames = track.frames
        args = [
            "-hide_banner",
            "-nostats",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-video_size",
            f"{width}x{height}",
            "-framerate",
            str(FPS),
            "-i",
            "pipe:0",
            "-i",
            str(speech),
            "-filter_complex",
            _video_filter(caption_filter) + ";" + _audio_filter(frames),
            "-map",
            "[v]",
            "-map",
            "[a]",
            # No -frames:v: the pipe carries exactly `frames` frames and the audio is trimmed to their length, and
            # ffmpeg 5.1 (and older) closes the file when the video reaches that count, losing the last AAC frame.
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            str(CRF),
            # Sub-pixel refinement from SAD only: a quarter less encoding time for ~10 % more bytes at equal SSIM.
            "-x264-params",
            "subme=1",
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
        ]
        read_fd, write_fd = os.pipe()
        try:
            with contextlib.suppress(OSError):  # a smaller pipe only costs a few more context switches
                fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
            proc = await asyncio.create_subprocess_exec(
                ffmpeg_exe(),
                *args,
                stdin=read_fd,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        stop = threading.Event()
        producer = asyncio.ensure_future(asyncio.to_thread(_produce_frames, write_fd, scene, track, push, stop))
        try:
            (_, err), _ = await asyncio.gather(proc.communicate(), producer)
        except BaseException:
            # A cancelled job must not leave an encoder, or a thread feeding it, burning CPU.
            stop.set()
            if proc.returncode is None:
                proc.kill()
                await asyncio.shield(proc.wait())
            await asyncio.shield(asyncio.wait([producer]))
            raise
        if proc.returncode != 0:
            raise FfmpegError(proc.returncode if proc.returncode is not None else -1, err.decode(errors="replace"))
