"""image_url fetching: public-only by default, redirects re-checked, bounded in size and time."""

import pytest

from app import fetch
from app.errors import InvalidInput, TooLarge
from app.tests.imaging import encode, render

PNG = encode(render(["fetched over http"]))


@pytest.fixture
def server(image_server):
    base, routes = image_server
    routes.update(
        {
            "/scan.png": (200, {"Content-Type": "image/png"}, PNG),
            "/moved": (302, {"Location": "/scan.png"}, b""),
            "/to-loopback": (302, {"Location": f"http://127.0.0.1:{base.rsplit(':', 1)[1]}/scan.png"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/big": (200, {"Content-Length": str(10**9)}, b""),
            "/gone": (410, {}, b""),
        }
    )
    return base


@pytest.fixture
def allow_test_server(settings):
    settings.OCR_URL_ALLOWLIST = ["127.0.0.2/32"]


def test_fetches_from_an_allowed_host(server, allow_test_server):
    assert fetch.fetch(f"{server}/scan.png") == (PNG, "scan.png")


def test_follows_a_redirect_on_an_allowed_host(server, allow_test_server):
    assert fetch.fetch(f"{server}/moved")[0] == PNG


def test_a_redirect_to_loopback_is_refused(server, allow_test_server):
    with pytest.raises(InvalidInput) as caught:
        fetch.fetch(f"{server}/to-loopback")
    assert caught.value.code == "url_not_allowed"
    assert "127.0.0.1" in caught.value.message


def test_the_test_server_itself_is_refused_without_the_allowlist(server):
    with pytest.raises(InvalidInput) as caught:
        fetch.fetch(f"{server}/scan.png")
    assert caught.value.code == "url_not_allowed"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8080/x.png",
        "http://10.0.0.1/x.png",
        "http://172.16.5.4/x.png",
        "http://192.168.1.1/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://[fe80::1]/x.png",
        "http://0.0.0.0/x.png",
        "http://100.64.0.1/x.png",
        "http://224.0.0.1/x.png",
        "http://2130706433/x.png",
    ],
)
def test_private_and_special_addresses_are_refused_before_connecting(url, monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError("no connection may be attempted")

    monkeypatch.setattr(fetch.socket, "create_connection", no_connection)
    monkeypatch.setattr(fetch.http.client.HTTPConnection, "connect", no_connection)
    with pytest.raises(InvalidInput) as caught:
        fetch.fetch(url)
    assert caught.value.code in ("url_not_allowed", "url_fetch_failed")


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/x.png", "gopher://x", "http://", "http://user:pw@example.com/"],
)
def test_only_plain_http_and_https_urls(url):
    with pytest.raises(InvalidInput) as caught:
        fetch.fetch(url)
    assert caught.value.code == "invalid_url"


def test_redirect_loops_stop(server, allow_test_server):
    with pytest.raises(InvalidInput, match="redirected more than"):
        fetch.fetch(f"{server}/loop")


def test_declared_size_over_the_limit_stops_before_reading(server, allow_test_server):
    with pytest.raises(TooLarge):
        fetch.fetch(f"{server}/big")


def test_body_over_the_limit_stops_reading(server, image_server, allow_test_server, settings):
    settings.OCR_MAX_UPLOAD_BYTES = 1000
    image_server[1]["/chunked"] = (200, {}, PNG)  # no Content-Length: read until the limit
    with pytest.raises(TooLarge):
        fetch.fetch(f"{server}/chunked")


def test_http_errors_are_reported(server, allow_test_server):
    with pytest.raises(InvalidInput, match="HTTP 410"):
        fetch.fetch(f"{server}/gone")


def test_a_silent_server_times_out(settings, allow_test_server):
    import socket

    settings.OCR_URL_TIMEOUT = 0.5
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen()
    try:
        with pytest.raises(InvalidInput, match="took too long"):
            fetch.fetch(f"http://127.0.0.2:{listener.getsockname()[1]}/x.png")
    finally:
        listener.close()
