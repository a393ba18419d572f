"""GET/DELETE /api/history/: pagination, search, ordering, filters, isolation, images."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from app.models import OcrRecord
from app.tests.clients import client_for
from app.tests.responses import assert_error


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_history_lists_only_the_callers_records_newest_first(api, user, other_user, record_factory):
    now = timezone.now()
    mine = [record_factory(owner=user, created_at=now - timedelta(minutes=i)) for i in range(3)]
    record_factory(owner=other_user)
    response = api.get("/api/history/")
    assert response.json()["count"] == 3
    assert ids(response) == [r.pk for r in mine]


def test_pagination_and_page_size_cap(api, user, record_factory):
    record_factory.create_batch(25, owner=user)
    first = api.get("/api/history/").json()
    assert (first["count"], len(first["results"]), first["previous"]) == (25, 20, None)
    assert "page=2" in first["next"]
    second = api.get("/api/history/?page=2").json()
    assert len(second["results"]) == 5
    assert second["next"] is None
    assert len(api.get("/api/history/?page_size=7").json()["results"]) == 7
    record_factory.create_batch(90, owner=user)
    assert len(api.get("/api/history/?page_size=1000").json()["results"]) == 100


def test_page_past_the_end_is_a_404_json(api, user, record_factory):
    record_factory(owner=user)
    response = api.get("/api/history/?page=9")
    assert_error(response, 404, "not_found")


def test_search_matches_recognized_text_and_file_name(api, user, other_user, record_factory):
    invoice = record_factory(owner=user, text="Invoice total 42.00", file_name="a.png")
    named = record_factory(owner=user, text="nothing here", file_name="invoice-march.png")
    record_factory(owner=user, text="receipt", file_name="b.png")
    record_factory(owner=other_user, text="invoice of someone else")
    assert sorted(ids(api.get("/api/history/?search=INVOICE"))) == sorted([invoice.pk, named.pk])
    chinese = record_factory(owner=user, text="光学字符识别服务")
    assert ids(api.get("/api/history/?search=字符识别")) == [chinese.pk]


@pytest.mark.parametrize(
    ("ordering", "key", "reverse"),
    [
        ("duration_ms", "duration_ms", False),
        ("-duration_ms", "duration_ms", True),
        ("file_name", "file_name", False),
        ("engine", "engine", False),
        ("created_at", "created_at", False),
    ],
)
def test_ordering(api, user, record_factory, ordering, key, reverse):
    now = timezone.now()
    for i, (engine, ms, name) in enumerate(
        [("tesseract", 30, "b"), ("rapidocr", 10, "c"), ("ddddocr", 20, "a")]
    ):
        record_factory(
            owner=user, engine=engine, duration_ms=ms, file_name=name, created_at=now - timedelta(hours=i)
        )
    results = api.get(f"/api/history/?ordering={ordering}").json()["results"]
    values = [item[key] for item in results]
    assert values == sorted(values, reverse=reverse)


def test_ordering_by_a_field_not_whitelisted_is_ignored(api, user, record_factory):
    records = record_factory.create_batch(3, owner=user)
    response = api.get("/api/history/?ordering=owner__password")
    assert ids(response) == [r.pk for r in sorted(records, key=lambda r: r.created_at, reverse=True)]


def test_filters_engine_status_and_dates(api, user, record_factory):
    now = timezone.now()
    old = record_factory(owner=user, engine="rapidocr", created_at=now - timedelta(days=10))
    failed = record_factory(owner=user, status=OcrRecord.Status.FAILED, created_at=now - timedelta(days=1))
    recent = record_factory(owner=user, created_at=now)
    assert ids(api.get("/api/history/?engine=rapidocr")) == [old.pk]
    assert ids(api.get("/api/history/?status=failed")) == [failed.pk]
    since = (now - timedelta(days=2)).isoformat()
    assert ids(api.get("/api/history/", {"created_after": since})) == [recent.pk, failed.pk]
    assert ids(api.get("/api/history/", {"created_before": since})) == [old.pk]
    day = (now - timedelta(days=10)).date().isoformat()
    assert old.pk in ids(api.get("/api/history/", {"created_after": day}))


@pytest.mark.parametrize("query", ["engine=nope", "status=maybe", "created_after=yesterday"])
def test_bad_filter_values_are_400_json(api, user, query):
    response = api.get(f"/api/history/?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]


def test_retrieve_own_record(api, user, record_factory):
    record = record_factory(owner=user)
    body = api.get(f"/api/history/{record.pk}/").json()
    assert (body["id"], body["text"], body["lines"]) == (record.pk, record.text, record.lines)


@pytest.mark.parametrize("method", ["get", "delete"])
def test_another_users_record_is_a_404_like_a_missing_one(api, other_user, record_factory, method):
    theirs = record_factory(owner=other_user)
    for url in (f"/api/history/{theirs.pk}/", f"/api/history/{theirs.pk}/image/", "/api/history/999999/"):
        response = getattr(api, method)(url)
        assert response.status_code == (405 if method == "delete" and url.endswith("image/") else 404)
    assert OcrRecord.objects.filter(pk=theirs.pk).exists()


def test_delete_removes_the_row_and_the_file(
    api, user, record_factory, media_files, django_capture_on_commit_callbacks
):
    record = record_factory(owner=user)
    path = record.image.path
    assert {str(p) for p in media_files()} == {path}
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/history/{record.pk}/")
    assert response.status_code == 204
    assert not OcrRecord.objects.filter(pk=record.pk).exists()
    assert not media_files()


def test_deleting_a_user_removes_their_files(
    user, record_factory, media_files, django_capture_on_commit_callbacks
):
    record_factory.create_batch(2, owner=user)
    assert len(media_files()) == 2
    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert not media_files()


def test_owner_fetches_their_image_and_nobody_else_can(api, user, other_user, record_factory, anon):
    record = record_factory(owner=user)
    response = api.get(f"/api/history/{record.pk}/image/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == record.image.open("rb").read()
    assert "private" in response["Cache-Control"]
    assert client_for(other_user).get(f"/api/history/{record.pk}/image/").status_code == 404
    assert anon.get(f"/api/history/{record.pk}/image/").status_code == 401


def test_media_url_is_not_served(api, user, record_factory):
    record = record_factory(owner=user)
    response = api.get(f"/media/{record.image.name}")
    assert_error(response, 404, "not_found")


def test_behind_nginx_the_image_is_handed_over_by_x_accel_redirect(api, user, record_factory, settings):
    settings.OCR_MEDIA_ACCEL_REDIRECT = "/protected-media/"
    record = record_factory(owner=user)
    response = api.get(f"/api/history/{record.pk}/image/")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{record.image.name}"
    assert response.content == b""


def test_history_needs_authentication(anon, db):
    response = anon.get("/api/history/")
    assert_error(response, 401, "not_authenticated")


def exported(response) -> str:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content).decode()


def test_export_csv_is_the_filtered_history_in_the_lists_order(api, user, other_user, record_factory):
    now = timezone.now()
    old = record_factory(owner=user, text="invoice 17 paid", created_at=now - timedelta(days=2))
    new = record_factory(owner=user, text="=invoice 18 due", created_at=now - timedelta(days=1))
    record_factory(owner=user, text="a letter", created_at=now)
    record_factory(owner=user, text="invoice failed", status=OcrRecord.Status.FAILED)
    record_factory(owner=other_user, text="invoice of someone else")
    response = api.get(
        "/api/history/export/", {"search": "invoice", "status": "done", "ordering": "created_at"}
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="ocr-history-')
    table = list(csv.reader(io.StringIO(exported(response))))
    assert table[0][:3] == ["id", "owner", "file_name"]
    assert [(int(row[0]), row[7]) for row in table[1:]] == [
        (old.pk, "invoice 17 paid"),
        (new.pk, "'=invoice 18 due"),  # a formula in a spreadsheet: defused
    ]


def test_export_jsonl_has_every_line_with_box_and_confidence(api, user, record_factory):
    records = record_factory.create_batch(3, owner=user)
    rows = [json.loads(line) for line in exported(api.get("/api/history/export/?format=jsonl")).splitlines()]
    assert [row["id"] for row in rows] == [r.pk for r in reversed(records)]  # newest first
    assert rows[0]["lines"] == records[-1].lines
    assert rows[0]["text"] == records[-1].text


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("format=xlsx", "format", "invalid_choice"),
        ("status=lost", "status", "invalid_choice"),
        ("created_after=yesterday", "created_after", "invalid"),
    ],
)
def test_export_with_bad_parameters_is_a_400_naming_the_parameter(
    api, user, record_factory, query, field, code
):
    record_factory(owner=user)
    response = api.get(f"/api/history/export/?{query}")
    error = assert_error(response, 400, code)
    assert list(error["fields"]) == [field]
