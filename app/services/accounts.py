"""Writes for accounts and their API keys."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F
from django.utils import timezone

from app.models import ApiKey


def register_user(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """Create an account; the caller has already run Django's password validators."""
    return get_user_model().objects.create_user(username=username, email=email, password=password)


def create_api_key(*, owner: AbstractBaseUser, name: str) -> tuple[ApiKey, str]:
    """Make a key; the caller shows the returned plain key once, only its hash is kept."""
    plain = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(owner=owner, name=name, prefix=plain[:8], key_hash=ApiKey.hash(plain))
    return api_key, plain


def revoke_api_key(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def record_api_key_use(*, api_key: ApiKey) -> None:
    """Count a use in one UPDATE, so concurrent requests never lose a count."""
    ApiKey.objects.filter(pk=api_key.pk).update(usage_count=F("usage_count") + 1, last_used_at=timezone.now())
