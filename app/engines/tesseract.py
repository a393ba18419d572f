"""Tesseract: printed documents in any language Debian ships a pack for.

Read in this process through tesserocr: each language combination stays loaded in a
PyTessBaseAPI (tesseract_lib.Readers), so a call pays for recognition only. The wheel's
Tesseract is built without OpenMP: one call uses one core, whatever `threads` says.
"""

from functools import cache

from app.engines import tesseract_lib
from app.engines.base import EngineConfig, Line, Options, Picture, Result
from app.engines.textutil import join_cjk, split_langs
from app.errors import EngineUnavailable, InvalidInput


class TesseractEngine:
    name = "tesseract"
    tasks = ("document",)
    default_lang = "eng"
    outputs = ("hocr", "tsv")  # renderings it can add beside the lines

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.readers = tesseract_lib.Readers()

    def is_available(self) -> bool:
        return not self.unavailable_reason()

    def unavailable_reason(self) -> str:
        try:
            import tesserocr  # noqa: F401
        except ImportError:
            return "the tesserocr package is not installed"
        if not tesseract_lib.datapath():
            return "the Tesseract language packs are not installed (apt-get install tesseract-ocr)"
        return ""

    def version(self) -> str:
        return _version()

    def runtime(self) -> None:
        return None  # Tesseract is its own engine: no model runtime beside it

    def languages(self) -> list[str]:
        return list(_installed_languages(tesseract_lib.datapath())) if self.is_available() else []

    def normalize_lang(self, lang: str) -> str:
        parts = split_langs(lang or self.default_lang)
        installed = self.languages()
        missing = [part for part in parts if part not in installed]
        if missing:
            raise InvalidInput(
                f"Tesseract has no language pack for {', '.join(missing)}; "
                f"installed: {', '.join(installed) or 'none'}.",
                code="unsupported_language",
            )
        return "+".join(parts)

    def warm_up(self) -> None:
        """Load the default language now (a worker's first request then reads at full speed);
        other combinations load on their first use."""
        if self.is_available():
            _version()
            path = tesseract_lib.datapath()
            if self.default_lang in _installed_languages(path):
                with self.readers.reader(path, self.default_lang):
                    pass

    def recognize(self, picture: Picture, options: Options) -> Result:
        if not self.is_available():
            raise EngineUnavailable(f"Tesseract is unavailable: {self.unavailable_reason()}.")
        # One recognition gives the word table (tsv) and any extra rendering asked for (hocr).
        with self.readers.reader(tesseract_lib.datapath(), options.lang) as api:
            outputs = tesseract_lib.read(
                api, picture.image, outputs=("tsv", *options.outputs), timeout=self.config.timeout
            )
        lines = _group_lines(tesseract_lib.parse_tsv(outputs["tsv"]))
        extra = {name: outputs[name] for name in options.outputs}
        return Result(lines=lines, text="\n".join(line.text for line in lines), extra=extra)


@cache
def _version() -> str:
    return tesseract_lib.version()


@cache
def _installed_languages(path: str) -> tuple[str, ...]:
    """Listed once per process and folder: the packs in it."""
    return tuple(sorted(tesseract_lib.languages(path)))


def _group_lines(data: dict[str, list]) -> list[Line]:
    """Tesseract reports words; users want lines. Group words by (block, paragraph, line)."""
    grouped: dict[tuple[int, int, int], list[int]] = {}
    for i, word in enumerate(data.get("text", [])):
        if data["level"][i] == 5 and word.strip():
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            grouped.setdefault(key, []).append(i)
    lines = []
    for indexes in grouped.values():
        left = min(data["left"][i] for i in indexes)
        top = min(data["top"][i] for i in indexes)
        right = max(data["left"][i] + data["width"][i] for i in indexes)
        bottom = max(data["top"][i] + data["height"][i] for i in indexes)
        confs = [float(data["conf"][i]) for i in indexes if float(data["conf"][i]) >= 0]
        text = join_cjk(" ".join(data["text"][i].strip() for i in indexes))
        box = [[left, top], [right, top], [right, bottom], [left, bottom]]
        score = round(sum(confs) / len(confs) / 100, 4) if confs else None
        lines.append(Line(text=text, box=[[float(x), float(y)] for x, y in box], score=score))
    return lines
