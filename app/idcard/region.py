"""Where the card is in a photo, and the warp that brings it upright at a canonical size.

The card is found from its edges: Canny edges (and, for a light card on a darker ground, an
Otsu threshold) give contours; the largest whose convex hull is close to a quadrilateral of the
ID-1 aspect (85.6 x 54 mm, 1.585) is the card. When none is, the whole image is taken as the
card (a photo cropped to the card has no edge left to find).

Corners are kept clockwise from the one whose top edge points most nearly right; `turn` k
names which of them is the card's top-left when read upright (0: as it lies, 1: the image's
top-right one, i.e. the card lies a quarter turn clockwise, ...).
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

WIDTH, HEIGHT = 856, 540  # canonical card: 10 px a millimetre
ASPECT = WIDTH / HEIGHT
MIN_ASPECT, MAX_ASPECT = 1.45, 1.75  # a perspective view shortens one side
MIN_SHARE = 0.08  # of the image's area: smaller quadrilaterals are print on the card, not the card
MIN_FILL = 0.85  # contour area / quadrilateral area
MIN_PARALLEL = 0.85  # the shorter of two opposite sides / the longer
MIN_ON_SIDES = 0.9  # of the contour's length along the quadrilateral's sides
MAX_COSINE = 0.2  # of each corner's angle: within about 78-102 degrees
# openings of the cut images (pixels of the downscale): the larger one takes off what touches the
# card (a cup's rim) at the cost of rounding its corners by a few pixels
OPENINGS = (5, 17)
FAINT_EDGES = ((20, 60), (10, 30))  # Canny thresholds for the colour channels' edges
THRESHOLDS = (90, 120, 150, 175, 200, 220)  # levels of grey and paleness cut at
DETECT_SIDE = 720  # long side of the downscale the edges are looked for in


@dataclass(frozen=True)
class Placement:
    """The card's corners in the source image, clockwise from the one nearest to `top-left`
    as the image shows it, and whether they came from its edges or are the image's own."""

    corners: np.ndarray  # (4, 2) float32
    found: bool


def find(rgb: np.ndarray) -> Placement:
    """The card's corners in `rgb` (source pixels)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    small = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    best = _best_quad(small)
    if best is None:
        whole = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
        return Placement(whole, False)
    return Placement(clockwise(best / scale), True)


def _best_quad(small: np.ndarray) -> np.ndarray | None:
    """The largest card-shaped quadrilateral among the contours of several binary images: the
    dilated Canny edges, and the grey and the paleness (value less saturation) each cut at
    THRESHOLDS levels and opened, so a card touching a light patch of the ground comes apart
    from it at one level or another (after OpenCV's squares.cpp sample)."""
    gray = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    pale = cv2.GaussianBlur(cv2.subtract(hsv[:, :, 2], hsv[:, :, 1]), (5, 5), 0)
    masks = [cv2.dilate(cv2.Canny(gray, 40, 120), np.ones((3, 3), np.uint8), iterations=2)]
    # a card against something nearly as light (a white cup) differs from it in colour: edges
    # of each channel, at low thresholds
    channels = [cv2.GaussianBlur(small[:, :, index], (3, 3), 0) for index in range(3)]
    for low, high in FAINT_EDGES:
        edges = np.zeros(gray.shape, np.uint8)
        for channel in channels:
            edges |= cv2.Canny(channel, low, high)
        masks.append(cv2.dilate(edges, np.ones((3, 3), np.uint8)))
        masks.append(cv2.dilate(edges, np.ones((3, 3), np.uint8), iterations=4))  # bridges short gaps
    for channel in (gray, pale):
        for level in THRESHOLDS:
            cut = (channel >= level).astype(np.uint8) * 255
            for size in OPENINGS:
                masks.append(cv2.morphologyEx(cut, cv2.MORPH_OPEN, np.ones((size, size), np.uint8)))
    best, best_area = None, 0.0
    for mask in masks:
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            quad = _quad(contour, gray.shape)
            if quad is not None:
                quad_area = cv2.contourArea(quad)
                if quad_area > best_area:
                    best, best_area = quad, quad_area
    return best


def _quad(contour: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """The contour's card-shaped quadrilateral, or None: four corners near right angles,
    opposite sides alike, the ID-1 aspect, clear of the image's border."""
    height, width = shape
    x, y, w, h = cv2.boundingRect(contour)
    if x <= 1 or y <= 1 or x + w >= width - 1 or y + h >= height - 1:
        return None
    hull = cv2.convexHull(contour)
    hull_area = cv2.contourArea(hull)
    if hull_area < MIN_SHARE * width * height:
        return None
    approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
    if len(approx) != 4:
        return None
    quad = approx.reshape(4, 2).astype(np.float32)
    if cv2.contourArea(contour) / cv2.contourArea(quad) < MIN_FILL:
        return None
    sides = [float(np.linalg.norm(quad[i] - quad[(i + 1) % 4])) for i in range(4)]
    if min(sides) <= 0 or min(sides[0], sides[2]) / max(sides[0], sides[2]) < MIN_PARALLEL:
        return None
    if min(sides[1], sides[3]) / max(sides[1], sides[3]) < MIN_PARALLEL:
        return None
    for i in range(4):
        a, b = quad[i - 1] - quad[i], quad[(i + 1) % 4] - quad[i]
        if abs(float(np.dot(a, b))) / (np.linalg.norm(a) * np.linalg.norm(b)) > MAX_COSINE:
            return None
    long_side, short_side = (sides[0] + sides[2]) / 2, (sides[1] + sides[3]) / 2
    aspect = max(long_side, short_side) / min(long_side, short_side)
    if not MIN_ASPECT <= aspect <= MAX_ASPECT:
        return None
    sharp = _refine(quad, contour)
    return sharp if _on_sides(contour, sharp, short_side) >= MIN_ON_SIDES else None


def _on_sides(contour: np.ndarray, quad: np.ndarray, short_side: float) -> float:
    """The share of the contour's length that runs along the quadrilateral's sides: nearly all
    of a card's; a card merged with a patch of the ground beside it strays off them."""
    points = contour.reshape(-1, 2).astype(np.float32)
    steps = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
    near = 0.02 * short_side + 2
    distance = np.array([abs(cv2.pointPolygonTest(quad, (float(x), float(y)), True)) for x, y in points])
    on = (distance <= near) & (np.roll(distance, -1) <= near)
    return float(steps[on].sum() / max(steps.sum(), 1e-6))


def _refine(quad: np.ndarray, contour: np.ndarray) -> np.ndarray:
    """Sharp corners: a line fitted to the contour along the middle of each side, and the
    lines' crossings (approxPolyDP's vertices lie on the rounded corners, inside the card)."""
    points = contour.reshape(-1, 2).astype(np.float32)
    lines = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        direction = (b - a) / np.linalg.norm(b - a)
        along = (points - a) @ direction
        across = np.abs((points - a) @ np.array([-direction[1], direction[0]]))
        length = float(np.linalg.norm(b - a))
        near = points[(along > 0.15 * length) & (along < 0.85 * length) & (across < 0.03 * length + 3)]
        if len(near) < 2:
            return quad
        vx, vy, x0, y0 = cv2.fitLine(near, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0]), np.array([vx, vy])))
    corners = []
    for i in range(4):
        (p, u), (q, v) = lines[i - 1], lines[i]
        matrix = np.array([u, -v]).T
        if abs(np.linalg.det(matrix)) < 1e-6:
            return quad
        t = np.linalg.solve(matrix, q - p)[0]
        corners.append(p + t * u)
    refined = np.array(corners, np.float32)
    return (
        refined if float(np.abs(refined - quad).max()) < 0.1 * max(1.0, float(np.ptp(quad[:, 0]))) else quad
    )


def clockwise(quad: np.ndarray) -> np.ndarray:
    """The corners clockwise (on screen: y down), starting at the corner whose edge to the
    next points most nearly right."""
    center = quad.mean(axis=0)
    angles = np.arctan2(quad[:, 1] - center[1], quad[:, 0] - center[0])
    ordered = quad[np.argsort(angles)]  # increasing angle with y down is clockwise on screen
    headings = [_heading(ordered[i], ordered[(i + 1) % 4]) for i in range(4)]
    start = int(np.argmin([abs(heading) for heading in headings]))
    return np.roll(ordered, -start, axis=0).astype(np.float32)


def _heading(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees clockwise from pointing right, in (-180, 180]."""
    return math.degrees(math.atan2(float(b[1] - a[1]), float(b[0] - a[0])))


def turns(corners: np.ndarray) -> tuple[int, int]:
    """The two turns that make the card landscape: its long sides horizontal."""
    first = float(np.linalg.norm(corners[1] - corners[0]) + np.linalg.norm(corners[3] - corners[2]))
    second = float(np.linalg.norm(corners[2] - corners[1]) + np.linalg.norm(corners[0] - corners[3]))
    return (0, 2) if first >= second else (1, 3)


def upright_corners(corners: np.ndarray, turn: int) -> np.ndarray:
    """The corners as the upright card's top-left, top-right, bottom-right, bottom-left."""
    return np.roll(corners, -turn, axis=0)


def rotation_and_skew(corners: np.ndarray, turn: int) -> tuple[int, float]:
    """(quarter turns in degrees clockwise, residual degrees clockwise) that bring the card
    upright: the card's top edge lies at -(rotation + skew) degrees clockwise in the image."""
    top_left, top_right = upright_corners(corners, turn)[:2]
    lying = _heading(top_left, top_right)  # degrees clockwise the card lies turned
    rotation = (-90 * turn) % 360
    skew = (-lying - rotation + 180) % 360 - 180
    return rotation, round(skew, 2)


def homography(corners: np.ndarray, turn: int) -> np.ndarray:
    """The 3x3 map from source pixels to the canonical upright card."""
    target = np.array([[0, 0], [WIDTH, 0], [WIDTH, HEIGHT], [0, HEIGHT]], np.float32)
    return cv2.getPerspectiveTransform(upright_corners(corners, turn).astype(np.float32), target)


def warp(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The canonical upright card. A card much larger in the source (a phone's photo) is first
    shrunk by area averaging, as a perspective warp alone would alias its print."""
    corners = to_source(np.array([[0, 0], [WIDTH, 0], [WIDTH, HEIGHT], [0, HEIGHT]], np.float64), matrix)
    across = np.linalg.norm(corners[1] - corners[0]) + np.linalg.norm(corners[2] - corners[3])
    factor = float(across) / 2 / WIDTH
    if factor > 1.5:
        height, width = rgb.shape[:2]
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        stretch = np.diag([width / size[0], height / size[1], 1.0])  # small pixels -> source pixels
        rgb, matrix = small, matrix @ stretch
    return cv2.warpPerspective(
        rgb, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def to_source(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Canonical card points (N, 2) mapped back into the source image."""
    inverse = np.linalg.inv(matrix)
    return cv2.perspectiveTransform(np.asarray(points, np.float64).reshape(-1, 1, 2), inverse).reshape(-1, 2)
