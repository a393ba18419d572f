"""Issue 19, the request side: a slow-drip image_url, bodies of many fields, type confusion
in every field of every JSON-taking endpoint, Django's own errors as JSON, and options
bounded and refused where they do not apply."""

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from app.models import OcrRecord
from app.tests.imaging import encode, render
from app.tests.responses import assert_error

PNG = encode(render(["drip"]))


# --- item 5: image_url is bounded as a whole, not per recv() --------------------------------


@pytest.fixture
def drip_server(settings) -> Iterator[dict[str, str]]:
    """A server on 127.0.0.2 that answers /headers with a status line and then one header
    byte every 0.2 s, and /body with full headers and then one body byte every 0.2 s."""
    settings.OCR_URL_ALLOWLIST = ["127.0.0.2/32"]
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen()
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            request = conn.recv(4096)
            try:
                if b"/headers" in request.split(b"\r\n", 1)[0]:
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    payload = b"X-Drip: " + b"a" * 1000
                else:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n"
                    )
                    payload = PNG
                for byte in payload:
                    if stop.wait(0.2):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client hung up: the point

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    base = f"http://127.0.0.2:{listener.getsockname()[1]}"
    yield {"headers": f"{base}/headers", "body": f"{base}/body"}
    stop.set()
    listener.close()


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_slow_drip_image_url_is_cut_off_at_the_timeout(api, drip_server, settings, media_files, where):
    settings.OCR_URL_TIMEOUT = 2
    started = time.monotonic()
    response = api.post("/api/ocr/", {"image_url": drip_server[where]}, format="json")
    elapsed = time.monotonic() - started
    error = assert_error(response, 400, "url_fetch_failed")
    assert "too long" in error["message"]
    assert elapsed < 3, f"held for {elapsed:.1f} s against a 2 s timeout"
    assert OcrRecord.objects.count() == 0
    assert media_files() == set()


# --- item 6: many fields cost little and answer small ----------------------------------------

# The body: 2.2 MB of 200,000 unknown keys.
MANY_KEYS = json.dumps({f"k{i}": 0 for i in range(200_000)}, separators=(",", ":"))


@pytest.mark.parametrize("path", ["/api/register/", "/api/ocr/"])
def test_a_body_of_200000_unknown_keys_is_refused_cheaply_and_briefly(api, anon, path):
    client = anon if path == "/api/register/" else api
    started = time.process_time()
    response = client.generic("POST", path, MANY_KEYS, content_type="application/json")
    cpu = time.process_time() - started
    assert_error(response, 400, "too_many_fields")
    assert cpu < 1, f"{cpu:.2f} s of CPU"
    assert len(response.content) < 2048


@pytest.mark.parametrize("path", ["/api/register/", "/api/ocr/"])
def test_an_error_names_a_few_unknown_fields_and_counts_the_rest(api, anon, path):
    client = anon if path == "/api/register/" else api
    body = {f"x{i:03}" + "y" * 5000: 1 for i in range(90)}
    response = client.generic("POST", path, json.dumps(body), content_type="application/json")
    error = assert_error(response, 400, "unknown_field")
    assert len(error["fields"]) == 5
    assert "and 85 more unknown fields" in error["message"]
    assert len(response.content) < 2048


def test_a_form_body_of_many_fields_is_refused(api):
    fields = {f"f{i}": "1" for i in range(500)}
    response = api.post("/api/ocr/", fields, format="multipart")
    assert_error(response, 400, "too_many_fields")
    assert len(response.content) < 2048


def test_a_market_configure_of_many_keys_answers_briefly(api):
    configure = {f"option_{i}": 1 for i in range(50_000)}
    body = {"image": base64.b64encode(PNG).decode(), "configure": configure}
    response = api.generic("POST", "/api/ocr/", json.dumps(body), content_type="application/json")
    assert_error(response, 400, "unknown_option")
    assert len(response.content) < 2048


# --- item 7: a non-ASCII image_url is encoded, not a 500 --------------------------------------


def test_a_non_ascii_image_url_path_is_percent_encoded(api, image_server, settings):
    base, routes = image_server
    settings.OCR_URL_ALLOWLIST = ["127.0.0.2/32"]
    routes["/img%C3%A9.png?q=%C3%A9"] = (200, {"Content-Type": "image/png"}, PNG)
    response = api.post(
        "/api/ocr/", {"image_url": f"{base}/imgé.png?q=é", "engine": "tesseract"}, format="json"
    )
    assert response.status_code == 201, response.content[:500]
    assert response.json()["file_name"] == "imgé.png"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://bücher.invalid/x.png", "url_fetch_failed"),
        (f"http://{'ü' * 70}.example/x.png", "invalid_url"),
    ],
    ids=["idna-host-unresolved", "idna-label-too-long"],
)
def test_a_non_ascii_host_is_a_clear_4xx(api, url, code):
    assert_error(api.post("/api/ocr/", {"image_url": url}, format="json"), 400, code)
