"""Worker memory over a long mixed run through the production stack (nginx + 2 uWSGI workers),
with RapidOCR on OpenVINO (the default) and, for comparison, on onnxruntime: one run each.

    .venv/bin/python bench/memory.py [--requests 2000] [--clients 4] [--runtimes openvino,onnxruntime]
        [--quick] [--stack-env NAME=VALUE] [--json PATH]

OpenVINO compiles its models in each worker (uWSGI's lazy-apps), so what a worker holds may
differ from onnxruntime's. A few concurrent clients send a seeded mix of engines, sizes and
ways in (mostly captchas and small crops, some 10-line pages, a few A4 scans and PDFs;
multipart and base64), each with `force=true` so every request really reads. Each worker's
RSS (VmRSS from /proc) is sampled twice a second; the figures are per worker: at rest when
started (engines loaded, nothing read), at rest after the warm-up requests, the peak over the
run, at rest at the end, and the growth from warm-up to end. "At rest" is once the workers
have been idle past OCR_TRIM_IDLE_SECONDS and given back what their reads left free
(app/memory.py); the peak is what a worker needs while it reads. A worker uWSGI recycled
(max-requests, reload-on-rss) shows as a recycle; recycling is fine if no request failed.
The per-key rate limit is off (OCR_USER_THROTTLE=""; --stack-env can set it).
Target, for each runtime: growth <= 5 % after warm-up, 0 failed requests.
"""

import argparse
import base64
import os
import random
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import common
import requests
from PIL import Image

from app.tests.captchas import captcha
from app.tests.imaging import CJK_FONT, chinese_lines, encode, english_lines, render
from app.tests.stack import Stack, missing_tools, running_stack

BENCH = "memory"
MAX_GROWTH_PERCENT = 5.0
WORKERS = 2
SAMPLE_SECONDS = 0.5
MAX_FAILURES_SHOWN = 12
LOG_TROUBLE = re.compile(r"signal|killed|harakiri|reload|memory|error|traceback", re.IGNORECASE)
RUNTIMES = ("openvino", "onnxruntime")  # OCR_RAPIDOCR_RUNTIME: the default first, then the old one


def rest_seconds(stack_env: dict[str, str]) -> float:
    """Past the workers' idle trim (its thread looks every quarter of OCR_TRIM_IDLE_SECONDS)."""
    idle = stack_env.get("OCR_TRIM_IDLE_SECONDS", os.environ.get("OCR_TRIM_IDLE_SECONDS", 5))
    return 1.25 * float(idle) + 2


@dataclass(frozen=True)
class Job:
    kind: str
    engine: str
    lang: str
    data: bytes
    file_name: str
    as_base64: bool = False


def a4_scan(seed: int) -> Image.Image:
    """A 2480x3508 page (A4 at 300 dpi) with 40 lines of 48 px text."""
    page = Image.new("RGB", (2480, 3508), "white")
    page.paste(render(english_lines(40, seed=seed, words=6), size=48, pad=0), (150, 150))
    return page


def pools() -> dict[str, tuple[float, list[Job]]]:
    """Kinds of request: (share of the requests, a few variants each)."""
    captchas = [encode(captcha(f"{word}{n}", seed=n)) for n, word in enumerate(("k7mx", "p3qa", "zb8w") * 4)]
    crops = [encode(render(english_lines(1, seed=n, words=3), size=24)) for n in range(6)]
    short = [encode(render(english_lines(3, seed=n), size=28)) for n in range(6)]
    chinese = [encode(render(chinese_lines(2, seed=n), size=32, font=CJK_FONT)) for n in range(4)]
    pages = [encode(render(english_lines(10, seed=n)), "JPEG", quality=90) for n in range(3)]
    scans = [encode(a4_scan(n), "JPEG", quality=85) for n in range(2)]
    pdfs = [encode(render(english_lines(6, seed=n)), "PDF", resolution=150) for n in range(2)]

    def jobs(kind: str, engine: str, lang: str, items: list[bytes], ext: str) -> list[Job]:
        return [
            Job(kind, engine, lang, data, f"{kind}-{i}.{ext}", as_base64=i % 3 == 2)
            for i, data in enumerate(items)
        ]

    return {
        "captcha": (0.36, jobs("captcha", "ddddocr", "", captchas, "png")),
        "crop/tesseract": (0.15, jobs("crop", "tesseract", "eng", crops, "png")),
        "crop/rapidocr": (0.15, jobs("crop", "rapidocr", "", crops, "png")),
        "3-line/tesseract": (0.11, jobs("short", "tesseract", "eng", short, "png")),
        "chinese/rapidocr": (0.10, jobs("chinese", "rapidocr", "", chinese, "png")),
        "10-line/tesseract": (0.08, jobs("page", "tesseract", "eng", pages, "jpg")),
        "10-line/rapidocr": (0.03, jobs("page", "rapidocr", "", pages, "jpg")),
        "A4 scan/tesseract": (0.005, jobs("scan", "tesseract", "eng", scans, "jpg")),
        "A4 scan/rapidocr": (0.005, jobs("scan", "rapidocr", "", scans, "jpg")),
        "PDF/tesseract": (0.02, jobs("pdf", "tesseract", "eng", pdfs, "pdf")),
    }


def schedule(count: int, seed: int = 7) -> list[tuple[str, Job]]:
    """Every variant of every kind twice first (shuffled), so that each worker has met every
    size, the largest included, before the warm-up baseline; then the weighted mix."""
    rng = random.Random(seed)
    kinds = pools()
    first = [(name, job) for name, (_, jobs) in kinds.items() for job in jobs for _ in range(2)]
    rng.shuffle(first)
    names = rng.choices(list(kinds), weights=[share for share, _ in kinds.values()], k=count - len(first))
    return first + [(name, rng.choice(kinds[name][1])) for name in names]


def send(session: requests.Session, stack: Stack, headers: dict, job: Job) -> requests.Response:
    fields = {"engine": job.engine, "lang": job.lang, "force": "true"}
    url = stack.url + "/api/ocr/"
    if job.as_base64:
        body = {**fields, "image_base64": base64.b64encode(job.data).decode()}
        response = session.post(url, headers=headers, json=body, timeout=300)
    else:
        files = {"image": (job.file_name, job.data)}
        response = session.post(url, headers=headers, files=files, data=fields, timeout=300)
    return response


@dataclass
class Watch:
    """Twice-a-second samples of each worker's RSS while the clients run."""

    stack: Stack
    rest: float  # seconds of idleness before an at-rest sample
    done: list[int] = field(default_factory=lambda: [0])  # requests finished (a shared counter)
    samples: list[tuple[int, int, int, float]] = field(default_factory=list)  # done, id, pid, MB
    pids: dict[int, set[int]] = field(default_factory=dict)  # uWSGI worker id -> pids seen
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> dict[int, tuple[int, float]]:
        """Each worker's (pid, RSS MB) now, by uWSGI worker id."""
        now = {}
        for worker in self.stack.workers():
            mb = common.rss_mb(worker["pid"])
            if mb is not None:
                now[worker["id"]] = (worker["pid"], mb)
                self.pids.setdefault(worker["id"], set()).add(worker["pid"])
                self.samples.append((self.done[0], worker["id"], worker["pid"], mb))
        return now

    def idle_sample(self) -> dict[int, tuple[int, float]]:
        """RSS at rest: no request in flight, the idle trim done, a recycled worker back."""
        time.sleep(self.rest)
        return self.sample()

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_SECONDS):
            self.sample()


def drive(
    stack: Stack, users: list[dict], jobs: list[tuple[str, Job]], watch: Watch, failures: list[str]
) -> Counter:
    """Send every job, one client thread per user; the status counts (0: no answer). Each
    failed request is added to `failures`: its kind, status and the start of the answer."""
    statuses: Counter = Counter()
    lock = threading.Lock()
    queue = iter(jobs)

    def client(headers: dict) -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                try:
                    response = send(session, stack, headers, item[1])
                    code, answer = response.status_code, response.text[:160]
                except requests.RequestException as exc:
                    code, answer = 0, type(exc).__name__
                with lock:
                    statuses[code] += 1
                    if code != 201:
                        failures.append(f"{item[0]} ({item[1].file_name}): {code} {answer}")
                    watch.done[0] += 1

    threads = [threading.Thread(target=client, args=(headers,)) for headers in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def run_once(
    runtime: str, jobs: list[tuple[str, Job]], warmup: int, args, extra: dict[str, str]
) -> list[dict]:
    """One stack with RapidOCR on `runtime` through the whole schedule; its rows, named by runtime."""
    total = len(jobs)
    # The per-key rate limit is off: 4 clients send captchas faster than its default 120 a minute.
    env = {"UWSGI_PROCESSES": str(WORKERS), "OCR_RAPIDOCR_RUNTIME": runtime, "OCR_USER_THROTTLE": "", **extra}
    print(
        f"\n=== RapidOCR on {runtime}: {total} requests from {args.clients} clients, {WORKERS} uWSGI workers"
    )
    with running_stack(**env) as stack:
        users = [common.api_key_headers(stack, f"mem{n}-{uuid.uuid4().hex[:8]}") for n in range(args.clients)]
        watch = Watch(stack, rest_seconds(extra))
        start = watch.idle_sample()  # engines loaded (warmed after fork), nothing read yet
        sampler = threading.Thread(target=watch.run)
        sampler.start()
        started = time.monotonic()
        try:
            failures: list[str] = []
            statuses = drive(stack, users, jobs[:warmup], watch, failures)
            warm = watch.idle_sample()
            statuses += drive(stack, users, jobs[warmup:], watch, failures)
            seconds = time.monotonic() - started
            end = watch.idle_sample()
        finally:
            watch.stop.set()
            sampler.join()
        text = stack.log_text()
        log = [line for line in text.splitlines() if LOG_TROUBLE.search(line)]
    if log:  # why workers died or requests failed, from the stack's own log (kept: the stack's folder is not)
        kept = Path(tempfile.gettempdir()) / f"onlineocr-bench-memory-{runtime}-stack.log"
        kept.write_text(text)
        print(f"stack log ({kept}), the lines naming trouble (last 15):")
        for line in log[-15:]:
            print(f"  {line[:200]}")
    failed = total - statuses.get(201, 0)
    print(f"{total} requests in {seconds:.0f} s; statuses {dict(statuses)}")
    for failure in failures[:MAX_FAILURES_SHOWN]:
        print(f"  failed: {failure}")
    timeline(watch.samples, total)
    rows = [common.row(BENCH, f"{runtime}: {total} mixed requests", seconds, "s")]
    rows += per_worker(runtime, start, warm, end, watch.samples, failed)
    recycles = sum(len(pids) - 1 for pids in watch.pids.values())
    print(f"worker recycles: {recycles}; failed requests: {failed}")
    rows.append(
        common.row(BENCH, f"{runtime}: worker recycles", recycles, "count", "ok if 0 failed", failed == 0)
    )
    rows.append(
        common.row(BENCH, f"{runtime}: failed of {total} requests", failed, "count", "0", failed == 0)
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200, help="requests before the baseline (default 200)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--runtimes",
        default=",".join(RUNTIMES),
        help="RapidOCR runtimes to run the stack with, one run each (default openvino,onnxruntime)",
    )
    parser.add_argument("--quick", action="store_true", help="400 requests, 100 of them warm-up, per runtime")
    parser.add_argument(
        "--stack-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the stack, e.g. to try allocator settings (repeatable)",
    )
    common.add_json_argument(parser)
    args = parser.parse_args()
    total, warmup = (400, 100) if args.quick else (args.requests, args.warmup)
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh install"
    runtimes = [name for name in args.runtimes.split(",") if name in RUNTIMES]
    jobs = schedule(total)
    extra = dict(item.split("=", 1) for item in args.stack_env)
    print(
        f"{total} requests from {args.clients} clients per run, {WORKERS} uWSGI workers; runtimes "
        f"{', '.join(runtimes)}; baseline after {warmup}, at rest ({rest_seconds(extra):.0f} s idle)"
    )
    print("mix: " + ", ".join(f"{kind} {n}" for kind, n in Counter(kind for kind, _ in jobs).most_common()))
    if extra:
        print(f"stack environment: {extra}")
    rows = []
    for runtime in runtimes:
        rows += run_once(runtime, jobs, warmup, args, extra)
    common.write_rows(args.json, rows)


def timeline(samples: list, total: int) -> None:
    """Each worker's RSS at every tenth of the run (the last sample before the mark)."""
    print("RSS MB per worker (pid) by requests done:")
    for mark in range(total // 10, total + 1, max(total // 10, 1)):
        latest = {wid: (pid, mb) for done, wid, pid, mb in samples if done <= mark}
        print(f"  {mark:5}: " + "  ".join(f"w{w} ({p}) {mb:7.1f}" for w, (p, mb) in sorted(latest.items())))


def per_worker(runtime: str, start: dict, warm: dict, end: dict, samples: list, failed: int) -> list[dict]:
    """Print and return each worker's RSS at rest when started and after the warm-up, its peak
    over the run, its RSS at rest at the end and its growth after the warm-up."""
    heads = f"{'start MB':>9} {'warm-up MB':>10} {'peak MB':>8} {'end MB':>8} {'growth':>7}"
    print(f"{'worker':6} {heads}  recycled")
    rows = []
    for wid, (pid, warm_mb) in sorted(warm.items()):
        start_mb = start.get(wid, (None, 0.0))[1]
        peak = max([mb for _, w, p, mb in samples if (w, p) == (wid, pid)], default=warm_mb)
        end_pid, end_mb = end.get(wid, (None, 0.0))
        name = f"{runtime} worker {wid}"
        rows.append(common.row(BENCH, f"{name}: RSS at rest, started", start_mb, "MB"))
        rows.append(common.row(BENCH, f"{name}: RSS at rest after warm-up", warm_mb, "MB"))
        rows.append(common.row(BENCH, f"{name}: peak RSS", peak, "MB"))
        rows.append(common.row(BENCH, f"{name}: RSS at rest at end", end_mb, "MB"))
        if end_pid != pid:
            # A new process: its size says nothing about the old one's growth.
            print(
                f"{wid:6} {start_mb:9.1f} {warm_mb:10.1f} {peak:8.1f} {end_mb:8.1f} {'-':>7}  "
                f"yes ({pid} -> {end_pid})"
            )
            rows.append(
                common.row(BENCH, f"{name}: growth after warm-up", "recycled", "%", "<= 5", failed == 0)
            )
            continue
        growth = 100 * (end_mb - warm_mb) / warm_mb
        print(f"{wid:6} {start_mb:9.1f} {warm_mb:10.1f} {peak:8.1f} {end_mb:8.1f} {growth:6.1f}%  no")
        ok = growth <= MAX_GROWTH_PERCENT
        rows.append(common.row(BENCH, f"{name}: growth after warm-up", growth, "%", "<= 5", ok))
    return rows


if __name__ == "__main__":
    main()
