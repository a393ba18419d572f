"""The errors the service raises on purpose, each with its HTTP status and a stable code.

Views never build error bodies by hand: app/api/errors.py turns these into
`{"error": {"code", "message"}}` responses.
"""

from typing import Any


class OcrError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra


class InvalidInput(OcrError):
    """The request itself is wrong: the client can fix it."""

    code = "invalid_input"


class Unprocessable(OcrError):
    """The image is valid but holds no answer, e.g. a math captcha that does not read as a sum."""

    status = 422
    code = "unreadable_expression"


class TooLarge(OcrError):
    status = 413
    code = "too_large"


class EngineUnavailable(OcrError):
    """The engine's binary, package or model is missing on this server."""

    status = 503
    code = "engine_unavailable"


class EngineFailed(OcrError):
    """The engine crashed on an input it accepted; the record is stored as failed."""

    status = 503
    code = "engine_failed"


class EngineTimeout(EngineFailed):
    status = 504
    code = "engine_timeout"
