"""PDF bytes -> one RGB image per page, each rendered within the pixel limit.

PDFium is not thread-safe, so every call into it holds one process-wide lock; pages are
rendered one at a time, so a long document never holds more than one page in memory.
"""

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pypdfium2 as pdfium
from django.conf import settings
from PIL import Image

from app.errors import InvalidInput, TooLarge

_PDFIUM = threading.Lock()


def is_pdf(data: bytes) -> bool:
    """The PDF header may follow up to 1 KiB of junk, as readers allow."""
    return b"%PDF-" in data[:1024]


@contextmanager
def opened(data: bytes) -> Iterator[pdfium.PdfDocument]:
    """Open and check a PDF: readable, not encrypted, 1..OCR_PDF_MAX_PAGES pages."""
    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise InvalidInput(
                    "The PDF is encrypted; send it without a password.", code="encrypted_pdf"
                ) from exc
            raise InvalidInput(f"The PDF cannot be read ({exc}).", code="invalid_pdf") from exc
        pages = len(document)
    try:
        if pages == 0:
            raise InvalidInput("The PDF has no pages.", code="invalid_pdf")
        limit = settings.OCR_PDF_MAX_PAGES
        if pages > limit:
            raise TooLarge(f"The PDF has {pages} pages; the limit is {limit}.", code="too_many_pages")
        yield document
    finally:
        with _PDFIUM:
            document.close()


def pages(document: pdfium.PdfDocument) -> Iterator[Image.Image]:
    """Render each page at OCR_PDF_DPI, or smaller where that would pass OCR_MAX_PIXELS."""
    for index in range(len(document)):
        with _PDFIUM:
            page = document[index]
            try:
                image = page.render(scale=_scale(page)).to_pil().convert("RGB")
            except pdfium.PdfiumError as exc:
                raise InvalidInput(
                    f"Page {index + 1} of the PDF cannot be rendered ({exc}).", code="invalid_pdf"
                ) from exc
            finally:
                page.close()
        yield image


def first_page_size(document: pdfium.PdfDocument) -> tuple[int, int]:
    """The pixel size page 1 renders at, without rendering it."""
    with _PDFIUM:
        page = document[0]
        try:
            width, height = page.get_size()
            scale = _scale(page)
        finally:
            page.close()
    return round(width * scale), round(height * scale)


def _scale(page: pdfium.PdfPage) -> float:
    width, height = page.get_size()  # points: 1/72 inch
    scale = settings.OCR_PDF_DPI / 72
    if width * height * scale * scale > settings.OCR_MAX_PIXELS:
        scale = math.sqrt(settings.OCR_MAX_PIXELS / (width * height)) * 0.99
    return scale
