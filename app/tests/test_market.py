"""The cloud market's products, called by their own stock demo (app/tests/market_demo.py:
urllib, no Content-Type, `configure` as JSON text, any status but 200 is failure) against a
live server."""

import json
import math
import re

import pytest
from PIL import Image

from app.models import OcrRecord
from app.tests.idcards import specimen
from app.tests.imaging import CJK_FONT, cer, chinese_lines, encode, english_lines, render
from app.tests.market_demo import demo, predict

GENERAL = "/api/predict/ocr_general"
LINES = english_lines(3, seed=23)
DOCUMENT = encode(render(LINES))
CONFIGURE = {
    "min_size": 16,
    "output_prob": True,
    "output_keypoints": False,
    "skip_detection": False,
    "without_predicting_direction": False,
}


@pytest.fixture
def market(live_server, key):
    """Runs the demo against a path of the live server with the user's key."""

    def run(path: str, image: bytes, config: dict | None, old_format: bool = False):
        return demo(f"{live_server.url}{path}", key, image, config, old_format)

    return run


@pytest.mark.parametrize("old_format", [False, True], ids=["new-format", "old-format"])
def test_general_reads_as_the_api_does(market, api, user, old_format):
    stat, _, result = market(GENERAL, DOCUMENT, CONFIGURE, old_format)
    assert stat == 200, result
    assert result["success"] is True
    assert set(result) == {"request_id", "ret", "success"}
    words = [item["word"] for item in result["ret"]]
    assert cer("\n".join(LINES), "\n".join(words)) <= 0.02
    ours = api.post("/api/ocr/", {"image_base64": encode_b64(DOCUMENT)}, format="json").json()
    assert "\n".join(words) == ours["text"]  # the same reading as POST /api/ocr/
    first = result["ret"][0]
    assert set(first) == {"word", "rect", "prob"}
    assert set(first["rect"]) == {"left", "top", "width", "height", "angle"}
    assert first["rect"]["angle"] == 0
    assert 20 <= first["rect"]["top"] <= 30  # the drawing's pad: 24
    assert 0.9 <= first["prob"] <= 1
    record = OcrRecord.objects.get(owner=user)
    assert (record.task, record.status, record.text) == ("document", "done", "\n".join(words))


def test_general_keypoints_and_no_prob(market):
    configure = {**CONFIGURE, "output_prob": False, "output_keypoints": True}
    stat, _, result = market(GENERAL, DOCUMENT, configure)
    assert stat == 200
    first = result["ret"][0]
    assert set(first) == {"word", "rect", "keypoints"}
    rect, points = first["rect"], first["keypoints"]
    assert len(points) == 4
    assert set(points[0]) == {"x", "y"}
    assert abs(points[0]["x"] - rect["left"]) <= 2
    assert abs(points[2]["y"] - (rect["top"] + rect["height"])) <= 2


def test_min_size_leaves_out_lower_lines(market):
    small, large = render(["quantity price total"], size=12), render(["invoice number"], size=40)
    page = Image.new("RGB", (max(small.width, large.width), small.height + large.height), "white")
    page.paste(large, (0, 0))
    page.paste(small, (0, large.height))
    image = encode(page)
    _, _, every = market(GENERAL, image, None)
    assert [item["word"] for item in every["ret"]] == ["invoice number", "quantity price total"]
    _, _, tall = market(GENERAL, image, {"min_size": 30})
    assert [item["word"] for item in tall["ret"]] == ["invoice number"]


def test_skip_detection_reads_the_image_as_one_line(market, user):
    (line,) = chinese_lines(1, seed=5, chars=8)
    crop = encode(render([line], font=CJK_FONT, size=28, pad=4))
    stat, _, result = market(GENERAL, crop, {"skip_detection": True})
    assert stat == 200
    assert [item["word"] for item in result["ret"]] == [line]
    assert OcrRecord.objects.get(owner=user).task == "line"


def test_without_predicting_direction_reads_the_image_as_sent(market):
    lines = english_lines(8, seed=23, words=7)  # enough text for the direction to be told
    upside_down = encode(render(lines).rotate(180))
    _, _, turned = market(GENERAL, upside_down, None)
    assert cer("\n".join(lines), "\n".join(item["word"] for item in turned["ret"])) <= 0.02
    _, _, as_sent = market(GENERAL, upside_down, {"without_predicting_direction": True})
    assert cer("\n".join(lines), "\n".join(item["word"] for item in as_sent["ret"])) > 0.5


@pytest.mark.parametrize(
    ("config", "code", "named"),
    [
        ({"side": "face"}, "unknown_option", "side"),
        ({"min_size": "big"}, "invalid", "min_size"),
        ({"output_prob": "perhaps"}, "invalid", "output_prob"),
    ],
    ids=["unknown-option", "bad-number", "bad-boolean"],
)
def test_general_bad_configure_is_a_400_with_the_header(market, config, code, named):
    stat, message, body = market(GENERAL, DOCUMENT, config)
    assert stat == 400
    assert named in message
    assert json.loads(body)["error"]["code"] == code


def test_errors_are_short_and_never_echo_the_request(market, live_server):
    big = encode(render(english_lines(40, seed=3)))  # tens of KB of base64
    stat, message, body = market(GENERAL, big, {"no_such_option": 1})
    assert (stat, "no_such_option" in message) == (400, True)
    assert len(body) < 1000
    stat, message, body = market(GENERAL, b"not an image at all", None)
    assert (stat, json.loads(body)["error"]["code"]) == (400, "invalid_image")
    assert message == "The file is not an image this service can read."
    stat, message, _ = demo(f"{live_server.url}{GENERAL}", "wrong-key", DOCUMENT, None, False)
    assert (stat, message) == (401, "Invalid or revoked API key.")


def test_a_pdf_is_refused_before_anything_is_stored(market, user):
    from app.tests.pdfs import pdf_of

    stat, message, body = market(GENERAL, pdf_of(render(LINES)), None)
    assert (stat, json.loads(body)["error"]["code"]) == (400, "unsupported_input")
    assert message == "This product reads an image; send the page as an image."
    assert not OcrRecord.objects.filter(owner=user).exists()


def test_the_api_takes_the_demo_body_too(live_server, key, user):
    """POST /api/ocr/ with the demo's body, no Content-Type: 200 (not 201), the record."""
    stat, _, result = demo(f"{live_server.url}/api/ocr/", key, DOCUMENT, {"engine": "tesseract"}, False)
    assert stat == 200
    assert cer("\n".join(LINES), result["text"]) <= 0.02
    assert OcrRecord.objects.get(owner=user).engine == "tesseract"


def encode_b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


# --- the ID-card product ----------------------------------------------------------------

IDCARD = "/rest/160601/ocr/ocr_idcard.json"


def card_bytes(card) -> bytes:
    return encode(card.image, "JPEG", quality=90) if card.image.mode == "RGB" else encode(card.image)


def assert_region(region: list[dict], card) -> None:
    """card_region: counter-clockwise from the top-left (TL, BL, BR, TR), each corner within
    5 % of the card's diagonal."""
    tl, tr, br, bl = card.corners
    for got, want in zip(region, (tl, bl, br, tr), strict=True):
        assert math.dist((got["x"], got["y"]), want) <= 0.05 * card.diagonal, (region, card.corners)


@pytest.mark.parametrize("old_format", [False, True], ids=["new-format", "old-format"])
def test_idcard_face_as_the_demo_sends_it(market, user, old_format):
    card = specimen(3, "face", "photo")
    stat, _, result = market(IDCARD, card_bytes(card), {"side": "face"}, old_format)
    assert stat == 200, result
    assert {key: result[key] for key in card.fields} == card.fields
    assert result["success"] is True
    assert result["config_str"] == '{"side":"face"}'
    assert re.fullmatch(r"\d{14}_[0-9a-f]{32}", result["request_id"])
    assert_region(result["card_region"], card)
    (left, top), _, (right, bottom), _ = card.face
    centre = result["face_rect"]["center"]
    assert left <= centre["x"] <= right
    assert top <= centre["y"] <= bottom
    assert set(result["face_rect"]) == {"angle", "center", "size"}
    assert len(result["face_rect_vertices"]) == 4
    record = OcrRecord.objects.get(owner=user)
    assert (record.task, record.engine, record.options["side"]) == ("idcard", "rapidocr", "face")
    assert record.extra["idcard"]["num"] == card.fields["num"]


def test_idcard_back_and_the_default_side(market):
    card = specimen(4, "back", "plain")
    stat, _, back = market(IDCARD, card_bytes(card), {"side": "back"})
    assert stat == 200
    assert {key: back[key] for key in ("issue", "start_date", "end_date")} == card.fields
    assert back["success"] is True
    assert "name" not in back
    face = specimen(4, "face", "plain")
    stat, _, default = market(IDCARD, card_bytes(face), None)  # the demo's config = None
    assert stat == 200
    assert default["name"] == face.fields["name"]
    assert default["config_str"] == "{}"


def test_idcard_from_an_image_url(live_server, key, image_server, settings):
    """`image` an http(s) URL (the demo's predict() with the URL where its base64 goes),
    fetched through the SSRF guard: refused until the address is allowed."""
    base, routes = image_server
    card = specimen(5, "face", "turned90")
    routes["/card.png"] = (200, {"Content-Type": "image/png"}, encode(card.image))
    url = f"{live_server.url}{IDCARD}"
    stat, header, _ = predict(url, key, f"{base}/card.png", {"side": "face"}, False)
    assert (stat, header["X-Ca-Error-Message"][:20]) == (400, "The image URL's host")
    settings.OCR_URL_ALLOWLIST = ["127.0.0.2/32"]
    stat, _, content = predict(url, key, f"{base}/card.png", {"side": "face"}, False)
    assert stat == 200, content
    assert json.loads(content)["num"] == card.fields["num"]


def test_a_photo_without_a_card_answers_success_false_with_empty_fields(market):
    stat, _, result = market(IDCARD, DOCUMENT, {"side": "face"})
    assert stat == 200
    assert result["success"] is False
    assert all(result[key] == "" for key in ("name", "sex", "nationality", "birth", "address", "num"))
    # no face: the shape the demo's users index into, of size 0, never a guessed face
    origin = {"x": 0.0, "y": 0.0}
    assert result["face_rect"] == {"angle": 0.0, "center": origin, "size": {"width": 0.0, "height": 0.0}}
    assert result["face_rect_vertices"] == [origin] * 4


@pytest.mark.parametrize(
    ("config", "code"),
    [({"side": "top"}, "invalid_choice"), ({"side": "face", "engine": "tesseract"}, "unknown_option")],
    ids=["bad-side", "unknown-option"],
)
def test_idcard_bad_configure(market, config, code):
    stat, message, body = market(IDCARD, DOCUMENT, config)
    assert (stat, json.loads(body)["error"]["code"]) == (400, code)
    assert message


def test_errors_outside_the_views_carry_the_header_too(market, settings):
    """A body over the limit (refused from its Content-Length, before any view) and a product
    path that does not exist: the demo still finds the reason in X-Ca-Error-Message."""
    settings.OCR_MAX_REQUEST_BYTES = 10_000
    stat, message, body = market(GENERAL, DOCUMENT, None)
    assert (stat, json.loads(body)["error"]["code"]) == (413, "too_large")
    assert message.startswith("The request body is ")
    stat, message, body = market("/rest/160601/ocr/ocr_vehicle.json", DOCUMENT[:100], None)
    assert (stat, json.loads(body)["error"]["code"]) == (404, "not_found")
    assert message
