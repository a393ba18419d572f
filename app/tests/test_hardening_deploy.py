"""Issue 19, the nginx side: through the real stack (`./start.sh serve` on a non-default
port), throttles count the address nginx saw, nginx's own errors are JSON, and the Host
reaches Django with its port. And deployment as documented: the README's plain-http recipe
starts, the Docker health check passes with the README's allowed host, and a stack started
as root serves as an unprivileged user."""

import http.client
import os
import pwd
import shlex
import subprocess
from pathlib import Path

import pytest
import requests

from app.tests.imaging import encode, english_lines, render
from app.tests.responses import assert_error
from app.tests.stack import PASSWORD, ROOT, VIA_TLS, Stack, missing_tools, running_stack, signed_up


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
@pytest.mark.stack
def test_nginx_own_errors_are_json(stack, method, path, headers, status, code):
    got, content_type, body = _raw(stack, method, path, headers)
    response = requests.Response()
    response.status_code, response._content = got, body
    response.headers["Content-Type"] = content_type
    assert_error(response, status, code)
    assert content_type == "application/json"


@pytest.mark.stack
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


@pytest.mark.stack
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


@pytest.mark.stack
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


# --- Deployment as documented ---------------------------------------------------------------


def readme_plain_http_recipe() -> dict[str, str]:
    """The environment the README's plain-http `./start.sh serve` line sets."""
    lines = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if "DJANGO_PLAIN_HTTP=" in line and "./start.sh serve" in line and not line.startswith("|")
    ]
    assert len(lines) == 1, lines
    words = shlex.split(lines[0], comments=True)
    assert words[-2:] == ["./start.sh", "serve"], words
    return dict(word.split("=", 1) for word in words[:-2])


def healthcheck_command() -> str:
    """dockerfile_product's HEALTHCHECK command, as Docker runs it (`/bin/sh -c`)."""
    text = (ROOT / "dockerfile_product").read_text().replace("\\\n", "")
    line = next(line for line in text.splitlines() if line.startswith("HEALTHCHECK "))
    return line.split(" CMD ", 1)[1].strip()


def _ids(pid: int) -> tuple[set[int], set[int]]:
    """The real, effective, saved and file-system user and group ids of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {int(v) for v in fields["Uid"].split()}, {int(v) for v in fields["Gid"].split()}


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent(int(entry.name)) == pid:
                    children.add(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                pass  # ended meanwhile
    return children


def assert_serves_as(stack: Stack, user: str) -> None:
    """uWSGI's master and workers and nginx's workers all run as `user` (and its group)."""
    account = pwd.getpwnam(user)
    workers = stack.worker_pids()
    masters = {_parent(pid) for pid in workers}
    nginx_workers = _children(int((stack.run_dir / "nginx.pid").read_text()))
    assert len(workers) == 2
    assert len(masters) == 1
    assert nginx_workers
    for pid in workers | masters | nginx_workers:
        assert _ids(pid) == ({account.pw_uid}, {account.pw_gid}), pid


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the stack changes user only when started as root")


@pytest.fixture(scope="module")
def plain_http_stack():
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh test, which installs them"
    with running_stack(**readme_plain_http_recipe()) as running:
        yield running


@pytest.fixture(scope="module")
def example_host_stack():
    """The README's `docker run` host name; served as `nobody` to show SERVE_USER is obeyed."""
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh test, which installs them"
    with running_stack(DJANGO_ALLOWED_HOSTS="ocr.example.com", SERVE_USER="nobody") as running:
        yield running


@pytest.mark.stack
@pytest.mark.stack
def test_the_default_serve_stays_https_only(stack):
    """No switch: plain http is redirected (health excepted), HSTS and Secure cookies are on."""
    assert "System check identified no issues (0 silenced)." in stack.log_text()
    assert "==> WARNING" not in stack.log_text()
    page = requests.get(stack.url + "/login/", allow_redirects=False, timeout=10)
    assert page.status_code == 301
    assert page.headers["Location"].startswith("https://")
    assert requests.get(stack.url + "/api/health/", timeout=10).status_code == 200
    secure = stack.get("/login/")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "; Secure" in secure.headers["Set-Cookie"]


@pytest.mark.stack
def test_the_readme_plain_http_recipe_starts_and_says_so(plain_http_stack):
    log = plain_http_stack.log_text()
    assert "System check identified no issues (4 silenced)." in log
    assert "==> WARNING: DJANGO_PLAIN_HTTP=1:" in log
    # Plain http, no proxy in front: no redirect, no HSTS, cookies a browser keeps over http.
    page = requests.get(plain_http_stack.url + "/login/", allow_redirects=False, timeout=10)
    assert page.status_code == 200
    assert "Strict-Transport-Security" not in page.headers
    assert "csrftoken=" in page.headers["Set-Cookie"]
    assert "Secure" not in page.headers["Set-Cookie"]


@pytest.mark.stack
def test_a_browser_signs_in_over_plain_http(plain_http_stack):
    stack = plain_http_stack
    response = requests.post(
        stack.url + "/api/register/", json={"username": "erin", "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 201, response.text
    page = requests.get(stack.url + "/login/", timeout=10)
    token = page.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    login = requests.post(
        stack.url + "/login/",
        data={"username": "erin", "password": PASSWORD, "csrfmiddlewaretoken": token},
        cookies=page.cookies.get_dict(),
        headers={"Origin": stack.url},
        allow_redirects=False,
        timeout=10,
    )
    assert login.status_code == 302, login.text[-1500:]
    assert "sessionid" in login.cookies
    assert "Secure" not in login.headers["Set-Cookie"]


@pytest.mark.stack
@pytest.mark.parametrize(("allowed_hosts", "exit_status"), [("ocr.example.com", 0), ("other.example.com", 1)])
def test_the_docker_healthcheck_names_an_allowed_host(example_host_stack, allowed_hosts, exit_status):
    """The command reads the container's DJANGO_ALLOWED_HOSTS; a host Django refuses is unhealthy."""
    port = example_host_stack.url.rsplit(":", 1)[1]
    result = subprocess.run(
        ["/bin/sh", "-c", healthcheck_command()],
        env={"PATH": os.environ["PATH"], "PORT": port, "DJANGO_ALLOWED_HOSTS": allowed_hosts},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == exit_status, result.stderr


@pytest.mark.stack
@needs_root
def test_a_root_started_stack_serves_as_the_serve_user(plain_http_stack, example_host_stack):
    """www-data by default, SERVE_USER when given."""
    assert_serves_as(plain_http_stack, "www-data")
    assert_serves_as(example_host_stack, "nobody")


@pytest.mark.stack
@needs_root
def test_the_serve_user_writes_media_and_the_database(example_host_stack):
    stack, nobody = example_host_stack, pwd.getpwnam("nobody").pw_uid
    headers = signed_up(stack, "frank")
    png = encode(render(english_lines(1, seed=8)))
    response = stack.post(
        "/api/ocr/",
        headers=headers,
        files={"image": ("l.png", png, "image/png")},
        data={"engine": "tesseract"},
    )
    assert response.status_code == 201, response.text
    (stored,) = stack.media_files()
    assert stored.stat().st_uid == nobody
    database = Path(stack.database_url.removeprefix("sqlite:///"))
    assert database.stat().st_uid == Path(f"{database}-wal").stat().st_uid == nobody
    # nginx's workers read the file the app hands them (X-Accel-Redirect).
    record = f"/api/history/{response.json()['id']}/"
    image = stack.get(record + "image/", headers=headers)
    assert image.status_code == 200
    assert image.content == png
    assert stack.request("DELETE", record, headers=headers).status_code == 204
    assert stack.media_files() == []
