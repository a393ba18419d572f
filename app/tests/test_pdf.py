"""app.pdf: pages rendered one by one within the limits; bad PDFs refused clearly."""

import io

import pytest
from PIL import Image
from pypdf import PdfWriter

from app import pdf
from app.errors import InvalidInput, TooLarge
from app.tests.imaging import render


def make_pdf(*pages: Image.Image) -> bytes:
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", resolution=100, save_all=True, append_images=list(pages[1:]))
    return buffer.getvalue()


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def blank_pages_pdf(count: int) -> bytes:
    writer = PdfWriter()
    for _ in range(count):
        writer.add_blank_page(width=100, height=100)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_every_page_is_rendered_in_order_at_the_configured_dpi(settings):
    settings.OCR_PDF_DPI = 200
    first, second = render(["page one"]), render(["the second page", "has two lines"])
    with pdf.opened(make_pdf(first, second)) as document:
        images = list(pdf.pages(document))
    assert len(images) == 2
    assert all(image.mode == "RGB" for image in images)
    # Saved at 100 dpi, rendered at 200: twice the pixels each way (±1 for rounding).
    assert abs(images[0].width - 2 * first.width) <= 2
    assert abs(images[1].height - 2 * second.height) <= 2


def test_a_page_that_would_pass_the_pixel_limit_is_rendered_smaller(settings):
    settings.OCR_MAX_PIXELS = 100_000
    with pdf.opened(make_pdf(render(["wide page"] * 20))) as document:
        (image,) = pdf.pages(document)
    assert image.width * image.height <= 100_000


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"%PDF-1.7\n garbage", "invalid_pdf"),
        (blank_pages_pdf(0), "invalid_pdf"),
        (encrypted_pdf(), "encrypted_pdf"),
    ],
    ids=["garbage", "no-pages", "encrypted"],
)
def test_unreadable_pdfs_are_refused(data, code):
    with pytest.raises(InvalidInput) as caught, pdf.opened(data):
        pass
    assert caught.value.code == code


def test_too_many_pages_is_413(settings):
    settings.OCR_PDF_MAX_PAGES = 3
    with pytest.raises(TooLarge) as caught, pdf.opened(blank_pages_pdf(4)):
        pass
    assert caught.value.code == "too_many_pages"


def test_pdf_is_recognized_by_its_header():
    assert pdf.is_pdf(b"%PDF-1.4\n...")
    assert pdf.is_pdf(b"\x00" * 100 + b"%PDF-1.4")
    assert not pdf.is_pdf(b"\x89PNG\r\n\x1a\n")
