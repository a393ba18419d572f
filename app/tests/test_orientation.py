"""app.orientation: pages turned by quarter turns and small angles come back upright, with the
real Tesseract OSD; and no upright page of the shared corpus is ever turned."""

import json

import pytest
from PIL import Image, ImageChops

from app import images, orientation, pdf
from app.errors import InvalidInput
from app.orientation import Orientation
from app.tests import corpus
from app.tests.imaging import english_lines, render

CARDINAL = "files/ocrmypdf/cardinal.pdf"
# Pages the corpus holds turned, and the clockwise turn each needs (the manifest's rotated_deg
# says how each was turned). rotated_skew.pdf's /Rotate 90 undoes its turn as PDFium renders
# it; the camelot table ("kind": "table") is printed sideways, reading bottom to top.
TURNED = {
    CARDINAL: [0, 270, 180, 90],
    "files/ocrmypdf/rotated_skew.pdf": [0],
    "files/camelot/anticlockwise_table_1.pdf": [90],
}
# Skew as the file draws it: the image matrix of the PDFs (skew.pdf -1.87°, rotated_skew.pdf
# 2.79° once /Rotate is applied), unpaper's scan as Tesseract's own layout analysis puts it (3.99°).
SKEWED = {
    "files/ocrmypdf/skew.pdf": -1.87,
    "files/ocrmypdf/rotated_skew.pdf": 2.79,
    "files/unpaper/imgsrc001.png": 3.99,
}


def corpus_files() -> list[str]:
    """Every file in the manifest; without the corpus one name, whose test then skips."""
    manifest = corpus.CORPUS / "manifest.json"
    if not manifest.is_file():
        return [CARDINAL]
    return [entry["file"] for entry in json.loads(manifest.read_text())]


def tesseract_lang(file: str) -> str | None:
    """The manifest's language as Tesseract names it (a pack not installed is not read)."""
    lang = corpus.entry(file)["lang"]
    return {"mixed": "chi_sim+eng", "none": None}.get(lang, lang)


def pages_of(file: str) -> list[Image.Image]:
    """The file as the service reads it: a decoded image, or each rendered PDF page."""
    data = corpus.data(file)
    try:
        if not pdf.is_pdf(data):
            return [images.decode(data).image]
        with pdf.opened(data) as document:
            return list(pdf.pages(document))
    except InvalidInput as exc:
        pytest.skip(f"the service refuses {file}: {exc}")


@pytest.fixture(scope="module")
def page() -> Image.Image:
    """A page of fourteen long lines, drawn upright."""
    return render(english_lines(14, seed=5, words=8), size=28)


def turned(image: Image.Image, clockwise: int) -> Image.Image:
    return orientation.turn(image, clockwise)


def tilted(image: Image.Image, counter_clockwise: float, paper: str = "white") -> Image.Image:
    """The page as a scanner skews it: lines rising to the right for a positive angle."""
    return image.rotate(counter_clockwise, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=paper)


@pytest.mark.parametrize("file", sorted(TURNED))
def test_turned_corpus_pages_get_their_exact_rotation(file):
    assert [orientation.detect(image).rotation for image in pages_of(file)] == TURNED[file]


@pytest.mark.parametrize("file", [f for f in corpus_files() if f not in TURNED])
def test_no_upright_corpus_page_is_turned(file):
    """A false turn reads worse than none: every other image and page of the corpus (photos,
    crops, captchas, barcodes, tables; the EXIF-turned JPEGs once decoded) keeps rotation 0,
    the small ones OSD sees too little in also when read both ways in their language."""
    found = [orientation.detect(image, tesseract_lang(file)) for image in pages_of(file)]
    assert [o.rotation for o in found] == [0] * len(found), found


@pytest.mark.parametrize("clockwise", [90, 180, 270])
def test_a_page_turned_here_gets_the_turn_back(page, clockwise):
    found = orientation.detect(turned(page, clockwise))
    assert found.rotation == (360 - clockwise) % 360
    assert found.script == "Latin"
    assert found.confidence >= orientation.MIN_CONFIDENCE


def test_upright_undoes_a_quarter_turn_pixel_for_pixel(page):
    sideways = turned(page, 90)
    back = orientation.upright(sideways, orientation.detect(sideways))
    assert ImageChops.difference(back, page).getbbox() is None


@pytest.mark.parametrize("angle", [-9.2, -4.4, -1.3, 0.7, 2.6, 6.1, 9.8])
def test_skew_is_measured_within_half_a_degree(page, angle):
    found = orientation.detect(tilted(page, angle))
    assert found.rotation == 0
    assert abs(found.skew - angle) <= 0.5
    assert found.skew == round(found.skew, 1)


def test_a_turned_and_skewed_page_is_brought_level(page):
    found = orientation.detect(turned(tilted(page, 3.4), 270))
    assert found.rotation == 90
    assert abs(found.skew - 3.4) <= 0.5
    level = orientation.upright(turned(tilted(page, 3.4), 270), found)
    assert abs(orientation.measure_skew(level)) <= 0.5


@pytest.mark.parametrize("file", sorted(SKEWED))
def test_skewed_corpus_pages_are_measured_within_half_a_degree(file):
    (image,) = pages_of(file)
    found = orientation.detect(image)
    assert (found.rotation, abs(found.skew - SKEWED[file]) <= 0.5) == (0, True), found


def test_light_print_on_dark_is_levelled_on_dark():
    """A dark screenshot's skew is measured on its light print, and its corners stay dark
    (white corners would read as extra shapes)."""
    dark = tilted(
        Image.eval(render(english_lines(14, seed=6, words=8), size=28), lambda v: 255 - v), 5.0, "black"
    )
    found = orientation.detect(dark)
    assert abs(found.skew - 5.0) <= 0.5
    level = orientation.upright(dark, found)
    assert level.getpixel((0, 0)) == (0, 0, 0)
    assert level.getpixel((level.width - 1, level.height - 1)) == (0, 0, 0)


@pytest.mark.parametrize(
    "image",
    [Image.new("RGB", (300, 200), "white"), Image.new("RGB", (40, 20), "black")],
    ids=["blank", "tiny-black"],
)
def test_a_page_with_nothing_on_it_is_left_alone(image):
    assert orientation.detect(image) == Orientation(0, 0.0, None, 0.0)
    assert orientation.upright(image, orientation.detect(image)) is image


@pytest.mark.parametrize("angle", [0.0, 3.0])
def test_a_single_word_is_not_deskewed_by_a_guess(angle):
    """One word gives a broad sharpness peak: whatever angle tops it, none is applied."""
    assert orientation.measure_skew(tilted(render(["invoice"], size=30), angle)) == 0.0


def test_without_the_osd_pack_pages_keep_their_turn_and_are_still_deskewed(page, monkeypatch, tmp_path):
    (tmp_path / "eng.traineddata").write_bytes(b"")  # a tessdata folder without osd
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    found = orientation.detect(turned(tilted(page, 2.0), 180))
    assert (found.rotation, found.script, found.confidence) == (0, None, 0.0)
    assert abs(found.skew - 2.0) <= 0.5  # a half turn leaves the lines' slope as it was


@pytest.mark.parametrize(
    "file",
    [
        "files/ocrmypdf/crom.png",
        "files/pytesseract/test_la.png",
        "files/tesseractjs/escape_chars.png",
        "files/cnocr/hybrid.png",
        "files/paddleocr/imgs_words_en_word_308.png",
        "files/tesseractjs/chinese.png",
    ],
)
def test_a_corpus_line_turned_over_is_turned_back(file):
    """Too little for OSD: the line reads far better one way up than the other."""
    (image,) = pages_of(file)
    found = orientation.detect(turned(image, 180), tesseract_lang(file))
    assert (found.rotation, found.script) == (180, None)
    assert found.confidence >= orientation.LINE_MARGIN


def test_a_line_drawn_upside_down_is_read_both_ways_only_with_a_language():
    line = turned(render(["shipping account balance receipt"], size=30), 180)
    assert orientation.detect(line, "eng").rotation == 180
    assert orientation.detect(line).rotation == 0  # no language: OSD alone, which saw too little
    assert orientation.detect(line, "xyz").rotation == 0  # no such pack
