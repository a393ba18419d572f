"""The shared corpus (../shared/corpus beside the checkout): real files other projects made,
and how a reading of one is scored against its truth (here and in bench/real.py).

Tests read it in place (it is never copied into the repository) and skip, saying why,
on a machine without it."""

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
LINE_SCOPES = ("substring", "detections_unordered", "detections_subset", "first_two_words")


@cache
def _manifest() -> dict[str, dict]:
    return {entry["file"]: entry for entry in json.loads((CORPUS / "manifest.json").read_text())}


def entry(file: str) -> dict:
    """The manifest entry of `file` (e.g. "files/tesseractjs/cosmic.png"); skips without the corpus."""
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    return _manifest()[file]


def data(file: str) -> bytes:
    entry(file)
    return (CORPUS / file).read_bytes()


def _squash(text: str, fold: bool) -> np.ndarray:
    text = "".join(text.split())
    return np.array([ord(c) for c in (text.casefold() if fold else text)], dtype=np.int64)


def distance(truth: str, text: str, *, fold: bool = False, free_ends: bool = False) -> tuple[int, int]:
    """(edit distance, truth length), whitespace ignored. With free_ends the truth may match
    any stretch of the text. One numpy column at a time: the vertical chain of the DP is a
    running minimum, so each column is three vector operations."""
    a, b = _squash(truth, fold), _squash(text, fold)
    m = len(a)
    if m == 0:
        return (0 if free_ends else len(b)), 0
    steps = np.arange(m + 1)
    column = steps.copy()  # D[i][0] = i
    best = column[m]
    for j, char in enumerate(b, start=1):
        top = 0 if free_ends else j
        diagonal = column[:-1] + (a != char)
        left = column[1:] + 1
        candidates = np.empty(m + 1, dtype=np.int64)
        candidates[0] = top
        candidates[1:] = np.minimum(diagonal, left)
        column = np.minimum.accumulate(candidates - steps) + steps
        best = min(best, column[m]) if free_ends else column[m]
    return int(best if free_ends else column[m]), m


def score(entry: dict, text: str, answer: object) -> tuple[int, int, str]:
    """(distance, length, note) of a reading against the manifest's truth."""
    scope = entry.get("truth_scope") or "full"
    truth = entry["truth"]
    fold = entry.get("case_sensitive") is False or entry["kind"] == "captcha"
    if entry["kind"] == "math_captcha":
        expected = entry.get("answer")
        return int(str(answer) != str(expected)), 1, f"answer {answer!r} for {expected!r}"
    if scope == "fields_normalized":
        return 0, 0, "normalized fields: not scored"
    if scope == "full":
        return (*distance(truth, text, fold=fold), "")
    if scope == "each_page":
        return (*distance("\f".join([truth] * (entry.get("pages") or 1)), text, fold=fold), "")
    if scope == "fields":
        parts = [str(value) for value in (entry.get("truth_fields") or {}).values()]
    elif scope.startswith("table_cells"):
        parts = [cell for row in entry.get("truth_cells") or [] for cell in row if cell.strip()]
    elif (scope.startswith("first_") and scope.endswith("_lines")) or scope in LINE_SCOPES:
        parts = truth.split() if scope == "first_two_words" else truth.splitlines()
    else:
        raise ValueError(f"unknown truth_scope {scope!r} in {entry['file']}")
    total = [distance(part, text, fold=fold, free_ends=True) for part in parts if part.strip()]
    return sum(d for d, _ in total), sum(n for _, n in total), ""
