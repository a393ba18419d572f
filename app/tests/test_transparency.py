"""Transparent images are flattened onto paper that contrasts with what is drawn on them."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from app import images
from app.tests import corpus
from app.tests.imaging import cer, encode, english_lines, render

LINES = english_lines(3, seed=31)


def on_transparency(ink: str, mode: str = "RGBA") -> bytes:
    """The drawn lines in `ink`, every other pixel fully transparent (its colour the ink's too,
    as image editors leave it): only the alpha channel tells text from paper."""
    alpha = Image.eval(render(LINES).convert("L"), lambda v: 255 - v)
    colour = Image.new("RGB", alpha.size, ink)
    if mode == "LA":
        return encode(Image.merge("LA", (colour.convert("L"), alpha)), "PNG")
    return encode(Image.merge("RGBA", (*colour.split(), alpha)), "PNG")


@pytest.mark.parametrize(
    ("ink", "mode", "paper"),
    [
        ("white", "RGBA", 0),
        ("black", "RGBA", 255),
        ("#f0e060", "RGBA", 0),
        ("white", "LA", 0),
        ("black", "LA", 255),
    ],
)
def test_the_paper_contrasts_with_the_ink(ink, mode, paper):
    flat = images.decode(on_transparency(ink, mode)).image
    assert flat.mode == "RGB"
    assert flat.getpixel((1, 1)) == (paper,) * 3  # a corner: transparent in the file


def test_an_opaque_image_is_left_as_it_is():
    opaque = render(LINES).convert("RGBA")
    assert images.decode(encode(opaque, "PNG")).image.tobytes() == render(LINES).tobytes()


@pytest.mark.parametrize("engine", ["tesseract", "rapidocr"])
@pytest.mark.parametrize("ink", ["white", "black"])
def test_text_on_transparency_is_read_whatever_its_colour(api, engine, ink):
    response = _post(api, on_transparency(ink), engine)
    assert response.status_code == 201, response.content
    assert cer("\n".join(LINES), response.json()["text"]) <= 0.02


@pytest.mark.parametrize("engine", ["tesseract", "rapidocr"])
@pytest.mark.parametrize("file", ["files/tesseractjs/cosmic.png", "files/pytesseract/test_la.png"])
def test_the_corpus_text_on_transparency_is_read(api, engine, file):
    truth = corpus.entry(file)["truth"]
    response = _post(api, corpus.data(file), engine)
    assert response.status_code == 201, response.content
    assert cer(truth.casefold(), response.json()["text"].casefold()) <= 0.05


def _post(api, data: bytes, engine: str):
    return api.post(
        "/api/ocr/", {"image": SimpleUploadedFile("t.png", data), "engine": engine}, format="multipart"
    )
