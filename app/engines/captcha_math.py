"""Arithmetic captchas (`3+8=?`, `12×4`, `9减2`): read one as `<int> <op> <int>` and solve it.

Two halves. `read_expression` decodes the OCR model's per-step probabilities
under that grammar: ddddocr's plain reading of `19-2=?` is `192-7` (the thin `-`
loses to blank, `=` reads as `-`, `?` as `7`), while the best reading that *is* an
expression is `19-2=?`. `read_captcha` adds what the image shows and the model does
not: `÷` (read as `-`) and a thin `-` (read as blank). `solve` parses a string with a
small parser (never eval).
"""

import re
from fractions import Fraction

import numpy as np
from PIL import Image

from app.errors import Unprocessable

# Operators and the look-alikes the model reads for them (it reads `+` as 十 and
# `×` as `x` often). ddddocr 1.6.1 never outputs `÷`: it reads it as `-`.
OPERATORS = {
    **dict.fromkeys("+＋十加", "+"),
    **dict.fromkeys("-－一减−", "-"),  # − (U+2212): a minus the image shows and the model does not
    **dict.fromkeys("×xX*乘", "×"),
    **dict.fromkeys("÷/除", "÷"),
}
DIGITS = "0123456789"
EQUALS = "=＝"
PLACEHOLDERS = "?？"
MAX_DIGITS = 6  # per operand: a captcha asks for mental arithmetic, not 20-digit numbers

_OPS = "".join(re.escape(op) for op in OPERATORS)
_EXPRESSION = re.compile(
    rf"\s*(\d{{1,{MAX_DIGITS}}})\s*([{_OPS}])\s*(\d{{1,{MAX_DIGITS}}})\s*[{EQUALS}]?\s*[{PLACEHOLDERS}]?\s*"
)

Number = int | float


def solve(text: str) -> Number:
    """The value of `<int> <op> <int>` with an optional trailing `=`, `?` or `=?`."""
    match = _EXPRESSION.fullmatch(text)
    if not match:
        raise _unreadable(text)
    left, op, right = int(match[1]), OPERATORS[match[2]], int(match[3])
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "×":
        return left * right
    if right == 0:
        raise _unreadable(text, "it divides by zero")
    quotient = Fraction(left, right)
    return int(quotient) if quotient.denominator == 1 else round(float(quotient), 6)


def _unreadable(text: str, why: str = "") -> Unprocessable:
    reason = why or "expected <number> <operator> <number>, e.g. 3+8=?"
    return Unprocessable(f"Could not read an arithmetic expression in the image (read {text!r}: {reason}).")


# Reading: the grammar `<n> <op> <n> [= [?]]`, operands of 1-2 digits (up to MAX_TERMS of them).
UNSEEN_MINUS = "−"
MAX_OPERAND_DIGITS = 2  # a 6-digit operand let `5+4=?` be read as 5+47 (`=` lost, `?` as 7)
MAX_TERMS = 2  # as `solve` takes; 3 (the Baidu contest's `5-6+2`) changed nothing on seeds 0-199
MIN_PROBABILITY = 0.003  # below this a symbol is not considered at a step (0.001 invents "3+4" from "3+")
# The model reads `=` as `-` as often as `=`: at a step the `=` class is all of them together.
EQUALS_LOOKALIKES = EQUALS + "-－一"
TAIL_BONUS = 20.0  # prior odds for `=?` over a last operand the model reads weakly; tuned on seeds 0-199
HIDDEN_MINUS = 1e-4  # a thin `-` the model sees as blank: allowed between operands at these odds
BAR_MINUS = 1e-2  # the odds where the image shows a short level bar (_bar_steps): it places the `-`

_START, _NUMBER, _OPERATOR, _EQUALS, _END = range(5)
_ACCEPTING = (_NUMBER, _EQUALS, _END)
_PLACEHOLDER, _EQUALS_CLASS, _HIDDEN = -1, -2, -3  # symbol keys beyond the model's columns


def _symbols(
    row: np.ndarray, charset: list[str], columns: list[int], hidden: float = HIDDEN_MINUS
) -> list[tuple[int, float, str]]:
    """(key, probability, char) of what may be read at one step: the characters the grammar
    knows, the `=` class, and any non-blank as the answer's placeholder."""
    found = [(k, float(row[k]), charset[k]) for k in columns if row[k] >= MIN_PROBABILITY]
    equals = sum(float(row[k]) for k in columns if charset[k] in EQUALS_LOOKALIKES)
    found.append((_EQUALS_CLASS, equals, "="))
    found.append((_PLACEHOLDER, 1.0 - float(row[0]), "?"))
    found.append((_HIDDEN, hidden * float(row[0]), UNSEEN_MINUS))  # only where the model sees nothing
    return [(key, p, char) for key, p, char in found if p >= MIN_PROBABILITY or (key == _HIDDEN and p > 0)]


def _advance(state: tuple[int, int, int], key: int, char: str) -> tuple[tuple[int, int, int], float] | None:
    """The grammar state after reading `char` (symbol `key`) and the prior it costs, or None."""
    phase, digits, terms = state
    if key == _PLACEHOLDER:
        return ((_END, 0, terms), 1.0) if phase == _EQUALS else None
    if phase in (_EQUALS, _END):
        return None
    if key == _EQUALS_CLASS:
        return ((_EQUALS, 0, terms), TAIL_BONUS) if phase == _NUMBER and terms >= 2 else None
    if char in DIGITS:
        if phase in (_START, _OPERATOR):
            return (_NUMBER, 1, terms + 1), 1.0
        return (
            ((_NUMBER, digits + 1, terms), 1.0) if phase == _NUMBER and digits < MAX_OPERAND_DIGITS else None
        )
    if char in OPERATORS:
        return ((_OPERATOR, 0, terms), 1.0) if phase == _NUMBER and terms < MAX_TERMS else None
    if char in PLACEHOLDERS:
        return ((_END, 0, terms), TAIL_BONUS) if phase == _NUMBER and terms >= 2 else None
    return None


def read_expression(probabilities: np.ndarray, charset: list[str]) -> str:
    """The most probable CTC reading that is an expression, or "" when there is none.

    `probabilities` is the model's softmax, one row per time step; column 0 is
    CTC blank. Viterbi over (grammar state, last symbol), so a repeated symbol
    without a blank between counts once, as in CTC.
    """
    return _read(probabilities, charset)[0].replace(UNSEEN_MINUS, "-")


def read_captcha(probabilities: np.ndarray, charset: list[str], image: Image.Image) -> str:
    """read_expression, with each `-` the image shows dots above and below read as `÷`
    (the model never outputs `÷`: it reads it as `-`; a `-` it did not see is never one)."""
    bars = _bar_steps(image, len(probabilities))
    text, steps = _read(probabilities, charset, [BAR_MINUS if bar else HIDDEN_MINUS for bar in bars])
    chars = list(text)
    for i, char in enumerate(chars):
        if char == "-" and _is_division_sign(image, steps[i], len(probabilities)):
            chars[i] = "÷"
    return "".join(chars).replace(UNSEEN_MINUS, "-")


def _read(
    probabilities: np.ndarray, charset: list[str], hidden: list[float] | None = None
) -> tuple[str, tuple[int, ...]]:
    """The best reading and the time step each of its characters was read at; `hidden`, the
    odds of an unseen `-` at each step against blank (HIDDEN_MINUS everywhere by default)."""
    hidden = hidden or [HIDDEN_MINUS] * len(probabilities)
    alphabet = set(DIGITS + "".join(OPERATORS) + EQUALS + PLACEHOLDERS)
    columns = [k for k, char in enumerate(charset) if char and char in alphabet]
    paths: _Paths = {((_START, 0, 0), 0): (0.0, "", ())}
    for step, row in enumerate(probabilities):
        paths = _step(paths, step, row, _symbols(row, charset, columns, hidden[step]))
    readings = [path for ((phase, _, terms), _), path in paths.items() if phase in _ACCEPTING and terms >= 2]
    if not readings:
        return "", ()
    _, text, steps = max(readings)
    # `=?` read as one `-` is a lone `=`; left out, as the reading did before the `=` class.
    return (text[:-1], steps[:-1]) if text.endswith("=") else (text, steps)


# (grammar state, last symbol's key; 0 after a blank) -> (log probability, text, each char's step)
_Paths = dict[tuple[tuple[int, int, int], int], tuple[float, str, tuple[int, ...]]]


def _step(paths: _Paths, step: int, row: np.ndarray, symbols: list[tuple[int, float, str]]) -> _Paths:
    """The best paths one time step later."""
    following: _Paths = {}
    blank = float(np.log(max(row[0], 1e-12)))
    for (state, last), (score, text, steps) in paths.items():
        moves = [((state, 0), (score + blank, text, steps))]
        for key, p, char in symbols:
            if key == last:  # the same symbol again: CTC counts it once
                moves.append(((state, key), (score + np.log(p), text, steps)))
                continue
            moved = _advance(state, key, char)
            if moved is not None:
                moves.append(((moved[0], key), (score + np.log(p * moved[1]), text + char, (*steps, step))))
        for place, path in moves:
            if place not in following or following[place][0] < path[0]:
                following[place] = path
    return following


def _is_division_sign(image: Image.Image, step: int, steps: int) -> bool:
    """Whether the `-` read at `step` has a dot above it and one below, apart from it: `÷`.

    The model reads a time step per 1/`steps` of the width. The bar is the longest dark
    run near the middle height around there; a dot is a short blob over its middle half."""
    dark = _dark(image)
    height, width = dark.shape
    left, right = (max(0, min(width, round((step + shift) * width / steps))) for shift in (-1.5, 2.5))
    if right - left < 3:
        return False
    dark = dark[:, left:right]
    best = max(
        ((run, row) for row in range(height // 4, height - height // 4) for run in _runs(dark[row])),
        key=lambda found: found[0][1] - found[0][0],
        default=None,
    )
    if best is None:
        return False
    (start, stop), bar = best
    length = stop - start
    if length < 3:
        return False
    centre = dark[:, start + length // 4 : stop - length // 4]
    middle = centre.any(axis=1)
    top, bottom = next((run for run in _runs(middle) if run[0] <= bar < run[1]), (bar, bar + 1))
    dot = (max(2, bottom - top - 1), length)  # a dot: at least about as tall as the bar is thick
    above = _dot_beyond(centre[:top][::-1], *dot)
    return above and _dot_beyond(centre[bottom:], *dot)


def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))))
    return list(zip(edges[::2], edges[1::2], strict=True))


def _dot_beyond(ink: np.ndarray, least: int, most: int) -> bool:
    """Rows going away from the bar (`ink` over its middle columns): background, then a blob
    `least` to `most` rows tall and two columns wide or more (noise specks are one pixel),
    then background again, all within `most` rows."""
    runs = _runs(ink.any(axis=1))
    if not runs:
        return False
    dot_start, dot_stop = runs[0]
    wide = ink[dot_start:dot_stop].any(axis=0).sum() >= 2
    return 1 <= dot_start <= most and least <= dot_stop - dot_start <= most and dot_stop < len(ink) and wide


def _bar_steps(image: Image.Image, steps: int) -> list[bool]:
    """For each time step, whether its columns hold a short level bar at mid height with
    nothing above or below it: a minus (DejaVu's thin one the model does not see)."""
    dark = _dark(image)
    width = dark.shape[1]
    rows = np.flatnonzero(dark.sum(axis=1) >= max(2, width // 30))  # text rows, not noise specks
    found = [False] * steps
    if len(rows) < 4:
        return found
    top, bottom = rows[0], rows[-1] + 1
    tall = bottom - top
    low, high = top + tall // 4, bottom - tall // 4
    alone = np.array([_level_ink(dark[:, x], low, high, tall // 4) for x in range(width)])
    for start, stop in _runs(alone):
        ink = np.flatnonzero(dark[:, start:stop].any(axis=1))
        joined = [_touches(dark, x, ink[0], ink[-1]) for x in (start - 1, stop)]
        if tall // 6 <= stop - start <= tall and ink[-1] - ink[0] < tall // 4 and not all(joined):
            for step in range(start * steps // width, min(steps, (stop - 1) * steps // width + 1)):
                found[step] = True
    return found


def _touches(dark: np.ndarray, x: int, low: int, high: int) -> bool:
    """Whether column `x` has ink in rows `low` to `high`: a bar joined there (a 4's crossbar
    is joined on both sides, a minus on one at most)."""
    return 0 <= x < dark.shape[1] and bool(dark[low : high + 1, x].any())


def _level_ink(column: np.ndarray, low: int, high: int, most: int) -> bool:
    """Ink in the column lies between rows `low` and `high`, at most `most` rows of it."""
    ink = np.flatnonzero(column)
    return bool(len(ink)) and low <= ink[0] and ink[-1] < high and ink[-1] - ink[0] < most


def _dark(image: Image.Image) -> np.ndarray:
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    return grey < (grey.max() + grey.min()) / 2
