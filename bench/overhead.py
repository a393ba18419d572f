"""What the full stack adds to an OCR call: the raw engine library called in this process
against the same image through nginx -> uWSGI -> auth -> decode -> engine -> file + row
write -> JSON.

    .venv/bin/python bench/overhead.py [--repeat 15] [--quick] [--json PATH]

Requests alternate raw / stack in the same run, each stack request with `force=true` so it
really reads. The client sends each image's multipart body, encoded once, on one kept-alive
connection (http.client): what is timed is the stack, not a client library (requests spends
about 1.5 ms of its own Python on every call here).

Raw is the library's own call on the decoded image, as someone running the engine
themselves would make it (pytesseract.image_to_data, RapidOCR()(array),
DdddOcr().classification), with the model settings our engines use and the thread settings
uwsgi.ini gives each worker (one engine thread, OMP_THREAD_LIMIT=1). The stack runs ONE
uWSGI process: the latency of one request, not a queue. `worker ms` is the engine time the
worker recorded itself (`duration_ms`, our engine wrapper included): stack - worker is the
request path around it, worker - raw our wrapper and the engine running inside the worker.
Targets: stack/raw <= 1.05 on the 10-line image for every engine; ddddocr overhead <= 10 ms.
"""

import argparse
import http.client
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# What uwsgi.ini sets in every worker; the raw side must run the engines the same way.
os.environ["OCR_ENGINE_THREADS"] = "1"
os.environ["OMP_THREAD_LIMIT"] = "1"

import common
import inprocess

inprocess.setup("overhead")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from urllib3 import encode_multipart_formdata  # noqa: E402

from app.engines import ddddocr_lib, rapidocr, registry  # noqa: E402
from app.tests.imaging import render  # noqa: E402
from app.tests.stack import VIA_TLS, missing_tools, running_stack, signed_up  # noqa: E402

BENCH = "overhead"
MAX_RATIO = 1.05
MAX_CAPTCHA_MS = 10.0


@dataclass
class Case:
    engine: str
    lang: str
    label: str
    image: Image.Image
    max_ratio: float | None = None
    max_overhead_ms: float | None = None


def cases() -> list[Case]:
    page, _ = common.text_image(10)
    crop = render(["Total amount 1234.56"], size=24)
    captcha, _ = common.captcha_image()
    return [
        Case("tesseract", "eng", "10-line", page, max_ratio=MAX_RATIO),
        Case("rapidocr", "", "10-line", page, max_ratio=MAX_RATIO),
        Case("ddddocr", "", "captcha", captcha, max_overhead_ms=MAX_CAPTCHA_MS),
        Case("tesseract", "eng", "one-line crop", crop),
        Case("rapidocr", "", "one-line crop", crop),
    ]


def raw_engines() -> dict[str, Callable[[Image.Image, str], object]]:
    """Each engine library's own call, its model built with our engines' settings."""
    import pytesseract

    config = registry.engine_config()
    rapid, dddd = rapidocr._build_model(config), ddddocr_lib.new_model(config.threads)
    return {
        "tesseract": lambda image, lang: pytesseract.image_to_data(image, lang=lang),
        "rapidocr": lambda image, lang: rapid(np.asarray(image)[:, :, ::-1]),  # RGB -> BGR
        "ddddocr": lambda image, lang: dddd.classification(image),
    }


class Client:
    """POSTs to the stack on one kept-alive connection."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self.headers = headers

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        self.connection.request("POST", path, body, {**self.headers, "Content-Type": content_type})
        response = self.connection.getresponse()
        return response.status, response.read()


def measure(client: Client, case: Case, raw_call, repeat: int, warmup: int) -> dict[str, float]:
    """Median ms of the raw call, the stack request and the worker's own engine time."""
    fields = {"engine": case.engine, "lang": case.lang, "force": "true"}
    body, content_type = encode_multipart_formdata(
        {**fields, "image": ("page.png", common.png(case.image), "image/png")}
    )
    raw, stacked, worker = [], [], []
    for i in range(warmup + repeat):
        image = case.image.copy()
        started = time.perf_counter()
        raw_call(image, case.lang)
        raw_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        status, answer = client.post("/api/ocr/", body, content_type)
        stack_ms = (time.perf_counter() - started) * 1000
        assert status == 201, answer
        if i >= warmup:
            raw.append(raw_ms)
            stacked.append(stack_ms)
            worker.append(json.loads(answer)["duration_ms"])
    return {
        "raw": statistics.median(raw),
        "stack": statistics.median(stacked),
        "worker": statistics.median(worker),
    }


def summary_rows(case: Case, ms: dict[str, float]) -> list[dict]:
    name = f"{case.engine} {case.label}"
    ratio, overhead = ms["stack"] / ms["raw"], ms["stack"] - ms["raw"]
    rows = [
        common.row(BENCH, f"{name}: raw median", ms["raw"], "ms"),
        common.row(BENCH, f"{name}: stack median", ms["stack"], "ms"),
    ]
    if case.max_ratio is not None:
        ok = ratio <= case.max_ratio
        rows.append(common.row(BENCH, f"{name}: stack/raw", ratio, "ratio", f"<= {case.max_ratio}", ok))
    else:
        rows.append(common.row(BENCH, f"{name}: stack/raw", ratio, "ratio"))
    if case.max_overhead_ms is not None:
        ok = overhead <= case.max_overhead_ms
        target = f"<= {case.max_overhead_ms:g}"
        rows.append(common.row(BENCH, f"{name}: stack - raw", overhead, "ms", target, ok))
    else:
        rows.append(common.row(BENCH, f"{name}: stack - raw", overhead, "ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15, help="measured pairs per image (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured pairs first (default 2)")
    parser.add_argument("--quick", action="store_true", help="5 pairs per image")
    common.add_json_argument(parser)
    args = parser.parse_args()
    repeat = 5 if args.quick else args.repeat
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh install"
    raw = raw_engines()
    rows = []
    with running_stack(UWSGI_PROCESSES="1") as stack:
        # One kept-alive connection, as any client making many calls has: what is measured is
        # the server's path, not a TCP handshake and the client library's set-up per request.
        client = Client(stack.url, {**VIA_TLS, **signed_up(stack, f"bench-{uuid.uuid4().hex[:12]}")})
        print(f"1 uWSGI process, OCR_ENGINE_THREADS=1; median of {repeat} alternating pairs")
        print(f"memory: {common.memory_warmth()} (bench/common.py: cold_page_ns)")
        print(
            f"{'engine':10} {'image':14} {'raw ms':>8} {'stack ms':>9} {'ratio':>6} "
            f"{'+ms':>6} {'worker ms':>9} {'path ms':>8}"
        )
        for case in cases():
            ms = measure(client, case, raw[case.engine], repeat, args.warmup)
            print(
                f"{case.engine:10} {case.label:14} {ms['raw']:8.1f} {ms['stack']:9.1f} "
                f"{ms['stack'] / ms['raw']:6.3f} {ms['stack'] - ms['raw']:6.1f} {ms['worker']:9.1f} "
                f"{ms['stack'] - ms['worker']:8.1f}",
                flush=True,
            )
            rows += summary_rows(case, ms)
    failed = [r["metric"] for r in rows if r["ok"] is False]
    print("targets: " + ("all met" if not failed else "missed: " + "; ".join(failed)))
    common.write_rows(args.json, rows)


if __name__ == "__main__":
    main()
