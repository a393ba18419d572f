"""Arithmetic captchas (`3+8=?`, `12×4`, `9减2`): read one as `<int> <op> <int>` and solve it.

Two halves. `read_expression` decodes the OCR model's per-step probabilities
under that grammar: ddddocr's plain reading of `19-2=?` is `192-7` (the thin `-`
loses to blank, `=` reads as `-`, `?` as `7`), while the best reading that *is* an
expression is `19-2=?`. `solve` parses a string with a small parser (never eval).
"""

import re
from fractions import Fraction

import numpy as np

from app.errors import Unprocessable

# Operators and the look-alikes the model reads for them (it reads `+` as 十 and
# `×` as `x` often). ddddocr 1.6.1 never outputs `÷`: it reads it as `-`.
OPERATORS = {
    **dict.fromkeys("+＋十加", "+"),
    **dict.fromkeys("-－一减", "-"),
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


# Reading: the grammar `<n> <op> <n> [<op> <n>] [= [?]]`, operands of 1-2 digits.
MAX_OPERAND_DIGITS = 2  # a 6-digit operand let `5+4=?` be read as 5+47 (`=` lost, `?` as 7)
MAX_TERMS = 3  # the Baidu contest's `5-6+2`
MIN_PROBABILITY = 0.003  # below this a symbol is not considered at a step (0.001 invents "3+4" from "3+")
# The model reads `=` as `-` as often as `=`: at a step the `=` class is all of them together.
EQUALS_LOOKALIKES = EQUALS + "-－一"
TAIL_BONUS = 20.0  # prior odds for `=?` over a last operand the model reads weakly; tuned on seeds 0-199
HIDDEN_MINUS = 1e-4  # a thin `-` the model sees as blank: allowed between operands at this probability

_START, _NUMBER, _OPERATOR, _EQUALS, _END = range(5)
_ACCEPTING = (_NUMBER, _EQUALS, _END)
_PLACEHOLDER, _EQUALS_CLASS, _HIDDEN = -1, -2, -3  # symbol keys beyond the model's columns


def _symbols(row: np.ndarray, charset: list[str], columns: list[int]) -> list[tuple[int, float, str]]:
    """(key, probability, char) of what may be read at one step: the characters the grammar
    knows, the `=` class, and any non-blank as the answer's placeholder."""
    found = [(k, float(row[k]), charset[k]) for k in columns if row[k] >= MIN_PROBABILITY]
    equals = sum(float(row[k]) for k in columns if charset[k] in EQUALS_LOOKALIKES)
    found.append((_EQUALS_CLASS, equals, "="))
    found.append((_PLACEHOLDER, 1.0 - float(row[0]), "?"))
    found.append((_HIDDEN, HIDDEN_MINUS * float(row[0]), "-"))  # only where the model sees nothing
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
    alphabet = set(DIGITS + "".join(OPERATORS) + EQUALS + PLACEHOLDERS)
    columns = [k for k, char in enumerate(charset) if char and char in alphabet]
    paths: _Paths = {((_START, 0, 0), 0): (0.0, "")}
    for row in probabilities:
        paths = _step(paths, row, _symbols(row, charset, columns))
    readings = [path for ((phase, _, terms), _), path in paths.items() if phase in _ACCEPTING and terms >= 2]
    # `=?` read as one `-` is a lone `=`; left out, as the reading did before the `=` class.
    return max(readings)[1].removesuffix("=") if readings else ""


# (grammar state, last symbol's key; 0 after a blank) -> (log probability, text) of the best path there
_Paths = dict[tuple[tuple[int, int, int], int], tuple[float, str]]


def _step(paths: _Paths, row: np.ndarray, symbols: list[tuple[int, float, str]]) -> _Paths:
    """The best paths one time step later."""
    following: _Paths = {}
    blank = float(np.log(max(row[0], 1e-12)))
    for (state, last), (score, text) in paths.items():
        moves = [((state, 0), score + blank, text)]
        for key, p, char in symbols:
            if key == last:  # the same symbol again: CTC counts it once
                moves.append(((state, key), score + np.log(p), text))
                continue
            moved = _advance(state, key, char)
            if moved is not None:
                moves.append(((moved[0], key), score + np.log(p * moved[1]), text + char))
        for place, total, new_text in moves:
            if place not in following or following[place][0] < total:
                following[place] = (total, new_text)
    return following
