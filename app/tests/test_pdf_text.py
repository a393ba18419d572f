"""Born-digital PDFs (issue 18 item 6): a page with a text layer is read from it, exactly; a
page without one is recognized; `pdf_text=auto|layer|ocr` chooses and each page says which."""

import base64

import numpy as np
import pytest

from app import pdf
from app.models import OcrRecord
from app.tests import corpus
from app.tests.imaging import cer, english_lines, render
from app.tests.pdfs import joined, pdf_of, raw_pdf, stamped, text_lines_pdf, text_pdf
from app.tests.responses import assert_error

LINES = ["Invoice 2026-0042 for Acme", "Total due: 1,234.50 EUR", "Thank you for your order"]


def post(api, data: bytes, **fields):
    body = {"image_base64": base64.b64encode(data).decode(), "engine": "tesseract", **fields}
    return api.post("/api/ocr/", body, format="json")


@pytest.mark.django_db
def test_a_text_page_is_read_from_its_layer_exactly(api):
    response = post(api, text_lines_pdf(LINES))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["text"] == "\n".join(LINES)
    assert [page["text_source"] for page in body["pages"]] == ["layer"]
    assert [line["score"] for line in body["lines"]] == [1.0] * 3
    assert OcrRecord.objects.get(pk=body["id"]).options["pdf_text"] == "auto"


@pytest.mark.django_db
def test_ocr_reads_the_same_page_drawn(api):
    body = post(api, text_lines_pdf(LINES), pdf_text="ocr").json()
    assert [page["text_source"] for page in body["pages"]] == ["ocr"]
    assert cer("\n".join(LINES), body["text"]) <= 0.05
    assert [line["score"] for line in body["lines"]] != [1.0] * 3  # Tesseract's own confidences


@pytest.mark.django_db
def test_a_mixed_pdf_is_read_page_by_page(api, settings):
    settings.OCR_PDF_DPI = 150
    scanned = english_lines(2, seed=61)
    document = joined(text_lines_pdf(LINES), pdf_of(render(scanned, size=28)))
    body = post(api, document).json()
    assert [page["text_source"] for page in body["pages"]] == ["layer", "ocr"]
    assert body["pages"][0]["text"] == "\n".join(LINES)
    assert cer("\n".join(scanned), body["pages"][1]["text"]) <= 0.05
    assert [line["page"] for line in body["lines"]] == [1] * 3 + [2] * 2


@pytest.mark.django_db
def test_layer_reads_a_scan_as_empty_without_recognizing_it(api, settings):
    settings.OCR_PDF_DPI = 150
    document = joined(text_lines_pdf(LINES), pdf_of(render(english_lines(2, seed=62), size=28)))
    body = post(api, document, pdf_text="layer").json()
    assert [(page["text_source"], page["text"]) for page in body["pages"]] == [
        ("layer", "\n".join(LINES)),
        ("layer", ""),
    ]


@pytest.mark.django_db
def test_a_scan_with_a_stamped_page_number_is_recognized(api, settings):
    """A few words of text over a page-sized image (a Bates stamp) are not the page's text."""
    settings.OCR_PDF_DPI = 150
    scanned = english_lines(3, seed=63)
    document = stamped(pdf_of(render(scanned, size=28)), "p. 7")
    body = post(api, document).json()
    assert [page["text_source"] for page in body["pages"]] == ["ocr"]
    assert cer("\n".join(scanned), body["text"]) <= 0.1


@pytest.mark.django_db
@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_layer_boxes_are_where_the_page_draws_its_text(rotate, settings):
    """Each line's box holds its ink on the page as drawn (turned by /Rotate as shown), and
    together the boxes hold all of it."""
    data = text_lines_pdf(LINES, rotate=rotate)
    with pdf.opened(data) as document:
        (drawn,) = pdf.pages(document)
        (page,) = pdf.read(document, "layer")
    assert (page.width, page.height) == drawn.size
    assert sorted(line.text for line in page.lines) == sorted(LINES)
    ink = np.asarray(drawn.convert("L")) < 128
    covered = np.zeros_like(ink)
    for line in page.lines:
        (x0, y0), _, (x1, y1), _ = line.box
        inside = ink[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1]
        assert inside.mean() > 0.1, line  # the box is on its text, not beside it
        covered[max(0, int(y0) - 2) : int(y1) + 3, max(0, int(x0) - 2) : int(x1) + 3] = True
    assert not (ink & ~covered).any()  # no ink outside the boxes


@pytest.mark.django_db
def test_a_text_layer_without_unicode_is_recognized(api):
    """ocrmypdf's vector.pdf draws its text as paths: no characters to extract."""
    corpus.entry("files/ocrmypdf/vector.pdf")
    body = post(api, corpus.data("files/ocrmypdf/vector.pdf"), pdf_text="auto").json()
    assert [page["text_source"] for page in body["pages"]] == ["ocr"]


@pytest.mark.django_db
@pytest.mark.parametrize("file", ["files/ocrmypdf/tagged.pdf", "files/invoice2data/AzureInterior.pdf"])
def test_born_digital_corpus_pdfs_read_exactly_from_their_layer(api, file):
    truth = corpus.entry(file)["truth"]
    body = post(api, corpus.data(file)).json()
    assert {page["text_source"] for page in body["pages"]} == {"layer"}
    assert cer(truth, body["text"]) <= 0.01


@pytest.mark.django_db
def test_the_same_bytes_read_another_way_are_a_new_record(api):
    data = text_lines_pdf(LINES)
    first = post(api, data)
    again = post(api, data)
    other = post(api, data, pdf_text="ocr")
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"] != other.json()["id"]


@pytest.mark.django_db
def test_an_unknown_pdf_text_is_refused(api, media_files):
    assert_error(post(api, text_pdf("x"), pdf_text="sometimes"), 400, "invalid_choice")
    assert not media_files()


@pytest.mark.django_db
def test_a_queued_pdf_is_read_as_its_pdf_text_says(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, text_lines_pdf(LINES), pdf_text="ocr", queue=True)
    assert response.status_code == 202, response.content
    record = OcrRecord.objects.get(pk=response.json()["id"])
    assert record.status == "done"
    assert [page["text_source"] for page in record.extra["pages"]] == ["ocr"]


def dense_text_pdf(lines: int, chars: int, *, size: float = 2.0, start: float = 780.0) -> bytes:
    """`lines` lines of `chars` x's in Helvetica `size` pt, from `start` down (off the page
    once they pass its bottom)."""
    line = b"(" + b"x" * chars + b") Tj 0 -%.2f Td\n" % (size * 1.1)
    return raw_pdf(content=b"BT /F1 %.1f Tf 10 %.1f Td\n" % (size, start) + line * lines + b"ET\n")


@pytest.mark.django_db
def test_a_page_of_more_text_than_a_page_holds_is_too_complex(api, media_files):
    """350 lines of 300 characters: past MAX_LAYER_CHARS, refused like a page too costly to draw
    (it took a worker 636 MB through the reading order before the limit)."""
    response = post(api, dense_text_pdf(350, 300))
    assert_error(response, 422, "pdf_too_complex")
    assert not OcrRecord.objects.exists()
    assert not media_files()


@pytest.mark.django_db
def test_text_drawn_off_the_page_is_not_read(api):
    """Lines below the page's bottom edge are not shown, so they are not read: the page's
    layer is its three lines alone."""
    shown = b"".join(b"(" + line.encode() + b") Tj 0 -40 Td\n" for line in LINES)
    hidden = b"BT /F1 20 Tf 72 -100 Td (Hidden below the page) Tj 0 -40 Td (And more of it) Tj ET\n"
    data = raw_pdf(content=b"BT /F1 20 Tf 72 700 Td\n" + shown + b"ET\n" + hidden)
    with pdf.opened(data) as document:
        (page,) = pdf.read(document, "layer")
    assert [line.text for line in page.lines] == LINES
    assert post(api, data).json()["text"] == "\n".join(LINES)


@pytest.mark.django_db
def test_a_pdf_read_by_ddddocr_has_no_orientation(api):
    """A captcha task reads what is drawn, as drawn: its pages get no rotation, and no 500."""
    response = post(api, text_pdf("HELLO"), engine="ddddocr", task="text")
    assert response.status_code == 201, response.content
    (page,) = response.json()["pages"]
    assert "rotation" not in page
    assert page["text_source"] == "ocr"
