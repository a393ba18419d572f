"""Reading order and paragraphs for any engine's lines: a recursive XY-cut over line boxes.

Engines return lines in their own order: RapidOCR sorts by the top edge, so on a two-column
page it interleaves the columns line by line. `arrange` puts them column by column, top to
bottom, a heading spanning the columns before them, the cells of one row left to right, and
groups the lines into blocks (paragraphs). A single-column page keeps its top-to-bottom order.

How: boxes are first turned upright by the page's median text angle (a photographed page is
slightly rotated). A region is cut at its widest whitespace gap: between columns (a vertical
gap at least COLUMN_GAP line heights wide, running the region's full height) or between rows
(a horizontal gap). Two sides of a vertical gap only count as columns when their lines stand
side by side, and not when those lines sit on shared rows like table cells (then rows are cut
first and each row reads left to right) unless both sides are wrapped text. Whatever no cut
separates is read row by row. Blocks are runs of lines within one column that follow each
other at the usual line spacing, of one size, not after a short line and a first-line
indent. Pure numpy: a 500-line page takes about 10 ms.
"""

import bisect
import itertools
import math
from dataclasses import dataclass

import numpy as np

from app.engines.base import Line, Point

COLUMN_GAP = 0.5  # the narrowest gutter between columns, in median line heights
SECTION_GAP = 1.0  # the narrowest gap between rows that is cut before a wider gutter
SHRINK = 0.1  # of its height trimmed off each side of a line for row gaps (boxes touch)
SAME_ROW = 0.5  # two lines whose centres are closer than this x their height share a row
TABLE_ROW = 0.25  # ... and closer than this, they are cells of one table row
ALIGNED = 0.7  # the share of lines with a partner on the same row that makes a table
BESIDE = 0.5  # the share of lines level with one across the gap (trimmed boxes overlap) in columns
WRAPPED_WIDTH = 10.0  # a column of wrapped text is at least this many line heights wide
FULL = 0.7  # ... and WRAPPED_SHARE of its lines fill at least this share of its width
WRAPPED_SHARE = 0.6
SPACING = 1.25  # the widest step from row to row in a paragraph, in the group's usual step
PITCH = 1.7  # ... and in line heights for a group of two rows (no usual step to go by)
HEIGHT_RATIO = 1.3  # a line this much taller than its paragraph, or a paragraph this much
# taller than the lines after it (a heading), starts a new paragraph
AHEAD = 3  # lines whose median height is what follows a paragraph
INDENT = 0.5  # a first-line indent (line heights) after a short line starts a new paragraph
SHORT = 0.15  # a line ending this share of its paragraph's width before its right edge is short
MAX_DEPTH = 50  # row cuts one at a time this deep, then all at once
SKEW_MIN = math.radians(0.5)  # below this the page is taken as upright


@dataclass(frozen=True)
class Block:
    box: list[Point]  # four corners, clockwise from top-left, like Line.box
    lines: list[int]  # indexes into Layout.lines
    kind: str = "text"  # or "table": at least two of its rows hold more than one line


@dataclass(frozen=True)
class Layout:
    lines: list[Line]  # in reading order
    blocks: list[Block]


@dataclass(frozen=True)
class _Geometry:
    """Upright boxes of one page's lines (index i = line i)."""

    x0: np.ndarray
    x1: np.ndarray
    y0: np.ndarray  # of the box, upright
    y1: np.ndarray
    cy: np.ndarray  # the middle of the line's left edge: where a reader starts it (a long line
    # still turned a little, on a page whose halves are skewed apart, is off at its centre)
    h: np.ndarray  # the line's own height (its left and right edges), not its bounding box's
    unit: float  # the median line height
    angle: float  # radians the page's text is turned by


def arrange(lines: list[Line]) -> Layout:
    """The lines in reading order, grouped into blocks; lines of several PDF pages are
    arranged page by page, pages in their order."""
    ordered: list[Line] = []
    blocks: list[Block] = []
    for page in _pages(lines):
        layout = _arrange_page(page)
        blocks += [Block(b.box, [i + len(ordered) for i in b.lines], b.kind) for b in layout.blocks]
        ordered += layout.lines
    return Layout(ordered, blocks)


def text(layout: Layout, between_blocks: str = "\n") -> str:
    """The lines one per row; `between_blocks` is added after each block but the last (the
    default "\\n" alone keeps the text identical to joining the lines)."""
    if between_blocks == "\n":
        return "\n".join(line.text for line in layout.lines)
    return between_blocks.join(
        "\n".join(layout.lines[i].text for i in block.lines) for block in layout.blocks
    )


def _pages(lines: list[Line]) -> list[list[Line]]:
    pages: dict[int | None, list[Line]] = {}
    for line in lines:
        pages.setdefault(line.page, []).append(line)
    return list(pages.values())


def _arrange_page(lines: list[Line]) -> Layout:
    if not lines:
        return Layout([], [])
    geometry = _geometry(lines)
    groups, _ = _cut(geometry, np.arange(len(lines)))
    order = [i for group in groups for i in group]
    position = {line: n for n, line in enumerate(order)}
    blocks = [
        _block(geometry, [position[i] for i in members], members)
        for group in groups
        for members in _paragraphs(geometry, group)
    ]
    return Layout([lines[i] for i in order], blocks)


# ---- geometry ------------------------------------------------------------------------


def _geometry(lines: list[Line]) -> _Geometry:
    corners = np.array([line.box for line in lines], dtype=np.float64).reshape(len(lines), 4, 2)
    angle = _skew(corners)
    if angle:
        corners = corners @ _rotation(-angle).T
    left = np.linalg.norm(corners[:, 3] - corners[:, 0], axis=1)
    right = np.linalg.norm(corners[:, 2] - corners[:, 1], axis=1)
    h = (left + right) / 2
    y0, y1 = corners[:, :, 1].min(axis=1), corners[:, :, 1].max(axis=1)
    positive = h[h > 0]
    unit = float(np.median(positive)) if len(positive) else 1.0
    h = np.where(h > 0, h, unit)
    x0, x1 = corners[:, :, 0].min(axis=1), corners[:, :, 0].max(axis=1)
    return _Geometry(x0, x1, y0, y1, (corners[:, 0, 1] + corners[:, 3, 1]) / 2, h, unit, angle)


def _skew(corners: np.ndarray) -> float:
    """The median angle of the top edges of lines long enough to tell (0 when upright)."""
    top = corners[:, 1] - corners[:, 0]
    width = np.linalg.norm(top, axis=1)
    height = np.linalg.norm(corners[:, 3] - corners[:, 0], axis=1)
    long = width > 2 * height
    if not long.any():
        return 0.0
    angle = float(np.median(np.arctan2(top[long, 1], top[long, 0])))
    return angle if SKEW_MIN <= abs(angle) <= math.pi / 4 else 0.0


def _rotation(angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


# ---- the cut -------------------------------------------------------------------------


def _cut(g: _Geometry, idx: np.ndarray, depth: int = 0) -> tuple[list[list[int]], bool]:
    """(groups of line indexes in reading order, whether no column was cut inside).

    Rows are cut one gap at a time, widest first, since a gutter appears only once the rows
    across it are off; but row gaps that would win over any gutter inside are cut at once, and
    so are all of a region made of table rows alone (or, past MAX_DEPTH, of any region: a
    bound on the recursion)."""
    if _one_row(g, idx):
        return [sorted(idx.tolist(), key=lambda i: g.x0[i])], True
    bands, gaps = _bands(g, idx)
    widest_gutter = _widest_gutter(g, bands)
    if widest_gutter < COLUMN_GAP * g.unit:
        return [[i for band in bands for i in _rows(g, band)]], True
    sections = [k for k, gap in enumerate(gaps) if _rows_first(g, gap, widest_gutter)]
    if sections:
        return _stack(g, _split(bands, sections), depth)
    column, cells = _columns(g, idx)
    if column is not None and not any(_rows_first(g, gap, column[0]) for gap in gaps):
        left, _ = _cut(g, column[1], depth + 1)
        right, _ = _cut(g, column[2], depth + 1)
        return left + right, False
    if gaps:
        every = (cells and all(_one_row(g, band) for band in bands)) or depth >= MAX_DEPTH
        return _stack(g, _split(bands, list(range(len(gaps))) if every else [int(np.argmax(gaps))]), depth)
    return [_rows(g, idx)], True


def _one_row(g: _Geometry, idx: np.ndarray) -> bool:
    """Whether the lines sit on one row (a table's row once cut out: read left to right)."""
    return bool(np.all(np.abs(g.cy[idx] - g.cy[idx[0]]) < SAME_ROW * g.h[idx]))


def _rows_first(g: _Geometry, gap: float, gutter: float) -> bool:
    """Whether a gap between rows is cut before a gutter across it: when it is wider and a
    section's gap, not the spacing of lines that happen to share a baseline grid."""
    return gap > gutter and gap >= SECTION_GAP * g.unit


def _stack(g: _Geometry, pieces: list[np.ndarray], depth: int) -> tuple[list[list[int]], bool]:
    """Pieces above one another: consecutive pieces without columns make one group."""
    groups: list[list[int]] = []
    plain_run = False
    for piece in pieces:
        sub, plain = _cut(g, piece, depth + 1)
        if plain and plain_run:
            groups[-1] += sub[0]
        else:
            groups += sub
        plain_run = plain
    return groups, len(groups) == 1 and plain_run


def _split(bands: list[np.ndarray], after: list[int]) -> list[np.ndarray]:
    edges = [0, *(k + 1 for k in after), len(bands)]
    return [np.concatenate(bands[a:b]) for a, b in itertools.pairwise(edges)]


def _bands(g: _Geometry, idx: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """The region's rows of lines that no horizontal whitespace separates, top to bottom,
    and the gaps between them."""
    trim = SHRINK * g.h[idx]
    top, bottom = g.y0[idx] + trim, g.y1[idx] - trim
    order = np.argsort(top, kind="stable")
    top, reach = top[order], np.maximum.accumulate(bottom[order])
    gap = top[1:] - reach[:-1]
    breaks = np.flatnonzero(gap > 0)
    bands = np.split(idx[order], breaks + 1)
    return bands, [float(w) for w in gap[breaks]]


def _gaps(start: np.ndarray, end: np.ndarray, idx: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Whitespace runs across the interval projection: (width, indexes before, indexes after)."""
    order = np.argsort(start, kind="stable")
    first, reach = start[order], np.maximum.accumulate(end[order])
    gap = first[1:] - reach[:-1]
    return [(float(gap[k]), idx[order[: k + 1]], idx[order[k + 1 :]]) for k in np.flatnonzero(gap > 0)]


def _widest_gutter(g: _Geometry, bands: list[np.ndarray]) -> float:
    """The widest vertical gap inside any one band (no cut of the region can be wider): all
    bands at once, each shifted right of the one before so that one sweep keeps them apart."""
    band = np.repeat(np.arange(len(bands)), [len(b) for b in bands])
    idx = np.concatenate(bands)
    shift = band * (2 * float(g.x1.max() - g.x0.min()) + 1)
    start, end = g.x0[idx] + shift, g.x1[idx] + shift
    order = np.argsort(start, kind="stable")
    gap = start[order][1:] - np.maximum.accumulate(end[order])[:-1]
    inside = gap[band[order][1:] == band[order][:-1]]
    return float(inside.max()) if len(inside) else 0.0


def _columns(g: _Geometry, idx: np.ndarray) -> tuple[tuple[float, np.ndarray, np.ndarray] | None, bool]:
    """(the widest vertical gap whose sides are columns, or None; whether a wide gap only
    parted the cells of table rows)."""
    gaps = sorted(_gaps(g.x0[idx], g.x1[idx], idx), key=lambda gap: -gap[0])
    cells = False
    for width, left, right in gaps:
        if width < COLUMN_GAP * g.unit:
            break
        sides = _sides(g, left, right)
        if sides == "columns":
            return (width, left, right), cells
        cells = cells or sides == "cells"
    return None, cells


def _sides(g: _Geometry, left: np.ndarray, right: np.ndarray) -> str:
    """What two sides of a vertical gap are: "columns" when their lines stand side by side
    (most lines of one side level with a line of the other: not a staircase) and do not
    share rows like table cells, or do but both are wrapped text (a magazine's columns on one
    baseline grid); "cells" when they share rows; else "apart"."""
    few, many = (left, right) if len(left) <= len(right) else (right, left)
    offset = np.abs(g.cy[few][:, None] - g.cy[many][None, :])
    height = np.minimum(g.h[few][:, None], g.h[many][None, :])
    overlap = offset < (1 - 2 * SHRINK) * (g.h[few][:, None] + g.h[many][None, :]) / 2
    if np.mean(overlap.any(axis=1)) < BESIDE:
        return "apart"
    cells = offset < TABLE_ROW * height
    # One line beside a paragraph is a side note; beside one row of cells it is a cell.
    cells_beside = len(few) >= 2 or np.mean(cells.any(axis=0)) >= ALIGNED
    if not (cells_beside and np.mean(cells.any(axis=1)) >= ALIGNED):
        return "columns"
    return "columns" if _wrapped(g, left) and _wrapped(g, right) else "cells"


def _wrapped(g: _Geometry, idx: np.ndarray) -> bool:
    """Lines of running text: several, most of them filling a column many line heights wide
    (the cells of a table column vary in width)."""
    span = float(g.x1[idx].max() - g.x0[idx].min())
    full = np.mean(g.x1[idx] - g.x0[idx] >= FULL * span)
    return len(idx) >= 3 and span >= WRAPPED_WIDTH * g.unit and full >= WRAPPED_SHARE


def _rows(g: _Geometry, idx: np.ndarray) -> list[int]:
    """Lines no cut separates, row by row from the top, each row left to right."""
    return [i for row in _row_groups(g, idx) for i in row]


def _row_groups(g: _Geometry, idx: np.ndarray) -> list[list[int]]:
    rows: list[list[int]] = []
    anchor = 0.0
    for i in sorted(idx.tolist(), key=lambda i: g.cy[i]):
        if rows and g.cy[i] - anchor < SAME_ROW * g.h[i]:
            rows[-1].append(i)
        else:
            rows.append([i])
            anchor = g.cy[i]
    return [sorted(row, key=lambda i: g.x0[i]) for row in rows]


# ---- blocks --------------------------------------------------------------------------


@dataclass
class _Paragraph:
    """A paragraph being gathered: its lines, left and right edges, sorted line heights."""

    members: list[int]
    left: float
    right: float
    heights: list[float]

    def add(self, g: _Geometry, i: int) -> None:
        self.members.append(i)
        self.left, self.right = min(self.left, g.x0[i]), max(self.right, g.x1[i])
        bisect.insort(self.heights, float(g.h[i]))

    @property
    def height(self) -> float:
        return self.heights[len(self.heights) // 2]


def _paragraphs(g: _Geometry, group: list[int]) -> list[list[int]]:
    """Split a group (read in order) where a line does not continue the paragraph above it:
    on the same row, or the next row down no further than a paragraph's line spacing,
    overlapping the paragraph's width, of about its height, and not a first-line indent
    after a short line."""
    spacing = _line_spacing(g, group)
    paragraphs: list[_Paragraph] = []
    heights = g.h[group].tolist()
    for k, i in enumerate(group):
        next_ones = sorted(heights[k : k + AHEAD])
        ahead = next_ones[len(next_ones) // 2]
        if paragraphs and _continues(g, paragraphs[-1], i, spacing, ahead):
            paragraphs[-1].add(g, i)
        else:
            paragraphs.append(_Paragraph([i], float(g.x0[i]), float(g.x1[i]), [float(g.h[i])]))
    return [paragraph.members for paragraph in paragraphs]


def _line_spacing(g: _Geometry, group: list[int]) -> float:
    """The group's usual distance from one row to the next (0 for a single row): text set
    with wide leading (a screenshot's 1.8 line heights) is one paragraph, not one per line."""
    steps = np.diff(g.cy[group])
    steps = steps[steps >= SAME_ROW * g.unit]
    return float(np.median(steps)) if len(steps) else 0.0


def _continues(g: _Geometry, paragraph: _Paragraph, i: int, spacing: float, ahead: float) -> bool:
    """`ahead`: the median height of this line and the next ones. One line's box height says
    little (Tesseract's vary with the glyphs, up to 2x on CJK and digits), so a change of size
    is a taller line than the paragraph's, or a paragraph taller than the lines that follow."""
    last = paragraph.members[-1]
    if abs(g.cy[i] - g.cy[last]) < SAME_ROW * min(g.h[i], g.h[last]):
        return True
    pitch = g.cy[i] - g.cy[last]
    widest_pitch = SPACING * spacing if spacing else PITCH * (g.h[i] + g.h[last]) / 2
    right = max(paragraph.right, g.x1[i])
    overlaps = g.x0[i] < paragraph.right and g.x1[i] > paragraph.left
    similar = g.h[i] <= HEIGHT_RATIO * paragraph.height and paragraph.height <= HEIGHT_RATIO * ahead
    short = g.x1[last] <= right - SHORT * (right - min(paragraph.left, g.x0[i]))
    indented = g.x0[i] >= g.x0[last] + INDENT * paragraph.height and short
    return 0 < pitch <= widest_pitch and overlaps and similar and not indented


def _block(g: _Geometry, positions: list[int], members: list[int]) -> Block:
    x0, x1 = float(g.x0[members].min()), float(g.x1[members].max())
    y0, y1 = float(g.y0[members].min()), float(g.y1[members].max())
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    if g.angle:
        corners = corners @ _rotation(g.angle).T
    box = [[round(float(x), 1), round(float(y), 1)] for x, y in corners]
    shared_rows = sum(len(row) > 1 for row in _row_groups(g, np.array(members)))
    return Block(box, positions, "table" if shared_rows >= 2 else "text")
