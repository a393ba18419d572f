"""The cloud market's products through the whole stack (nginx -> uWSGI, one worker), sent as
the market's stock demo sends them, beside the same readings in this process, in one run.

    .venv/bin/python bench/market.py [--cards 12] [--json PATH]

- ID cards: --cards specimens drawn by app/tests/idcards.py from seeds 3000 on (the tests, the
  tuning and bench/idcard.py use others), sides and variants in turn, each POSTed to
  /rest/160601/ocr/ocr_idcard.json as the demo posts it (a JSON body with no Content-Type,
  `configure` as JSON text, an APPCODE key). Figures: cards with every field exact, the time
  the client waits (median, p95) and the in-process read of the same image (idcard.read with
  RapidOCR, one engine thread as uWSGI's worker has). Target: a card <= 1.5 s through the stack.
- General OCR: the bench's documents (English 10 lines, Chinese 5 lines), and the corpus's
  photos, screenshots, cards and crops (../shared/corpus, read where it lies), each to
  /api/predict/ocr_general and to /api/ocr/ (engine auto, force), CER against the truth.
  Target: the market's CER equals the API's.
"""

import argparse
import base64
import io
import json
import os
import statistics
import time
import urllib.request
import uuid

os.environ["OCR_ENGINE_THREADS"] = "1"  # what uwsgi.ini gives each worker
os.environ["OMP_THREAD_LIMIT"] = "1"

import common
import inprocess

inprocess.setup("market")

from PIL import Image  # noqa: E402

from app import idcard  # noqa: E402
from app.engines.base import Options, Picture  # noqa: E402
from app.engines.registry import ENGINES  # noqa: E402
from app.tests import corpus  # noqa: E402
from app.tests.idcards import VARIANTS, specimen  # noqa: E402
from app.tests.imaging import cer, encode  # noqa: E402
from app.tests.stack import VIA_TLS, missing_tools, running_stack  # noqa: E402

BENCH = "market"
FIRST_SEED = 3000
MAX_CARD_SECONDS = 1.5
IDCARD_PATH = "/rest/160601/ocr/ocr_idcard.json"
GENERAL_PATH = "/api/predict/ocr_general"
# The corpus's kinds the general product is for: photos, screenshots, cards, crops.
CORPUS_KINDS = ("photo", "screenshot", "card", "crop")


def demo_post(url: str, key: str, image: bytes, config: dict) -> tuple[int, dict]:
    """The demo's predict(): urllib, no Content-Type, configure as JSON text; plus the header
    the stack's proxy expects (X-Forwarded-Proto), as nginx in front of it would add."""
    body = json.dumps({"image": base64.b64encode(image).decode(), "configure": json.dumps(config)})
    headers = {"Authorization": f"APPCODE {key}", **VIA_TLS}
    request = urllib.request.Request(url, headers=headers, data=body.encode())
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.status, json.loads(response.read())


def read_in_process(image, side: str) -> idcard.CardReading:
    engine = ENGINES["rapidocr"]
    options = Options(lang="chi_sim+eng", task="document")
    return idcard.read(image, side, lambda part: engine.recognize(Picture(part), options).lines)


def cards(count: int) -> list:
    pairs = [(side, variant) for variant in VARIANTS for side in ("face", "back")]
    return [specimen(FIRST_SEED + i, *pairs[i % len(pairs)]) for i in range(count)]


def bench_cards(stack, key: str, count: int) -> list[dict]:
    stack_s, raw_s, exact = [], [], 0
    for card in cards(count):
        side = "face" if "name" in card.fields else "back"
        data = encode(card.image, "JPEG", quality=90)
        sent = Image.open(io.BytesIO(data)).convert("RGB")  # both read the bytes the client sends
        started = time.perf_counter()
        raw = read_in_process(sent, side)
        raw_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        status, answer = demo_post(stack.url + IDCARD_PATH, key, data, {"side": side})
        stack_s.append(time.perf_counter() - started)
        assert status == 200, answer
        read = {name: answer.get(name) for name in card.fields}
        exact += read == card.fields
        flag = "" if read == card.fields else f"  wrong: {[k for k in read if read[k] != card.fields[k]]}"
        same = "same fields" if {k: raw.fields.get(k) for k in read} == read else "OTHER fields"
        print(f"  {side:4} {stack_s[-1]:.2f} s stack, {raw_s[-1]:.2f} s in-process ({same}){flag}")
    median, p95 = statistics.median(stack_s), common.percentile(stack_s, 0.95)
    raw_median = statistics.median(raw_s)
    return [
        common.row(BENCH, "idcard: every field exact", 100 * exact / count, "%"),
        common.row(BENCH, "idcard: in-process read median", raw_median, "s"),
        common.row(
            BENCH, "idcard: stack median", median, "s", f"<= {MAX_CARD_SECONDS}", median <= MAX_CARD_SECONDS
        ),
        common.row(BENCH, "idcard: stack p95", p95, "s", f"<= {MAX_CARD_SECONDS}", p95 <= MAX_CARD_SECONDS),
        common.row(BENCH, "idcard: stack/in-process", median / raw_median, "ratio"),
    ]


def general_and_api_texts(stack, key: str, data: bytes) -> tuple[str, str]:
    """One image read by the general product (the demo's request) and by POST /api/ocr/."""
    status, market = demo_post(stack.url + GENERAL_PATH, key, data, {})
    assert status == 200, market
    api = stack.post(
        "/api/ocr/?force=true",
        headers={"X-API-Key": key, **VIA_TLS},
        files={"image": ("image", data, "application/octet-stream")},
    )
    assert api.status_code == 201, api.text
    return "\n".join(item["word"] for item in market["ret"]), api.json()["text"]


def bench_general(stack, key: str) -> list[dict]:
    rows = []
    documents = {
        "English 10 lines": common.text_image(10),
        "Chinese 5 lines": common.chinese_image(5),
    }
    for name, (image, truth) in documents.items():
        market_text, api_text = general_and_api_texts(stack, key, encode(image))
        market_cer, api_cer = cer(truth, market_text), cer(truth, api_text)
        rows.append(common.row(BENCH, f"general {name}: /api/ocr/ CER", api_cer, "CER"))
        same = market_cer == api_cer
        rows.append(common.row(BENCH, f"general {name}: market CER", market_cer, "CER", "= API", same))
    return rows


def bench_corpus_general(stack, key: str, kinds: tuple[str, ...]) -> list[dict]:
    """The corpus's images of these kinds (read where it lies), each to the general product
    and to /api/ocr/: its CER (app/tests/corpus.py scores it against the manifest's truth)."""
    rows, market_total, api_total, same = [], [0, 0], [0, 0], 0
    entries = [
        e
        for e in corpus._manifest().values()
        if e["kind"] in kinds and e.get("truth") and not e["file"].endswith(".pdf")
    ]
    for entry in entries:
        data = (corpus.CORPUS / entry["file"]).read_bytes()
        market_text, api_text = general_and_api_texts(stack, key, data)
        read = [corpus.score(entry, text, None)[:2] for text in (market_text, api_text)]
        for total, (distance, length) in zip((market_total, api_total), read, strict=True):
            total[0], total[1] = total[0] + distance, total[1] + length
        same += market_text == api_text
    market_cer, api_cer = market_total[0] / max(market_total[1], 1), api_total[0] / max(api_total[1], 1)
    label = f"general corpus {'+'.join(kinds)} ({len(entries)})"
    rows.append(common.row(BENCH, f"{label}: /api/ocr/ CER", api_cer, "CER"))
    rows.append(common.row(BENCH, f"{label}: market CER", market_cer, "CER", "= API", market_cer == api_cer))
    rows.append(common.row(BENCH, f"{label}: same text", same, f"of {len(entries)}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cards", type=int, default=12)
    common.add_json_argument(parser)
    args = parser.parse_args()
    if missing := missing_tools():
        raise SystemExit(f"needs {', '.join(missing)} (./start.sh installs them)")
    print(f"# bench/market.py on {common.machine()}, commit {common.git_commit()}")
    ENGINES["rapidocr"].warm_up()
    with running_stack(UWSGI_PROCESSES="1", OCR_USER_THROTTLE="") as stack:
        key = common.api_key_headers(stack, f"bench-{uuid.uuid4().hex[:12]}")["X-API-Key"]
        rows = bench_cards(stack, key, args.cards) + bench_general(stack, key)
        if corpus.CORPUS.is_dir():
            rows += bench_corpus_general(stack, key, CORPUS_KINDS)
    for row in rows:
        mark = {True: "met", False: "MISSED", None: ""}[row["ok"]]
        print(f"{row['metric']:40} {row['value']:>9.3f} {row['unit']:6} {row['target']:>8} {mark}")
    common.write_rows(args.json, rows)


if __name__ == "__main__":
    main()
