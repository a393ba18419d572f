"""The non-JSON answers of POST /api/ocr/ (`format=text|hocr|tsv`)."""

from django.http import HttpResponse

from app.models import OcrRecord

CONTENT_TYPES = {
    "text": "text/plain; charset=utf-8",
    "hocr": "text/html; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
}


def rendered_result(record: OcrRecord, output: str, status: int = 200) -> HttpResponse:
    """`status` as the JSON answer's (services.Recognition.http_status): 200 reused, 201 new."""
    body = record.text if output == "text" else record.extra[output]
    response = HttpResponse(body, content_type=CONTENT_TYPES[output], status=status)
    if record.pk:
        response["X-Record-Id"] = str(record.pk)
    if output == "hocr":
        response["Content-Security-Policy"] = "sandbox"  # markup we did not write: never run it
    return response
