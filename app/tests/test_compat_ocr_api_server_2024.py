"""Today's ocr_api_server (its 2024 FastAPI rewrite) clients, unchanged: forms shaped as its
README's examples send them, with `requests`, to a live server (app/compat/ocr_api_server_2024.py)."""

import base64

import numpy as np
import pytest
import requests
from PIL import Image

from app.models import OcrRecord
from app.tests.captchas import captcha, characters_scene, darken, place, puzzle_mask, texture
from app.tests.imaging import encode, render

CAPTCHA_TEXT = "x8pq2"
CAPTCHA = encode(captcha(CAPTCHA_TEXT, seed=0))  # measured: read exactly
MIXED = encode(render(["7h3k9"], size=40, pad=10))  # measured: "7h3k9", digits only "739"
SUCCESS = {"code": 200, "message": "Success"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post(server, path: str, **kwargs) -> requests.Response:
    url, auth = server
    return requests.post(f"{url}{path}", headers=auth, timeout=60, **kwargs)


def answered(response: requests.Response) -> dict:
    """The body of a success: HTTP 200, {"code": 200, "message": "Success", "data": ...}."""
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert set(body) == {"code", "message", "data"}
    assert {"code": body["code"], "message": body["message"]} == SUCCESS, body
    return body["data"]


def assert_failed(response, status: int, code: int, error_code: str, message: str | None = None) -> None:
    """An error in its shape: {"code", "message", "data": null}; the API's code in X-Error-Code."""
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body) == {"code", "message", "data"}
    assert (body["code"], body["data"]) == (code, None), body
    assert 0 < len(body["message"]) <= 500
    if message is not None:
        assert body["message"] == message
    assert response.headers["X-Error-Code"] == error_code


def ctc(probability: list[list[float]], charsets: list[str]) -> str:
    """Each step's most likely character, repeats and the blank ("") dropped."""
    best = [charsets[int(np.argmax(row))] for row in probability]
    return "".join(char for i, char in enumerate(best) if char and (i == 0 or char != best[i - 1]))


# --- POST /ocr ------------------------------------------------------------------------------


def test_ocr_file_reads_the_captcha_exactly_and_keeps_history(server, user):
    data = answered(post(server, "/ocr", files={"file": ("c.png", CAPTCHA, "image/png")}))
    assert data == CAPTCHA_TEXT
    record = OcrRecord.objects.get(owner=user)
    assert (record.engine, record.task, record.text, record.file_name) == ("ddddocr", "text", data, "c.png")


@pytest.mark.parametrize(
    "image", [b64(CAPTCHA), f"data:image/png;base64,{b64(CAPTCHA)}"], ids=["base64", "data-uri"]
)
def test_ocr_base64_form_field_as_its_readme_sends_it(server, image):
    """README, Python: requests.post(url, data={"image": ..., "probability": False, "png_fix": False})."""
    data = answered(post(server, "/ocr", data={"image": image, "probability": False, "png_fix": False}))
    assert data == CAPTCHA_TEXT


@pytest.mark.parametrize(("charsets", "expected"), [("", "7h3k9"), ("0123456789", "739"), ("hk", "hk")])
def test_ocr_charsets_restricts_the_reading(server, user, charsets, expected):
    assert answered(post(server, "/ocr", data={"image": b64(MIXED), "charsets": charsets})) == expected
    record = OcrRecord.objects.get(owner=user)
    assert (record.text, record.options.get("charset", "")) == (expected, charsets)


def test_ocr_charsets_of_one_character_is_that_character_not_a_preset(server):
    """There, set_ranges("3") allows the digit 3; here 3 alone would be the preset a-zA-Z."""
    assert answered(post(server, "/ocr", data={"image": b64(MIXED), "charsets": "3"})) == "3"


def test_ocr_probability_without_charsets_is_every_character_per_step(server):
    data = answered(post(server, "/ocr", data={"image": b64(MIXED), "probability": "true"}))
    assert set(data) == {"charsets", "probability"}
    charsets, probability = data["charsets"], data["probability"]
    assert charsets[0] == ""  # the model's whole charset, the blank first
    assert len(charsets) > 6000
    assert all(len(row) == len(charsets) for row in probability)
    assert all(abs(sum(row) - 1) < 1e-3 for row in probability)  # each step's softmax
    assert ctc(probability, charsets) == "7h3k9"


def test_ocr_probability_with_charsets_is_those_characters_and_the_blank(server):
    data = answered(
        post(server, "/ocr", data={"image": b64(MIXED), "probability": "true", "charsets": "9876543210"})
    )
    assert data["charsets"] == [*"9876543210", ""]
    assert all(len(row) == 11 and all(0 <= p <= 1 for p in row) for row in data["probability"])
    assert ctc(data["probability"], data["charsets"]) == "739"
    # the text answer with the same charsets is the same reading
    assert answered(post(server, "/ocr", data={"image": b64(MIXED), "charsets": "9876543210"})) == "739"


def test_ocr_probability_marks_a_character_the_model_does_not_know(server):
    data = answered(
        post(server, "/ocr", data={"image": b64(MIXED), "probability": "1", "charsets": "7\U0001f600"})
    )
    assert data["charsets"] == ["7", "\U0001f600", ""]
    assert all(row[1] == -1 and 0 <= row[0] <= 1 for row in data["probability"])


def transparent_captcha() -> bytes:
    """CAPTCHA_TEXT's strokes in black on pixels that are transparent black elsewhere (as
    editors leave them): only the alpha channel tells text from background."""
    alpha = Image.eval(render([CAPTCHA_TEXT], size=40, pad=10).convert("L"), lambda v: 255 - v)
    return encode(Image.merge("RGBA", (*Image.new("RGB", alpha.size, "black").split(), alpha)))


@pytest.mark.parametrize("png_fix", ["true", "false"])
def test_ocr_png_fix_is_accepted_and_transparency_is_always_flattened(server, png_fix):
    files = {"file": ("t.png", transparent_captcha(), "image/png")}
    assert answered(post(server, "/ocr", files=files, data={"png_fix": png_fix})) == CAPTCHA_TEXT


def test_ocr_path_answers_each_dialect_by_its_fields(server, user):
    """rapidocr_api's image_file gets its lines keyed by number; ocr_api_server's file,
    {code, message, data}."""
    rapid = post(server, "/ocr", files={"image_file": ("c.png", CAPTCHA, "image/png")})
    assert rapid.status_code == 200
    body = rapid.json()
    assert list(body) == ["0"]
    assert set(body["0"]) == {"rec_txt", "dt_boxes", "score"}
    assert answered(post(server, "/ocr", files={"file": ("c.png", CAPTCHA, "image/png")})) == CAPTCHA_TEXT
    engines = sorted(OcrRecord.objects.filter(owner=user).values_list("engine", flat=True))
    assert engines == ["ddddocr", "rapidocr"]


def test_ocr_path_with_neither_dialects_fields_is_the_apis_400(server):
    """/ocr was rapidocr_api's first: a form without either's image is answered as before."""
    response = post(server, "/ocr", data={"probability": "true"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "missing_image"
    assert "`image_file`" in error["message"]
    assert "`file`" in error["message"]


# --- POST /slide_match ----------------------------------------------------------------------


def shaped_piece(kind: str, seed: int) -> tuple[bytes, bytes, int, int]:
    """A jigsaw piece on transparency and the background with its gap shaded."""
    background, (x, y) = texture(kind, seed), place(seed)
    piece = background.crop((x, y, x + 50, y + 50)).convert("RGBA")
    piece.putalpha(puzzle_mask())
    return encode(piece), encode(darken(background, x, y, puzzle_mask())), x, y


def plain_crop(kind: str, seed: int) -> tuple[bytes, bytes, int, int]:
    background, (x, y) = texture(kind, seed), place(seed)
    return encode(background.crop((x, y, x + 50, y + 50))), encode(background), x, y


@pytest.mark.parametrize("kind", ["noise", "blobs"])
@pytest.mark.parametrize(
    ("make", "simple_target"), [(shaped_piece, "false"), (plain_crop, "true")], ids=["edges", "simple"]
)
def test_slide_match_with_files(server, kind, make, simple_target):
    target, background, x, y = make(kind, 2)
    files = {
        "target_file": ("t.png", target, "image/png"),
        "background_file": ("b.png", background, "image/png"),
    }
    data = answered(post(server, "/slide_match", files=files, data={"simple_target": simple_target}))
    assert data == {"target_x": x, "target_y": y, "target": [x, y, x + 50, y + 50]}


@pytest.mark.parametrize(("make", "simple_target"), [(shaped_piece, None), (plain_crop, "True")])
def test_slide_match_with_base64(server, make, simple_target):
    target, background, x, y = make("blobs", 1)
    fields = {"target": b64(target), "background": b64(background)}
    if simple_target is not None:
        fields["simple_target"] = simple_target
    data = answered(post(server, "/slide_match", data=fields))
    assert data == {"target_x": x, "target_y": y, "target": [x, y, x + 50, y + 50]}


def test_slide_match_takes_a_file_and_base64_together(server):
    target, background, x, y = plain_crop("noise", 0)
    files = {"target_file": ("t.png", target, "image/png")}
    data = answered(
        post(server, "/slide_match", files=files, data={"background": b64(background), "simple_target": "1"})
    )
    assert data["target"] == [x, y, x + 50, y + 50]


# --- POST /detection ------------------------------------------------------------------------


def iou(a, b) -> float:
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_detection_boxes_by_file_and_by_base64(server, user):
    scene, drawn = characters_scene("天气好", seed=1)
    boxes = answered(post(server, "/detection", files={"file": ("s.png", encode(scene), "image/png")}))
    assert len(boxes) == len(drawn)
    assert all(len(box) == 4 and all(isinstance(v, int) for v in box) for box in boxes)
    for box in drawn:
        assert max(iou(box, found) for found in boxes) >= 0.5
    assert answered(post(server, "/detection", data={"image": b64(encode(scene))})) == boxes
    record = OcrRecord.objects.filter(owner=user).first()
    assert (record.engine, record.task, record.extra["boxes"]) == ("ddddocr", "detect", boxes)


# --- errors, in its shape ---------------------------------------------------------------------

NOT_AN_IMAGE = b64(b"hello, this is not an image at all")


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/ocr", {"image": ""}, "Either file or image must be provided"),
        ("/detection", {}, "Either file or image must be provided"),
        ("/slide_match", {}, "Both target and background must be provided"),
        ("/slide_match", {"target": b64(CAPTCHA)}, "Both target and background must be provided"),
    ],
    ids=["ocr-empty-image", "detection", "slide-nothing", "slide-no-background"],
)
def test_no_image_is_code_400_with_http_200(server, media_files, path, fields, message):
    assert_failed(post(server, path, data=fields), 200, 400, "missing_image", message)
    assert not OcrRecord.objects.exists()
    assert media_files() == set()


@pytest.mark.parametrize("path", ["/ocr", "/detection"])
@pytest.mark.parametrize(
    ("image", "error_code", "message"),
    [
        ("@@@ not base64", "invalid_base64", "400: Invalid base64 string"),
        (NOT_AN_IMAGE, "invalid_image", None),
    ],
    ids=["bad-base64", "not-an-image"],
)
def test_a_failing_image_is_code_500_with_http_200(server, media_files, path, image, error_code, message):
    """There every exception after the missing-image check is one `except Exception`: code 500
    (bad base64 raises HTTPException(400, "Invalid base64 string") inside it)."""
    assert_failed(post(server, path, data={"image": image}), 200, 500, error_code, message)
    assert not OcrRecord.objects.exists()
    assert media_files() == set()


def test_slide_match_bad_base64_is_code_500(server):
    fields = {"target": "@@@", "background": b64(CAPTCHA)}
    assert_failed(
        post(server, "/slide_match", data=fields), 200, 500, "invalid_base64", "400: Invalid base64 string"
    )


@pytest.mark.parametrize(
    ("path", "fields"),
    [("/ocr", {"image": b64(CAPTCHA), "probability": "maybe"}), ("/slide_match", {"simple_target": "2"})],
)
def test_a_field_of_the_wrong_type_is_a_422(server, path, fields):
    """FastAPI validates its Form parameters before the endpoint runs: HTTP 422."""
    assert_failed(post(server, path, data=fields), 422, 422, "invalid")


@pytest.mark.parametrize("path", ["/ocr", "/slide_match", "/detection"])
@pytest.mark.parametrize("auth", [None, "Basic f0ngauth"], ids=["no-key", "wrong-key"])
def test_without_a_valid_key_it_is_a_401_in_its_shape(live_server, path, auth):
    """The original has no keys; here a key is needed (unless OCR_ALLOW_ANONYMOUS), and its
    clients get the refusal as {code: 401, ...} with the HTTP status to match."""
    headers = {"Authorization": auth} if auth else {}
    files = {"file": ("c.png", CAPTCHA, "image/png")}
    response = requests.post(f"{live_server.url}{path}", files=files, headers=headers, timeout=60)
    body = response.json()
    assert response.status_code == 401
    assert (body["code"], body["data"]) == (401, None)
    assert "WWW-Authenticate" in response.headers


def test_anonymous_requests_are_answered_and_not_kept_when_allowed(live_server, settings, db):
    settings.OCR_ALLOW_ANONYMOUS = True
    response = requests.post(
        f"{live_server.url}/ocr", files={"file": ("c.png", CAPTCHA, "image/png")}, timeout=60
    )
    assert answered(response) == CAPTCHA_TEXT
    assert not OcrRecord.objects.exists()


@pytest.mark.parametrize(
    ("path", "fields", "files"),
    [
        ("/ocr", {}, {"file": ("big.png", b"\x89PNG" + bytes(200_000), "image/png")}),
        ("/ocr", {"image": "A" * 300_000}, {}),
        ("/detection", {"image": "A" * 300_000}, {}),
        ("/slide_match", {"target": "A" * 300_000, "background": b64(CAPTCHA)}, {}),
    ],
    ids=["ocr-file", "ocr-base64", "detection-base64", "slide-base64"],
)
def test_an_oversized_image_is_a_413_in_its_shape(server, settings, media_files, path, fields, files):
    settings.OCR_MAX_UPLOAD_BYTES = 100_000
    assert_failed(post(server, path, data=fields, files=files or None), 413, 413, "file_too_large")
    assert not OcrRecord.objects.exists()
    assert media_files() == set()
