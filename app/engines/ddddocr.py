"""ddddocr: captchas. Task `text` reads a captcha's characters in one line."""

import contextlib
import io
import threading

from PIL import Image

from app.engines.base import LazyModel, Line, Options, Result, full_box
from app.errors import EngineFailed, EngineUnavailable, InvalidInput


def _build_model():
    import ddddocr

    # show_ad=False: the library otherwise prints a banner on every construction.
    with contextlib.redirect_stdout(io.StringIO()):
        return ddddocr.DdddOcr(show_ad=False)


class DdddOcrEngine:
    name = "ddddocr"
    tasks = ("text",)
    default_lang = ""

    def __init__(self) -> None:
        self._model = LazyModel(_build_model)
        # The classifier keeps per-call state (charset ranges) on the shared instance.
        self._call_lock = threading.Lock()

    def is_available(self) -> bool:
        return not self.unavailable_reason()

    def unavailable_reason(self) -> str:
        try:
            import ddddocr  # noqa: F401
        except ImportError as exc:
            return f"the {exc.name} package is not installed"
        return ""

    def version(self) -> str:
        from importlib.metadata import version

        return version("ddddocr")

    def languages(self) -> list[str]:
        return []

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

    def recognize(self, image: Image.Image, options: Options) -> Result:
        if not self.is_available():
            raise EngineUnavailable(f"ddddocr is unavailable: {self.unavailable_reason()}.")
        try:
            model = self._model.get()
            with self._call_lock:
                output = model.classification(image, probability=True)
        except Exception as exc:
            raise EngineFailed(f"ddddocr failed: {exc}") from exc
        text = output["text"]
        lines = [Line(text=text, box=full_box(*image.size), score=round(output["confidence"], 4))]
        return Result(lines=lines if text else [], text=text)
