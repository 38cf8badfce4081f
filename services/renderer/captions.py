"""Burned-in captions: an ASS subtitle file for ffmpeg's `ass` filter (libass), word-timed, current word lit.

Style, and why:
- Roboto Bold from the font-roboto package, handed to libass with `fontsdir`, so no system font is assumed.
- White text, the word being spoken in yellow; a black outline (8 % of the font size) and a soft shadow keep it
  legible on any picture, light or dark, without hiding the face behind a box.
- Font size 6.5 % of the frame's short side: the same physical size at 720p and 1080p, and on 9:16 as on 16:9.
- Inside the title-safe area: 10 % margins left, right and bottom (PlayRes = the frame size, so every number is in
  pixels). Lines are measured with Pillow on the same font file at the size libass will use, and broken
  explicitly (WrapStyle 2: libass never rewraps); a phrase takes at most two lines, and a phrase too wide even
  then (one very long word) gets a smaller font, so text is never cut off.
- One Dialogue event per word state: a phrase's text, identical in every state, with only the current word's
  colour changed. The layout never moves; the highlight stays on a word until the next one starts, so nothing
  flickers during pauses. (Karaoke \\k tags would light every word already sung, not just the current one.)
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Final

from PIL import ImageFont

from contracts.events import WordTiming
from services.runtime.phrases import group_phrases, phrase_windows

FONT_FILE: Final = "Roboto-Bold.ttf"
FONT_FAMILY: Final = "Roboto"
FONT_SCALE: Final = 0.07  # of the frame's short side
SAFE_MARGIN: Final = 0.10  # of the frame's width (left, right) and height (bottom)
OUTLINE: Final = 0.08  # of the font size
SHADOW: Final = 0.04  # of the font size
TEXT_RGB: Final = (255, 255, 255)
HIGHLIGHT_RGB: Final = (255, 214, 0)
OUTLINE_RGB: Final = (0, 0, 0)
SHADOW_ALPHA: Final = 0x60  # ASS alpha: 0 opaque, 255 transparent
MAX_LINES: Final = 2


def fonts_dir() -> Path:
    """The folder holding Roboto-*.ttf, for `ass=...:fontsdir=...`."""
    return Path(str(resources.files("font_roboto").joinpath("files")))


def font_path() -> Path:
    return fonts_dir() / FONT_FILE


def _colour(rgb: tuple[int, int, int], alpha: int = 0) -> str:
    """A style colour: &HAABBGGRR."""
    r, g, b = rgb
    return f"&H{alpha:02X}{b:02X}{g:02X}{r:02X}"


def _override_colour(rgb: tuple[int, int, int]) -> str:
    """An inline colour tag's value: &HBBGGRR& (no alpha)."""
    r, g, b = rgb
    return f"&H{b:02X}{g:02X}{r:02X}&"


@functools.cache
def _em_per_font_size() -> float:
    """Pixels per em for each unit of ASS font size.

    libass (like VSFilter) scales a font so that its OS/2 usWinAscent + usWinDescent, not its em, equals the font
    size; Pillow sizes by the em. Read from the font's own tables so that measuring matches rendering.
    """
    data = font_path().read_bytes()
    (count,) = struct.unpack_from(">H", data, 4)
    tables = {data[12 + 16 * i : 16 + 16 * i]: struct.unpack_from(">I", data, 20 + 16 * i)[0] for i in range(count)}
    (units_per_em,) = struct.unpack_from(">H", data, tables[b"head"] + 18)
    win_ascent, win_descent = struct.unpack_from(">HH", data, tables[b"OS/2"] + 74)
    if win_ascent + win_descent:
        return float(units_per_em / (win_ascent + win_descent))
    ascender, descender = struct.unpack_from(">hh", data, tables[b"hhea"] + 4)
    return float(units_per_em / (ascender - descender))


@functools.cache
def _font(font_size: int) -> ImageFont.FreeTypeFont:
    # Measured at 4x and scaled down, so that rounding advances to whole pixels at small sizes costs next to nothing.
    return ImageFont.truetype(str(font_path()), max(1, round(4 * font_size * _em_per_font_size())))


def text_width(text: str, font_size: int) -> float:
    """Width in pixels of `text` set in the caption font at ASS size `font_size`."""
    return _font(font_size).getlength(text) / 4


@functools.cache
def caption_metrics(width: int, height: int) -> tuple[int, int, float, float]:
    """Font size, bottom margin, outline and shadow, in pixels, for a frame of this size."""
    size = round(FONT_SCALE * min(width, height))
    outline = round(OUTLINE * size, 1)
    shadow = round(SHADOW * size, 1)
    margin_v = round(SAFE_MARGIN * height + outline + shadow)
    return size, margin_v, outline, shadow


def _max_line_width(width: int, outline: float, shadow: float) -> float:
    return width * (1 - 2 * SAFE_MARGIN) - 2 * outline - shadow


def layout(words: Sequence[str], font_size: int, max_width: float) -> tuple[list[list[int]], int]:
    """The phrase's words as at most MAX_LINES lines (lists of word indices), and the font size that fits them.

    One line if it fits; else the two-line split whose longer line is shortest (balanced lines read best); if even
    that is too wide, the font shrinks until it fits.
    """
    size = font_size
    while True:
        lines = _split(words, size, max_width)
        widest = max(text_width(" ".join(words[i] for i in line), size) for line in lines)
        if widest <= max_width or size <= 1:
            return lines, size
        size = max(1, min(size - 1, int(size * max_width / widest)))


def _split(words: Sequence[str], size: int, max_width: float) -> list[list[int]]:
    everything = list(range(len(words)))
    if len(words) < MAX_LINES or text_width(" ".join(words), size) <= max_width:
        return [everything]  # one line when it fits: fewer lines read faster

    def widest(cut: int) -> float:
        return max(text_width(" ".join(words[:cut]), size), text_width(" ".join(words[cut:]), size))

    cut = min(range(1, len(words)), key=widest)
    return [everything[:cut], everything[cut:]]


def _escape(word: str) -> str:
    # "{" opens an override block and "\\" starts a tag in ASS text: make both literal.
    return word.replace("\\", "\\\u2060").replace("{", "\\{").replace("}", "\\}")


def _timestamp(seconds: float) -> str:
    cs = max(0, round(seconds * 100))
    return f"{cs // 360000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _phrase_text(words: Sequence[str], lines: list[list[int]], size: int, default: int, lit: int | None) -> str:
    rendered: list[str] = []
    for line in lines:
        parts = []
        for i in line:
            text = _escape(words[i])
            if i == lit:
                text = f"{{\\1c{_override_colour(HIGHLIGHT_RGB)}}}{text}{{\\1c{_override_colour(TEXT_RGB)}}}"
            parts.append(text)
        rendered.append(" ".join(parts))
    prefix = f"{{\\fs{size}}}" if size != default else ""
    return prefix + "\\N".join(rendered)


def write_ass(words: list[WordTiming], width: int, height: int, path: Path) -> None:
    """Write the captions of one clip (`words` timed from the clip's start) for a `width` x `height` frame."""
    size, margin_v, outline, shadow = caption_metrics(width, height)
    margin_h = round(SAFE_MARGIN * width + outline)
    max_width = _max_line_width(width, outline, shadow)
    header = [
        "[Script Info]",
        "ScriptType: v4.00+",
        f"PlayResX: {width}",
        f"PlayResY: {height}",
        "WrapStyle: 2",
        "ScaledBorderAndShadow: yes",
        "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
        "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
        "MarginR, MarginV, Encoding",
        f"Style: Caption,{FONT_FAMILY},{size},{_colour(TEXT_RGB)},{_colour(HIGHLIGHT_RGB)},{_colour(OUTLINE_RGB)},"
        f"{_colour(OUTLINE_RGB, SHADOW_ALPHA)},-1,0,0,0,100,100,0,0,1,{outline},{shadow},2,"
        f"{margin_h},{margin_h},{margin_v},1",
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    events: list[str] = []
    phrases = group_phrases(words)
    for phrase, (shown, gone) in zip(phrases, phrase_windows(phrases), strict=True):
        texts = [w.word for w in phrase]
        lines, phrase_size = layout(texts, size, max_width)
        # Word states: word i is lit from its start until the next spoken word starts (or the phrase goes).
        spoken = [i for i, w in enumerate(phrase) if w.end > w.start]
        starts = [shown] + [phrase[i].start for i in spoken[1:]]
        ends = [*starts[1:], gone]
        lit_words: list[int | None] = list(spoken) if spoken else [None]
        for lit, start, end in zip(lit_words, starts, ends, strict=True):
            if _timestamp(start) == _timestamp(end):
                continue
            text = _phrase_text(texts, lines, phrase_size, size, lit)
            events.append(f"Dialogue: 0,{_timestamp(start)},{_timestamp(end)},Caption,,0,0,0,,{text}")
    path.write_text("\n".join(header + events) + "\n", encoding="utf-8")


def _filter_value(value: str) -> str:
    # Two levels of ffmpeg escaping: the option value (":" ends it; "\\" and "'" are special), then the
    # filtergraph ("\\", "'", "[", "]", ",", ";" are special).
    value = value.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\:")
    for special in "\\'[],;":
        value = value.replace(special, "\\" + special)
    return value


def ass_filter(path: Path) -> str:
    """The ffmpeg filter that burns the captions in `path` onto the video, with the caption font."""
    return f"ass=filename={_filter_value(str(path))}:fontsdir={_filter_value(str(fonts_dir()))}"
