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
import json
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
from dataclasses import dataclass
from functools import partial

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from django.conf import settings
from PIL import Image

from app import images
from app.engines.base import Line
from app.errors import InvalidInput, OcrError, TooLarge, Unprocessable

_PDFIUM = threading.Lock()
# PDF's own implementation limit (ISO 32000-1, annex C): no page side under 3 units.
MIN_PAGE_POINTS = 3.0
_RENDERED, _UNREADABLE, _TOO_COMPLEX, _LAYER = 0, 1, 2, 3  # what a page's child reports
# A layer is usable when this share of its characters are real Unicode: text drawn with a font
# that maps glyphs to nothing extracts as U+FFFD or private-use codes.
MIN_REAL_SHARE = 0.9
# A page mostly covered by images (a scan) with only a little text on it (a stamped page number,
# a Bates label) is read as a scan: its layer would lose the page's body.
SCAN_COVERAGE, SCAN_MIN_CHARS = 0.5, 100
# A text layer past these is no page a person wrote (a 1.4 KB PDF can hold 10,000 lines): the
# page is `pdf_too_complex`, as one too costly to draw. Characters drawn off the page are dropped.
MAX_LAYER_LINES, MAX_LAYER_CHARS = 2_000, 100_000
MAX_PAGE_CHARS = 1_000_000  # characters looked at, on the page or off it
MAX_LAYER_BYTES = 4 * 1024 * 1024  # the JSON of MAX_LAYER_CHARS characters and their boxes fits


@dataclass(frozen=True)
class Page:
    """One page as it is to be read: drawn (`image`, for an engine), or read from its own text
    layer (`lines`, boxes in the pixels the page would be drawn at: `width` × `height`)."""

    width: int
    height: int
    image: Image.Image | None = None
    lines: list[Line] | None = None

    @property
    def source(self) -> str:
        return "ocr" if self.lines is None else "layer"


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
    """Every page drawn (see `read`)."""
    for page in read(document, "ocr"):
        yield page.image


def read(document: pdfium.PdfDocument, text: str = "auto") -> Iterator[Page]:
    """Each page at OCR_PDF_DPI (smaller where that would pass OCR_MAX_PIXELS), read from its
    text layer or drawn as `text` (app.engines.base.PDF_TEXT_SOURCES) says; each in a child
    process under the memory and time limits: reading a page's text parses its content as
    drawing it does."""
    for index, (width, height) in enumerate(page_sizes(document)):
        yield _page(document, index, width, height, text)


def _page(document: pdfium.PdfDocument, index: int, width: int, height: int, text: str) -> Page:
    """Page `index`, read or drawn by a forked child (the drawing into a buffer shared with
    this process, the text layer sent back through the pipe)."""
    shared = mmap.mmap(-1, width * height * 3)  # RGB, packed: filled by the child
    try:
        with _PDFIUM:
            scale = _scale(document.get_page_size(index))
            told, tell = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: read or draw, say how it went, leave without the worker's cleanup
                try:  # never past here: whatever happens, the child runs none of the worker's code
                    faulthandler.disable()  # PDFium aborts on a failed allocation: expected here
                    _let_the_worker_watch()
                    os.close(told)
                    _tell(tell, *_child(document, index, scale, shared, width, height, text))
                finally:
                    os._exit(0)
            os.close(tell)
            budget = settings.OCR_PDF_RENDER_MEMORY_MB * 1024 * 1024 + len(shared)
            outcome, said = _outcome(pid, told, settings.OCR_ENGINE_TIMEOUT, budget)
        if outcome == _UNREADABLE:
            raise InvalidInput(f"Page {index + 1} of the PDF cannot be rendered.", code="invalid_pdf")
        if outcome == _LAYER:
            try:
                lines = [Line(text=line, box=box, score=1.0) for line, box in json.loads(said)]
            except ValueError:  # cut short: the child died while it wrote
                outcome = _TOO_COMPLEX
            else:
                return Page(width, height, lines=lines)
        if outcome != _RENDERED:
            raise Unprocessable(
                f"Page {index + 1} of the PDF cannot be rendered within the limits "
                f"({settings.OCR_PDF_RENDER_MEMORY_MB} MB, {settings.OCR_ENGINE_TIMEOUT} s).",
                code="pdf_too_complex",
            )
        return Page(width, height, image=Image.frombytes("RGB", (width, height), shared))
    finally:
        shared.close()


def _tell(pipe: int, outcome: int, payload: bytes) -> None:
    """Write it all and close: the worker reads to the end, which would otherwise come only
    once the child has unmapped its copy of the worker (~7 ms)."""
    data = memoryview(bytes([outcome]) + payload)
    while data:
        data = data[os.write(pipe, data) :]
    os.close(pipe)


def _child(
    document: pdfium.PdfDocument,
    index: int,
    scale: float,
    shared: mmap.mmap,
    width: int,
    height: int,
    text: str,
) -> tuple[int, bytes]:
    """In the child, under its limits: the page's text layer (_LAYER, its lines as JSON) when
    `text` says to use it, else the outcome of drawing it. Nothing here may raise past it."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (_address_space_limit(),) * 2)
        if text != "ocr":
            lines = _text_layer(document[index], width, height)
            if text == "layer" or lines is not None:
                payload = json.dumps(lines or [], ensure_ascii=False).encode()
                return (_LAYER, payload) if len(payload) <= MAX_LAYER_BYTES else (_TOO_COMPLEX, b"")
        return _draw(document, index, scale, shared, width, height), b""
    except pdfium.PdfiumError:
        return _UNREADABLE, b""
    except _TooMuchText:
        return _TOO_COMPLEX, b""
    except BaseException:  # MemoryError above all: the page passed the memory limit
        return _TOO_COMPLEX, b""


def _draw(
    document: pdfium.PdfDocument, index: int, scale: float, shared: mmap.mmap, width: int, height: int
) -> int:
    """_RENDERED, or _UNREADABLE when PDFium drew another size than the page tree promised."""
    buffer = (ctypes.c_ubyte * len(shared)).from_buffer(shared)
    bitmap = document[index].render(
        scale=scale,
        bitmap_maker=partial(pdfium.PdfBitmap.new_native, buffer=buffer),
        force_bitmap_format=pdfium_c.FPDFBitmap_BGR,
        rev_byteorder=True,  # BGR in PDFium's terms, RGB in memory
    )
    return _RENDERED if (bitmap.width, bitmap.height) == (width, height) else _UNREADABLE


def _text_layer(page: pdfium.PdfPage, width: int, height: int) -> list[tuple[str, list]] | None:
    """The page's own text as (line, box) pairs, boxes in the pixels of a `width` × `height`
    drawing of it; None when it has no usable layer (no text, too little real Unicode, or a
    scan with a few words on it). PDFium's text page orders the characters as the page's
    content draws them and marks line ends with generated CR LF."""
    textpage = page.get_textpage()
    count = textpage.count_chars()
    if count > MAX_PAGE_CHARS:
        raise _TooMuchText
    lines: list[tuple[str, list]] = []
    chars: list[str] = []
    box: list[float] = []
    real = unreal = 0
    for i in range(count):
        if len(lines) > MAX_LAYER_LINES or real + unreal > MAX_LAYER_CHARS:
            raise _TooMuchText
        code = pdfium_c.FPDFText_GetUnicode(textpage, i)
        if code in (0x0D, 0x0A):
            _end_line(lines, chars, box)
            chars, box = [], []
            continue
        char = chr(code) if code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd"
        if not char.isspace() and pdfium_c.FPDFText_IsGenerated(textpage, i) != 1:
            drawn = _device_box(page, textpage.get_charbox(i), width, height)
            if drawn[2] < 0 or drawn[3] < 0 or drawn[0] > width or drawn[1] > height:
                continue  # off the page: not shown, not read
            if pdfium_c.FPDFText_HasUnicodeMapError(textpage, i) == 1 or not _is_real(code):
                unreal += 1
                char = "\ufffd"
            else:
                real += 1
            box = _union(box, drawn)
        chars.append(char)
    _end_line(lines, chars, box)
    if not real or real < MIN_REAL_SHARE * (real + unreal):
        return None
    if real < SCAN_MIN_CHARS and _image_coverage(page) >= SCAN_COVERAGE:
        return None
    return lines


class _TooMuchText(Exception):
    """A text layer past MAX_LAYER_LINES or MAX_LAYER_CHARS: the child reports _TOO_COMPLEX."""


def _is_real(code: int) -> bool:
    """A character a reader can use: not a control, a private-use code or U+FFFD."""
    return code >= 0x20 and code != 0xFFFD and not 0xE000 <= code <= 0xF8FF and code < 0xF0000


def _end_line(lines: list[tuple[str, list]], chars: list[str], box: list[float]) -> None:
    text = " ".join("".join(chars).split())
    if text and box:
        x0, y0, x1, y1 = box
        lines.append((text, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))


def _union(box: list[float], other: list[float]) -> list[float]:
    if not box:
        return other
    return [min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]), max(box[3], other[3])]


def _device_box(
    page: pdfium.PdfPage, charbox: tuple[float, float, float, float], width: int, height: int
) -> list[float]:
    """A character's box (PDF points, y up) in the drawing's pixels (y down), through PDFium's
    own page-to-device mapping: the page's rotation and crop box as `render` applies them."""
    left, bottom, right, top = charbox
    xs, ys = [], []
    for x, y in ((left, bottom), (right, top)):
        device_x, device_y = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(page, 0, 0, width, height, 0, x, y, device_x, device_y)
        xs.append(float(device_x.value))
        ys.append(float(device_y.value))
    return [min(xs), min(ys), max(xs), max(ys)]


def _image_coverage(page: pdfium.PdfPage) -> float:
    """The share of the page its image objects cover (overlaps counted twice; at most 1)."""
    page_width, page_height = page.get_size()
    covered = 0.0
    for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)):
        left, bottom, right, top = image.get_bounds()
        covered += max(0.0, min(right, page_width) - max(left, 0.0)) * max(
            0.0, min(top, page_height) - max(bottom, 0.0)
        )
    return min(1.0, covered / (page_width * page_height))


def _address_space_limit() -> int:
    """This (forked) process's current virtual size plus OCR_PDF_RENDER_MEMORY_MB."""
    with open("/proc/self/statm") as statm:
        pages_mapped = int(statm.read().split()[0])
    return pages_mapped * mmap.PAGESIZE + settings.OCR_PDF_RENDER_MEMORY_MB * 1024 * 1024


# How often the worker looks at the child's memory while it draws: a read of its
# smaps_rollup costs well under a millisecond; PDFium allocates far less than the limit in one.
WATCH_SECONDS = 0.02


def _outcome(pid: int, told: int, timeout: float, budget: int) -> tuple[int, bytes]:
    """What the child said (its outcome and what came with it), or _TOO_COMPLEX if it said
    nothing whole by the deadline, held more than `budget` bytes of its own (killed then) or
    died first (PDFium aborts when an allocation fails). The child is reaped by a thread: its
    exit (unmapping a copy of the worker) costs ~7 ms nobody needs to wait for."""
    deadline = time.monotonic() + timeout
    said, done = bytearray(), False
    try:
        while not done:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([told], [], [], max(0.0, min(left, WATCH_SECONDS)))
            if ready:
                chunk = os.read(told, 1 << 16)
                said += chunk
                done = not chunk  # the child has exited, or closed its end
                if len(said) > MAX_LAYER_BYTES + 1:
                    break
            elif left <= 0 or private_bytes(pid) > budget:
                break
    finally:
        os.close(told)
    if not done:
        os.kill(pid, signal.SIGKILL)
    threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()
    if not done or not said:
        return _TOO_COMPLEX, b""
    return said[0], bytes(said[1:])


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
