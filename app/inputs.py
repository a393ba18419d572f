"""Request fields -> image bytes and a display name. Every way in ends here as bytes."""

import base64
import binascii
import re
import unicodedata
import zipfile
from pathlib import PurePath
from urllib.parse import unquote

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from app import fetch
from app.errors import InvalidInput, TooLarge

_WHITESPACE = re.compile(r"\s+")
# What a data: URI may declare besides image/*: a mismatched type is a client bug worth naming.
DATA_URI_TYPES = {"application/pdf", "application/octet-stream"}


def read_image(fields: dict, name: str = "image") -> tuple[bytes, str]:
    """Bytes and client file name of image `name`: a file, `<name>_base64` or `<name>_url`."""
    if fields.get(name) is not None:
        return read_upload(fields[name])
    if fields.get(f"{name}_url") is not None:
        data, path_name = fetch.fetch(fields[f"{name}_url"])
        return data, clean_file_name(unquote(path_name))
    return read_base64(fields[f"{name}_base64"]), ""


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
        mime = header[len("data:") :].partition(";")[0].strip().lower()
        if mime and not mime.startswith("image/") and mime not in DATA_URI_TYPES:
            raise InvalidInput(
                f"A data: URI of type {mime} is not an image; send image/* or application/pdf.",
                code="invalid_base64",
            )
    if len(value) * 3 // 4 > settings.OCR_MAX_UPLOAD_BYTES:
        raise TooLarge(
            f"The decoded image would exceed {settings.OCR_MAX_UPLOAD_BYTES} bytes.",
            code="file_too_large",
        )
    try:
        return base64.b64decode(value, validate=True)  # the common case, and the fast one
    except (binascii.Error, ValueError):
        pass
    value = _WHITESPACE.sub("", value).translate(str.maketrans("-_", "+/"))
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("image_base64 is not valid base64.", code="invalid_base64") from exc


def clean_file_name(name: str) -> str:
    """The client's base name, printable, at most 255 characters: shown, never used as a path."""
    base = PurePath(name.replace("\\", "/")).name
    printable = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    return printable.strip()[:255]


# A zip member is read in pieces of this size, so a member that inflates past what it
# declared is stopped within one piece of the limit.
ARCHIVE_CHUNK = 64 * 1024


def read_archive(upload: UploadedFile) -> list[tuple[bytes, str]]:
    """The files of a zip, in name order: no folders, no hidden or system files.

    Zip bombs: the members' declared sizes, each (OCR_MAX_UPLOAD_BYTES) and together
    (OCR_MAX_REQUEST_BYTES, what the same files could weigh sent loose), are checked before
    any is inflated; then each is inflated in pieces, counting the bytes really produced
    against both limits, so a member that lies about its size stops at the limit and the
    memory held never exceeds the total limit."""
    limit, total_limit = settings.OCR_MAX_UPLOAD_BYTES, settings.OCR_MAX_REQUEST_BYTES
    most = settings.OCR_BATCH_MAX_FILES
    try:
        archive = zipfile.ZipFile(upload)
        members = [
            info
            for info in sorted(archive.infolist(), key=lambda info: info.filename)
            if not info.is_dir()
            and not any(part.startswith((".", "__MACOSX")) for part in info.filename.split("/"))
        ]
        if len(members) > most:
            raise TooLarge(
                f"The archive holds {len(members)} files; the limit is {most}.", code="too_many_files"
            )
        for info in members:
            if info.file_size > limit:
                raise TooLarge(
                    f"{clean_file_name(info.filename)} is {info.file_size} bytes; the limit is {limit}.",
                    code="file_too_large",
                )
        declared = sum(info.file_size for info in members)
        if declared > total_limit:
            raise TooLarge(
                f"The archive's files inflate to {declared} bytes; the limit is {total_limit}.",
                code="archive_too_large",
            )
        files, read = [], 0
        for info in members:
            data = _inflate(archive, info, limit=limit, left=total_limit - read, total=total_limit)
            read += len(data)
            files.append((data, clean_file_name(info.filename)))
        return files
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
        raise InvalidInput(f"The archive cannot be read as a zip ({exc}).", code="invalid_archive") from exc


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int, left: int, total: int) -> bytes:
    """One member's bytes: at most `limit`, and `left` of the archive's `total`."""
    chunks, size = [], 0
    with archive.open(info) as member:
        while chunk := member.read(ARCHIVE_CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge(
                    f"{clean_file_name(info.filename)} inflates past {limit} bytes.", code="file_too_large"
                )
            if size > left:
                raise TooLarge(
                    f"The archive's files inflate past {total} bytes.",
                    code="archive_too_large",
                )
            chunks.append(chunk)
    return b"".join(chunks)


def check_batch_size(files: list[tuple[bytes, str]]) -> None:
    most = settings.OCR_BATCH_MAX_FILES
    if not files:
        raise InvalidInput("The batch holds no files.", code="missing_image")
    if len(files) > most:
        raise TooLarge(f"The batch holds {len(files)} files; the limit is {most}.", code="too_many_files")
