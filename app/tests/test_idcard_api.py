"""task=idcard on POST /api/ocr/: the card's fields in the record, kept in the owner's
history (searchable, exported), and its options checked before anything is read."""

import json

import pytest

from app.models import OcrRecord
from app.tests.idcards import specimen
from app.tests.imaging import encode, english_lines, render
from app.tests.pdfs import pdf_of
from app.tests.responses import assert_error


def upload(image, name: str = "card.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, encode(image), content_type="image/png")


@pytest.mark.parametrize("side", ["face", "back"])
def test_the_record_carries_the_fields(api, user, side):
    card = specimen(11, side, "photo")
    response = api.post("/api/ocr/", {"image": upload(card.image), "task": "idcard", "side": side})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["engine"], body["task"]) == ("rapidocr", "idcard")
    assert {key: body["idcard"][key] for key in card.fields} == card.fields
    assert body["idcard"]["success"] is True
    if side == "face":
        assert len(body["idcard"]["card_region"]) == 4
        (left, top), _, (right, bottom), _ = card.face
        centre = body["idcard"]["face_rect"]["center"]
        assert (left <= centre["x"] <= right, top <= centre["y"] <= bottom) == (True, True)
    else:  # the back's answer, as the market's product gives it
        assert set(body["idcard"]) == {"issue", "start_date", "end_date", "success"}
    assert OcrRecord.objects.get(owner=user).extra["idcard"]["success"] is True


def test_the_side_defaults_to_the_face_and_the_engine_to_rapidocr(api):
    card = specimen(12, "face", "plain")
    body = api.post("/api/ocr/", {"image": upload(card.image), "task": "idcard"}).json()
    assert (body["engine"], body["idcard"]["name"]) == ("rapidocr", card.fields["name"])


def test_a_card_is_found_by_its_name_and_exported_with_its_fields(api):
    card = specimen(13, "face", "plain")
    api.post("/api/ocr/", {"image": upload(card.image), "task": "idcard"})
    api.post("/api/ocr/", {"image": upload(render(english_lines(2, seed=1)), "letter.png")})
    found = api.get("/api/history/", {"search": card.fields["name"]}).json()
    assert [row["task"] for row in found["results"]] == ["idcard"]
    exported = api.get("/api/history/export/", {"format": "jsonl"})
    rows = [json.loads(line) for line in b"".join(exported.streaming_content).decode().splitlines()]
    by_task = {row["task"]: row for row in rows}
    assert by_task["idcard"]["idcard"]["num"] == card.fields["num"]
    assert "idcard" not in by_task["document"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"task": "idcard", "side": "top"}, "invalid_choice"),
        ({"side": "face"}, "invalid_option"),  # side without the idcard task
        ({"task": "idcard", "engine": "tesseract"}, "unsupported_task"),
        ({"task": "idcard", "rotate": "true"}, "unsupported_option"),
        ({"task": "idcard", "upright": "true"}, "invalid_option"),
    ],
    ids=["unknown-side", "side-without-task", "tesseract", "rotate", "upright"],
)
def test_bad_card_options_are_refused_before_anything_is_stored(api, user, media_files, fields, code):
    response = api.post("/api/ocr/", {"image": upload(specimen(14, "face", "plain").image), **fields})
    assert_error(response, 400, code)
    assert not OcrRecord.objects.filter(owner=user).exists()
    assert media_files() == set()


def test_a_pdf_card_is_a_400_and_leaves_nothing(api, user, media_files):
    from django.core.files.uploadedfile import SimpleUploadedFile

    document = SimpleUploadedFile("card.pdf", pdf_of(specimen(15, "face", "plain").image))
    response = api.post("/api/ocr/", {"image": document, "task": "idcard"})
    assert_error(response, 400, "unsupported_task")
    assert not OcrRecord.objects.filter(owner=user, status="done").exists()
