"""PDFs written byte by byte, for what no PDF library would write: odd page boxes, broken
page trees, content streams that are costly to draw."""

import io
import zlib

import pypdfium2 as pdfium
from PIL import Image


def raw_pdf(
    media_box: str = "0 0 612 792", content: bytes = b"", kids: bytes | None = None, rotate: int = 0
) -> bytes:
    """A one-page PDF from its content stream (font /F1 is Helvetica; the page turned by
    `rotate` degrees clockwise when shown), or a page tree of `kids` claiming 3 pages; xref and all."""
    stream = zlib.compress(content)
    if kids is None:
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox ["
            + media_box.encode()
            + b"] /Rotate %d /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>" % rotate,
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
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


def text_pdf(words: str, *, rectangles: int = 0) -> bytes:
    """A letter page reading `words`, drawn over `rectangles` white 1-pt squares: each costs
    PDFium a little time and memory to draw and changes nothing on the page."""
    squares = b"1 1 1 rg\n" + b"0 0 1 1 re f\n" * rectangles
    return raw_pdf(content=squares + b"0 0 0 rg BT /F1 28 Tf 72 700 Td (" + words.encode() + b") Tj ET\n")


def text_lines_pdf(lines: list[str], *, size: int = 20, rotate: int = 0) -> bytes:
    """A letter page with these lines of Helvetica from the top left (1 inch margins)."""
    shown = b"".join(b"(" + line.encode() + b") Tj 0 -%d Td\n" % (size * 2) for line in lines)
    return raw_pdf(content=b"BT /F1 %d Tf 72 700 Td\n" % size + shown + b"ET\n", rotate=rotate)


def joined(*documents: bytes) -> bytes:
    """One PDF of the pages of these, in order (written by PDFium)."""
    out = pdfium.PdfDocument.new()
    for data in documents:
        out.import_pages(pdfium.PdfDocument(data))
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


def pdf_of(*pages: Image.Image) -> bytes:
    """A PDF of these images, one per page at 100 dpi (written by Pillow): scans, no text."""
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", resolution=100, save_all=True, append_images=list(pages[1:]))
    return buffer.getvalue()


def stamped(data: bytes, text: str, size: float = 8.0) -> bytes:
    """The PDF with `text` in Helvetica added to its first page's bottom left (a page-number or
    Bates stamp), through PDFium."""
    raw = pdfium.raw
    document = pdfium.PdfDocument(data)
    page = document[0]
    font = raw.FPDFText_LoadStandardFont(document, b"Helvetica")
    stamp = raw.FPDFPageObj_CreateTextObj(document, font, size)
    wide = (text + "\0").encode("utf-16-le")
    raw.FPDFText_SetText(stamp, (raw.c_ushort * (len(wide) // 2)).from_buffer_copy(wide))
    raw.FPDFPageObj_Transform(stamp, 1, 0, 0, 1, 20, 20)
    raw.FPDFPage_InsertObject(page, stamp)
    raw.FPDFPage_GenerateContent(page)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
