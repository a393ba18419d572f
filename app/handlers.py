"""Django's own error answers (handler400/403/404/500 in onlineocr/urls.py, CSRF_FAILURE_VIEW).

They run when an error escapes DRF's exception handler, or happens before or outside any
view: a Host outside ALLOWED_HOSTS, more form fields or files than Django parses, a CSRF
failure, a database that is down, an unknown URL, a bug. On the API's and the older
services' paths the answer is always the API's JSON envelope, whatever the client accepts
(their clients parse JSON, not an HTML page); elsewhere a browser gets an HTML page and any
other client the JSON envelope.
"""

import re
import sys

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views import csrf, defaults
from django.views.decorators.csrf import requires_csrf_token

from app.api.errors import (
    DATABASE_DOWN,
    DATABASE_DOWN_HEADERS,
    error_body,
    json_server_error,
)
from app.compat import market

# The API and the older services' paths (app/compat/urls.py: /ping, /ocr, /ocr|det/…, /slide/…,
# /slide_match, /detection, the market's /rest/…), and /media/ (image URLs the API hands out).
JSON_PATHS = re.compile(
    r"^/(?:api/|media/|rest/|ping(?:/|$)|ocr(?:/|$)|det/|slide/|slide_match(?:/|$)|detection(?:/|$))"
)

# A SuspiciousOperation Django raises while reading the request, as (status, code).
REFUSED = {
    TooManyFilesSent: (413, "too_many_files"),
    TooManyFieldsSent: (400, "too_many_fields"),  # as app/api/parsers.py answers a JSON body
    RequestDataTooBig: (413, "too_large"),
    DisallowedHost: (400, "disallowed_host"),
}


def wants_json(request: HttpRequest) -> bool:
    return bool(JSON_PATHS.match(request.path_info)) or "text/html" not in request.headers.get("Accept", "")


def _json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    headers = {"Cache-Control": "no-store", **market.error_header(message), **(headers or {})}
    return JsonResponse(error_body(code, message), status=status, headers=headers)


@requires_csrf_token
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not wants_json(request):
        return defaults.bad_request(request, exception)
    status, code = next(
        (answer for kind, answer in REFUSED.items() if isinstance(exception, kind)), (400, "bad_request")
    )
    return _json(status, code, _refusal_message(exception, code))


def _refusal_message(exception: Exception, code: str) -> str:
    if code == "too_many_files":
        return f"The request holds more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files, the limit."
    if code == "too_many_fields":
        return f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields, the limit."
    if code == "too_large":
        return f"The request body is more than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes, the limit."
    if code == "disallowed_host":
        # Not echoed: the header is the client's, and the answer may be cached or logged.
        return "The Host header names a host this server does not serve."
    if isinstance(exception, SuspiciousOperation):
        return "The request was refused as malformed."
    return "Bad request."


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not wants_json(request):
        return defaults.permission_denied(request, exception)
    return _json(403, "permission_denied", "You do not have permission to perform this action.")


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not wants_json(request):
        return render(request, "web/404.html", status=404)
    return _json(404, "not_found", "Not found.")


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    """A database outage is a 503 to retry, not a server bug; anything else a 500."""
    exc = sys.exc_info()[1]
    if wants_json(request):
        return json_server_error(request)
    if isinstance(exc, DATABASE_DOWN):
        # Rendered without the request: its context (the user, the messages) needs what is down.
        return HttpResponse(loader.render_to_string("503.html"), status=503, headers=DATABASE_DOWN_HEADERS)
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW. DRF's views are CSRF-exempt and answer their own session check with
    this same body; this covers a plain Django view on those paths."""
    if not wants_json(request):
        return csrf.csrf_failure(request, reason)
    return _json(403, "permission_denied", f"CSRF Failed: {reason}")
