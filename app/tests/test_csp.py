"""The Content-Security-Policy (app/csp.py): a strict policy on every answer, pages with no
inline script or style for it to refuse, and the API docs' narrow allowances (app/docs.py).

The browser test at the end loads the pages in the suite's headless Chromium (as
test_browser.py starts it) and fails on any violation the console reports."""

import re
from pathlib import Path

import pytest
from django.test import Client

from app.tests.factories import UserFactory
from app.tests.imaging import encode, english_lines, render
from app.tests.responses import assert_error
from app.tests.test_browser import DESKTOP, PASSWORD, browser, server  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
STRICT = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
HTML = {"HTTP_ACCEPT": "text/html,application/xhtml+xml"}
# What the policy refuses in a page: an inline script (no src), a <style> element, a style
# attribute, an event-handler attribute.
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    "<style> element": re.compile(r"<style[\s>]", re.I),
    "style attribute": re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I),
    "event handler": re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def inline_parts(html: str) -> list[str]:
    return [f"{kind}: {match.group(0)[:120]}" for kind, rx in INLINE.items() for match in rx.finditer(html)]


@pytest.fixture
def staff_client(record_factory):
    """Logged in as a superuser, owning one record (so every page has something to show)."""
    staff = UserFactory(is_staff=True, is_superuser=True)
    record = record_factory(owner=staff)
    client = Client()
    client.force_login(staff)
    client.record = record
    return client


PAGES = [
    "/",
    "/history/",
    "/history/?search=record",
    "/records/{pk}/",
    "/records/{pk}/delete/",
    "/keys/",
    "/password/",
    "/no-such-page/",
    "/admin/",
    "/admin/app/ocrrecord/",
    "/admin/app/ocrrecord/{pk}/change/",
    "/admin/auth/user/",
    "/admin/app/apikey/",
]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_has_the_strict_policy_and_nothing_inline_it_would_refuse(staff_client, url):
    response = staff_client.get(url.format(pk=staff_client.record.pk), **HTML)
    assert response.status_code in (200, 404), response.status_code
    assert response["Content-Security-Policy"] == STRICT
    assert inline_parts(response.content.decode()) == []


@pytest.mark.parametrize("url", ["/login/", "/signup/", "/admin/login/"])
def test_the_logged_out_pages_have_the_strict_policy_and_nothing_inline(client, db, url):
    response = client.get(url, **HTML)
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == STRICT
    assert inline_parts(response.content.decode()) == []


def test_no_template_holds_inline_script_or_style():
    found = {
        str(path.relative_to(ROOT)): parts
        for path in (ROOT / "templates").rglob("*.html")
        if (parts := inline_parts(path.read_text()))
    }
    assert found == {}


def test_no_script_writes_markup_or_style_attributes_as_text():
    """CSSOM (`node.style.x = …`) is allowed by style-src; markup parsed from strings is not
    checked here by a browser, so no script builds it."""
    pattern = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|setAttribute\(.style|\beval\(|new Function")
    found = {
        path.name: pattern.findall(path.read_text())
        for path in (ROOT / "static" / "js").glob("*.js")
        if pattern.search(path.read_text())
    }
    assert found == {}


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/engines/", 200),
        ("/api/nothing/", 404),
        ("/ping", 200),
        ("/api/schema/", 200),
        ("/docs/", 200),
        ("/docs/?script", 200),
        ("/static/css/app.css", 200),
    ],
)
def test_api_answers_and_the_swagger_ui_carry_the_strict_policy(client, db, url, status):
    response = client.get(url)
    assert response.status_code == status
    assert response["Content-Security-Policy"] == STRICT


def test_django_s_own_errors_carry_the_policy_too(client, db):
    response = client.get("/api/engines/", HTTP_HOST="evil.example")
    assert_error(response, 400, "disallowed_host")
    assert response["Content-Security-Policy"] == STRICT


def test_swagger_ui_page_has_no_inline_script_or_style_and_loads_its_init_script_as_a_file(client, db):
    html = client.get("/docs/").content.decode()
    assert inline_parts(html) == []
    assert '<script src="/docs/?script="></script>' in html
    script = client.get("/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


def test_redoc_gets_a_fresh_nonce_for_its_styles_and_blob_workers_only(client, db):
    first, second = client.get("/redoc/"), client.get("/redoc/")
    nonces = []
    for response in (first, second):
        policy = dict(part.split(" ", 1) for part in response["Content-Security-Policy"].split("; "))
        nonce = re.fullmatch(r"'self' 'nonce-([\w-]{24})' 'sha256-[^']+' 'sha256-[^']+'", policy["style-src"])
        assert nonce, policy["style-src"]
        nonces.append(nonce.group(1))
        assert policy["worker-src"] == "'self' blob:"
        assert policy["script-src"] == "'self'"  # no inline script allowed, not even here
        html = response.content.decode()
        assert f'data-nonce="{nonce.group(1)}"' in html
        assert inline_parts(html) == []
        assert "fonts.googleapis.com" not in html
    assert nonces[0] != nonces[1]


# --- in the browser ------------------------------------------------------------------------------

# ReDoc 2.5.4 shows a logo from its CDN in the side menu, unconditionally (no option hides it).
# The policy refuses it, as it should: the page loads nothing from elsewhere, and ReDoc hides
# the image when it fails. That one refusal is expected; any other fails the test.
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def watch_console(page) -> list[str]:
    """Every console message of level error or warning, and every script error."""
    messages: list[str] = []
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda msg: messages.append(f"{msg.type}: {msg.text}") if msg.type in ("error", "warning") else None,
    )
    return messages


def csp_violations(page) -> list[str]:
    """What the page's securitypolicyviolation events reported (installed before any script)."""
    return page.evaluate("window.cspViolations")


RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
    window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""

INJECT_SCRIPT = """() => {
    const script = document.createElement("script");
    script.textContent = "window.injected = true";
    document.body.append(script);
}"""


@pytest.mark.browser
def test_pages_and_api_docs_load_in_chromium_with_no_csp_violation(server, browser):  # noqa: F811
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    console = watch_console(page)

    assert page.goto(server.url + "/signup/").headers["content-security-policy"] == STRICT
    page.fill("#id_username", "csp")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == server.url + "/", page.inner_text("body")

    # The upload page: its script ran (the pickers are filled from /api/engines/) and a real
    # upload draws its result (boxes positioned through CSSOM, which style-src allows).
    page.wait_for_selector("#engine:enabled")
    assert page.locator("#engine option").count() > 1
    image = Path(server.log.parent) / "csp.png"
    image.write_bytes(encode(render(english_lines(2, seed=3))))
    with page.expect_response(lambda r: r.url.endswith("/api/ocr/"), timeout=60_000) as answer:
        page.set_input_files("#file-input", str(image))
    assert answer.value.status == 201, server.log_tail()
    page.locator(".upload .ocr-box").first.wait_for()
    box = page.locator(".upload .ocr-box").first.evaluate("b => getComputedStyle(b).position")
    assert box == "absolute"
    # Styles from app.css apply (the page is not unstyled by the policy).
    assert page.eval_on_selector(".topbar", "e => getComputedStyle(e).display") != "inline"
    assert csp_violations(page) == [], console
    assert console == []
    # The policy is in force: a script injected into the page does not run, and is reported.
    page.evaluate(INJECT_SCRIPT)
    assert page.evaluate("window.injected") is None
    assert [v.split(" ", 1)[0] for v in csp_violations(page)] == ["script-src-elem"]
    page.evaluate("window.cspViolations = []")
    console.clear()

    for path in ("/history/", f"/records/{answer.value.json()['id']}/", "/keys/"):
        response = page.goto(server.url + path, wait_until="networkidle")
        assert response.headers["content-security-policy"] == STRICT
        assert page.locator("img.thumb, .ocr-figure__img, main").count() >= 1
        assert csp_violations(page) == [], (path, console)
        assert console == [], path

    # Swagger UI renders its operations (its init script is a file: /docs/?script=).
    assert page.goto(server.url + "/docs/").headers["content-security-policy"] == STRICT
    page.locator(".opblock").first.wait_for(timeout=30_000)
    assert page.locator(".opblock").count() >= 20
    assert page.locator(".opblock-summary-path", has_text="/api/ocr/").count() >= 1
    assert csp_violations(page) == [], console
    assert console == []

    # ReDoc renders its operations, styled (its injected <style>s carry the nonce).
    redoc = page.goto(server.url + "/redoc/").headers["content-security-policy"]
    assert re.search(r"style-src 'self' 'nonce-[\w-]+' 'sha256-", redoc), redoc
    page.locator("[data-section-id^='operation/']").first.wait_for(timeout=30_000)
    assert page.locator("[data-section-id^='operation/']").count() >= 20
    assert page.locator("style[data-styled]").count() >= 1
    assert page.eval_on_selector(".menu-content", "e => getComputedStyle(e).position") != "static"
    page.wait_for_timeout(500)  # the side menu's logo is requested once the menu has mounted
    assert [v for v in csp_violations(page) if REDOC_CDN_LOGO not in v] == [], console
    assert [m for m in console if REDOC_CDN_LOGO not in m] == []
    assert page.locator(f"img[src='{REDOC_CDN_LOGO}']").count() == 0  # hidden once refused
    context.close()
