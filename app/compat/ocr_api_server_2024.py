"""Dialect of today's ocr_api_server: sml2h3's 2024 rewrite on FastAPI (the repository is
now sml2h3/ddddocr-fastapi; app/main.py, app/services.py, app/models.py there).

Requests are forms, multipart or urlencoded, as its `File(None)` / `Form(...)` parameters
read them; a file wins over base64 when both come (`file or image` there):
- `POST /ocr`: file `file` or base64 `image` (a `data:` prefix allowed); `probability`,
  `charsets` (the characters allowed, as ddddocr's set_ranges takes them), `png_fix`.
- `POST /slide_match`: `target_file` or `target`, `background_file` or `background`;
  `simple_target`.
- `POST /detection`: `file` or `image`.

Every answer is its APIResponse, `{"code", "message", "data"}`:
- success: HTTP 200, `{"code": 200, "message": "Success", "data": ...}`; data is the text
  (with probability=true ddddocr's `{"charsets", "probability"}`), the slide's
  `{"target_x", "target_y", "target": [x1, y1, x2, y2]}` (as the 2022 dialect gives it),
  or the boxes `[[x1, y1, x2, y2], ...]`.
- no image: HTTP 200, code 400, its own message, `data` null.
- anything failing after that check (bad base64, not an image, the engine): HTTP 200,
  code 500, as its one `except Exception` answers; bad base64 reads "400: Invalid base64
  string", str() of the HTTPException it raises inside that try.
- a field of the wrong type (a boolean that is none, text where the file goes): HTTP 422,
  code 422, where FastAPI's validation answers 422 before the endpoint runs.
- what that service has no notion of (the API key, size limits, rate limits and quotas, the
  engine's timeout): their own HTTP status (401, 413, 429, 503, 504), code the same.
The API's error code is in `X-Error-Code`.

`png_fix` (paste a transparent PNG on white) is what decoding does to every image here
(app/images.py flattens transparency onto paper that contrasts with it): accepted, and
nothing more to do. Unlike there, `charsets` applies to one request only (that service
sets it on its one shared model, for every later request too), and restricts each step's
choice rather than dropping what falls outside (ddddocr 1.6.1's set_ranges).
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from app import inputs, services
from app.compat import rapidocr_api
from app.compat.access import DialectView
from app.compat.ocr_api_server import Base64Text, api_error, validated, with_error_headers
from app.errors import InvalidInput

NO_IMAGE = "Either file or image must be provided"
NO_SLIDE_IMAGES = "Both target and background must be provided"
BAD_BASE64 = "400: Invalid base64 string"
TAGS = ["compat: ocr_api_server"]


class FormBoolean(serializers.BooleanField):
    """A form boolean as FastAPI reads one (pydantic): true/false, 1/0, yes/no, on/off, t/f,
    y/n in any case; absent or empty is false."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, default=False, **kwargs)

    def to_internal_value(self, data: Any) -> bool:
        return super().to_internal_value(data.lower() if isinstance(data, str) else data)


class ImageFields(serializers.Serializer):
    file = serializers.FileField(required=False, allow_empty_file=True)
    image = Base64Text(help_text="The image as base64; a data: URI prefix is allowed.")


class OcrFields(ImageFields):
    probability = FormBoolean(help_text='data as {"charsets": [...], "probability": [[...] per step]}')
    charsets = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The characters allowed (each character itself: `3` is the digit, not a preset).",
    )
    png_fix = FormBoolean(help_text="Accepted: transparency is always flattened here.")


class SlideFields(serializers.Serializer):
    target_file = serializers.FileField(required=False, allow_empty_file=True)
    background_file = serializers.FileField(required=False, allow_empty_file=True)
    target = Base64Text()
    background = Base64Text()
    simple_target = FormBoolean(help_text="The piece is a plain crop: match pixels, not edges.")


class AnswerSerializer(serializers.Serializer):
    """Its APIResponse: every answer, success or error."""

    code = serializers.IntegerField()
    message = serializers.CharField()
    data = serializers.JSONField(allow_null=True)


def schema(fields: type[serializers.Serializer], description: str) -> dict[str, Any]:
    return {
        "tags": TAGS,
        "request": {"multipart/form-data": fields, "application/x-www-form-urlencoded": fields},
        "responses": {
            200: OpenApiResponse(AnswerSerializer, description="code 200, or 400/500 for bad input"),
            **dict.fromkeys((401, 413, 422, 429, 503, 504), AnswerSerializer),
        },
        "description": description,
    }


def answer_status(exc: Exception, status: int, code: str) -> tuple[int, int]:
    """(HTTP status, code in the body) for an error the API answers with `status`."""
    if code == "missing_image":
        return 200, 400
    if isinstance(exc, exceptions.ValidationError):
        return 422, 422
    if status in (400, 422) or code == "engine_failed":
        return 200, 500
    return status, status


class OcrApiServer2024View(DialectView, APIView):
    """Shared decoding and answering for the 2024 paths."""

    parser_classes = [MultiPartParser, FormParser]

    def reply(self, data: Any) -> Response:
        return Response({"code": 200, "message": "Success", "data": data})

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)  # the status and message the API would give
        error = api_error(response)
        code = error.get("code", "")
        status, answer_code = answer_status(exc, response.status_code, code)
        message = BAD_BASE64 if code == "invalid_base64" else error.get("message", "")
        body = Response({"code": answer_code, "message": message, "data": None}, status=status)
        return with_error_headers(body, response)

    def image(self, fields: dict[str, Any], file_field: str, base64_field: str) -> tuple[bytes, str]:
        if (upload := fields.get(file_field)) is not None:
            return inputs.read_upload(upload)
        return inputs.read_base64(fields[base64_field]), ""


def has_image(fields: dict[str, Any], file_field: str, base64_field: str) -> bool:
    return fields.get(file_field) is not None or bool(fields.get(base64_field))


class OcrView(OcrApiServer2024View):
    @extend_schema(exclude=True)  # documented with rapidocr_api's at /ocr (OcrPathView)
    def post(self, request):
        fields = validated(OcrFields, request.data)
        if not has_image(fields, "file", "image"):
            raise InvalidInput(NO_IMAGE, code="missing_image")
        data, file_name = self.image(fields, "file", "image")
        charset = fields.get("charsets") or ""
        if len(charset) == 1:  # one character there, never one of our presets (0-7): the same set
            charset *= 2
        owner = self.owner(request)
        record = services.recognize(
            owner=owner, data=data, file_name=file_name, engine="ddddocr", task="text", charset=charset
        ).record
        if fields["probability"]:
            return self.reply(services.classification_probability(data=data, charset=charset))
        return self.reply(record.text)


class SlideMatchView(OcrApiServer2024View):
    @extend_schema(**schema(SlideFields, "Slider captcha: where the piece fits in the background."))
    def post(self, request):
        fields = validated(SlideFields, request.data)
        if not all(has_image(fields, f"{name}_file", name) for name in ("target", "background")):
            raise InvalidInput(NO_SLIDE_IMAGES, code="missing_image")
        target, _ = self.image(fields, "target_file", "target")
        background, _ = self.image(fields, "background_file", "background")
        simple = fields["simple_target"]
        found = services.solve_slide(target=target, background=background, simple_target=simple)
        return self.reply({key: found[key] for key in ("target_x", "target_y", "target")})


class DetectionView(OcrApiServer2024View):
    @extend_schema(**schema(ImageFields, "Boxes of the characters or icons, [x1, y1, x2, y2] each."))
    def post(self, request):
        fields = validated(ImageFields, request.data)
        if not has_image(fields, "file", "image"):
            raise InvalidInput(NO_IMAGE, code="missing_image")
        data, file_name = self.image(fields, "file", "image")
        record = services.recognize(
            owner=self.owner(request), data=data, file_name=file_name, engine="ddddocr", task="detect"
        ).record
        return self.reply(record.extra.get("boxes"))


# --- POST /ocr: rapidocr_api's clients and today's ocr_api_server's share the path ----------

RAPIDOCR_FIELDS = {"image_file", "image_data"}
OCR_API_SERVER_FIELDS = {"file", "image"}


class NoImageView(DialectView, APIView):
    """/ocr with neither dialect's fields: the API's 400, as /ocr answered before (rapidocr_api's
    clients get the shape they always got, and the message names both dialects' fields)."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(exclude=True)
    def post(self, request):
        raise InvalidInput(
            "Send the image as multipart `image_file` or base64 `image_data` (rapidocr_api), "
            "or as multipart `file` or base64 `image` (ocr_api_server).",
            code="missing_image",
        )


class OcrPathFields(rapidocr_api.RapidOcrApiRequestSerializer, OcrFields):
    """Either dialect's fields: rapidocr_api's image_file / image_data, or ocr_api_server's."""


_RAPIDOCR = rapidocr_api.RapidOcrApiView.as_view()
_OCR_API_SERVER = OcrView.as_view()
_NO_IMAGE = NoImageView.as_view()


class OcrPathView(APIView):
    """POST /ocr: handed to the dialect whose field names the form carries. rapidocr_api's
    fields win (its clients were here first); `file` or `image` alone is ocr_api_server's.

    Only the form is read here: the dialect's own view authenticates, throttles and answers
    (in its shape), on the same request, whose parsed form Django keeps. A body that is no
    form is refused here in the API's shape, as rapidocr_api's view did."""

    # The dialect's view checks the key and counts the request; these show it in the schema.
    authentication_classes = DialectView.authentication_classes
    permission_classes = DialectView.permission_classes
    throttle_classes: list = []
    parser_classes = [MultiPartParser, FormParser]

    def perform_authentication(self, request) -> None:
        """Left to the dialect's view: a refused key is answered in that dialect's shape."""

    def check_permissions(self, request) -> None:
        """Left to the dialect's view, as authentication is."""

    @extend_schema(
        tags=["compat: rapidocr_api", *TAGS],
        request={"multipart/form-data": OcrPathFields, "application/x-www-form-urlencoded": OcrPathFields},
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="rapidocr_api's lines keyed by number for image_file / image_data; "
                'ocr_api_server\'s {"code", "message", "data"} for file / image',
            ),
            **dict.fromkeys((400, 401, 413, 415, 422, 429, 503, 504), OpenApiTypes.OBJECT),
        },
        description="rapidocr_api (RapidOCR) or ocr_api_server 2024 (ddddocr), by the fields sent.",
    )
    def post(self, request):
        names = set(request.data)
        if names & RAPIDOCR_FIELDS:
            view = _RAPIDOCR
        elif names & OCR_API_SERVER_FIELDS:
            view = _OCR_API_SERVER
        else:
            view = _NO_IMAGE
        return view(request._request)
