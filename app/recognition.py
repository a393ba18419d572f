"""Bytes -> what an engine reads: one image, or every page of a PDF (or its own text). No writes here.

`load` validates everything it can before any engine runs (format, limits, page
count); `run` then reads the image, or each page in turn with its lines tagged by page.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image

from app import images, memory, pdf
from app.engines.base import Engine, Options, Picture, Result
from app.errors import InvalidInput

PAGE_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Source:
    data: bytes
    extension: str
    width: int  # of the image, or of page 1 as it renders
    height: int
    image: Image.Image | None  # None for a PDF: its pages are rendered while they are read
    pages: int = 1


def load(data: bytes) -> Source:
    if not pdf.is_pdf(data):
        decoded = images.decode(data)
        return Source(data, decoded.extension, decoded.width, decoded.height, decoded.image)
    images.check_size(data)
    with pdf.opened(data) as document:
        # Every page's size is checked here, before anything is stored or rendered.
        (width, height), *_ = pdf.page_sizes(document)
        return Source(data, ".pdf", width, height, None, pages=len(document))


def run(
    engine: Engine, options: Options, source: Source, on_page: Callable[[int, int], None] | None = None
) -> Result:
    """Read the source; `on_page(done, total)` is told after each PDF page (job progress)."""
    with memory.reading():
        return _read(engine, options, source, on_page)


def _read(
    engine: Engine, options: Options, source: Source, on_page: Callable[[int, int], None] | None
) -> Result:
    if source.image is not None:
        return engine.recognize(Picture(source.image), options)
    if options.outputs:
        raise InvalidInput(
            f"{', '.join(options.outputs)} output is for single images, not PDFs.", code="unsupported_format"
        )
    lines, pages = [], []
    # A captcha task reads what is drawn; a document page may bring its own text.
    text_source = options.pdf_text if options.task == "document" else "ocr"
    with pdf.opened(source.data) as document:
        for number, page in enumerate(pdf.read(document, text_source), start=1):
            if page.lines is None:
                result = engine.recognize(Picture(page.image), options)
            else:
                result = Result(lines=page.lines, text="\n".join(line.text for line in page.lines))
            lines += [replace(line, page=number) for line in result.lines]
            pages.append(
                {
                    "page": number,
                    "width": page.width,
                    "height": page.height,
                    "text": result.text,
                    "text_source": page.source,
                }
            )
            if on_page:
                on_page(number, source.pages)
    text = PAGE_SEPARATOR.join(page["text"] for page in pages)
    return Result(lines=lines, text=text, extra={"pages": pages})
