"""PDF bytes -> one RGB image per page, each within the same limits as an uploaded image.

Opening a PDF and reading its page sizes stay in this process: PDFium reads them from the
page tree without parsing any page's content, so `page_sizes` refuses a page whose render
would pass the image limits (sides, aspect, pixels) before a single page is drawn.

Parsing and drawing a page's content is where a small file gets expensive (a 277 KB PDF of
6 M rectangles took 15 s and 2.7 GB), so each page is rendered in a forked child within
OCR_PDF_RENDER_MEMORY_MB of memory of its own and the engines' deadline (OCR_ENGINE_TIMEOUT).
The worker watches the child's private memory (what it allocated or copied, not the pages
it shares with the worker) and kills it past the limit; an address-space limit of the same
size above the worker's own stops it sooner where PDFium maps fresh memory. (The address-space
limit alone is not enough: a worker's heap holds freed memory that is mapped but unused, and
a child allocating there never grows its address space.) The child draws straight into
memory shared with the worker; one that runs out of memory or time ends as `pdf_too_complex`
(422) and the worker keeps nothing of it.

The fork is not free in a worker holding the warmed engines (~460 MB resident): a 1-page
PDF (1500×1176 px) took 17-20 ms drawn in process and 37-40 ms forked at best, 43-58 against
64-104 ms as medians on 2 shared, loaded cores (2026-12-02); fork() alone, copying the page
tables, took 11-32 ms of that.

PDFium is not thread-safe, so every call into it holds one process-wide lock; pages are
rendered one at a time, so a long document never holds more than one page in memory.
"""

import ctypes
import faulthandler
import math
import mmap
import os
import resource
import select
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from django.conf import settings
from PIL import Image

from app import images
from app.errors import InvalidInput, OcrError, TooLarge, Unprocessable

_PDFIUM = threading.Lock()
# PDF's own implementation limit (ISO 32000-1, annex C): no page side under 3 units.
MIN_PAGE_POINTS = 3.0
_RENDERED, _UNREADABLE, _TOO_COMPLEX = 0, 1, 2  # what a render child reports


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


def page_sizes(document: pdfium.PdfDocument) -> list[tuple[int, int]]:
    """The pixel size every page renders at, each checked as an uploaded image's would be.

    Read from the page tree, not from any page's content, so it is cheap for any PDF; a page
    the tree promises but does not hold (`/Kids [] /Count 3`) is `invalid_pdf`."""
    sizes = []
    for index in range(len(document)):
        with _PDFIUM:
            try:
                points = document.get_page_size(index)
            except pdfium.PdfiumError as exc:
                raise InvalidInput(
                    f"Page {index + 1} of the PDF cannot be read ({exc}).", code="invalid_pdf"
                ) from exc
        width, height = _pixels(points)
        try:
            images.check_pixels(width, height, settings.OCR_MAX_PIXELS)
        except OcrError as exc:
            raise type(exc)(f"Page {index + 1} of the PDF: {exc.message}", code=exc.code) from exc
        if min(points) < MIN_PAGE_POINTS:
            raise InvalidInput(
                f"Page {index + 1} of the PDF is {points[0]:g}×{points[1]:g} points; "
                f"no side of a PDF page may be under {MIN_PAGE_POINTS:g}.",
                code="invalid_pdf",
            )
        sizes.append((width, height))
    return sizes


def pages(document: pdfium.PdfDocument) -> Iterator[Image.Image]:
    """Render each page at OCR_PDF_DPI (smaller where that would pass OCR_MAX_PIXELS), each
    in a child process under the memory and time limits."""
    for index, (width, height) in enumerate(page_sizes(document)):
        yield _render(document, index, width, height)


def _render(document: pdfium.PdfDocument, index: int, width: int, height: int) -> Image.Image:
    """Page `index` drawn by a forked child into a buffer shared with this process."""
    shared = mmap.mmap(-1, width * height * 3)  # RGB, packed: filled by the child
    try:
        with _PDFIUM:
            scale = _scale(document.get_page_size(index))
            told, tell = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: draw, say how it went, leave without the worker's cleanup
                try:  # never past here: whatever happens, the child runs none of the worker's code
                    faulthandler.disable()  # PDFium aborts on a failed allocation: expected here
                    _let_the_worker_watch()
                    os.close(told)
                    os.write(tell, bytes([_draw(document, index, scale, shared, width, height)]))
                finally:
                    os._exit(0)
            os.close(tell)
            budget = settings.OCR_PDF_RENDER_MEMORY_MB * 1024 * 1024 + len(shared)
            outcome = _outcome(pid, told, settings.OCR_ENGINE_TIMEOUT, budget)
        if outcome == _UNREADABLE:
            raise InvalidInput(f"Page {index + 1} of the PDF cannot be rendered.", code="invalid_pdf")
        if outcome != _RENDERED:
            raise Unprocessable(
                f"Page {index + 1} of the PDF cannot be rendered within the limits "
                f"({settings.OCR_PDF_RENDER_MEMORY_MB} MB, {settings.OCR_ENGINE_TIMEOUT} s).",
                code="pdf_too_complex",
            )
        return Image.frombytes("RGB", (width, height), shared)
    finally:
        shared.close()


def _draw(
    document: pdfium.PdfDocument, index: int, scale: float, shared: mmap.mmap, width: int, height: int
) -> int:
    """In the child: the outcome `_outcome` reads. Nothing here may raise past it."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (_address_space_limit(),) * 2)
        buffer = (ctypes.c_ubyte * len(shared)).from_buffer(shared)
        bitmap = document[index].render(
            scale=scale,
            bitmap_maker=partial(pdfium.PdfBitmap.new_native, buffer=buffer),
            force_bitmap_format=pdfium_c.FPDFBitmap_BGR,
            rev_byteorder=True,  # BGR in PDFium's terms, RGB in memory
        )
        return _RENDERED if (bitmap.width, bitmap.height) == (width, height) else _UNREADABLE
    except pdfium.PdfiumError:
        return _UNREADABLE
    except BaseException:  # MemoryError above all: the render passed the memory limit
        return _TOO_COMPLEX


def _address_space_limit() -> int:
    """This (forked) process's current virtual size plus OCR_PDF_RENDER_MEMORY_MB."""
    with open("/proc/self/statm") as statm:
        pages_mapped = int(statm.read().split()[0])
    return pages_mapped * mmap.PAGESIZE + settings.OCR_PDF_RENDER_MEMORY_MB * 1024 * 1024


# How often the worker looks at the child's memory while it draws: a read of its
# smaps_rollup costs well under a millisecond; PDFium allocates far less than the limit in one.
WATCH_SECONDS = 0.02


def _outcome(pid: int, told: int, timeout: float, budget: int) -> int:
    """What the child said, or _TOO_COMPLEX if it said nothing by the deadline, held more
    than `budget` bytes of its own (killed then) or died first (PDFium aborts when an
    allocation fails). The child is reaped by a thread: its exit (unmapping a copy of the
    worker) costs ~7 ms nobody needs to wait for."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([told], [], [], max(0.0, min(left, WATCH_SECONDS)))
            if ready or left <= 0 or private_bytes(pid) > budget:
                break
        said = os.read(told, 1) if ready else b""
    finally:
        os.close(told)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()
    return said[0] if said else _TOO_COMPLEX


_PR_SET_DUMPABLE = 4


def _let_the_worker_watch() -> None:
    """A process that switched user (uWSGI dropping root) is not "dumpable": its children's
    /proc/<pid>/smaps_rollup is then closed even to their own parent of the same user."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)


def private_bytes(pid: int) -> int:
    """Memory only this process maps (allocated, or copied on write from its parent); 0 once gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            return 1024 * sum(
                int(line.split()[1])
                for line in rollup
                if line.startswith(("Private_Clean:", "Private_Dirty:"))
            )
    except (FileNotFoundError, ProcessLookupError):
        return 0  # gone: it has said how it went, or died
    except PermissionError:
        return 0  # not ours to read: the address-space limit alone holds it


def _pixels(points: tuple[float, float]) -> tuple[int, int]:
    """The bitmap size PDFium draws a page of this size at (pypdfium2 rounds up)."""
    scale = _scale(points)
    return math.ceil(points[0] * scale), math.ceil(points[1] * scale)


def _scale(points: tuple[float, float]) -> float:
    width, height = points  # points: 1/72 inch
    scale = settings.OCR_PDF_DPI / 72
    if width * height * scale * scale > settings.OCR_MAX_PIXELS:
        scale = math.sqrt(settings.OCR_MAX_PIXELS / (width * height)) * 0.99
    return scale
