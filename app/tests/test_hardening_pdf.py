"""Issue 19, items 1, 2 and 7 (PDF): pages within the image limits, renders within memory and time."""

import ctypes
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app import pdf, recognition
from app.errors import OcrError
from app.tests.pdfs import raw_pdf


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


def test_a_render_is_watched_and_its_child_leaves_even_after_a_user_switch(tmp_path):
    """uWSGI's workers switch from root to SERVE_USER, which makes them (and their render
    children) not dumpable: /proc/<child>/smaps_rollup is then closed to the worker unless the
    child reopens it. Once that read failed, the child, finding its pipe closed, ran on into
    the worker's code. Here a process switches user as a worker does, then renders."""
    script = tmp_path / "switched.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            from django.conf import settings
            from app import pdf
            from app.tests.pdfs import text_pdf
            seen, real = [], pdf.private_bytes
            pdf.private_bytes = lambda pid: seen.append(real(pid)) or seen[-1]
            os.setgid(65534); os.setuid(65534)
            settings.OCR_PDF_RENDER_MEMORY_MB = 64
            outcomes = []
            for rectangles in (50_000, 400_000):
                try:
                    with pdf.opened(text_pdf("x", rectangles=rectangles)) as document:
                        outcomes.append(len(list(pdf.pages(document))))
                except Exception as exc:
                    outcomes.append(getattr(exc, "code", repr(exc)))
            print(os.getpid(), outcomes, max(seen))
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); exec(open({str(script)!r}).read())"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "onlineocr.settings"},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stderr
    (line,) = run.stdout.splitlines()  # one process printed: no child ran on
    _pid, outcomes, watched = line.split(" ", 1)[0], *line.split(" ", 1)[1].rsplit(" ", 1)
    assert outcomes == "[1, 'pdf_too_complex']"
    assert int(watched) > 0  # the worker did read its child's memory
