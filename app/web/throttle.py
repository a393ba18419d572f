"""The API's sign-in throttle for the browser's log-in, sign-up and password forms too.

They count in the same per-address bucket as `POST /api/register/` and the token endpoints
(app/throttles.py SignInRateThrottle, rate OCR_AUTH_THROTTLE), so switching between the page
and the API buys no extra guesses.
"""

import math
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from app.throttles import SignInRateThrottle


def throttled_posts(view):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            # The Django request itself: it has the headers and REMOTE_ADDR the address is read
            # from (wrapped in DRF's Request, reading its user would sign the page's user out).
            throttle = SignInRateThrottle()
            if not throttle.allow_request(request, None):
                wait = math.ceil(throttle.wait() or 60)
                response = render(request, "web/throttled.html", {"wait": wait}, status=429)
                response["Retry-After"] = str(wait)
                return response
        return view(request, *args, **kwargs)

    return wrapper
