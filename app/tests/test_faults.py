"""Faults injected into the real production stack (nginx -> uWSGI -> PostgreSQL): an engine
raising or running past its time, the database going away and coming back, a uWSGI
worker killed mid-upload. Each ends in a JSON error, leaves no half-written row or file, and
the service goes on by itself.

One stack with one uWSGI worker (so "the same worker" is a pid) on its own PostgreSQL database,
reached through a TCP relay the tests can cut. The tests share it and run in file order.
"""

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from app.tests.imaging import encode, english_lines, render
from app.tests.responses import assert_error
from app.tests.stack import PASSWORD, Stack, missing_tools, running_stack, signed_up, stack_database

pytestmark = pytest.mark.stack

POSTGRES = ("127.0.0.1", 5432)
ENGINE_TIMEOUT = 6  # seconds: OCR_ENGINE_TIMEOUT in the stack
SMALL = encode(render(english_lines(2, seed=41)))  # well under the timeout
# 400 words: ~1.4 s of Tesseract's CPU (2-3 s on the loaded machine), under ENGINE_TIMEOUT: time
# to cut the database while it reads (past the timeout it would end in the same write anyway).
MEDIUM = encode(render(english_lines(20, seed=42, words=20), size=28))
OCR_STARTED = 0.3  # seconds of the worker's CPU on an upload: past auth and lookup (a few ms)


@cache
def page() -> bytes:
    """A 3000x4000 page full of small text, 3,450 words: in-process Tesseract needs 11 s of CPU
    on it (one thread), RapidOCR 33 s, well over ENGINE_TIMEOUT. Not more pixels: in 6 s RapidOCR
    takes the worker from 0.55 to ~1.7 GB resident; on a 4000x6000 page to 1.9-2.0 GB, near
    uwsgi.ini's reload-on-rss (2048 MB), and once uWSGI recycled the worker after the 504."""
    canvas = Image.new("RGB", (3000, 4000), "white")
    canvas.paste(render(english_lines(115, seed=43, words=30), size=20), (20, 20))
    return encode(canvas)


def strip() -> bytes:
    """1x100: within every upload limit (app/images.py), but ddddocr scales it to 64 px high,
    so 0 px wide, and the library raises."""
    return encode(Image.new("RGB", (1, 100), "white"))


class DatabaseRelay:
    """A TCP relay to PostgreSQL that a test can cut. Cut, it hangs up every relayed
    connection and every new one at once, as a crashed or unreachable server does."""

    def __init__(self, target: tuple[str, int] = POSTGRES) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            for sock in self._open:
                _hang_up(sock)

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self.cut()
        _hang_up(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self._up.is_set():
                _hang_up(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _hang_up(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._open -= {source, sink}
        _hang_up(source)
        _hang_up(sink)


def _hang_up(sock: socket.socket) -> None:
    """shutdown() first: it wakes a thread blocked in recv() on the socket, close() does not."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture(scope="module")
def relay() -> Iterator[DatabaseRelay]:
    running = DatabaseRelay()
    yield running
    running.close()


@pytest.fixture(scope="module")
def stack(relay) -> Iterator[Stack]:
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh test, which installs them"
    with socket.socket() as probe:
        assert probe.connect_ex(POSTGRES) == 0, "these tests need PostgreSQL on 127.0.0.1:5432"
    suite_url = os.environ.get("DATABASE_URL", "")
    server = suite_url if suite_url.startswith("postgres") else "postgres://postgres@127.0.0.1:5432/postgres"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", server)  # stack_database makes a PostgreSQL database from it
        with stack_database("onlineocr_faults") as database:
            direct = urlsplit(database["DATABASE_URL"])
            relayed = direct._replace(netloc=f"{direct.username}@127.0.0.1:{relay.port}").geturl()
            with running_stack(
                DATABASE_URL=relayed,
                UWSGI_PROCESSES="1",
                UWSGI_HARAKIRI="60",
                OCR_ENGINE_TIMEOUT=str(ENGINE_TIMEOUT),
            ) as running:
                yield running


@pytest.fixture(scope="module")
def alice(stack) -> dict[str, str]:
    return signed_up(stack, "alice")


def upload(stack: Stack, headers: dict, data: bytes, engine: str, **kwargs) -> requests.Response:
    return stack.post(
        "/api/ocr/",
        headers=headers,
        files={"image": ("scan.png", data, "image/png")},
        data={"engine": engine, "force": "1"},
        timeout=90,
        **kwargs,
    )


def history(stack: Stack, headers: dict, **params) -> dict:
    response = stack.get("/api/history/", headers=headers, params={"page_size": 100, **params}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def only_worker(stack: Stack) -> int:
    (pid,) = stack.worker_pids()
    return pid


def cpu_seconds(pid: int) -> float:
    """CPU time the process (all its threads) has used, user + system, from /proc."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # from field 3, state; utime, stime are 14, 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(condition: Callable[[], object], timeout: float = 30, every: float = 0.01) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {condition}")


@contextmanager
def in_background(call: Callable[[], requests.Response]) -> Iterator[Future]:
    """Send a request from another thread; the block injects the fault while it runs, then
    the future gives the response."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(call)


def wait_until_reading(worker: int, before: float, request: Future) -> None:
    """Until the idle worker has spent OCR_STARTED s of CPU since `before` (taken just before
    the upload was sent) and the upload is still unanswered: Tesseract reads in the worker now."""
    wait_for(lambda: cpu_seconds(worker) - before >= OCR_STARTED or request.done())
    assert not request.done(), f"answered before the fault: {request.result().text[:500]}"


def assert_failed_record_in_history(stack: Stack, headers: dict, error: dict) -> None:
    shown = stack.get(f"/api/history/{error['record_id']}/", headers=headers, timeout=30).json()
    assert (shown["status"], shown["error"]) == ("failed", error["message"])
    failed = history(stack, headers, status="failed")["results"]
    assert error["record_id"] in [record["id"] for record in failed]
    assert stack.get(f"/api/history/{error['record_id']}/image/", headers=headers).status_code == 200


def assert_worker_serves(stack: Stack, headers: dict, worker: int) -> None:
    """The stack's one worker, `worker`, reads the next upload."""
    response = upload(stack, headers, SMALL, "tesseract")
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "done"
    assert stack.worker_pids() == {worker}


# name: (engine, image, status, code, part of the message). No Tesseract failure of its own: it
# runs in the worker now (tesserocr), and no upload makes it fail; the worker-killed test kills it.
ENGINE_FAULTS = {
    "ddddocr raises": ("ddddocr", strip, 503, "engine_failed", "ddddocr failed"),
    "tesseract past the timeout": ("tesseract", page, 504, "engine_timeout", "Tesseract took too long"),
    # In-process ONNX: cancelled by app/engines/deadline.py, not left to uWSGI's harakiri.
    "rapidocr past the timeout": ("rapidocr", page, 504, "engine_timeout", "RapidOCR took too long"),
}


@pytest.mark.parametrize(
    ("engine", "image", "status", "code", "message"), ENGINE_FAULTS.values(), ids=ENGINE_FAULTS
)
def test_engine_fault_answers_json_keeps_a_failed_record_and_the_worker(
    stack, alice, engine, image, status, code, message
):
    worker, data = only_worker(stack), image()
    started = time.monotonic()
    error = assert_error(upload(stack, alice, data, engine), status, code)
    assert message in error["message"]
    if code == "engine_timeout":
        assert ENGINE_TIMEOUT <= time.monotonic() - started < ENGINE_TIMEOUT + 20
        before = cpu_seconds(worker)
        time.sleep(1)
        assert cpu_seconds(worker) - before < 0.25  # stopped, not left reading on another thread
    assert_failed_record_in_history(stack, alice, error)
    assert_worker_serves(stack, alice, worker)


# name: (method, path, request arguments, status once the database is back); each needs the
# database, if only to find the user behind the token.
NEEDS_DATABASE = {
    "upload": ("POST", "/api/ocr/", {"files": {"image": ("a.png", SMALL, "image/png")}}, 201),
    "history": ("GET", "/api/history/", {}, 200),
    "search": ("GET", "/api/history/", {"params": {"search": "invoice"}}, 200),
    "log in": ("POST", "/api/token_obtain_pair/", {"json": {"username": "alice", "password": PASSWORD}}, 200),
    "health": ("GET", "/api/health/", {}, 200),
}


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), NEEDS_DATABASE.values(), ids=NEEDS_DATABASE)
def test_database_down_answers_503_json_and_the_service_recovers_by_itself(
    stack, alice, relay, method, path, kwargs, status
):
    records, files = history(stack, alice)["count"], set(stack.media_files())
    relay.cut()
    try:
        response = stack.request(method, path, headers=alice, timeout=30, **kwargs)
    finally:
        relay.restore()
    if path == "/api/health/":  # the load balancer's probe keeps its own shape
        assert response.status_code == 503
        assert response.json()["database"] == "error: OperationalError"
    else:
        assert_error(response, 503, "database_unavailable")
        assert response.headers["Retry-After"] == "5"
    assert set(stack.media_files()) == files
    assert history(stack, alice)["count"] == records
    # Back: the very first request after the outage is served, no restart, no retry.
    again = stack.request(method, path, headers=alice, timeout=30, **kwargs)
    assert again.status_code == status, again.text


def test_database_lost_while_the_engine_runs_leaves_no_file_and_no_row(stack, alice, relay):
    records, files = history(stack, alice)["count"], set(stack.media_files())
    worker = only_worker(stack)
    before = cpu_seconds(worker)
    try:
        with in_background(lambda: upload(stack, alice, MEDIUM, "tesseract")) as request:
            wait_until_reading(worker, before, request)  # authenticated and looked up: now only OCR
            relay.cut()
        assert_error(request.result(timeout=120), 503, "database_unavailable")
    finally:
        relay.restore()
    assert set(stack.media_files()) == files  # the file written before the row failed is gone
    assert history(stack, alice)["count"] == records


def test_worker_killed_mid_upload_gets_a_502_json_leaves_nothing_and_is_replaced(stack, alice):
    records, files = history(stack, alice)["count"], set(stack.media_files())
    worker, data = only_worker(stack), page()
    before = cpu_seconds(worker)
    with in_background(lambda: upload(stack, alice, data, "tesseract")) as request:
        wait_until_reading(worker, before, request)
        os.kill(worker, signal.SIGKILL)
    assert_error(request.result(timeout=120), 502, "server_unavailable")
    replacement = wait_for(lambda: stack.worker_pids() - {worker}, every=0.5)
    assert set(stack.media_files()) == files
    assert history(stack, alice)["count"] == records
    assert_worker_serves(stack, alice, next(iter(replacement)))
