"""The cloud-market dialect: Aliyun's API-market OCR products, as their stock demos call them.

The demo (reference/aliyun_market_ocr.md) posts JSON through urllib with no Content-Type (it
arrives labelled as a form), `configure` as JSON text, an `Authorization: APPCODE` key; it
takes any status but 200 for a failure and reads the reason from X-Ca-Error-Message. A product
takes two request formats:
- new: `{"image": "<base64 or URL>", "configure": {...} or "<JSON text>"}`;
- old: `{"inputs": [{"image": {"dataType": 50, "dataValue": ...}, "configure": {"dataType": 50,
  "dataValue": "<JSON text>"}}]}`, answered as `{"outputs": [{"outputLabel": "ocr_id",
  "outputMulti": {}, "outputValue": {"dataType": 50, "dataValue": "<the answer as JSON text>"}}]}`.

This module only translates (the body into a MarketCall, lines and cards into the products'
answers, errors into the header); market_views.py holds the products' endpoints, and
POST /api/ocr/ takes the new format with the API's own options (`from_market_style`).
"""

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response

from app.api.serializers import named, unknown_fields_error
from app.errors import InvalidInput

# The API's options a market-style body may carry to POST /api/ocr/.
CONFIGURE_KEYS = ("engine", "lang", "task", "side", "rotate", "upright", "charset", "format", "pdf_text")
HEADER_SHOWN = 500  # characters of the message in the header
DATA_TYPE = 50  # the old format's "text" data type, as every product's demo sends it


@dataclass(frozen=True)
class MarketCall:
    """One product request: the image (base64 or a URL), its configure, and which format it
    came in (the answer goes back in the same one)."""

    image: str
    configure: dict[str, Any]
    old_format: bool

    @property
    def image_fields(self) -> dict[str, str]:
        """The image as the API's fields (app.inputs.read_image): a URL or base64."""
        is_url = self.image.strip().lower().startswith(("http://", "https://"))
        return {"image_url" if is_url else "image_base64": self.image}


def parse_call(data: Any) -> MarketCall:
    """A product's body, in either format; anything else is a 400 naming what is wrong."""
    if not isinstance(data, Mapping):
        raise InvalidInput('The body is a JSON object: {"image": ..., "configure": ...}.', code="parse_error")
    if "inputs" in data:
        return _old_call(data)
    _known(data, ["image", "configure"])
    return MarketCall(_image(data.get("image")), configure_object(data.get("configure")), old_format=False)


def _old_call(data: Mapping) -> MarketCall:
    _known(data, ["inputs"])
    given = data["inputs"]
    if not isinstance(given, list) or len(given) != 1 or not isinstance(given[0], Mapping):
        raise InvalidInput("`inputs` is a list of one object: {image, configure}.", code="invalid_inputs")
    first = given[0]
    _known(first, ["image", "configure"])
    image, configure = first.get("image"), first.get("configure")
    if not isinstance(image, Mapping):
        raise InvalidInput(
            '`image` is {"dataType": 50, "dataValue": "<base64 or URL>"}.', code="missing_image"
        )
    if configure is not None and not isinstance(configure, Mapping):
        raise InvalidInput(
            '`configure` is {"dataType": 50, "dataValue": "<JSON text>"}.', code="invalid_configure"
        )
    value = configure.get("dataValue") if configure else None
    return MarketCall(_image(image.get("dataValue")), configure_object(value), old_format=True)


def _known(data: Mapping, known: list[str]) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise unknown_fields_error(unknown, known)


def _image(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Send the image as base64 or an http(s) URL in `image`.", code="missing_image")
    return value


def configure_object(configure: Any) -> dict[str, Any]:
    """`configure` as an object: the demo sends json.dumps(config); absent or null is {}."""
    if configure is None or configure == "":
        return {}
    if isinstance(configure, str):
        try:
            configure = json.loads(configure)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            raise InvalidInput("`configure` is not valid JSON.", code="invalid_configure") from None
    if not isinstance(configure, dict):
        raise InvalidInput("`configure` is a JSON object.", code="invalid_configure")
    return configure


def check_options(configure: Mapping, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(configure) - set(allowed))
    if unknown:
        raise serializers.ValidationError(
            {"configure": [f"Unknown option(s) {named(unknown)}; allowed: {', '.join(allowed)}."]},
            code="unknown_option",
        )


def answer(body: dict[str, Any], call: MarketCall) -> dict[str, Any]:
    """The product's answer in the format it was asked in."""
    if not call.old_format:
        return body
    value = {"dataType": DATA_TYPE, "dataValue": json.dumps(body, ensure_ascii=False)}
    return {"outputs": [{"outputLabel": "ocr_id", "outputMulti": {}, "outputValue": value}]}


def config_str(configure: Mapping) -> str:
    """The configure as the products echo it: compact JSON text."""
    return json.dumps(configure, ensure_ascii=False, separators=(",", ":"))


def request_id() -> str:
    """A request id in the products' form: the time, then a random part."""
    return f"{timezone.now():%Y%m%d%H%M%S}_{uuid.uuid4().hex}"


def general_ret(
    lines: list[dict], *, min_size: int = 0, output_prob: bool = True, output_keypoints: bool = False
) -> list[dict[str, Any]]:
    """The general-OCR product's `ret`: a word (a line) per item, with its rotated rectangle;
    lines lower than `min_size` pixels are left out, as that product's detector leaves them."""
    ret = []
    for line in lines:
        rect = rotated_rect(line["box"])
        if rect["height"] < min_size:
            continue
        item: dict[str, Any] = {"word": line["text"], "rect": rect}
        if output_prob:
            item["prob"] = line["score"]
        if output_keypoints:
            item["keypoints"] = [{"x": round(x), "y": round(y)} for x, y in line["box"]]
        ret.append(item)
    return ret


def rotated_rect(box: list[list[float]]) -> dict[str, int]:
    """A line's four corners (clockwise from its top-left) as the products' rect: `angle` the
    degrees its top edge turns clockwise, `width` and `height` its sides, `left` and `top` the
    top-left corner of the rectangle before it is turned about its centre (for level text,
    simply its top-left corner)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = box
    width, height = math.dist((x0, y0), (x1, y1)), math.dist((x1, y1), (x2, y2))
    centre_x, centre_y = (x0 + x1 + x2 + x3) / 4, (y0 + y1 + y2 + y3) / 4
    return {
        "left": round(centre_x - width / 2),
        "top": round(centre_y - height / 2),
        "width": round(width),
        "height": round(height),
        "angle": round(math.degrees(math.atan2(y1 - y0, x1 - x0))),
    }


def is_market_body(data: Any) -> bool:
    """The API's own body has no string `image` (there it is a file)."""
    return isinstance(data, Mapping) and isinstance(data.get("image"), str)


def from_market_style(data: Mapping) -> dict:
    """The market body as POST /api/ocr/'s fields: `configure`'s options, and the image as
    `image_url` or `image_base64`. Unknown keys, at either level, are refused."""
    _known(data, ["image", "configure"])
    try:
        configure = configure_object(data.get("configure"))
    except InvalidInput as exc:  # in POST /api/ocr/'s shape: the serializer's field error
        raise serializers.ValidationError({"configure": [exc.message]}, code="invalid") from None
    check_options(configure, CONFIGURE_KEYS)
    call = MarketCall(data["image"], configure, old_format=False)
    return {**configure, **call.image_fields}


def add_error_header(response: Response) -> None:
    """Market clients read the reason from X-Ca-Error-Message (every error of the API's)."""
    for name, value in error_header(response.data["error"]["message"]).items():
        response[name] = value


def error_header(message: str) -> dict[str, str]:
    """The header, for an error answered outside DRF too (app/middleware.py, app/handlers.py).
    The message may echo the client's input: a newline in it would be a BadHeaderError (500),
    so it is made printable, in the header's Latin-1."""
    printable = "".join(c if c.isprintable() else " " for c in message)
    return {"X-Ca-Error-Message": printable.encode("latin-1", "replace").decode("latin-1")[:HEADER_SHOWN]}
