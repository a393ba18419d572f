"""Hand an owner-checked image to the client. Callers have already checked ownership.

Local storage: behind nginx, the app only names the file (X-Accel-Redirect to an
`internal` location) and nginx sends the bytes; without nginx, Django streams the file.

S3 (OCR_STORAGE=s3): a 302 to a presigned GET for this one object that expires after
OCR_S3_URL_SECONDS. The bytes go from the bucket to the client and never occupy a
worker; the redirect itself is `no-store`, so no cache keeps the short-lived URL. There
is no existence check first: S3's `exists` is a HEAD round trip on every image (every
history thumbnail), to guard against a state the app never leaves (the file is written
before its row and deleted only after the row's delete commits). If the object is gone
anyway, the bucket answers the presigned GET with its own 404. With OCR_S3_PUBLIC_URL the
link is signed for that address, the one browsers reach (the signature covers the host).
"""

import mimetypes
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, Storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect

from app.models import OcrRecord


def image_response(record: OcrRecord) -> HttpResponse:
    name = record.image.name
    if not name:
        raise Http404("The image file is gone.")
    storage = record.image.storage
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if _is_s3(storage):
        response = HttpResponseRedirect(_presigned_url(storage, name, content_type))
        response["Cache-Control"] = "private, no-store"  # the link outlives no cache
    else:
        response = _local_file(record, name, content_type)
        response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    if content_type == "application/pdf":
        # A PDF is never shown inline: its scripts and forms would run in our origin's viewer.
        response["Content-Disposition"] = "attachment"
    return response


def _local_file(record: OcrRecord, name: str, content_type: str) -> HttpResponse:
    if not record.image.storage.exists(name):
        raise Http404("The image file is gone.")
    if settings.OCR_MEDIA_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.OCR_MEDIA_ACCEL_REDIRECT.rstrip("/") + "/" + name
        return response
    return FileResponse(record.image.open("rb"), content_type=content_type)


def _is_s3(storage: Storage) -> bool:
    if isinstance(storage, FileSystemStorage):
        return False  # the usual case: no need to import boto3 to find out
    from storages.backends.s3 import S3Storage

    return isinstance(storage, S3Storage)


def _presigned_url(storage, name: str, content_type: str) -> str:
    """A signed GET for one object, made locally (no request to S3)."""
    if not storage.querystring_auth or storage.custom_domain:
        # Either would make url() return an unsigned URL: a private image made public.
        raise ImproperlyConfigured("S3 uploads need querystring_auth on and no custom_domain.")
    seconds = settings.OCR_S3_URL_SECONDS
    public = getattr(settings, "OCR_S3_PUBLIC_URL", "")
    if public and public != storage.endpoint_url:
        storage = _signer_for(public, tuple(sorted(settings.STORAGES["default"]["OPTIONS"].items())))
    return storage.url(
        name,
        parameters={
            "ResponseContentType": content_type,
            "ResponseCacheControl": f"private, max-age={seconds}",
            **({"ResponseContentDisposition": "attachment"} if content_type == "application/pdf" else {}),
        },
        expire=seconds,
    )


@cache
def _signer_for(public_url: str, options: tuple) -> Storage:
    """The configured storage (`options`) addressed at `public_url`; it only signs, locally.
    Kept per process: its boto3 client costs milliseconds to make."""
    from storages.backends.s3 import S3Storage

    return S3Storage(**{**dict(options), "endpoint_url": public_url})
