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


# Grammar states: start, first number, operator, second number, `=`, placeholder.
_START, _LEFT, _OP, _RIGHT, _EQUALS, _END = range(6)
_ACCEPTING = {_RIGHT, _EQUALS, _END}
MIN_PROBABILITY = 0.003  # below this a symbol is not considered at a step (0.001 invents "3+4" from "3+")


def _next_state(state: int, char: str) -> int | None:
    if state == _EQUALS:
        return _END  # whatever follows `=` is the blank for the answer, however it reads (`?` as `7`)
    if char in DIGITS:
        return {_START: _LEFT, _LEFT: _LEFT, _OP: _RIGHT, _RIGHT: _RIGHT}.get(state)
    if char in OPERATORS:
        return _OP if state == _LEFT else None
    if char in EQUALS:
        return _EQUALS if state == _RIGHT else None
    if char in PLACEHOLDERS:
        return _END if state == _RIGHT else None
    return None


def read_expression(probabilities: np.ndarray, charset: list[str]) -> str:
    """The most probable CTC reading that is an expression, or "" when there is none.

    `probabilities` is the model's softmax, one row per time step; column 0 is
    CTC blank. Viterbi over (grammar state, last symbol), so a repeated symbol
    without a blank between counts once, as in CTC.
    """
    alphabet = DIGITS + "".join(OPERATORS) + EQUALS + PLACEHOLDERS
    columns = [0] + [charset.index(char) for char in alphabet if char in charset]
    log_probs = np.log(np.maximum(probabilities[:, columns], 1e-12))
    likely = probabilities[:, columns] >= MIN_PROBABILITY
    paths: dict[tuple[int, int], tuple[float, str]] = {(_START, 0): (0.0, "")}
    for step in range(len(log_probs)):
        candidates = [0, *np.flatnonzero(likely[step, 1:]) + 1]
        following: dict[tuple[int, int], tuple[float, str]] = {}
        for (state, last), (score, text) in paths.items():
            for k in candidates:
                char = charset[columns[k]]
                if k == 0 or k == last:
                    key, new_text = (state, k), text
                else:
                    new_state = _next_state(state, char)
                    if new_state is None:
                        continue
                    shown = "?" if new_state == _END else char
                    key, new_text = (new_state, k), text + shown
                total = score + log_probs[step, k]
                if key not in following or following[key][0] < total:
                    following[key] = (total, new_text)
        paths = following
    readings = [path for (state, _), path in paths.items() if state in _ACCEPTING]
    return max(readings)[1] if readings else ""
