"""Test images drawn in code with known text, and the character error rate."""

import io
import random
import zipfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"

WORDS = (
    "invoice total amount paid date number order customer address quantity price "
    "shipping account balance receipt payment reference delivery account service"
).split()
HANZI = "今天天气很好我们去公园散步光学字符识别服务中文文档测试每一行都有文字内容"


def render(lines: list[str], *, size: int = 32, font: str = LATIN_FONT, pad: int = 24) -> Image.Image:
    face = ImageFont.truetype(font, size)
    line_height = int(size * 1.7)
    width = max(int(face.getlength(line)) for line in lines) + 2 * pad
    img = Image.new("RGB", (width, line_height * len(lines) + 2 * pad), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((pad, pad + i * line_height), line, fill="black", font=face)
    return img


def english_lines(count: int, *, seed: int = 7, words: int = 5) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(count)]


def chinese_lines(count: int, *, seed: int = 7, chars: int = 10, alphabet: str = HANZI) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(chars)) for _ in range(count)]


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)
    return buffer.getvalue()


def to_16bit(img: Image.Image) -> Image.Image:
    """The image as 16-bit greyscale (mode I;16), a scanner's output the service must narrow."""
    arr = np.asarray(img.convert("L"), dtype=np.uint16) * 257
    return Image.fromarray(arr)


def zip_of(files: dict[str, bytes]) -> bytes:
    """A zip archive of name -> bytes, as a batch upload sends."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def cer(expected: str, actual: str) -> float:
    """Character error rate: Levenshtein distance / expected length, whitespace ignored."""
    a, b = "".join(expected.split()), "".join(actual.split())
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] / max(len(a), 1)
