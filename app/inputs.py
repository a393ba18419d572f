"""Request fields -> image bytes and a display name. Every way in ends here as bytes."""

import base64
import binascii
import re
import unicodedata
from pathlib import PurePath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from app.errors import InvalidInput, TooLarge

_WHITESPACE = re.compile(r"\s+")


def read_upload(upload: UploadedFile) -> tuple[bytes, str]:
    limit = settings.OCR_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise TooLarge(f"The file is {upload.size} bytes; the limit is {limit} bytes.", code="file_too_large")
    return upload.read(limit + 1), clean_file_name(upload.name or "")


def read_base64(value: str) -> bytes:
    """Decode standard or URL-safe base64, with or without a `data:` prefix or padding."""
    value = value.strip()
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        if ";base64" not in header:
            raise InvalidInput("A data: URI must be base64-encoded.", code="invalid_base64")
    value = _WHITESPACE.sub("", value).translate(str.maketrans("-_", "+/"))
    if len(value) * 3 // 4 > settings.OCR_MAX_UPLOAD_BYTES:
        raise TooLarge(
            f"The decoded image would exceed {settings.OCR_MAX_UPLOAD_BYTES} bytes.",
            code="file_too_large",
        )
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("image_base64 is not valid base64.", code="invalid_base64") from exc


def clean_file_name(name: str) -> str:
    """The client's base name, printable, at most 255 characters: shown, never used as a path."""
    base = PurePath(name.replace("\\", "/")).name
    printable = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    return printable.strip()[:255]
