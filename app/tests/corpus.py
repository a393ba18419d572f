"""The shared corpus (../shared/corpus beside the checkout): real files other projects made.

Tests read it in place (it is never copied into the repository) and skip, saying why,
on a machine without it."""

import json
from functools import cache
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


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
