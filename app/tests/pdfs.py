"""PDFs written byte by byte, for what no PDF library would write: odd page boxes, broken
page trees, content streams that are costly to draw."""

import zlib


def raw_pdf(media_box: str = "0 0 612 792", content: bytes = b"", kids: bytes | None = None) -> bytes:
    """A one-page PDF from its content stream (font /F1 is Helvetica), or a page tree of
    `kids` claiming 3 pages; xref and all."""
    stream = zlib.compress(content)
    if kids is None:
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox ["
            + media_box.encode()
            + b"] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
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
