"""Throughput under 8 concurrent clients: ours (nginx + uWSGI) beside the engines called raw
(fastest and old ways) and the peer services, same images, same run.

    .venv/bin/python bench/throughput.py [--seconds 60] [--quick] [--json PATH]

Workloads: RapidOCR on the bench's 10-line English and 5-line Chinese documents, Tesseract on
the English one, ddddocr on a captcha. Systems, one after another, each for --seconds after a
warm-up:
- raw: 2 processes x 1 engine thread (as uwsgi.ini runs them) making the FASTEST raw call
  (bench/rawcalls.py: tesserocr kept loaded, RapidOCR on OpenVINO, ddddocr), no HTTP; 8 work
  tokens circulate through a shared queue, as 8 clients would, so latency includes the wait
  for a free process;
- raw-old: the same with the OLD raw calls (pytesseract, a process per call; RapidOCR on
  onnxruntime); ddddocr has no old way;
- ours: `./start.sh serve` on loopback (app.tests.stack.running_stack: nginx, uWSGI with 2
  processes, an API key, file + row written). Documents go to POST /api/ocr/ with `force=true`
  so every request runs the engine; captchas to the ocr_api_server-compatible
  POST /ocr/b64/json, each made new to the server by a PNG text chunk holding a counter (an
  earlier record of the same bytes would be given back unread). The per-key rate limit is
  off (OCR_USER_THROTTLE=""): 8 clients send far more than its default 120 a minute;
- rapidocr_api 0.2.0 (bench/peers.py, its own venv, its CLI's defaults), RapidOCR documents;
- ours-anonymous: the same captchas with no API key (the stack runs with
  OCR_ALLOW_ANONYMOUS=1): read and answered, nothing stored, as the original service does;
- ocr_api_server, the original Flask captcha service, run from ../shared/peers/ocr_api_server/
  in its own venv as its README says, the same b64/json requests.
The HTTP systems share one client: threads, each with its own keep-alive session. Images/s
counts every answer; an error is an answer that is not 2xx (or an ocr_api_server `msg`);
`wrong` counts answers whose character error rate is above MAX_CER.
Targets: ours/raw >= 0.9 (documents); ours/rapidocr_api >= 2.5 on each RapidOCR document;
ours/ocr_api_server >= 1.5; 0 errors and 0 wrong answers from ours; our worst CER equal to
the fastest raw call's.
"""

import argparse
import base64
import contextlib
import io
import itertools
import multiprocessing
import os
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import peers
import requests
from common import (
    add_json_argument,
    api_key_headers,
    captcha_image,
    chinese_image,
    cpu_seconds,
    machine,
    percentile,
    png,
    row,
    session_pids,
    text_image,
    write_rows,
)

from app.tests.imaging import cer
from app.tests.stack import VIA_TLS, running_stack

BENCH = "throughput"
MAX_CER = 0.02  # above this an answer is wrong text
MIN_RAW_RATIO = 0.9
MIN_RAPIDOCR_API_RATIO = 2.5
MIN_OCR_API_SERVER_RATIO = 1.5
REQUEST_TIMEOUT = 180
SYSTEMS = ("raw", "raw-old", "ours", "rapidocr_api", "ocr_api_server")
ANONYMOUS = "ours-anonymous"  # captchas with no API key: nothing stored, as the original service


@dataclass(frozen=True)
class Workload:
    engine: str
    document: str
    lang: str
    image_png: bytes
    truth: str

    @property
    def label(self) -> str:
        return f"{self.engine} {self.document}"


def workloads() -> list[Workload]:
    english, english_text = text_image(10)
    chinese, chinese_text = chinese_image()
    captcha, answer = captcha_image()
    return [
        Workload("rapidocr", "10-line English", "", png(english), english_text),
        Workload("rapidocr", "5-line Chinese", "", png(chinese), chinese_text),
        Workload("tesseract", "10-line English", "eng", png(english), english_text),
        Workload("ddddocr", "captcha", "", png(captcha), answer),
    ]


def serves(system: str, work: Workload) -> bool:
    return {
        "raw-old": work.engine != "ddddocr",  # ddddocr's only way is the fastest one
        "ours": True,
        "raw": True,
        "rapidocr_api": work.engine == "rapidocr",
        "ocr_api_server": work.engine == "ddddocr",
    }[system]


@dataclass
class Outcome:
    """What one system did in its measured window."""

    system: str
    work: Workload
    latencies: list[float] = field(default_factory=list)  # seconds, every answer
    errors: Counter = field(default_factory=Counter)  # reason -> count
    cers: list[float] = field(default_factory=list)
    elapsed: float = 0.0  # window start to the last answer
    client_cpu: float = 0.0  # CPU seconds the measuring process used in the window
    server_cpu: float = 0.0  # CPU seconds the serving processes (and their children) used in it
    note: str = ""

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0

    @property
    def wrong(self) -> int:
        return sum(score > MAX_CER for score in self.cers)

    @property
    def cpu_per_image(self) -> float:
        """Milliseconds of CPU per answer: unlike images/s, barely moved by other work on the machine."""
        return self.server_cpu / self.done * 1000 if self.done else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class TextChecker:
    """CER against the known text, cached per distinct answer: the pure-Python distance costs
    tens of ms, which the client would otherwise take from the server's 2 cores."""

    def __init__(self, truth: str) -> None:
        self.truth, self._seen, self._lock = truth, {}, threading.Lock()

    def __call__(self, text: str) -> float:
        with self._lock:
            if text not in self._seen:
                self._seen[text] = cer(self.truth, text)
            return self._seen[text]


def record(outcome: Outcome, latency: float, error: str | None, text: str, check: TextChecker) -> None:
    if error:
        outcome.errors[error] += 1
        return
    outcome.cers.append(check(text))
    outcome.latencies.append(latency)


def unique_png(data: bytes, number: int) -> bytes:
    """The same picture in new bytes: a tEXt chunk holding `number` before IEND."""
    payload = b"bench\0" + str(number).encode()
    chunk = b"tEXt" + payload
    extra = struct.pack(">I", len(payload)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:-12] + extra + data[-12:]  # IEND is the last 12 bytes


# -- raw engine processes ------------------------------------------------------------------


def _raw_worker(engine: str, kind: str, lang: str, image_png: bytes, work, results, ready) -> None:
    """One engine process as a uWSGI worker has it: one engine thread, engine loaded first."""
    os.environ.update(OCR_ENGINE_THREADS="1", OMP_THREAD_LIMIT="1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onlineocr.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")  # the development key: nothing is signed here
    import django
    from PIL import Image

    django.setup()
    import rawcalls

    call = rawcalls.build(engine, kind, threads=1)
    image = Image.open(io.BytesIO(image_png)).convert("RGB")
    call(image.copy(), lang)
    ready.put(os.getpid())
    while (token := work.get()) is not None:
        started = time.time()
        try:
            text, error = call(image.copy(), lang), ""
        except Exception as exc:  # counted as an error, the loop goes on
            text, error = "", type(exc).__name__
        results.put((token, started, time.time(), text, error))


def run_raw(system: str, work: Workload, check: TextChecker, args) -> Outcome:
    kind = "fastest" if system == "raw" else "old"
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters, like uWSGI's lazy-apps
    tasks, results, ready = spawn.Queue(), spawn.Queue(), spawn.Queue()
    arguments = (work.engine, kind, work.lang, work.image_png, tasks, results, ready)
    # daemon: never outlive this script, even when it stops on an error
    workers = [spawn.Process(target=_raw_worker, args=arguments, daemon=True) for _ in range(args.processes)]
    for worker in workers:
        worker.start()
    pids = [ready.get(timeout=300) for _ in workers]
    outcome, calls = Outcome(system, work), []
    cpu, server, start = time.process_time(), cpu_seconds(pids), time.time()
    deadline, enqueued = start + args.seconds, {}
    for token in range(args.clients):
        enqueued[token] = time.time()
        tasks.put(token)
    last = start
    while enqueued:
        token, began, ended, text, error = results.get(timeout=REQUEST_TIMEOUT)
        calls.append(ended - began)
        record(outcome, ended - enqueued.pop(token), error or None, text, check)
        last = ended
        if time.time() < deadline:
            enqueued[token] = time.time()
            tasks.put(token)
    outcome.server_cpu = cpu_seconds(pids) - server
    for _ in workers:
        tasks.put(None)
    for worker in workers:
        worker.join(timeout=30)
        if worker.is_alive():
            worker.terminate()
    outcome.elapsed, outcome.client_cpu = last - start, time.process_time() - cpu
    outcome.note = f"engine call median {percentile(calls, 0.5) * 1000:.0f} ms"
    return outcome


# -- the shared HTTP client ----------------------------------------------------------------

Send = Callable[[requests.Session, int], requests.Response]
Read = Callable[[requests.Response], str]


def run_http(outcome: Outcome, send: Send, read: Read, check: TextChecker, server: int, args) -> Outcome:
    """args.clients threads post for args.seconds (each first sends one unmeasured request);
    no request starts after the deadline, and the window ends with the last answer. `server`
    is the session id of the serving processes, whose CPU is counted. Each request gets a
    number (unique in the run) for the senders that make their bytes new."""
    window: dict[str, float] = {}
    numbers = itertools.count()  # next() on it is atomic under the GIL

    def open_window() -> None:  # run once, when every client has warmed up
        window["deadline"] = time.perf_counter() + args.seconds

    barrier, lock = threading.Barrier(args.clients + 1, action=open_window), threading.Lock()
    ends: list[float] = []

    def client() -> None:
        with requests.Session() as session:
            # Warm-up: opens the connection, loads anything lazy; the measured requests count failures.
            with contextlib.suppress(requests.RequestException):
                send(session, next(numbers))
            barrier.wait()
            while time.perf_counter() < window["deadline"]:
                started = time.perf_counter()
                try:
                    response = send(session, next(numbers))
                    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
                    text = read(response) if error is None else ""
                except (requests.RequestException, ValueError, KeyError) as exc:
                    error, text = type(exc).__name__, ""
                except PeerError as exc:
                    error, text = f"peer: {exc}"[:60], ""
                ended = time.perf_counter()
                with lock:
                    record(outcome, ended - started, error, text, check)
                    ends.append(ended)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=900)
    cpu, start = time.process_time(), window["deadline"] - args.seconds
    server_cpu = cpu_seconds(session_pids(server))
    for thread in threads:
        thread.join()
    outcome.server_cpu = cpu_seconds(session_pids(server)) - server_cpu
    outcome.elapsed = max(ends, default=start) - start
    outcome.client_cpu = time.process_time() - cpu
    return outcome


class PeerError(Exception):
    """ocr_api_server answers its errors with status 200 and the reason in `msg`."""


def b64_captcha(url: str, headers: dict, image_png: bytes) -> tuple[Send, Read]:
    """POST /ocr/b64/json, the body the base64 of the PNG: the old service's API, and our
    dialect of it (app/compat/ocr_api_server.py). Every request's bytes are new."""

    def send(session: requests.Session, number: int) -> requests.Response:
        body = base64.b64encode(unique_png(image_png, number))
        return session.post(url + "/ocr/b64/json", data=body, headers=headers, timeout=REQUEST_TIMEOUT)

    def read(response: requests.Response) -> str:
        answer = response.json()
        if answer.get("msg"):
            raise PeerError(answer["msg"])
        return answer["result"]

    return send, read


def ours(stack, headers: dict, work: Workload) -> tuple[Send, Read]:
    if work.engine == "ddddocr":
        return b64_captcha(stack.url, {**VIA_TLS, **headers}, work.image_png)

    def send(session: requests.Session, number: int) -> requests.Response:
        return session.post(
            stack.url + "/api/ocr/",
            headers={**VIA_TLS, **headers},
            files={"image": ("page.png", work.image_png, "image/png")},
            data={"engine": work.engine, "lang": work.lang, "force": "true"},
            timeout=REQUEST_TIMEOUT,
        )

    return send, lambda response: response.json()["text"]


def rapidocr_api(url: str, work: Workload) -> tuple[Send, Read]:
    def send(session: requests.Session, number: int) -> requests.Response:
        files = {"image_file": ("page.png", work.image_png, "image/png")}
        return session.post(url + "/ocr", files=files, timeout=REQUEST_TIMEOUT)

    def read(response: requests.Response) -> str:
        lines = response.json()  # {"0": {"rec_txt": ...}, "1": ...}, {} when nothing is found
        return "\n".join(lines[key]["rec_txt"] for key in sorted(lines, key=int))

    return send, read


# -- the run -------------------------------------------------------------------------------

HEADER = (
    f"{'system':15} {'workload':27} {'answers':>7} {'img/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
    f"{'p99 ms':>7} {'max CER':>7} {'CPU ms':>7} {'cores':>5} {'client':>6}  errors"
)


def show(outcome: Outcome) -> None:
    lat = outcome.latencies or [0.0]
    p50, p95, p99 = (percentile(lat, share) * 1000 for share in (0.5, 0.95, 0.99))
    cer_text = f"{max(outcome.cers):.3f}" if outcome.cers else "-"
    errors = ", ".join(f"{k}: {v}" for k, v in outcome.errors.items()) or "0"
    if outcome.wrong:
        errors += f"; wrong text: {outcome.wrong}"
    client = outcome.client_cpu / outcome.elapsed * 100 if outcome.elapsed else 0.0
    cores = outcome.server_cpu / outcome.elapsed if outcome.elapsed else 0.0
    load = f"load {os.getloadavg()[0]:.1f}"  # other work on the machine skews every figure
    print(
        f"{outcome.system:15} {outcome.work.label:27} {outcome.done:7} {outcome.rate:7.2f} {p50:7.0f} "
        f"{p95:7.0f} {p99:7.0f} {cer_text:>7} {outcome.cpu_per_image:7.0f} {cores:5.2f} {client:5.1f}%  "
        f"{errors}; {load}" + (f"; {outcome.note}" if outcome.note else ""),
        flush=True,
    )


def ratio_row(label: str, mine: Outcome, other: Outcome | None, minimum: float | None) -> list[dict]:
    if other is None or not other.rate:
        return []
    ratio, name = mine.rate / other.rate, f"{label}: ours/{other.system} images/s"
    rows = [row(BENCH, name, ratio, "ratio", *([f">= {minimum:g}", ratio >= minimum] if minimum else []))]
    if mine.cpu_per_image:  # the same comparison by CPU per image: other work on the machine moves it less
        cpu = other.cpu_per_image / mine.cpu_per_image
        rows.append(row(BENCH, f"{label}: {other.system}/ours server CPU per image", cpu, "ratio"))
    return rows


def rows_for(outcomes: list[Outcome]) -> list[dict]:
    rows, by = [], {(o.system, o.work.label): o for o in outcomes}
    for o in outcomes:
        label, lat, mine = f"{o.system} {o.work.label}", o.latencies or [0.0], o.system == "ours"
        rows.append(row(BENCH, f"{label}: images/s", o.rate, "img/s"))
        for share in (0.5, 0.95, 0.99):
            rows.append(row(BENCH, f"{label}: p{round(share * 100)}", percentile(lat, share) * 1000, "ms"))
        rows.append(row(BENCH, f"{label}: server CPU per image", o.cpu_per_image, "ms"))
        if mine:
            rows.append(row(BENCH, f"{label}: errors", o.error_count, "count", "0", o.error_count == 0))
            rows.append(row(BENCH, f"{label}: wrong text", o.wrong, "count", "0", o.wrong == 0))
        else:
            rows.append(row(BENCH, f"{label}: errors", o.error_count, "count"))
            rows.append(row(BENCH, f"{label}: wrong text", o.wrong, "count"))
        if o.cers:
            rows.append(row(BENCH, f"{label}: worst CER", max(o.cers), "CER"))
    labels = list(dict.fromkeys(o.work.label for o in outcomes))
    for label in labels:
        mine = by.get(("ours", label))
        if mine is None:
            continue
        document = mine.work.engine != "ddddocr"
        rows += ratio_row(label, mine, by.get(("raw", label)), MIN_RAW_RATIO if document else None)
        rows += ratio_row(label, mine, by.get(("raw-old", label)), None)
        rows += ratio_row(label, mine, by.get(("rapidocr_api", label)), MIN_RAPIDOCR_API_RATIO)
        rows += ratio_row(label, mine, by.get(("ocr_api_server", label)), MIN_OCR_API_SERVER_RATIO)
        anonymous = by.get((ANONYMOUS, label))
        if anonymous is not None:
            rows += ratio_row(f"{label} ({ANONYMOUS})", anonymous, by.get(("ocr_api_server", label)), None)
        raw = by.get(("raw", label))
        if raw and raw.cers and mine.cers:  # our pipeline reads what the engine reads alone
            same = max(mine.cers) == max(raw.cers)
            rows.append(
                row(
                    BENCH,
                    f"{label}: ours worst CER - raw's",
                    max(mine.cers) - max(raw.cers),
                    "CER",
                    "0",
                    same,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="measured window per system (60)")
    parser.add_argument("--quick", action="store_true", help="10 s per system, a smoke run")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="uWSGI workers and raw processes")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument("--engines", default="rapidocr,tesseract,ddddocr", help="comma-separated subset")
    parser.add_argument("--database-url", default="", help="the stack's database (default: SQLite)")
    add_json_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.seconds = 10
    systems = [s for s in args.systems.split(",") if s in SYSTEMS]
    works = [w for w in workloads() if w.engine in args.engines.split(",")]
    checks = {w.label: TextChecker(w.truth) for w in works}
    print(f"throughput: {machine()}; {args.clients} clients, {args.seconds:.0f} s per system and workload")
    print(
        f"an error: not 2xx; wrong text: CER > {MAX_CER}; load average {os.getloadavg()[0]:.1f} at the start"
    )
    outcomes: list[Outcome] = []
    extra: list[dict] = []

    def each(system: str) -> list[Workload]:
        return [w for w in works if serves(system, w)]

    for system in ("raw", "raw-old"):
        if system in systems and each(system):
            import rawcalls

            kind = "fastest" if system == "raw" else "old"
            engines = dict.fromkeys(w.engine for w in each(system))
            ways = "; ".join(f"{engine}: {rawcalls.DESCRIPTION[engine, kind]}" for engine in engines)
            print(f"\n{system}: {args.processes} processes x 1 engine thread, no HTTP; {ways}")
            print(HEADER)
            for work in each(system):
                outcomes.append(run_raw(system, work, checks[work.label], args))
                show(outcomes[-1])
    if "ours" in systems:
        settings = {"UWSGI_PROCESSES": str(args.processes), "OCR_USER_THROTTLE": ""}
        if args.database_url:
            settings["DATABASE_URL"] = args.database_url
        settings["OCR_ALLOW_ANONYMOUS"] = "1"  # for ours-anonymous; keyed requests are unchanged
        with running_stack(**settings) as stack:
            headers = api_key_headers(stack, f"bench{int(time.time())}")
            print(f"\nours: nginx + uWSGI ({args.processes} x 1 thread), API key, file + row;")
            print("documents POST /api/ocr/ force=true; captchas POST /ocr/b64/json (new bytes each);")
            print(f"{ANONYMOUS}: the same captchas with no key (OCR_ALLOW_ANONYMOUS=1): read, not stored")
            print(HEADER)
            runs = [("ours", work, headers) for work in each("ours")]
            runs += [(ANONYMOUS, work, {}) for work in each("ours") if work.engine == "ddddocr"]
            for system, work, auth in runs:
                send, read = ours(stack, auth, work)
                check = checks[work.label]
                outcome = run_http(Outcome(system, work), send, read, check, stack.process.pid, args)
                outcomes.append(outcome)
                show(outcome)
    for name, peer in (("rapidocr_api", peers.RAPIDOCR_API), ("ocr_api_server", peers.OCR_API_SERVER)):
        if name not in systems or not each(name):
            continue
        with peers.running_peer(peer) as running:
            found = peers.versions(peer)
            if peer is peers.RAPIDOCR_API:
                found |= peers.rapidocr_api_defaults()
            print(f"\n{name}: {found}; {peer.note}")
            extra.append(row(BENCH, f"{name} settings", ", ".join(f"{k} {v}" for k, v in found.items()), ""))
            print(HEADER)
            for work in each(name):
                if peer is peers.RAPIDOCR_API:
                    send, read = rapidocr_api(running.url, work)
                else:
                    send, read = b64_captcha(running.url, {}, work.image_png)
                outcome = run_http(
                    Outcome(name, work), send, read, checks[work.label], running.process.pid, args
                )
                outcomes.append(outcome)
                show(outcome)

    rows = rows_for(outcomes) + extra
    print("\nsummary")
    for r in rows:
        if r["unit"] in ("ratio",) or r["target"]:
            mark = {True: "ok", False: "MISSED", None: ""}[r["ok"]]
            target = f"(target {r['target']}) {mark}" if r["target"] else ""
            print(f"  {r['metric']:62} {r['value']:>8} {target}")
    print("ours' settings differ from rapidocr_api's: angle classifier off (rotate=false), detection")
    print("limit max 2000 (never scaled up), 1 engine thread per process, OpenVINO.")
    print("CPU ms: server CPU per image (serving processes and their children: nginx, uWSGI, tesseract);")
    print("cores: the CPU they got per second of the window; client: the measuring process's CPU as")
    print("a share of one core (it must stay far below 100%, the GIL's cap, for the client not to limit).")
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
