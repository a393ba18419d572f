"""Writes around OCR: a recognized upload, a queued job and its run, a batch, a deletion."""

import hashlib
import time
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction

from app import recognition, selectors
from app.engines import registry
from app.engines.base import Engine, Options
from app.errors import EngineFailed, InvalidInput, OcrError
from app.models import Batch, OcrRecord


@dataclass(frozen=True)
class Recognition:
    """What recognize() did: the record, and whether it is an earlier one given back.
    The one place the API's 200/201/202 rule lives."""

    record: OcrRecord
    reused: bool = False

    @property
    def unfinished(self) -> bool:
        return self.record.status in (OcrRecord.Status.QUEUED, OcrRecord.Status.RUNNING)

    @property
    def http_status(self) -> int:
        """202 for a job still to run, 200 for an earlier result reused, 201 for a new one."""
        if self.unfinished:
            return 202
        return 200 if self.reused else 201


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
    pdf_text: str = "auto",
    upright: bool = False,
    side: str = "",
    force: bool = False,
    queue: bool = False,
    batch: Batch | None = None,
) -> Recognition:
    """Validate an image or PDF, read it and keep the upload and its result for its owner.

    - Bad input raises before anything is written.
    - The owner's earlier record of the same bytes with the same engine and options is
      given back as it is (`reused`), without running an engine (unless `force`).
    - `queue` stores the record as `queued` and hands it to a worker (run in-process at
      once when OCR_ASYNC is off); with OCR_ASYNC on, long PDFs are queued anyway.
    - An engine failure stores a `failed` record (it shows in the history) and re-raises.
    - With no owner (an anonymous dialect request) nothing is stored: the record is unsaved.
    """
    chosen, options = _select(
        engine=engine,
        lang=lang,
        task=task,
        rotate=rotate,
        charset=charset,
        outputs=outputs,
        pdf_text=pdf_text,
        upright=upright,
        side=side,
    )
    sha256 = hashlib.sha256(data).hexdigest()
    if owner is not None and not force:
        earlier = selectors.earlier_result(owner=owner, sha256=sha256, engine=chosen.name, options=options)
        if earlier is not None:
            return Recognition(earlier, reused=True)
    source = recognition.load(data)
    record = _new_record(owner, batch, data, sha256, file_name, source, chosen, options)
    long_pdf = settings.OCR_ASYNC and source.pages > settings.OCR_ASYNC_PDF_PAGES
    if owner is not None and (queue or long_pdf):
        return Recognition(_enqueue(record, data, source.extension))
    started = time.perf_counter()
    try:
        reading = recognition.run(chosen, options, source, route=options.routed)
    except EngineFailed as exc:
        _fail(record, exc.message, started)
        if owner is not None:
            _store(record, data, source.extension)
            exc.extra["record_id"] = record.pk
        raise
    _finish(record, reading, started)
    if owner is not None:
        _store(record, data, source.extension)
    return Recognition(record)


# Options that only some engines and tasks read: elsewhere they would be silently ignored
# (and a 1 MB charset stored with a Tesseract record), so they are refused instead.
OPTION_SCOPES = {"rotate": ("rapidocr", "document"), "charset": ("ddddocr", "text")}


def _select(*, engine: str = "", **options) -> tuple[Engine, Options]:
    """registry.select, then refuse an option the chosen engine and task do not read.
    With engine=auto the check is against the engine auto chose (by task and lang): an
    option never steers the choice, and the message says what was chosen and why. A request
    `auto` is to choose for by content (registry.routes_by_content) says so in its options."""
    routed = registry.routes_by_content(
        engine=engine,
        lang=options.get("lang", ""),
        task=options.get("task", ""),
        rotate=options.get("rotate", False),
    )
    chosen, checked = registry.select(engine=engine, routed=routed, **options)
    given = {"rotate": checked.rotate, "charset": checked.charset}
    for name, (scope_engine, scope_task) in OPTION_SCOPES.items():
        if given[name] and (chosen.name, checked.task) != (scope_engine, scope_task):
            auto = (engine or settings.OCR_DEFAULT_ENGINE) == registry.AUTO
            request = (
                f"engine=auto chose {chosen.name} for task {checked.task} (auto picks by task and lang, "
                f"never by options; send engine={scope_engine} task={scope_task})"
                if auto
                else f"this request is engine={chosen.name} task={checked.task}"
            )
            raise InvalidInput(
                f"'{name}' applies only to engine={scope_engine} task={scope_task}; {request}.",
                code="unsupported_option",
                option=name,
            )
    return chosen, checked


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
        reading = recognition.run(
            chosen, options, source, on_page=partial(_progress, record.pk), route=options.routed
        )
    except OcrError as exc:  # the engine failed, or a page proved unreadable
        _fail(record, exc.message, started)
    else:
        _finish(record, reading, started)
    record.save()


def create_batch(*, owner: AbstractBaseUser, files: list[tuple[bytes, str]], **options) -> Batch:
    """One queued record per file, all or nothing.

    Every file is validated before anything is written; one bad file refuses the whole batch
    with its error (naming it; `rejected` lists every bad one), so a client never has to work
    out which part of a batch went in. The rows are written in one transaction, and the files
    already stored are deleted if any write fails: no batch, record or file is left behind."""
    chosen, checked = _select(**options)
    loaded, rejected, first = [], [], None
    for data, file_name in files:
        try:
            source = recognition.load(data)
        except OcrError as exc:
            first = first or (exc, file_name)
            rejected.append({"file_name": file_name, "error": {"code": exc.code, "message": exc.message}})
            continue
        # Only the metadata: keeping a hundred decoded images would cost gigabytes.
        loaded.append((data, file_name, _Meta(source.extension, source.width, source.height, source.pages)))
    if first is not None:
        exc, file_name = first
        exc.message = f"{file_name or 'A file'}: {exc.message}"
        exc.args = (exc.message,)
        exc.extra.update(file_name=file_name, rejected=rejected)
        raise exc
    stored: list[OcrRecord] = []
    committed = []  # set by the first on_commit callback: the rows are in, keep their files
    try:
        with transaction.atomic():
            transaction.on_commit(partial(committed.append, True))
            batch = Batch.objects.create(owner=owner)
            for data, file_name, meta in loaded:
                sha256 = hashlib.sha256(data).hexdigest()
                record = _new_record(owner, batch, data, sha256, file_name, meta, chosen, checked)
                _enqueue(record, data, meta.extension, written=stored)
    except BaseException:
        # A job sent on commit may fail too (a broker that is down, an eager job raising):
        # then the rows are committed and their files must stay.
        if not committed:
            for record in stored:
                record.image.delete(save=False)
        raise
    return batch


def delete_record(*, record: OcrRecord) -> None:
    """Delete a record; its image file goes when the transaction commits (app/signals.py)."""
    record.delete()


def _enqueue(
    record: OcrRecord, data: bytes, extension: str, written: list[OcrRecord] | None = None
) -> OcrRecord:
    """Store the record as queued; the job is sent once the transaction commits. `written`
    collects the records whose file is stored, for a caller that may still roll back."""
    from app import tasks  # tasks call back into this module

    record.status = OcrRecord.Status.QUEUED
    _store(record, data, extension)
    if written is not None:
        written.append(record)
    transaction.on_commit(partial(tasks.recognize_record.delay, record.pk))
    if settings.CELERY_TASK_ALWAYS_EAGER:
        record.refresh_from_db()  # it ran already, unless a transaction is still open
    return record


@dataclass(frozen=True)
class _Meta:
    """What a record needs of a loaded source, without its decoded image."""

    extension: str
    width: int
    height: int
    pages: int


def _new_record(
    owner: AbstractBaseUser | None,
    batch: Batch | None,
    data: bytes,
    sha256: str,
    file_name: str,
    source: recognition.Source | _Meta,
    chosen: Engine,
    options: Options,
) -> OcrRecord:
    """The unsaved record of a validated upload."""
    is_pdf = source.extension == ".pdf"
    return OcrRecord(
        owner=owner,
        batch=batch,
        file_name=file_name or ("document.pdf" if is_pdf else f"image{source.extension}"),
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


def _opts(record: OcrRecord) -> dict:
    return {**record.options, "outputs": tuple(record.options.get("outputs", ()))}


def _progress(record_id: int, done: int, total: int) -> None:
    OcrRecord.objects.filter(pk=record_id).update(pages_done=done, pages_total=total)


def _finish(record: OcrRecord, reading: recognition.Reading, started: float) -> None:
    """Done: the result, and the engine and language that read it (auto's choice)."""
    result = reading.result
    record.engine, record.lang = reading.engine.name, reading.options.lang
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
