"""RapidOCR: Chinese and English text from photos and documents (PP-OCR models on ONNX).

Three defaults differ from the library's, all measured on a 2-core machine:
- the angle classifier is off unless asked for (`rotate`): on upright pages it
  flips lines and drove the character error rate from 0.0 to 0.59;
- detection never scales an image up (`limit_type=max`): the library's `min`
  blew a one-line crop up to ~2240x736, 0.45 s and ~800 MB instead of ~48 ms;
- the recognizer reads one line per run: in a batch every line is padded to the
  widest one, which on one engine thread is only extra work (10-line page: recognition
  0.97 -> 0.71 s of CPU, the same text).

The models run on OpenVINO unless the config says onnxruntime: the same ONNX files and the
same text out, in 0.57x the time on a 10-line page (1 thread; issue 14). When OpenVINO
cannot load, the engine logs why and runs on onnxruntime.
"""

import importlib.util
import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from app.engines import deadline, rapidocr_lib
from app.engines.base import EngineConfig, LazyModel, Line, Options, Picture, PythonPackageEngine, Result
from app.engines.textutil import split_langs
from app.errors import EngineFailed, EngineTimeout, EngineUnavailable, InvalidInput

LANGUAGES = ("chi_sim", "eng")  # the default PP-OCR model reads both at once
WRAPPERS = {"openvino": deadline.CancellableInferRequest, "onnxruntime": deadline.CancellableSession}
# OpenVINO computes in bfloat16 where the CPU has it (AVX512_BF16, AMX) unless told f32: on
# such a CPU bf16 changed the text of 4 of the first 30 bench images (e.g. "balance" read
# "baiance"); f32 reads exactly what onnxruntime reads.
OPENVINO_PROPERTIES = {"INFERENCE_PRECISION_HINT": "f32"}
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    model: Any
    runtime: str  # the one running it: the configured one, or onnxruntime after a fallback


def _build_model(config: EngineConfig) -> Loaded:
    runtime = config.rapidocr_runtime
    if runtime != "onnxruntime":
        try:
            return Loaded(_build_on(runtime, config.threads), runtime)
        except Exception as exc:  # ImportError, or OpenVINO failing to read or compile a model
            logger.warning("RapidOCR cannot run on %s (%s); running on onnxruntime instead.", runtime, exc)
    return Loaded(_build_on("onnxruntime", config.threads), "onnxruntime")


def _build_on(runtime: str, threads: int):
    params = {
        "Global.log_level": "error",  # "no text found" is not a warning here
        "Global.use_cls": False,
        "Det.limit_type": "max",
        "Det.limit_side_len": 2000,
        "Rec.rec_batch_num": 1,
    }
    if threads and runtime == "openvino":
        params["EngineConfig.openvino.inference_num_threads"] = threads
    elif threads:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
        params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
    model = rapidocr_lib.new_model(params, runtime)
    # All three stages now (warm-up then covers them), their runs through deadline.limit(),
    # so a call past the timeout stops.
    rapidocr_lib.load_stages(model, WRAPPERS[runtime], OPENVINO_PROPERTIES)
    return model


class RapidOcrEngine(PythonPackageEngine):
    packages = ("onnxruntime", "rapidocr")
    name = "rapidocr"
    tasks = ("document",)
    default_lang = "chi_sim+eng"
    outputs: tuple[str, ...] = ()

    def __init__(self, config: EngineConfig) -> None:
        if config.rapidocr_runtime not in WRAPPERS:
            raise ValueError(f"RapidOCR runs on {' or '.join(WRAPPERS)}, not {config.rapidocr_runtime!r}.")
        self.config = config
        self._model = LazyModel(lambda: _build_model(config))
        # RapidOCR.__call__ stores per-call flags (use_cls) on the shared instance.
        self._call_lock = threading.Lock()

    def languages(self) -> list[str]:
        return list(LANGUAGES) if self.is_available() else []

    def runtime(self) -> dict[str, str]:
        """The inference runtime and its version: the loaded model's, or before it loads the
        configured one (onnxruntime when the openvino package is missing)."""
        if self._model.loaded:
            name = self._model.get().runtime
        else:
            name = self.config.rapidocr_runtime
            if name != "onnxruntime" and importlib.util.find_spec(name) is None:
                name = "onnxruntime"
        return {"name": name, "version": rapidocr_lib.runtime_version(name)}

    def normalize_lang(self, lang: str) -> str:
        parts = split_langs(lang or self.default_lang)
        unknown = [part for part in parts if part not in LANGUAGES]
        if unknown:
            raise InvalidInput(
                f"RapidOCR reads {' and '.join(LANGUAGES)} only, not {', '.join(unknown)}; "
                "use engine=tesseract for other languages.",
                code="unsupported_language",
            )
        return "+".join(sorted(set(parts)))

    def warm_up(self) -> None:
        if not self.is_available():
            return
        # One tiny call loads the detection and recognition sessions.
        self.recognize(Picture(Image.new("RGB", (64, 32), "white")), Options(lang="", task="document"))

    def recognize(self, picture: Picture, options: Options) -> Result:
        if not self.is_available():
            raise EngineUnavailable(f"RapidOCR is unavailable: {self.unavailable_reason()}.")
        bgr = np.asarray(picture.image)[:, :, ::-1]
        try:
            model = self._model.get().model
        except Exception as exc:
            raise EngineFailed(f"RapidOCR failed: {exc}") from exc
        with self._call_lock, deadline.limit(self.config.timeout) as run:
            try:
                output = model(bgr, use_cls=options.rotate)
            except Exception as exc:  # the library raises bare exceptions of many kinds
                if run.terminate:
                    raise EngineTimeout("RapidOCR took too long on this image.") from exc
                raise EngineFailed(f"RapidOCR failed: {exc}") from exc
        if output.boxes is None or output.txts is None:
            return Result(lines=[], text="")
        lines = [
            Line(
                text=text,
                box=[[round(float(x), 1), round(float(y), 1)] for x, y in box],
                score=round(float(score), 4),
            )
            for box, text, score in zip(output.boxes, output.txts, output.scores, strict=True)
        ]
        return Result(lines=lines, text="\n".join(line.text for line in lines))
