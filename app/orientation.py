"""Which way up a page is and how far it is skewed, so every engine reads it upright (issue 18).

The quarter turn comes from Tesseract's orientation and script detection (OSD, osd.traineddata),
kept loaded like the engine's readers. Its confidence is the margin of the best orientation over
the next: on the shared corpus, turned and not, every wrong answer had a margin under 2.4, so a
turn is only made at MIN_CONFIDENCE or above (a page turned wrongly reads worse than one left
alone). OSD reads the page at its own size: shrunk to 1500 px it named a 300 dpi page of small
print upside down with a margin of 13.

The skew is the angle whose projection of the ink onto the vertical axis is sharpest (text lines
give tall narrow peaks), searched within ±MAX_SKEW on a downscale of the turned page. It is kept
only when the sharpness falls steeply a degree either side (SKEW_PEAK): a page of lines has one
narrow peak, while a word, a single line, a photo or a barcode gives a broad one whose top is a
guess, and such an image is not turned by a guessed angle.

Engines read the page upright; their boxes are mapped back (to_source) into the pixels of the
image as sent, by inverting exactly what `upright` did.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from app.engines import tesseract_lib
from app.engines.base import Line, Point
from app.errors import EngineFailed, EngineTimeout

MIN_CONFIDENCE = 5.0  # OSD's margin needed to turn a page (wrong answers: at most 2.33)
OSD_MAX_SIDE = 3500  # larger pages are shrunk to this for OSD (a 300 dpi A4 is 3508 px)
# A line upside down: turned when its mean word confidence read upside down beats its upright
# reading by this many points. Upright corpus crops and captchas beat their own flip by -41 to
# +96 (a captcha, "aoaiq", read 41 points better upside down); real text turned over, by 10-96.
LINE_MARGIN = 50.0
LINE_MAX_PIXELS = 300_000  # larger images OSD finds nothing in are photos: not read twice
LINE_TIMEOUT = 5.0  # seconds per reading
MAX_SKEW = 10.0  # degrees either way
SKEW_SIDE = 1200  # the long side of the downscale the skew is measured on
# A degree off the best angle, the sharpness of a page of lines falls to 0.03-0.22 of its peak;
# a word, a single line, a photo or a barcode falls to 0.33-0.94 (any angle there is a guess).
SKEW_PEAK = 0.3
MAX_SKEW_POINTS = 60_000  # ink pixels sampled for the projections (seeded: repeatable)
MIN_INK_PIXELS = 200  # fewer dark pixels than this in the downscale: nothing to level
TURNS = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


@dataclass(frozen=True)
class Orientation:
    """How to bring a page upright: turn it `rotation` degrees clockwise, then `skew` degrees
    clockwise (negative: counter-clockwise) so its lines are level."""

    rotation: int  # 0, 90, 180 or 270
    skew: float  # degrees, rounded to 0.1, within ±MAX_SKEW
    script: str | None  # as OSD names it ("Latin", "Han", ...); None when OSD saw too little
    # OSD's margin for `rotation` over the next best orientation; for a line read both ways, how
    # many points its mean word confidence at `rotation` beats the other (negative: it lost, by
    # less than LINE_MARGIN); 0.0 when neither looked.
    confidence: float
    script_confidence: float = 0.0  # OSD's for `script` (see registry.by_content)

    @property
    def is_upright(self) -> bool:
        return self.rotation == 0 and self.skew == 0.0


UPRIGHT = Orientation(0, 0.0, None, 0.0)  # a page read as it came


# OSD and the languages lines are read in, each kept loaded (osd costs ~12 MB).
_readers = tesseract_lib.Readers()


def detect(image: Image.Image, lang: str | None = None) -> Orientation:
    """The page's orientation and skew. A page OSD is unsure of keeps rotation 0. Given the
    Tesseract languages it is written in (e.g. "eng", "chi_sim+eng"), a small image OSD finds
    too little in (a line, a word) is read upright and upside down, and turned when upside
    down reads far better (LINE_MARGIN); sideways lines are not looked for."""
    found = _osd(image)
    rotation, script, confidence, script_confidence = 0, None, 0.0, 0.0
    if found is not None:
        script, confidence = found["script_name"], round(float(found["orient_conf"]), 2)
        script_confidence = round(float(found["script_conf"]), 2)
        if confidence >= MIN_CONFIDENCE:
            rotation = (360 - int(found["orient_deg"])) % 360
    elif lang and image.width * image.height <= LINE_MAX_PIXELS:
        rotation, confidence = _line_turn(image, lang)
    skew = measure_skew(turn(_downscale(image, SKEW_SIDE), rotation))
    return Orientation(rotation, skew, script, confidence, script_confidence)


def upright(image: Image.Image, orientation: Orientation) -> Image.Image:
    """The page turned by `orientation`: exact quarter turns, then the deskew on the expanded
    canvas filled with the page's own background (its border's median colour)."""
    turned = turn(image, orientation.rotation)
    if not orientation.skew:
        return turned
    return turned.rotate(
        -orientation.skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=_background(turned)
    )


def turn(image: Image.Image, rotation: int) -> Image.Image:
    """The image turned `rotation` degrees clockwise (a lossless transpose)."""
    return image.transpose(TURNS[rotation]) if rotation else image


def to_source(box: list[Point], orientation: Orientation, size: tuple[int, int]) -> list[Point]:
    """A box found in `upright(image, orientation)`, in the pixels of `image` (`size`: its width,
    height). Corners keep their order, so the box still starts at the text's top-left as read
    (after a half turn, near the source's bottom-right). Rounded to 0.1 px."""
    turned_size = size if orientation.rotation in (0, 180) else (size[1], size[0])
    unlevel = _unlevel(orientation.skew, turned_size)
    return [
        [round(v, 1) + 0.0 for v in _unturn(*unlevel(x, y), orientation.rotation, size)]  # no -0.0
        for x, y in box
    ]


def lines_to_source(lines: list[Line], orientation: Orientation, size: tuple[int, int]) -> list[Line]:
    """Lines read from the upright page with their boxes in the source image's pixels; the
    same objects when the page was read as it came."""
    if orientation.is_upright:
        return lines
    return [replace(line, box=to_source(line.box, orientation, size)) for line in lines]


def _unlevel(skew: float, size: tuple[int, int]) -> Callable[[float, float], tuple[float, float]]:
    """A point of `turned.rotate(-skew, expand=True)` (what `upright` does to a turned image of
    `size`) back in `turned`: PIL's own inverse matrix, built as PIL builds it (about the
    input's centre; the canvas grown to the rotated corners' whole-pixel bounds, centred on the
    turned image) so the canvas size and offset match to the last bit."""
    if not skew:
        return lambda x, y: (x, y)
    theta = -math.radians(-skew % 360.0)
    cos, sin = round(math.cos(theta), 15), round(math.sin(theta), 15)
    w, h = size
    a, b, d, e = cos, sin, -sin, cos
    c = a * (-w / 2) + b * (-h / 2) + w / 2
    f = d * (-w / 2) + e * (-h / 2) + h / 2
    xs, ys = zip(
        *[(a * x + b * y + c, d * x + e * y + f) for x, y in ((0, 0), (w, 0), (w, h), (0, h))], strict=True
    )
    grown_w = math.ceil(max(xs)) - math.floor(min(xs))
    grown_h = math.ceil(max(ys)) - math.floor(min(ys))
    ox, oy = -(grown_w - w) / 2.0, -(grown_h - h) / 2.0  # the expanded canvas's offset
    c, f = a * ox + b * oy + c, d * ox + e * oy + f
    return lambda x, y: (a * x + b * y + c, d * x + e * y + f)


def _unturn(x: float, y: float, rotation: int, size: tuple[int, int]) -> tuple[float, float]:
    """A point of `turn(image, rotation)` back in `image` of `size` (pixel edges, not centres)."""
    w, h = size
    if rotation == 90:  # turned clockwise: the source's left edge became the top
        return y, h - x
    if rotation == 180:
        return w - x, h - y
    if rotation == 270:
        return w - y, x
    return x, y


def measure_skew(image: Image.Image) -> float:
    """The clockwise turn, in degrees rounded to 0.1, that levels the image's text lines; 0.0
    when no angle within ±MAX_SKEW gives a sharp peak."""
    points = _ink_points(image)
    if points is None:
        return 0.0
    coarse = np.arange(-MAX_SKEW, MAX_SKEW + 0.01, 0.5)
    best = float(coarse[int(np.argmax([_sharpness(points, angle) for angle in coarse]))])
    fine = np.arange(best - 0.5, best + 0.51, 0.05)
    best = float(fine[int(np.argmax([_sharpness(points, angle) for angle in fine]))])
    peak = _sharpness(points, best)
    beside = (_sharpness(points, best - 1) + _sharpness(points, best + 1)) / 2
    if beside > SKEW_PEAK * peak or abs(best) > MAX_SKEW:
        return 0.0
    return round(best, 1) + 0.0  # + 0.0: no -0.0


def _line_turn(image: Image.Image, lang: str) -> tuple[int, float]:
    """(180, margin) when the image read upside down has a mean word confidence LINE_MARGIN
    points or more above its upright reading, else (0, margin); (0, 0.0) for a language not
    installed or a reading that fails."""
    path = tesseract_lib.datapath()
    if not path or not set(lang.split("+")) <= set(tesseract_lib.languages(path)):
        return 0, 0.0
    try:
        with _readers.reader(path, lang) as api:
            upright_score, flipped_score = (_mean_confidence(api, turn(image, r)) for r in (0, 180))
    except (EngineFailed, EngineTimeout):
        return 0, 0.0
    margin = round(flipped_score - upright_score, 2)
    return (180, margin) if margin >= LINE_MARGIN else (0, -margin + 0.0)  # + 0.0: no -0.0


def _mean_confidence(api, image: Image.Image) -> float:
    """Tesseract's word confidence (0-100) averaged over the characters read; 0.0 for none."""
    words = tesseract_lib.parse_tsv(
        tesseract_lib.read(api, image, outputs=("tsv",), timeout=LINE_TIMEOUT)["tsv"]
    )
    read = [
        (conf, len(text.strip()))
        for level, conf, text in zip(words["level"], words["conf"], words["text"], strict=True)
        if level == 5 and conf >= 0 and text.strip()
    ]
    characters = sum(count for _, count in read)
    return sum(conf * count for conf, count in read) / characters if characters else 0.0


def _osd(image: Image.Image) -> dict | None:
    path = tesseract_lib.datapath()
    if not tesseract_lib.has_osd(path):
        return None
    with _readers.reader(path, "osd") as api:
        return tesseract_lib.detect_orientation(api, _downscale(image.convert("L"), OSD_MAX_SIDE))


def _downscale(image: Image.Image, side: int) -> Image.Image:
    factor = max(image.size) / side
    if factor <= 1:
        return image
    return image.resize(
        (max(1, round(image.width / factor)), max(1, round(image.height / factor))), Image.Resampling.BOX
    )


def _ink_points(image: Image.Image) -> np.ndarray | None:
    """Coordinates (x, y, centred) of the pixels on the minority side of an Otsu threshold:
    dark print on light paper, or light print on dark."""
    grey = np.asarray(image.convert("L"))
    threshold = _otsu(grey)
    ink = grey <= threshold
    if ink.mean() > 0.5:
        ink = ~ink
    ys, xs = np.nonzero(ink)
    if len(xs) < MIN_INK_PIXELS:
        return None
    if len(xs) > MAX_SKEW_POINTS:  # a random sample: an even stride over filled areas is a
        keep = np.random.default_rng(0).choice(len(xs), MAX_SKEW_POINTS, replace=False)  # lattice
        xs, ys = xs[keep], ys[keep]  # whose rows line up at slopes like 1/6 (9.5°)
    return np.stack([xs - grey.shape[1] / 2, ys - grey.shape[0] / 2]).astype(np.float64)


def _otsu(grey: np.ndarray) -> int:
    histogram = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    weight = np.cumsum(histogram)
    total = weight[-1]
    mean = np.cumsum(histogram * levels)
    between = (mean[-1] * weight / total - mean) ** 2 / np.maximum(weight * (total - weight), 1)
    return int(np.argmax(between))


def _sharpness(points: np.ndarray, angle: float) -> float:
    """How sharply the ink's row profile steps with lines sloping up `angle` degrees to the
    right: the sum of squared differences of neighbouring rows, largest when each line's edges
    fall in single rows. (Differences, not counts: a black scanner border adds the same ink to
    every row and would flatten a sum of squares.)"""
    xs, ys = points
    rows = ys + xs * np.tan(np.radians(angle))
    steps = np.diff(np.bincount((rows - rows.min()).astype(np.int64)))
    return float(np.dot(steps, steps))


def _background(image: Image.Image) -> tuple[int, ...]:
    pixels = np.asarray(image.convert("RGB"))
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))
