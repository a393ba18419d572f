"""Writes around OCR: a recognized upload, a queued job and its run, a batch, a deletion."""

import hashlib
import time
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction

from app import recognition, selectors
from app.engines import registry
from app.engines.base import Result
from app.errors import EngineFailed, OcrError
from app.models import Batch, OcrRecord


def recognize(
    *,
    owner: AbstractBaseUser | None,
    data: bytes,
    file_name: str,
    engine: str = "",
    lang: str = "",
    task: str = "",
    rotate: bool = False,
    charset: str = "",
    outputs: tuple[str, ...] = (),
    force: bool = False,
    queue: bool = False,
    batch: Batch | None = None,
) -> OcrRecord:
    """Validate an image or PDF, read it and keep the upload and its result for its owner.

    - Bad input raises before anything is written.
    - The owner's earlier record of the same bytes with the same engine and options is
      returned as it is, marked `cached`, without running an engine (unless `force`).
    - `queue` stores the record as `queued` and hands it to a worker (run in-process at
      once when OCR_ASYNC is off); with OCR_ASYNC on, long PDFs are queued anyway.
    - An engine failure stores a `failed` record (it shows in the history) and re-raises.
    - With no owner (an anonymous dialect request) nothing is stored: the record is unsaved.
    """
    chosen, options = registry.select(
        engine=engine, lang=lang, task=task, rotate=rotate, charset=charset, outputs=outputs
    )
    sha256 = hashlib.sha256(data).hexdigest()
    if owner is not None and not force:
        earlier = selectors.earlier_result(owner=owner, sha256=sha256, engine=chosen.name, options=options)
        if earlier is not None:
            earlier.cached = True
            return earlier
    source = recognition.load(data)
    record = OcrRecord(
        owner=owner,
        batch=batch,
        file_name=file_name or ("document.pdf" if source.image is None else f"image{source.extension}"),
        sha256=sha256,
        size=len(data),
        width=source.width,
        height=source.height,
        engine=chosen.name,
        lang=options.lang,
        task=options.task,
        options=selectors.option_values(options),
        pages_total=source.pages,
    )
    long_pdf = settings.OCR_ASYNC and source.pages > settings.OCR_ASYNC_PDF_PAGES
    if owner is not None and (queue or long_pdf):
        return _enqueue(record, data, source.extension)
    started = time.perf_counter()
    try:
        result = recognition.run(chosen, options, source)
    except EngineFailed as exc:
        _fail(record, exc.message, started)
        if owner is not None:
            _store(record, data, source.extension)
            exc.extra["record_id"] = record.pk
        raise
    _finish(record, result, started)
    if owner is not None:
        _store(record, data, source.extension)
    return record


def run_job(*, record_id: int) -> None:
    """Run a queued record (a Celery task calls this). Safe to run twice for one record:
    a job delivered again after it finished does nothing, and one whose worker died
    mid-way runs again on the same record, so a job never makes a second record."""
    with transaction.atomic():
        record = OcrRecord.objects.select_for_update().filter(pk=record_id).first()
        if record is None or record.status in (OcrRecord.Status.DONE, OcrRecord.Status.FAILED):
            return  # deleted meanwhile, or finished before this delivery
        record.status = OcrRecord.Status.RUNNING
        record.save(update_fields=["status"])
    started = time.perf_counter()
    try:
        with record.image.open("rb") as stored:
            data = stored.read()
        chosen, options = registry.select(
            engine=record.engine, lang=record.lang, task=record.task, **_opts(record)
        )
        source = recognition.load(data)
        result = recognition.run(chosen, options, source, on_page=partial(_progress, record.pk))
    except OcrError as exc:  # the engine failed, or a page proved unreadable
        _fail(record, exc.message, started)
    else:
        _finish(record, result, started)
    record.save()


def create_batch(
    *, owner: AbstractBaseUser, files: list[tuple[bytes, str]], **options
) -> tuple[Batch, list[dict]]:
    """One queued record per readable file; unreadable ones are reported, not stored.

    A bad engine, language or task refuses the whole batch up front, and so does a batch
    with no readable file (with the first file's error): neither leaves an empty batch."""
    registry.select(**options)
    batch = Batch.objects.create(owner=owner)
    rejected, errors = [], []
    for data, file_name in files:
        try:
            recognize(
                owner=owner, data=data, file_name=file_name, queue=True, force=True, batch=batch, **options
            )
        except OcrError as exc:
            errors.append(exc)
            rejected.append({"file_name": file_name, "error": {"code": exc.code, "message": exc.message}})
    if errors and len(errors) == len(files):
        batch.delete()
        errors[0].extra["rejected"] = rejected
        raise errors[0]
    return batch, rejected


def delete_record(*, record: OcrRecord) -> None:
    """Delete a record; its image file goes when the transaction commits (app/signals.py)."""
    record.delete()


def _enqueue(record: OcrRecord, data: bytes, extension: str) -> OcrRecord:
    from app import tasks  # tasks call back into this module

    record.status = OcrRecord.Status.QUEUED
    _store(record, data, extension)
    transaction.on_commit(partial(tasks.recognize_record.delay, record.pk))
    if settings.CELERY_TASK_ALWAYS_EAGER:
        record.refresh_from_db()  # it ran already, unless a transaction is still open
    return record


def _opts(record: OcrRecord) -> dict:
    return {**record.options, "outputs": tuple(record.options.get("outputs", ()))}


def _progress(record_id: int, done: int, total: int) -> None:
    OcrRecord.objects.filter(pk=record_id).update(pages_done=done, pages_total=total)


def _finish(record: OcrRecord, result: Result, started: float) -> None:
    record.status = OcrRecord.Status.DONE
    record.text = result.text
    record.lines = [line.as_dict() for line in result.lines]
    record.extra = result.extra
    record.pages_done = record.pages_total
    record.duration_ms = _elapsed_ms(started)


def _fail(record: OcrRecord, message: str, started: float) -> None:
    record.status, record.error = OcrRecord.Status.FAILED, message
    record.duration_ms = _elapsed_ms(started)


def _store(record: OcrRecord, data: bytes, extension: str) -> None:
    """Write the file, then the row; if the row fails, take the file back: no orphans."""
    record.image.save(f"image{extension}", ContentFile(data), save=False)
    try:
        with transaction.atomic():
            record.save()
    except BaseException:
        record.image.delete(save=False)
        raise


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
