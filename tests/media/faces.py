"""Faces the renderer is tested on, so no constant is tuned to one picture.

- the example avatar (examples/avatar.jpg): scikit-image's astronaut, a square photo, 512 x 512;
- Grace Hopper's portrait that matplotlib ships (public domain, U.S. Navy): a tall photo, 512 x 600, face large;
- a drawn face, made here: a wide picture, 960 x 640, flat colours, the face left of centre, the mouth closed.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "avatar.jpg"


def grace_hopper() -> Path:
    import matplotlib.cbook

    return Path(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


def drawn_face(folder: Path) -> Path:
    """A flat-coloured drawing of a head and shoulders, which the face mesh takes for a face."""
    path = folder / "drawn.png"
    if path.exists():
        return path
    image = Image.new("RGB", (960, 640), (70, 110, 150))
    draw = ImageDraw.Draw(image)
    x = 40  # drawn for a 720 px canvas, moved onto this wider one: the face sits left of centre
    draw.ellipse((110 + x, 520, 610 + x, 960), fill=(40, 60, 90))  # shoulders
    draw.rectangle((320 + x, 400, 400 + x, 560), fill=(215, 170, 140))  # neck
    draw.ellipse((220 + x, 110, 500 + x, 470), fill=(225, 180, 150))  # face
    draw.ellipse((200 + x, 70, 520 + x, 270), fill=(60, 40, 30))  # hair
    draw.ellipse((230 + x, 140, 490 + x, 440), fill=(225, 180, 150))
    for cx in (300 + x, 420 + x):
        draw.ellipse((cx - 30, 250, cx + 30, 280), fill=(250, 250, 250))
        draw.ellipse((cx - 12, 253, cx + 12, 277), fill=(80, 50, 30))
        draw.ellipse((cx - 5, 260, cx + 5, 270), fill=(10, 10, 10))
        draw.line((cx - 32, 228, cx + 30, 222), fill=(70, 45, 30), width=7)
    draw.polygon([(360 + x, 270), (345 + x, 340), (375 + x, 342)], fill=(205, 155, 125))
    # A closed mouth (the photos show their teeth): the lips meet at a dark line.
    draw.chord((310 + x, 360, 410 + x, 400), 0, 180, fill=(180, 80, 80))
    draw.chord((315 + x, 362, 405 + x, 398), 180, 360, fill=(190, 90, 90))
    draw.line((312 + x, 380, 408 + x, 380), fill=(120, 50, 50), width=2)
    image.filter(ImageFilter.GaussianBlur(1.5)).save(path)
    return path
