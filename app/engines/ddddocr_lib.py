"""Every call this service makes into ddddocr (and the onnxruntime sessions it holds) outside
their documented API, in one place.

ddddocr 1.6 keeps its models at `model.ocr_engine` / `model.detection_engine`, each with an
onnxruntime `session` whose file is only known from the session's private `_model_path`; its
classification steps are private methods (`_preprocess_image`, `_softmax`,
`_process_text_output`). All were checked against CHECKED_VERSIONS, which
app/tests/test_engine_libs.py holds to requirements.txt and exercises. ddddocr is imported
inside each function, so a missing package only makes the engine unavailable.

Its sessions stay on onnxruntime (issue 14, item 3, measured with openvino 2026.4, 1 thread):
on OpenVINO the reader took 113 ms a captcha against onnxruntime's 31 (median, 12 captchas,
the same text in f32); the detector was no faster in f32 (244 vs 233 ms) and in bf16, faster
(117 vs 196 ms), computed other scores.
"""

import contextlib
import io
from typing import Any

import numpy as np
from PIL import Image

CHECKED_VERSIONS = {"ddddocr": "1.6.1", "onnxruntime": "1.31.1"}


def new_model(threads: int, **kwargs: Any) -> Any:
    """A ddddocr.DdddOcr(**kwargs), silent, its ONNX sessions on `threads` threads (0: the
    library's own sessions, onnxruntime's default of a thread per core)."""
    import ddddocr

    # show_ad=False: the library otherwise prints a banner on every construction.
    with contextlib.redirect_stdout(io.StringIO()):
        model = ddddocr.DdddOcr(show_ad=False, **kwargs)
    if threads:
        for part in _parts(model):
            part.session = _session(part.session._model_path, threads)
    return model


def sessions(model: Any) -> list[Any]:
    """The onnxruntime sessions the model runs (reader, detector: whichever it has)."""
    return [part.session for part in _parts(model)]


def classify(model: Any, image: Image.Image) -> dict:
    """ddddocr 1.6's classification(probability=True), bit for bit, minus its detour through
    Python lists: it hands back the softmax as ~250,000 floats in nested lists, and turning
    them into lists and back into an array cost about half as much again as the model itself
    (bench/overhead.py). Same preprocessing, session, softmax and text decoding."""
    engine = model.ocr_engine
    array = engine._preprocess_image(image, False)
    logits = engine.session.run(None, {engine.session.get_inputs()[0].name: array})[0]
    probabilities = engine._softmax(logits, axis=-1)
    return {
        "text": engine._process_text_output(logits),
        "probabilities": probabilities,
        "charset": engine.get_charset(),
        "confidence": float(np.mean(np.max(probabilities, axis=-1))),
    }


def _parts(model: Any) -> list[Any]:
    return [part for part in (model.ocr_engine, model.detection_engine) if part is not None]


def _session(path: str, threads: int) -> Any:
    """ddddocr builds its ONNX sessions with onnxruntime's default, a thread per core; under
    uWSGI (a process per core) those threads fight the other workers' for the same cores."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
