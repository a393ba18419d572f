"""Every write the service makes. Views and adapters call these; nothing else writes."""

import hashlib
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction

from app import images
from app.engines import registry
from app.engines.base import Result
from app.errors import EngineFailed
from app.models import OcrRecord


def register_user(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """Create an account; the caller has already run Django's password validators."""
    return get_user_model().objects.create_user(username=username, email=email, password=password)


def recognize(
    *,
    owner: AbstractBaseUser,
    data: bytes,
    file_name: str,
    engine: str = "",
    lang: str = "",
    task: str = "",
    rotate: bool = False,
) -> OcrRecord:
    """Validate an image, run OCR on it and keep the upload and its result for its owner.

    Bad input raises before anything is written. An engine failure stores a
    `failed` record (so the user sees it in their history) and re-raises.
    """
    chosen, options = registry.select(engine=engine, lang=lang, task=task, rotate=rotate)
    decoded = images.decode(data)
    record = OcrRecord(
        owner=owner,
        file_name=file_name or f"image{decoded.extension}",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        width=decoded.width,
        height=decoded.height,
        engine=chosen.name,
        lang=options.lang,
        task=options.task,
    )
    started = time.perf_counter()
    try:
        result = chosen.recognize(decoded.image, options)
    except EngineFailed as exc:
        record.status, record.error = OcrRecord.Status.FAILED, exc.message
        record.duration_ms = _elapsed_ms(started)
        _store(record, data, decoded.extension)
        exc.extra["record_id"] = record.pk
        raise
    _apply_result(record, result)
    record.duration_ms = _elapsed_ms(started)
    _store(record, data, decoded.extension)
    return record


def delete_record(*, record: OcrRecord) -> None:
    """Delete a record; its image file goes when the transaction commits (app/signals.py)."""
    record.delete()


def _apply_result(record: OcrRecord, result: Result) -> None:
    record.status = OcrRecord.Status.DONE
    record.text = result.text
    record.lines = [line.as_dict() for line in result.lines]
    record.extra = result.extra


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
