"""Accuracy on real material: the shared corpus (../shared/corpus), per kind and engine.

    .venv/bin/python bench/real.py [--corpus DIR] [--engines tesseract,rapidocr,auto]
                                   [--kind KIND ...] [--only SUBSTRING] [--json PATH] [-v]

Every file of the corpus that has a truth (its manifest.json) is sent as a user sends it:
POST /api/ocr/ in process (APIClient: auth, validation, decoding, engine, record write),
`force=true`. Page engines and `auto` read the documents; ddddocr reads the captchas
(`task=text`, `task=math`); a Chinese ID card (a card whose truth fields hold an
18-digit number) is also read with `task=idcard`, scored on the fields it gives; barcodes
with `task=barcode` (zxing-cpp), scored on the payloads (the text). Files the
manifest marks `expect_error` must be refused (4xx), and files without truth are sent too:
they must not fail (no 5xx).

Scoring follows the manifest's `truth_scope` (whitespace ignored everywhere, case folded
where `case_sensitive` is false and for captchas):
- full: CER of the whole text (PDF pages joined); each_page: the truth once per page;
- substring, detections_*, first_N_lines, first_two_words: each truth line is looked for
  in the text (the best-matching stretch: edit distance with free ends), summed;
- fields: each field value looked for the same way; table_cells*: each non-empty cell;
- fields_normalized (invoice2data's normalized values) is not text on the page: skipped;
- math_captcha: the answer must be exact (1 or 0 errors of 1).
A refusal (4xx) counts as nothing read. CER per cell = summed distance / summed length.

`auto` is sent with no `lang` (the default request). Tesseract gets the file's language
when a pack for it is installed, English otherwise; RapidOCR reads Chinese and English
whatever it is told. The last table puts `auto` beside the better engine per kind, with
the target of the "Real documents" issue: auto <= 1.1 x best + 0.005. Not a test: it
prints figures (the suite's corpus tests assert the limits).
"""

import argparse
import base64
import json
import logging
import re
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import common
import inprocess

inprocess.setup("real")

import numpy as np  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from app.models import OcrRecord  # noqa: E402
from app.services.ocr import delete_record  # noqa: E402
from app.tests.corpus import CORPUS, score  # noqa: E402
from app.tests.factories import UserFactory  # noqa: E402

BENCH = "real"
PAGE_ENGINES = ("tesseract", "rapidocr", "auto")
ID_NUMBER = re.compile(r"\d{17}[\dX]")
TESSERACT_PACKS = Path("/usr/share/tesseract-ocr/5/tessdata")


# ---- what a file is scored on --------------------------------------------------------


@dataclass
class Reading:
    file: str
    kind: str
    engine: str
    distance: int = 0
    length: int = 0
    seconds: float = 0.0
    status: int = 0
    code: str = ""  # the error code of a refusal
    picked: str = ""  # the engine `auto` chose
    note: str = ""

    @property
    def cer(self) -> float:
        return self.distance / max(self.length, 1)


def requests_for(entry: dict, engines: tuple[str, ...]) -> list[tuple[str, dict]]:
    """(engine label, API fields) to read this file with."""
    if entry["kind"] == "captcha":
        return [("ddddocr", {"engine": "ddddocr", "task": "text"})]
    if entry["kind"] == "math_captcha":
        return [("ddddocr", {"engine": "ddddocr", "task": "math"})]
    if entry["kind"] == "barcode":
        return [("zxing", {"task": "barcode"})]  # auto sends task=barcode to zxing-cpp
    calls = []
    if entry["kind"] == "card" and any(
        ID_NUMBER.fullmatch(str(v)) for v in (entry.get("truth_fields") or {}).values()
    ):
        calls.append(
            ("idcard", {"task": "idcard"})
        )  # a Chinese ID card: its fields, as task=idcard gives them
    for name in engines:
        if name == "tesseract":
            packs = entry["lang"].split("+")
            langs = [lang for lang in packs if (TESSERACT_PACKS / f"{lang}.traineddata").exists()]
            if entry["lang"] == "mixed":
                langs = ["eng", "chi_sim"]
            calls.append((name, {"engine": name, "lang": "+".join(langs) or "eng"}))
        else:
            calls.append((name, {"engine": name}))
    return calls


def read(client: APIClient, entry: dict, data: bytes, label: str, fields: dict) -> Reading:
    reading = Reading(entry["file"].removeprefix("files/"), entry["kind"], label)
    payload = {"image_base64": base64.b64encode(data).decode(), "force": True, **fields}
    started = time.perf_counter()
    response = client.post("/api/ocr/", payload, format="json")
    reading.seconds = time.perf_counter() - started
    reading.status = response.status_code
    body = response.json() if response["Content-Type"].startswith("application/json") else {}
    if response.status_code >= 400:
        reading.code = (body.get("error") or {}).get("code", "?")
        text, answer = "", None
    else:
        text, answer = body.get("text") or "", body.get("result")
        if body.get("idcard"):  # scored on the fields it read, each looked for as a truth field is
            text = "\n".join(str(value) for value in body["idcard"].values() if isinstance(value, str))
        reading.picked = body.get("engine", "")
        if "id" in body:
            delete_record(record=OcrRecord.objects.get(pk=body["id"]))
    if entry.get("truth") is not None or entry.get("answer") is not None:
        reading.distance, reading.length, reading.note = score(entry, text, answer)
    return reading


# ---- the run -------------------------------------------------------------------------


@dataclass
class Cell:
    readings: list[Reading] = field(default_factory=list)

    @property
    def cer(self) -> float:
        return sum(r.distance for r in self.readings) / max(sum(r.length for r in self.readings), 1)

    @property
    def scored(self) -> int:
        return sum(1 for r in self.readings if r.length)


def run(entries: list[dict], corpus: Path, engines: tuple[str, ...], verbose: bool) -> list[Reading]:
    client = APIClient()
    client.force_authenticate(UserFactory(username=f"bench-real-{time.time_ns()}"))
    readings = []
    for entry in entries:
        data = (corpus / entry["file"]).read_bytes()
        for label, fields in requests_for(entry, engines):
            reading = read(client, entry, data, label, fields)
            readings.append(reading)
            if verbose:
                refused = f" refused {reading.status} {reading.code}" if reading.code else ""
                print(
                    f"  {reading.file:48} {label:9} CER {reading.cer:5.3f}"
                    f" ({reading.distance}/{reading.length})"
                    f" {reading.seconds * 1000:7.0f} ms{refused} {reading.note}",
                    flush=True,
                )
    return readings


def report(readings: list[Reading], entries: list[dict]) -> None:
    by_file = {entry["file"].removeprefix("files/"): entry for entry in entries}
    cells: dict[tuple[str, str], Cell] = defaultdict(Cell)
    for reading in readings:
        cells[reading.kind, reading.engine].readings.append(reading)
        cells["all", reading.engine].readings.append(reading)
    kinds = [*sorted({kind for kind, _ in cells} - {"all"}), "all"]
    names = ("tesseract", "rapidocr", "auto", "ddddocr", "idcard", "zxing")
    labels = [e for e in names if any(e == name for _, name in cells)]
    print(f"\n{time.strftime('%Y-%m-%d')}, {common.machine()}, commit {common.git_commit()}")
    print("CER per kind and engine; files scored / sent; median ms per file")
    print(f"  {'kind':13}" + "".join(f"{label:>26}" for label in labels))
    for kind in kinds:
        row = f"  {kind:13}"
        for label in labels:
            cell = cells.get((kind, label))
            if cell is None:
                row += f"{'':>26}"
                continue
            ms = float(np.median([r.seconds for r in cell.readings])) * 1000
            row += f"{cell.cer:8.3f} {cell.scored:3}/{len(cell.readings):<3} {ms:7.0f} ms "
        print(row)
    print("\n`auto` against the better page engine per kind (target: auto <= 1.1 x best + 0.005)")
    for kind in kinds:
        auto, pages = cells.get((kind, "auto")), [cells.get((kind, e)) for e in ("tesseract", "rapidocr")]
        pages = [cell for cell in pages if cell is not None and cell.scored]
        if auto is None or not auto.scored or not pages:
            continue
        best = min(cell.cer for cell in pages)
        verdict = "ok" if auto.cer <= 1.1 * best + 0.005 else "MISSED"
        print(f"  {kind:13} auto {auto.cer:.3f}  best {best:.3f}  {verdict}")
    failures = [r for r in readings if r.status >= 500]
    wrongly_read = [r for r in readings if by_file[r.file].get("expect_error") and r.status < 400]
    print(f"\nserver errors: {len(failures)} {[(r.file, r.engine, r.status) for r in failures][:10]}")
    print(f"files meant to be refused but read: {[(r.file, r.engine) for r in wrongly_read]}")
    refused = [(r.file, r.engine, r.code) for r in readings if 400 <= r.status < 500]
    print(f"refused (4xx): {len(refused)} {refused[:20]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--engines", default=",".join(PAGE_ENGINES))
    parser.add_argument("--kind", action="append", help="only these kinds (repeatable)")
    parser.add_argument("--only", help="only files whose path contains this")
    parser.add_argument("--json", type=Path, help="write every reading here")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per reading")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the refusals are counted, not logged
    entries = json.loads((args.corpus / "manifest.json").read_text())
    entries = [e for e in entries if not args.kind or e["kind"] in args.kind]
    entries = [e for e in entries if not args.only or args.only in e["file"]]
    started = time.monotonic()
    readings = run(entries, args.corpus, tuple(args.engines.split(",")), args.verbose)
    report(readings, entries)
    print(f"\n{len(readings)} readings of {len(entries)} files in {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in readings], indent=1))


if __name__ == "__main__":
    main()
