"""API-key authentication, in the three ways older clients send a key.

- `X-API-Key: <key>`
- `Authorization: APPCODE <key>` (cloud-market style)
- `Authorization: Basic <key>` (ocr_api_server's documented client sends the bare key),
  or standard Basic with the key as the password (`base64(anything:<key>)`).
"""

import base64
import binascii

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from app import selectors, services


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
