"""Bytes -> what an engine reads: one image, or every page of a PDF (or its own text). No writes here.

`load` validates everything it can before any engine runs (format, limits, page
count); `run` then reads the image, or each page in turn with its lines tagged by page.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image

from app import idcard, images, layout, memory, orientation, pdf
from app.engines import registry
from app.engines.base import Engine, Options, Picture, Result
from app.errors import InvalidInput, Unprocessable

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


@dataclass(frozen=True)
class Reading:
    """What was read, and by which engine with which options: `auto` by content may have
    chosen another engine or language than the request's (registry.by_content)."""

    result: Result
    engine: Engine
    options: Options


def run(
    engine: Engine,
    options: Options,
    source: Source,
    on_page: Callable[[int, int], None] | None = None,
    route: bool = False,
) -> Reading:
    """Read the source; `on_page(done, total)` is told after each PDF page (job progress).
    With `route`, the first image read (the image, or the first PDF page drawn) chooses the
    engine and language by what it shows, for the whole source."""
    with memory.reading():
        reading = _read(engine, options, source, on_page, route)
    if options.task == "barcode" and not reading.result.lines:
        # A scan of text sent as a barcode, or a symbol too damaged to decode: say so, never
        # answer an empty success.
        raise Unprocessable(
            "No barcode or QR code was found (every format zxing-cpp reads, linear and matrix, "
            "in any orientation" + (", on any page)." if source.image is None else ")."),
            code="no_barcode",
        )
    return reading


def _read(
    engine: Engine,
    options: Options,
    source: Source,
    on_page: Callable[[int, int], None] | None,
    route: bool,
) -> Reading:
    if source.image is not None:
        return _read_image(engine, options, source.image, route)
    if options.task == "idcard":
        raise InvalidInput(
            "An ID card is read from an image, not a PDF: send the card's photo or scan.",
            code="unsupported_task",
        )
    if options.outputs:
        raise InvalidInput(
            f"{', '.join(options.outputs)} output is for single images, not PDFs.", code="unsupported_format"
        )
    lines, pages, blocks, barcodes = [], [], [], []
    # A captcha task reads what is drawn; a document page may bring its own text.
    text_source = options.pdf_text if options.task == "document" else "ocr"
    with pdf.opened(source.data) as document:
        for number, page in enumerate(pdf.read(document, text_source), start=1):
            about = {"page": number, "width": page.width, "height": page.height}
            if page.lines is None:
                reading = _read_image(engine, options, page.image, route)
                engine, options, route = reading.engine, reading.options, False
                result = reading.result
                about.update({key: result.extra[key] for key in ("rotation", "skew") if key in result.extra})
            else:
                result = _arranged(Result(lines=page.lines, text=""), keep_order=True)
            blocks += [
                {**block, "page": number, "lines": [i + len(lines) for i in block["lines"]]}
                for block in result.extra.get("blocks", [])
            ]
            lines += [replace(line, page=number) for line in result.lines]
            barcodes += [{**barcode, "page": number} for barcode in result.extra.get("barcodes", [])]
            pages.append({**about, "text": result.text, "text_source": page.source})
            if on_page:
                on_page(number, source.pages)
    text = PAGE_SEPARATOR.join(page["text"] for page in pages)
    extra = {"pages": pages, "blocks": blocks, **({"barcodes": barcodes} if barcodes else {})}
    return Reading(Result(lines=lines, text=text, extra=extra), engine, options)


# Pages this large (a letter page drawn at 200 dpi is 3.7 megapixels) are levelled before they
# are read: their skew is measured (~100 ms on a 2550x3300 page) and, where there is one, taken
# out (Tesseract read skew.pdf at CER 0.39 as drawn and 0.02 levelled).
PAGE_PIXELS = 2_000_000
# A reading this poor (characters' mean confidence) may be of a page turned: only then is
# Tesseract's orientation detection asked (~400 ms on that page; upright pages read at 0.94-0.99,
# turned over at 0.35-0.63 on the corpus).
POOR_SCORE = 0.75
# ... or when most of what was read lies in boxes this much taller than wide: text on its side,
# which RapidOCR reads with high confidence but only in part (a quarter-turned page: 1698 of
# 4385 characters).
SIDEWAYS = 1.5


def _read_image(engine: Engine, options: Options, image: Image.Image, route: bool) -> Reading:
    """One image read upright, its lines in reading order (document task), boxes in the
    pixels of the image as sent. Orientation detection costs a page a fifth of a Tesseract
    read, so it runs only for a reading that looks turned (`_doubtful`)."""
    if options.task == "idcard":
        return Reading(_read_card(engine, options, image), engine, options)
    if options.task != "document":
        return Reading(engine.recognize(Picture(image), options), engine, options)
    found = orientation.UPRIGHT
    # Tesseract's own renderings (hOCR, TSV) describe the image it read: it reads the one sent;
    # and so is an image its client says is upright and level (`upright`).
    turnable = not options.outputs and not options.upright
    if turnable and image.width * image.height >= PAGE_PIXELS:
        found = replace(found, skew=orientation.measure_skew(image))
    if route:
        paper = images.looks_like_paper(image)
        engine, options = registry.by_content(options, paper=paper, script=None, script_confidence=0.0)
    result = _recognize(engine, options, image, found)
    if turnable and _doubtful(result):
        # OSD, or for a line its reading upside down in its languages; and by the script OSD
        # names, auto may choose again.
        again = orientation.detect(image, lang=options.lang)
        other_engine, other_options = engine, options
        if route:
            other_engine, other_options = registry.by_content(
                options, paper=paper, script=again.script, script_confidence=again.script_confidence
            )
        if not again.is_upright or (other_engine, other_options) != (engine, options):
            other = _recognize(other_engine, other_options, image, again)
            if not _doubtful(other) or _score(other) > _score(result):
                result, found, engine, options = other, again, other_engine, other_options
    # In the upright page, where reading order means something; text still on its side (OSD
    # could not tell which way: Chinese turned 90°) keeps the engine's order.
    arranged = _arranged(result, keep_order=_standing(result))
    blocks = [
        {**block, "box": orientation.to_source(block["box"], found, image.size)}
        for block in arranged.extra["blocks"]
    ]
    extra = {**arranged.extra, "blocks": blocks, "rotation": found.rotation, "skew": found.skew}
    lines = orientation.lines_to_source(arranged.lines, found, image.size)
    return Reading(replace(arranged, lines=lines, extra=extra), engine, options)


def _read_card(engine: Engine, options: Options, image: Image.Image) -> Result:
    """An ID card: app/idcard finds, turns and parses it; the engine reads its lines."""

    document = replace(options, task="document", side="")
    card = idcard.read(image, options.side, lambda part: engine.recognize(Picture(part), document).lines)
    extra = {"idcard": card.answer(), "rotation": card.rotation, "skew": card.skew}
    return Result(lines=card.lines, text=card.text, extra=extra)


def _recognize(
    engine: Engine, options: Options, image: Image.Image, found: orientation.Orientation
) -> Result:
    """The image read as `found` turns it: lines in the upright image's pixels."""
    upright = image if found.is_upright else orientation.upright(image, found)
    return engine.recognize(Picture(upright), options)


def _doubtful(result: Result) -> bool:
    """Read as if the text were turned: poorly, or mostly from boxes standing on end."""
    return _score(result) < POOR_SCORE or _standing(result)


def _standing(result: Result) -> bool:
    """Most of the text read lies in boxes standing on end (SIDEWAYS)."""
    standing = read = 0
    for line in result.lines:
        (x0, y0), (x1, y1), (x2, y2), _ = line.box
        width, height = math.dist((x0, y0), (x1, y1)), math.dist((x1, y1), (x2, y2))
        read += len(line.text)
        standing += len(line.text) if height > SIDEWAYS * width else 0
    return standing > read / 2


def _score(result: Result) -> float:
    """The characters' mean confidence; 1 when nothing was read (nothing to read better)."""
    scored = [(len(line.text), line.score) for line in result.lines if line.score is not None]
    total = sum(length for length, _ in scored)
    return sum(length * score for length, score in scored) / total if total else 1.0


def _arranged(result: Result, keep_order: bool = False) -> Result:
    """The lines in reading order, grouped into blocks (app/layout.py). With `keep_order` (a PDF's
    own text: its content order is its author's), the lines stay as they are and only the blocks
    are found."""
    arranged = layout.arrange(result.lines)
    lines = arranged.lines
    if keep_order:
        position = {id(line): i for i, line in enumerate(result.lines)}
        lines = result.lines
        blocks = [
            {
                "box": block.box,
                "lines": sorted(position[id(arranged.lines[i])] for i in block.lines),
                "kind": block.kind,
            }
            for block in arranged.blocks
        ]
    else:
        blocks = [{"box": block.box, "lines": block.lines, "kind": block.kind} for block in arranged.blocks]
    text = "\n".join(line.text for line in lines)
    return replace(result, lines=lines, text=text, extra={**result.extra, "blocks": blocks})
