"""Character error rate per engine and category, raw engine vs the API, on a labelled set drawn in code.

    .venv/bin/python bench/accuracy.py [--n 16] [--quick] [--json PATH]

The set is generated here, seeded (the same bytes every run): English, Chinese, mixed
English+Chinese and digit lines at text heights of 12-48 px; noisy (gaussian,
salt-and-pepper), blurred and low-quality JPEG variants; photos stored turned by
90/180/270 degrees, once with the EXIF Orientation tag that says how to show them upright
(as PNG; and turned 90 as a camera's JPEG and as a phone's multi-picture JPEG with a
gain map, MPO) and once without it; tight crops of single words; one 3000x4000 page;
text captchas and arithmetic captchas (app/tests/captchas.py, its
`expressions`).

Each file is read twice, through exactly the same bytes:
- raw: the engine's `recognize` called in this process on the image an upload of those
  bytes should become: decoded by plain Pillow, independently of app/images.py
  (`Image.open`, `ImageOps.exif_transpose`, `convert("RGB")`), with the options
  `registry.select` gives the API for the same fields. So raw is the engine itself on a
  correctly decoded image, and any difference from the API is our pipeline's.
- API: POST /api/ocr/ in process with DRF's APIClient (auth, validation, app/images.py
  decoding, engine, file + row write, JSON), `force=true` so nothing is answered from
  an earlier record. A 4xx refusal counts as nothing read, and its error code is shown.

CER per cell is total edit distance / total reference characters (whitespace ignored,
app/tests/imaging.py's `cer`); captchas are compared case-insensitively, arithmetic
captchas with operator look-alikes (十 x X ...) mapped to one symbol each. The "any
order" column is the API's CER with each text's lines sorted first: it tells a misread
from lines read right but put in another order (as on pictures turned without EXIF); it
can be higher than the CER when an engine splits lines or reads specks as lines.

Targets: API CER <= raw CER in every cell (== where nothing is turned: the API also turns
what reads turned, app/recognition.py, where the raw call reads the pixels as they are);
every page engine's page CER <= 0.01;
EXIF-rotated CER == upright CER (the same base images as PNG, stored turned with the
tag or upright: turned back, the pixels are the same, so the CER must be too). The
camera JPEG and MPO rows have the API == raw target only: a JPEG of turned pixels is
not the upright JPEG turned, so their CER differs from upright by compression noise.
Images turned without EXIF are reported raw and through the API, and for RapidOCR again
with `rotate=true` (its text-angle classifier; no other engine has an automatic
rotation option). Not a test: it prints figures.
"""

import argparse
import base64
import io
import logging
import random
import resource
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import common
import inprocess

inprocess.setup("accuracy")

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter, ImageOps  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from app.engines import registry  # noqa: E402
from app.engines.base import Picture  # noqa: E402
from app.engines.captcha_math import OPERATORS  # noqa: E402
from app.errors import Unprocessable  # noqa: E402
from app.models import OcrRecord  # noqa: E402
from app.services.ocr import delete_record  # noqa: E402
from app.tests.captchas import CHINESE_OPERATORS, captcha, expressions  # noqa: E402
from app.tests.factories import UserFactory  # noqa: E402
from app.tests.imaging import CJK_FONT, HANZI, LATIN_FONT, WORDS, cer, encode, render  # noqa: E402

BENCH = "accuracy"
DEFAULT_N = 16  # about 6 minutes on a quiet 2-core machine
SIZES = (12, 16, 20, 24, 32, 40, 48)  # text heights: font size in px
LANGUAGES = ("english", "chinese", "mixed", "digits")
TURNS = (90, 180, 270)  # stored pixels = the upright picture turned this far counter-clockwise
EXIF_ORIENTATION = {90: 6, 180: 3, 270: 8}  # the tag that tells a viewer to turn them back
# Which engines read which kind of sample, with the `lang` and `task` each is asked for.
READERS: dict[str, list[tuple[str, str, str]]] = {
    "english": [("tesseract", "eng", ""), ("rapidocr", "", "")],
    "digits": [("tesseract", "eng", ""), ("rapidocr", "", "")],
    "chinese": [("tesseract", "chi_sim", ""), ("rapidocr", "", "")],
    "mixed": [("tesseract", "chi_sim+eng", ""), ("rapidocr", "", "")],
    "captcha": [("ddddocr", "", "text")],
    "math": [("ddddocr", "", "math")],
}
CAPTCHA_CHARS = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class Sample:
    category: str
    kind: str  # a READERS key
    truth: str
    data: bytes  # the file exactly as uploaded
    answer: str = ""  # an arithmetic captcha's value
    rotate_too: bool = False  # turned without EXIF: RapidOCR also reads it with rotate=true


# --- the labelled set ------------------------------------------------------------------


def text_lines(kind: str, rng: random.Random) -> list[str]:
    """One to three short lines of a language kind."""

    def line() -> str:
        if kind == "english":
            return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))
        if kind == "chinese":
            return "".join(rng.choice(HANZI) for _ in range(rng.randint(5, 10)))
        if kind == "digits":
            return " ".join(str(rng.randint(10, 99999)) for _ in range(rng.randint(2, 4)))
        words = [rng.choice(WORDS), "".join(rng.choice(HANZI) for _ in range(rng.randint(2, 4)))]
        words.append(str(rng.randint(1, 9999)))
        rng.shuffle(words)
        return " ".join(words)

    return [line() for _ in range(rng.randint(1, 3))]


def draw(kind: str, lines: list[str], size: int) -> Image.Image:
    font = LATIN_FONT if kind in ("english", "digits") else CJK_FONT
    return render(lines, size=size, font=font, pad=max(8, size // 2))


def gaussian(image: Image.Image, rng: random.Random) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 30, pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def salt_pepper(image: Image.Image, rng: random.Random) -> Image.Image:
    pixels = np.asarray(image).copy()
    dots = np.random.default_rng(rng.randrange(2**32)).random(pixels.shape[:2])
    pixels[dots < 0.02] = 0
    pixels[dots > 0.98] = 255
    return Image.fromarray(pixels)


def blurred(image: Image.Image, size: int) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(max(0.8, size / 20)))


def stored(image: Image.Image, turn: int, fmt: str, *, tagged: bool) -> bytes:
    """A picture as a device stores it: the pixels turned by `turn` and (if tagged) the EXIF
    Orientation tag that says how to show them upright. PNG keeps the pixels exact; JPEG
    is a camera's (quality 95); MPO is a phone's JPEG with a second, small picture after
    the photo (an Ultra HDR gain map), which Pillow names MPO."""
    params: dict = {"quality": 95} if fmt != "PNG" else {}
    if tagged:
        exif = Image.Exif()
        exif[0x0112] = EXIF_ORIENTATION[turn]
        params["exif"] = exif.tobytes()
    pixels = image.rotate(turn, expand=True) if turn else image
    if fmt == "MPO":
        gain_map = pixels.convert("L").resize((max(1, pixels.width // 4), max(1, pixels.height // 4)))
        params |= {"save_all": True, "append_images": [gain_map]}
    return encode(pixels, fmt, **params)


def crop(kind: str, rng: random.Random, size: int) -> tuple[Image.Image, str]:
    """One word cut tightly (2 px margin) out of a rendered line, as a user crops a field."""
    word = text_lines(kind, rng)[0].split()[0]
    image = draw(kind, [word], size)
    left, top, right, bottom = ImageOps.invert(image.convert("L")).getbbox()
    return image.crop((left - 2, top - 2, right + 2, bottom + 2)), word


def page(rng: random.Random) -> tuple[Image.Image, str]:
    """A 3000x4000 scan: 40 lines of English words and numbers at 44 px."""
    lines = []
    for _ in range(40):
        words = [rng.choice(WORDS) for _ in range(6)]
        words.insert(rng.randrange(7), f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}")
        lines.append(" ".join(words))
    image = Image.new("RGB", (3000, 4000), "white")
    image.paste(render(lines, size=44, pad=0), (150, 150))
    return image, "\n".join(lines)


def labelled_set(n: int) -> Iterator[Sample]:
    """n samples per category (one page), all drawn from one seeded generator."""
    rng = random.Random(7)

    def each(count: int) -> Iterator[tuple[str, list[str], int]]:
        for i in range(count):
            kind = LANGUAGES[i % len(LANGUAGES)]
            yield kind, text_lines(kind, rng), rng.choice(SIZES)

    for kind in LANGUAGES:
        for i in range(n):
            lines = text_lines(kind, rng)
            yield Sample(f"{kind} clean", kind, "\n".join(lines), encode(draw(kind, lines, SIZES[i % 7])))
    variants: dict[str, Callable[[Image.Image, int], bytes]] = {
        "noisy gaussian": lambda image, size: encode(gaussian(image, rng)),
        "noisy salt-pepper": lambda image, size: encode(salt_pepper(image, rng)),
        "blurred": lambda image, size: encode(blurred(image, size)),
        "jpeg q15": lambda image, size: encode(image, "JPEG", quality=15),
    }
    for name, variant in variants.items():
        for kind, lines, size in each(n):
            yield Sample(name, kind, "\n".join(lines), variant(draw(kind, lines, size), size))
    bases = [(kind, draw(kind, lines, size), "\n".join(lines)) for kind, lines, size in each(n)]
    for category, turn, tagged, fmt in [
        ("upright", 0, False, "PNG"),
        *[(f"exif {turn}", turn, True, "PNG") for turn in TURNS],
        ("exif 90 camera jpeg", 90, True, "JPEG"),
        ("exif 90 + gain map (MPO)", 90, True, "MPO"),
        *[(f"turned {turn}", turn, False, "PNG") for turn in TURNS],
    ]:
        for kind, image, truth in bases:  # one base set, shown upright and turned each way
            data = stored(image, turn, fmt, tagged=tagged)
            yield Sample(category, kind, truth, data, rotate_too=bool(turn) and not tagged)
    for i in range(n):
        kind = LANGUAGES[i % len(LANGUAGES)]
        image, word = crop(kind, rng, SIZES[i % len(SIZES)])
        yield Sample("small crop", kind, word, encode(image))
    image, truth = page(rng)
    yield Sample("page 3000x4000", "english", truth, encode(image))
    for i in range(n):
        text = "".join(rng.choice(CAPTCHA_CHARS) for _ in range(rng.randint(4, 6)))
        yield Sample("captcha text", "captcha", text, encode(captcha(text, seed=i)))
    for i, (text, answer) in enumerate(expressions(n, "+-×/" + CHINESE_OPERATORS, seed=3)):
        yield Sample("captcha math", "math", text, encode(captcha(text, seed=100 + i)), answer=str(answer))


# --- reading ---------------------------------------------------------------------------


def upright(data: bytes) -> Image.Image:
    """What an upload of these bytes should become, decoded without app/images.py."""
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")


def comparable(kind: str, text: str) -> str:
    if kind == "captcha":
        return text.lower()
    if kind == "math":
        return "".join(OPERATORS.get(char, {"＝": "=", "？": "?"}.get(char, char)) for char in text)
    return text


def any_order(text: str) -> str:
    """The lines sorted: a reading with every line right but in another order scores 0."""
    return "\n".join(sorted(line.strip() for line in text.splitlines() if line.strip()))


def distance(truth: str, text: str) -> int:
    """Edit distance, whitespace ignored (cer() times the reference length, back to a count)."""
    return round(cer(truth, text) * max(len("".join(truth.split())), 1))


def cpu_seconds() -> float:
    """This process's and its finished children's (Tesseract's) CPU time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def read_raw(name: str, lang: str, task: str, rotate: bool, data: bytes) -> tuple[str, object]:
    engine, options = registry.select(engine=name, lang=lang, task=task, rotate=rotate)
    try:
        result = engine.recognize(Picture(upright(data)), options)
    except Unprocessable:  # an arithmetic captcha read as no expression: the API's 422
        return "", None
    return result.text, result.extra.get("result")


def read_api(
    client: APIClient, name: str, lang: str, task: str, rotate: bool, data: bytes
) -> tuple[str, object, str]:
    """The text, the arithmetic answer, and the error code if the API refused the file."""
    payload = {"image_base64": base64.b64encode(data).decode(), "engine": name, "lang": lang, "force": True}
    payload |= {"task": task} if task else {}
    payload |= {"rotate": True} if rotate else {}
    response = client.post("/api/ocr/", payload, format="json")
    if response.status_code == 422:  # an unreadable arithmetic captcha, as raw
        return "", None, ""
    if 400 <= response.status_code < 500:  # refused: nothing read, a loss the table shows
        return "", None, response.json()["error"]["code"]
    assert response.status_code == 201, response.content
    body = response.json()
    return body["text"], body.get("result"), ""


@dataclass
class Cell:
    """One table row: an engine on a category, edit distances summed over its samples."""

    n: int = 0
    chars: int = 0
    raw: int = 0
    api: int = 0
    api_any_order: int = 0
    refused: list[str] = field(default_factory=list)  # the API's error codes, if it refused any
    cpu: float = 0.0
    solved: dict[str, int] = field(default_factory=lambda: {"raw": 0, "api": 0})

    def rate(self, which: str) -> float:
        return getattr(self, which) / max(self.chars, 1)


def measure(samples: list[Sample], client: APIClient) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    for index, sample in enumerate(samples):
        if index == 0 or samples[index - 1].category != sample.category:
            print(f"reading: {sample.category}", flush=True)
        truth = comparable(sample.kind, sample.truth)
        for name, lang, task in READERS[sample.kind]:
            for rotate in [False, True] if sample.rotate_too and name == "rapidocr" else [False]:
                cell = cells.setdefault((name, sample.category + (" rotate=true" if rotate else "")), Cell())
                started = cpu_seconds()
                raw_text, raw_answer = read_raw(name, lang, task, rotate, sample.data)
                api_text, api_answer, refusal = read_api(client, name, lang, task, rotate, sample.data)
                cell.cpu += cpu_seconds() - started
                cell.refused += [refusal] if refusal else []
                api_text = comparable(sample.kind, api_text)
                cell.n += 1
                cell.chars += len("".join(truth.split()))
                cell.raw += distance(truth, comparable(sample.kind, raw_text))
                cell.api += distance(truth, api_text)
                cell.api_any_order += distance(any_order(truth), any_order(api_text))
                if sample.answer:
                    cell.solved["raw"] += str(raw_answer) == sample.answer
                    cell.solved["api"] += str(api_answer) == sample.answer
    return cells


# --- report ----------------------------------------------------------------------------


def pooled(cells: list[Cell], which: str) -> float:
    return sum(getattr(cell, which) for cell in cells) / max(sum(cell.chars for cell in cells), 1)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(cells: dict[tuple[str, str], Cell]) -> list[dict]:
    """Print the table and the targets; return the summary rows for bench/run_all."""
    print(
        f"\n{'engine':10} {'category':28} {'n':>3} {'raw CER':>8} {'API CER':>8} {'diff':>8}"
        f" {'any order':>9} {'cpu s':>6}"
    )
    for (name, category), cell in cells.items():
        raw, api = cell.rate("raw"), cell.rate("api")
        print(
            f"{name:10} {category:28} {cell.n:3} {raw:8.4f} {api:8.4f} {api - raw:+8.4f}"
            f" {cell.rate('api_any_order'):9.4f} {cell.cpu:6.1f}"
        )
        if category == "captcha math":
            print(
                f"{'':10} {'  solved: raw, API':28} {cell.solved['raw']:3} {cell.solved['api']:8} of {cell.n}"
            )
    print("(any order: API CER with each text's lines sorted, so line order does not count)")

    print("\ntargets")
    worse = [key for key, cell in cells.items() if cell.api > cell.raw]
    better = [key for key, cell in cells.items() if cell.api < cell.raw]
    held = f"{len(cells) - len(worse)}/{len(cells)}"
    rows = [common.row(BENCH, "cells where API CER <= raw CER", held, "cells", "all", not worse)]
    print(f"  API CER <= raw CER: {held} cells {verdict(not worse)} ({len(better)} better)")
    for label, keys in (("worse", worse), ("better", better)):
        for name, category in keys:
            cell = cells[(name, category)]
            refused = f"; the API refused {len(cell.refused)}: {', '.join(sorted(set(cell.refused)))}"
            print(
                f"    {label}: {name} {category}: raw {cell.rate('raw'):.4f}, API {cell.rate('api'):.4f}"
                f"{refused if cell.refused else ''}"
            )
    for (name, category), cell in cells.items():
        if category.startswith("page"):
            api, ok = cell.rate("api"), cell.rate("api") <= 0.01
            rows.append(common.row(BENCH, f"{name} {category} CER (API)", api, "CER", "<= 0.01", ok))
            print(f"  {name} page CER <= 0.01: raw {cell.rate('raw'):.4f}, API {api:.4f} {verdict(ok)}")
    for name in registry.ENGINES:
        if (name, "upright") not in cells:
            continue
        base, turned = cells[(name, "upright")], [cells[(name, f"exif {turn}")] for turn in TURNS]
        ok = all(cell.api == base.api for cell in turned)
        upright_cer, exif_cer = base.rate("api"), pooled(turned, "api")
        target = f"== upright ({upright_cer:.4f})"
        rows.append(common.row(BENCH, f"{name} EXIF 90/180/270 CER (API)", exif_cer, "CER", target, ok))
        each = ", ".join(f"{cell.rate('api'):.4f}" for cell in turned)
        print(f"  {name} EXIF 90/180/270 == upright: {each} vs {upright_cer:.4f} {verdict(ok)}")

    print("\nfigures")
    for name in registry.ENGINES:
        clean = [cells[key] for key in cells if key[0] == name and key[1].endswith(" clean")]
        if clean:
            rows.append(common.row(BENCH, f"{name} clean text CER (API)", pooled(clean, "api"), "CER"))
            print(f"  {name} clean text (4 languages, 12-48 px) CER: {pooled(clean, 'api'):.4f}")
        for option in ("", " rotate=true"):
            turned = [cells.get((name, f"turned {turn}{option}")) for turn in TURNS]
            if all(turned):
                label = f"{name} turned 90/180/270 without EXIF{option}"
                cer_any = pooled(turned, "api_any_order")
                rows.append(common.row(BENCH, f"{label} CER (API)", pooled(turned, "api"), "CER"))
                rows.append(common.row(BENCH, f"{label} CER, lines in any order (API)", cer_any, "CER"))
                print(f"  {label} CER: {pooled(turned, 'api'):.4f} ({cer_any:.4f} with lines in any order)")
    for category in ("captcha text", "captcha math"):
        cell = cells.get(("ddddocr", category))
        if cell:
            rows.append(common.row(BENCH, f"ddddocr {category} CER (API)", cell.rate("api"), "CER"))
            print(f"  ddddocr {category} CER: {cell.rate('api'):.4f}")
    if cell := cells.get(("ddddocr", "captcha math")):
        share = 100 * cell.solved["api"] / max(cell.n, 1)
        rows.append(common.row(BENCH, "ddddocr arithmetic captchas solved (API)", share, "%"))
        print(f"  ddddocr arithmetic captchas solved: {cell.solved['api']}/{cell.n} = {share:.0f} %")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--n", type=int, default=DEFAULT_N, help=f"samples per category (default {DEFAULT_N})"
    )
    parser.add_argument("--quick", action="store_true", help="2 samples per category: a ~2 minute smoke run")
    common.add_json_argument(parser)
    args = parser.parse_args()
    missing = [font for font in (LATIN_FONT, CJK_FONT) if not Path(font).exists()]
    if missing:
        raise SystemExit(f"missing fonts {', '.join(missing)}: run ./start.sh test once (it installs them)")
    n = 2 if args.quick else args.n
    logging.getLogger("django.request").setLevel(logging.ERROR)  # refusals are counted, not logged
    user = UserFactory(username=f"bench-{uuid.uuid4().hex}")
    client = APIClient()
    client.force_authenticate(user)
    started, cpu = time.perf_counter(), cpu_seconds()
    registry.warm_up()
    samples = list(labelled_set(n))
    print(f"{len(samples)} samples, {n} per category; {common.machine()}; commit {common.git_commit()}")
    try:
        cells = measure(samples, client)
    finally:
        for record in OcrRecord.objects.filter(owner=user):  # its file goes with it
            delete_record(record=record)
    rows = report(cells)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(f"\n{elapsed:.0f} s ({cpu:.0f} s of CPU) in all")
    rows.append(common.row(BENCH, "run time", elapsed, "s"))
    common.write_rows(args.json, rows)


if __name__ == "__main__":
    main()
