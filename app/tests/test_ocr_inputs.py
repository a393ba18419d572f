"""POST /api/ocr/ beyond files and base64: image URLs, PDFs, cloud-market bodies, text/hOCR/TSV."""

import base64
import json

import pytest

from app.models import OcrRecord
from app.tests.imaging import cer, encode, english_lines, render
from app.tests.pdfs import pdf_of
from app.tests.responses import assert_error

LINES = english_lines(3, seed=51)
PNG = encode(render(LINES))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_image_url_is_fetched_recognized_and_named(api, image_server, settings):
    base, routes = image_server
    settings.OCR_URL_ALLOWLIST = ["127.0.0.2/32"]
    routes["/scans/page%201.png"] = (200, {"Content-Type": "image/png"}, PNG)
    response = api.post("/api/ocr/", {"image_url": f"{base}/scans/page%201.png", "engine": "tesseract"})
    assert response.status_code == 201, response.content
    assert cer("\n".join(LINES), response.json()["text"]) <= 0.05
    assert response.json()["file_name"] == "page 1.png"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1/x.png", "url_not_allowed"),
        ("http://169.254.169.254/", "url_not_allowed"),
        ("file:///etc/passwd", "invalid_url"),
    ],
)
def test_private_image_urls_are_refused_and_nothing_is_stored(api, media_files, url, code):
    response = api.post("/api/ocr/", {"image_url": url}, format="json")
    assert_error(response, 400, code)
    assert not OcrRecord.objects.exists()
    assert not media_files()


def test_pdf_pages_are_each_recognized_and_joined(api, settings):
    settings.OCR_PDF_DPI = 150
    first, second = english_lines(2, seed=52), english_lines(3, seed=53)
    document = pdf_of(render(first, size=28), render(second, size=28))
    response = api.post("/api/ocr/", {"image_base64": b64(document), "engine": "tesseract"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert [page["page"] for page in body["pages"]] == [1, 2]
    assert cer("\n".join(first), body["pages"][0]["text"]) <= 0.05
    assert cer("\n".join(second), body["pages"][1]["text"]) <= 0.05
    assert body["text"] == body["pages"][0]["text"] + "\n\n" + body["pages"][1]["text"]
    assert [line["page"] for line in body["lines"]] == [1] * 2 + [2] * 3
    assert body["file_name"] == "document.pdf"
    assert OcrRecord.objects.get(pk=body["id"]).image.name.endswith(".pdf")


def test_pdf_over_the_page_limit_is_refused_before_any_ocr(api, settings, media_files):
    settings.OCR_PDF_MAX_PAGES = 2
    page = render(["x"])
    response = api.post("/api/ocr/", {"image_base64": b64(pdf_of(page, page, page))}, format="json")
    assert_error(response, 413, "too_many_pages")
    assert not media_files()


def test_format_text_answers_text_plain(api):
    response = api.post(
        "/api/ocr/?format=text", {"image_base64": b64(PNG), "engine": "tesseract"}, format="json"
    )
    assert response.status_code == 201
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert cer("\n".join(LINES), response.content.decode()) <= 0.05
    assert OcrRecord.objects.get(pk=response["X-Record-Id"]).text == response.content.decode()


def test_format_hocr_and_tsv_come_from_tesseract(api):
    hocr = api.post(
        "/api/ocr/", {"image_base64": b64(PNG), "engine": "tesseract", "format": "hocr"}, format="json"
    )
    assert hocr.status_code == 201
    assert hocr["Content-Security-Policy"] == "sandbox"
    assert "ocr_line" in hocr.content.decode()
    assert LINES[0].split()[0] in hocr.content.decode()
    tsv = api.post(
        "/api/ocr/", {"image_base64": b64(PNG), "engine": "tesseract", "format": "tsv"}, format="json"
    )
    header, *rows = tsv.content.decode().strip().split("\n")
    assert header.split("\t")[:3] == ["level", "page_num", "block_num"]
    assert LINES[0].split()[0] in [row.split("\t")[-1] for row in rows]


@pytest.mark.parametrize(("engine", "fmt"), [("rapidocr", "hocr"), ("ddddocr", "tsv")])
def test_hocr_and_tsv_from_other_engines_are_refused(api, engine, fmt):
    response = api.post(
        "/api/ocr/", {"image_base64": b64(PNG), "engine": engine, "format": fmt}, format="json"
    )
    assert_error(response, 400, "unsupported_format")


def test_unknown_format_is_refused(api):
    response = api.post("/api/ocr/?format=xml", {"image_base64": b64(PNG)}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "configure",
    [{"engine": "tesseract", "lang": "eng"}, json.dumps({"engine": "tesseract"}), None],
    ids=["object", "json-string", "none"],
)
def test_cloud_market_body_with_base64(user, configure):
    from rest_framework.test import APIClient

    from app import services

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"APPCODE {services.create_api_key(owner=user, name='m')[1]}")
    payload = {"image": b64(PNG), **({"configure": configure} if configure is not None else {})}
    response = client.post("/api/ocr/", payload, format="json")
    assert response.status_code == 200, response.content  # the market demo's success, never 201
    assert cer("\n".join(LINES), response.json()["text"]) <= 0.05


def test_cloud_market_errors_carry_the_message_in_a_header(api):
    response = api.post("/api/ocr/", {"image": b64(PNG), "configure": {"sides": "face"}}, format="json")
    assert_error(response, 400, "unknown_option")
    assert "sides" in response["X-Ca-Error-Message"]
    bad = api.post("/api/ocr/", {"image": "@@@"}, format="json")
    assert bad["X-Ca-Error-Message"] == "image_base64 is not valid base64."


def test_cloud_market_body_with_an_image_url(api, media_files):
    response = api.post("/api/ocr/", {"image": "http://10.0.0.7/a.png"}, format="json")
    assert_error(response, 400, "url_not_allowed")
