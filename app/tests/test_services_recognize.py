"""services.recognize's answer: the record and whether it was reused, which decides 200/201/202."""

import base64

import pytest

from app import services
from app.models import OcrRecord
from app.tests.imaging import encode, render

PNG = encode(render(["Reused or new"]))


@pytest.mark.django_db
def test_a_new_read_is_201_and_the_same_bytes_again_are_the_same_record_reused_200(user):
    first = services.recognize(owner=user, data=PNG, file_name="a.png", engine="tesseract")
    again = services.recognize(owner=user, data=PNG, file_name="b.png", engine="tesseract")
    forced = services.recognize(owner=user, data=PNG, file_name="c.png", engine="tesseract", force=True)

    assert (first.reused, first.http_status) == (False, 201)
    assert (again.reused, again.http_status, again.record.pk) == (True, 200, first.record.pk)
    assert (forced.reused, forced.http_status) == (False, 201)
    assert forced.record.pk != first.record.pk
    assert OcrRecord.objects.filter(owner=user).count() == 2
    assert not hasattr(again.record, "cached")  # nothing hung on the model instance


@pytest.mark.django_db
def test_a_queued_read_is_202_and_its_job_is_sent_on_commit(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as sent:  # captured, not run: the job waits
        done = services.recognize(owner=user, data=PNG, file_name="a.png", engine="tesseract", queue=True)

    assert (done.unfinished, done.http_status, done.record.status) == (True, 202, "queued")
    assert len(sent) == 1


@pytest.mark.django_db
def test_the_api_says_cached_only_for_the_reused_answer(api):
    payload = {"image_base64": base64.b64encode(PNG).decode(), "engine": "tesseract"}
    first = api.post("/api/ocr/", payload, format="json")
    again = api.post("/api/ocr/", payload, format="json")
    text = api.post("/api/ocr/?format=text", payload, format="json")
    detail = api.get(f"/api/history/{first.json()['id']}/")

    assert (first.status_code, first.json()["cached"]) == (201, False)
    assert (again.status_code, again.json()["cached"], again.json()["id"]) == (200, True, first.json()["id"])
    assert (text.status_code, text["X-Record-Id"]) == (200, str(first.json()["id"]))
    assert detail.json()["cached"] is False
