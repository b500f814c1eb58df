"""Draws static/favicon.ico (16, 32 and 48 px): a white house on the desk's blue, made here with
Pillow so the icon has no outside source. Run again only to change it: `.venv/bin/python
scripts/make_favicon.py`."""
from pathlib import Path

from PIL import Image, ImageDraw

BLUE, WHITE = (0, 86, 179, 255), (255, 255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "static" / "favicon.ico"


def draw(size: int = 256) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    s = size / 32
    pen.rounded_rectangle((0, 0, size - 1, size - 1), radius=6 * s, fill=BLUE)
    pen.polygon([(16 * s, 5 * s), (27 * s, 15 * s), (5 * s, 15 * s)], fill=WHITE)  # roof
    pen.rectangle((8 * s, 15 * s, 24 * s, 26 * s), fill=WHITE)                      # walls
    pen.rectangle((14 * s, 19 * s, 18 * s, 26 * s), fill=BLUE)                       # door
    return image


if __name__ == "__main__":
    draw().save(OUT, format="ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    print(OUT, OUT.stat().st_size, "bytes")
