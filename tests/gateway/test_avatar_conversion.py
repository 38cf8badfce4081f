"""The avatar a job stores (and the prompter, the renderers and Veo read) is the picture the user sent, whatever its
encoding: compared pixel by pixel with a conversion computed here by hand (numpy, from the source samples).

16-bit samples are scaled, not clipped (a 16-bit grey PNG came out washed out), transparency (alpha, a palette's
alphas, a tRNS colour key) is laid on white, EXIF orientation is applied once, an animation gives its first frame,
a JPEG holding more pictures (MPO) is a JPEG. A picture declaring more pixels than allowed is "too large", with its
size and the limit, before any decoder allocates it (a decompression bomb used to be "not an image").
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio
from PIL import Image, ImageCms

from contracts.events import JobRequested
from services.renderer import face
from tests.conftest import Server, start_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

Pixels = npt.NDArray[np.float64]  # H x W x 3, 0..255
W, H = 48, 32
WHITE = 255.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """The gateway alone: jobs are created with their avatar stored, nothing renders."""
    home = tmp_path_factory.mktemp("avatars") / "home"
    async for server in start_server(home, {"workers": ()}, max_queued_per_user=1000):
        yield server


# ---------------------------------------------------------------------------------------------------------------
# Sources and what they must become
# ---------------------------------------------------------------------------------------------------------------

_y, _x = np.mgrid[0:H, 0:W]
G16 = ((_x * 65535 // (W - 1) + _y * 997) % 65536).astype(np.uint16)  # spans the whole 16-bit range
A16 = (_y * 65535 // (H - 1)).astype(np.uint16)  # transparent at the top, opaque at the bottom
RGB8 = np.stack([_x * 255 // (W - 1), _y * 255 // (H - 1), (_x + _y) * 4 % 256], -1).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png16(samples: npt.NDArray[np.uint16], color_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow writes no 16-bit colour PNG): 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA."""
    height, width = samples.shape[:2]
    rows = b"".join(b"\0" + samples[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def saved(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def on_white(color: Pixels, alpha: npt.NDArray[np.float64]) -> Pixels:
    """Straight alpha (0..1) over white."""
    a = alpha[..., None]
    return color * a + WHITE * (1 - a)


def grey(values: npt.NDArray[Any]) -> Pixels:
    return np.repeat(np.asarray(values, dtype=np.float64)[..., None], 3, axis=-1)


PALETTE = [(230, 30, 40), (20, 180, 60), (30, 60, 220), (250, 220, 20)]
INDEXES = ((_x // 12 + _y // 8) % 4).astype(np.uint8)


def palette_image(**info: Any) -> Image.Image:
    image = Image.fromarray(INDEXES, mode="P")
    image.putpalette([c for rgb in PALETTE for c in rgb])
    image.info.update(info)
    return image


PALETTE_RGB = np.asarray(PALETTE, dtype=np.float64)[INDEXES]
KEY = tuple(int(v) for v in RGB8[3, 7])
KEYED = np.all(RGB8 == KEY, axis=-1)


def linear_light_profile() -> bytes:
    """An ICC profile with sRGB's primaries and white but no gamma (linear light): lcms's own sRGB profile with
    its three tone curves replaced by gamma 1.0."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    for i in range(struct.unpack(">I", icc[128:132])[0]):
        signature, offset, size = struct.unpack(">4sII", icc[132 + 12 * i : 144 + 12 * i])
        if signature in (b"rTRC", b"gTRC", b"bTRC"):
            icc[offset : offset + size] = (b"para" + bytes(4) + struct.pack(">HHi", 0, 0, 1 << 16)).ljust(size, b"\0")
    icc[84:100] = bytes(16)  # the profile id (an MD5 of the rest), now stale: zero means none
    return bytes(icc)


def srgb_from_linear(values: npt.NDArray[Any]) -> Pixels:
    c = np.asarray(values, dtype=np.float64) / 255
    return 255 * np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


Case = tuple[str, Callable[[], bytes], Pixels, float]
CASES: list[Case] = [
    ("16-bit grey PNG", lambda: saved(Image.fromarray(G16), "PNG"), grey(G16 / 257), 0.6),
    (
        "16-bit grey PNG with a tRNS colour key",
        lambda: saved(Image.fromarray(G16), "PNG", transparency=int(G16[5, 9])),
        np.where((G16 == G16[5, 9])[..., None], WHITE, grey(G16 / 257)),
        0.6,
    ),
    (
        "16-bit RGB PNG",
        lambda: png16(np.stack([G16, G16[::-1], 65535 - G16], -1), 2),
        np.stack([G16, G16[::-1], 65535 - G16], -1) / 257,
        0.6,
    ),
    (
        "16-bit grey + alpha PNG",
        lambda: png16(np.stack([G16, A16], -1), 4),
        on_white(grey(G16 / 257), A16 / 65535),
        0.6,
    ),
    (
        "16-bit RGBA PNG",
        lambda: png16(np.stack([G16, G16[::-1], 65535 - G16, A16], -1), 6),
        on_white(np.stack([G16, G16[::-1], 65535 - G16], -1) / 257, A16 / 65535),
        0.6,
    ),
    (
        "grey + alpha PNG",
        lambda: saved(Image.fromarray(np.stack([RGB8[..., 0], (A16 >> 8).astype(np.uint8)], -1), mode="LA"), "PNG"),
        on_white(grey(RGB8[..., 0]), (A16 >> 8) / 255),
        0.6,
    ),
    ("palette PNG", lambda: saved(palette_image(), "PNG"), PALETTE_RGB, 0.0),
    (
        "palette PNG with a transparent entry",
        lambda: saved(palette_image(transparency=2), "PNG"),
        np.where((INDEXES == 2)[..., None], WHITE, PALETTE_RGB),
        0.0,
    ),
    (
        "palette PNG with an alpha per entry",
        lambda: saved(palette_image(transparency=bytes([255, 0, 128, 255])), "PNG"),
        on_white(PALETTE_RGB, np.asarray([1.0, 0.0, 128 / 255, 1.0])[INDEXES]),
        0.6,
    ),
    (
        "RGB PNG with a tRNS colour key",
        lambda: saved(Image.fromarray(RGB8), "PNG", transparency=KEY),
        np.where(KEYED[..., None], WHITE, RGB8.astype(np.float64)),
        0.0,
    ),
    ("palette GIF", lambda: saved(palette_image(), "GIF"), PALETTE_RGB, 0.0),
    (
        "CMYK JPEG",
        lambda: saved(Image.fromarray(RGB8).convert("CMYK"), "JPEG", quality=98, subsampling=0),
        RGB8.astype(np.float64),
        2.5,
    ),
    (
        "PNG in linear light (ICC profile)",
        lambda: saved(Image.fromarray(RGB8), "PNG", icc_profile=linear_light_profile()),
        srgb_from_linear(RGB8),
        1.0,
    ),
    (
        "JPEG in linear light (ICC profile)",
        lambda: saved(Image.fromarray(RGB8), "JPEG", quality=98, subsampling=0, icc_profile=linear_light_profile()),
        srgb_from_linear(RGB8),
        3.0,
    ),
    (
        "RGB JPEG",
        lambda: saved(Image.fromarray(RGB8), "JPEG", quality=98, subsampling=0),
        RGB8.astype(np.float64),
        2.5,
    ),
]

FRAMES = [Image.new("RGB", (W, H), color) for color in [(200, 40, 30), (20, 200, 40), (30, 40, 200)]]
FIRST_FRAME = np.broadcast_to(np.asarray([200, 40, 30], dtype=np.float64), (H, W, 3))
ANIMATIONS: list[Case] = [
    (
        "animated GIF",
        lambda: saved(FRAMES[0], "GIF", save_all=True, append_images=FRAMES[1:], duration=100),
        FIRST_FRAME,
        0.0,
    ),
    (
        "animated WebP",
        lambda: saved(FRAMES[0], "WEBP", save_all=True, append_images=FRAMES[1:], duration=100, lossless=True),
        FIRST_FRAME,
        0.0,
    ),
    (
        "animated PNG",
        lambda: saved(FRAMES[0], "PNG", save_all=True, append_images=FRAMES[1:], duration=100),
        FIRST_FRAME,
        0.0,
    ),
    # What phones write (a depth map, an HDR gain map after the photo): Pillow names it MPO; it is a JPEG.
    (
        "JPEG with two pictures (MPO)",
        lambda: saved(FRAMES[0], "MPO", save_all=True, append_images=FRAMES[1:2]),
        FIRST_FRAME,
        2.5,
    ),
]


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


# EXIF orientation n: how the stored rows must be turned to stand upright (TIFF 6.0, tag 274).
UPRIGHT: dict[int, Callable[[npt.NDArray[Any]], npt.NDArray[Any]]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}
ROTATED: list[Case] = [
    (
        f"PNG with EXIF orientation {n}",
        lambda n=n: saved(Image.fromarray(RGB8), "PNG", exif=_exif(n)),
        UPRIGHT[n](RGB8.astype(np.float64)),
        0.0,
    )  # type: ignore[misc]
    for n in UPRIGHT
] + [
    (
        "JPEG with EXIF orientation 6",
        lambda: saved(Image.fromarray(RGB8), "JPEG", quality=98, subsampling=0, exif=_exif(6)),
        UPRIGHT[6](RGB8.astype(np.float64)),
        2.5,
    )
]


# ---------------------------------------------------------------------------------------------------------------
# Through the API
# ---------------------------------------------------------------------------------------------------------------


def data_uri(blob: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(blob).decode()


async def create(server: Server, image: str, **overrides: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}) as client:
        return await client.post("/api/ad-agent/create", json={"script": "Hi there.", "character_image": image})


async def stored_avatar(server: Server, job_id: str, into: Path) -> Path:
    requested = (await server.stack.runtime.store.history(job_id))[0].event
    assert isinstance(requested, JobRequested)
    return await server.stack.runtime.storage.fetch(requested.avatar_ref, into)


@pytest.mark.parametrize(
    ("case", "source", "expected", "tolerance"),
    CASES + ANIMATIONS + ROTATED,
    ids=[c[0] for c in CASES + ANIMATIONS + ROTATED],
)
async def test_the_stored_avatar_is_the_picture_sent(
    gateway: Server, tmp_path: Path, case: str, source: Callable[[], bytes], expected: Pixels, tolerance: float
) -> None:
    response = await create(gateway, data_uri(source()))
    assert response.status_code == 202, response.text
    path = await stored_avatar(gateway, response.json()["job_id"], tmp_path)
    with Image.open(path) as stored:
        assert stored.format == "PNG" and stored.mode == "RGB", (stored.format, stored.mode)
        # Nothing a reader could apply a second time, or differently: no profile, key colour or orientation.
        assert not {"icc_profile", "transparency", "exif"} & set(stored.info), stored.info
        pixels = np.asarray(stored, dtype=np.float64)
    assert pixels.shape == expected.shape, (pixels.shape, expected.shape)
    difference = float(np.abs(pixels - expected).mean())
    assert difference <= tolerance, f"{case}: mean absolute difference {difference:.2f} (at most {tolerance})"
    # What the renderer's face detection reads is that very picture.
    assert np.array_equal(face.load_rgb(path), pixels.astype(np.uint8))


def _patched_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height over a few real rows: a handful of bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")


def _patched_jpeg(width: int, height: int) -> bytes:
    blob = bytearray(saved(Image.new("RGB", (16, 16)), "JPEG"))
    sof = blob.index(b"\xff\xc0")
    blob[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(blob)


def _patched_gif(width: int, height: int) -> bytes:
    blob = bytearray(saved(Image.new("P", (16, 16)), "GIF"))
    blob[6:10] = struct.pack("<HH", width, height)
    return bytes(blob)


def _webp_canvas(width: int, height: int) -> bytes:
    """A WebP (VP8X) declaring a width x height canvas: libwebp's animation decoder allocates it when it opens."""
    vp8x = struct.pack("<I", 0x02) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    image = saved(Image.new("RGB", (16, 16)), "WEBP", lossless=True)[12:]  # its VP8L chunk
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x + image
    return b"RIFF" + struct.pack("<I", len(body)) + body


BOMBS = [
    ("PNG", _patched_png(50_000, 50_000), "50000x50000", "image/png"),
    ("JPEG", _patched_jpeg(60_000, 60_000), "60000x60000", "image/jpeg"),
    ("GIF", _patched_gif(30_000, 30_000), "30000x30000", "image/gif"),
    # imagesize reads a GIF's size as signed 16-bit numbers: from 32768 up, Pillow's own check answers, with the
    # pixel count it read.
    ("GIF of 65535x65535", _patched_gif(65_535, 65_535), "4294836225", "image/gif"),
    ("WebP", _webp_canvas(16_383, 16_383), "16383x16383", "image/webp"),
]


@pytest.mark.parametrize(("kind", "blob", "size", "mime"), BOMBS, ids=[b[0] for b in BOMBS])
async def test_a_decompression_bomb_is_too_large_with_its_size_and_the_limit(
    gateway: Server, kind: str, blob: bytes, size: str, mime: str
) -> None:
    assert len(blob) < 2_000
    response = await create(gateway, data_uri(blob, mime))
    assert response.status_code == 413, response.text
    error = response.json()
    assert error["field"] == "character_image"
    limit = gateway.settings.max_image_pixels
    assert f"the image is too large: {size} pixels" in error["detail"], error
    assert f"the limit is {limit} pixels (ADAGENT_MAX_IMAGE_PIXELS)" in error["detail"], error


@pytest.mark.parametrize(
    ("case", "blob", "words"),
    [
        ("BMP", saved(Image.new("RGB", (32, 32)), "BMP"), "not an image this API reads (PNG, JPEG, WebP or GIF)"),
        ("TIFF", saved(Image.new("RGB", (32, 32)), "TIFF"), "not an image this API reads (PNG, JPEG, WebP or GIF)"),
        ("truncated PNG", saved(Image.fromarray(RGB8), "PNG")[:100], "damaged or truncated"),
    ],
    ids=["BMP", "TIFF", "truncated PNG"],
)
async def test_what_cannot_be_read_is_a_422_naming_the_accepted_formats(
    gateway: Server, case: str, blob: bytes, words: str
) -> None:
    response = await create(gateway, data_uri(blob))
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]
