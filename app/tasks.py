"""Celery tasks: thin wrappers that hand queued work to app.services."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from app import services


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    # The database or storage blinking is worth another try; an OCR failure is not
    # (run_job records it on the record and returns).
    autoretry_for=(OperationalError, InterfaceError, ConnectionError),
    retry_backoff=2,
    retry_jitter=True,
    max_retries=5,
)
def recognize_record(record_id: int) -> None:
    services.run_job(record_id=record_id)
