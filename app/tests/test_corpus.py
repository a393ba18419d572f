"""Real material read right through the API, each file at a CER limit a little above what
bench/real.py measured (2026-12-03): one of each kind the "Real documents" issue found read
badly, so that none goes back unnoticed. Scored as the bench scores (app/tests/corpus.py)."""

import base64

import pytest

from app.tests import corpus

# (file, request fields, CER limit, what was read before the issue's work)
CASES = [
    ("files/ocrmypdf/cardinal.pdf", {}, 0.03),  # pages turned 0/90/180/270: 0.445
    ("files/ocrmypdf/skew.pdf", {"engine": "rapidocr"}, 0.03),  # two columns, skewed: 0.370
    ("files/ocrmypdf/rotated_skew.pdf", {}, 0.03),  # /Rotate 90 and skewed: 0.621 with auto
    ("files/ocrmypdf/tagged.pdf", {}, 0.005),  # born-digital, read from its text layer: 0.609
    ("files/camelot/us-030.pdf", {"engine": "rapidocr"}, 0.01),  # a table paper: 0.108
]


def read(api, file: str, fields: dict) -> dict:
    body = {"image_base64": base64.b64encode(corpus.data(file)).decode(), **fields}
    response = api.post("/api/ocr/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize(("file", "fields", "limit"), CASES, ids=[case[0].split("/")[-1] for case in CASES])
def test_a_real_file_reads_within_its_limit(api, file, fields, limit):
    body = read(api, file, fields)
    errors, length, _ = corpus.score(corpus.entry(file), body["text"], body.get("result"))
    assert errors / max(length, 1) <= limit


@pytest.mark.slow
@pytest.mark.django_db
def test_each_page_of_cardinal_is_turned_upright(api):
    """Its pages are one page drawn turned: as shown, they must be turned 0, 270, 180, 90."""
    body = read(api, "files/ocrmypdf/cardinal.pdf", {"engine": "tesseract"})
    assert [page["rotation"] for page in body["pages"]] == [0, 270, 180, 90]
    first_lines = [next(line["text"] for line in body["lines"] if line["page"] == n) for n in (1, 2, 3, 4)]
    assert first_lines == ["The LinnSequencer"] * 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    "file", ["files/paddleocr/imgs_words_ch_word_4.jpg", "files/paddleocr/imgs_words_en_word_10.png"]
)
def test_a_word_cropped_tight_is_read_whole(api, file):
    """PaddleOCR's recognizer samples (225x46, 73x28): RapidOCR's detector finds no text in
    them, so they were answered empty; read whole as one line, they read exactly."""
    body = read(api, file, {"engine": "rapidocr"})
    assert body["text"] == corpus.entry(file)["truth"]
