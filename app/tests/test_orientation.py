"""app.orientation: pages turned by quarter turns and small angles come back upright, with the
real Tesseract OSD; and no upright page of the shared corpus is ever turned."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image, ImageChops, ImageDraw

from app import images, orientation, pdf
from app.engines.base import Line, full_box
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


# Boxes read upright, mapped back into the image as sent (to_source). Black rectangles at known
# places (pixel edges x0, y0, x1, y1) on a page of odd size, so half pixels of the centre count.
SOURCE_SIZE = (411, 287)
RECTANGLES = [(40, 30, 131, 75), (250, 60, 370, 101), (90, 180, 200, 251)]
TURNS_AND_SKEWS = [(r, s) for r in (0, 90, 180, 270) for s in (0.0, 3.5, -7.2)]


def corners_of(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def rectangles_page() -> Image.Image:
    page = Image.new("RGB", SOURCE_SIZE, "white")
    draw = ImageDraw.Draw(page)
    for x0, y0, x1, y1 in RECTANGLES:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill="black")  # PIL's rectangle holds x1, y1
    return page


def inked_rectangles(image: Image.Image) -> list[np.ndarray]:
    """The corners (clockwise from top-left) of each tilted rectangle in `image`, found from the
    ink alone: its darkness-weighted centroid and second moments give its centre, axes and
    sides (a solid a-wide side has variance a²/12), to a fraction of a pixel."""
    grey = np.asarray(image.convert("L"))
    count, labels = cv2.connectedComponents((grey < 250).astype(np.uint8))
    found = []
    for label in range(1, count):
        ys, xs = np.nonzero(labels == label)
        weight = (255.0 - grey[ys, xs]) / 255.0
        points = np.stack([xs + 0.5, ys + 0.5], axis=1)  # pixel centres
        centre = np.average(points, axis=0, weights=weight)
        variances, axes = np.linalg.eigh(np.cov((points - centre).T, aweights=weight))
        half = np.sqrt(3 * variances)
        corners = np.array(
            [
                centre + i * half[0] * axes[:, 0] + j * half[1] * axes[:, 1]
                for i, j in ((-1, -1), (-1, 1), (1, 1), (1, -1))
            ]
        )
        corners = corners[np.argsort(np.arctan2(*(corners - centre)[:, ::-1].T))]  # clockwise (y down)
        found.append(np.roll(corners, -int(np.argmin(corners.sum(axis=1))), axis=0))
    return found


@pytest.mark.parametrize(("rotation", "skew"), TURNS_AND_SKEWS)
def test_boxes_found_upright_map_back_onto_the_source_rectangles(rotation, skew):
    """Each rectangle's corners as seen on the upright page land within 0.3 px of where they are
    drawn, in the order read: after a quarter turn clockwise the upright top-left is the source's
    bottom-left, after a half turn its bottom-right."""
    turned = Orientation(rotation, skew, None, 10.0)
    found = inked_rectangles(orientation.upright(rectangles_page(), turned))
    assert len(found) == len(RECTANGLES)
    for found_box in found:
        box = np.array(orientation.to_source(found_box.tolist(), turned, SOURCE_SIZE))
        rectangle = min(
            RECTANGLES, key=lambda r: np.linalg.norm(box.mean(axis=0) - np.reshape(r, (2, 2)).mean(axis=0))
        )
        expected = np.roll(corners_of(*rectangle), rotation // 90, axis=0)
        assert np.abs(box - expected).max() <= 0.3, (box, expected)  # measured: under 0.05
        assert np.array_equal(box, np.round(box, 1))


@pytest.mark.parametrize("size", [SOURCE_SIZE, (64, 31), (500, 333)])
@pytest.mark.parametrize(("rotation", "skew"), TURNS_AND_SKEWS)
def test_the_upright_canvas_maps_back_around_the_source(size, rotation, skew):
    """The expanded canvas, mapped back, is a rectangle of its own size centred on the source
    (PIL centres the grown canvas on the page) whose edges pass through the source's corners
    (the canvas is the rotated page's bounds, grown to whole pixels: under a pixel each side)."""
    turned = Orientation(rotation, skew, None, 10.0)
    width, height = orientation.upright(Image.new("RGB", size, "white"), turned).size
    canvas = np.array(orientation.to_source(full_box(width, height), turned, size))
    sides = np.linalg.norm(canvas - np.roll(canvas, -1, axis=0), axis=1)
    assert np.abs(sides - [width, height, width, height]).max() <= 0.15
    assert np.abs(canvas.mean(axis=0) - np.array(size) / 2).max() <= 0.1
    inward = [
        (b - a)[::-1] * [-1, 1] / np.linalg.norm(b - a)
        for a, b in zip(canvas, np.roll(canvas, -1, axis=0), strict=True)
    ]
    for corner in corners_of(0, 0, *size):
        inside = [float(np.dot(corner - a, normal)) for a, normal in zip(canvas, inward, strict=True)]
        assert -0.1 <= min(inside) <= 1.5, (corner, inside)
    if not skew:
        assert canvas.tolist() == np.roll(corners_of(0, 0, *size), rotation // 90, axis=0).tolist()


def test_lines_keep_their_text_and_order_with_boxes_in_the_source():
    lines = [Line("total", [[10.0, 20.0], [60.0, 20.0], [60.0, 40.0], [10.0, 40.0]], 0.9, page=2)]
    turned = Orientation(180, 0.0, None, 10.0)
    (back,) = orientation.lines_to_source(lines, turned, (100, 50))
    assert back == Line("total", [[90.0, 30.0], [40.0, 30.0], [40.0, 10.0], [90.0, 10.0]], 0.9, page=2)
    assert orientation.lines_to_source(lines, orientation.UPRIGHT, (100, 50)) is lines
