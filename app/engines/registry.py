"""Engine name -> engine, availability, and the `auto` routing rule.

Adding an engine: write one module implementing app.engines.base.Engine and add
one line to build_engines() below. This is the one module of app/engines that reads
settings: engines are handed an EngineConfig built from them (engine_config()).

The `auto` rule (also in the README):
1. a captcha task (text, math, detect) goes to ddddocr;
2. a document with an explicit language goes to RapidOCR when every language is
   one it reads and one of them is Chinese, otherwise to Tesseract (many packs);
3. a document with no language goes to RapidOCR (Chinese and English at once),
   or to Tesseract in English when RapidOCR is unavailable.
"""

from django.conf import settings

from app.engines.base import PDF_TEXT_SOURCES, Engine, EngineConfig, Options
from app.engines.ddddocr import DdddOcrEngine
from app.engines.rapidocr import LANGUAGES as RAPIDOCR_LANGUAGES
from app.engines.rapidocr import RapidOcrEngine
from app.engines.tesseract import TesseractEngine
from app.engines.textutil import split_langs
from app.errors import EngineUnavailable, InvalidInput


def engine_config() -> EngineConfig:
    """The engines' settings, read here only (engines never import settings)."""
    return EngineConfig(
        threads=settings.OCR_ENGINE_THREADS,
        timeout=settings.OCR_ENGINE_TIMEOUT,
        rapidocr_runtime=settings.OCR_RAPIDOCR_RUNTIME,
    )


def build_engines(config: EngineConfig) -> dict[str, Engine]:
    return {
        engine.name: engine
        for engine in (
            TesseractEngine(config),
            RapidOcrEngine(config),
            DdddOcrEngine(config),
        )
    }


ENGINES: dict[str, Engine] = build_engines(engine_config())
AUTO = "auto"
CAPTCHA_TASKS = ("text", "math", "detect")


def get(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise InvalidInput(
            f"Unknown engine '{name}'; choose one of {', '.join([AUTO, *ENGINES])}.",
            code="unknown_engine",
        ) from None


def names() -> list[str]:
    return [AUTO, *ENGINES]


def select(
    *,
    engine: str = "",
    lang: str = "",
    task: str = "",
    rotate: bool = False,
    charset: str = "",
    outputs: tuple[str, ...] = (),
    pdf_text: str = "auto",
) -> tuple[Engine, Options]:
    """Resolve a request's engine/lang/task into an available engine and checked options."""
    name = engine or settings.OCR_DEFAULT_ENGINE
    chosen = _route(lang, task) if name == AUTO else get(name)
    if not chosen.is_available():
        raise EngineUnavailable(
            f"The {chosen.name} engine is unavailable on this server: {chosen.unavailable_reason()}."
        )
    task = task or chosen.tasks[0]
    if task not in chosen.tasks:
        raise InvalidInput(
            f"The {chosen.name} engine does not do task '{task}'; it does {', '.join(chosen.tasks)}.",
            code="unsupported_task",
        )
    unsupported = [output for output in outputs if output not in chosen.outputs]
    if unsupported:
        raise InvalidInput(
            f"The {chosen.name} engine cannot render {', '.join(unsupported)}; "
            f"{'it renders ' + ', '.join(chosen.outputs) if chosen.outputs else 'use engine=tesseract'}.",
            code="unsupported_format",
        )
    if pdf_text not in PDF_TEXT_SOURCES:
        raise InvalidInput(
            f"Unknown pdf_text '{pdf_text}'; choose {', '.join(PDF_TEXT_SOURCES)}.", code="invalid_option"
        )
    options = Options(
        lang=chosen.normalize_lang(lang),
        task=task,
        rotate=rotate,
        charset=charset,
        outputs=outputs,
        pdf_text=pdf_text,
    )
    return chosen, options


def _route(lang: str, task: str) -> Engine:
    tesseract, rapidocr, ddddocr = ENGINES["tesseract"], ENGINES["rapidocr"], ENGINES["ddddocr"]
    if task in CAPTCHA_TASKS:
        return ddddocr
    if task and task != "document":
        raise InvalidInput(
            f"Unknown task '{task}'; choose document, {', '.join(CAPTCHA_TASKS)}.",
            code="unsupported_task",
        )
    parts = split_langs(lang)
    if parts:
        if "chi_sim" in parts and set(parts) <= set(RAPIDOCR_LANGUAGES) and rapidocr.is_available():
            return rapidocr
        return tesseract
    return rapidocr if rapidocr.is_available() else tesseract


def warm_up() -> None:
    """Load every available engine's models (called after uWSGI forks a worker)."""
    for engine in ENGINES.values():
        engine.warm_up()
