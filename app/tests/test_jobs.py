"""Queued work in the default, in-process mode: async uploads, progress, batches, dedup, re-runs."""

import base64

import pytest

from app import services
from app.engines import registry
from app.models import OcrRecord
from app.tests import pdfs
from app.tests.clients import client_for
from app.tests.imaging import cer, encode, english_lines, render, zip_of
from app.tests.responses import assert_error

LINES = english_lines(2, seed=61)
PNG = encode(render(LINES))


@pytest.fixture
def engine_calls(monkeypatch):
    """Counts real Tesseract runs (the engine still runs)."""
    engine = registry.get("tesseract")
    calls = []
    original = type(engine).recognize

    def counting(self, picture, options):
        calls.append(picture.image.size)
        return original(self, picture, options)

    monkeypatch.setattr(type(engine), "recognize", counting)
    return calls


def post(api, data: bytes = PNG, query: str = "", **fields):
    payload = {"image_base64": base64.b64encode(data).decode(), "engine": "tesseract", **fields}
    return api.post(f"/api/ocr/{query}", payload, format="json")


def test_async_upload_answers_202_queued_then_runs(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(api, query="?async=1")
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["text"]) == ("queued", "")
    assert body["url"].endswith(f"/api/history/{body['id']}/")
    assert len(callbacks) == 1  # the job is handed over only once the row is committed
    done = api.get(body["url"]).json()
    assert done["status"] == "done"
    assert cer("\n".join(LINES), done["text"]) <= 0.05
    assert (done["pages_done"], done["pages_total"]) == (1, 1)


def test_queue_field_in_the_body_works_like_the_query(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert post(api, **{"async": True}).status_code == 202
        assert post(api, data=encode(render(["other"])), queue=True).status_code == 202


def pdf_of(pages: list[list[str]]) -> bytes:
    return pdfs.pdf_of(*(render(lines, size=28) for lines in pages))


def test_pdf_progress_is_reported_page_by_page(api, monkeypatch, django_capture_on_commit_callbacks):
    pages = [english_lines(1, seed=70 + i) for i in range(3)]
    seen = []
    engine = registry.get("tesseract")
    original = type(engine).recognize

    def watching(self, image, options):
        record = OcrRecord.objects.get()
        seen.append((record.status, record.pages_done, record.pages_total))
        return original(self, image, options)

    monkeypatch.setattr(type(engine), "recognize", watching)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, data=pdf_of(pages), query="?async=1")
    assert response.json()["pages_total"] == 3
    assert seen == [("running", 0, 3), ("running", 1, 3), ("running", 2, 3)]
    record = OcrRecord.objects.get()
    assert (record.status, record.pages_done) == ("done", 3)


def test_long_pdfs_are_queued_when_async_is_on(api, settings, django_capture_on_commit_callbacks):
    settings.OCR_ASYNC, settings.OCR_ASYNC_PDF_PAGES = True, 1
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, data=pdf_of([["one"], ["two"]]))
    assert response.status_code == 202


def test_the_same_upload_is_answered_from_the_earlier_record(api, engine_calls):
    first = post(api)
    assert (first.status_code, first.json()["cached"]) == (201, False)
    again = post(api)
    assert again.status_code == 200
    assert again.json()["cached"] is True
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["text"] == first.json()["text"]
    assert len(engine_calls) == 1  # the engine did not run again
    assert OcrRecord.objects.count() == 1


@pytest.mark.parametrize("output", ["text", "tsv", "hocr"])
def test_a_repeat_upload_as_text_says_200_not_201(api, engine_calls, output):
    """The plain-text answers carry no `cached` field: the status is the only sign."""
    first = post(api, query=f"?format={output}")
    again = post(api, query=f"?format={output}")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content
    assert again["X-Record-Id"] == first["X-Record-Id"]
    assert len(engine_calls) == 1


def test_force_reads_again_and_other_options_are_not_the_same_upload(api, engine_calls):
    first = post(api).json()
    forced = post(api, force=True)
    assert (forced.status_code, forced.json()["cached"]) == (201, False)
    assert forced.json()["id"] != first["id"]
    other_lang = post(api, lang="eng+chi_sim")
    assert other_lang.status_code == 201
    assert len(engine_calls) == 3


def test_another_users_identical_upload_is_not_shared(api, other_user, engine_calls):
    mine = post(api).json()
    theirs = post(client_for(other_user))
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine["id"]
    assert len(engine_calls) == 2


def test_a_failed_record_is_not_reused(api, user, engine_calls):
    post(api)
    OcrRecord.objects.update(status=OcrRecord.Status.FAILED)
    assert post(api).status_code == 201


def test_run_job_twice_runs_once_and_a_died_run_runs_again(
    user, engine_calls, django_capture_on_commit_callbacks
):
    record = services.recognize(
        owner=user, data=PNG, file_name="a.png", engine="tesseract", queue=True
    ).record
    assert record.status == "queued"
    services.run_job(record_id=record.pk)
    services.run_job(record_id=record.pk)  # delivered again after it finished
    assert len(engine_calls) == 1
    OcrRecord.objects.filter(pk=record.pk).update(status=OcrRecord.Status.RUNNING, text="")
    services.run_job(record_id=record.pk)  # its worker died mid-way: run it again
    assert len(engine_calls) == 2
    assert OcrRecord.objects.count() == 1
    assert OcrRecord.objects.get().status == "done"
    services.run_job(record_id=999_999)  # deleted meanwhile: nothing to do


def test_batch_of_files_and_a_zip(api, other_user, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    second = english_lines(1, seed=62)
    archive = zip_of(
        {
            "scans/b.png": encode(render(second)),
            "__MACOSX/._b.png": b"junk",
            ".hidden.png": PNG,
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/ocr/batch/",
            {
                "images": [SimpleUploadedFile("a.png", PNG, "image/png")],
                "archive": SimpleUploadedFile("scans.zip", archive, "application/zip"),
                "engine": "tesseract",
            },
            format="multipart",
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["total"] == 2  # a bad member refuses the whole batch: test_hardening_limits.py
    summary = api.get(f"/api/batches/{body['id']}/").json()
    assert (summary["done"], summary["queued"], summary["progress"]) == (2, 0, 1.0)
    texts = {r.file_name: r.text for r in OcrRecord.objects.filter(batch_id=body["id"])}
    assert cer("\n".join(LINES), texts["a.png"]) <= 0.05
    assert cer("\n".join(second), texts["b.png"]) <= 0.05
    assert client_for(other_user).get(f"/api/batches/{body['id']}/").status_code == 404


@pytest.mark.parametrize(
    ("archive", "status", "code"),
    [
        (b"PK not really a zip", 400, "invalid_archive"),
        (zip_of({f"{i}.png": PNG for i in range(4)}), 413, "too_many_files"),
        (zip_of({"big.png": b"\0" * 20_000}), 413, "file_too_large"),
    ],
    ids=["not-a-zip", "too-many", "inflates-too-far"],
)
def test_bad_archives_are_refused_whole(api, settings, media_files, archive, status, code):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.OCR_BATCH_MAX_FILES, settings.OCR_MAX_UPLOAD_BYTES = 3, 10_000
    response = api.post(
        "/api/ocr/batch/",
        {"archive": SimpleUploadedFile("x.zip", archive, "application/zip")},
        format="multipart",
    )
    assert_error(response, status, code)
    assert not OcrRecord.objects.exists()
    assert not media_files()


def test_an_empty_batch_is_a_400(api):
    response = api.post("/api/ocr/batch/", {}, format="multipart")
    assert_error(response, 400, "missing_image")


def test_bad_async_flag_is_a_400(api):
    assert post(api, query="?async=maybe").status_code == 400


def test_a_transient_database_error_is_retried(monkeypatch):
    from django.db import OperationalError

    from app import tasks

    attempts = []

    def flaky(*, record_id):
        attempts.append(record_id)
        if len(attempts) == 1:
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tasks.services, "run_job", flaky)
    result = tasks.recognize_record.apply(args=[42], throw=False)
    assert attempts == [42, 42]
    assert result.successful()


def test_an_ocr_failure_is_not_retried(user, monkeypatch):
    from app.errors import EngineFailed
    from app.tasks import recognize_record

    record = services.recognize(
        owner=user, data=PNG, file_name="a.png", engine="tesseract", queue=True, force=True
    ).record
    OcrRecord.objects.filter(pk=record.pk).update(status=OcrRecord.Status.QUEUED)

    def crash(self, image, options):
        raise EngineFailed("Tesseract failed: simulated crash")

    monkeypatch.setattr(type(registry.get("tesseract")), "recognize", crash)
    result = recognize_record.apply(args=[record.pk])
    assert result.successful()
    record.refresh_from_db()
    assert (record.status, record.error) == ("failed", "Tesseract failed: simulated crash")
