"""API-key authentication, in the three ways older clients send a key.

- `X-API-Key: <key>`
- `Authorization: APPCODE <key>` (cloud-market style)
- `Authorization: Basic <key>` (ocr_api_server's documented client sends the bare key),
  or standard Basic with the key as the password (`base64(anything:<key>)`).
"""

import base64
import binascii
from datetime import timedelta

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, datetime_to_epoch

from app import selectors, services

CHAIN_CLAIM = "chain_iat"  # when the login that began this chain of refreshes happened


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "APPCODE"

    def authenticate(self, request):
        key = self.key_from(request)
        if key is None:
            return None
        api_key = selectors.active_api_key(key=key)
        if api_key is None:
            raise AuthenticationFailed("Invalid or revoked API key.", code="invalid_api_key")
        services.record_api_key_use(api_key=api_key)
        return api_key.owner, api_key

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'

    @staticmethod
    def key_from(request) -> str | None:
        if header := request.META.get("HTTP_X_API_KEY"):
            return header.strip()
        parts = get_authorization_header(request).decode("latin-1").split()
        if len(parts) != 2:
            return None
        scheme, credential = parts[0].lower(), parts[1]
        if scheme == "appcode":
            return credential
        if scheme == "basic":
            return _basic_key(credential)
        return None


def _basic_key(credential: str) -> str:
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return credential
    return decoded.partition(":")[2] if ":" in decoded else credential


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the key (drf-spectacular finds this subclass itself)."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "Also accepted as `Authorization: APPCODE <key>` or `Authorization: Basic <key>`.",
        }


class ChainedRefreshToken(RefreshToken):
    """A refresh token whose rotations never outlive its login by more than
    JWT_REFRESH_MAX_DAYS: the login time rides along as a claim through every refresh, the
    token is refused past it, and a rotated token expires no later than it."""

    def __init__(self, token=None, verify: bool = True) -> None:
        super().__init__(token, verify)
        # A new token starts a chain; one minted before this claim existed starts at its iat.
        self.payload.setdefault(CHAIN_CLAIM, self.payload["iat"])
        self._clamp_exp()

    def verify(self) -> None:
        super().verify()
        started = datetime_from_epoch(self.payload.get(CHAIN_CLAIM, self.payload["iat"]))
        if self.current_time >= started + self._max_age():
            raise TokenError(f"Signed in more than {settings.JWT_REFRESH_MAX_DAYS} days ago; sign in again.")

    def set_exp(self, claim: str = "exp", from_time=None, lifetime=None) -> None:
        super().set_exp(claim, from_time, lifetime)
        if claim == "exp":
            self._clamp_exp()

    def _clamp_exp(self) -> None:
        if CHAIN_CLAIM in self.payload and "exp" in self.payload:
            end = datetime_to_epoch(datetime_from_epoch(self.payload[CHAIN_CLAIM]) + self._max_age())
            self.payload["exp"] = min(self.payload["exp"], end)

    @staticmethod
    def _max_age() -> timedelta:
        return timedelta(days=settings.JWT_REFRESH_MAX_DAYS)
