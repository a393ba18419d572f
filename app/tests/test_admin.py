"""The admin: record thumbnails for staff only, read-only text, CSV export, users' record counts."""

import csv
import io
import re

import pytest
from django.contrib.auth.models import Permission

from app.models import OcrRecord
from app.tests.factories import UserFactory

CHANGELIST = "/admin/app/ocrrecord/"


@pytest.fixture
def staff(client, db):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_record_list_shows_thumbnails_from_the_staff_image_view(staff, record_factory):
    record = record_factory(text="Quarterly report", file_name="q3.png")
    html = staff.get(CHANGELIST).content.decode()
    assert f'<img src="/admin/app/ocrrecord/{record.pk}/image/" alt="" loading="lazy"' in html
    for column in ("column-thumbnail", "column-owner", "column-engine", "column-status", "column-excerpt"):
        assert column in html
    assert "column-duration_ms" in html
    assert "column-created_at" in html


def test_staff_get_any_records_image(staff, record_factory):
    record = record_factory(owner=UserFactory())
    response = staff.get(f"/admin/app/ocrrecord/{record.pk}/image/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    record.image.open("rb")
    assert b"".join(response.streaming_content) == record.image.read()
    record.image.close()
    assert staff.get("/admin/app/ocrrecord/999999/image/").status_code == 404


def test_the_admin_image_is_refused_to_everyone_else(client, record_factory):
    record = record_factory()
    url = f"/admin/app/ocrrecord/{record.pk}/image/"
    assert client.get(url).status_code == 302  # anonymous: to the admin login
    client.force_login(record.owner)  # even the owner: this door is for staff
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    # Staff without the permission to view records get nothing either.
    clerk = UserFactory(is_staff=True)
    client.force_login(clerk)
    assert client.get(url).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_ocrrecord"))
    clerk = type(clerk).objects.get(pk=clerk.pk)  # drop the cached permissions
    client.force_login(clerk)
    assert client.get(url).status_code == 200


def test_search_covers_text_file_name_and_owner(staff, record_factory):
    by_text = record_factory(text="Quarterly total", file_name="a.png")
    by_name = record_factory(text="x", file_name="quarterly.png")
    by_owner = record_factory(text="y", file_name="b.png", owner=UserFactory(username="quarterly_bob"))
    record_factory(text="nothing", file_name="c.png")
    cl = staff.get(CHANGELIST, {"q": "quarterly"}).context["cl"]
    assert {r.pk for r in cl.result_list} == {by_text.pk, by_name.pk, by_owner.pk}


def test_filters_and_date_hierarchy(staff, record_factory):
    record_factory(engine="tesseract")
    failed = record_factory(engine="rapidocr", status=OcrRecord.Status.FAILED)
    cl = staff.get(CHANGELIST, {"engine": "rapidocr", "status__exact": "failed"}).context["cl"]
    assert [r.pk for r in cl.result_list] == [failed.pk]
    html = staff.get(CHANGELIST).content.decode()
    assert '<nav class="toplinks">' in html  # the date hierarchy bar


def test_record_page_is_read_only_with_a_preview(staff, record_factory):
    record = record_factory(text="Do not edit me")
    page = staff.get(f"{CHANGELIST}{record.pk}/change/")
    assert page.context["adminform"].form.fields == {}  # nothing is editable
    assert page.context["has_change_permission"] is False  # so no Save buttons
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert "Do not edit me" in html
    assert f'src="/admin/app/ocrrecord/{record.pk}/image/"' in html
    assert record.image.name in html
    assert 'href="/media/' not in html
    assert staff.get(f"{CHANGELIST}add/").status_code == 403
    assert staff.post(f"{CHANGELIST}{record.pk}/change/", {"text": "edited"}).status_code == 403
    record.refresh_from_db()
    assert record.text == "Do not edit me"
    # Deleting stays possible, and takes the file with it (app/signals.py).
    assert staff.post(f"{CHANGELIST}{record.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not OcrRecord.objects.filter(pk=record.pk).exists()


def test_export_selected_as_csv(staff, record_factory):
    alice = UserFactory(username="alice")
    first = record_factory(owner=alice, file_name="one.png", text="Line one", duration_ms=12)
    OcrRecord.objects.filter(pk=first.pk).update(text="Line one\nLine two")
    second = record_factory(owner=alice, file_name="two.png", text='=HYPERLINK("x")', lang="", task="text")
    record_factory(file_name="not-selected.png")
    response = staff.post(CHANGELIST, {"action": "export_csv", "_selected_action": [second.pk, first.pk]})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="ocr-records-\d{8}-\d{6}\.csv"', response["Content-Disposition"]
    )
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0] == [
        "id",
        "owner",
        "file_name",
        "engine",
        "lang",
        "task",
        "status",
        "text",
        "duration_ms",
        "created_at",
    ]
    assert table[1] == [
        str(first.pk),
        "alice",
        "one.png",
        "tesseract",
        "eng",
        "document",
        "done",
        "Line one\nLine two",  # multi-line text stays one quoted cell
        "12",
        first.created_at.isoformat(),
    ]
    assert table[2][0] == str(second.pk)
    assert table[2][7] == '\'=HYPERLINK("x")'  # never a live formula in a spreadsheet
    assert table[2][4:6] == ["", "text"]
    assert len(table) == 3


def test_user_list_shows_each_users_record_count_and_sorts_by_it(staff, record_factory):
    busy, idle = UserFactory(username="busy"), UserFactory(username="idle")
    for _ in range(3):
        record_factory(owner=busy)
    record_factory(owner=idle)
    page = staff.get("/admin/auth/user/")
    assert "column-record_count" in page.content.decode()
    cl = page.context["cl"]
    counts = {user.username: user.record_count for user in cl.result_list}
    assert counts == {"root": 0, "busy": 3, "idle": 1}
    column = list(cl.list_display).index("record_count")
    ordered = staff.get("/admin/auth/user/", {"o": f"-{column}"}).context["cl"].result_list
    assert [user.username for user in ordered] == ["busy", "idle", "root"]
