"""Hand an owner-checked image to the client. Callers have already checked ownership.

Behind nginx, the app only names the file (X-Accel-Redirect to an `internal`
location) and nginx sends the bytes; without nginx, Django streams the file.
"""

import mimetypes

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse

from app.models import OcrRecord


def image_response(record: OcrRecord) -> HttpResponse:
    name = record.image.name
    if not name or not record.image.storage.exists(name):
        raise Http404("The image file is gone.")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if settings.OCR_MEDIA_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.OCR_MEDIA_ACCEL_REDIRECT.rstrip("/") + "/" + name
    else:
        response = FileResponse(record.image.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
