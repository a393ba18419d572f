"""Tesseract: printed documents in any language Debian ships a pack for."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from PIL import Image

from app import images
from app.engines.base import Line, Options, Result
from app.engines.textutil import join_cjk, split_langs
from app.errors import EngineFailed, EngineTimeout, EngineUnavailable, InvalidInput

if TYPE_CHECKING:
    import pytesseract

# Tesseract starts one OpenMP thread per core by default; on 2 cores one thread is
# 5x faster (measured), and uWSGI runs one engine call per process anyway.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


class TesseractEngine:
    name = "tesseract"
    tasks = ("document",)
    default_lang = "eng"
    outputs = ("hocr", "tsv")  # renderings it can add beside the lines

    def is_available(self) -> bool:
        return not self.unavailable_reason()

    def unavailable_reason(self) -> str:
        try:
            import pytesseract
        except ImportError:
            return "the pytesseract package is not installed"
        if not shutil.which(pytesseract.pytesseract.tesseract_cmd):
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

    def recognize(self, image: Image.Image, options: Options) -> Result:
        import pytesseract

        if not self.is_available():
            raise EngineUnavailable(f"Tesseract is unavailable: {self.unavailable_reason()}.")
        try:
            # One run gives the word table (tsv) and any extra rendering asked for (hocr).
            with _as_file(image) as source:
                outputs = dict(
                    zip(
                        ("tsv", *options.outputs),
                        pytesseract.run_and_get_multiple_output(
                            source,
                            extensions=["tsv", *options.outputs],
                            lang=options.lang,
                            timeout=settings.OCR_ENGINE_TIMEOUT,
                        ),
                        strict=True,
                    )
                )
        except pytesseract.TesseractError as exc:  # a RuntimeError too: caught first
            raise EngineFailed(f"Tesseract failed: {_reason(exc)}") from exc
        except RuntimeError as exc:
            if "timeout" in str(exc).lower():
                raise EngineTimeout("Tesseract took too long on this image.") from exc
            raise EngineFailed(f"Tesseract failed: {exc}") from exc
        data = pytesseract.pytesseract.file_to_dict(outputs["tsv"], "\t", -1)
        lines = _group_lines(data)
        extra = {name: _as_text(outputs[name]) for name in options.outputs}
        return Result(lines=lines, text="\n".join(line.text for line in lines), extra=extra)


@contextmanager
def _as_file(image: Image.Image) -> Iterator[Image.Image | str]:
    """The uploaded PNG's own bytes when the image is exactly them (app/images.py), so that
    pytesseract does not compress the same pixels again; otherwise the image itself."""
    data = images.source_png(image)
    if data is None:
        yield image
        return
    with tempfile.NamedTemporaryFile(prefix="ocr_", suffix=".png") as file:
        file.write(data)
        file.flush()
        yield file.name


def _reason(exc: "pytesseract.TesseractError") -> str:
    """Tesseract's own message; a process killed or crashed without one says so by its status."""
    if exc.message:
        return exc.message
    if isinstance(exc.status, int) and exc.status < 0:
        return f"the process was killed by signal {-exc.status}"
    return f"the process exited with status {exc.status}"


def _as_text(output: str | bytes) -> str:
    return output.decode("utf-8") if isinstance(output, bytes) else output


@cache
def _version() -> str:
    import pytesseract

    return str(pytesseract.get_tesseract_version())


@cache
def _installed_languages() -> tuple[str, ...]:
    """Asked of the binary once per process: it lists the packs in its tessdata folder."""
    import pytesseract

    return tuple(sorted(lang for lang in pytesseract.get_languages() if lang != "osd"))


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
