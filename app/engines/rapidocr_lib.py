"""Every call this service makes into RapidOCR outside its documented API, in one place.

RapidOCR 3 loads each stage (detection, angle classifier, recognizer) on its first use,
through private `_load_*_model` methods, and keeps the stage's onnxruntime session at
`stage.session.session`. Both were checked against CHECKED_VERSIONS, which
app/tests/test_engine_libs.py holds to requirements.txt and exercises. rapidocr is imported
inside each function, so a missing package only makes the engine unavailable.
"""

from collections.abc import Callable
from typing import Any

CHECKED_VERSIONS = {"rapidocr": "3.10.0", "onnxruntime": "1.31.1"}


def new_model(params: dict[str, Any]) -> Any:
    """A RapidOCR with these config overrides (its documented `params`); no stage loaded yet."""
    from rapidocr import RapidOCR

    return RapidOCR(params=params)


def load_stages(model: Any, wrap_session: Callable[[Any], Any]) -> None:
    """Load all three stages now, each onnxruntime session replaced by `wrap_session(session)`:
    left alone, the recognizer loads only once a call finds text, in a user's request."""
    for load in (model._load_det_model, model._load_cls_model, model._load_rec_model):
        stage = load()
        stage.session.session = wrap_session(stage.session.session)


def sessions(model: Any) -> list[Any]:
    """The loaded stages' sessions as RapidOCR runs them (detection, classifier, recognizer)."""
    stages = (model.text_det, model.text_cls, model.text_rec)
    return [stage.session.session for stage in stages if stage is not None]
