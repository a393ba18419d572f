"""Writes for accounts and their API keys."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

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


def log_out(*, refresh: RefreshToken) -> None:
    """End a sign-in: the (already verified) refresh token can never be used again."""
    refresh.blacklist()


@transaction.atomic
def change_password(*, user: AbstractBaseUser, password: str) -> int:
    """Set a new password (the caller ran the validators) and end every sign-in made with
    the old one. Every outstanding refresh token is blacklisted, so none can be refreshed;
    access tokens carry a digest of the password hash (SIMPLE_JWT CHECK_REVOKE_TOKEN) and
    sessions its HMAC (Django's session auth hash), so both stop working at once. The caller
    keeps its own session with update_session_auth_hash. Returns the tokens revoked."""
    user.set_password(password)
    user.save(update_fields=["password"])
    return revoke_refresh_tokens(user=user)


def revoke_refresh_tokens(*, user: AbstractBaseUser) -> int:
    live = OutstandingToken.objects.filter(
        user=user, blacklistedtoken__isnull=True, expires_at__gt=timezone.now()
    )
    revoked = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in live], ignore_conflicts=True
    )
    return len(revoked)
