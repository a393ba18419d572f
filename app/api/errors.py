"""One error shape for every API response: {"error": {"code", "message", ...}}."""

import logging
import sys
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from app.compat import market
from app.errors import OcrError

logger = logging.getLogger(__name__)

# What the database driver raises when the server is down or the connection was lost (not
# a bug in a query): the client is told to retry, the log gets one line, not a traceback.
DATABASE_DOWN = (OperationalError, InterfaceError)
DATABASE_DOWN_HEADERS = {"Retry-After": "5", "Cache-Control": "no-store"}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    response = _error_response(exc, context)
    if response is not None:
        market.add_error_header(response)  # the cloud-market dialect's copy of the message
    return response


def _error_response(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, OcrError):
        response = Response(error_body(exc.code, exc.message, **exc.extra), status=exc.status)
        response["Cache-Control"] = "no-store"
        return response
    if isinstance(exc, DATABASE_DOWN):
        logger.warning("database unavailable: %s: %s", exc.__class__.__name__, str(exc).strip()[:300])
        return Response(_database_down_body(), status=503, headers=DATABASE_DOWN_HEADERS)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("too_large", "The request body is too large."), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        code, message = _first_error(exc.detail)
        response.data = error_body(code, message[:MESSAGE_SHOWN], fields=_capped(exc.detail))
    else:
        response.data = error_body(_code(exc), _message(exc))
    return response


# How much of a validation error goes back: its fields, the messages of each, their length.
# The messages may echo the client's input, and a list field may fail for every item.
FIELDS_SHOWN = 10
MESSAGES_SHOWN = 5
MESSAGE_SHOWN = 500


def _capped(detail: Any) -> Any:
    """The ValidationError's detail, cut to a bounded size whatever the request sent."""
    if isinstance(detail, dict):
        return {str(key)[:100]: _capped(value) for key, value in list(detail.items())[:FIELDS_SHOWN]}
    if isinstance(detail, list):
        return [_capped(item) for item in detail[:MESSAGES_SHOWN]]
    if isinstance(detail, str) and len(detail) > MESSAGE_SHOWN:
        return exceptions.ErrorDetail(detail[:MESSAGE_SHOWN], code=getattr(detail, "code", None))
    return detail


def _code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def _message(exc: exceptions.APIException) -> str:
    detail = getattr(exc, "detail", exc)
    if isinstance(detail, dict):  # simplejwt's InvalidToken: {"detail", "code", "messages"}
        detail = detail.get("detail", "")
    return str(detail)


def _first_error(detail: Any, path: str = "") -> tuple[str, str]:
    """The first message in a nested ValidationError, prefixed by its field name."""
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        name = "" if key == "non_field_errors" else str(key)
        return _first_error(value, f"{path}.{name}" if path and name else path or name)
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], path)
    code = getattr(detail, "code", "invalid") or "invalid"
    return code, f"{path}: {detail}" if path else str(detail)


def _database_down_body() -> dict[str, Any]:
    return error_body("database_unavailable", "The database is unavailable; try again in a moment.")


def json_server_error(request) -> JsonResponse:
    """Django's 500 handler. A database outage outside DRF's views (middleware, the browser
    pages) lands here too: it is a 503 to retry, not a server bug."""
    if isinstance(sys.exc_info()[1], DATABASE_DOWN):
        return JsonResponse(_database_down_body(), status=503, headers=DATABASE_DOWN_HEADERS)
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)
