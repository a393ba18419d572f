import http.server
import os
import threading
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from app.tests import image
from app.tests.clients import client_for
from app.tests.factories import OcrRecordFactory, UserFactory
from app.tests.throttle_clock import Clock
from app.throttles import CountedRateThrottle


@pytest.fixture(autouse=True)
def _own_media_root(settings, tmp_path):
    """Each test writes uploads to its own folder, so leftovers are its own."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> Clock:
    """The throttles' clock stands still unless a test moves it: a test's burst of sign-ins
    that straddled a minute boundary on a slow machine saw part of it weigh less, and one
    guess more went through (test_the_admin_login_is_throttled failed so in CI)."""
    clock = Clock()
    monkeypatch.setattr(CountedRateThrottle, "timer", clock)
    return clock


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated as `user` with a real JWT."""
    return client_for(user)


@pytest.fixture
def key(user) -> str:
    """An API key of `user`, as the older services' clients send one."""
    from app import services

    return services.create_api_key(owner=user, name="old client")[1]


@pytest.fixture
def server(live_server, key):
    """The live server's URL and the header an old client adds (only its host changes).
    test_browser.py and test_fetch.py have servers of their own under this name."""
    return live_server.url, {"Authorization": f"Basic {key}"}


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def record_factory(db):
    return OcrRecordFactory


@pytest.fixture
def media_files():
    """A function listing every file under MEDIA_ROOT, to prove nothing was left behind."""
    root = Path(settings.MEDIA_ROOT)

    def files() -> set[Path]:
        return {path for path in root.rglob("*") if path.is_file()}

    return files


@pytest.fixture
def image_server():
    """An HTTP server on 127.0.0.2 (loopback: image_url refuses it unless a test allows it)
    and its routes, path -> (status, headers, body), for the test to fill."""
    routes: dict[str, tuple[int, dict, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # http.server's name
            status, headers, body = routes.get(self.path, (404, {}, b""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{httpd.server_port}", routes
    httpd.shutdown()


@pytest.fixture(scope="session")
def built_images(tmp_path_factory) -> None:
    """dockerfile_base on a local Debian 12 + Python 3.11, then dockerfile_product, with podman
    (app/tests/image.py). Skipped where podman cannot run, unless ./start.sh test-image asked
    for them (ONLINEOCR_IMAGE_TEST=1): there a missing tool is a failure."""
    missing = image.missing_tools()
    if missing:
        message = f"the image tests need {', '.join(missing)}: run ./start.sh test-image as root"
        if os.environ.get("ONLINEOCR_IMAGE_TEST") == "1":
            pytest.fail(message)
        pytest.skip(message)
    image.REPORT.unlink(missing_ok=True)
    image.report(
        "local base, debootstrap + import (s; 0: cached)",
        round(image.make_base_os(tmp_path_factory.mktemp("os")), 1),
    )
    image.report(
        "dockerfile_base build (s)",
        round(image.build("dockerfile_base", image.BASE, BASE_IMAGE=image.BASE_OS), 1),
    )
    product = image.build("dockerfile_product", image.PRODUCT, ONLINEOCR_BASE=image.BASE)
    image.report("dockerfile_product build (s)", round(product, 1))
