"""onlineocr: the Django project. The Celery app loads with it so tasks can be queued."""

from onlineocr.celery import app as celery_app

__all__ = ["celery_app"]
