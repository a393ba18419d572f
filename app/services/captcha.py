"""Slide captchas: answered at once, never stored."""

from typing import Any, cast

from app import images
from app.engines import registry
from app.engines.ddddocr import DdddOcrEngine
from app.errors import EngineUnavailable


def solve_slide(
    *, target: bytes, background: bytes, algorithm: str = "match", simple_target: bool = False
) -> dict[str, Any]:
    """Where a slide captcha's piece goes. Nothing is stored: the answer is only useful now."""
    engine = cast(DdddOcrEngine, registry.get("ddddocr"))
    if not engine.is_available():
        raise EngineUnavailable(f"Slide captchas need ddddocr: {engine.unavailable_reason()}.")
    piece, scene = images.decode(target), images.decode(background)
    box = engine.slide(piece.image, scene.image, algorithm=algorithm, simple_target=simple_target)
    return {"target_x": box[0], "target_y": box[1], "target": box, "algorithm": algorithm}


def classification_probability(*, data: bytes, charset: str = "") -> dict[str, Any]:
    """ddddocr's per-step probabilities for a text captcha, in ddddocr 1.5's shape
    (DdddOcrEngine.classification_probability). Not stored: the record of the same reading
    (services.recognize) keeps its text; these are thousands of floats only useful now."""
    engine = cast(DdddOcrEngine, registry.get("ddddocr"))
    if not engine.is_available():
        raise EngineUnavailable(f"Captcha probabilities need ddddocr: {engine.unavailable_reason()}.")
    return engine.classification_probability(images.decode(data).image, charset)
