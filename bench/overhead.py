"""What the full stack adds to an OCR call: the engine called raw in this process against the
same image through nginx -> uWSGI -> auth -> decode -> engine -> file + row write -> JSON, with
today's old raw calls and the peer services beside them, all in one run.

    .venv/bin/python bench/overhead.py [--repeat 15] [--quick] [--no-peers] [--json PATH]

Per image, in turn, each once per round: the FASTEST raw call (bench/rawcalls.py: tesserocr
with its PyTessBaseAPI kept loaded, RapidOCR on OpenVINO, ddddocr), the OLD raw call (how this
project called the engines before issue 14: pytesseract.image_to_data, a `tesseract` process
per call; RapidOCR on onnxruntime), the stack (`force=true`, so it really reads) and the peer
for that engine (bench/peers.py): rapidocr_api 0.2.0 for RapidOCR, the original ocr_api_server
for captchas, each in its own venv with its own defaults (so it may read differently: its
figure is what a user of it waits, not the same work).

Raw calls get the model settings our engines use and the thread settings uwsgi.ini gives
each worker (one engine thread, OMP_THREAD_LIMIT=1); the stack runs ONE uWSGI process: the
latency of one request, not a queue. The client sends each image's multipart body, encoded
once, on one kept-alive connection (http.client): what is timed is the server, not a client
library (requests spends about 1.5 ms of its own Python on every call here). `worker ms` is
the engine time the worker recorded itself (`duration_ms`, our engine wrapper included):
stack - worker is the request path around it.
Targets: stack/fastest <= 1.05 on the 10-line image (Tesseract, RapidOCR); ddddocr
stack - fastest <= 10 ms; Tesseract one-line crop <= 25 ms through the stack; Tesseract 10-line
stack <= 0.5x the old pytesseract call; RapidOCR 10-line stack <= 0.65x the old onnxruntime call.
"""

import argparse
import contextlib
import http.client
import json
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# What uwsgi.ini sets in every worker; the raw side must run the engines the same way.
os.environ["OCR_ENGINE_THREADS"] = "1"
os.environ["OMP_THREAD_LIMIT"] = "1"

import common
import inprocess

inprocess.setup("overhead")

import peers  # noqa: E402
import rawcalls  # noqa: E402
from PIL import Image  # noqa: E402
from urllib3 import encode_multipart_formdata  # noqa: E402

from app.tests.imaging import render  # noqa: E402
from app.tests.stack import VIA_TLS, missing_tools, running_stack, signed_up  # noqa: E402

BENCH = "overhead"
MAX_RATIO = 1.05
MAX_CAPTCHA_MS = 10.0
MAX_CROP_MS = 25.0
# Through the stack against the old raw call (issue 14's targets).
MAX_OLD_RATIO = {("tesseract", "10-line"): 0.5, ("rapidocr", "10-line"): 0.65}
PEER_FOR = {"rapidocr": peers.RAPIDOCR_API, "ddddocr": peers.OCR_API_SERVER}
PEER_REQUEST = {"rapidocr_api": ("/ocr", "image_file"), "ocr_api_server": ("/ocr/file/json", "image")}


@dataclass
class Case:
    engine: str
    lang: str
    label: str
    image: Image.Image
    max_ratio: float | None = None  # stack / fastest raw
    max_overhead_ms: float | None = None  # stack - fastest raw
    max_stack_ms: float | None = None
    max_old_ratio: float | None = None  # stack / old raw


def cases() -> list[Case]:
    page, _ = common.text_image(10)
    chinese, _ = common.chinese_image()
    crop = render(["Total amount 1234.56"], size=24)
    captcha, _ = common.captcha_image()
    old = MAX_OLD_RATIO
    return [
        Case("tesseract", "eng", "10-line", page, MAX_RATIO, max_old_ratio=old["tesseract", "10-line"]),
        Case("rapidocr", "", "10-line", page, MAX_RATIO, max_old_ratio=old["rapidocr", "10-line"]),
        Case("ddddocr", "", "captcha", captcha, max_overhead_ms=MAX_CAPTCHA_MS),
        Case("tesseract", "eng", "one-line crop", crop, max_stack_ms=MAX_CROP_MS),
        Case("rapidocr", "", "one-line crop", crop),
        Case("tesseract", "chi_sim", "5-line Chinese", chinese),
        Case("rapidocr", "", "5-line Chinese", chinese),
    ]


class Client:
    """POSTs on one kept-alive connection (http.client opens it again if the server closed it)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self.headers = headers

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        self.connection.request("POST", path, body, {**self.headers, "Content-Type": content_type})
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


@dataclass
class PeerCall:
    """One peer's request for an image: path and multipart field as its API names them."""

    client: Client
    path: str
    field: str

    def __call__(self, png: bytes) -> None:
        body, content_type = encode_multipart_formdata({self.field: ("page.png", png, "image/png")})
        status, answer = self.client.post(self.path, body, content_type)
        assert status == 200, (status, answer[:300])
        if self.path.endswith("/json"):  # ocr_api_server answers 200 with its error in msg
            assert not json.loads(answer)["msg"], answer[:300]


@dataclass
class Timings:
    ms: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.ms.setdefault(name, []).append(value)

    def median(self, name: str) -> float | None:
        return statistics.median(self.ms[name]) if name in self.ms else None


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def measure(
    client: Client, case: Case, raw: dict, peer: PeerCall | None, repeat: int, warmup: int
) -> Timings:
    """Rounds of fastest raw, old raw, stack and peer; the first `warmup` rounds not kept."""
    image_png = common.png(case.image)
    fields = {"engine": case.engine, "lang": case.lang, "force": "true"}
    body, content_type = encode_multipart_formdata({**fields, "image": ("page.png", image_png, "image/png")})
    timings = Timings()
    for i in range(warmup + repeat):
        round_ms = {kind: timed(lambda c=call: c(case.image.copy(), case.lang)) for kind, call in raw.items()}
        started = time.perf_counter()
        status, answer = client.post("/api/ocr/", body, content_type)
        round_ms["stack"] = (time.perf_counter() - started) * 1000
        assert status == 201, answer
        if peer is not None:
            round_ms["peer"] = timed(lambda: peer(image_png))
        if i >= warmup:
            for name, value in round_ms.items():
                timings.add(name, value)
            timings.add("worker", json.loads(answer)["duration_ms"])
    return timings


def summary_rows(case: Case, t: Timings, peer_name: str) -> list[dict]:
    name = f"{case.engine} {case.label}"
    fast, old, stack, peer = (t.median(k) for k in ("fastest", "old", "stack", "peer"))

    def check(metric: str, value: float, unit: str, limit: float | None) -> dict:
        if limit is None:
            return common.row(BENCH, f"{name}: {metric}", value, unit)
        return common.row(BENCH, f"{name}: {metric}", value, unit, f"<= {limit:g}", value <= limit)

    rows = [
        common.row(BENCH, f"{name}: fastest raw median", fast, "ms"),
        common.row(BENCH, f"{name}: old raw median", old, "ms"),
        check("stack median", stack, "ms", case.max_stack_ms),
        check("stack/fastest raw", stack / fast, "ratio", case.max_ratio),
        check("stack - fastest raw", stack - fast, "ms", case.max_overhead_ms),
        check("stack/old raw", stack / old, "ratio", case.max_old_ratio),
    ]
    if peer is not None:
        rows.append(common.row(BENCH, f"{name}: {peer_name} median", peer, "ms"))
        rows.append(common.row(BENCH, f"{name}: stack/{peer_name}", stack / peer, "ratio"))
    return rows


def show(case: Case, t: Timings) -> None:
    fast, old, stack, peer, worker = (t.median(k) for k in ("fastest", "old", "stack", "peer", "worker"))
    peer_text = f"{peer:8.1f} {stack / peer:7.2f}" if peer is not None else f"{'-':>8} {'-':>7}"
    print(
        f"{case.engine:10} {case.label:15} {fast:8.1f} {old:8.1f} {stack:8.1f} {stack / fast:6.3f} "
        f"{stack - fast:6.1f} {stack / old:6.2f} {peer_text} {worker:8.1f} {stack - worker:7.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15, help="measured rounds per image (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first (default 2)")
    parser.add_argument("--quick", action="store_true", help="5 rounds per image")
    parser.add_argument("--no-peers", action="store_true", help="leave rapidocr_api and ocr_api_server out")
    common.add_json_argument(parser)
    args = parser.parse_args()
    repeat = 5 if args.quick else args.repeat
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh install"
    engines = sorted({case.engine for case in cases()})
    raw = {engine: {kind: rawcalls.build(engine, kind) for kind in rawcalls.KINDS} for engine in engines}
    rows = []
    with contextlib.ExitStack() as running:
        peer_calls: dict[str, PeerCall] = {}
        if not args.no_peers:
            for engine, peer in PEER_FOR.items():
                started = running.enter_context(peers.running_peer(peer))
                client = Client(started.url, {})
                path, field_name = (
                    ("/ocr", "image_file") if peer is peers.RAPIDOCR_API else ("/ocr/file/json", "image")
                )
                peer_calls[engine] = PeerCall(client, path, field_name)
                print(f"peer for {engine}: {peer.name} {peers.versions(peer)}; {peer.note}")
        stack = running.enter_context(running_stack(UWSGI_PROCESSES="1", OCR_USER_THROTTLE=""))
        # One kept-alive connection, as any client making many calls has: what is measured is
        # the server's path, not a TCP handshake and the client library's set-up per request.
        client = Client(stack.url, {**VIA_TLS, **signed_up(stack, f"bench-{uuid.uuid4().hex[:12]}")})
        print(f"1 uWSGI process, OCR_ENGINE_THREADS=1; median of {repeat} rounds")
        for engine in engines:
            fastest, old = (rawcalls.DESCRIPTION[engine, kind] for kind in rawcalls.KINDS)
            print(f"  {engine}: fastest = {fastest}; old = {old}")
        print(f"memory: {common.memory_warmth()} (bench/common.py: cold_page_ns)")
        print(f"load average {os.getloadavg()[0]:.1f} (other work on the machine moves every figure)")
        print(
            f"{'engine':10} {'image':15} {'fast ms':>8} {'old ms':>8} {'stack ms':>8} {'/fast':>6} "
            f"{'+ms':>6} {'/old':>6} {'peer ms':>8} {'/peer':>7} {'worker':>8} {'path':>7}"
        )
        for case in cases():
            peer = peer_calls.get(case.engine)
            timings = measure(client, case, raw[case.engine], peer, repeat, args.warmup)
            show(case, timings)
            rows += summary_rows(case, timings, PEER_FOR[case.engine].name if peer else "")
    print("fast/old: the raw calls (bench/rawcalls.py); /fast, /old, /peer: the stack's median over theirs;")
    print("+ms: stack - fastest; worker: the engine time the worker recorded; path: stack - worker.")
    failed = [r["metric"] for r in rows if r["ok"] is False]
    print("targets: " + ("all met" if not failed else "missed: " + "; ".join(failed)))
    common.write_rows(args.json, rows)


if __name__ == "__main__":
    main()
