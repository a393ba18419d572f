"""Every read the service makes: history, one record, engine and health status."""

import datetime
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from app.engines import registry
from app.engines.base import Options
from app.models import ApiKey, Batch, OcrRecord
from app.search import search_history


def history_for(*, user: AbstractBaseUser, search: str = "") -> QuerySet[OcrRecord]:
    """A user's own records, newest first; with `search`, the records that match it, most
    relevant first (search_history). selectors.history with no filter."""
    return history(owner=user, q=search)


# The fields `?ordering=` may name, on the API and the history page alike.
HISTORY_ORDERING_FIELDS = ("created_at", "duration_ms", "file_name", "engine")


def history(
    *,
    owner: AbstractBaseUser,
    q: str = "",
    engine: str = "",
    status: str = "",
    created_after: datetime.datetime | None = None,
    created_before: datetime.datetime | None = None,
    ordering: Sequence[str] = (),
) -> QuerySet[OcrRecord]:
    """The owner's records narrowed and ordered as `GET /api/history/` and the history page
    show them: the one implementation of both, so the two cannot drift apart.

    `engine`, `status`: exact values ("" for any). `created_after` is inclusive,
    `created_before` exclusive. `ordering`: fields of HISTORY_ORDERING_FIELDS, `-` for
    descending; others are ignored. Without it, newest first, or most relevant first with
    `q` (search_history: full-text on PostgreSQL). Ties go newest id first, so that pages
    never repeat or skip a row.
    """
    records = OcrRecord.objects.filter(owner=owner)
    if engine:
        records = records.filter(engine=engine)
    if status:
        records = records.filter(status=status)
    if created_after is not None:
        records = records.filter(created_at__gte=created_after)
    if created_before is not None:
        records = records.filter(created_at__lt=created_before)
    chosen = [field for field in ordering if field.removeprefix("-") in HISTORY_ORDERING_FIELDS]
    records = records.order_by(*(chosen or ["-created_at"]), "-id")
    return search_history(records, q, ranked=not chosen)


def record_for(*, user: AbstractBaseUser, pk: int) -> OcrRecord:
    """One of the user's records; another user's id is a 404, the same as a missing one."""
    return get_object_or_404(history_for(user=user), pk=pk)


def engine_statuses() -> list[dict[str, Any]]:
    statuses = []
    for engine in registry.ENGINES.values():
        available = engine.is_available()
        statuses.append(
            {
                "name": engine.name,
                "available": available,
                "reason": "" if available else engine.unavailable_reason(),
                "version": engine.version() if available else "",
                "runtime": engine.runtime() if available else None,
                "languages": engine.languages(),
                "default_lang": engine.default_lang,
                "tasks": list(engine.tasks),
            }
        )
    return statuses


def health() -> dict[str, Any]:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception as exc:  # any driver error means the same thing here: no database
        database = f"error: {exc.__class__.__name__}"
    engines = {engine.name: engine.is_available() for engine in registry.ENGINES.values()}
    return {
        "status": "ok" if database == "ok" and any(engines.values()) else "error",
        "database": database,
        "engines": engines,
    }


def api_keys_for(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(owner=user).order_by("-created_at", "-id")


def active_api_key(*, key: str) -> ApiKey | None:
    """The unrevoked key with this value, with its owner; None for anything else."""
    return (
        ApiKey.objects.select_related("owner")
        .filter(key_hash=ApiKey.hash(key), revoked_at__isnull=True, owner__is_active=True)
        .first()
    )


def option_values(options: Options) -> dict[str, Any]:
    """The options besides engine, language and task that change what OCR returns."""
    return {
        "rotate": options.rotate,
        "charset": options.charset,
        "outputs": list(options.outputs),
        "pdf_text": options.pdf_text,
        "routed": options.routed,
        # Only when set: records made before these options existed still match.
        **({"upright": True} if options.upright else {}),
        **({"side": options.side} if options.side else {}),
    }


def earlier_result(
    *, owner: AbstractBaseUser, sha256: str, engine: str, options: Options
) -> OcrRecord | None:
    """The owner's latest record of these bytes read the same way, if it has not failed.

    Looked up by (owner, sha256), its own index: this runs before every upload, and the
    owner may have a hundred thousand records. When `auto` chooses by content
    (options.routed), the engine and language are its choice for these bytes, whichever they were.
    """
    chosen = {} if options.routed else {"engine": engine, "lang": options.lang}
    return (
        OcrRecord.objects.filter(
            owner=owner,
            sha256=sha256,
            task=options.task,
            options=option_values(options),
            status__in=[OcrRecord.Status.QUEUED, OcrRecord.Status.RUNNING, OcrRecord.Status.DONE],
            **chosen,
        )
        .order_by("-id")
        .first()
    )


def batch_for(*, user: AbstractBaseUser, pk: int) -> Batch:
    return get_object_or_404(Batch.objects.filter(owner=user), pk=pk)


def batch_summary(*, batch: Batch) -> dict[str, Any]:
    records = list(batch.records.order_by("id"))
    counts = {status: 0 for status in OcrRecord.Status.values}
    for record in records:
        counts[record.status] += 1
    finished = counts[OcrRecord.Status.DONE] + counts[OcrRecord.Status.FAILED]
    return {
        "id": batch.pk,
        "created_at": batch.created_at,
        "total": len(records),
        **counts,
        "progress": round(finished / len(records), 4) if records else 1.0,
        "records": records,
    }
