"""The real production stack on loopback: `./start.sh serve` runs the repo's nginx.conf and
uwsgi.ini (only ports and paths differ), and every request goes through nginx.

The tests share one running stack and run in file order; the last one stops it.
"""

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from PIL import Image

from app.tests.imaging import cer, encode, english_lines, render
from app.tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
HARAKIRI_SECONDS = 5
MAX_UPLOAD_BYTES = 2_000_000
# What the TLS-terminating load balancer in front of nginx adds to every request.
VIA_TLS = {"X-Forwarded-Proto": "https"}
LINES = english_lines(3, seed=31)


@dataclass
class Stack:
    process: subprocess.Popen
    url: str
    stats: tuple[str, int]
    log: Path
    media: Path
    run_dir: Path

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, headers={**VIA_TLS, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, headers={**VIA_TLS, **kwargs.pop("headers", {})}, **kwargs)

    def worker_pids(self) -> set[int]:
        with socket.create_connection(self.stats, timeout=5) as sock:
            raw = b"".join(iter(lambda: sock.recv(65536), b""))
        return {worker["pid"] for worker in json.loads(raw)["workers"] if worker["pid"]}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def stack():
    missing = [tool for tool in ("nginx",) if not _which(tool)] + (
        [] if (Path(sys.prefix) / "bin" / "uwsgi").exists() else ["uwsgi"]
    )
    assert not missing, f"{missing} not installed: run ./start.sh test, which installs them"
    # Not under pytest's 0700 temp folder: nginx workers run as an unprivileged user
    # and must reach media/ and the static files.
    base = Path(tempfile.mkdtemp(prefix="onlineocr-stack-"))
    base.chmod(0o755)
    media, run_dir = base / "media", base / "run"
    port, stats_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "OCR_"))},
        "VENV": sys.prefix,
        "PORT": str(port),
        "RUN_DIR": str(run_dir),
        "UWSGI_SOCKET": f"127.0.0.1:{free_port()}",
        "UWSGI_STATS": f"127.0.0.1:{stats_port}",
        "UWSGI_PROCESSES": "2",
        "UWSGI_HARAKIRI": str(HARAKIRI_SECONDS),
        "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_MEDIA_ROOT": str(media),
        "DJANGO_STATIC_ROOT": str(base / "static"),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "OCR_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
    }
    log = base / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["./start.sh", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Stack(process, f"http://127.0.0.1:{port}", ("127.0.0.1", stats_port), log, media, run_dir)
    _wait_until_healthy(running)
    yield running
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    shutil.rmtree(base, ignore_errors=True)


def _which(tool: str) -> bool:
    return subprocess.run(["which", tool], capture_output=True).returncode == 0


def _wait_until_healthy(stack: Stack, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert stack.process.poll() is None, f"start.sh serve exited:\n{stack.log_text()[-3000:]}"
        try:
            if stack.get("/api/health/", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the stack did not become healthy:\n{stack.log_text()[-3000:]}")


def signed_up(stack: Stack, username: str) -> dict[str, str]:
    password = "correct horse battery staple"
    response = stack.post("/api/register/", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    tokens = stack.post("/api/token_obtain_pair/", json={"username": username, "password": password}).json()
    return {"Authorization": f"Bearer {tokens['access']}"}


@pytest.fixture(scope="module")
def alice(stack) -> dict[str, str]:
    return signed_up(stack, "alice")


@pytest.fixture(scope="module")
def alice_record(stack, alice) -> dict:
    png = encode(render(LINES))
    response = stack.post(
        "/api/ocr/",
        headers=alice,
        files={"image": ("letter.png", png, "image/png")},
        data={"engine": "tesseract"},
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "png": png}


def test_serve_passed_the_deploy_checks(stack):
    """start.sh serve runs `manage.py check --deploy --fail-level WARNING` before starting."""
    assert "System check identified no issues (0 silenced)." in stack.log_text()


def test_upload_through_nginx_reads_the_text(alice_record):
    assert cer("\n".join(LINES), alice_record["text"]) <= 0.05
    # The scheme the client used, from the proxy; Debian's uwsgi_params pass $host (no port).
    assert alice_record["image_url"] == f"https://127.0.0.1/api/history/{alice_record['id']}/image/"


def test_owner_gets_the_image_others_and_direct_media_get_404(stack, alice_record, alice):
    path = f"/api/history/{alice_record['id']}/image/"
    own = stack.get(path, headers=alice)
    assert own.status_code == 200
    assert own.content == alice_record["png"]
    assert "X-Accel-Redirect" not in own.headers  # nginx consumed it and sent the file
    stored = next(p for p in stack.media.rglob("*.png"))
    assert stored.read_bytes() == alice_record["png"]

    bob = signed_up(stack, "bob")
    assert stack.get(path, headers=bob).status_code == 404
    assert stack.get(f"/api/history/{alice_record['id']}/", headers=bob).status_code == 404

    direct = stack.get("/media/" + str(stored.relative_to(stack.media)), headers=alice)
    assert direct.status_code == 404
    assert direct.json()["error"]["code"] == "not_found"


def test_static_files_are_served_by_nginx(stack):
    response = stack.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "max-age=604800"  # nginx's `expires 7d`
    assert "swagger-ui.css" not in stack.log_text()  # uWSGI never saw the request


def test_body_over_the_limit_is_a_413_json_from_nginx(stack):
    host, port = stack.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/api/ocr/")
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(MAX_UPLOAD_BYTES * 2))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "too_large"


def test_plain_http_is_redirected_to_https_except_the_health_check(stack):
    plain = requests.get(stack.url + "/api/engines/", allow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["Location"].startswith("https://")
    assert requests.get(stack.url + "/api/health/").status_code == 200


def test_security_headers_are_sent_once(stack, alice):
    response = stack.get("/api/history/", headers=alice)
    assert response.status_code == 200
    raw = response.raw.headers
    for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert len(raw.getlist(header)) == 1, header
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "nginx/" not in response.headers.get("Server", "")


def test_a_request_past_harakiri_gets_a_clean_5xx_and_the_worker_is_replaced(stack, alice):
    workers_before = stack.worker_pids()
    page = Image.new("RGB", (3000, 4000), "white")
    page.paste(render(english_lines(40, seed=3, words=6), size=48), (100, 100))
    started = time.monotonic()
    response = stack.post(
        "/api/ocr/",
        headers=alice,
        files={"image": ("page.png", encode(page), "image/png")},
        data={"engine": "rapidocr"},
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "server_unavailable"
    assert HARAKIRI_SECONDS - 1 <= elapsed < HARAKIRI_SECONDS + 8  # uWSGI checks once a second
    assert "HARAKIRI" in stack.log_text()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(stack.worker_pids() - workers_before) == 0:
        time.sleep(0.5)
    replaced = stack.worker_pids() - workers_before
    assert len(replaced) == 1
    assert stack.get("/api/history/", headers=alice).status_code == 200


def test_sigterm_stops_nginx_and_uwsgi_within_seconds(stack):
    nginx_master = int((stack.run_dir / "nginx.pid").read_text())
    workers = stack.worker_pids()
    stack.process.send_signal(signal.SIGTERM)
    try:
        stack.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 15 s after SIGTERM:\n{stack.log_text()[-3000:]}")
    assert stack.process.returncode == 0
    for pid in (nginx_master, *workers):
        assert not _alive(pid), pid
    with pytest.raises(requests.ConnectionError):
        stack.get("/api/health/", timeout=2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
