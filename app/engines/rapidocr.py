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
import math
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

# Pages up to WHOLE_SIDE go to the library whole, as they always did. Past it the library
# shrank the whole page to WHOLE_SIDE, detection and recognition both, and small print was
# lost. Larger pages are detected in tiles of at most TILE_SIDE (detection memory grows with
# its input: about 0.25 GB a megapixel), OVERLAP apart so that a line cut by one tile's edge
# lies whole in the next, then every line is read from the page at full resolution.
WHOLE_SIDE = 2000
CROP_HEIGHT = 96  # px: an image this low the detector found nothing in is read as one line
TILE_SIDE = 1536
OVERLAP = 192  # pixels of the detection image: more than two lines of any print it reads well
# A page is first detected at the library's scale; when its lines' median height there is
# below MIN_LINE (the 2000-pixel limit left 8-pixel print at CER 0.3), again, scaled so that
# they are TARGET_LINE high (full resolution at most, or when nothing was found).
MIN_LINE = 20
TARGET_LINE = 24


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
    # idcard reads documents too: app/idcard/ finds the card, its lines come from `document`;
    # `line` reads the whole image as one line, without detection.
    tasks = ("document", "idcard", "line")
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
        try:
            model = self._model.get().model
        except Exception as exc:
            raise EngineFailed(f"RapidOCR failed: {exc}") from exc
        with self._call_lock, deadline.limit(self.config.timeout) as run:
            try:
                read = _read_line if options.task == "line" else _read
                lines = read(model, picture.image, options.rotate)
            except Exception as exc:  # the library raises bare exceptions of many kinds
                if run.terminate:
                    raise EngineTimeout("RapidOCR took too long on this image.") from exc
                raise EngineFailed(f"RapidOCR failed: {exc}") from exc
        return Result(lines=lines, text="\n".join(line.text for line in lines))


def _line(box: Any, text: str, score: float) -> Line:
    return Line(
        text=text,
        box=[[round(float(x), 1), round(float(y), 1)] for x, y in box],
        score=round(float(score), 4),
    )


def _read(model: Any, image: Image.Image, rotate: bool) -> list[Line]:
    if max(image.size) > WHOLE_SIDE:
        return _read_large(model, image, rotate)
    return _read_whole(model, image, rotate)


def _read_whole(model: Any, image: Image.Image, rotate: bool) -> list[Line]:
    """A page up to WHOLE_SIDE: the library's own pipeline, in one call. An image the detector
    finds nothing in may be a word cropped tight (a dataset's 73x28 "PAIN"): one no taller
    than CROP_HEIGHT and wider than tall is read whole as one line."""
    bgr = np.asarray(image)[:, :, ::-1]
    output = model(bgr, use_cls=rotate)
    if output.boxes is not None and output.txts is not None:
        return [_line(*fields) for fields in zip(output.boxes, output.txts, output.scores, strict=True)]
    if image.height > CROP_HEIGHT or image.width < image.height:
        return []
    return _read_line(model, image, rotate)


def _read_line(model: Any, image: Image.Image, rotate: bool) -> list[Line]:
    """The whole image as one line of text: no detection (a crop of one line, a field)."""
    bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
    whole = np.array([[0, 0], [image.width, 0], [image.width, image.height], [0, image.height]], np.float32)
    ((text, score),) = rapidocr_lib.read_boxes(model, bgr, whole[None], rotate)
    if not text.strip() or score < rapidocr_lib.text_score(model):
        return []
    return [_line(whole, text, score)]


def _read_large(model: Any, image: Image.Image, rotate: bool) -> list[Line]:
    """A page past WHOLE_SIDE: detection in tiles, at the library's scale or finer when the
    text is too small for it (`_detect`), then each line read from the page at full resolution."""
    boxes = _detect(model, image)
    if not len(boxes):
        return []
    boxes = rapidocr_lib.sort_boxes(boxes)
    bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
    minimum = rapidocr_lib.text_score(model)
    read = rapidocr_lib.read_boxes(model, bgr, boxes, rotate)
    return [
        _line(box, text, score)
        for box, (text, score) in zip(boxes, read, strict=True)
        if text.strip() and score >= minimum
    ]


def _detect(model: Any, image: Image.Image) -> np.ndarray:
    """Text boxes of a page past WHOLE_SIDE, in its pixels: at the library's scale, or finer
    when its lines there are too small to read."""
    scale = WHOLE_SIDE / max(image.size)
    boxes = _detect_at(model, image, scale)
    height = _median_height(boxes) * scale
    if height >= MIN_LINE:
        return boxes
    finer = min(1.0, scale * TARGET_LINE / height) if height else 1.0
    return _detect_at(model, image, finer)


def _detect_at(model: Any, image: Image.Image, scale: float) -> np.ndarray:
    width, height = round(image.width * scale), round(image.height * scale)
    scaled = image if scale == 1 else image.resize((width, height), Image.Resampling.BILINEAR)
    boxes, tiles = [], []
    for x0, x1 in _spans(width):
        for y0, y1 in _spans(height):
            tile = np.ascontiguousarray(np.asarray(scaled.crop((x0, y0, x1, y1)))[:, :, ::-1])
            found = rapidocr_lib.detect(model, tile) + np.array([x0, y0], np.float32)
            boxes.extend(found)
            tiles.extend([(x0, y0, x1, y1)] * len(found))
    return _merge(boxes, tiles) / scale


def _spans(length: int) -> list[tuple[int, int]]:
    """Equal stretches of at most TILE_SIDE covering 0..length, overlapping by >= OVERLAP;
    sizes in multiples of 32 (the detector's stride) where the length allows."""
    count = max(1, math.ceil((length - OVERLAP) / (TILE_SIDE - OVERLAP)))
    if count == 1:
        return [(0, length)]
    size = min(length, math.ceil((length + (count - 1) * OVERLAP) / count / 32) * 32)
    return [
        (start, start + size) for start in (round(i * (length - size) / (count - 1)) for i in range(count))
    ]


def _merge(boxes: list[np.ndarray], tiles: list[tuple[int, int, int, int]]) -> np.ndarray:
    """The tiles' boxes (`tiles`: each box's tile), the same line seen by two tiles (whole in
    both, or cut by an edge) made one box: boxes of different tiles that meet along the
    line's direction and share at least half their height across it. First the pieces of a
    line cut by an edge that another tile saw whole go."""
    if not boxes:
        return np.zeros((0, 4, 2), np.float32)
    low = np.array([box.min(axis=0) for box in boxes])
    high = np.array([box.max(axis=0) for box in boxes])
    kept = np.nonzero(~_cut_and_seen_whole(low, high, np.array(tiles, np.float32)))[0]
    boxes, tiles, low, high = [boxes[i] for i in kept], [tiles[i] for i in kept], low[kept], high[kept]
    parent = list(range(len(boxes)))
    rects = np.unique(np.array(tiles, np.float32), axis=0)  # only boxes reaching into another tile meet
    reach = (low[:, None] <= rects[None, :, 2:]) & (rects[None, :, :2] <= high[:, None])
    seam = np.nonzero(np.all(reach, axis=2).sum(axis=1) > 1)[0]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    lo, hi = low[seam], high[seam]
    touching = np.all((lo[:, None] <= hi[None]) & (lo[None] <= hi[:, None]), axis=2)
    pairs = np.nonzero(np.triu(touching, 1))
    for i, j in zip(seam[pairs[0]], seam[pairs[1]], strict=True):
        if tiles[i] != tiles[j] and _same_line(boxes[i], boxes[j]):
            parent[root(i)] = root(j)
    groups: dict[int, list[np.ndarray]] = {}
    for i, box in enumerate(boxes):
        groups.setdefault(root(i), []).append(box)
    return np.array([_enclose(group) for group in groups.values()], np.float32)


def _cut_and_seen_whole(low: np.ndarray, high: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """Which boxes (corners `low`, `high`, tile `tiles`) their tile's edge cuts and another tile
    holds clear of its edges: pieces of what that tile saw whole (the invoice's close-set fine
    print, cut by an edge, was one piece over two lines, and merging it joined them)."""
    rects = np.unique(tiles, axis=0)
    size = rects[:, 2:].max(axis=0)
    near = 2  # pixels from an edge shared with another tile: cut by it
    inner_low = np.where(rects[:, :2] > 0, rects[:, :2] + near, -np.inf)
    inner_high = np.where(rects[:, 2:] < size, rects[:, 2:] - near, np.inf)
    whole = np.all((inner_low[None] < low[:, None]) & (high[:, None] < inner_high[None]), axis=2)
    own = np.all(rects[None] == tiles[:, None], axis=2)
    return ~np.any(whole & own, axis=1) & np.any(whole & ~own, axis=1)


def _frame(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along the box's top edge and square to it, clockwise (down for level text)."""
    along = box[1] - box[0]
    along = along / max(float(np.linalg.norm(along)), 1e-6)
    return along, np.array([-along[1], along[0]])


def _same_line(a: np.ndarray, b: np.ndarray) -> bool:
    ref = a if _area(a) >= _area(b) else b
    along, across = _frame(ref)
    (a0, a1), (b0, b1) = _extent(a, along), _extent(b, along)
    if min(a1, b1) - max(a0, b0) <= 0:
        return False
    (a0, a1), (b0, b1) = _extent(a, across), _extent(b, across)
    return min(a1, b1) - max(a0, b0) >= 0.5 * min(a1 - a0, b1 - b0)


def _extent(box: np.ndarray, axis: np.ndarray) -> tuple[float, float]:
    projected = box @ axis
    return float(projected.min()), float(projected.max())


def _area(box: np.ndarray) -> float:
    return float(np.linalg.norm(box[1] - box[0]) * np.linalg.norm(box[3] - box[0]))


def _enclose(group: list[np.ndarray]) -> np.ndarray:
    """One box around a line's boxes, in the frame of the largest (a skewed line stays skewed)."""
    if len(group) == 1:
        return group[0]
    along, across = _frame(max(group, key=_area))
    points = np.concatenate(group)
    (u0, u1), (v0, v1) = _extent(points, along), _extent(points, across)
    return np.array([u * along + v * across for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1))])


def _median_height(boxes: np.ndarray) -> float:
    """The median line height: each box's shorter side (0 without boxes)."""
    if not len(boxes):
        return 0.0
    sides = np.stack(
        [np.linalg.norm(boxes[:, 3] - boxes[:, 0], axis=1), np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=1)]
    )
    return float(np.median(sides.min(axis=0)))
