"""ddddocr captchas: arithmetic, charset limits, detection and slide puzzles, on images drawn in code."""

import base64
import threading

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from app.engines import registry
from app.engines.base import Picture
from app.engines.captcha_math import read_expression, solve
from app.errors import Unprocessable
from app.models import OcrRecord
from app.tests.captchas import (
    CHINESE_OPERATORS,
    captcha,
    characters_scene,
    darken,
    expressions,
    place,
    puzzle_mask,
    texture,
)
from app.tests.imaging import encode, render
from app.tests.responses import assert_error


def upload(image: Image.Image, name: str = "c.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, encode(image), content_type="image/png")


def ocr(api, image: Image.Image, **fields):
    return api.post("/api/ocr/", {"image": upload(image), "engine": "ddddocr", **fields}, format="multipart")


# --- task=math ---------------------------------------------------------------------


# ddddocr reads 加减乘除 well (40/40 measured), so they are in the solved set; `÷` it cannot
# read at all (see test_division_sign_is_read_as_minus) so `/` stands for division here.
MATH_CASES = expressions(24, "+-×/", seed=1) + expressions(8, CHINESE_OPERATORS, seed=2)


def test_arithmetic_captchas_are_solved_through_the_api(api):
    """Measured 31/32 (0+5 read as 0x5); ddddocr's plain reading through the same parser: 12/32."""
    wrong = []
    for index, (text, answer) in enumerate(MATH_CASES):
        response = ocr(api, captcha(text, seed=index), task="math")
        assert response.status_code in (201, 422), response.content
        body = response.json()
        if response.status_code != 201 or body["result"] != answer:
            wrong.append((text, answer, body.get("text"), body.get("result")))
    assert len(wrong) <= len(MATH_CASES) // 10, wrong


@pytest.mark.parametrize("engine", ["ddddocr", "auto"])
def test_math_response_carries_the_expression_and_the_result(api, engine):
    response = ocr(api, captcha("12×4=?", seed=3), engine=engine, task="math")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["engine"], body["task"], body["result"], body["boxes"]) == ("ddddocr", "math", 48, None)
    assert solve(body["text"]) == 48
    assert body["text"].endswith("4=?")
    assert OcrRecord.objects.get(pk=body["id"]).extra == {"result": 48}
    assert api.get(f"/api/history/{body['id']}/").json()["result"] == 48


def test_division_sign_is_read_as_division(api):
    """ddddocr 1.6.1 never outputs ÷ (it reads 8÷4 as 8-4): the dots above and below the bar tell."""
    response = ocr(api, captcha("8÷4=?", seed=4), task="math")
    assert response.json()["result"] == 2


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("12×4=?", 48),
        ("9-2=", 7),
        ("6÷3", 2),
        ("3加8", 11),
        ("7 x 6", 42),
        ("3+8=?", 11),
        ("8/2", 4),
        ("9减2", 7),
        ("4乘5", 20),
        ("8除2", 4),
        ("6*7", 42),
        ("5X3", 15),
        ("12十4", 16),  # the model reads + as 十 (ten)
        ("7/2", 3.5),
        ("2-9=", -7),
        ("3＋8？", 11),
    ],
)
def test_parser_solves(text, answer):
    assert solve(text) == answer


@pytest.mark.parametrize("text", ["abc", "3+", "1/0", "", "3+4+5", "=?", "12×", "x7", "1234567+1", "3=8"])
def test_parser_refuses(text):
    with pytest.raises(Unprocessable) as caught:
        solve(text)
    assert caught.value.code == "unreadable_expression"
    assert repr(text) in caught.value.message


def probabilities(steps: list[dict[str, float]], charset: list[str]) -> np.ndarray:
    """A softmax matrix: each step's listed symbols, the rest of the mass on blank."""
    matrix = np.zeros((len(steps), len(charset)), dtype=np.float32)
    for row, step in zip(matrix, steps, strict=True):
        for char, p in step.items():
            row[charset.index(char)] = p
        row[0] = 1 - sum(step.values())
    return matrix


CHARSET = ["", *"0123456789+-×x÷/=?abc十加"]


@pytest.mark.parametrize(
    ("steps", "plain", "expression"),
    [
        # Probabilities ddddocr gave on 40px DejaVu captchas: the thin `-` loses to blank,
        # `=` reads as `-`, and `?` as `7`.
        ([{"1": 0.99}, {"9": 0.99}, {"-": 0.29}, {"2": 0.99}, {"-": 0.48, "=": 0.12}], "192-", "19-2"),
        (
            [
                {"1": 0.99},
                {"2": 0.99},
                {"+": 0.47, "十": 0.42},
                {"6": 0.99},
                {"-": 0.38, "=": 0.37},
                {"7": 0.74},
            ],
            "12+6-7",
            "12+6=?",
        ),
    ],
)
def test_expression_reading_repairs_what_the_plain_reading_gets_wrong(steps, plain, expression):
    blank_between = [step for pair in zip(steps, [{}] * len(steps), strict=True) for step in pair]
    matrix = probabilities(blank_between, CHARSET)
    assert "".join(CHARSET[i] for i in matrix.argmax(axis=1) if i) == plain
    assert read_expression(matrix, CHARSET) == expression


def test_expression_reading_collapses_repeats_like_ctc():
    steps = [{"1": 0.9}, {"1": 0.9}, {}, {"1": 0.9}, {"十": 0.6}, {"3": 0.9}, {"3": 0.9}]
    assert read_expression(probabilities(steps, CHARSET), CHARSET) == "11十3"


def test_expression_reading_finds_nothing_in_letters():
    steps = [{"a": 0.99}, {}, {"b": 0.99}, {"c": 0.99}]
    assert read_expression(probabilities(steps, CHARSET), CHARSET) == ""


@pytest.mark.parametrize("text", ["abc", "3+", "1/0"])
def test_unreadable_expression_is_a_422_and_stores_nothing(api, media_files, text):
    response = ocr(api, captcha(text, seed=1), task="math")
    error = assert_error(response, 422, "unreadable_expression")
    assert "read '" in error["message"]
    assert not OcrRecord.objects.exists()
    assert not media_files()


@pytest.mark.parametrize(("engine", "task"), [("tesseract", "math"), ("rapidocr", "detect")])
def test_document_engines_refuse_captcha_tasks(api, engine, task):
    response = ocr(api, captcha("3+8", seed=1), engine=engine, task=task)
    assert_error(response, 400, "unsupported_task")


# --- task=text with charset ----------------------------------------------------------

MIXED = ["a3b7k9", "x8pq2", "k7mx3", "hello42"]


def is_subsequence(needle: str, haystack: str) -> bool:
    rest = iter(haystack)
    return all(char in rest for char in needle)


@pytest.mark.parametrize("text", MIXED)
@pytest.mark.parametrize("charset", ["0", "0123456789"], ids=["preset-digits", "custom-digits"])
def test_digits_only_charset_reads_only_digits(api, text, charset):
    response = ocr(api, render([text], size=40, pad=10), task="text", charset=charset)
    assert response.status_code == 201, response.content
    read = response.json()["text"]
    digits = "".join(char for char in text if char.isdigit())
    assert read.isdigit(), read
    assert is_subsequence(digits, read), (digits, read)  # letters may turn into digits, digits stay


@pytest.mark.parametrize("text", MIXED)
def test_custom_charset_limits_the_reading(api, text):
    allowed = "abcxyz789"
    response = ocr(api, render([text], size=40, pad=10), task="text", charset=allowed)
    read = response.json()["text"]
    assert set(read) <= set(allowed), read
    assert is_subsequence("".join(char for char in text if char in allowed), read), read


def test_uppercase_preset_reads_lowercase_as_uppercase(api):
    read = ocr(api, render(["x8pq2"], size=40, pad=10), task="text", charset="2").json()["text"]
    assert read.isalpha(), read
    assert read.isupper(), read
    assert is_subsequence("XPQ", read), read


def test_a_charset_does_not_leak_into_the_next_request(api):
    image = render(["a3b7k9"], size=40, pad=10)
    before = ocr(api, image, task="text").json()["text"]
    assert ocr(api, image, task="text", charset="0").json()["text"].isdigit()
    after = ocr(api, image, task="text").json()["text"]
    assert after == before
    assert any(char.isalpha() for char in after)


def test_concurrent_requests_with_and_without_charset_each_get_their_own_reading():
    engine, plain = registry.select(engine="ddddocr", task="text")
    _, digits = registry.select(engine="ddddocr", task="text", charset="0")
    image = render(["a3b7k9"], size=40, pad=10)
    picture = Picture(image)
    expected = {plain: engine.recognize(picture, plain).text, digits: engine.recognize(picture, digits).text}
    assert expected[plain] != expected[digits]
    barrier, results = threading.Barrier(8), []

    def worker(options):
        barrier.wait()
        for _ in range(5):
            results.append(engine.recognize(picture, options).text == expected[options])

    threads = [threading.Thread(target=worker, args=([plain, digits][i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 40


@pytest.mark.parametrize("charset", ["8", "9", "x" * 501, "☃"])
def test_invalid_charset_is_a_400(api, media_files, charset):
    response = ocr(api, render(["ab12"], size=40, pad=10), task="text", charset=charset)
    assert_error(response, 400, "invalid_charset")
    assert not media_files()


# --- task=detect ---------------------------------------------------------------------


def iou(a, b) -> float:
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize(("chars", "seed"), [("天气很好", 0), ("光学字", 1), ("AK7Q", 2)])
def test_detect_finds_each_drawn_character(api, chars, seed):
    """Measured: one box per character, IoU 0.73-0.92 with where it was drawn."""
    image, drawn = characters_scene(chars, seed)
    response = ocr(api, image, task="detect")
    assert response.status_code == 201, response.content
    body = response.json()
    boxes = body["boxes"]
    assert len(boxes) == len(chars)
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 < x2 <= image.width
        assert 0 <= y1 < y2 <= image.height
    for box in drawn:
        assert max(iou(box, found) for found in boxes) >= 0.5
    assert boxes == sorted(boxes)  # left to right
    assert (body["text"], body["result"]) == ("", None)
    assert [line["box"] for line in body["lines"]] == [
        [[x1, y1], [x2, y1], [x2, y2], [x1, y2]] for x1, y1, x2, y2 in boxes
    ]
    assert all(line["text"] == "" and line["score"] is None for line in body["lines"])


def test_detect_on_a_blank_image_finds_nothing(api):
    body = ocr(api, Image.new("RGB", (320, 160), "white"), task="detect").json()
    assert (body["boxes"], body["lines"]) == ([], [])


# --- POST /api/slide/ --------------------------------------------------------------------


def slide(api, target: Image.Image, background: Image.Image, **fields):
    files = {"target": upload(target, "t.png"), "background": upload(background, "b.png")}
    return api.post("/api/slide/", {**files, **fields}, format="multipart")


def assert_found(response, x: int, y: int, width: int, height: int) -> None:
    assert response.status_code == 200, response.content
    body = response.json()
    left, top = body["target_x"], body["target_y"]
    assert abs(left - x) <= 3, (body, x, y)
    assert abs(top - y) <= 3, (body, x, y)
    assert body["target"] == [left, top, left + width, top + height]


@pytest.mark.parametrize("kind", ["noise", "blobs"])
@pytest.mark.parametrize("seed", range(3))
def test_match_finds_a_plain_crop(api, kind, seed):
    """Measured: exact on both textures. simple_target: a rectangle matches on pixels."""
    background, (x, y) = texture(kind, seed), place(seed)
    piece = background.crop((x, y, x + 50, y + 50))
    response = slide(api, piece, background, simple_target=True)
    assert_found(response, x, y, 50, 50)
    assert response.json()["algorithm"] == "match"


@pytest.mark.parametrize("kind", ["noise", "blobs"])
@pytest.mark.parametrize("seed", range(3))
def test_match_finds_a_transparent_piece_by_its_outline(api, kind, seed):
    """The usual slide captcha: a shaped piece on transparency, its gap shaded in the background.

    Edge matching (the default) finds the outline; measured exact on both textures.
    """
    background, (x, y) = texture(kind, seed), place(seed)
    piece = background.crop((x, y, x + 50, y + 50)).convert("RGBA")
    piece.putalpha(puzzle_mask())
    response = slide(api, piece, darken(background, x, y, puzzle_mask()))
    assert_found(response, x, y, 50, 50)


@pytest.mark.parametrize("seed", range(3))
def test_compare_finds_the_gap_between_two_pictures(api, seed):
    background, (x, y) = texture("blobs", seed), place(seed)
    response = slide(api, darken(background, x, y), background, algorithm="compare")
    assert_found(response, x, y, 50, 50)
    assert response.json()["algorithm"] == "compare"


def test_compare_measures_a_shaped_gap_by_its_own_box(api):
    background, (x, y) = texture("noise", 5), place(5)
    response = slide(api, darken(background, x, y, puzzle_mask()), background, algorithm="compare")
    left, top, right, bottom = puzzle_mask().getbbox()
    assert_found(response, x + left, y + top, right - left, bottom - top)


def test_slide_takes_base64_and_data_uris_as_json(api):
    background, (x, y) = texture("noise", 7), place(7)
    piece = background.crop((x, y, x + 50, y + 50))
    payload = {
        "target_base64": "data:image/png;base64," + base64.b64encode(encode(piece)).decode(),
        "background_base64": base64.b64encode(encode(background)).decode(),
        "simple_target": True,
    }
    assert_found(api.post("/api/slide/", payload, format="json"), x, y, 50, 50)
    assert not OcrRecord.objects.exists()  # slide answers are not kept


@pytest.fixture
def pictures() -> dict[str, SimpleUploadedFile]:
    background = texture("noise", 1)
    return {
        "target": upload(background.crop((0, 0, 50, 50)), "t.png"),
        "background": upload(background, "b.png"),
    }


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"target": SimpleUploadedFile("t.png", b"not an image")}, 400, "invalid_image"),
        ({"background": SimpleUploadedFile("b.png", b"")}, 400, "empty_image"),
        ({"target": None}, 400, "missing_image"),
        ({"background": None}, 400, "missing_image"),
        ({"target_base64": "@@@"}, 400, "missing_image"),  # both a file and base64
        ({"algorithm": "guess"}, 400, "invalid_choice"),
        ({"target": upload(Image.new("RGB", (400, 50)))}, 400, "target_too_large"),
        ({"algorithm": "compare"}, 400, "size_mismatch"),
    ],
)
def test_bad_slide_requests_are_4xx_json(api, pictures, change, status, code):
    fields = {key: value for key, value in {**pictures, **change}.items() if value is not None}
    response = api.post("/api/slide/", fields, format="multipart")
    assert_error(response, status, code)


def test_bad_base64_is_a_400(api):
    payload = {"target_base64": "@@@", "background_base64": "@@@"}
    response = api.post("/api/slide/", payload, format="json")
    assert_error(response, 400, "invalid_base64")


def test_compare_of_identical_pictures_finds_no_gap(api):
    background = texture("noise", 2)
    response = slide(api, background, background, algorithm="compare")
    assert_error(response, 422, "gap_not_found")


def test_slide_needs_a_login(anon, pictures):
    response = anon.post("/api/slide/", pictures, format="multipart")
    assert response.status_code == 401
