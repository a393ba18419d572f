"""The Celery app: `celery -A onlineocr worker` (or `./start.sh worker`) runs OCR jobs."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onlineocr.settings")

app = Celery("onlineocr")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def warm_engines(**kwargs) -> None:
    """Each pool process loads every engine once, after the fork, before its first job."""
    from app.engines import registry

    registry.warm_up()
