"""start.sh itself: the steps the Docker images run are the ones it runs here."""

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app.engines import tesseract_lib
from app.engines.registry import ENGINES
from app.tests.imaging import encode, render
from app.tests.processes import free_port, kill_group
from app.tests.stack import OWN_PREFIXES, PASSWORD, python_revealed

ROOT = Path(__file__).resolve().parents[2]


def start_sh(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./start.sh", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "VENV": sys.prefix, **env},
        timeout=600,
    )


def test_install_is_idempotent_and_installs_nothing_twice():
    """dockerfile_base runs `./start.sh install`; on a machine that has everything it is a no-op."""
    result = start_sh("install")
    assert result.returncode == 0, result.stderr
    assert "apt-get install" not in result.stderr
    assert "pip install" not in result.stderr


def test_unknown_command_prints_usage():
    result = start_sh("frobnicate")
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_nginx_conf_renders_every_placeholder(tmp_path):
    """The rendered file is what nginx itself accepts (`nginx -t`)."""
    script = f"""
        set -e
        source <(sed -n '/^render_nginx_conf()/,/^}}/p' start.sh)
        log() {{ echo "$*" >&2; }}
        PORT=18080 RUN_DIR={tmp_path} UWSGI_SOCKET=127.0.0.1:18001 UWSGI_HARAKIRI=30
        DJANGO_STATIC_ROOT={tmp_path}/static DJANGO_MEDIA_ROOT={tmp_path}/media MAX_BODY_BYTES=1000
        render_nginx_conf {tmp_path}/nginx.conf
        nginx -t -e stderr -c {tmp_path}/nginx.conf
    """
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rendered = (tmp_path / "nginx.conf").read_text()
    assert "listen 18080 default_server;" in rendered
    assert "client_max_body_size 1000;" in rendered
    assert "uwsgi_read_timeout 40s;" in rendered
    assert "test is successful" in result.stderr


TEST_PACKAGES = (
    "pytest",
    "pytest-django",
    "pytest-xdist",
    "factory-boy",
    "playwright",
    "pypdf",
    "moto",
    "schemathesis",
    "ruff",
)


def _requirement_names(path: Path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line.split("==")[0].split("[")[0].lower() for line in lines if line and not line.startswith("-r")}


def test_runtime_requirements_name_no_test_package():
    """The product image installs requirements.txt: no pytest, playwright, moto or schemathesis."""
    runtime = _requirement_names(ROOT / "requirements.txt")
    assert runtime.isdisjoint(TEST_PACKAGES), runtime & set(TEST_PACKAGES)
    dev = ROOT / "requirements-dev.txt"
    assert "-r requirements.txt" in dev.read_text().splitlines()
    assert set(TEST_PACKAGES) <= _requirement_names(dev)


def test_images_install_only_the_runtime_requirements():
    """`./start.sh install` (the base image's step) reads requirements.txt; only `test` reads the dev file."""
    script = (ROOT / "start.sh").read_text()
    install_branch = script.split("\n  install)\n", 1)[1].split(";;", 1)[0]
    assert "install_python\n" in install_branch  # no file argument: requirements.txt
    assert "install_python requirements-dev.txt" in script.split("\n  test)\n", 1)[1].split(";;", 1)[0]
    for dockerfile in ("dockerfile_base", "dockerfile_product"):
        runs = [line for line in (ROOT / dockerfile).read_text().splitlines() if "pip install" in line]
        assert not any("requirements-dev" in line for line in runs), dockerfile


def test_dockerignore_keeps_tests_and_benchmarks_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {"app/tests", "bench", ".ci", "docs"} <= ignored


def _serve(
    tmp_path: Path, root: Path = ROOT, past_start: bool = False, timeout: float = 300, **settings: str
) -> tuple[int | None, str]:
    """`start.sh serve` as the stack tests run it (own database, ports and run folder), for a
    start that is expected to stop before uWSGI and nginx come up (or, `past_start`, soon
    after): its exit status and output. If it comes up anyway it is stopped at once (killed
    after `timeout`), and the status is None."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)},
        "VENV": sys.prefix,
        "PORT": str(free_port()),
        "RUN_DIR": str(tmp_path / "run"),
        "UWSGI_SOCKET": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        **settings,
    }
    process = subprocess.Popen(
        [*python_revealed(tmp_path), str(root / "start.sh"), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    watchdog = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
    watchdog.start()
    output, status = [], None
    try:
        for line in process.stdout:
            output.append(line)
            if "==> serving on" in line and not past_start:
                break
        else:
            status = process.wait()
            status = None if status == -signal.SIGKILL else status
    finally:
        watchdog.cancel()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
    return status, "".join(output)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder every user may enter (pytest's own temp folders are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="onlineocr-serve-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_plain_http_without_saying_so_is_refused_with_the_way_to_say_so(open_tmp):
    """Turning the four TLS settings off one by one fails `check --deploy`; the message names
    the switch that makes a plain-http deployment deliberate."""
    status, output = _serve(
        open_tmp,
        DJANGO_BEHIND_TLS_PROXY="0",
        DJANGO_SECURE_COOKIES="0",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_HSTS_SECONDS="0",
    )
    assert status == 1, output[-2000:]
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in output
    assert "set DJANGO_PLAIN_HTTP=1" in output


def test_serve_ends_when_nginx_fails_at_start_rather_than_lingering_half_up(open_tmp):
    """An nginx that exits at once (a config it refuses) ends serve with an error that names
    it: a container left with uWSGI alone would stay up, unhealthy, and never be restarted.
    (bash 5.2's `wait -n` skips a job that already ended, "no such job", and waits on for the
    other: serve hung so in the image test, its nginx refused at once.) The nginx here is a
    stand-in failing as the real one does on a bad config, the one fault injected."""
    fake = open_tmp / "bin"
    fake.mkdir()
    (fake / "nginx").write_text("#!/bin/sh\necho 'nginx: [emerg] injected config error' >&2\nexit 1\n")
    (fake / "nginx").chmod(0o755)
    started = time.monotonic()
    status, output = _serve(open_tmp, past_start=True, timeout=90, PATH=f"{fake}:{os.environ['PATH']}")
    assert status == 1, output[-2000:]
    assert "nginx exited by itself" in output
    assert "[emerg] injected config error" in output
    assert time.monotonic() - started < 60


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the workers change user only when started as root")


@needs_root
@pytest.mark.parametrize("setting", ["DJANGO_STATIC_ROOT", "DJANGO_MEDIA_ROOT"])
def test_serve_refuses_a_folder_its_workers_cannot_enter(open_tmp, setting):
    """A 0700 parent: nginx's workers (www-data) would answer 403 for every file under it."""
    locked = open_tmp / "locked"
    locked.mkdir(mode=0o700)
    status, output = _serve(open_tmp, **{setting: str(locked / "files")})
    assert status == 1, output[-2000:]
    assert f"www-data cannot enter {locked} (drwx------ root root)" in output


@needs_root
def test_serve_refuses_a_checkout_its_workers_cannot_enter(open_tmp):
    """The checkout under a 0700 folder (like /root): uWSGI's workers could not even import it."""
    locked = open_tmp / "home"
    locked.mkdir(mode=0o700)
    (locked / "onlineocr").symlink_to(ROOT)
    status, output = _serve(open_tmp, root=locked / "onlineocr", SERVE_USER="nobody")
    assert status == 1, output[-2000:]
    assert f"nobody cannot enter {locked} (drwx------ root root)" in output


@dataclass
class Default:
    """`./start.sh` with no argument, as a newcomer runs it (its own database and folders)."""

    process: subprocess.Popen
    port: int
    stats: tuple[str, int]
    static: Path
    log: Path

    def workers(self) -> list[dict]:
        with socket.create_connection(self.stats, timeout=5) as sock:
            raw = b"".join(iter(lambda: sock.recv(65536), b""))
        return [worker for worker in json.loads(raw)["workers"] if worker["pid"]]


@pytest.fixture(scope="module")
def default_server() -> Iterator[Default]:
    """Started once for the tests below; the SIGTERM test, last, stops it. Not as SERVE_USER:
    the default runs as whoever started it, so no folder needs opening up (a checkout or a
    Python under a private /root included)."""
    base = Path(tempfile.mkdtemp(prefix="onlineocr-default-"))
    port, stats_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)},
        "VENV": sys.prefix,
        "PORT": str(port),
        "UWSGI_STATS": f"127.0.0.1:{stats_port}",
        "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_MEDIA_ROOT": str(base / "media"),
        "DJANGO_STATIC_ROOT": str(base / "static"),
    }
    log = base / "start.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["./start.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Default(process, port, ("127.0.0.1", stats_port), base / "static", log)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/health/", timeout=60).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        yield server
    finally:
        kill_group(process)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.stack
def test_default_serves_through_uwsgi_one_worker_per_core(default_server):
    """Not runserver (which names itself `WSGIServer/0.2` and answers a kept-alive connection
    ~45 ms late): start.sh became uWSGI's master, whose workers the stats socket lists."""
    cmdline = Path(f"/proc/{default_server.process.pid}/cmdline").read_bytes().split(b"\0")
    assert Path(cmdline[0].decode()).name == "uwsgi", cmdline
    assert cmdline[1:3] == [b"--ini", b"uwsgi.ini:embedded"]
    workers = default_server.workers()
    assert len(workers) == os.cpu_count()
    for worker in workers:
        assert Path(f"/proc/{worker['pid']}/stat").read_text().split(") ", 1)[1].split()[1] == str(
            default_server.process.pid
        )  # the parent of every worker is the master start.sh became
        # Engines warmed after fork, before any OCR request: Tesseract and RapidOCR's runtime loaded.
        maps = Path(f"/proc/{worker['pid']}/maps").read_text()
        assert "libtesseract" in maps
        assert "onnxruntime_pybind11_state" in maps
    response = requests.get(f"http://127.0.0.1:{default_server.port}/no/such/page/")
    assert "Server" not in response.headers
    assert response.status_code == 404
    assert "URLconf" not in response.text  # DEBUG is off: no debug page


@pytest.mark.stack
def test_default_keeps_the_connection_alive_without_delay(default_server):
    """Every request on one connection (the same socket, the same local port) and no stall:
    runserver took ~45 ms for each request after the first on a kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", default_server.port, timeout=30)
    times, ports = [], set()
    try:
        for _ in range(21):
            started = time.perf_counter()
            connection.request("GET", "/api/health/")
            response = connection.getresponse()
            body = response.read()
            times.append(time.perf_counter() - started)
            assert response.status == 200, body
            assert json.loads(body)["status"] == "ok"
            assert not response.will_close, response.getheaders()
            ports.add(connection.sock.getsockname()[1])
    finally:
        connection.close()
    assert len(ports) == 1
    assert statistics.median(times[1:]) < 0.025, times


@pytest.mark.stack
def test_default_serves_static_files_through_whitenoise(default_server):
    """DEBUG off, Django itself serves no static file: WhiteNoise does, the bytes collectstatic
    gathered, cacheable, and a 304 to a client that has them, on the same connection."""
    url = f"http://127.0.0.1:{default_server.port}/static/css/app.css"
    with requests.Session() as session:
        first = session.get(url)
        again = session.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert first.status_code == 200
    assert first.headers["Content-Type"].startswith("text/css")
    assert first.content == (default_server.static / "css" / "app.css").read_bytes()
    assert int(first.headers["Content-Length"]) == len(first.content)
    assert first.headers["Cache-Control"] == "max-age=60, public"
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.stack
def test_default_reads_an_upload_and_hands_its_image_back(default_server):
    """A newcomer's first upload through the router; no nginx, so the app streams the image
    itself after its owner check (no X-Accel-Redirect pointing at a location nobody serves)."""
    url = f"http://127.0.0.1:{default_server.port}"
    image = encode(render(["k7mx3"], size=40))
    with requests.Session() as session:
        account = {"username": "newcomer", "password": PASSWORD}
        assert session.post(f"{url}/api/register/", json=account).status_code == 201
        token = session.post(f"{url}/api/token_obtain_pair/", json=account).json()["access"]
        session.headers["Authorization"] = f"Bearer {token}"
        files = {"image": ("captcha.png", image, "image/png")}
        first = session.post(f"{url}/api/ocr/", files=files, data={"engine": "ddddocr"})
        again = session.post(f"{url}/api/ocr/", files=files, data={"engine": "ddddocr"})
        back = session.get(f"{url}/api/history/{first.json()['id']}/image/")
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()["cached"], again.json()["id"]) == (200, True, first.json()["id"])
    assert back.status_code == 200
    assert "X-Accel-Redirect" not in back.headers
    assert back.headers["Content-Type"] == "image/png"
    assert back.content == image


@pytest.mark.stack
def test_default_stops_on_sigterm_within_10_seconds(default_server):
    """Last: it stops the module's server. SIGTERM to the process start.sh became (the master)
    ends the router and the workers too; Ctrl-C's SIGINT does the same."""
    pids = {default_server.process.pid, *(worker["pid"] for worker in default_server.workers())}
    started = time.monotonic()
    default_server.process.send_signal(signal.SIGTERM)
    status = default_server.process.wait(timeout=10)
    assert time.monotonic() - started < 10
    assert status == 0, default_server.log.read_text(errors="replace")[-3000:]
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(default_server.process.pid, 0)  # nothing left in its process group
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def _system_packages(langs: str | None) -> list[str]:
    """The Debian packages start.sh installs, for this OCR_TESSERACT_LANGS (None: its default)."""
    script = """
        set -e
        source <(sed -n '/^OCR_TESSERACT_LANGS=/,/^for lang in/p' start.sh)
        printf '%s\\n' "${SYSTEM_PACKAGES[@]}"
    """
    env = {key: value for key, value in os.environ.items() if key != "OCR_TESSERACT_LANGS"}
    if langs is not None:
        env["OCR_TESSERACT_LANGS"] = langs
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


DEFAULT_LANGS = ("eng", "chi_sim", "chi_tra", "jpn", "kor", "fra", "deu", "spa", "ita", "por", "rus", "nld")


def test_the_tesseract_packs_are_a_configurable_list_with_osd_always():
    base = ["tesseract-ocr", "tesseract-ocr-osd"]
    assert _system_packages("eng chi_sim") == [*base, "tesseract-ocr-eng", "tesseract-ocr-chi-sim"]
    default = [f"tesseract-ocr-{lang.replace('_', '-')}" for lang in DEFAULT_LANGS]
    assert _system_packages(None) == [*base, *default]


def test_the_default_packs_are_installed_and_read_by_the_engine():
    """`./start.sh test` installed them (as root) before this suite: the engine lists each, and
    Tesseract's orientation model is there for page orientation."""
    assert set(DEFAULT_LANGS) <= set(ENGINES["tesseract"].languages())
    assert (Path(tesseract_lib.datapath()) / "osd.traineddata").is_file()
