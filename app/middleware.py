"""Refuse an oversized body from its Content-Length, before Django reads a byte of it."""

from django.conf import settings
from django.http import JsonResponse

from app.compat import market


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.OCR_MAX_REQUEST_BYTES
        if length > limit:
            message = f"The request body is {length} bytes; the limit is {limit} bytes."
            return JsonResponse(
                {"error": {"code": "too_large", "message": message}},
                status=413,
                headers=market.error_header(message),
            )
        return self.get_response(request)
