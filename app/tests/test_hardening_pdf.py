"""Issue 19, items 1, 2 and 7 (PDF): pages within the image limits, renders within memory and time."""

import ctypes
import zlib

import pytest

from app import pdf, recognition
from app.errors import OcrError


def raw_pdf(media_box: str = "0 0 612 792", content: bytes = b"", kids: bytes | None = None) -> bytes:
    """A one-page PDF from bytes (or a page tree of `kids` claiming 3 pages), xref and all."""
    stream = zlib.compress(content)
    if kids is None:
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [" + media_box.encode() + b"] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        ]
    else:
        objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count 3 >>" % kids]
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (raw_pdf("0 0 14400 1"), "image_too_large"),
        (raw_pdf("0 0 1 14400"), "image_too_large"),
        (raw_pdf("0 0 0.01 0.01"), "invalid_pdf"),
        (raw_pdf("0 0 2000 5"), "invalid_image"),
        (raw_pdf(kids=b""), "invalid_pdf"),
    ],
    ids=["wide-strip", "tall-strip", "tiny", "too-thin", "no-kids"],
)
def test_pages_past_the_image_limits_are_refused_before_rendering(data, code):
    with pytest.raises(OcrError) as caught:
        recognition.load(data)
    assert caught.value.code == code


def test_a_page_too_complex_for_the_memory_limit_is_422(settings):
    settings.OCR_PDF_RENDER_MEMORY_MB = 64
    data = raw_pdf(content=b"0 0 1 1 re f\n" * 400_000)  # parses to ~150 MB in PDFium
    recognition.load(data)  # the page's size is fine: only drawing it costs
    with pdf.opened(data) as document, pytest.raises(OcrError) as caught:
        list(pdf.pages(document))
    assert (caught.value.status, caught.value.code) == (422, "pdf_too_complex")


def test_the_memory_limit_holds_where_the_worker_heap_has_room_to_spare(settings):
    """A worker's heap keeps freed memory mapped: a child drawing there never grows its
    address space, so only watching its own memory stops it. 600 MB allocated and freed
    (kept in the heap: no trim) makes that room here."""
    settings.OCR_PDF_RENDER_MEMORY_MB = 64
    libc = ctypes.CDLL(None)
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: small blocks from the heap, not mmap
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: freed heap memory stays mapped
    try:
        blocks = [bytearray(1 << 16) for _ in range(600 * 16)]
        del blocks
        data = raw_pdf(content=b"0 0 1 1 re f\n" * 400_000)
        with pdf.opened(data) as document, pytest.raises(OcrError) as caught:
            list(pdf.pages(document))
    finally:
        libc.mallopt(-3, 128 * 1024)
        libc.mallopt(-1, 128 * 1024)
    assert caught.value.code == "pdf_too_complex"


def test_a_page_past_the_deadline_is_422(settings):
    settings.OCR_ENGINE_TIMEOUT = 0.05
    data = raw_pdf(content=b"0 0 1 1 re f\n" * 400_000)
    with pdf.opened(data) as document, pytest.raises(OcrError) as caught:
        list(pdf.pages(document))
    assert caught.value.code == "pdf_too_complex"


def test_an_ordinary_page_renders_as_before():
    with pdf.opened(raw_pdf(content=b"0 0 100 100 re f\n")) as document:
        (image,) = pdf.pages(document)
    assert image.size == (1700, 2200)
    assert image.getpixel((10, 2190)) == (0, 0, 0)  # the square, bottom left
    assert image.getpixel((1000, 1000)) == (255, 255, 255)


@pytest.mark.parametrize("media_box", ["0 0 14400 1", "0 0 1 14400", "0 0 0.01 0.01"])
def test_a_thin_page_is_a_4xx_with_nothing_stored_for_ddddocr(api, media_files, media_box):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from app.models import OcrRecord
    from app.tests.responses import assert_error

    upload = SimpleUploadedFile("strip.pdf", raw_pdf(media_box), "application/pdf")
    response = api.post("/api/ocr/", {"image": upload, "engine": "ddddocr"}, format="multipart")
    code = "invalid_pdf" if media_box.endswith("0.01") else "image_too_large"
    assert_error(response, 400 if code == "invalid_pdf" else 413, code)
    assert not OcrRecord.objects.exists()
    assert not media_files()
