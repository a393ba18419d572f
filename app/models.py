"""Data and its invariants. OCR never runs here: see app/services/ocr.py."""

import hashlib
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
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
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
    # What was asked (rotate, charset, outputs): a queued job runs with it, and a repeat
    # upload with the same bytes and options is answered from this record.
    options = models.JSONField(default=dict, blank=True)
    pages_done = models.PositiveIntegerField(default=0)
    pages_total = models.PositiveIntegerField(default=1)
    batch = models.ForeignKey(
        "Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="records"
    )
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="record_owner_created"),
            models.Index(fields=["owner", "sha256"], name="record_owner_sha256"),
            # The history's other orderings (?ordering=), also within a search: the first page
            # is read from the index instead of sorting every record (ties: id, same way).
            models.Index(fields=["owner", "duration_ms", "id"], name="record_owner_duration"),
            models.Index(fields=["owner", "file_name", "id"], name="record_owner_file_name"),
            models.Index(fields=["owner", "engine", "id"], name="record_owner_engine"),
            # PostgreSQL also has a GIN index on (owner, search_vector), a generated column
            # that is not a field here (SQLite has no tsvector): migration 0005_history_search.
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.engine}, {self.status})"


class ApiKey(models.Model):
    """A named key for programs: `Authorization: APPCODE <key>`, `X-API-Key: <key>` or Basic.

    Only the SHA-256 of the key is stored (keys are 256 random bits, so a fast hash is
    enough); the key itself is shown once, when it is created.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The key's first characters, to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    usage_count = models.PositiveBigIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="apikey_owner_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash(plain: str) -> str:
        return hashlib.sha256(plain.encode()).hexdigest()


class Batch(models.Model):
    """Many uploads sent at once; each is its own record, queued, and the batch sums them up."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.pk}"


class RateCounter(models.Model):
    """The requests a throttle let through in one fixed window (app/throttles.py).

    One row per (key, window), incremented in the database with `count = count + 1`, so
    concurrent requests in any number of worker processes never lose a count (a cache's
    get-then-set does). `last` is when the window's latest request came: once it is older
    than the rate's period, the window no longer weighs on the next. `expires` is when the
    row stops mattering: the end of the window after its own.
    """

    key = models.CharField(max_length=200)  # "<scope>:<ident>", e.g. "auth:addr-203.0.113.9"
    window = models.BigIntegerField()  # the window's start, seconds since the epoch
    count = models.PositiveIntegerField(default=0)
    last = models.FloatField()  # seconds since the epoch
    expires = models.BigIntegerField(db_index=True)  # seconds since the epoch

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window"], name="ratecounter_key_window")]

    def __str__(self) -> str:
        return f"{self.key} @{self.window}: {self.count}"
