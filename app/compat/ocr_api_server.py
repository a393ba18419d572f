"""Dialect of ocr_api_server (a ddddocr captcha server).

- `GET /ping` -> `pong`
- `POST /{ocr|det}/{file|b64}[/{json|text}]`: `file` takes multipart `image`; `b64` takes
  the raw body as base64 text, or a JSON body `{"typeid": "1"|"2", "image": "<base64>"}`
  (typeid 2: arithmetic captcha, answers the computed value).
- `POST /slide/{match|compare}/{file|b64}[/{json|text}]`: files `target_img` and `bg_img`,
  or for b64 a base64-encoded JSON `{"target_img", "bg_img"}` (each base64).
- `json` answers `{"status": 200, "result": ..., "msg": ""}`, errors
  `{"status": 404, "result": "", "msg": "<reason>"}`; `text` (the default) answers the bare
  result as that service printed it, and an empty body on error. Errors also carry the API's
  error code in `X-Error-Code`.

Fields are checked before use (`B64Fields`, `TypeIdFields`): a wrong JSON type or an unknown
typeid is a 400, never an exception inside the adapter.
"""

import binascii
import json
from base64 import b64decode
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from app import inputs, services
from app.api.serializers import Base64Field
from app.compat.access import DialectView
from app.engines.ddddocr import SLIDE_ALGORITHMS
from app.errors import InvalidInput

TYPEID_TASKS = {"1": "text", "2": "math"}
SCHEMA = {
    "tags": ["compat: ocr_api_server"],
    "request": {"multipart/form-data": None, "text/plain": None, "application/json": None},
    "responses": {
        (200, "text/plain"): OpenApiResponse(description="the bare result, or JSON with ret_type=json"),
        **{
            (code, "text/plain"): OpenApiResponse(description="empty (ret_type=json: {status, result, msg})")
            for code in (400, 401, 404, 413, 422, 503, 504)
        },
    },
}
# The path's parts, as the URL patterns (app/compat/urls.py) accept them.
OPT = OpenApiParameter("opt", str, OpenApiParameter.PATH, enum=["ocr", "det"])
ALGORITHM = OpenApiParameter("algorithm", str, OpenApiParameter.PATH, enum=SLIDE_ALGORITHMS)
IMG_TYPE = OpenApiParameter("img_type", str, OpenApiParameter.PATH, enum=["file", "b64"])


class Base64Text(Base64Field):
    """Base64 text, and only a JSON string: a number or a list is not an image by accident.
    Its length is bounded where it is decoded (inputs.read_base64: the upload limit, 413)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, allow_null=True, allow_blank=True, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class B64Fields(serializers.Serializer):
    """The images a b64 JSON body may hold; other keys are ignored, as the service did."""

    image = Base64Text()
    target_img = Base64Text()
    bg_img = Base64Text()


class TypeIdField(serializers.ChoiceField):
    """ChoiceField would take str(value): a file named "2", or a list's text, is no typeid."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            self.fail("invalid_choice")
        return super().to_internal_value(data)


class TypeIdFields(serializers.Serializer):
    """typeid, from the JSON body or the form: "1" (or 1) reads text, "2" solves arithmetic;
    absent, null or empty is 1. The choice bounds it, and the message does not echo it."""

    typeid = TypeIdField(
        choices=list(TYPEID_TASKS),
        required=False,
        allow_null=True,
        allow_blank=True,
        error_messages={"invalid_choice": "Unknown typeid: 1 reads text, 2 solves arithmetic."},
    )


def validated(serializer_class: type[serializers.Serializer], data: Mapping) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class OcrApiServerView(DialectView, APIView):
    """Shared request decoding and response shaping for every ocr_api_server endpoint."""

    parser_classes = [MultiPartParser, FormParser]

    def reply(self, result: Any) -> HttpResponse:
        if self.kwargs.get("ret_type") == "json":
            return Response({"status": 200, "result": result, "msg": ""})
        return HttpResponse(str(result).strip(), content_type="text/plain; charset=utf-8")

    def handle_exception(self, exc: Exception) -> HttpResponse:
        response = super().handle_exception(exc)  # the status and message the API would give
        error = api_error(response)
        if self.kwargs.get("ret_type") != "json":
            body = HttpResponse("", status=response.status_code, content_type="text/plain; charset=utf-8")
        else:
            message = error.get("message", "")
            body = Response({"status": 404, "result": "", "msg": message}, status=response.status_code)
        return with_error_headers(body, response)

    @cached_property
    def body_json(self) -> dict[str, Any] | None:
        """The b64 body's JSON object, None when the body is the bare base64 of one image."""
        return _body_json(self.request)

    def fields(self, request) -> Mapping:
        """Where the other fields come from: the form (file), or the b64 body's JSON object."""
        if self.kwargs["img_type"] == "file":
            return request.data
        return self.body_json or {}

    def image(self, request, field: str) -> tuple[bytes, str]:
        if self.kwargs["img_type"] == "file":
            upload = request.FILES.get(field)
            if upload is None:
                raise InvalidInput(f"Send the image as the multipart file `{field}`.", code="missing_image")
            return inputs.read_upload(upload)
        if self.body_json is None:
            return inputs.read_base64(request.body.decode("latin-1")), ""
        encoded = validated(B64Fields, {field: self.body_json.get(field)}).get(field)  # only what is read
        if not encoded:
            raise InvalidInput(f"Send the image as base64 in the JSON field `{field}`.", code="missing_image")
        return inputs.read_base64(encoded), ""


def api_error(response: HttpResponse) -> dict[str, Any]:
    """The API's {"code", "message"} in an error response (app/api/errors.py), or {}."""
    data = getattr(response, "data", None)
    return data.get("error", {}) if isinstance(data, dict) else {}


def with_error_headers(body: HttpResponse, response: HttpResponse) -> HttpResponse:
    """A dialect's error body with what clients act on from the API's error: when to retry,
    how to authenticate, and the API's error code (X-Error-Code)."""
    for header in ("WWW-Authenticate", "Retry-After"):
        if header in response:
            body[header] = response[header]
    if code := api_error(response).get("code"):
        body["X-Error-Code"] = code
    return body


def _body_json(request) -> dict[str, Any] | None:
    """The b64 body as a JSON object: sent as JSON text, or as base64 of JSON text (slide)."""
    raw = request.body.strip()
    # Base64 of a JSON object starts with "ey" ("{" and a quote); an image's does not.
    for candidate in (raw, _maybe_b64(raw) if raw.startswith(b"ey") else b""):
        if candidate.startswith(b"{"):
            try:
                parsed = json.loads(candidate)
            except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
                raise InvalidInput("The body is not valid JSON.", code="parse_error") from exc
            if isinstance(parsed, dict):
                return parsed
    return None


def _maybe_b64(raw: bytes) -> bytes:
    try:
        return b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return b""


class PingView(APIView):
    """Liveness, as old clients probe it: open to all, like the original."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(tags=["compat: ocr_api_server"], responses={(200, "text/plain"): str})
    def get(self, request):
        return HttpResponse("pong", content_type="text/plain; charset=utf-8")


class RecognizeView(OcrApiServerView):
    @extend_schema(
        **SCHEMA,
        parameters=[OPT, IMG_TYPE],
        description="ocr: captcha text (typeid 2: the arithmetic answer); det: boxes.",
    )
    def post(self, request, opt: str, img_type: str, ret_type: str = "text"):
        if opt == "det":
            task = "detect"
        else:
            task = TYPEID_TASKS[validated(TypeIdFields, self.fields(request)).get("typeid") or "1"]
        data, file_name = self.image(request, "image")
        record = services.recognize(
            owner=self.owner(request), data=data, file_name=file_name, engine="ddddocr", task=task
        ).record
        result = {
            "text": record.text,
            "math": record.extra.get("result"),
            "detect": record.extra.get("boxes"),
        }
        return self.reply(result[task])


class SlideView(OcrApiServerView):
    @extend_schema(
        **SCHEMA,
        parameters=[ALGORITHM, IMG_TYPE],
        description="Slider captcha: where the piece fits in the background.",
    )
    def post(self, request, algorithm: str, img_type: str, ret_type: str = "text"):
        target, _ = self.image(request, "target_img")
        background, _ = self.image(request, "bg_img")
        found = services.solve_slide(target=target, background=background, algorithm=algorithm)
        if algorithm == "compare":  # ddddocr's own shape for each algorithm
            return self.reply({"target": [found["target_x"], found["target_y"]]})
        return self.reply({key: found[key] for key in ("target_x", "target_y", "target")})
