"""End to end in a real headless browser: Playwright driving Debian's Chromium.

The app runs as `manage.py runserver` in its own process, as `./start.sh dev` runs it (DEBUG
off, static files from WhiteNoise, a file SQLite database in WAL mode, a connection per
request thread), rather than pytest-django's in-process `live_server`: that one shares a
single in-memory SQLite connection between the test thread and every server thread, which
Django documents as unsafe for concurrent queries, and a page loads thumbnails in parallel.
Everything here goes through the browser, as a person would do it.

Screenshots land in artifacts/screenshots/ (git-ignored).
"""

import base64
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import sync_playwright

from app.tests.imaging import cer, encode, english_lines, render
from app.tests.processes import free_port, stop_group

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
LINES = english_lines(5, seed=11)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Server:
    url: str
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def server():
    base = Path(tempfile.mkdtemp(prefix="onlineocr-browser-"))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "OCR_"))},
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}",
        "DJANGO_MEDIA_ROOT": str(base / "media"),
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    log = base / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Server(f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"runserver exited:\n{running.log_tail()}"
        try:
            if requests.get(running.url + "/api/health/", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"runserver did not come up:\n{running.log_tail()}"
        time.sleep(0.2)
    yield running
    errors = running.log.read_text(errors="replace")
    stop_group(process, timeout=10)
    shutil.rmtree(base, ignore_errors=True)
    assert "Traceback" not in errors, f"the server logged an exception:\n{errors[-3000:]}"


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: run ./start.sh test, which installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def images() -> dict[str, Path]:
    folder = Path(tempfile.mkdtemp(prefix="onlineocr-images-"))
    files = {
        "letter": ("letter.png", encode(render(LINES))),
        "note": ("note.png", encode(render(english_lines(2, seed=5)))),
        "fake": ("fake.png", b"This is a text file wearing a .png name.\n"),
        "notes": ("notes.txt", b"plain text\n"),
    }
    paths = {}
    for key, (name, data) in files.items():
        (folder / name).write_bytes(data)
        paths[key] = folder / name
    yield paths
    shutil.rmtree(folder, ignore_errors=True)


# Records each change of an upload card's state and of its progress bar, with what the user
# saw at that moment. A MutationObserver misses nothing, however short a state lasts.
TRACE_UPLOADS = """() => {
    window.uploadTrace = [];
    new MutationObserver((records) => {
        for (const record of records) {
            const card = record.target.closest(".upload");
            const bar = card.querySelector(".upload__progress");
            window.uploadTrace.push({
                changed: record.attributeName,
                state: card.dataset.state,
                busy: card.getAttribute("aria-busy"),
                value: bar.value,
                visible: bar.checkVisibility(),
            });
        }
    }).observe(document.getElementById("uploads"), {
        subtree: true, attributes: true, attributeFilter: ["data-state", "value"],
    });
}"""


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, animations="disabled")


def watch_errors(page) -> list[str]:
    """Every script error and console error the page produces."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    return errors


def sign_up(page, server: Server, username: str) -> None:
    page.goto(server.url + "/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    submit_and_land_on(page, server, "/")
    page.wait_for_selector("#engine:enabled")


def submit_and_land_on(page, server: Server, path: str) -> None:
    with page.expect_navigation():
        page.click("button[type=submit]")
    if page.url != server.url + path:
        shown = page.inner_text("body")
        pytest.fail(f"landed on {page.url}:\n{shown}\n--- server log ---\n{server.log_tail()}")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_sign_up_upload_read_search_and_delete(server, browser, images):
    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    errors = watch_errors(page)

    # A weak password is refused inline, then a good one signs up and logs in.
    page.goto(server.url + "/signup/")
    page.fill("#id_username", "alice")
    page.fill("#id_password1", "password")
    page.fill("#id_password2", "password")
    page.click("button[type=submit]")
    assert "This password is too common." in page.inner_text("#id_password2_errors")
    shot(page, "signup-error")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    submit_and_land_on(page, server, "/")

    # The pickers are filled from /api/engines/; ddddocr takes no language.
    page.wait_for_selector("#engine:enabled")
    listed = {engine["name"]: engine for engine in requests.get(server.url + "/api/engines/").json()}
    engines = page.eval_on_selector_all("#engine option", "options => options.map(o => o.value)")
    assert engines == ["auto", *listed]
    page.select_option("#engine", "ddddocr")
    assert page.is_disabled("#lang")
    tasks = page.eval_on_selector_all("#task option", "options => options.map(o => o.value)")
    assert tasks == listed["ddddocr"]["tasks"]
    page.select_option("#engine", "tesseract")
    assert page.is_enabled("#lang")
    page.select_option("#lang", "eng")
    # Keyboard: the file input is reachable and its drop zone shows the focus.
    page.focus("#file-input")
    assert page.eval_on_selector("#dropzone", "zone => getComputedStyle(zone).outlineStyle") == "solid"
    page.evaluate("document.activeElement.blur()")
    shot(page, "upload")

    # Upload on a slow line, so the progress bar has to move through real values. Every
    # change of the card's state and of the bar is recorded as it happens (states can be
    # shorter than a polling interval), and checked once the result is in.
    page.evaluate(TRACE_UPLOADS)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    slow = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 40 * 1024}
    cdp.send("Network.emulateNetworkConditions", slow)
    with page.expect_response(lambda r: r.url.endswith("/api/ocr/"), timeout=60_000) as answer:
        page.set_input_files("#file-input", str(images["letter"]))
    assert answer.value.status == 201, server.log_tail()
    record = answer.value.json()
    cdp.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": -1})
    card = page.locator(".upload").first
    card.locator(".ocr-line").first.wait_for()
    trace = page.evaluate("window.uploadTrace")
    states = [step["state"] for step in trace if step["changed"] == "data-state"]
    assert states == ["uploading", "recognizing", "done"]
    moving = [s for s in trace if s["changed"] == "value" and 0 < s["value"] < 100]
    assert moving, f"no progress between 0 and 100%: {trace}"
    assert all(step["state"] == "uploading" and step["visible"] for step in moving)
    assert [s["value"] for s in trace if s["changed"] == "value"][-1] == 100
    assert next(s for s in trace if s["state"] == "recognizing")["busy"] == "true"
    assert card.get_attribute("aria-busy") == "false"

    # The text matches, line by line, with a confidence on each line.
    shown = card.locator(".ocr-line__text").all_inner_texts()
    assert cer("\n".join(LINES), "\n".join(shown)) <= 0.05
    assert len(record["lines"]) == len(LINES)
    assert card.locator(".score").count() == len(LINES)
    facts = card.locator(".facts").inner_text()
    assert "tesseract" in facts
    assert f"{record['duration_ms']} ms" in facts

    # One box per line, placed over the line at the displayed scale.
    boxes = card.locator(".ocr-box")
    assert boxes.count() == len(record["lines"]) == card.locator(".ocr-line").count()
    image = card.locator(".ocr-figure__img")
    image.evaluate("img => img.decode()")
    shown_box, img_box = boxes.nth(2).bounding_box(), image.bounding_box()
    scale = img_box["width"] / record["width"]
    assert scale < 1  # the image is shown smaller than it is
    (x0, y0), _, (x1, y1), _ = record["lines"][2]["box"]
    assert abs(shown_box["x"] - (img_box["x"] + x0 * scale)) <= 4
    assert abs(shown_box["y"] - (img_box["y"] + y0 * scale)) <= 4
    assert abs(shown_box["width"] - (x1 - x0) * scale) <= 8
    assert abs(shown_box["height"] - (y1 - y0) * scale) <= 8

    # Hovering a line lights its box, hovering a box lights its line; focus does too.
    card.locator('.ocr-line[data-line="1"]').hover()
    assert "is-active" in card.locator('.ocr-box[data-line="1"]').get_attribute("class")
    assert card.locator(".ocr-box.is-active").count() == 1
    card.locator('.ocr-box[data-line="3"]').hover()
    assert "is-active" in card.locator('.ocr-line[data-line="3"]').get_attribute("class")
    assert "is-active" not in card.locator('.ocr-box[data-line="1"]').get_attribute("class")
    card.locator('.ocr-line[data-line="0"]').focus()
    assert "is-active" in card.locator('.ocr-box[data-line="0"]').get_attribute("class")
    page.evaluate("document.activeElement.blur()")
    card.locator('.ocr-line[data-line="2"]').hover()
    shot(page, "result")

    # Copy and Download give the recognized text.
    card.locator("[data-action=copy]").click()
    page.wait_for_selector("text=Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == record["text"]
    with page.expect_download() as download:
        card.locator("[data-action=download]").click()
    assert download.value.suggested_filename == "letter.txt"
    assert Path(download.value.path()).read_text() == record["text"]

    # The record's own page shows the same result view.
    with page.expect_navigation():
        card.get_by_role("link", name="Open").click()
    assert page.url == f"{server.url}/records/{record['id']}/"
    page.locator(".ocr-line").first.wait_for()
    assert page.locator(".ocr-box").count() == len(record["lines"])
    page.locator('.ocr-line[data-line="1"]').hover()
    shot(page, "record")

    # History lists it with a loaded thumbnail; search finds it and misses what is not there.
    page.goto(server.url + "/history/")
    rows = page.locator(".records__row")
    assert rows.count() == 1
    thumb = rows.first.locator("img")
    thumb.evaluate("img => img.decode()")
    assert thumb.evaluate("img => img.naturalWidth") == record["width"]
    word = LINES[3].split()[2]
    page.fill("#id_search", word)
    page.click("text=Apply")
    page.wait_for_url(f"**/history/?search={word}**")
    assert page.locator(".records__row").count() == 1
    page.fill("#id_search", "zebra")
    page.click("text=Apply")
    page.wait_for_selector("text=Nothing matches")
    page.goto(server.url + "/history/")
    shot(page, "history")

    # Another user gets a 404 for alice's record page and her image.
    other = browser.new_context(viewport=DESKTOP)
    bob = other.new_page()
    sign_up(bob, server, "bob")
    response = bob.goto(f"{server.url}/records/{record['id']}/")
    assert response.status == 404
    assert "Not found" in bob.inner_text("h1")
    assert bob.goto(f"{server.url}/api/history/{record['id']}/image/").status == 404
    bob.goto(server.url + "/history/")
    assert bob.locator(".records__row").count() == 0
    other.close()

    # Delete asks first: dismissing keeps the record, accepting removes it.
    dialogs: list[str] = []

    def answer_with(accept: bool):
        def handle(dialog):
            dialogs.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer_with(False))
    page.locator(".records__row button", has_text="Delete").click()
    assert dialogs == ["Delete letter.png and its text? This cannot be undone."]
    assert page.locator(".records__row").count() == 1
    page.once("dialog", answer_with(True))
    with page.expect_navigation():
        page.locator(".records__row button", has_text="Delete").click()
    assert "Deleted letter.png." in page.inner_text(".messages")
    assert page.locator(".records__row").count() == 0
    assert page.goto(f"{server.url}/records/{record['id']}/").status == 404

    # Log out: the upload page asks for a login again.
    page.goto(server.url + "/")
    page.click("text=Log out")
    page.wait_for_url(f"{server.url}/login/")
    page.goto(server.url + "/")
    assert page.url == f"{server.url}/login/?next=/"

    assert [e for e in errors if "404" not in e] == []
    context.close()


# Which line has the focus (its index), or what else has it.
FOCUSED = """() => {
    const active = document.activeElement;
    if (active.classList.contains("ocr-line")) return Number(active.dataset.line);
    return active.dataset.action || active.className || active.tagName;
}"""


def test_the_result_lines_are_one_tab_stop_and_the_arrow_keys_move_between_them(server, browser, images):
    """However many lines (a PDF has hundreds), Tab passes the list in one step."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_errors(page)
    sign_up(page, server, "lena")
    page.select_option("#engine", "tesseract")
    page.set_input_files("#file-input", [str(images["letter"]), str(images["note"])])
    page.wait_for_function(
        "() => document.querySelectorAll('.upload[data-state=done] .ocr-line').length === 7", timeout=30_000
    )
    letter, note = page.locator(".upload").all()
    assert letter.locator(".upload__name").inner_text() == "letter.png"
    assert letter.locator(".ocr-line").count() == len(LINES)
    assert letter.locator('.ocr-line[tabindex="0"]').count() == 1

    # Tab from the control before the list lands on its first line, and the next Tab leaves
    # the list for the next result's first control.
    letter.locator(".tools__toggle").focus()
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == 0
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "copy"
    assert note.locator("[data-action=copy]").evaluate("button => button === document.activeElement")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) == 0

    # The arrow keys move line to line (stopping at the ends), Home and End jump, and the
    # focused line's box lights up as it does on hover.
    last = len(LINES) - 1
    steps = [("ArrowDown", 1), ("ArrowDown", 2), ("ArrowUp", 1), ("End", last), ("ArrowDown", last)]
    steps += [("Home", 0), ("ArrowUp", 0), ("ArrowDown", 1), ("ArrowDown", 2)]
    for key, line in steps:
        page.keyboard.press(key)
        assert page.evaluate(FOCUSED) == line, key
        assert letter.locator(".ocr-box.is-active").get_attribute("data-line") == str(line)
    assert letter.locator('.ocr-line[tabindex="0"]').get_attribute("data-line") == "2"

    # Leaving and coming back returns to the line last visited, still one stop each way.
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "copy"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) == 2
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) == "tools__toggle"
    assert errors == []
    context.close()


def test_several_files_at_once_each_with_its_own_outcome(server, browser, images):
    """A good image is read; a text file named .png gets the server's message; a .txt file is
    refused before any upload."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_errors(page)
    sign_up(page, server, "carol")
    page.select_option("#engine", "tesseract")
    uploads: list[str] = []
    page.on("request", lambda request: uploads.append(request.url) if "/api/ocr/" in request.url else None)
    page.set_input_files("#file-input", [str(images[key]) for key in ("note", "fake", "notes")])
    cards = page.locator(".upload")
    page.wait_for_function(
        """() => { const cards = [...document.querySelectorAll('.upload')];
                   const settled = (card) => ['done', 'error'].includes(card.dataset.state);
                   return cards.length === 3 && cards.every(settled); }""",
        timeout=30_000,
    )
    states = {card.locator(".upload__name").inner_text(): card for card in cards.all()}
    assert list(states) == ["note.png", "fake.png", "notes.txt"]  # in the order they were chosen
    assert states["note.png"].get_attribute("data-state") == "done"
    assert states["note.png"].locator(".ocr-box").count() == 2

    fake = states["fake.png"]
    assert fake.get_attribute("data-state") == "error"
    message = fake.locator(".alert").inner_text()
    assert "not an image" in message.lower() or "cannot" in message.lower(), message

    text = states["notes.txt"]
    assert text.get_attribute("data-state") == "error"
    assert "not an image the service reads" in text.locator(".alert").inner_text()
    assert len(uploads) == 2  # the .txt never left the browser
    shot(page, "upload-errors")
    # The server's 400 answer is logged by the browser as a failed resource; nothing else.
    assert [e for e in errors if "status of 400" not in e] == []
    context.close()


def test_a_stale_page_or_an_ended_session_is_explained(server, browser, images):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_up(page, server, "gina")
    # The token in the page no longer matches the session's (logged in again elsewhere).
    page.evaluate("document.querySelector('meta[name=csrf-token]').content = 'x'.repeat(64)")
    page.set_input_files("#file-input", str(images["note"]))
    alert = page.locator(".upload[data-state=error] .alert").first
    assert alert.inner_text() == "This page is out of date. Reload it, then retry."
    # The session is gone (logged out in another tab, or expired).
    context.clear_cookies()
    page.set_input_files("#file-input", str(images["note"]))
    page.wait_for_function("() => document.querySelectorAll('.upload[data-state=error]').length === 2")
    alert = page.locator(".upload[data-state=error] .alert").first
    assert alert.inner_text() == "You are logged out. Log in again, then retry."
    context.close()


def test_an_unavailable_engine_is_shown_disabled_with_its_reason(server, browser):
    context = browser.new_context(viewport=DESKTOP)

    def without_rapidocr(route):
        engines = route.fetch().json()
        for engine in engines:
            if engine["name"] == "rapidocr":
                engine.update(available=False, reason="the rapidocr package is not installed", languages=[])
        route.fulfill(json=engines)

    context.route("**/api/engines/", without_rapidocr)
    page = context.new_page()
    sign_up(page, server, "frank")
    assert page.is_disabled('#engine option[value="rapidocr"]')
    assert "(unavailable)" in page.inner_text('#engine option[value="rapidocr"]')
    assert page.is_enabled('#engine option[value="tesseract"]')
    note = page.inner_text("#options-note")
    assert "rapidocr is unavailable: the rapidocr package is not installed" in note
    context.close()


def test_paste_and_drop_upload_too(server, browser, images):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_errors(page)
    sign_up(page, server, "erin")
    page.select_option("#engine", "tesseract")
    highlighted = page.evaluate(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const clipboard = new DataTransfer();
            clipboard.items.add(new File([bytes], "image.png", { type: "image/png" }));
            document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: clipboard, bubbles: true }));
            const dragged = new DataTransfer();
            dragged.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
            const zone = document.getElementById("dropzone");
            const options = { dataTransfer: dragged, bubbles: true, cancelable: true };
            const drag = (type) => new DragEvent(type, options);
            zone.dispatchEvent(drag("dragover"));
            const lit = zone.classList.contains("is-dragging");
            zone.dispatchEvent(drag("drop"));
            return lit && !zone.classList.contains("is-dragging");
        }""",
        base64.b64encode(images["note"].read_bytes()).decode(),
    )
    assert highlighted, "the drop zone lights up while a file is dragged over it, and not after"
    page.wait_for_function(
        "() => document.querySelectorAll('.upload[data-state=done]').length === 2", timeout=30_000
    )
    names = page.locator(".upload__name").all_inner_texts()
    assert names[0] == "dropped.png"  # the newest upload is on top
    assert names[1].startswith("pasted-")
    assert names[1].endswith(".png")
    for card in page.locator(".upload").all():
        assert card.locator(".ocr-box").count() == 2
    assert errors == []
    context.close()


def test_phone_width_has_no_horizontal_scroll(server, browser, images):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = watch_errors(page)
    sign_up(page, server, "dave")
    assert no_horizontal_scroll(page)
    page.select_option("#engine", "tesseract")
    page.set_input_files("#file-input", str(images["letter"]))
    page.locator(".upload[data-state=done] .ocr-line").first.wait_for(timeout=30_000)
    page.locator(".ocr-figure__img").evaluate("img => img.decode()")
    assert no_horizontal_scroll(page), "the upload page with a result scrolls sideways"
    # The result stacks: the text list sits below the image, both as wide as the card.
    image, lines = page.locator(".result__media").bounding_box(), page.locator(".ocr-lines").bounding_box()
    assert lines["y"] > image["y"] + image["height"] - 1
    shot(page, "phone-upload")
    page.goto(server.url + "/history/")
    assert no_horizontal_scroll(page), "the history page scrolls sideways"
    shot(page, "phone-history")
    page.click(".records__name")
    page.locator(".ocr-line").first.wait_for()
    assert no_horizontal_scroll(page), "the record page scrolls sideways"
    assert errors == []
    context.close()


def test_api_key_is_shown_once_copied_and_works_against_the_api(server, browser):
    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    errors = watch_errors(page)
    sign_up(page, server, "kim")
    page.click("nav >> text=API keys")
    page.fill("#id_name", "scanner")
    with page.expect_navigation():
        page.click("text=Create key")
    key = page.inner_text("#new-key").strip()
    page.click("[data-copy-target=new-key]")
    assert page.evaluate("navigator.clipboard.readText()") == key
    shot(page, "api-keys")
    # The key works for a program, and the page never shows it again.
    assert requests.get(server.url + "/api/history/", headers={"X-API-Key": key}).status_code == 200
    page.reload()
    assert key not in page.inner_text("body")
    page.once("dialog", lambda dialog: dialog.accept())
    submit = page.locator("form[data-confirm] button")
    with page.expect_navigation():
        submit.click()
    assert "revoked" in page.inner_text("body")
    assert requests.get(server.url + "/api/history/", headers={"X-API-Key": key}).status_code == 401
    assert errors == []
    context.close()


def test_an_id_card_is_read_into_a_form_beside_the_image(server, browser, tmp_path):
    """task=idcard from the pickers: the side picker appears, and the card's fields are shown as
    a labelled form, on the upload page and on the record's page."""
    from app.tests.idcards import specimen

    card = specimen(7, "face", "photo")
    path = tmp_path / "card.jpg"
    card.image.save(path, "JPEG", quality=90)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_errors(page)
    sign_up(page, server, "ivan")
    assert page.locator("#side-field").is_hidden()
    page.select_option("#task", "idcard")
    assert page.locator("#side-field").is_visible()
    assert page.locator("#rotate-field").is_hidden()
    page.select_option("#side", "face")
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector(".upload[data-state=done] .card-fields", timeout=60_000)
    shown = {key: page.input_value(f"#card-{key}") for key in card.fields}
    assert shown == card.fields
    assert page.get_by_label("姓名 Name").input_value() == card.fields["name"]
    shot(page, "idcard-upload")
    with page.expect_navigation():
        page.click(".upload a:text('Open')")
    page.wait_for_selector(".card-fields")
    assert page.input_value("#card-num") == card.fields["num"]
    assert no_horizontal_scroll(page)
    shot(page, "idcard-record")
    assert errors == []
    context.close()


def test_barcodes_are_listed_with_their_format_beside_the_image(server, browser, tmp_path):
    """task=barcode from the pickers: each symbol's format and payload, on the upload page and
    on the record's page; the payload is also a line with its box over the image."""
    import zxingcpp
    from PIL import Image

    qr = zxingcpp.create_barcode("https://example.com/order/42", zxingcpp.BarcodeFormat.QRCode)
    label = Image.new("RGB", (420, 300), "white")
    label.paste(Image.fromarray(zxingcpp.write_barcode_to_image(qr, scale=5)).convert("RGB"), (40, 40))
    path = tmp_path / "label.png"
    label.save(path)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_errors(page)
    sign_up(page, server, "olga")
    page.select_option("#task", "barcode")
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector(".upload[data-state=done] .barcodes", timeout=60_000)
    assert page.inner_text(".barcodes__format") == "QR Code"
    assert page.inner_text(".barcodes__text") == "https://example.com/order/42"
    assert page.locator(".ocr-lines li").count() == 1
    shot(page, "barcode-upload")
    with page.expect_navigation():
        page.click(".upload a:text('Open')")
    page.wait_for_selector(".barcodes")
    assert page.inner_text(".barcodes__text") == "https://example.com/order/42"
    assert no_horizontal_scroll(page)
    assert errors == []
    context.close()
