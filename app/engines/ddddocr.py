"""ddddocr: captchas. Tasks: `text` (characters in one line), `math` (solve `3+8=?`) and
`detect` (boxes of characters or icons); plus slide-captcha positions (`slide`).

ddddocr keeps charset ranges on its shared model (and 1.6.1 reads an int range as
"the first n characters", not the documented presets), so `charset` is applied
here, to the model's probabilities, and the shared model is never changed.
"""

import importlib.metadata
import string
import threading

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from app.engines import captcha_math, ddddocr_lib
from app.engines.base import (
    EngineConfig,
    LazyModel,
    Line,
    Options,
    Picture,
    PythonPackageEngine,
    Result,
    full_box,
)
from app.errors import EngineFailed, EngineUnavailable, InvalidInput, Unprocessable

# ddddocr's documented set_ranges presets; 7 is its default charset minus these letters and digits.
PRESETS = {
    "0": string.digits,
    "1": string.ascii_lowercase,
    "2": string.ascii_uppercase,
    "3": string.ascii_letters,
    "4": string.ascii_lowercase + string.digits,
    "5": string.ascii_uppercase + string.digits,
    "6": string.ascii_letters + string.digits,
    "7": "",
}
MAX_CHARSET = 500
SLIDE_ALGORITHMS = ("match", "compare")
GAP_THRESHOLD = 30  # grey levels; ddddocr's own threshold in slide_comparison


class DdddOcrEngine(PythonPackageEngine):
    packages = ("ddddocr",)
    name = "ddddocr"
    tasks = ("text", "math", "detect")
    default_lang = ""
    outputs: tuple[str, ...] = ()

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        threads = config.threads
        self._model = LazyModel(lambda: ddddocr_lib.new_model(threads))
        self._detector = LazyModel(lambda: ddddocr_lib.new_model(threads, det=True, ocr=False))
        # No model file: plain OpenCV.
        self._slider = LazyModel(lambda: ddddocr_lib.new_model(threads, det=False, ocr=False))
        # classification() rewrites the model's charset indices on every call.
        self._call_lock = threading.Lock()

    def languages(self) -> list[str]:
        return []

    def runtime(self) -> dict[str, str]:
        """onnxruntime: on OpenVINO its reader ran 3.7x slower (ddddocr_lib.py)."""
        return {"name": "onnxruntime", "version": importlib.metadata.version("onnxruntime")}

    def normalize_lang(self, lang: str) -> str:
        if lang:
            raise InvalidInput(
                "ddddocr reads captchas and takes no language; leave lang empty.",
                code="unsupported_language",
            )
        return ""

    def warm_up(self) -> None:
        if self.is_available():
            self._model.get()
            self._detector.get()

    def recognize(self, picture: Picture, options: Options) -> Result:
        image = picture.image
        self._check_available()
        if options.task == "detect":
            return self._detect(image)
        columns = self._charset_columns(options.charset) if options.task == "text" else None
        output = self._classify(image)
        probabilities = np.asarray(output["probabilities"], dtype=np.float32)
        probabilities = probabilities.reshape(-1, probabilities.shape[-1])  # (steps, 1, classes)
        extra: dict = {}
        if options.task == "math":
            # Unreadable: the error quotes what the model read without the grammar.
            text = captcha_math.read_captcha(probabilities, output["charset"], image) or output["text"]
            extra["result"] = captcha_math.solve(text)
            confidence = None  # the model's confidence is for its own reading, not this one
        elif columns is not None:
            text = _restricted(probabilities, columns, output["charset"])
            confidence = float(probabilities[:, columns].max(axis=1).mean())
        else:
            text, confidence = output["text"], output["confidence"]
        score = None if confidence is None else round(confidence, 4)
        lines = [Line(text=text, box=full_box(*image.size), score=score)] if text else []
        return Result(lines=lines, text=text, extra=extra)

    def slide(
        self, target: Image.Image, background: Image.Image, *, algorithm: str, simple_target: bool = False
    ) -> list[int]:
        """The box [x1, y1, x2, y2] where `target` sits in `background`.

        match: `target` is the piece. simple_target=False matches edges (ddddocr's
        default, for a piece cut out on a transparent background, whose outline shows
        as a gap in the background); True matches pixels (a plain rectangular crop).
        compare: `target` is the background with the gap drawn in, `background` the
        same picture without it.
        """
        self._check_available()
        if algorithm not in SLIDE_ALGORITHMS:
            raise InvalidInput(f"Unknown slide algorithm {algorithm!r}; use match or compare.")
        if algorithm == "compare":
            return self._compare(target, background)
        if target.width > background.width or target.height > background.height:
            raise InvalidInput("The target piece is larger than the background.", code="target_too_large")
        slider = self._run(self._slider.get)
        found = self._run(lambda: slider.slide_match(target, background, simple_target=simple_target))
        # ddddocr 1.6 returns the centre (top-left + size // 2); 1.5 returned the box.
        x1, y1 = found["target_x"] - target.width // 2, found["target_y"] - target.height // 2
        return [x1, y1, x1 + target.width, y1 + target.height]

    def _compare(self, with_gap: Image.Image, background: Image.Image) -> list[int]:
        if with_gap.size != background.size:
            raise InvalidInput("For compare, both images must have the same size.", code="size_mismatch")
        slider = self._run(self._slider.get)
        found = self._run(lambda: slider.slide_comparison(with_gap, background))
        # The centre comes from ddddocr (its largest differing region); its size ddddocr
        # discards, so it is measured here on the same difference, specks removed.
        difference = ImageChops.difference(with_gap, background).convert("L")
        mask = difference.point(lambda level: 255 if level > GAP_THRESHOLD else 0)
        box = mask.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3)).getbbox()
        if "target_x" not in found or box is None:  # ddddocr answers [0, 0] when nothing differs
            raise Unprocessable("The two images do not differ: no gap found.", code="gap_not_found")
        width, height = box[2] - box[0], box[3] - box[1]
        x1, y1 = found["target_x"] - width // 2, found["target_y"] - height // 2
        return [x1, y1, x1 + width, y1 + height]

    def _check_available(self) -> None:
        if not self.is_available():
            raise EngineUnavailable(f"ddddocr is unavailable: {self.unavailable_reason()}.")

    def _run(self, call):
        try:
            return call()
        except Exception as exc:
            raise EngineFailed(f"ddddocr failed: {exc}") from exc

    def _classify(self, image: Image.Image) -> dict:
        model = self._run(self._model.get)
        with self._call_lock:
            return self._run(lambda: ddddocr_lib.classify(model, image))

    def _detect(self, image: Image.Image) -> Result:
        detector = self._run(self._detector.get)
        boxes = sorted(self._run(lambda: detector.detection(image)))
        lines = [Line(text="", box=_corners(box), score=None) for box in boxes]
        return Result(lines=lines, text="", extra={"boxes": boxes})

    def classification_probability(self, image: Image.Image, charset: str = "") -> dict:
        """ddddocr 1.5's classification(probability=True) after set_ranges(charset), the shape
        its README decodes (each step's argmax, then repeats and "" dropped):
        {"charsets": [...], "probability": [[one per charset] per step]}, each step's softmax
        over the model's whole charset. With `charset`, only its characters (a preset's, 0-7) in
        its order and "" (the CTC blank) last, -1 for one the model does not know. (1.6 answers
        {text, probabilities, charset, confidence} instead, which 1.5's clients cannot read.)"""
        self._check_available()
        chars = [char for char in self._allowed_chars(charset) if char] + [""] if charset else None
        output = self._classify(image)
        probabilities = np.asarray(output["probabilities"], dtype=np.float32)
        probabilities = probabilities.reshape(-1, probabilities.shape[-1])  # (steps, 1, classes)
        known = list(output["charset"])
        if chars is None:
            return {"charsets": known, "probability": probabilities.tolist()}
        index = {char: i for i, char in enumerate(known)}
        columns = np.array([index.get(char, -1) for char in chars])
        picked = np.where(columns >= 0, probabilities[:, columns], np.float32(-1))
        return {"charsets": chars, "probability": picked.tolist()}

    def _allowed_chars(self, value: str) -> list[str]:
        """The characters `charset` allows, in its order: a preset's (0-7), or its own."""
        if len(value) == 1 and value.isdigit() and value not in PRESETS:
            raise InvalidInput(
                f"charset preset {value} does not exist; use 0-7 or a string of the allowed characters.",
                code="invalid_charset",
            )
        if len(value) > MAX_CHARSET:
            raise InvalidInput(f"charset is longer than {MAX_CHARSET} characters.", code="invalid_charset")
        if value == "7":
            return [char for char in self._run(self._model.get).get_charset() if char not in PRESETS["6"]]
        return list(dict.fromkeys(PRESETS.get(value, value)))

    def _charset_columns(self, value: str) -> np.ndarray | None:
        """The model's output columns `charset` allows (0, CTC blank, always), or None for all."""
        if not value:
            return None
        allowed = set(self._allowed_chars(value))
        charset = self._run(self._model.get).get_charset()
        columns = [i for i, char in enumerate(charset) if char and char in allowed]
        if not columns:
            raise InvalidInput(f"ddddocr reads none of the characters in {value!r}.", code="invalid_charset")
        return np.array([0, *columns])


def _restricted(probabilities: np.ndarray, columns: np.ndarray, charset: list[str]) -> str:
    """Greedy CTC decoding with every step's choice limited to `columns`."""
    best = columns[probabilities[:, columns].argmax(axis=1)]
    kept = [int(k) for i, k in enumerate(best) if k != 0 and (i == 0 or k != best[i - 1])]
    return "".join(charset[k] for k in kept)


def _corners(box: list[int]) -> list[list[float]]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
