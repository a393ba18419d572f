"""The real production stack on loopback: `./start.sh serve` runs the repo's nginx.conf and
uwsgi.ini (only ports and paths differ), and every request goes through nginx.

The tests share one running stack and run in file order; the last one stops it.
"""

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from app.tests.imaging import cer, encode, english_lines, render
from app.tests.pdfs import text_pdf
from app.tests.responses import assert_error
from app.tests.stack import missing_tools, running_stack, signed_up

pytestmark = pytest.mark.stack

HARAKIRI_SECONDS = 5
MAX_UPLOAD_BYTES = 2_000_000
LINES = english_lines(3, seed=31)
PDF_RENDER_MB = 64


@pytest.fixture(scope="module")
def stack():
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh test, which installs them"
    with running_stack(
        UWSGI_HARAKIRI=str(HARAKIRI_SECONDS),
        OCR_MAX_UPLOAD_BYTES=str(MAX_UPLOAD_BYTES),
        OCR_PDF_RENDER_MEMORY_MB=str(PDF_RENDER_MB),
    ) as running:
        yield running


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


def test_upload_through_nginx_reads_the_text(stack, alice_record):
    assert cer("\n".join(LINES), alice_record["text"]) <= 0.05
    # The scheme the client used, from the proxy; the Host with its port (nginx's $http_host).
    port = stack.url.rsplit(":", 1)[1]
    assert alice_record["image_url"] == f"https://127.0.0.1:{port}/api/history/{alice_record['id']}/image/"


def test_a_pdf_is_read_by_workers_that_dropped_root_and_watch_their_render(stack, alice):
    """The workers run as SERVE_USER after starting as root, which makes them not dumpable;
    the render's child must still be readable to its worker (its memory is watched) and must
    never run the worker's code, whatever happens to its pipe."""
    workers = stack.worker_pids()
    drawn = text_pdf("Hello PDF world", rectangles=50_000)  # ~80 ms to draw: watched a few times
    costly = text_pdf("Too costly", rectangles=400_000)  # ~150 MB in PDFium: past PDF_RENDER_MB

    drawing = {"engine": "tesseract", "pdf_text": "ocr"}  # drawn, although the pages carry their text
    read = stack.post("/api/ocr/", headers=alice, files={"image": ("a.pdf", drawn)}, data=drawing)
    refused = stack.post("/api/ocr/", headers=alice, files={"image": ("b.pdf", costly)}, data=drawing)

    assert read.status_code == 201, read.text
    assert cer("Hello PDF world", read.json()["text"]) <= 0.1
    assert_error(refused, 422, "pdf_too_complex")
    assert stack.worker_pids() == workers  # no worker died or was replaced
    log = stack.log_text()
    assert "double free" not in log
    assert "Traceback" not in log


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
    assert_error(direct, 404, "not_found")


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
    # ~4 s of RapidOCR for 40 lines of 6 words on an idle machine: 75 lines of 10 take over
    # twice HARAKIRI_SECONDS, so the worker is still reading when harakiri comes.
    page = Image.new("RGB", (3000, 4000), "white")
    page.paste(render(english_lines(75, seed=3, words=10), size=40), (60, 60))
    started = time.monotonic()
    response = stack.post(
        "/api/ocr/",
        headers=alice,
        files={"image": ("page.png", encode(page), "image/png")},
        data={"engine": "rapidocr"},
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert_error(response, 502, "server_unavailable")
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
