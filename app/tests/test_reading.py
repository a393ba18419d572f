"""Pages read right (issue 18): upright whichever way they came, lines in reading order and in
blocks, boxes in the pixels of the image as sent, and `auto` choosing by what the image shows."""

import base64
import io

import pytest
from PIL import Image

from app.engines import registry
from app.engines.base import Options
from app.tests import corpus
from app.tests.imaging import cer, encode, english_lines, render

LINN = "files/ocrmypdf/linn.png"


def post(api, data: bytes, **fields):
    body = {"image_base64": base64.b64encode(data).decode(), **fields}
    response = api.post("/api/ocr/", body, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


def turned(data: bytes, degrees: int) -> bytes:
    """The image turned `degrees` counter-clockwise, as a PNG without any EXIF to tell."""
    image = Image.open(io.BytesIO(data)).convert("L")
    return encode(image.rotate(degrees, expand=True, fillcolor=255))


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["tesseract", "rapidocr"])
def test_an_upside_down_line_is_read_without_being_told(api, engine):
    line = "Quarterly report for March"
    body = post(api, turned(encode(render([line])), 180), engine=engine)
    assert body["rotation"] == 180
    assert cer(line, body["text"]) <= 0.05
    upright = post(api, encode(render([line])), engine=engine)
    assert (upright["rotation"], upright["skew"]) == (0, 0.0)


@pytest.mark.slow
@pytest.mark.django_db
def test_a_page_upside_down_is_read_upright_with_boxes_on_the_image_sent(api):
    truth = corpus.entry(LINN)["truth"]
    sent = turned(corpus.data(LINN), 180)
    body = post(api, sent, engine="tesseract")
    assert body["rotation"] == 180
    assert cer(truth, body["text"]) <= 0.03
    heading = body["lines"][0]
    assert heading["text"] == "The LinnSequencer"
    # The page's top is the sent image's bottom, read from its bottom-right corner.
    (x0, y0), *_ = heading["box"]
    assert y0 > 0.8 * body["height"]
    assert x0 > 0.5 * body["width"]


@pytest.mark.slow
@pytest.mark.django_db
def test_a_skewed_page_is_levelled_and_says_by_how_much(api):
    lines = english_lines(36, seed=81, words=7)
    page = render(lines, size=40)  # ~1900x2500: a page
    sent = encode(page.rotate(4, expand=True, fillcolor="white", resample=Image.Resampling.BICUBIC))
    body = post(api, sent, engine="rapidocr")
    assert abs(body["skew"] - 4.0) <= 0.3
    assert body["rotation"] == 0
    assert cer("\n".join(lines), body["text"]) <= 0.02


@pytest.mark.django_db
def test_two_columns_are_read_column_by_column_in_two_blocks(api):
    left, right = english_lines(6, seed=82, words=3), english_lines(6, seed=83, words=3)
    page = Image.new("RGB", (1400, 700), "white")
    page.paste(render(left, size=30), (0, 0))
    page.paste(render(right, size=30), (760, 0))
    body = post(api, encode(page), engine="rapidocr")
    assert body["text"].split("\n") == left + right
    assert [(block["lines"], block["kind"]) for block in body["blocks"]] == [
        (list(range(6)), "text"),
        (list(range(6, 12)), "text"),
    ]


@pytest.mark.slow
@pytest.mark.django_db
def test_auto_reads_a_scan_with_tesseract_and_a_photo_with_rapidocr(api):
    scan = post(api, corpus.data(LINN))
    assert (scan["engine"], scan["lang"]) == ("tesseract", "eng")
    assert cer(corpus.entry(LINN)["truth"], scan["text"]) <= 0.03
    photo = "files/paddleocr/imgs_11.jpg"
    corpus.entry(photo)
    assert post(api, corpus.data(photo))["engine"] == "rapidocr"
    again = post(api, corpus.data(LINN))
    assert (again["id"], again["cached"], again["engine"]) == (scan["id"], True, "tesseract")


@pytest.mark.parametrize(
    ("paper", "script", "confidence", "chosen"),
    [
        (True, "Latin", 3.0, ("tesseract", "eng")),
        (True, "Cyrillic", 0.1, ("tesseract", "eng")),  # OSD unsure: a Latin page named Cyrillic
        (True, "Han", 0.2, ("rapidocr", "chi_sim+eng")),
        (False, "Latin", 40.0, ("rapidocr", "chi_sim+eng")),
        (False, None, 0.0, ("rapidocr", "chi_sim+eng")),
        (False, "Cyrillic", 8.9, ("rapidocr", "chi_sim+eng")),  # a French photo, as OSD named it
        (False, "Cyrillic", 25.0, ("tesseract", "rus")),
        (False, "Hangul", 12.0, ("tesseract", "kor")),
    ],
)
def test_by_content(paper, script, confidence, chosen):
    engine, options = registry.by_content(
        Options(lang="chi_sim+eng", task="document", routed=True),
        paper=paper,
        script=script,
        script_confidence=confidence,
    )
    assert (engine.name, options.lang) == chosen
    assert options.routed


@pytest.mark.slow
@pytest.mark.django_db
def test_a_batch_is_chosen_for_by_content_file_by_file(api, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from app.models import OcrRecord

    screenshot = encode(render(["Settings", "Wi-Fi and network"]))
    files = [
        SimpleUploadedFile("scan.png", corpus.data(LINN), "image/png"),
        SimpleUploadedFile("shot.png", screenshot, "image/png"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/ocr/batch/", {"images": files}, format="multipart")
    assert response.status_code == 202, response.content
    records = OcrRecord.objects.filter(batch_id=response.json()["id"])
    assert {r.file_name: (r.status, r.engine) for r in records} == {
        "scan.png": ("done", "tesseract"),
        "shot.png": ("done", "rapidocr"),
    }


@pytest.mark.django_db
def test_hocr_is_of_the_image_as_sent_so_nothing_is_turned():
    """Tesseract's hOCR describes the image it read: a rendering is asked for, the image is
    read as sent (its boxes and the lines' agree)."""
    from app import recognition

    engine, options = registry.select(engine="tesseract", outputs=("hocr",))
    source = recognition.load(turned(encode(render(["Quarterly report for March"])), 180))
    result = recognition.run(engine, options, source).result
    assert result.extra["rotation"] == 0
    assert "ocr_line" in result.extra["hocr"]
