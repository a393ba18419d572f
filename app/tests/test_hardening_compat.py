"""Issue 19, items 7 and 9 on the older services' paths (app/compat/): every field those
dialects read, sent as every JSON type, and bodies that are not JSON, not UTF-8 or of the
wrong content type, are a 4xx in the dialect's error shape (never a 500) that leaves no
record and no file behind; and the text fields they read are bounded."""

import base64
import json
import time
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from app import services
from app.models import OcrRecord
from app.tests.imaging import encode, render
from app.tests.responses import assert_error

PNG = encode(render(["x8pq2"], size=40, pad=8))
PNG_B64 = base64.b64encode(PNG).decode()
HUGE = "A" * 1_000_000  # past the 100,000-byte upload limit the fuzz sets, as base64
NOT_BASE64 = "@@@ not base64 @@@"
NOT_AN_IMAGE = base64.b64encode(b"hello, this is not an image at all").decode()

# Every JSON type, and the strings a base64 field can go wrong with.
VALUES: dict[str, Any] = {
    "null": None,
    "true": True,
    "zero": 0,
    "minus-one": -1,
    "float": 1.5,
    "empty-string": "",
    "x": "x",
    "empty-list": [],
    "list": ["a"],
    "empty-object": {},
    "object": {"a": 1},
    "huge-string": HUGE,
    "not-base64": NOT_BASE64,
    "base64-not-an-image": NOT_AN_IMAGE,
}
OK = (200, "")  # the field's value is good input: the request is answered as before

# What a base64 image field of a JSON body answers for each value.
B64_IMAGE = {
    "null": (400, "missing_image"),
    "empty-string": (400, "missing_image"),
    **dict.fromkeys(
        ["true", "zero", "minus-one", "float", "empty-list", "list", "empty-object", "object"],
        (400, "invalid"),
    ),
    "x": (400, "invalid_base64"),
    "huge-string": (413, "file_too_large"),
    "not-base64": (400, "invalid_base64"),
    "base64-not-an-image": (400, "invalid_image"),
}
# typeid (ocr only): absent, null or empty is 1; only 1 and 2 are typeids.
TYPEID = {name: (400, "invalid_choice") for name in VALUES} | {"null": OK, "empty-string": OK}
# A multipart form carries text: each value goes as its JSON text (a string as itself).
FORM_TYPEID = {name: (400, "invalid_choice") for name in VALUES} | {"empty-string": OK}
# A file field sent as a text field is no file.
FORM_FILE = dict.fromkeys(VALUES, (400, "missing_image"))
RAPID_FILE = {name: (400, "invalid") for name in VALUES} | {"empty-string": (400, "missing_image")}
RAPID_DATA = {
    **dict.fromkeys(["null", "true", "minus-one", "base64-not-an-image"], (400, "invalid_image")),
    **dict.fromkeys(
        ["zero", "float", "x", "empty-list", "list", "empty-object", "object", "not-base64"],
        (400, "invalid_base64"),
    ),
    "empty-string": (400, "missing_image"),
    "huge-string": (413, "file_too_large"),
}

RECOGNIZE_B64 = ["/ocr/b64/json", "/det/b64/json"]
RECOGNIZE_FILE = ["/ocr/file/json", "/det/file/json"]
SLIDE_B64 = ["/slide/match/b64/json", "/slide/compare/b64/json"]
SLIDE_FILE = ["/slide/match/file/json", "/slide/compare/file/json"]


@pytest.fixture
def client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Basic {services.create_api_key(owner=user, name='old')[1]}")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hashing is not under test here: MD5 keeps making users from costing a second each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _small_upload_limit(settings):
    """HUGE is past the image limit as base64, and still well inside one request."""
    settings.OCR_MAX_UPLOAD_BYTES = 100_000


def form_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def b64_json(body: dict) -> bytes:
    """The slide dialect's b64 body: base64 of the JSON text."""
    return base64.b64encode(json.dumps(body).encode())


def assert_oas_error(response, status: int, code: str, ret_type: str = "json") -> None:
    """ocr_api_server's error shape: {"status": 404, "result": "", "msg"} with ret_type json,
    an empty body with text; the HTTP status and the code (X-Error-Code) are the API's."""
    assert response.status_code == status, response.content[:500]
    assert response["X-Error-Code"] == code, response.content[:500]
    if ret_type == "text":
        assert response.content == b""
        return
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "result", "msg"}
    assert (body["status"], body["result"]) == (404, "")
    assert isinstance(body["msg"], str)
    assert 0 < len(body["msg"]) <= 500
    assert "Traceback" not in body["msg"]


def check(response, expected: tuple[int, str], media_files, *, dialect: str = "oas") -> None:
    status, code = expected
    if expected == OK:
        assert response.status_code == 200, response.content[:500]
        return
    if dialect == "oas":
        assert_oas_error(response, status, code)
    else:
        error = assert_error(response, status, code)
        assert len(error["message"]) <= 500
    assert OcrRecord.objects.count() == 0
    assert media_files() == set()


def cases(paths: list[str], table: dict[str, tuple[int, str]]) -> list:
    return [pytest.param(path, name, table[name], id=f"{path}-{name}") for path in paths for name in VALUES]


# --- the known 500s -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ocr/b64/json", json.dumps({"image": 12345}).encode()),
        ("/ocr/b64/json", json.dumps({"image": ["a"]}).encode()),
        ("/slide/match/b64/json", b64_json({"target_img": 1})),
    ],
    ids=["ocr-image-number", "ocr-image-list", "slide-target-number"],
)
def test_the_known_cases_are_a_400_not_a_500(client, media_files, path, body):
    response = client.generic("POST", path, body, content_type="text/plain")
    assert_oas_error(response, 400, "invalid")
    assert "Not a valid string" in response.json()["msg"]
    assert OcrRecord.objects.count() == 0
    assert media_files() == set()


# --- every field x every JSON type ------------------------------------------------------------


@pytest.mark.parametrize(("path", "name", "expected"), cases(RECOGNIZE_B64, B64_IMAGE))
def test_b64_image_field(client, media_files, path, name, expected):
    body = json.dumps({"image": VALUES[name]})
    check(client.generic("POST", path, body, content_type="text/plain"), expected, media_files)


@pytest.mark.parametrize(("path", "name", "expected"), cases(["/ocr/b64/json"], TYPEID))
def test_b64_typeid_field(client, media_files, path, name, expected):
    body = json.dumps({"typeid": VALUES[name], "image": PNG_B64})
    check(client.generic("POST", path, body, content_type="application/json"), expected, media_files)


@pytest.mark.parametrize(("path", "name", "expected"), cases(["/det/b64/json"], dict.fromkeys(VALUES, OK)))
def test_det_does_not_read_typeid(client, path, name, expected, media_files):
    body = json.dumps({"typeid": VALUES[name], "image": PNG_B64})
    check(client.generic("POST", path, body, content_type="text/plain"), expected, media_files)


@pytest.mark.parametrize("field", ["target_img", "bg_img"])
@pytest.mark.parametrize(("path", "name", "expected"), cases(SLIDE_B64, B64_IMAGE))
def test_slide_b64_fields(client, media_files, path, name, expected, field):
    body = b64_json({"target_img": PNG_B64, "bg_img": PNG_B64, field: VALUES[name]})
    check(client.generic("POST", path, body, content_type="text/plain"), expected, media_files)


@pytest.mark.parametrize("field", ["target_img", "bg_img"])
@pytest.mark.parametrize("name", ["null", "zero", "list", "object", "not-base64"])
def test_slide_b64_fields_as_plain_json(client, media_files, name, field):
    body = json.dumps({"target_img": PNG_B64, "bg_img": PNG_B64, field: VALUES[name]})
    response = client.generic("POST", "/slide/match/b64/json", body, content_type="text/plain")
    check(response, B64_IMAGE[name], media_files)


@pytest.mark.parametrize(("path", "name", "expected"), cases(RECOGNIZE_FILE, FORM_FILE))
def test_file_image_sent_as_text(client, media_files, path, name, expected):
    check(client.post(path, {"image": form_text(VALUES[name])}), expected, media_files)


@pytest.mark.parametrize(("path", "name", "expected"), cases(["/ocr/file/json"], FORM_TYPEID))
def test_file_typeid_field(client, media_files, path, name, expected):
    response = client.post(
        path, {"image": SimpleUploadedFile("c.png", PNG), "typeid": form_text(VALUES[name])}
    )
    check(response, expected, media_files)


def test_file_typeid_sent_as_a_file(client, media_files):
    response = client.post(
        "/ocr/file/json", {"image": SimpleUploadedFile("c.png", PNG), "typeid": SimpleUploadedFile("2", b"2")}
    )
    check(response, (400, "invalid_choice"), media_files)


@pytest.mark.parametrize("field", ["target_img", "bg_img"])
@pytest.mark.parametrize(("path", "name", "expected"), cases(SLIDE_FILE, FORM_FILE))
def test_slide_file_fields_sent_as_text(client, media_files, path, name, expected, field):
    fields = {"target_img": SimpleUploadedFile("t.png", PNG), "bg_img": SimpleUploadedFile("b.png", PNG)}
    fields[field] = form_text(VALUES[name])
    check(client.post(path, fields), expected, media_files)


@pytest.mark.parametrize(("path", "name", "expected"), cases(["/ocr"], RAPID_FILE))
def test_rapidocr_image_file_sent_as_text(client, media_files, path, name, expected):
    response = client.post(path, {"image_file": form_text(VALUES[name])})
    check(response, expected, media_files, dialect="api")


@pytest.mark.parametrize(("path", "name", "expected"), cases(["/ocr"], RAPID_DATA))
def test_rapidocr_image_data_field(client, media_files, path, name, expected):
    response = client.post(path, {"image_data": form_text(VALUES[name])})
    check(response, expected, media_files, dialect="api")


def test_rapidocr_image_data_sent_as_a_file(client, media_files):
    response = client.post("/ocr", {"image_data": SimpleUploadedFile("d.txt", PNG_B64.encode())})
    check(response, (400, "invalid"), media_files, dialect="api")


@pytest.mark.parametrize("name", VALUES)
def test_ping_takes_no_body(client, name):
    response = client.generic("POST", "/ping", json.dumps(VALUES[name]), content_type="application/json")
    assert_error(response, 405, "method_not_allowed")


# --- bodies that are not JSON, not UTF-8, or of the wrong content type ----------------------


def nested(depth: int) -> str:
    return '{"image": ' + "[" * depth + "]" * depth + "}"


B64_BODIES = [
    pytest.param(b"", "text/plain", (400, "empty_image"), id="empty"),
    pytest.param(b"\xff\xfe\xfd not utf-8", "text/plain", (400, "invalid_base64"), id="not-utf-8"),
    pytest.param(b'{"image": "\xff\xfe"}', "text/plain", (400, "parse_error"), id="json-not-utf-8"),
    pytest.param(b'{"image": ', "text/plain", (400, "parse_error"), id="json-cut-short"),
    pytest.param(nested(100_000).encode(), "text/plain", (400, "parse_error"), id="json-nested-deep"),
    pytest.param(b'{"image": "\\ud800"}', "application/json", (400, "invalid_base64"), id="surrogate"),
    pytest.param(
        b'{"image": "a\\u0000b"}', "application/json", (400, "null_characters_not_allowed"), id="nul"
    ),
    pytest.param(b"[1, 2]", "application/json", (400, "invalid_base64"), id="json-array"),
    pytest.param(b'"abc"', "application/json", (400, "invalid_base64"), id="json-string"),
    pytest.param(b"eyJ@@@", "text/plain", (400, "invalid_base64"), id="ey-not-base64"),
    pytest.param(
        base64.b64encode(b'{"image": "\xff'), "text/plain", (400, "parse_error"), id="b64-json-not-utf-8"
    ),
    pytest.param(base64.b64encode(b"[1]"), "text/plain", (400, "invalid_image"), id="b64-of-json-array"),
    pytest.param(
        b"--x\r\nnot multipart", "multipart/form-data; boundary=x", (400, "invalid_image"), id="multipart"
    ),
    pytest.param(
        PNG_B64.encode(), "application/x-www-form-urlencoded; charset=bogus", OK, id="bogus-charset"
    ),
    pytest.param(PNG_B64.encode(), "application/octet-stream", OK, id="octet-stream"),
]


@pytest.mark.parametrize("path", ["/ocr/b64/json", "/det/b64/json", "/slide/match/b64/json"])
@pytest.mark.parametrize(("body", "content_type", "expected"), B64_BODIES)
def test_b64_bodies(client, media_files, path, body, content_type, expected):
    if path.startswith("/slide"):
        body = body.replace(b'"image"', b'"target_img"')
    response = client.generic("POST", path, body, content_type=content_type)
    check(response, expected, media_files)


UNSUPPORTED = (415, "unsupported_media_type")
MISSING = (400, "missing_image")
# (body, content type, what ocr_api_server's file paths answer, what rapidocr_api's answers):
# the body's `image` names ocr_api_server's field, and is rapidocr_api's `image_data`.
FORM_BODIES = [
    pytest.param(b'{"image": "x"}', "application/json", UNSUPPORTED, UNSUPPORTED, id="json"),
    pytest.param(b"image=x", "text/plain", UNSUPPORTED, UNSUPPORTED, id="text-plain"),
    pytest.param(b"\xff\xfe", "", UNSUPPORTED, UNSUPPORTED, id="no-content-type"),
    pytest.param(
        b"--x\r\nbroken", "multipart/form-data; boundary=x", MISSING, MISSING, id="broken-multipart"
    ),
    pytest.param(
        b"anything",
        "multipart/form-data",
        (400, "parse_error"),
        (400, "parse_error"),
        id="multipart-no-boundary",
    ),
    pytest.param(
        b"image=%ff%fe&\xff\xfe=\xfd",
        "application/x-www-form-urlencoded",
        MISSING,
        (400, "invalid_base64"),
        id="form-not-utf-8",
    ),
    pytest.param(
        b"image=x",
        "application/x-www-form-urlencoded; charset=bogus",
        MISSING,
        (400, "invalid_base64"),
        id="form-bogus-charset",
    ),
]


@pytest.mark.parametrize("path", ["/ocr/file/json", "/det/file/json", "/slide/compare/file/json"])
@pytest.mark.parametrize(("body", "content_type", "expected", "_"), FORM_BODIES)
def test_file_bodies(client, media_files, path, body, content_type, expected, _):
    check(client.generic("POST", path, body, content_type=content_type), expected, media_files)


@pytest.mark.parametrize(("body", "content_type", "_", "expected"), FORM_BODIES)
def test_rapidocr_bodies(client, media_files, body, content_type, _, expected):
    body = body.replace(b"image=", b"image_data=")
    response = client.generic("POST", "/ocr", body, content_type=content_type)
    check(response, expected, media_files, dialect="api")


@pytest.mark.parametrize("ret_type", ["", "/text"])
def test_text_answers_are_empty_with_the_code(client, media_files, ret_type):
    body = json.dumps({"image": {"a": 1}})
    response = client.generic("POST", f"/ocr/b64{ret_type}", body, content_type="text/plain")
    assert_oas_error(response, 400, "invalid", ret_type="text")
    assert OcrRecord.objects.count() == 0


# --- text fields are bounded ----------------------------------------------------------------


def test_a_huge_typeid_is_a_short_400(client):
    response = client.generic(
        "POST",
        "/ocr/b64/json",
        json.dumps({"typeid": "2" * 100_000, "image": PNG_B64}),
        content_type="text/plain",
    )
    assert_oas_error(response, 400, "invalid_choice")
    assert len(response.content) < 300


@pytest.mark.parametrize(("path", "field"), [("/ocr/file/json", "image"), ("/ocr", "image_file")])
def test_a_long_file_name_is_kept_to_255_characters(client, user, path, field):
    response = client.post(path, {field: SimpleUploadedFile("n" * 5000 + ".png", PNG)})
    assert response.status_code == 200, response.content[:500]
    assert len(OcrRecord.objects.get(owner=user).file_name) == 255


@pytest.mark.parametrize(
    ("path", "body", "content_type", "dialect"),
    [
        ("/ocr/b64/json", json.dumps({"image": "A" * 12_000_000}), "text/plain", "oas"),
        ("/slide/match/b64/json", b64_json({"target_img": "A" * 9_000_000}), "text/plain", "oas"),
        ("/ocr", "image_data=" + "A" * 12_000_000, "application/x-www-form-urlencoded", "api"),
    ],
    ids=["ocr-b64", "slide-b64", "rapidocr-image-data"],
)
def test_a_base64_field_past_the_limit_is_refused_cheaply(
    client, media_files, path, body, content_type, dialect
):
    """No per-character scan before the length check: the request's own size is the cost."""
    started = time.process_time()
    response = client.generic("POST", path, body, content_type=content_type)
    cpu = time.process_time() - started
    check(response, (413, "file_too_large"), media_files, dialect=dialect)
    assert cpu < 1, f"{cpu:.2f} s of CPU"
