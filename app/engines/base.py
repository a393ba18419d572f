"""The one small protocol every engine implements, and the types it takes and returns.

An engine is a process-wide singleton: it loads its model on first use (under a
lock, once), reports itself unavailable instead of raising when its package or
binary is missing, and turns its library's failures into app.errors types. It is
handed its configuration (EngineConfig, built from settings in registry.py only) and
reads a Picture; every call into its library that the library does not document
lives in one `<engine>_lib.py` module, pinned to the library's version by
app/tests/test_engine_libs.py.
"""

import importlib
import importlib.metadata
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from PIL import Image

Point = list[float]


@dataclass(frozen=True)
class Line:
    text: str
    box: list[Point]  # four corners, clockwise from top-left, in image pixels
    score: float | None  # 0..1; None when the engine reports no confidence
    page: int | None = None  # 1-based, for lines read from a PDF

    def as_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        if self.page is None:
            del fields["page"]
        return fields


@dataclass
class Result:
    lines: list[Line]
    text: str
    extra: dict[str, Any] = field(default_factory=dict)  # task-specific output


@dataclass(frozen=True)
class EngineConfig:
    """The deployment's word to every engine, given to its constructor (registry.py builds it
    from settings): engines never read settings themselves."""

    threads: int  # threads one engine may use in this process; 0 = the library's own default
    timeout: float  # seconds one recognize() call may take (OCR_ENGINE_TIMEOUT)
    rapidocr_runtime: str = "onnxruntime"  # or openvino (OCR_RAPIDOCR_RUNTIME)


@dataclass(frozen=True, eq=False)
class Picture:
    """What an engine reads: an upright 8-bit RGB image. (Every engine reads pixels in this
    process; a field for what one needs beside them, such as a DPI, goes here.)"""

    image: Image.Image


# How a PDF page's text is read (Options.pdf_text, app/pdf.py): its own text layer where it has
# a usable one (auto), the layer only (a page without one reads as empty), or drawn and recognized.
PDF_TEXT_SOURCES = ("auto", "layer", "ocr")


@dataclass(frozen=True)
class Options:
    lang: str
    task: str
    rotate: bool = False
    charset: str = ""  # ddddocr text: a preset "0"-"7" or the allowed characters; "" = all
    outputs: tuple[str, ...] = ()  # extra renderings wanted in Result.extra, e.g. ("hocr",)
    pdf_text: str = "auto"  # a PDF page's own text layer: auto (where usable), layer (only), ocr (never)
    routed: bool = False  # engine and lang are auto's to choose from the content (registry.by_content)
    upright: bool = False  # the client says the image is upright and level: no turning, no levelling
    side: str = ""  # task=idcard: face (the holder's details) or back (issuer, validity)


def full_box(width: int, height: int) -> list[Point]:
    return [[0.0, 0.0], [float(width), 0.0], [float(width), float(height)], [0.0, float(height)]]


@runtime_checkable
class Engine(Protocol):
    name: str
    tasks: tuple[str, ...]
    default_lang: str
    outputs: tuple[str, ...]  # renderings beyond lines it can add to Result.extra (e.g. "hocr")

    def is_available(self) -> bool: ...

    def unavailable_reason(self) -> str: ...

    def version(self) -> str: ...

    def runtime(self) -> dict[str, str] | None:
        """The inference runtime running its models ({"name", "version"}), None if none."""
        ...

    def languages(self) -> list[str]: ...

    def normalize_lang(self, lang: str) -> str:
        """Return the canonical language string, or raise InvalidInput."""
        ...

    def warm_up(self) -> None:
        """Load models now, so the first request does not pay for it."""
        ...

    def recognize(self, picture: Picture, options: Options) -> Result: ...


class PythonPackageEngine:
    """For engines that are Python packages: available when every package imports (a
    missing one is named in the reason); the version is the last package's."""

    packages: tuple[str, ...] = ()

    def is_available(self) -> bool:
        return not self.unavailable_reason()

    def unavailable_reason(self) -> str:
        for package in self.packages:
            try:
                importlib.import_module(package)
            except ImportError:
                return f"the {package} package is not installed"
        return ""

    def version(self) -> str:
        return importlib.metadata.version(self.packages[-1])


T = TypeVar("T")


class LazyModel(Generic[T]):
    """A model built once per process, on first use, thread-safely."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
        return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None
