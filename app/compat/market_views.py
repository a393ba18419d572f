"""The cloud market's OCR products, at their own paths (app/compat/market.py translates):

- `POST /rest/160601/ocr/ocr_idcard.json`: a Chinese resident ID card, `configure: {"side":
  "face"|"back"}`, answered with the card's fields (app/idcard reads it);
- `POST /api/predict/ocr_general`: general text, answered as `{"request_id", "ret": [{"word",
  "rect", "prob"}], "success"}`, with that product's options.

Each answers 200 on success, in the format it was asked in; a failure is a 4xx/5xx with the
reason in X-Ca-Error-Message (app/api/errors.py) and a short body. Each call is a record in
the key owner's history (task idcard or document), as POST /api/ocr/ would make it.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from app import inputs, pdf, services
from app.api.parsers import AnyTypeJSONParser
from app.api.serializers import ErrorSerializer
from app.compat import market
from app.compat.access import DialectView
from app.engines.registry import CARD_SIDES
from app.errors import InvalidInput


class IdCardConfigure(serializers.Serializer):
    side = serializers.ChoiceField(choices=CARD_SIDES, default="face")


class GeneralConfigure(serializers.Serializer):
    """The general-OCR product's documented options. `min_size` is only applied when sent:
    by default every line POST /api/ocr/ reads is in the answer."""

    min_size = serializers.IntegerField(min_value=0, max_value=10_000, default=0)
    output_prob = serializers.BooleanField(default=True)
    output_keypoints = serializers.BooleanField(default=False)
    skip_detection = serializers.BooleanField(default=False)
    without_predicting_direction = serializers.BooleanField(default=False)


def _configured(serializer_class: type[serializers.Serializer], call: market.MarketCall) -> dict[str, Any]:
    market.check_options(call.configure, tuple(serializer_class().fields))
    serializer = serializer_class(data=call.configure)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


PRODUCT_SCHEMA = {
    "tags": ["compat: cloud market"],
    "request": {"application/json": OpenApiTypes.OBJECT},
    "responses": {
        200: OpenApiResponse(
            OpenApiTypes.OBJECT, description="The product's answer (or, old format, `outputs`)."
        ),
        **dict.fromkeys((400, 401, 413, 503, 504), ErrorSerializer),
    },
}


class MarketProductView(DialectView, APIView):
    """A product: its body is JSON whatever the Content-Type says (the demo sends none)."""

    parser_classes = [AnyTypeJSONParser]

    def image(self, call: market.MarketCall) -> tuple[bytes, str]:
        """The call's image; the products read images, so a PDF is refused before any work."""
        data, file_name = inputs.read_image(call.image_fields)
        if pdf.is_pdf(data):
            raise InvalidInput(
                "This product reads an image; send the page as an image.", code="unsupported_input"
            )
        return data, file_name

    def reply(self, body: dict[str, Any], call: market.MarketCall) -> Response:
        response = Response(market.answer(body, call))
        response["X-Ca-Request-Id"] = body["request_id"]
        return response


class IdCardView(MarketProductView):
    @extend_schema(
        **PRODUCT_SCHEMA,
        description='Aliyun market ID card OCR: `{"image", "configure": {"side": "face"|"back"}}`.',
    )
    def post(self, request):
        call = market.parse_call(request.data)
        side = _configured(IdCardConfigure, call)["side"]
        data, file_name = self.image(call)
        record = services.recognize(
            owner=self.owner(request),
            data=data,
            file_name=file_name,
            engine="rapidocr",
            task="idcard",
            side=side,
        ).record
        body = {
            **record.extra["idcard"],
            "config_str": market.config_str(call.configure),
            "request_id": market.request_id(),
        }
        return self.reply(body, call)


class GeneralView(MarketProductView):
    @extend_schema(
        **PRODUCT_SCHEMA,
        description="Aliyun market general OCR: `configure` takes min_size, output_prob, "
        "output_keypoints, skip_detection, without_predicting_direction.",
    )
    def post(self, request):
        call = market.parse_call(request.data)
        options = _configured(GeneralConfigure, call)
        data, file_name = self.image(call)
        # skip_detection: the image is one line; RapidOCR reads it whole.
        skip = options["skip_detection"]
        record = services.recognize(
            owner=self.owner(request),
            data=data,
            file_name=file_name,
            engine="rapidocr" if skip else "",
            task="line" if skip else "",
            upright=options["without_predicting_direction"] and not skip,
        ).record
        ret = market.general_ret(
            record.lines,
            min_size=options["min_size"],
            output_prob=options["output_prob"],
            output_keypoints=options["output_keypoints"],
        )
        return self.reply({"request_id": market.request_id(), "ret": ret, "success": True}, call)
