"""POST /api/ocr/: every way in, every engine, and every bad input refused cleanly."""

import base64
import io
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError
from django.test import override_settings
from PIL import Image

from app.engines import registry
from app.errors import EngineFailed
from app.models import OcrRecord
from app.tests.imaging import CJK_FONT, cer, chinese_lines, encode, english_lines, render
from app.tests.responses import assert_error

LINES = english_lines(4, seed=21)


@pytest.fixture(scope="module")
def document_png() -> bytes:
    return encode(render(LINES))


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.mark.parametrize("engine", ["tesseract", "rapidocr", "auto", ""])
def test_multipart_upload_returns_text_lines_and_stores_the_record(api, user, document_png, engine):
    response = api.post(
        "/api/ocr/", {"image": upload("scan.png", document_png), "engine": engine}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert cer("\n".join(LINES), body["text"]) <= 0.05
    assert len(body["lines"]) == len(LINES)
    assert all(len(line["box"]) == 4 and 0 < line["score"] <= 1 for line in body["lines"])
    assert body["status"] == "done"
    assert (body["width"], body["height"]) == Image.open(io.BytesIO(document_png)).size
    assert body["file_name"] == "scan.png"
    assert body["size"] == len(document_png)
    assert body["duration_ms"] > 0
    record = OcrRecord.objects.get(pk=body["id"])
    assert record.owner == user
    assert record.image.read() == document_png
    assert "scan" not in record.image.name  # stored under a random name
    assert body["image_url"].endswith(f"/api/history/{record.pk}/image/")


def test_chinese_document_through_the_api(api):
    lines = chinese_lines(3, chars=10, seed=4)
    data = base64.b64encode(encode(render(lines, size=40, font=CJK_FONT))).decode()
    response = api.post("/api/ocr/", {"image_base64": data, "lang": "chi_sim"}, format="json")
    assert response.status_code == 201
    assert response.json()["engine"] == "rapidocr"
    assert cer("".join(lines), response.json()["text"]) <= 0.05


@pytest.mark.parametrize(
    "encoder",
    [
        lambda data: base64.b64encode(data).decode(),
        lambda data: "data:image/png;base64," + base64.b64encode(data).decode(),
        lambda data: base64.urlsafe_b64encode(data).decode().rstrip("="),
        lambda data: "\n".join(base64.encodebytes(data).decode().split("\n")),
    ],
    ids=["plain", "data-uri", "urlsafe-unpadded", "wrapped-lines"],
)
@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_base64_in_json_or_form(api, document_png, encoder, fmt):
    response = api.post(
        "/api/ocr/", {"image_base64": encoder(document_png), "engine": "tesseract"}, format=fmt
    )
    assert response.status_code == 201, response.content
    assert cer("\n".join(LINES), response.json()["text"]) <= 0.05
    assert response.json()["file_name"] == "image.png"


def test_captcha_through_ddddocr(api):
    response = api.post(
        "/api/ocr/",
        {"image": upload("c.png", encode(render(["x8pq2"], size=40, pad=8))), "engine": "ddddocr"},
        format="multipart",
    )
    assert response.status_code == 201
    assert response.json()["task"] == "text"
    assert cer("x8pq2", response.json()["text"].lower()) <= 0.2


def test_anonymous_upload_is_refused(anon, document_png, media_files):
    response = anon.post("/api/ocr/", {"image": upload("a.png", document_png)}, format="multipart")
    assert_error(response, 401, "not_authenticated")
    assert not media_files()


def bomb_png() -> bytes:
    """A 20000x20000 PNG of a few kilobytes: 400 MP once decoded."""
    img = Image.new("1", (20000, 20000))
    return encode(img, optimize=True)


def truncated_png(document_png: bytes) -> bytes:
    return document_png[: len(document_png) // 2]


def corrupt_idat(document_png: bytes) -> bytes:
    data = bytearray(document_png)
    start = data.index(b"IDAT") + 8
    data[start : start + 200] = zlib.compress(b"garbage")[:200].ljust(200, b"\0")
    return bytes(data)


BAD_UPLOADS = [
    ("empty", lambda png: b"", 400, "empty_image"),
    ("truncated-png", truncated_png, 400, "invalid_image"),
    ("corrupt-idat", corrupt_idat, 400, "invalid_image"),
    ("text-renamed-png", lambda png: b"hello, I am not an image\n" * 10, 400, "invalid_image"),
    (
        "svg",
        lambda png: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        400,
        "invalid_image",
    ),
    (
        "broken-pdf",
        lambda png: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>",
        400,
        "invalid_pdf",
    ),
    ("bomb", lambda png: bomb_png(), 413, "image_too_large"),
]


@pytest.mark.parametrize(("case", "make", "status", "code"), BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS])
def test_bad_uploads_get_4xx_json_and_leave_nothing_behind(
    api, document_png, media_files, case, make, status, code
):
    response = api.post("/api/ocr/", {"image": upload(f"{case}.png", make(document_png))}, format="multipart")
    assert_error(response, status, code)
    assert response["Content-Type"] == "application/json"
    assert not OcrRecord.objects.exists()
    assert not media_files()


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({}, 400, "missing_image"),
        ({"image_base64": "@@not base64@@"}, 400, "invalid_base64"),
        ({"image_base64": "data:image/png,abc"}, 400, "invalid_base64"),
        ({"image_base64": base64.b64encode(b"just text").decode()}, 400, "invalid_image"),
        ({"image_base64": "", "engine": "tesseract"}, 400, "blank"),
        ({"image_base64": "iVBORw0KGgo=", "engine": "nope"}, 400, "unknown_engine"),
        ({"image_base64": "{png}", "engine": "tesseract", "lang": "xx_nope"}, 400, "unsupported_language"),
        ({"image_base64": "{png}", "engine": "tesseract", "task": "math"}, 400, "unsupported_task"),
        ({"image_base64": "{png}", "rotate": "sideways"}, 400, "invalid"),
        ({"image_base64": "{png}", "engine": "x" * 100}, 400, "max_length"),
    ],
)
def test_bad_requests_get_4xx_json_and_leave_nothing_behind(
    api, document_png, media_files, payload, status, code
):
    encoded = base64.b64encode(document_png).decode()
    payload = {key: value.replace("{png}", encoded) for key, value in payload.items()}
    response = api.post("/api/ocr/", payload, format="json")
    assert_error(response, status, code)
    assert not OcrRecord.objects.exists()
    assert not media_files()


def test_both_file_and_base64_is_ambiguous(api, document_png):
    response = api.post(
        "/api/ocr/",
        {"image": upload("a.png", document_png), "image_base64": base64.b64encode(document_png).decode()},
        format="multipart",
    )
    assert_error(response, 400, "missing_image")


def test_malformed_json_body_is_a_400(api):
    response = api.generic("POST", "/api/ocr/", '{"image_base64": ', content_type="application/json")
    assert_error(response, 400, "parse_error")


@override_settings(OCR_MAX_UPLOAD_BYTES=10_000)
def test_file_over_the_byte_limit_is_413(api, document_png, media_files):
    assert len(document_png) > 10_000
    response = api.post("/api/ocr/", {"image": upload("big.png", document_png)}, format="multipart")
    assert_error(response, 413, "file_too_large")
    assert not media_files()


@override_settings(OCR_MAX_UPLOAD_BYTES=10_000)
def test_base64_over_the_byte_limit_is_413(api, document_png):
    response = api.post("/api/ocr/", {"image_base64": base64.b64encode(document_png).decode()}, format="json")
    assert_error(response, 413, "file_too_large")


@override_settings(OCR_MAX_REQUEST_BYTES=1000)
def test_request_body_over_the_limit_is_refused_before_parsing(api, document_png):
    response = api.post("/api/ocr/", {"image": upload("big.png", document_png)}, format="multipart")
    assert_error(response, 413, "too_large")


@override_settings(OCR_MAX_PIXELS=10_000)
def test_image_over_the_pixel_limit_is_413(api, document_png, media_files):
    response = api.post("/api/ocr/", {"image": upload("wide.png", document_png)}, format="multipart")
    assert_error(response, 413, "image_too_large")
    assert not media_files()


def test_engine_crash_stores_a_failed_record_and_answers_503(api, document_png, monkeypatch):
    def crash(self, image, options):
        raise EngineFailed("Tesseract failed: simulated crash")

    monkeypatch.setattr(type(registry.get("tesseract")), "recognize", crash)
    response = api.post(
        "/api/ocr/", {"image": upload("a.png", document_png), "engine": "tesseract"}, format="multipart"
    )
    error = assert_error(response, 503, "engine_failed")
    record = OcrRecord.objects.get(pk=error["record_id"])
    assert (record.status, record.error) == ("failed", "Tesseract failed: simulated crash")
    assert record.image.read() == document_png


def test_unavailable_engine_answers_503_and_writes_nothing(api, document_png, media_files, monkeypatch):
    monkeypatch.setenv("TESSDATA_PREFIX", "/nonexistent/tessdata")  # no language packs
    response = api.post(
        "/api/ocr/", {"image": upload("a.png", document_png), "engine": "tesseract"}, format="multipart"
    )
    error = assert_error(response, 503, "engine_unavailable")
    assert "not installed" in error["message"]
    assert not OcrRecord.objects.exists()
    assert not media_files()


def test_database_failure_while_saving_removes_the_written_file(api, document_png, media_files, monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(OcrRecord, "save", broken_save)
    with pytest.raises(DatabaseError):
        api.post(
            "/api/ocr/", {"image": upload("a.png", document_png), "engine": "tesseract"}, format="multipart"
        )
    assert not media_files()
