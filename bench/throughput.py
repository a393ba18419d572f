"""Throughput under 8 concurrent clients: ours (nginx + uWSGI) beside raw engine processes and
the `rapidocr_api` package from PyPI, same images, same run.

    .venv/bin/python bench/throughput.py [--seconds 60] [--quick] [--json PATH]

Systems, one after another, each for --seconds after a warm-up:
- raw: 2 processes x 1 engine thread (as uwsgi.ini runs them) calling our engine objects
  (app.engines.registry) directly, no HTTP; 8 work tokens circulate through a shared queue,
  as 8 clients would, so latency includes the wait for a free process;
- ours: `./start.sh serve` on loopback (app.tests.stack.running_stack: nginx, uWSGI with 2
  processes, JWT, file + row written), `force=true` so every request runs the engine;
- rapidocr_api: version 0.2.0 in its own virtual environment (bench/.venvs/, made on the first
  run), started with its own CLI and default settings; RapidOCR only.
The HTTP systems share one client: threads, each with its own keep-alive session. An answer
that is not 2xx or whose text has a character error rate above MAX_CER is an error.
"""

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import requests
from common import (
    ROOT,
    add_json_argument,
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
from app.tests.processes import free_port, stop_group
from app.tests.stack import VIA_TLS, running_stack, signed_up

BENCH = "throughput"
MAX_CER = 0.02  # above this an answer counts as wrong text
RAPIDOCR_API = "rapidocr_api==0.2.0"
API_VENV = ROOT / "bench" / ".venvs" / "rapidocr_api"
ENGINES = ("rapidocr", "tesseract")
REQUEST_TIMEOUT = 180


@dataclass
class Outcome:
    """What one system did in its measured window."""

    system: str
    engine: str
    latencies: list[float] = field(default_factory=list)  # seconds, successful answers
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


# -- raw engine processes ------------------------------------------------------------------


def _raw_worker(engine_name: str, image_png: bytes, work, results, ready) -> None:
    """One engine process as a uWSGI worker has it: one engine thread, engine loaded first."""
    os.environ.update(OCR_ENGINE_THREADS="1", OMP_THREAD_LIMIT="1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onlineocr.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")  # the development key: nothing is signed here
    import django
    from PIL import Image

    django.setup()
    from app.engines import registry
    from app.engines.base import Picture

    engine, options = registry.select(engine=engine_name)
    engine.warm_up()
    image = Image.open(io.BytesIO(image_png)).convert("RGB")
    engine.recognize(Picture(image.copy()), options)
    ready.put(os.getpid())
    while (token := work.get()) is not None:
        started = time.time()
        try:
            text, error = engine.recognize(Picture(image.copy()), options).text, ""
        except Exception as exc:  # counted as an error, the loop goes on
            text, error = "", type(exc).__name__
        results.put((token, started, time.time(), text, error))


def run_raw(engine: str, image_png: bytes, check: TextChecker, args) -> Outcome:
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters, like uWSGI's lazy-apps
    work, results, ready = spawn.Queue(), spawn.Queue(), spawn.Queue()
    workers = [
        # daemon: never outlive this script, even when it stops on an error
        spawn.Process(target=_raw_worker, args=(engine, image_png, work, results, ready), daemon=True)
        for _ in range(args.processes)
    ]
    for worker in workers:
        worker.start()
    pids = [ready.get(timeout=300) for _ in workers]
    outcome, calls = Outcome("raw", engine), []
    cpu, server, start = time.process_time(), cpu_seconds(pids), time.time()
    deadline, enqueued = start + args.seconds, {}
    for token in range(args.clients):
        enqueued[token] = time.time()
        work.put(token)
    last = start
    while enqueued:
        token, began, ended, text, error = results.get(timeout=REQUEST_TIMEOUT)
        calls.append(ended - began)
        record(outcome, ended - enqueued.pop(token), error or None, text, check)
        last = ended
        if time.time() < deadline:
            enqueued[token] = time.time()
            work.put(token)
    outcome.server_cpu = cpu_seconds(pids) - server
    for _ in workers:
        work.put(None)
    for worker in workers:
        worker.join(timeout=30)
        if worker.is_alive():
            worker.terminate()
    outcome.elapsed, outcome.client_cpu = last - start, time.process_time() - cpu
    outcome.note = f"engine call median {percentile(calls, 0.5) * 1000:.0f} ms"
    return outcome


# -- the shared HTTP client ----------------------------------------------------------------


def record(outcome: Outcome, latency: float, error: str | None, text: str, check: TextChecker) -> None:
    if error:
        outcome.errors[error] += 1
        return
    score = check(text)
    outcome.cers.append(score)
    if score > MAX_CER:
        outcome.errors["wrong text"] += 1
    else:
        outcome.latencies.append(latency)


def run_http(
    outcome: Outcome,
    send: Callable[[requests.Session], requests.Response],
    read: Callable[[requests.Response], str],
    check: TextChecker,
    server: int,
    args,
) -> Outcome:
    """args.clients threads post for args.seconds (each first sends one unmeasured request);
    no request starts after the deadline, and the window ends with the last answer. `server`
    is the session id of the serving processes, whose CPU is counted."""
    window: dict[str, float] = {}

    def open_window() -> None:  # run once, when every client has warmed up
        window["deadline"] = time.perf_counter() + args.seconds

    barrier, lock = threading.Barrier(args.clients + 1, action=open_window), threading.Lock()
    ends: list[float] = []

    def client() -> None:
        with requests.Session() as session:
            # Warm-up: opens the connection, loads anything lazy; the measured requests count failures.
            with contextlib.suppress(requests.RequestException):
                send(session)
            barrier.wait()
            while time.perf_counter() < window["deadline"]:
                started = time.perf_counter()
                try:
                    response = send(session)
                    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
                    text = read(response) if error is None else ""
                except (requests.RequestException, ValueError, KeyError) as exc:
                    error, text = type(exc).__name__, ""
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


def ours(stack, headers: dict, engine: str, image_png: bytes):
    def send(session: requests.Session) -> requests.Response:
        return session.post(
            stack.url + "/api/ocr/",
            headers={**VIA_TLS, **headers},
            files={"image": ("page.png", image_png, "image/png")},
            data={"engine": engine, "force": "true"},
            timeout=REQUEST_TIMEOUT,
        )

    return send, lambda response: response.json()["text"]


# -- rapidocr_api in its own virtual environment --------------------------------------------


def api_venv() -> Path:
    """Create bench/.venvs/rapidocr_api once. rapidocr_api 0.2.0 needs rapidocr, which since 3.x
    leaves the inference engine to the user: onnxruntime is added, at the versions we run."""
    specs = [RAPIDOCR_API] + [f"{name}=={metadata.version(name)}" for name in ("rapidocr", "onnxruntime")]
    stamp = API_VENV / ".bench-installed"
    if stamp.exists() and stamp.read_text() == " ".join(specs):
        return API_VENV
    print(f"creating {API_VENV.relative_to(ROOT)}: pip install {' '.join(specs)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(API_VENV)], check=True)
    pip = [str(API_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = subprocess.run([*pip, *specs], capture_output=True, text=True)
    if installed.returncode:
        raise RuntimeError(f"pip install {' '.join(specs)} failed:\n{installed.stderr[-3000:]}")
    stamp.write_text(" ".join(specs))
    return API_VENV


API_SETTINGS = """
import importlib.metadata as m, yaml, rapidocr, pathlib, json
c = yaml.safe_load((pathlib.Path(rapidocr.__file__).parent / "config.yaml").read_text())
print(json.dumps({
  "rapidocr_api": m.version("rapidocr_api"), "rapidocr": m.version("rapidocr"),
  "onnxruntime": m.version("onnxruntime"), "use_cls": c["Global"]["use_cls"],
  "det_limit": f'{c["Det"]["limit_type"]} {c["Det"]["limit_side_len"]}',
  "ort_threads": c["EngineConfig"]["onnxruntime"]["intra_op_num_threads"]}))
"""


def api_settings(venv: Path) -> dict:
    """rapidocr_api's effective defaults, read from the installed packages themselves."""
    out = subprocess.run([str(venv / "bin" / "python"), "-c", API_SETTINGS], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-300:]}


def start_api(venv: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`rapidocr_api -ip 127.0.0.1 -p PORT`: its CLI's defaults (1 uvicorn worker), no
    thread limits of ours in its environment."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCR_", "OMP_", "DJANGO_"))}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(venv / "bin" / "rapidocr_api"), "-ip", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(url + "/", timeout=2).ok:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.5)
    stop_group(process)
    raise RuntimeError(f"rapidocr_api did not start:\n{log.read_text(errors='replace')[-2000:]}")


def api_client(url: str, image_png: bytes):
    def send(session: requests.Session) -> requests.Response:
        return session.post(
            url + "/ocr", files={"image_file": ("page.png", image_png, "image/png")}, timeout=REQUEST_TIMEOUT
        )

    def read(response: requests.Response) -> str:
        lines = response.json()  # {"0": {"rec_txt": ...}, "1": ...}, {} when nothing is found
        return "\n".join(lines[key]["rec_txt"] for key in sorted(lines, key=int))

    return send, read


# -- the run -------------------------------------------------------------------------------


def show(outcome: Outcome) -> None:
    lat = outcome.latencies or [0.0]
    p50, p95, p99 = (percentile(lat, share) * 1000 for share in (0.5, 0.95, 0.99))
    cer_text = f"{max(outcome.cers):.3f}" if outcome.cers else "-"
    errors = ", ".join(f"{k}: {v}" for k, v in outcome.errors.items()) or "0"
    client = outcome.client_cpu / outcome.elapsed * 100 if outcome.elapsed else 0.0
    load = f"load {os.getloadavg()[0]:.1f}"  # other work on the machine skews every figure
    cores = outcome.server_cpu / outcome.elapsed if outcome.elapsed else 0.0
    print(
        f"{outcome.system:13} {outcome.engine:10} {outcome.done:6} {outcome.rate:7.2f} {p50:8.0f} "
        f"{p95:8.0f} {p99:8.0f} {cer_text:>8} {outcome.cpu_per_image:8.0f} {cores:6.2f} {client:7.1f}%  "
        f"{errors}; {load}; {outcome.note}",
        flush=True,
    )


def rows_for(outcomes: list[Outcome]) -> list[dict]:
    rows, by = [], {(o.system, o.engine): o for o in outcomes}
    for o in outcomes:
        label = f"{o.system} {o.engine} 10-line"
        lat = o.latencies or [0.0]
        rows.append(row(BENCH, f"{label}: images/s", o.rate, "img/s"))
        for share in (0.5, 0.95, 0.99):
            rows.append(row(BENCH, f"{label}: p{round(share * 100)}", percentile(lat, share) * 1000, "ms"))
        rows.append(row(BENCH, f"{label}: server CPU per image", o.cpu_per_image, "ms"))
        rows.append(row(BENCH, f"{label}: errors", o.error_count, "count", "0", o.error_count == 0))
        if o.cers:
            worst = max(o.cers)
            rows.append(row(BENCH, f"{label}: worst CER", worst, "CER", f"<= {MAX_CER}", worst <= MAX_CER))
    for engine in ENGINES:
        mine, raw, api = by.get(("ours", engine)), by.get(("raw", engine)), by.get(("rapidocr_api", engine))
        if mine and raw and raw.rate:
            ratio = mine.rate / raw.rate
            rows.append(
                row(BENCH, f"{engine} 10-line: ours/raw images/s", ratio, "ratio", ">= 0.9", ratio >= 0.9)
            )
            if raw.cpu_per_image:  # what our pipeline costs per image, less swayed by other work
                cpu = mine.cpu_per_image / raw.cpu_per_image
                rows.append(row(BENCH, f"{engine} 10-line: ours/raw server CPU per image", cpu, "ratio"))
        if mine and api and api.rate:
            ratio = mine.rate / api.rate
            metric = f"{engine} 10-line: ours/rapidocr_api images/s"
            rows.append(row(BENCH, metric, ratio, "ratio", ">= 1.5", ratio >= 1.5))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="measured window per system (60)")
    parser.add_argument("--quick", action="store_true", help="15 s per system, a smoke run")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="uWSGI workers and raw processes")
    parser.add_argument("--systems", default="raw,ours,rapidocr_api", help="comma-separated subset")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset")
    parser.add_argument("--database-url", default="", help="the stack's database (default: SQLite)")
    add_json_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.seconds = 15
    systems, engines = args.systems.split(","), [e for e in args.engines.split(",") if e in ENGINES]
    image, truth = text_image(10)
    image_png, check = png(image), TextChecker(truth)
    print(f"throughput: {machine()}; {args.clients} clients, {args.seconds:.0f} s per system")
    size = f"{image.width}x{image.height}"
    print(f"image: 10-line English {size} PNG, {len(image_png)} bytes; an error: not 2xx or CER > {MAX_CER}")
    outcomes: list[Outcome] = []
    extra: list[dict] = []
    header = (
        f"{'system':13} {'engine':10} {'images':>6} {'img/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    )
    header += f" {'max CER':>8} {'CPU ms':>8} {'cores':>6} {'client':>8}  errors"

    if "raw" in systems:
        print(f"\nraw: {args.processes} processes x 1 engine thread, our engine objects, no HTTP")
        print(header)
        for engine in engines:
            outcomes.append(run_raw(engine, image_png, check, args))
            show(outcomes[-1])
    if "ours" in systems:
        settings = {"UWSGI_PROCESSES": str(args.processes)}
        if args.database_url:
            settings["DATABASE_URL"] = args.database_url
        with running_stack(**settings) as stack:
            headers = signed_up(stack, f"bench{int(time.time())}")
            print(f"\nours: nginx + uWSGI ({args.processes} x 1 thread), JWT, file + row, force=true")
            print(header)
            for engine in engines:
                send, read = ours(stack, headers, engine, image_png)
                outcomes.append(run_http(Outcome("ours", engine), send, read, check, stack.process.pid, args))
                show(outcomes[-1])
    if "rapidocr_api" in systems and "rapidocr" in engines:
        venv = api_venv()
        found = api_settings(venv)
        print(f"\nrapidocr_api: {RAPIDOCR_API}, its CLI's defaults (1 uvicorn worker; the sync endpoint")
        print(f"runs in FastAPI's thread pool on one shared RapidOCR); package defaults: {found}")
        print("ours: angle classifier off (rotate=false), det limit max 2000, 1 ONNX thread per process")
        described = ", ".join(f"{k} {v}" for k, v in found.items()) + ", 1 uvicorn worker"
        extra.append(row(BENCH, "rapidocr_api settings (package defaults)", described, ""))
        print(header)
        log = Path("/tmp") / f"onlineocr-bench-rapidocr_api-{os.getpid()}.log"
        process, url = start_api(venv, log)
        try:
            send, read = api_client(url, image_png)
            outcomes.append(
                run_http(Outcome("rapidocr_api", "rapidocr"), send, read, check, process.pid, args)
            )
            show(outcomes[-1])
        finally:
            stop_group(process)
            log.unlink(missing_ok=True)

    rows = rows_for(outcomes) + extra
    print("\nsummary")
    for r in rows:
        if r["unit"] in ("ratio", "count"):
            mark = {True: "ok", False: "MISSED", None: ""}[r["ok"]]
            target = f"(target {r['target']}) {mark}" if r["target"] else ""
            print(f"  {r['metric']:50} {r['value']:>8} {target}")
    print("CPU ms: server CPU per image (serving processes and their children: nginx, uWSGI, tesseract);")
    print("cores: the CPU they got per second of the window; client: the measuring process's CPU as")
    print("a share of one core (it must stay far below 100%, the GIL's cap, for the client not to limit).")
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
