"""task=math on captcha styles the suite's own captchas (app/tests/captchas.py) do not draw:
regular and bold fonts, every tail and operator sign, Chinese operators, noise; and the
Baidu contest's real samples from the shared corpus."""

import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from app.engines import registry
from app.engines.base import Picture
from app.errors import Unprocessable
from app.models import OcrRecord
from app.tests import corpus
from app.tests.imaging import encode, render
from app.tests.math_captchas import BOLD_FONTS, PLAIN_FONTS, STYLES, TESTING, draw
from app.tests.responses import assert_error

MIN_SOLVED = 0.95
BAIDU = "files/baiduyun-captcha/level1.png"
BAIDU_BLANK = "files/baiduyun-captcha/level1_117422.png"


def solve(image: Image.Image) -> int | float | None:
    """The engine's answer, None when it refuses."""
    engine, options = registry.select(engine="ddddocr", task="math")
    try:
        return engine.recognize(Picture(image), options).extra["result"]
    except Unprocessable:
        return None


def math(api, data: bytes):
    image = SimpleUploadedFile("c.png", data, content_type="image/png")
    return api.post("/api/ocr/", {"image": image, "engine": "ddddocr", "task": "math"}, format="multipart")


@pytest.mark.parametrize("style", sorted(STYLES))
def test_each_style_is_solved(style):
    """Measured on seeds 1000-1059 (tuned on 0-199): plain 58/60, bold 60, symbols 59,
    chinese 58, noisy 59; main before this reader: 45, 54, 50, 56, 51."""
    wrong = []
    for seed in TESTING:
        captcha = STYLES[style](seed)
        answer = solve(captcha.image)
        if answer != captcha.answer:
            wrong.append((seed, captcha.text, answer))
    assert 1 - len(wrong) / len(TESTING) >= MIN_SOLVED, wrong


@pytest.mark.parametrize(("size", "pad"), [(20, 4), (28, 10), (32, 10)])
def test_bold_sum_with_its_tail_is_nine(api, size, pad):
    """Read 5+47 before: `=` lost, `?` read as 7, and 47 was a valid operand."""
    image = render(["5+4=?"], size=size, font=BOLD_FONTS[0], pad=pad)
    response = math(api, encode(image))
    assert response.status_code == 201, response.content
    assert response.json()["result"] == 9


@pytest.mark.parametrize("font", [PLAIN_FONTS[0], BOLD_FONTS[0]], ids=["regular", "bold"])
@pytest.mark.parametrize(("text", "answer"), [("8÷4=?", 2), ("8-4=?", 4), ("63÷9", 7), ("63-9", 54)])
@pytest.mark.parametrize("seed", range(2))
def test_division_sign_is_told_from_minus_by_its_dots(font, text, answer, seed):
    """The model reads ÷ as -; the dots above and below the bar in the image tell them apart."""
    assert solve(draw(text, font, random.Random(seed))) == answer


@pytest.mark.xfail(
    strict=True,
    reason="5-6+2: no reader here sees the short `-` joined to the 6 (ddddocr 56{2, its beta model "
    "56+2, RapidOCR 56x2, Tesseract nothing) and ddddocr puts `*` (0.125) over `+` (0.065): read 56*2",
)
def test_baidu_contest_sample_is_solved_through_the_api(api):
    truth = corpus.entry(BAIDU)
    response = math(api, corpus.data(BAIDU))
    assert response.status_code == 201, response.content
    assert response.json()["result"] == int(truth["answer"])


def test_near_blank_baidu_captcha_is_refused_not_guessed(api, media_files):
    response = math(api, corpus.data(BAIDU_BLANK))
    assert_error(response, 422, "unreadable_expression")
    assert not OcrRecord.objects.exists()
    assert not media_files()
