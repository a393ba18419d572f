"""Every call this service makes into tesserocr (Tesseract's C++ API in this process), in one place.

tesserocr's wheel bundles Tesseract itself (CHECKED_TESSERACT) and reads the language packs
Debian installs: a `PyTessBaseAPI` keeps a pack loaded, so a call costs the recognition alone
instead of a `tesseract` process loading its model each time (118 -> 9 ms on a one-line crop,
issue 14). The calls were checked against the versions in CHECKED_VERSIONS, which
app/tests/test_engine_libs.py holds to requirements.txt and exercises. tesserocr is imported
inside each function, so a missing package only makes the engine unavailable
(app/engines/tesseract.py).
"""

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from PIL import Image

from app.errors import EngineFailed, EngineTimeout

if TYPE_CHECKING:
    import tesserocr

CHECKED_VERSIONS = {"tesserocr": "2.13.0"}
CHECKED_TESSERACT = "5.5"  # the library in tesserocr's wheel: its TSV and hOCR
# The wheel's own default folder is "./": Tesseract's TESSDATA_PREFIX wins, else Debian's.
DEBIAN_TESSDATA = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
)
MAX_LANGUAGE_SETS = 4  # language combinations kept loaded: a client cycling them loads again
MAX_IDLE_PER_SET = 8  # loaded readers kept per combination: more threads than that reload
TSV_COLUMNS = (
    "level",
    "page_num",
    "block_num",
    "par_num",
    "line_num",
    "word_num",
    "left",
    "top",
    "width",
    "height",
    "conf",
    "text",
)
TSV_INTS = frozenset(TSV_COLUMNS[:10])
# The document around GetHOCRText's page, as the `tesseract` command's hOCR renderer writes it.
HOCR_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title></title>
  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>
  <meta name='ocr-system' content='tesseract {version}' />
  <meta name='ocr-capabilities' content='ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf'/>
 </head>
 <body>
"""
HOCR_TAIL = " </body>\n</html>\n"


def datapath() -> str:
    """The tessdata folder read, or "" when no folder holds a pack. Checked on every call (a
    few stats): a folder set or emptied later is seen, as the binary saw it."""
    prefix = os.environ.get("TESSDATA_PREFIX")
    for folder in [prefix] if prefix else DEBIAN_TESSDATA:
        if os.path.isdir(folder) and any(name.endswith(".traineddata") for name in os.listdir(folder)):
            return folder.rstrip("/") + "/"
    return ""


def version() -> str:
    """The Tesseract doing the reading (the wheel's, not Debian's binary), e.g. "5.5.4"."""
    from tesserocr import PyTessBaseAPI

    return str(PyTessBaseAPI.Version())


def languages(path: str) -> list[str]:
    """The packs in the tessdata folder, `osd` (page layout, not a language) left out."""
    import tesserocr

    return [lang for lang in tesserocr.get_languages(path)[1] if lang != "osd"]


def new_reader(path: str, lang: str) -> "tesserocr.PyTessBaseAPI":
    """A PyTessBaseAPI with `lang` (e.g. "eng+chi_sim") loaded, page segmentation automatic
    as the command's default."""
    from tesserocr import PSM, PyTessBaseAPI

    try:
        return PyTessBaseAPI(path=path, lang=lang, psm=PSM.AUTO)
    except RuntimeError as exc:
        raise EngineFailed(f"Tesseract failed: could not load {lang} from {path} ({exc}).") from exc


class Readers:
    """Loaded PyTessBaseAPIs by (tessdata folder, languages). A call takes one no other thread
    holds (a new one when all are busy) and gives it back: two threads never share one, and a
    thread reuses what an earlier thread loaded, so short-lived threads (runserver's, one per
    connection) do not reload the model. The least recently used combinations beyond
    MAX_LANGUAGE_SETS are ended, so memory stays bounded whatever languages clients cycle."""

    def __init__(self, max_sets: int = MAX_LANGUAGE_SETS, max_idle: int = MAX_IDLE_PER_SET) -> None:
        self.max_sets, self.max_idle = max_sets, max_idle
        self._idle: OrderedDict[tuple[str, str], list[tesserocr.PyTessBaseAPI]] = OrderedDict()
        self._lock = threading.Lock()
        self.created = 0  # readers built in this process (tests, bench)

    @contextmanager
    def reader(self, path: str, lang: str) -> Iterator["tesserocr.PyTessBaseAPI"]:
        key = (path, lang)
        with self._lock:
            idle = self._idle.get(key)
            api = idle.pop() if idle else None
        if api is None:
            api = new_reader(path, lang)  # outside the lock: loading takes 0.1-1 s
            with self._lock:
                self.created += 1
        try:
            yield api
        finally:
            self._give_back(key, api)

    def loaded(self) -> dict[tuple[str, str], int]:
        """Idle readers per combination, least recently used first."""
        with self._lock:
            return {key: len(apis) for key, apis in self._idle.items()}

    def _give_back(self, key: tuple[str, str], api: "tesserocr.PyTessBaseAPI") -> None:
        ended = []
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            (idle if len(idle) < self.max_idle else ended).append(api)
            while len(self._idle) > self.max_sets:
                ended.extend(self._idle.popitem(last=False)[1])
        for old in ended:
            old.End()


def read(
    api: "tesserocr.PyTessBaseAPI", image: Image.Image, *, outputs: tuple[str, ...], timeout: float
) -> dict[str, str]:
    """Recognize an RGB image once and give each rendering asked for (`tsv`, `hocr`) as the
    command writes it (TSV with its header, hOCR a whole document). Recognition stops at
    `timeout` seconds (EngineTimeout; the reader stays usable); other failures are EngineFailed."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    api.SetImageBytes(rgb.tobytes(), rgb.width, rgb.height, 3, rgb.width * 3)
    dpi = image.info.get("dpi")
    if dpi and dpi[0]:
        api.SetSourceResolution(round(float(dpi[0])))  # the PNG's pHYs, as the command read it
    started = time.monotonic()
    if not api.Recognize(timeout=max(1, round(timeout * 1000))):
        api.Clear()  # drop the half-made page: the next SetImage starts clean
        if time.monotonic() - started >= timeout:
            raise EngineTimeout("Tesseract took too long on this image.")
        raise EngineFailed("Tesseract failed: it could not recognize this image.")
    rendered = {}
    for name in outputs:
        if name == "tsv":
            rendered[name] = "\t".join(TSV_COLUMNS) + "\n" + api.GetTSVText(0)
        elif name == "hocr":
            rendered[name] = HOCR_HEAD.format(version=version()) + api.GetHOCRText(0) + HOCR_TAIL
        else:
            raise ValueError(f"no rendering {name!r}")
    return rendered


def parse_tsv(tsv: str) -> dict[str, list]:
    """The TSV rendering (with its header) as columns (level, block_num, ..., conf, text);
    the position columns as ints, conf as a float (-1 on rows that are not words)."""
    header, *rows = tsv.rstrip("\n").split("\n")
    names = header.split("\t")
    columns: dict[str, list] = {name: [] for name in names}
    for row in rows:
        values = row.split("\t", len(names) - 1)
        values += [""] * (len(names) - len(values))
        for name, value in zip(names, values, strict=True):
            columns[name].append(
                int(value) if name in TSV_INTS else float(value) if name == "conf" else value
            )
    return columns


def has_osd(path: str) -> bool:
    """Whether the tessdata folder holds osd.traineddata, the model orientation detection reads."""
    return bool(path) and os.path.isfile(os.path.join(path, "osd.traineddata"))


def detect_orientation(api: "tesserocr.PyTessBaseAPI", image: Image.Image) -> dict | None:
    """Tesseract's orientation and script detection on one image, `api` holding `osd`:
    {"orient_deg", "orient_conf", "script_name", "script_conf"}, orient_deg the degrees the
    page is turned clockwise from upright, orient_conf its margin over the next best. None
    when too few characters were found. Greyscale bytes: tesserocr's SetImage encodes a PIL
    image to a file in memory first (2550×3300 px: 100 -> 37 ms)."""
    grey = image if image.mode == "L" else image.convert("L")
    api.SetImageBytes(grey.tobytes(), grey.width, grey.height, 1, grey.width)
    try:
        return api.DetectOrientationScript()
    finally:
        api.Clear()
