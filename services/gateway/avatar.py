"""The avatar of a request: a base64 data URI in, the one picture every later step reads out.

What is stored (and what the prompter, the renderers' face detection and Veo read) is an 8-bit sRGB PNG without
alpha or metadata, upright: EXIF orientation applied, the first frame of an animation, 16-bit samples scaled (not
clipped), an embedded colour profile (ICC, e.g. CMYK or Display P3) converted to sRGB, and transparent areas laid on
white. Nothing in it can be read two ways: no colour profile, no transparency chunk, no EXIF orientation.

Sizes are judged from the file's header before Pillow opens it: a few bytes can declare a picture of billions of
pixels (a decompression bomb), and some decoders allocate the canvas as they open.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass

import imagesize
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from services.gateway.errors import RequestError
from services.runtime.settings import Settings

FIELD = "character_image"
# Pillow's names. MPO is a JPEG holding more pictures (phones add depth or HDR gain maps): its first is the photo.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
ACCEPTED = "PNG, JPEG, WebP or GIF"
MIN_SIDE = 16
BACKGROUND = (255, 255, 255)  # under transparent areas: a plain studio backdrop

DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[\w.+-]+)*);base64,(?P<data>.*)$", re.S
)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class Avatar:
    png: bytes
    width: int
    height: int


def decode_avatar(data_uri: str, settings: Settings) -> Avatar:
    blob = _image_bytes(data_uri, settings)
    _check_declared_size(blob, settings)
    try:
        with Image.open(io.BytesIO(blob), formats=FORMATS) as img:
            _check_size(*img.size, settings)
            img.seek(0)  # an animation: its first frame
            img.load()
            rgb = to_srgb(ImageOps.exif_transpose(img))
    except RequestError:
        raise
    except UnidentifiedImageError:
        raise RequestError(FIELD, f"the bytes are not an image this API reads ({ACCEPTED})") from None
    except Image.DecompressionBombError as bomb:  # a header imagesize could not read, Pillow could
        counted = re.search(r"\((\d+) pixels\)", str(bomb))
        size = f"{counted[1]} pixels" if counted else "more pixels than Pillow decodes"
        raise RequestError(FIELD, f"the image is too large: {size}; {_limit(settings)}", 413) from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise RequestError(FIELD, "the image is damaged or truncated") from None
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return Avatar(out.getvalue(), rgb.width, rgb.height)


def _image_bytes(data_uri: str, settings: Settings) -> bytes:
    match = DATA_URI.match(data_uri.strip())
    if match is None:
        raise RequestError(FIELD, "must be a data URI like data:image/png;base64,...")
    mime = (match["mime"] or "").lower()
    if mime and not mime.startswith("image/"):
        raise RequestError(FIELD, f"the data URI says {mime}; an image is required")
    encoded = re.sub(r"\s+", "", match["data"])
    # Base64 grows bytes by 4/3: refuse an oversized image before decoding it.
    if len(encoded) * 3 // 4 > settings.max_image_bytes:
        raise RequestError(FIELD, _too_many_bytes(settings), 413)
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(FIELD, "is not valid base64") from None
    if not blob:
        raise RequestError(FIELD, "the image is empty")
    if len(blob) > settings.max_image_bytes:
        raise RequestError(FIELD, _too_many_bytes(settings), 413)
    return blob


def _too_many_bytes(settings: Settings) -> str:
    return f"the image is larger than {settings.max_image_bytes} bytes (ADAGENT_MAX_IMAGE_BYTES)"


def _check_declared_size(blob: bytes, settings: Settings) -> None:
    """The size the header declares, read without decoding anything ((-1, -1) when it cannot be read: Pillow then
    judges, and its own limit still holds)."""
    width, height = imagesize.get(io.BytesIO(blob), exif_rotation=False)
    if width > 0 and height > 0:
        _check_size(width, height, settings, minimum=False)


def _check_size(width: int, height: int, settings: Settings, *, minimum: bool = True) -> None:
    if width * height > settings.max_image_pixels:
        raise RequestError(
            FIELD,
            f"the image is too large: {width}x{height} pixels ({width * height}); {_limit(settings)}",
            413,
        )
    if minimum and min(width, height) < MIN_SIDE:
        raise RequestError(FIELD, f"the image is {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")


def _limit(settings: Settings) -> str:
    return f"the limit is {settings.max_image_pixels} pixels (ADAGENT_MAX_IMAGE_PIXELS)"


def to_srgb(img: Image.Image) -> Image.Image:
    """`img` (any mode an accepted format opens in) as 8-bit sRGB, alpha laid on BACKGROUND, without metadata."""
    icc = img.info.get("icc_profile")
    img = _eight_bit(img)
    alpha = None
    if img.mode in ("LA", "RGBA"):
        alpha = img.getchannel("A")
        img = img.convert(img.mode[:-1])
    rgb = _from_profile(img, icc) if icc else None
    if rgb is None:
        rgb = img.convert("RGB")
    if alpha is not None:
        flat = Image.new("RGB", rgb.size, BACKGROUND)
        flat.paste(rgb, mask=alpha)
        rgb = flat
    rgb.info = {}  # no profile, transparency or EXIF carried into the PNG
    return rgb


def _eight_bit(img: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA or CMYK, 8 bits a sample, transparency (a tRNS colour key, a palette's alphas) as an
    alpha channel."""
    if img.mode.startswith("I"):  # 16-bit greyscale (I;16, I;16B) or its 32-bit container (I)
        samples = np.asarray(img).astype(np.int64)
        gray = Image.fromarray(((np.clip(samples, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8))
        key = img.info.get("transparency")
        if isinstance(key, int):
            gray.putalpha(Image.fromarray(np.where(samples == key, 0, 255).astype(np.uint8)))
        return gray
    if img.mode in ("P", "PA", "RGBa", "La") or "transparency" in img.info:
        return img.convert("RGBA")
    if img.mode == "1":
        return img.convert("L")
    return img


def _from_profile(img: Image.Image, icc: bytes) -> Image.Image | None:
    """`img` converted from its embedded colour profile to sRGB; None when the profile does not fit the picture
    (the samples are then read as sRGB, as a browser without colour management would)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            img, source, _SRGB, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    return converted
