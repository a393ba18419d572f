"""Tesseract: printed documents in any language Debian ships a pack for."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from PIL import Image

from app.engines import tesseract_lib
from app.engines.base import EngineConfig, Line, Options, Picture, Result
from app.engines.textutil import join_cjk, split_langs
from app.errors import EngineUnavailable, InvalidInput

# Tesseract starts one OpenMP thread per core by default; on 2 cores one thread is
# 5x faster (measured), and uWSGI runs one engine call per process anyway.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


class TesseractEngine:
    name = "tesseract"
    tasks = ("document",)
    default_lang = "eng"
    outputs = ("hocr", "tsv")  # renderings it can add beside the lines

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def is_available(self) -> bool:
        return not self.unavailable_reason()

    def unavailable_reason(self) -> str:
        try:
            import pytesseract  # noqa: F401
        except ImportError:
            return "the pytesseract package is not installed"
        if not shutil.which(tesseract_lib.command()):
            return "the tesseract binary is not installed (apt-get install tesseract-ocr)"
        return ""

    def version(self) -> str:
        return _version()

    def languages(self) -> list[str]:
        return list(_installed_languages()) if self.is_available() else []

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
        if self.is_available():
            _version()
            _installed_languages()

    def recognize(self, picture: Picture, options: Options) -> Result:
        if not self.is_available():
            raise EngineUnavailable(f"Tesseract is unavailable: {self.unavailable_reason()}.")
        # One run gives the word table (tsv) and any extra rendering asked for (hocr).
        with _as_file(picture) as source:
            outputs = tesseract_lib.run(
                source, extensions=["tsv", *options.outputs], lang=options.lang, timeout=self.config.timeout
            )
        lines = _group_lines(tesseract_lib.parse_tsv(outputs["tsv"]))
        extra = {name: outputs[name] for name in options.outputs}
        return Result(lines=lines, text="\n".join(line.text for line in lines), extra=extra)


@contextmanager
def _as_file(picture: Picture) -> Iterator[Image.Image | str]:
    """The uploaded PNG's own bytes when the picture has them, so that pytesseract does not
    compress the same pixels again; otherwise the image itself."""
    if picture.png_bytes is None:
        yield picture.image
        return
    with tempfile.NamedTemporaryFile(prefix="ocr_", suffix=".png") as file:
        file.write(picture.png_bytes)
        file.flush()
        yield file.name


@cache
def _version() -> str:
    return tesseract_lib.version()


@cache
def _installed_languages() -> tuple[str, ...]:
    """Asked of the binary once per process: it lists the packs in its tessdata folder."""
    return tuple(sorted(tesseract_lib.languages()))


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
