"""Every read the service makes: history, one record, engine and health status."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from app.engines import registry
from app.models import OcrRecord


def history_for(*, user: AbstractBaseUser) -> QuerySet[OcrRecord]:
    """A user's own records, newest first. Every history read starts here."""
    return OcrRecord.objects.filter(owner=user).order_by("-created_at", "-id")


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
