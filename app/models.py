"""Data and its invariants. OCR never runs here: see app/services.py."""

import uuid
from pathlib import PurePath

from django.conf import settings
from django.db import models
from django.utils import timezone


def upload_path(record: "OcrRecord", filename: str) -> str:
    """A random name under a date folder: the client's file name never reaches the disk."""
    suffix = PurePath(filename).suffix.lower()[:8]
    return timezone.now().strftime(f"uploads/%Y/%m/{uuid.uuid4().hex}{suffix}")


class OcrRecord(models.Model):
    class Status(models.TextChoices):
        DONE = "done", "done"
        FAILED = "failed", "failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ocr_records")
    image = models.FileField(upload_to=upload_path, max_length=255)
    file_name = models.CharField(max_length=255, help_text="The name the client sent.")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(help_text="Bytes uploaded.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    engine = models.CharField(max_length=32)
    lang = models.CharField(max_length=64, blank=True)
    task = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices)
    text = models.TextField(blank=True)
    lines = models.JSONField(default=list, blank=True)
    # Task-specific output beside the lines: a math captcha's `result`, detection `boxes`.
    extra = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="record_owner_created"),
            models.Index(fields=["owner", "sha256"], name="record_owner_sha256"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.engine}, {self.status})"
