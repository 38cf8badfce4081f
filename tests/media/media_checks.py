"""Independent checks on media files for the tests: MP4 box order, ebur128 readings, H.264 packets."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import av

from services.runtime.ffmpeg import run_ffmpeg


def top_level_boxes(path: Path) -> list[str]:
    """The types of the top-level MP4 boxes, in file order."""
    boxes: list[str] = []
    with path.open("rb") as f:
        end = f.seek(0, 2)
        pos = 0
        while pos + 8 <= end:
            f.seek(pos)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                (size,) = struct.unpack(">Q", f.read(8))
            elif size == 0:
                size = end - pos
            boxes.append(kind.decode("latin-1"))
            pos += size
    return boxes


@dataclass(frozen=True)
class R128:
    integrated_lufs: float
    true_peak_dbtp: float


async def ebur128(path: Path) -> R128:
    stderr = await run_ffmpeg("-i", str(path), "-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-")
    summary = stderr[stderr.rindex("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated is not None and peak is not None, summary
    return R128(float(integrated.group(1)), float(peak.group(1)))


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [bytes(packet) for packet in container.demux(stream) if packet.size]


def nal_units(packet: bytes) -> list[bytes]:
    """Split a length-prefixed (MP4-style) H.264 access unit into its NAL units."""
    units: list[bytes] = []
    pos = 0
    while pos + 4 <= len(packet):
        (size,) = struct.unpack(">I", packet[pos : pos + 4])
        units.append(packet[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return units


def coded_slices(packet: bytes) -> list[bytes]:
    """The NAL units that carry picture data: what a re-encode would change. SPS/PPS (7, 8) a muxer may repeat."""
    return [unit for unit in nal_units(packet) if unit and unit[0] & 0x1F not in (7, 8)]


def video_codec_params(path: Path) -> tuple[object, ...]:
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return (ctx.name, ctx.profile, ctx.width, ctx.height, ctx.pix_fmt)
