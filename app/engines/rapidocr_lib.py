"""Every call this service makes into RapidOCR outside its documented API, in one place.

RapidOCR 3 loads each stage (detection, angle classifier, recognizer) on its first use,
through private `_load_*_model` methods, and keeps the stage's runtime object at
`stage.session.session`: an onnxruntime InferenceSession, or on OpenVINO the stage's one
InferRequest, whose `infer()` and `get_output_tensor()` RapidOCR calls. Both were checked
against CHECKED_VERSIONS, which app/tests/test_engine_libs.py holds to requirements.txt and
exercises. rapidocr is imported inside each function, so a missing package only makes the
engine unavailable.
"""

import importlib.metadata
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

CHECKED_VERSIONS = {"rapidocr": "3.10.0", "onnxruntime": "1.31.1", "openvino": "2026.4.0"}


def new_model(params: dict[str, Any], runtime: str = "onnxruntime") -> Any:
    """A RapidOCR with these config overrides (its documented `params`), every stage on
    `runtime`; no stage loaded yet."""
    from rapidocr import EngineType, RapidOCR

    engine = EngineType(runtime)
    return RapidOCR(params={**params, **{f"{stage}.engine_type": engine for stage in ("Det", "Cls", "Rec")}})


def runtime_version(runtime: str) -> str:
    return importlib.metadata.version(runtime)


def load_stages(
    model: Any, wrap_session: Callable[[Any], Any], openvino_properties: dict[str, str] | None = None
) -> None:
    """Load all three stages now, each runtime object replaced by `wrap_session(it)`:
    left alone, the recognizer loads only once a call finds text, in a user's request.
    On OpenVINO, `openvino_properties` are added to the CPU properties RapidOCR compiles
    with (its config takes only threads, streams and hints, not the precision)."""
    with _openvino_properties(openvino_properties or {}):
        for load in (model._load_det_model, model._load_cls_model, model._load_rec_model):
            stage = load()
            stage.session.session = wrap_session(stage.session.session)


_properties_lock = threading.Lock()


@contextmanager
def _openvino_properties(extra: dict[str, str]) -> Iterator[None]:
    """RapidOCR's OpenVINO session builds its CPU properties with `CPUConfig(...).get_config()`
    and compiles right after: within the block, that dict also holds `extra`."""
    if not extra:
        yield
        return
    from rapidocr.inference_engine.openvino import main

    original = main.CPUConfig

    class WithExtra(original):
        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), **extra}

    with _properties_lock:
        main.CPUConfig = WithExtra
        try:
            yield
        finally:
            main.CPUConfig = original


def sessions(model: Any) -> list[Any]:
    """The loaded stages' runtime objects as RapidOCR runs them (detection, classifier,
    recognizer): sessions on onnxruntime, infer requests on OpenVINO."""
    stages = (model.text_det, model.text_cls, model.text_rec)
    return [stage.session.session for stage in stages if stage is not None]


def detect(model: Any, image: Any) -> Any:
    """Detection alone on a BGR array (`model.text_det`, loaded by load_stages): text boxes,
    shape (N, 4, 2) float32, corners clockwise from top-left in the array's pixels."""
    import numpy as np

    boxes = model.text_det(image).boxes
    return np.zeros((0, 4, 2), np.float32) if boxes is None else np.asarray(boxes, np.float32)


def read_boxes(model: Any, image: Any, boxes: Any, rotate: bool) -> list[tuple[str, float]]:
    """(text, score) of each box of a BGR array, the way RapidOCR.__call__ reads its detections
    (crop_text_regions, cls_and_rotate when `rotate`, recognize_txt), but on boxes found by us."""
    crops = model.crop_text_regions(image, boxes)
    if rotate:
        crops, _ = model.cls_and_rotate(crops)
    result = model.recognize_txt(crops)
    return list(zip(result.txts, result.scores, strict=True))


def sort_boxes(boxes: Any) -> Any:
    """RapidOCR's reading order for boxes: top to bottom, left to right within a row."""
    from rapidocr.ch_ppocr_det import TextDetector

    return TextDetector.sorted_boxes(boxes)


def text_score(model: Any) -> float:
    """The recognizer score below which RapidOCR drops a line (Global.text_score)."""
    return float(model.text_score)
