"""Issue 19, the nginx side: through the real stack (`./start.sh serve` on a non-default
port), throttles count the address nginx saw, nginx's own errors are JSON, and the Host
reaches Django with its port."""

import http.client

import pytest
import requests

from app.tests.imaging import encode, english_lines, render
from app.tests.responses import assert_error
from app.tests.stack import PASSWORD, VIA_TLS, missing_tools, running_stack, signed_up


@pytest.fixture(scope="module")
def stack():
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh test, which installs them"
    # One worker: the throttle counts are then one process's, whatever cache holds them.
    with running_stack(UWSGI_PROCESSES="1", OCR_AUTH_THROTTLE="20/minute") as running:
        yield running


def _raw(stack, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
    host, port = stack.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request(method, path, headers={**VIA_TLS, **headers})
    response = connection.getresponse()
    return response.status, response.getheader("Content-Type", ""), response.read()


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", "/api/history/?q=" + "a" * 20_000, {}, 414, "uri_too_long"),
        ("TRACE", "/api/engines/", {}, 405, "method_not_allowed"),
        ("GET", "/ocr/file", {"Cookie": "x=" + "a" * 20_000}, 400, "bad_request"),
        ("GET", "/media/x.png", {}, 404, "not_found"),
    ],
)
def test_nginx_own_errors_are_json(stack, method, path, headers, status, code):
    got, content_type, body = _raw(stack, method, path, headers)
    response = requests.Response()
    response.status_code, response._content = got, body
    response.headers["Content-Type"] = content_type
    assert_error(response, status, code)
    assert content_type == "application/json"


def test_absolute_urls_carry_the_port(stack):
    headers = signed_up(stack, "carol")
    response = stack.post(
        "/api/ocr/",
        headers=headers,
        files={"image": ("l.png", encode(render(english_lines(1, seed=5))), "image/png")},
        data={"engine": "tesseract"},
    )
    assert response.status_code == 201, response.text
    port = stack.url.rsplit(":", 1)[1]
    assert (
        response.json()["image_url"] == f"https://127.0.0.1:{port}/api/history/{response.json()['id']}/image/"
    )


def test_a_browser_form_post_with_csrf_passes_on_a_non_default_port(stack):
    """The Origin a browser sends names the port; Django compares it with the Host it got."""
    signed_up(stack, "dave")
    port = stack.url.rsplit(":", 1)[1]
    page = stack.get("/login/")
    assert page.status_code == 200
    token = page.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    response = stack.post(
        "/login/",
        data={"username": "dave", "password": PASSWORD, "csrfmiddlewaretoken": token},
        cookies=page.cookies.get_dict(),
        headers={"Origin": f"https://127.0.0.1:{port}", "X-Forwarded-For": "203.0.113.9"},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[-1500:]


def test_a_client_sent_x_forwarded_for_does_not_open_a_new_throttle_bucket(stack):
    """From its own loopback address (127.0.0.2), so the other tests' sign-ins do not count."""
    host, port = stack.url.removeprefix("http://").split(":")
    statuses = []
    for attempt in range(21):
        connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=("127.0.0.2", 0))
        connection.request(
            "POST",
            "/api/token_obtain_pair/",
            body=b'{"username": "nobody", "password": "wrong"}',
            headers={
                **VIA_TLS,
                "Content-Type": "application/json",
                "X-Forwarded-For": f"198.51.100.{attempt}",
            },
        )
        statuses.append(connection.getresponse().status)
        connection.close()
    assert statuses[:20] == [401] * 20, statuses
    assert statuses[20] == 429


@pytest.mark.parametrize("accel", ["", "/media/"])
def test_a_pdf_record_is_served_as_an_attachment_never_inline(settings, user, api, accel):
    """Both local paths: streamed by Django, and named to nginx by X-Accel-Redirect (nginx
    keeps the upstream's Content-Disposition)."""
    from django.core.files.base import ContentFile

    from app.tests.factories import OcrRecordFactory

    settings.OCR_MEDIA_ACCEL_REDIRECT = accel
    pdf = OcrRecordFactory(owner=user, image=ContentFile(b"%PDF-1.4\n%%EOF\n", name="doc.pdf"))
    png = OcrRecordFactory(owner=user)
    response = api.get(f"/api/history/{pdf.pk}/image/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == "attachment"
    assert api.get(f"/api/history/{png.pk}/image/").get("Content-Disposition", "") != "attachment"
