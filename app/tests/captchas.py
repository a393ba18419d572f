"""Captcha images drawn in code with known answers: arithmetic, characters, slide puzzles."""

import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from app.tests.imaging import CJK_FONT, LATIN_FONT

CHINESE_OPERATORS = "加减乘除"
MEANING = {"+": "+", "-": "-", "×": "×", "/": "÷", "加": "+", "减": "-", "乘": "×", "除": "÷"}


def captcha(text: str, seed: int) -> Image.Image:
    """A light, dotted background with dark, spaced, slightly jittered 40px characters."""
    rng = random.Random(seed)
    face = ImageFont.truetype(CJK_FONT if set(text) & set(CHINESE_OPERATORS) else LATIN_FONT, 40)
    spacing = 8
    width = int(sum(face.getlength(char) + spacing for char in text)) + 16
    image = Image.new("RGB", (width, 50), tuple(rng.randint(225, 250) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    x, top = 12.0, (50 - face.getbbox("0")[3]) / 2
    for char in text:
        color = tuple(rng.randint(0, 100) for _ in range(3))
        draw.text((x, top + rng.randint(-3, 3)), char, fill=color, font=face)
        x += face.getlength(char) + spacing
    for _ in range(120):
        xy = (rng.randrange(image.width), rng.randrange(image.height))
        draw.point(xy, fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return image


def characters_scene(chars: str, seed: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Separate 40px characters at random heights on white, and where each was drawn."""
    rng = random.Random(seed)
    image = Image.new("RGB", (320, 160), "white")
    draw, face = ImageDraw.Draw(image), ImageFont.truetype(CJK_FONT, 40)
    boxes = []
    for i, char in enumerate(chars):
        xy = (15 + i * 290 // len(chars), rng.randint(5, 105))
        draw.text(xy, char, fill=tuple(rng.randint(0, 90) for _ in range(3)), font=face)
        boxes.append(draw.textbbox(xy, char, font=face))
    return image, boxes


def texture(kind: str, seed: int) -> Image.Image:
    """320x160: pixel noise, or smooth colour blobs like a photo; never darker than 80."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        pixels = rng.integers(80, 256, (160, 320, 3), dtype=np.uint8)
        return Image.fromarray(pixels)
    coarse = Image.fromarray(rng.integers(80, 256, (20, 40, 3), dtype=np.uint8))
    return coarse.resize((320, 160), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(2))


def puzzle_mask() -> Image.Image:
    """A 50x50 jigsaw-ish piece: a rounded square with a knob on top."""
    mask = Image.new("L", (50, 50), 0)
    draw = ImageDraw.Draw(mask)
    draw.rounded_rectangle((4, 8, 45, 45), radius=8, fill=255)
    draw.ellipse((17, 0, 33, 16), fill=255)
    return mask


def darken(background: Image.Image, x: int, y: int, mask: Image.Image | None = None) -> Image.Image:
    """The background with the gap drawn in: the piece's place at half brightness."""
    gapped = background.copy()
    gap = background.crop((x, y, x + 50, y + 50)).point(lambda level: level // 2)
    gapped.paste(gap, (x, y), mask)
    return gapped


def place(seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    return rng.randint(100, 250), rng.randint(5, 105)


def expressions(count: int, operators: str, seed: int) -> list[tuple[str, int]]:
    """Small sums as captchas show them, each with its true answer; divisions come out whole."""
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        op = operators[i % len(operators)]
        kind, right = MEANING[op], rng.randint(1, 9)
        left = {"+": rng.randint(0, 20), "-": rng.randint(right, 20), "×": rng.randint(0, 12)}.get(
            kind, right * rng.randint(1, 9)
        )
        answer = {"+": left + right, "-": left - right, "×": left * right, "÷": left // right}[kind]
        cases.append((f"{left}{op}{right}{rng.choice(['', '=', '=?'])}", answer))
    return cases
