"""Every call this service makes into pytesseract, in one place.

Some are outside its documented API (the `pytesseract.pytesseract` module's command and its
TSV parser `file_to_dict`, the error's `message` and `status`): they were checked against the
versions in CHECKED_VERSIONS, which app/tests/test_engine_libs.py holds to requirements.txt
and exercises. Swapping pytesseract for another binding means rewriting this module alone.
pytesseract is imported inside each function, so a missing package only makes the engine
unavailable (app/engines/tesseract.py).
"""

from typing import TYPE_CHECKING

from PIL import Image

from app.errors import EngineFailed, EngineTimeout

if TYPE_CHECKING:
    import pytesseract

CHECKED_VERSIONS = {"pytesseract": "0.3.13"}
CHECKED_BINARY_MAJOR = "5"  # the tesseract binary's TSV and hOCR, as Debian ships it


def command() -> str:
    """The tesseract binary pytesseract runs (its module-level setting)."""
    import pytesseract

    return pytesseract.pytesseract.tesseract_cmd


def version() -> str:
    import pytesseract

    return str(pytesseract.get_tesseract_version())


def languages() -> list[str]:
    """The packs in the binary's tessdata folder, `osd` (page layout, not a language) left out."""
    import pytesseract

    return [lang for lang in pytesseract.get_languages() if lang != "osd"]


def run(source: Image.Image | str, *, extensions: list[str], lang: str, timeout: float) -> dict[str, str]:
    """One run of the binary on an image or a file path, giving each rendering asked for
    (`tsv`, `hocr`) as text; its failures come out as EngineFailed or EngineTimeout."""
    import pytesseract

    try:
        outputs = pytesseract.run_and_get_multiple_output(
            source, extensions=extensions, lang=lang, timeout=timeout
        )
    except pytesseract.TesseractError as exc:  # a RuntimeError too: caught first
        raise EngineFailed(f"Tesseract failed: {_reason(exc)}") from exc
    except RuntimeError as exc:
        if "timeout" in str(exc).lower():
            raise EngineTimeout("Tesseract took too long on this image.") from exc
        raise EngineFailed(f"Tesseract failed: {exc}") from exc
    return {name: _as_text(output) for name, output in zip(extensions, outputs, strict=True)}


def parse_tsv(tsv: str) -> dict[str, list]:
    """The TSV rendering as columns (level, block_num, ..., conf, text), numbers as ints."""
    import pytesseract

    return pytesseract.pytesseract.file_to_dict(tsv, "\t", -1)


def _reason(exc: "pytesseract.TesseractError") -> str:
    """Tesseract's own message; a process killed or crashed without one says so by its status."""
    if exc.message:
        return exc.message
    if isinstance(exc.status, int) and exc.status < 0:
        return f"the process was killed by signal {-exc.status}"
    return f"the process exited with status {exc.status}"


def _as_text(output: str | bytes) -> str:
    return output.decode("utf-8") if isinstance(output, bytes) else output
