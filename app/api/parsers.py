"""DRF's JSON parser, with a body nested too deeply to parse refused as a 400 like any other
malformed JSON (the standard library raises RecursionError there, which DRF lets through as a 500),
and a body of more top-level keys than any request has fields refused before validation: 200,000
unknown keys once cost seconds of CPU and a 27 MB error naming each one."""

import io

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# No request takes more than a dozen fields; Django's own cap on form fields is 1,000.
MAX_FIELDS = 100


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        check_field_count(data)
        return data


def check_field_count(data) -> None:
    """A 400 `too_many_fields` for an object of more than MAX_FIELDS keys."""
    if isinstance(data, dict) and len(data) > MAX_FIELDS:
        raise ParseError(
            f"The body has {len(data)} fields; a request takes at most {MAX_FIELDS}.",
            code="too_many_fields",
        )


class AnyTypeJSONParser(JSONParser):
    """JSON whatever the declared Content-Type: the cloud market's stock demo posts its JSON
    through urllib with none, so it arrives labelled application/x-www-form-urlencoded."""

    media_type = "*/*"


class FormOrJSONParser(parsers.FormParser):
    """A form, or a JSON object labelled as one (that demo's body, sent to POST /api/ocr/):
    read as a form, it was one field named after the whole body."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        if body.lstrip()[:1] == b"{":
            return JSONParser().parse(io.BytesIO(body), "application/json", parser_context)
        return super().parse(io.BytesIO(body), media_type, parser_context)
