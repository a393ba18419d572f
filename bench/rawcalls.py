"""The engines called raw, in this process, with no service around them: what the stack is
measured against (bench/overhead.py, bench/throughput.py). Each call takes an RGB image and a
language and gives the text read (words in reading order; the benches' CER ignores spacing).

- FASTEST, the best one can do with each library: Tesseract through tesserocr with a
  `PyTessBaseAPI` kept loaded per language (image bytes handed over as they are, TSV out,
  as `image_to_data` gives); RapidOCR on OpenVINO; ddddocr's own `classification`.
- OLD, how this project called them before issue 14: `pytesseract.image_to_data` (a
  `tesseract` process per call, loading its model each time); RapidOCR on onnxruntime.
  ddddocr has no other way (it stays on onnxruntime), so OLD is FASTEST for it.

RapidOCR and ddddocr get the model settings our engines use (app/engines/rapidocr.py's
detection limits, no angle classifier, one line per recognizer run, f32 on OpenVINO) and
`threads` engine threads, as uwsgi.ini gives each worker, but the library's own session
objects, not our cancellable wrappers around them: those are part of what the stack adds.
"""

from collections.abc import Callable
from unittest import mock

import numpy as np
from PIL import Image

RawCall = Callable[[Image.Image, str], str]
KINDS = ("fastest", "old")


def tesserocr_call() -> RawCall:
    from tesserocr import PSM, PyTessBaseAPI

    from app.engines.tesseract_lib import datapath

    apis: dict[str, PyTessBaseAPI] = {}

    def call(image: Image.Image, lang: str) -> str:
        api = apis.get(lang)
        if api is None:
            api = apis[lang] = PyTessBaseAPI(path=datapath(), lang=lang, psm=PSM.AUTO)
        rgb = image.convert("RGB")
        api.SetImageBytes(rgb.tobytes(), rgb.width, rgb.height, 3, rgb.width * 3)
        return _tsv_words(api.GetTSVText(0))

    call(Image.new("RGB", (64, 32), "white"), "eng")  # the usual language loaded first
    return call


def pytesseract_call() -> RawCall:
    import pytesseract

    # TSV, header row included, one row per layout element; words are level 5.
    return lambda image, lang: _tsv_words(pytesseract.image_to_data(image, lang=lang).split("\n", 1)[1])


def _tsv_words(tsv: str) -> str:
    words = [
        row.split("\t")[11] for row in tsv.splitlines() if row.startswith("5\t") and row.count("\t") >= 11
    ]
    return " ".join(word for word in words if word.strip())


def rapidocr_model(runtime: str, threads: int):
    """RapidOCR built exactly as app/engines/rapidocr.py builds it (its params in one place),
    each stage loaded, but with the runtime's own session: the wrapping step is skipped."""
    from app.engines import rapidocr, rapidocr_lib

    load = rapidocr_lib.load_stages

    def unwrapped(model, wrap, properties=None):
        load(model, lambda session: session, properties)

    with mock.patch.object(rapidocr_lib, "load_stages", unwrapped):
        return rapidocr._build_on(runtime, threads)


def rapidocr_call(runtime: str, threads: int) -> RawCall:
    model = rapidocr_model(runtime, threads)

    def call(image: Image.Image, lang: str) -> str:
        output = model(np.asarray(image.convert("RGB"))[:, :, ::-1])  # RGB -> BGR, as RapidOCR wants
        return "\n".join(output.txts) if output.txts is not None else ""

    call(Image.new("RGB", (64, 32), "white"), "")
    return call


def ddddocr_call(threads: int) -> RawCall:
    from app.engines import ddddocr_lib

    model = ddddocr_lib.new_model(threads)
    return lambda image, lang: model.classification(image)


def build(engine: str, kind: str, threads: int = 1) -> RawCall:
    """The raw call of `engine` ("tesseract", "rapidocr", "ddddocr"), FASTEST or OLD."""
    if kind not in KINDS:
        raise ValueError(f"kind is one of {KINDS}, not {kind!r}")
    if engine == "tesseract":
        return tesserocr_call() if kind == "fastest" else pytesseract_call()
    if engine == "rapidocr":
        return rapidocr_call("openvino" if kind == "fastest" else "onnxruntime", threads)
    if engine == "ddddocr":
        return ddddocr_call(threads)
    raise ValueError(f"no raw call for {engine!r}")


DESCRIPTION = {
    ("tesseract", "fastest"): "tesserocr PyTessBaseAPI kept loaded",
    ("tesseract", "old"): "pytesseract.image_to_data (a tesseract process per call)",
    ("rapidocr", "fastest"): "RapidOCR on OpenVINO (f32)",
    ("rapidocr", "old"): "RapidOCR on onnxruntime",
    ("ddddocr", "fastest"): "DdddOcr().classification (onnxruntime)",
    ("ddddocr", "old"): "DdddOcr().classification (onnxruntime)",
}
