"""task=barcode (zxing-cpp): payloads, formats and corners of barcodes and QR codes, from real
samples (the corpus's zxing-cpp test images, decoded exactly) and from symbols drawn here."""

import json

import pytest
import zxingcpp
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image

from app.models import OcrRecord
from app.tests import corpus
from app.tests.imaging import encode, english_lines, render
from app.tests.pdfs import pdf_of
from app.tests.responses import assert_error

SAMPLES = {
    "files/zxing-cpp/qrcode-2_199b.jpg": "QR Code",
    "files/zxing-cpp/qrcode-2_1.png": "QR Code",
    "files/zxing-cpp/qrcode-1_17.webp": "QR Code",
    "files/zxing-cpp/ean13-2_03.webp": "EAN-13",
    "files/zxing-cpp/code128-2_10.webp": "Code 128",
}


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def symbol(text: str, fmt=zxingcpp.BarcodeFormat.QRCode, scale: int = 4) -> Image.Image:
    return Image.fromarray(zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(text, fmt), scale=scale))


def page_with(*placed: tuple[Image.Image, tuple[int, int]], size=(900, 600)) -> Image.Image:
    """A white page with a few lines of text and each symbol pasted at its place."""
    page = Image.new("RGB", size, "white")
    page.paste(render(english_lines(2, seed=3)), (20, size[1] - 140))
    for image, at in placed:
        page.paste(image.convert("RGB"), at)
    return page


@pytest.mark.parametrize("file", SAMPLES)
def test_every_corpus_sample_is_decoded_exactly(api, file):
    truth = corpus.entry(file)["truth"]
    name = file.rsplit("/", 1)[1]
    response = api.post("/api/ocr/", {"image": upload(name, corpus.data(file), "image/*"), "task": "barcode"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["engine"] == "zxing"
    assert body["task"] == "barcode"
    assert [barcode["text"] for barcode in body["barcodes"]] == [truth]
    assert body["barcodes"][0]["format"] == SAMPLES[file]
    assert body["text"] == truth
    assert [line["text"] for line in body["lines"]] == [truth]


def test_symbols_drawn_on_a_page_give_payload_format_and_corners(api):
    qr, code128 = (
        symbol("https://example.com/a?b=1"),
        symbol("ONLINE-OCR-42", zxingcpp.BarcodeFormat.Code128, 2),
    )
    page = page_with((qr, (40, 30)), (code128, (450, 60)))
    response = api.post("/api/ocr/", {"image": upload("page.png", encode(page)), "task": "barcode"})
    assert response.status_code == 201, response.content
    found = {barcode["text"]: barcode for barcode in response.json()["barcodes"]}
    assert set(found) == {"https://example.com/a?b=1", "ONLINE-OCR-42"}
    assert found["ONLINE-OCR-42"]["format"] == "Code 128"
    assert found["https://example.com/a?b=1"]["content_type"] == "text"
    # The QR code's corners on the page: its corners in the symbol image, moved by where it was
    # pasted (within 2 px: the page is read whole, the symbol alone).
    (alone,) = zxingcpp.read_barcodes(qr)
    own = [(p.x, p.y) for p in (alone.position.top_left, alone.position.top_right)]
    own += [(p.x, p.y) for p in (alone.position.bottom_right, alone.position.bottom_left)]
    box = found["https://example.com/a?b=1"]["box"]
    assert all(
        abs(x - (ox + 40)) <= 2 and abs(y - (oy + 30)) <= 2 for (x, y), (ox, oy) in zip(box, own, strict=True)
    )


def test_a_turned_symbol_is_read_and_its_orientation_reported(api):
    turned = page_with((symbol("SIDEWAYS-7").rotate(90, expand=True), (300, 40)))
    response = api.post("/api/ocr/", {"image": upload("turned.png", encode(turned)), "task": "barcode"})
    assert response.status_code == 201, response.content
    (barcode,) = response.json()["barcodes"]
    assert barcode["text"] == "SIDEWAYS-7"
    assert barcode["orientation"] in (90, -90, 270)


def test_a_pdf_gives_each_symbol_with_its_page_and_pages_without_one_are_fine(api):
    pdf = pdf_of(render(english_lines(3, seed=9)), page_with((symbol("PAGE-TWO"), (100, 100))))
    response = api.post(
        "/api/ocr/",
        {"image": upload("two.pdf", pdf, "application/pdf"), "task": "barcode"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert [(b["text"], b["page"]) for b in body["barcodes"]] == [("PAGE-TWO", 2)]
    assert [(line["text"], line["page"]) for line in body["lines"]] == [("PAGE-TWO", 2)]
    assert [page["text"] for page in body["pages"]] == ["", "PAGE-TWO"]


def test_text_sent_as_a_barcode_is_a_422_and_nothing_is_stored(api, media_files):
    text = encode(render(english_lines(4, seed=11)))
    response = api.post("/api/ocr/", {"image": upload("letter.png", text), "task": "barcode"})
    error = assert_error(response, 422, "no_barcode")
    assert "No barcode or QR code was found" in error["message"]
    assert OcrRecord.objects.count() == 0
    assert media_files() == set()


def test_a_pdf_without_any_symbol_is_a_422_naming_the_pages(api):
    pdf = pdf_of(render(english_lines(2, seed=12)))
    response = api.post("/api/ocr/", {"image": upload("x.pdf", pdf, "application/pdf"), "task": "barcode"})
    assert "on any page" in assert_error(response, 422, "no_barcode")["message"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"lang": "eng"}, "unsupported_language"),  # zxing takes no language
        ({"engine": "tesseract"}, "unsupported_task"),  # Tesseract does not read barcodes
        ({"engine": "zxing", "task": "document"}, "unsupported_task"),
        ({"engine": "zxing", "format": "hocr"}, "unsupported_format"),
    ],
)
def test_options_zxing_cannot_honour_are_refused(api, fields, code):
    png = encode(page_with((symbol("X"), (10, 10))))
    response = api.post("/api/ocr/", {"image": upload("x.png", png), "task": "barcode", **fields})
    assert_error(response, 400, code)


def test_the_engine_lists_itself_with_its_task(api):
    engines = {engine["name"]: engine for engine in api.get("/api/engines/").json()}
    assert engines["zxing"]["available"] is True
    assert engines["zxing"]["tasks"] == ["barcode"]
    assert engines["zxing"]["version"] == "3.1.1"


def test_history_export_and_the_command_carry_the_symbols(api, user, tmp_path, capsys):
    png = encode(page_with((symbol("HISTORY-1"), (60, 60))))
    created = api.post("/api/ocr/", {"image": upload("h.png", png), "task": "barcode"}).json()
    kept = api.get(f"/api/history/{created['id']}/").json()
    assert kept["barcodes"] == created["barcodes"]
    assert kept["barcodes"][0]["text"] == "HISTORY-1"
    exported = api.get("/api/history/export/?format=jsonl")
    row = json.loads(b"".join(exported.streaming_content).decode().splitlines()[0])
    assert row["barcodes"][0]["text"] == "HISTORY-1"
    (tmp_path / "scan.png").write_bytes(png)
    call_command("ocr", str(tmp_path / "scan.png"), "--task", "barcode", "--json", "-v", "0")
    line = json.loads(capsys.readouterr().out.strip())
    assert line["barcodes"][0]["text"] == "HISTORY-1"
    assert line["text"] == "HISTORY-1"
