"""Per-user limits on the OCR endpoints: a request rate and daily quotas.

The rate (OCR_USER_THROTTLE) is counted in the shared cache (settings.CACHES), per API key
when the request came with one (a leaked key cannot use up its owner's other keys), else per
user, and per address for the older services' anonymous requests.

The quotas (OCR_DAILY_IMAGE_QUOTA, OCR_DAILY_PAGE_QUOTA) are counted from the records: they
are the truth, survive restarts and cache flushes, cost no extra write per request, and one
indexed query (owner, created_at) answers both numbers. A request is refused once the day's
count has reached a quota; the request that crosses it still finishes (a PDF's page count is
known only once it is read). Deleting today's records gives their share back.
"""

from datetime import UTC, datetime, timedelta
from typing import TypedDict

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Sum
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from app.models import ApiKey, OcrRecord


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


class OcrUserRateThrottle(SimpleRateThrottle):
    """OCR_USER_THROTTLE per API key, user or (anonymous) address."""

    scope = "ocr_user"

    def get_rate(self) -> str | None:
        # Read at each request, not once at import like DEFAULT_THROTTLE_RATES, so a changed
        # setting (a test's `settings` fixture) takes effect.
        return settings.OCR_USER_THROTTLE or None

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


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
