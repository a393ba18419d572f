"""Arithmetic captchas in styles app/tests/captchas.py does not draw, each with its answer.

Every style varies size (100x40 to 200x60), colours, the tail (`=?`, `=` or none) and
1-2 digit operands; they differ in fonts, operators and noise. Seeded: tune on seeds
0-199 (TUNING), test on TESTING, so the tests never see the images the reader was tuned on.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

FONTS = "/usr/share/fonts/truetype/dejavu"
CJK = "/usr/share/fonts/opentype/noto"
PLAIN_FONTS = (f"{FONTS}/DejaVuSans.ttf", f"{FONTS}/DejaVuSerif.ttf", f"{CJK}/NotoSansCJK-Regular.ttc")
BOLD_FONTS = (f"{FONTS}/DejaVuSans-Bold.ttf", f"{FONTS}/DejaVuSerif-Bold.ttf", f"{CJK}/NotoSansCJK-Bold.ttc")
CJK_FONTS = (
    f"{CJK}/NotoSansCJK-Regular.ttc",
    f"{CJK}/NotoSansCJK-Bold.ttc",
    f"{CJK}/NotoSerifCJK-Regular.ttc",
)
SYMBOLS = "+-×x*÷/"
CHINESE = "加减乘除"
MEANING = {**dict.fromkeys("+加", "+"), **dict.fromkeys("-减", "-"), **dict.fromkeys("×x*乘", "×")}
TAILS = ("=?", "=", "")
TUNING = range(200)
TESTING = range(1000, 1060)


@dataclass(frozen=True)
class Captcha:
    image: Image.Image
    text: str  # what is drawn
    answer: int


def expression(rng: random.Random, operators: str) -> tuple[str, int]:
    """`<a><op><b><tail>` with 1-2 digit operands; differences never negative, divisions whole."""
    op = rng.choice(operators)
    kind = MEANING.get(op, "÷")
    if kind == "÷":
        right = rng.randint(1, 9)
        left = right * rng.randint(1, 99 // right)
        return f"{left}{op}{right}{rng.choice(TAILS)}", left // right
    left, right = rng.randint(0, 99), rng.randint(0, 99 if kind != "×" else 9)
    if kind == "-" and right > left:
        left, right = right, left
    answer = {"+": left + right, "-": left - right, "×": left * right}[kind]
    return f"{left}{op}{right}{rng.choice(TAILS)}", answer


def _fitted_font(path: str, text: str, width: int, height: int, rng: random.Random) -> ImageFont.FreeTypeFont:
    """The font at a size that fills most of the canvas, leaving a margin for jitter."""
    size = int(height * rng.uniform(0.6, 0.85))
    while size > 10:
        face = ImageFont.truetype(path, size)
        if face.getlength(text) + len(text) * 2 <= width * 0.9:
            return face
        size -= 1
    return ImageFont.truetype(path, size)


def _colour(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return tuple(rng.randint(low, high) for _ in range(3))


def draw(text: str, font: str, rng: random.Random, *, dots: int = 0, lines: int = 0) -> Image.Image:
    """`text` dark on a light background, each character its own colour and a little jitter."""
    width, height = rng.randint(100, 200), rng.randint(40, 60)
    image = Image.new("RGB", (width, height), _colour(rng, 215, 255))
    pen = ImageDraw.Draw(image)
    face = _fitted_font(font, text, width, height, rng)
    gap = 2
    total = face.getlength(text) + gap * (len(text) - 1)
    x = rng.uniform(2, max(2, width - total - 2))
    top, bottom = face.getbbox("0")[1], face.getbbox("0")[3]
    y0 = (height - (bottom + top)) / 2
    for char in text:
        jitter = rng.randint(-2, 2)
        pen.text((x, y0 + jitter), char, fill=_colour(rng, 0, 110), font=face)
        x += face.getlength(char) + gap
    for _ in range(dots):
        pen.point((rng.randrange(width), rng.randrange(height)), fill=_colour(rng, 0, 255))
    for _ in range(lines):
        ends = [(rng.randrange(width), rng.randrange(height)) for _ in range(2)]
        pen.line(ends, fill=_colour(rng, 60, 200), width=1)
    return image


def _style(
    name: str, fonts: tuple[str, ...], operators: str, dots: int = 0, lines: int = 0
) -> Callable[[int], Captcha]:
    def generate(seed: int) -> Captcha:
        rng = random.Random(f"{name}:{seed}")  # each style its own expressions
        text, answer = expression(rng, operators)
        return Captcha(draw(text, rng.choice(fonts), rng, dots=dots, lines=lines), text, answer)

    return generate


STYLES: dict[str, Callable[[int], Captcha]] = {
    "plain": _style("plain", PLAIN_FONTS, "+-×"),  # regular fonts
    "bold": _style("bold", BOLD_FONTS, "+-×"),  # bold fonts: the `5+4=?` read as 47 case
    "symbols": _style("symbols", PLAIN_FONTS + BOLD_FONTS, SYMBOLS),  # every operator sign, ÷ and / included
    "chinese": _style("chinese", CJK_FONTS, CHINESE),  # 加减乘除
    "noisy": _style("noisy", PLAIN_FONTS + BOLD_FONTS, "+-×", dots=150, lines=4),  # dots and lines across
}


def bold(text: str, seed: int = 0) -> Image.Image:
    """`text` in DejaVu Sans Bold, the way the `5+4=?` report drew it."""
    return draw(text, BOLD_FONTS[0], random.Random(seed))
