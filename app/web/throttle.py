"""The API's sign-in throttle for the browser's log-in and sign-up forms too.

Both count in the same per-address bucket as `POST /api/register/` and the token
endpoints (DRF's ScopedRateThrottle, scope "auth", rate OCR_AUTH_THROTTLE), so
switching between the page and the API buys no extra guesses.
"""

from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle


class _AuthScope:
    throttle_scope = "auth"


def throttled_posts(view):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            throttle = ScopedRateThrottle()
            if not throttle.allow_request(Request(request), _AuthScope()):
                wait = int(throttle.wait() or 60)
                response = render(request, "web/throttled.html", {"wait": wait}, status=429)
                response["Retry-After"] = str(wait)
                return response
        return view(request, *args, **kwargs)

    return wrapper
