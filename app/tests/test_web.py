"""The browser pages (app/web/): accounts, upload page, history, record pages, delete, assets."""

import csv
import io
import json
import re
from itertools import groupby
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from app.models import OcrRecord
from app.tests.factories import UserFactory
from app.tests.imaging import encode, render
from app.tests.responses import assert_error

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
HTML = {"HTTP_ACCEPT": "text/html,application/xhtml+xml"}


@pytest.fixture
def browser(client, user):
    """Django's test client, logged in with a session as `user`."""
    client.force_login(user)
    return client


def signup(client, **fields):
    data = {"username": "alice", "email": "", "password1": PASSWORD, "password2": PASSWORD, **fields}
    return client.post("/signup/", data)


# ---- accounts ---------------------------------------------------------------------


def test_sign_up_creates_the_account_logs_in_and_opens_the_upload_page(client, db):
    response = signup(client, email="alice@example.com")
    assert response.status_code == 302
    assert response["Location"] == "/"
    alice = get_user_model().objects.get(username="alice")
    assert alice.email == "alice@example.com"
    assert alice.check_password(PASSWORD)
    assert client.get("/").status_code == 200  # the session is logged in


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("123", "This password is too short."),
        ("password", "This password is too common."),
        ("alice1234", "The password is too similar to the username."),
    ],
)
def test_weak_password_is_refused_inline_and_no_user_is_created(client, db, password, message):
    response = signup(client, password1=password, password2=password)
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    # Inline, under its field, and tied to it for screen readers.
    assert 'id="id_password2_errors"' in html
    assert 'aria-describedby="id_password2_errors"' in html
    assert not get_user_model().objects.exists()


def test_sign_up_refuses_a_taken_username_whatever_its_case(client, db):
    UserFactory(username="alice")
    response = signup(client, username="ALICE")
    assert response.status_code == 200
    assert "A user with that username already exists." in response.content.decode()
    assert get_user_model().objects.count() == 1


def test_sign_up_and_login_need_the_csrf_token(db):
    strict = Client(enforce_csrf_checks=True)
    assert signup(strict).status_code == 403
    UserFactory(username="bob")
    assert strict.post("/login/", {"username": "bob", "password": PASSWORD}).status_code == 403


def test_log_in_and_log_out(client, user):
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200

    assert client.get("/logout/").status_code == 405  # logging out is a POST
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_a_wrong_password_shows_an_error(client, user):
    response = client.post("/login/", {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password." in response.content.decode()


def test_login_returns_to_the_page_asked_for(client, user):
    response = client.post(
        "/login/?next=/history/", {"username": user.username, "password": PASSWORD, "next": "/history/"}
    )
    assert response["Location"] == "/history/"


# ---- upload page ------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/history/", "/records/1/", "/records/1/delete/"])
def test_pages_need_a_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


def test_upload_page_wires_the_api_and_the_limits(browser, settings):
    html = browser.get("/").content.decode()
    assert 'data-engines-url="/api/engines/"' in html
    assert 'data-ocr-url="/api/ocr/"' in html
    assert f'data-max-bytes="{settings.OCR_MAX_UPLOAD_BYTES}"' in html
    assert re.search(r'<meta name="csrf-token" content="[\w-]{32,}">', html)
    accept = re.search(r'id="file-input" name="image" accept="([^"]+)" multiple', html).group(1).split(",")
    assert {".png", ".jpg", ".jpeg", ".webp", ".tif", ".bmp", ".gif"} <= set(accept)
    assert ".pdf" in accept  # PDFs are read page by page
    # The drop zone is the file input's label; the input stays in the tab order.
    assert '<label class="dropzone" id="dropzone" for="file-input">' in html
    assert 'type="file" id="file-input"' in html
    assert "/static/js/upload.js" in html


def test_the_browser_upload_works_with_the_session_and_needs_the_csrf_header(user):
    """What static/js/upload.js does: multipart POST /api/ocr/ with the session cookie."""
    page = Client(enforce_csrf_checks=True)
    page.force_login(user)
    html = page.get("/").content.decode()
    token = re.search(r'<meta name="csrf-token" content="([\w-]+)">', html).group(1)
    png = encode(render(["Session upload works"]))

    def post(**headers):
        image = SimpleUploadedFile("scan.png", png, content_type="image/png")
        return page.post("/api/ocr/", {"image": image, "engine": "tesseract"}, **headers)

    refused = post()
    error = assert_error(refused, 403, "permission_denied")
    assert "CSRF" in error["message"]
    accepted = post(HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["text"].strip() == "Session upload works"
    assert OcrRecord.objects.get().owner == user


# ---- history ----------------------------------------------------------------------


def rows(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-record-id="(\d+)"', response.content.decode())]


def test_history_lists_only_the_users_own_records(browser, user, other_user, record_factory):
    mine = record_factory(owner=user, file_name="mine.png")
    record_factory(owner=other_user, file_name="theirs.png")
    response = browser.get("/history/")
    assert rows(response) == [mine.pk]
    html = response.content.decode()
    assert "mine.png" in html
    assert "theirs.png" not in html
    # A thumbnail from the owner-checked image endpoint, loaded lazily.
    assert f'src="/api/history/{mine.pk}/image/" alt="" loading="lazy"' in html


def test_history_search_covers_text_and_file_name(browser, user, record_factory):
    invoice = record_factory(owner=user, text="Invoice total 42.00", file_name="a.png")
    named = record_factory(owner=user, text="something else", file_name="INVOICE-march.png")
    record_factory(owner=user, text="a letter", file_name="b.png")
    assert set(rows(browser.get("/history/?search=invoice"))) == {invoice.pk, named.pk}
    assert rows(browser.get("/history/?search=total+42")) == [invoice.pk]
    page = browser.get("/history/?search=nothing-like-this")
    assert rows(page) == []
    assert "Nothing matches" in page.content.decode()


def test_history_filters_by_engine_and_status(browser, user, record_factory):
    tess = record_factory(owner=user, engine="tesseract")
    rapid = record_factory(owner=user, engine="rapidocr")
    failed = record_factory(owner=user, engine="rapidocr", status=OcrRecord.Status.FAILED, text="")
    assert rows(browser.get("/history/?engine=tesseract")) == [tess.pk]
    assert set(rows(browser.get("/history/?engine=rapidocr"))) == {rapid.pk, failed.pk}
    assert rows(browser.get("/history/?engine=rapidocr&status=failed")) == [failed.pk]
    # An engine that does not exist is ignored, like a missing filter, not an error page.
    assert len(rows(browser.get("/history/?engine=nope"))) == 3


def test_history_orders_by_the_whitelisted_fields_only(browser, user, record_factory):
    slow = record_factory(owner=user, duration_ms=900, file_name="b.png")
    fast = record_factory(owner=user, duration_ms=5, file_name="c.png")
    mid = record_factory(owner=user, duration_ms=50, file_name="a.png")
    assert rows(browser.get("/history/")) == [mid.pk, fast.pk, slow.pk]  # newest first
    assert rows(browser.get("/history/?ordering=-duration_ms")) == [slow.pk, mid.pk, fast.pk]
    assert rows(browser.get("/history/?ordering=file_name")) == [mid.pk, slow.pk, fast.pk]
    # Not a whitelisted field: ignored, newest first again.
    assert rows(browser.get("/history/?ordering=owner__password")) == [mid.pk, fast.pk, slow.pk]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "search=payment",
        "search=scan1",
        "engine=rapidocr&ordering=duration_ms",
        "status=failed",
        "ordering=-file_name",
        "ordering=engine",
        "search=total&ordering=-duration_ms&engine=tesseract",
    ],
)
def test_history_page_and_api_agree(browser, api, user, record_factory, query):
    """One set of semantics: the page and GET /api/history/ return the same records."""
    texts = ["payment total", "total due", "payment received", "nothing", "total paid"]
    for i, text in enumerate(texts):
        record_factory(
            owner=user,
            text=text,
            engine=("tesseract", "rapidocr")[i % 2],
            status=OcrRecord.Status.FAILED if i == 3 else OcrRecord.Status.DONE,
            duration_ms=(300, 20, 20, 80, 5)[i],
        )
    results = api.get(f"/api/history/?{query}").json()["results"]
    # The API leaves ties (same engine, same duration) in any order; the page breaks them
    # newest id first so paging is stable. Compare with the API's ties broken the same way.
    ordering = next((p.split("=")[1] for p in query.split("&") if p.startswith("ordering=")), "-created_at")
    by_key = groupby(results, key=lambda item: item[ordering.lstrip("-")])
    from_api = [item["id"] for _, group in by_key for item in sorted(group, key=lambda i: -i["id"])]
    assert rows(browser.get(f"/history/?{query}")) == from_api


def test_history_pages_keep_the_query(browser, user, record_factory):
    for _ in range(23):
        record_factory(owner=user, text="payment")
    first = browser.get("/history/?search=payment")
    assert len(rows(first)) == 20
    html = first.content.decode()
    assert "Page 1 of 2" in html
    assert 'href="?search=payment&amp;page=2"' in html
    assert len(rows(browser.get("/history/?search=payment&page=2"))) == 3
    assert len(rows(browser.get("/history/?search=payment&page=99"))) == 3  # past the end: the last page


def test_history_without_records_invites_an_upload(browser):
    html = browser.get("/history/").content.decode()
    assert "No records yet" in html


# ---- a record's page and delete --------------------------------------------------------


def test_record_page_carries_the_result_for_the_result_view(browser, user, record_factory):
    record = record_factory(owner=user, text="Hello there", file_name="hello.png")
    response = browser.get(f"/records/{record.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    data = re.search(r'<script id="record-data" type="application/json">(.*?)</script>', html, re.S)
    record_json = json.loads(data.group(1))
    assert record_json["id"] == record.pk
    assert record_json["text"] == "Hello there"
    assert record_json["lines"][0]["box"] == [[0, 0], [200, 0], [200, 50], [0, 50]]
    assert record_json["image_url"].endswith(f"/api/history/{record.pk}/image/")
    assert "/static/js/record.js" in html


def test_another_users_record_is_a_404_page(browser, other_user, record_factory):
    theirs = record_factory(owner=other_user, file_name="secret.png", text="secret text")
    for url in (f"/records/{theirs.pk}/", f"/records/{theirs.pk}/delete/", "/records/999999/"):
        response = browser.get(url, **HTML)
        assert response.status_code == 404
        html = response.content.decode()
        assert "Not found" in html
        assert "secret" not in html
    assert browser.post(f"/records/{theirs.pk}/delete/").status_code == 404
    assert OcrRecord.objects.filter(pk=theirs.pk).exists()


def test_unknown_page_is_html_for_browsers_and_json_for_the_api(client, db):
    page = client.get("/no-such-page/", **HTML)
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
    api = client.get("/api/no-such-endpoint/", **HTML)
    assert_error(api, 404, "not_found")


def test_delete_asks_first_without_javascript(browser, user, record_factory):
    record = record_factory(owner=user, file_name="keep-me.png")
    page = browser.get(f"/records/{record.pk}/delete/")
    assert page.status_code == 200
    assert "Delete this record?" in page.content.decode()
    assert OcrRecord.objects.filter(pk=record.pk).exists()


def test_delete_removes_the_row_and_after_commit_the_file(
    browser, user, record_factory, django_capture_on_commit_callbacks
):
    record = record_factory(owner=user, file_name="gone.png")
    stored = Path(record.image.path)
    assert stored.exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = browser.post(f"/records/{record.pk}/delete/", {"next": "/history/?search=gone"})
    assert response.status_code == 302
    assert response["Location"] == "/history/?search=gone"
    assert not OcrRecord.objects.filter(pk=record.pk).exists()
    assert stored.exists()  # not before the transaction commits
    for callback in callbacks:
        callback()
    assert not stored.exists()
    follow = browser.get("/history/")
    assert "Deleted gone.png." in follow.content.decode()


def test_delete_never_redirects_off_site(browser, user, record_factory):
    record = record_factory(owner=user)
    response = browser.post(f"/records/{record.pk}/delete/", {"next": "https://evil.example/"})
    assert response["Location"] == "/history/"


# ---- assets: ours, served, nothing from other hosts ----------------------------------------

# Absolute URLs, and protocol-relative ones in an attribute or url(); the test client's host is ours.
EXTERNAL = re.compile(r"https?://(?!testserver/)[^\s\"'<>)]+|[\"'(]//[\w-]+\.[\w.-]+", re.I)
SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'


def external_urls(text: str) -> list[str]:
    return EXTERNAL.findall(text.replace(SVG_NAMESPACE, ""))


def test_no_external_urls_in_templates_or_static_files():
    files = [*ROOT.glob("templates/**/*.html"), *ROOT.glob("static/**/*.*")]
    assert len(files) >= 10
    found = {str(f.relative_to(ROOT)): external_urls(f.read_text()) for f in files}
    assert {name: urls for name, urls in found.items() if urls} == {}


def test_no_external_urls_in_rendered_pages(client, browser, user, record_factory):
    record = record_factory(owner=user)
    anonymous = Client()
    pages = [anonymous.get(url) for url in ("/login/", "/signup/")]
    pages += [anonymous.get("/nowhere/", **HTML)]
    pages += [
        browser.get(url)
        for url in ("/", "/history/", f"/records/{record.pk}/", f"/records/{record.pk}/delete/")
    ]
    for page in pages:
        assert page.status_code in (200, 404)
        assert external_urls(page.content.decode()) == []


def test_every_static_reference_exists_and_is_served(browser, user, record_factory):
    record = record_factory(owner=user)
    referenced = set()
    for url in ("/", "/history/", f"/records/{record.pk}/"):
        referenced |= set(re.findall(r'(?:src|href)="/static/([^"]+)"', browser.get(url).content.decode()))
    for js in ROOT.glob("static/js/*.js"):  # modules import each other by relative path
        referenced |= {f"js/{name}" for name in re.findall(r'from "\./([\w.-]+)"', js.read_text())}
    assert {"css/app.css", "js/upload.js", "js/api.js", "js/result.js", "js/record.js"} <= referenced
    for path in referenced:
        assert finders.find(path), path
        response = browser.get(f"/static/{path}")
        assert response.status_code == 200, path


def test_api_keys_page_creates_shows_once_lists_and_revokes(client, user):
    from app.models import ApiKey

    client.force_login(user)
    assert client.get("/keys/").status_code == 200
    created = client.post("/keys/", {"name": "scanner"}, follow=True)
    assert created.redirect_chain == [("/keys/", 302)]  # a reload cannot make a second key
    assert created["Cache-Control"] == "no-store"
    api_key = ApiKey.objects.get(owner=user)
    plain = created.context["created"]["plain"]
    assert ApiKey.hash(plain) == api_key.key_hash
    assert plain.encode() in created.content
    listed = client.get("/keys/")
    assert plain.encode() not in listed.content  # shown once only
    assert f"{api_key.prefix}…".encode() in listed.content
    assert client.post(f"/keys/{api_key.pk}/revoke/").status_code == 302
    api_key.refresh_from_db()
    assert not api_key.active


def test_api_keys_page_is_private(client, user, other_user):
    from app import services

    theirs, _ = services.create_api_key(owner=other_user, name="theirs")
    assert client.get("/keys/").status_code == 302  # to the log-in page
    client.force_login(user)
    assert b"theirs" not in client.get("/keys/").content
    assert client.post(f"/keys/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.active


def test_api_key_name_is_required(client, user):
    client.force_login(user)
    response = client.post("/keys/", {"name": ""})
    assert b"field__errors" in response.content


def test_history_shows_a_pdf_as_a_tile_not_a_broken_image(client, user, record_factory):
    from django.core.files.base import ContentFile

    pdf = record_factory(owner=user, file_name="contract.pdf", image=ContentFile(b"%PDF-1.4", name="x.pdf"))
    picture = record_factory(owner=user)
    client.force_login(user)
    page = client.get("/history/").content.decode()
    assert f"/api/history/{pdf.pk}/image/" not in page
    assert f"/api/history/{picture.pk}/image/" in page
    assert 'class="records__doc">PDF<' in page


def test_log_in_and_sign_up_share_the_apis_sign_in_throttle(client, user, settings):
    settings.OCR_AUTH_THROTTLE = "3/minute"
    codes = [
        client.post("/login/", {"username": user.username, "password": "wrong"}).status_code for _ in range(2)
    ]
    codes.append(client.post("/signup/", {"username": "x"}).status_code)
    blocked = client.post("/login/", {"username": user.username, "password": "correct horse battery staple"})
    assert codes == [200, 200, 200]
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    assert client.get("/login/").status_code == 200  # reading the form is never throttled
    assert (
        client.post("/api/token_obtain_pair/", {"username": user.username, "password": "x"}).status_code
        == 429
    )


def test_history_export_link_downloads_what_the_page_shows(browser, user, record_factory):
    shown = record_factory(owner=user, text="Invoice total 42.00")
    record_factory(owner=user, text="a letter")
    page = browser.get("/history/?search=invoice")
    link = re.search(r'href="([^"]+)"[^>]*download>Export CSV', page.content.decode()).group(1)
    export = browser.get(link.replace("&amp;", "&"))
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))[1:]
    assert [int(row[0]) for row in rows] == [shown.pk]
