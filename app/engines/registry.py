"""Engine name -> engine, availability, and the `auto` routing rule.

Adding an engine: write one module implementing app.engines.base.Engine and add
one line to build_engines() below. This is the one module of app/engines that reads
settings: engines are handed an EngineConfig built from them (engine_config()).

The `auto` rule (also in the README):
1. a captcha task (text, math, detect) goes to ddddocr, an ID card or a single line
   (idcard, line) to RapidOCR, barcodes and QR codes (barcode) to zxing-cpp;
2. a document with an explicit language goes to RapidOCR when every language is
   one it reads and one of them is Chinese, otherwise to Tesseract (many packs);
3. a document with no language goes to RapidOCR (Chinese and English at once),
   or to Tesseract in English when RapidOCR is unavailable.
"""

from dataclasses import replace

from django.conf import settings

from app.engines.base import PDF_TEXT_SOURCES, Engine, EngineConfig, Options
from app.engines.ddddocr import DdddOcrEngine
from app.engines.rapidocr import LANGUAGES as RAPIDOCR_LANGUAGES
from app.engines.rapidocr import RapidOcrEngine
from app.engines.tesseract import TesseractEngine
from app.engines.textutil import split_langs
from app.engines.zxing import ZxingEngine
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
            ZxingEngine(config),
        )
    }


ENGINES: dict[str, Engine] = build_engines(engine_config())
AUTO = "auto"
CAPTCHA_TASKS = ("text", "math", "detect")
# Tasks only RapidOCR does: a Chinese ID card's fields, and an image read whole as one line.
RAPIDOCR_TASKS = ("idcard", "line")
BARCODE_TASKS = ("barcode",)
CARD_SIDES = ("face", "back")


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
    routed: bool = False,
    upright: bool = False,
    side: str = "",
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
    if task == "idcard":
        side = side or CARD_SIDES[0]
    if side and (task != "idcard" or side not in CARD_SIDES):
        raise InvalidInput(
            f"'side' is face or back, for task=idcard only; this request is task={task}."
            if task != "idcard"
            else f"Unknown side; choose {' or '.join(CARD_SIDES)}.",
            code="invalid_option",
            option="side",
        )
    if upright and task != "document":
        raise InvalidInput(
            f"'upright' is for task=document (it skips turning the page); this request is task={task}.",
            code="invalid_option",
            option="upright",
        )
    options = Options(
        lang=chosen.normalize_lang(lang),
        task=task,
        rotate=rotate,
        charset=charset,
        outputs=outputs,
        pdf_text=pdf_text,
        routed=routed,
        upright=upright,
        side=side,
    )
    return chosen, options


def _route(lang: str, task: str) -> Engine:
    tesseract, rapidocr, ddddocr = ENGINES["tesseract"], ENGINES["rapidocr"], ENGINES["ddddocr"]
    if task in CAPTCHA_TASKS:
        return ddddocr
    if task in RAPIDOCR_TASKS:
        return rapidocr
    if task in BARCODE_TASKS:
        return ENGINES["zxing"]
    if task and task != "document":
        raise InvalidInput(
            f"Unknown task '{task}'; choose document, "
            f"{', '.join([*RAPIDOCR_TASKS, *CAPTCHA_TASKS, *BARCODE_TASKS])}.",
            code="unsupported_task",
        )
    parts = split_langs(lang)
    if parts:
        if "chi_sim" in parts and set(parts) <= set(RAPIDOCR_LANGUAGES) and rapidocr.is_available():
            return rapidocr
        return tesseract
    return rapidocr if rapidocr.is_available() else tesseract


def routes_by_content(*, engine: str, lang: str, task: str, rotate: bool) -> bool:
    """Whether `auto` chooses by what the image shows (by_content): a document with no language
    (and no RapidOCR-only option). Anything the request names steers the choice instead."""
    name = engine or settings.OCR_DEFAULT_ENGINE
    return name == AUTO and not lang and task in ("", "document") and not rotate


# Scripts Tesseract's OSD names, and the pack that reads each: RapidOCR reads Han and Latin only.
# OSD cannot tell Latin languages apart: Latin pages read as English.
SCRIPT_LANGS = {
    "Latin": "eng",
    "Cyrillic": "rus",
    "Greek": "ell",
    "Arabic": "ara",
    "Hebrew": "heb",
    "Devanagari": "hin",
    "Thai": "tha",
    "Hangul": "kor",
    "Japanese": "jpn",
    "Katakana": "jpn",
    "Hiragana": "jpn",
}


# OSD's script confidence at which its script is believed. On the shared corpus it named the
# wrong script at up to 8.9 (a French photo "Cyrillic", a Chinese line "Arabic"), and no script
# at all on the Korean and Japanese photos; right ones reached 49.
MIN_SCRIPT_CONFIDENCE = 10.0


def by_content(
    options: Options, *, paper: bool, script: str | None, script_confidence: float
) -> tuple[Engine, Options]:
    """`auto` for a document without a language, once its image is seen (the rule, also in the
    README):
    1. text OSD is sure is in a script RapidOCR cannot read goes to Tesseract in that script's
       language, when its pack is installed;
    2. a page of paper (a scan or a drawn PDF page: large, little colour, mostly white) not in
       Han script goes to Tesseract in English: on the corpus's scans it reads 0.01 CER where
       RapidOCR reads 0.02-0.38, in a fraction of the time;
    3. everything else (photos, screenshots, crops, cards, Chinese) goes to RapidOCR.
    An unavailable engine is never chosen."""
    tesseract, rapidocr = ENGINES["tesseract"], ENGINES["rapidocr"]
    sure = SCRIPT_LANGS.get(script or "") if script_confidence >= MIN_SCRIPT_CONFIDENCE else None
    if tesseract.is_available():
        if sure and sure != "eng" and sure in tesseract.languages():
            return tesseract, replace(options, lang=tesseract.normalize_lang(sure))
        if (paper and script != "Han") or not rapidocr.is_available():
            return tesseract, replace(options, lang=tesseract.normalize_lang(""))
    if rapidocr.is_available():
        return rapidocr, replace(options, lang=rapidocr.normalize_lang(""))
    return tesseract, replace(options, lang=tesseract.normalize_lang(""))


def warm_up() -> None:
    """Load every available engine's models (called after uWSGI forks a worker)."""
    for engine in ENGINES.values():
        engine.warm_up()
