"""Per-user limits on the OCR endpoints (a request rate and daily quotas), and the sign-in rate.

The rates (OCR_USER_THROTTLE, OCR_AUTH_THROTTLE) are counted in the database, in RateCounter
rows every worker process shares, with an atomic `count = count + 1`: DRF's SimpleRateThrottle
reads its history from the cache and writes it back, so two requests at once could both be
counted as one and a client sending many at once got many extra guesses. A rate is a sliding
window, estimated from two fixed windows: the previous window's count, weighted by how much of
it still overlaps the last `duration` seconds, plus the current window's. The OCR rate counts
per API key when the request came with one (a leaked key cannot use up its owner's other
keys), else per user, and per address for the older services' anonymous requests; the sign-in
rate per address.

The quotas (OCR_DAILY_IMAGE_QUOTA, OCR_DAILY_PAGE_QUOTA) are counted from the records: they
are the truth, survive restarts, cost no extra write per request, and one indexed query
(owner, created_at) answers both numbers. A request is refused once the day's count has
reached a quota; the request that crosses it still finishes (a PDF's page count is known only
once it is read). Deleting today's records gives their share back.
"""

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from app.models import ApiKey, OcrRecord, RateCounter


class Usage(TypedDict):
    images_today: int
    pages_today: int
    image_quota: int  # 0: unlimited
    page_quota: int
    resets_at: datetime


def next_midnight_utc(now: datetime | None = None) -> datetime:
    now = (now or timezone.now()).astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def usage_today(*, user: AbstractBaseUser) -> Usage:
    """Today's (UTC) stored images and pages of this user, beside the quotas."""
    midnight = next_midnight_utc()
    totals = OcrRecord.objects.filter(owner=user, created_at__gte=midnight - timedelta(days=1)).aggregate(
        images=Count("id"), pages=Sum("pages_total")
    )
    return {
        "images_today": totals["images"],
        "pages_today": totals["pages"] or 0,
        "image_quota": settings.OCR_DAILY_IMAGE_QUOTA,
        "page_quota": settings.OCR_DAILY_PAGE_QUOTA,
        "resets_at": midnight,
    }


PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Expired counter rows deleted at most per new row: each new row adds one, so they never pile up.
CLEANUP_BATCH = 100


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's rate format, "<requests>/<period>" (s, m, h, d, or a word starting so): (requests, seconds)."""
    number, period = rate.split("/")
    return int(number), PERIODS[period.strip()[0]]


class CountedRateThrottle(BaseThrottle):
    """DRF's throttle interface (allow_request, wait) over RateCounter rows.

    The request is counted first, inside a transaction that then holds the row's lock (a
    write lock of the whole database on SQLite), so each request sees exactly the requests
    before it; a refused request's count is rolled back, as DRF does not count refused ones.
    The requests of the last `duration` seconds are estimated as the current window's plus
    the previous window's weighted by how much of it is still in the span, or none of them
    once its last request is `duration` seconds old: so a burst at the end of one window and
    the start of the next is still about one rate, and no client waits more than `duration`.
    Subclasses name the rate (get_rate) and whose it is (get_ident_key).
    """

    scope = ""
    timer = staticmethod(time.time)  # tests move the clock

    def __init__(self) -> None:
        self._wait: float | None = None

    def get_rate(self) -> str | None:
        raise NotImplementedError

    def get_ident_key(self, request, view) -> str | None:
        """Whose requests these are; None: not throttled."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        rate = self.get_rate()
        ident = rate and self.get_ident_key(request, view)
        if not ident:
            return True
        limit, duration = parse_rate(rate)
        key = f"{self.scope}:{ident}"
        if len(key) > RateCounter._meta.get_field("key").max_length:
            key = f"{self.scope}:sha256-{hashlib.sha256(ident.encode()).hexdigest()}"
        now = self.timer()
        window = int(now // duration) * duration
        with transaction.atomic():
            created = self._count(key, window, duration, now)
            counts = self._counts(key, window, duration)
            allowed = self._estimate(counts, now, window, duration) <= limit + 1e-9  # a float's last bit
            if not allowed:
                transaction.set_rollback(True)  # a refused request is not counted
        if created:
            self._delete_expired(now)
        if not allowed:
            counts = self._counts(key, window, duration)  # without this request
            self._wait = self._seconds_until_allowed(limit, duration, now, window, counts)
        return allowed

    def wait(self) -> float | None:
        """After a refusal: the seconds until the next request would be let through, if no
        other comes first; None when the rate lets nothing through."""
        return self._wait

    @staticmethod
    def _count(key: str, window: int, duration: int, now: float) -> bool:
        """Add this request to the window's row, made if missing; True when it was made."""
        counted = RateCounter.objects.filter(key=key, window=window)
        change = {"count": F("count") + 1, "last": Greatest(F("last"), Value(now))}
        if counted.update(**change):
            return False
        try:
            with transaction.atomic():  # a savepoint: a concurrent request may make the row first
                RateCounter.objects.create(
                    key=key, window=window, count=1, last=now, expires=window + 2 * duration
                )
        except IntegrityError:
            counted.update(**change)
            return False
        return True

    @staticmethod
    def _counts(key: str, window: int, duration: int) -> dict[int, tuple[int, float]]:
        """The previous and the current window's (count, last request), by window."""
        rows = RateCounter.objects.filter(key=key, window__in=[window - duration, window])
        return {
            row_window: (count, last)
            for row_window, count, last in rows.values_list("window", "count", "last")
        }

    @staticmethod
    def _estimate(counts: dict[int, tuple[int, float]], now: float, window: int, duration: int) -> float:
        current = counts.get(window, (0, 0.0))[0]
        previous, previous_last = counts.get(window - duration, (0, 0.0))
        if previous_last <= now - duration:  # all of the previous window is older than the span
            return current
        return previous * (1 - (now - window) / duration) + current

    @staticmethod
    def _delete_expired(now: float) -> None:
        expired = RateCounter.objects.filter(expires__lte=now).values("pk")[:CLEANUP_BATCH]
        RateCounter.objects.filter(pk__in=list(expired.values_list("pk", flat=True))).delete()

    @staticmethod
    def _seconds_until_allowed(
        limit: int, duration: int, now: float, window: int, counts: dict[int, tuple[int, float]]
    ) -> float | None:
        """When the estimate with one more request is within the limit, if none comes first."""
        if limit < 1:
            return None
        current, current_last = counts.get(window, (0, 0.0))
        previous, previous_last = counts.get(window - duration, (0, 0.0))
        if current + 1 <= limit and previous:  # later in this window, as the previous one passes
            at = min(window + duration * (1 - (limit - current - 1) / previous), previous_last + duration)
        else:  # in the next window, this one becoming the previous
            at = min(window + duration * (2 - (limit - 1) / current), current_last + duration)
        return max(0.0, at - now)


class OcrUserRateThrottle(CountedRateThrottle):
    """OCR_USER_THROTTLE per API key, user or (anonymous) address."""

    scope = "ocr_user"

    def get_rate(self) -> str | None:
        # Read at each request, so a changed setting (a test's `settings` fixture) takes effect.
        return settings.OCR_USER_THROTTLE or None

    def get_ident_key(self, request, view) -> str:
        if isinstance(request.auth, ApiKey):
            return f"key-{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"user-{request.user.pk}"
        return f"addr-{self.get_ident(request)}"


class SignInRateThrottle(CountedRateThrottle):
    """OCR_AUTH_THROTTLE per address, one bucket for register, token, refresh, log-out and
    password change, and the browser's log-in, sign-up, password and admin log-in forms
    (app/web/throttle.py): switching between them buys no extra guesses. The address is DRF's
    (REMOTE_ADDR, or the NUM_PROXIES-th X-Forwarded-For entry from the right), never the
    user: signed in to an account of one's own, one would otherwise guess with its budget."""

    scope = "auth"

    def get_rate(self) -> str | None:
        return settings.OCR_AUTH_THROTTLE or None

    def get_ident_key(self, request, view) -> str:
        return f"addr-{self.get_ident(request)}"


class QuotaExceeded(exceptions.Throttled):
    default_code = "quota_exceeded"


class DailyQuota(BaseThrottle):
    """Refuses OCR once today's stored images or pages reached the quota, until midnight UTC."""

    def allow_request(self, request, view) -> bool:
        image_quota, page_quota = settings.OCR_DAILY_IMAGE_QUOTA, settings.OCR_DAILY_PAGE_QUOTA
        if not (image_quota or page_quota) or not (request.user and request.user.is_authenticated):
            return True
        usage = usage_today(user=request.user)
        if image_quota and usage["images_today"] >= image_quota:
            kind, quota = "images", image_quota
        elif page_quota and usage["pages_today"] >= page_quota:
            kind, quota = "pages", page_quota
        else:
            return True
        wait = max(1, int((usage["resets_at"] - timezone.now()).total_seconds()) + 1)
        raise QuotaExceeded(
            wait=wait,
            detail=f"The daily quota of {quota} {kind} is used up; it resets at midnight UTC.",
            code="quota_exceeded",
        )


OCR_THROTTLES = [OcrUserRateThrottle, DailyQuota]
