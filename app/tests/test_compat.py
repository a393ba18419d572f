"""The older services' clients, unchanged: requests shaped exactly as their documentation shows,
sent with `requests` to a live server."""

import ast
import base64
import json

import requests
from PIL import Image

from app.models import OcrRecord
from app.tests.captchas import captcha, characters_scene, darken, place, puzzle_mask, texture
from app.tests.imaging import cer, encode, english_lines, render

LINES = english_lines(3, seed=41)
DOCUMENT = encode(render(LINES))
CAPTCHA_TEXT = "x8pq2"
CAPTCHA = encode(render([CAPTCHA_TEXT], size=40, pad=8))


# --- ocr_api_server ---------------------------------------------------------------------


def test_ping(live_server):
    response = requests.get(f"{live_server.url}/ping")
    assert (response.status_code, response.text) == (200, "pong")


def test_ocr_file_answers_bare_text_and_keeps_history(server, user):
    url, auth = server
    response = requests.post(f"{url}/ocr/file", files={"image": CAPTCHA}, headers=auth)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert cer(CAPTCHA_TEXT, response.text.lower()) <= 0.2
    record = OcrRecord.objects.get(owner=user)
    assert (record.engine, record.task, record.text) == ("ddddocr", "text", response.text)


def test_ocr_b64_text_with_raw_base64_body(server):
    url, auth = server
    response = requests.post(f"{url}/ocr/b64/text", data=base64.b64encode(CAPTCHA).decode(), headers=auth)
    assert response.status_code == 200
    assert cer(CAPTCHA_TEXT, response.text.lower()) <= 0.2


def test_ocr_b64_json(server):
    url, auth = server
    response = requests.post(f"{url}/ocr/b64/json", data=base64.b64encode(CAPTCHA).decode(), headers=auth)
    body = response.json()
    assert (body["status"], body["msg"]) == (200, "")
    assert cer(CAPTCHA_TEXT, body["result"].lower()) <= 0.2


def test_errors_in_json_and_text_shapes(server):
    url, auth = server
    bad = requests.post(f"{url}/ocr/b64/json", data="@@@ not base64", headers=auth)
    assert bad.status_code == 400
    assert bad.json() == {"status": 404, "result": "", "msg": "image_base64 is not valid base64."}
    bad_text = requests.post(f"{url}/ocr/b64/text", data="@@@", headers=auth)
    assert (bad_text.status_code, bad_text.text) == (400, "")
    missing = requests.post(f"{url}/ocr/file/json", files={"wrong": CAPTCHA}, headers=auth)
    assert missing.status_code == 400
    assert missing.json()["result"] == ""


def test_without_a_key_it_is_refused_unless_anonymous_is_allowed(live_server, settings, user):
    response = requests.post(f"{live_server.url}/ocr/file/json", files={"image": CAPTCHA})
    assert response.status_code == 401
    assert response.json()["status"] == 404
    settings.OCR_ALLOW_ANONYMOUS = True
    response = requests.post(f"{live_server.url}/ocr/file/json", files={"image": CAPTCHA})
    assert response.status_code == 200
    assert cer(CAPTCHA_TEXT, response.json()["result"].lower()) <= 0.2
    assert not OcrRecord.objects.exists()  # anonymous requests are not kept


def test_a_wrong_key_is_refused_even_when_anonymous_is_allowed(live_server, settings):
    settings.OCR_ALLOW_ANONYMOUS = True
    response = requests.post(
        f"{live_server.url}/ocr/file/json",
        files={"image": CAPTCHA},
        headers={"Authorization": "Basic f0ngauth"},
    )
    assert response.status_code == 401


# --- rapidocr_api -----------------------------------------------------------------------


def test_rapidocr_api_with_a_file(server, tmp_path, user):
    url, auth = server
    img_path = tmp_path / "ch_en_num.png"
    img_path.write_bytes(DOCUMENT)
    with open(img_path, "rb") as f:
        file_dict = {"image_file": (str(img_path), f, "image/png")}
        response = requests.post(f"{url}/ocr", files=file_dict, timeout=60, headers=auth)
    body = response.json()
    assert list(body) == ["0", "1", "2"]
    assert cer("\n".join(LINES), "\n".join(body[k]["rec_txt"] for k in body)) <= 0.05
    for item in body.values():
        assert isinstance(item["score"], str)
        assert 0.5 < float(item["score"]) <= 1
        assert len(item["dt_boxes"]) == 4
        assert all(len(point) == 2 for point in item["dt_boxes"])
    assert OcrRecord.objects.get(owner=user).engine == "rapidocr"


def test_rapidocr_api_with_base64_form_data(server):
    url, auth = server
    payload = {"image_data": base64.b64encode(DOCUMENT)}
    body = requests.post(f"{url}/ocr", data=payload, headers=auth).json()
    assert cer("\n".join(LINES), "\n".join(item["rec_txt"] for item in body.values())) <= 0.05


def test_rapidocr_api_answers_an_empty_object_when_there_is_no_text(server):
    url, auth = server
    blank = encode(Image.new("RGB", (200, 80), "white"))
    response = requests.post(f"{url}/ocr", files={"image_file": ("b.png", blank, "image/png")}, headers=auth)
    assert (response.status_code, response.json()) == (200, {})


def test_rapidocr_api_bad_input_is_a_4xx(server):
    url, auth = server
    response = requests.post(f"{url}/ocr", data={"image_data": "!!!"}, headers=auth)
    assert response.status_code == 400
    assert json.loads(response.text)["error"]["code"] == "invalid_base64"


def test_ocr_b64_json_typeid_2_solves_arithmetic(server):
    """As the service's 2022 note shows it: JSON text posted with a form content type."""
    url, auth = server
    body = json.dumps({"typeid": "2", "image": base64.b64encode(encode(captcha("7+5=?", seed=3))).decode()})
    response = requests.post(
        f"{url}/ocr/b64/json",
        data=body,
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.json() == {"status": 200, "result": 12, "msg": ""}


def test_ocr_file_with_typeid_2_answers_the_bare_value(server):
    url, auth = server
    image = encode(captcha("9×3", seed=4))
    response = requests.post(
        f"{url}/ocr/file/text", files={"image": image}, data={"typeid": "2"}, headers=auth
    )
    assert response.text == "27"


def test_det_file_and_b64(server):
    url, auth = server
    scene, drawn = characters_scene("天气好", seed=1)
    as_text = requests.post(f"{url}/det/file", files={"image": encode(scene)}, headers=auth)
    boxes = json.loads(as_text.text)  # the bare result is the printed list
    assert len(boxes) == len(drawn)
    as_json = requests.post(
        f"{url}/det/b64/json", data=base64.b64encode(encode(scene)).decode(), headers=auth
    )
    assert as_json.json()["result"] == boxes


def test_slide_match_file(server):
    url, auth = server
    background, (x, y) = texture("noise", 2), place(2)
    piece = background.crop((x, y, x + 50, y + 50)).convert("RGBA")
    piece.putalpha(puzzle_mask())
    files = {"target_img": encode(piece), "bg_img": encode(darken(background, x, y, puzzle_mask()))}
    response = requests.post(f"{url}/slide/match/file/json", files=files, headers=auth)
    result = response.json()["result"]
    assert abs(result["target_x"] - x) <= 3
    assert abs(result["target_y"] - y) <= 3
    assert result["target"] == [
        result["target_x"],
        result["target_y"],
        result["target_x"] + 50,
        result["target_y"] + 50,
    ]


def test_slide_compare_b64_takes_base64_of_json(server):
    url, auth = server
    background, (x, y) = texture("blobs", 3), place(3)
    jsonstr = json.dumps(
        {
            "target_img": base64.b64encode(encode(darken(background, x, y))).decode(),
            "bg_img": base64.b64encode(encode(background)).decode(),
        }
    )
    response = requests.post(
        f"{url}/slide/compare/b64", data=base64.b64encode(jsonstr.encode()).decode(), headers=auth
    )
    found = ast.literal_eval(response.text)  # `text` prints the dict as the service did
    assert abs(found["target"][0] - x) <= 3
    assert abs(found["target"][1] - y) <= 3
