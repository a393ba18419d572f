"""The non-JSON answers of POST /api/ocr/ (`format=text|hocr|tsv`)."""

from django.http import HttpResponse

from app.models import OcrRecord

CONTENT_TYPES = {
    "text": "text/plain; charset=utf-8",
    "hocr": "text/html; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
}


def rendered_result(record: OcrRecord, output: str) -> HttpResponse:
    body = record.text if output == "text" else record.extra[output]
    # As the JSON answer: 200 for an earlier record reused (the only sign of it here), 201 for a new one.
    status = 200 if getattr(record, "cached", False) else 201
    response = HttpResponse(body, content_type=CONTENT_TYPES[output], status=status)
    if record.pk:
        response["X-Record-Id"] = str(record.pk)
    if output == "hocr":
        response["Content-Security-Policy"] = "sandbox"  # markup we did not write: never run it
    return response
