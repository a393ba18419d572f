"""Dialect of rapidocr_api (RapidOCR's FastAPI server): `POST /ocr`.

Request: multipart `image_file`, or form field `image_data` holding base64.
Response: `{"0": {"rec_txt": str, "dt_boxes": [[x, y] x4], "score": "0.87"}, ...}`,
the score as a string as that service sends it, and `{}` when there is no text.
Errors are the API's `{"error": {"code", "message"}}`: that service documents none.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from app import inputs, services
from app.api.serializers import Base64Field, ErrorSerializer
from app.compat.access import DialectView
from app.errors import InvalidInput

RAPIDOCR_API_RESPONSE = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='One entry per line: {"0": {"rec_txt": str, "dt_boxes": [[x, y] x4], "score": "0.87"}, ...}',
)


class RapidOcrApiRequestSerializer(serializers.Serializer):
    """The two fields the service reads; a text where the file goes, or a file where the text
    goes, is a 400. Other fields (use_det, ...) are ignored, as our engine decides those."""

    image_file = serializers.FileField(required=False, allow_empty_file=True)
    # Bounded where it is decoded (inputs.read_base64: the upload limit, 413).
    image_data = Base64Field(required=False, allow_blank=True, trim_whitespace=False)


class RapidOcrApiView(DialectView, APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=["compat: rapidocr_api"],
        request={"multipart/form-data": RapidOcrApiRequestSerializer},
        responses={200: RAPIDOCR_API_RESPONSE, **dict.fromkeys((400, 401, 413, 503, 504), ErrorSerializer)},
        description="rapidocr_api compatible: RapidOCR on one image, keyed by line number.",
    )
    def post(self, request):
        fields = RapidOcrApiRequestSerializer(data=request.data)
        fields.is_valid(raise_exception=True)
        if upload := fields.validated_data.get("image_file"):
            data, file_name = inputs.read_upload(upload)
        elif encoded := fields.validated_data.get("image_data"):
            data, file_name = inputs.read_base64(encoded), ""
        else:
            raise InvalidInput(
                "Send the image as multipart `image_file` or base64 `image_data`.", code="missing_image"
            )
        record = services.recognize(
            owner=self.owner(request), data=data, file_name=file_name, engine="rapidocr"
        ).record
        return Response(
            {
                str(i): {"rec_txt": line["text"], "dt_boxes": line["box"], "score": str(line["score"])}
                for i, line in enumerate(record.lines)
            }
        )
