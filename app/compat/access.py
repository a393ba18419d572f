"""Who may call a dialect endpoint: an API key's owner, or anyone when OCR_ALLOW_ANONYMOUS is on.

Old clients knew no accounts; with a key their requests land in the key owner's history,
and anonymous requests (when allowed) are recognized but not stored.
"""

from django.conf import settings
from rest_framework.permissions import BasePermission

from app.authentication import ApiKeyAuthentication
from app.throttles import OCR_THROTTLES


class KeyOrAnonymousIfAllowed(BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated) or settings.OCR_ALLOW_ANONYMOUS


class DialectView:
    """Mixin for dialect views: API-key auth only (no session, so no CSRF); the same per-key
    rate and daily quotas as the API (app/throttles.py), per address when anonymous."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [KeyOrAnonymousIfAllowed]
    throttle_classes = OCR_THROTTLES

    def owner(self, request):
        return request.user if request.user.is_authenticated else None
