"""The cloud-market dialect (an API gateway's OCR listing) on POST /api/ocr/.

Its clients send {"image": "<base64 or URL>", "configure": {engine, lang, ...}} with an
APPCODE key, and read an error's reason from the X-Ca-Error-Message header. This module
only translates: the body into the API's own fields, an error into that header.
"""

import json
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.response import Response

from app.api.serializers import named, unknown_fields_error

CONFIGURE_KEYS = ("engine", "lang", "task", "rotate", "charset", "format")
HEADER_SHOWN = 500  # characters of the message in the header


def is_market_body(data: Any) -> bool:
    """The API's own body has no string `image` (there it is a file)."""
    return isinstance(data, Mapping) and isinstance(data.get("image"), str)


def from_market_style(data: Mapping) -> dict:
    """The market body as the API's fields: `configure`'s options, and the image as
    `image_url` or `image_base64`. Unknown keys, at either level, are refused."""
    unknown = sorted(set(data) - {"image", "configure"})
    if unknown:
        raise unknown_fields_error(unknown, ["image", "configure"])
    image, configure = data["image"], data.get("configure") or {}
    if isinstance(configure, str):  # the market's own demo sends json.dumps(config)
        try:
            configure = json.loads(configure)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            raise serializers.ValidationError({"configure": ["Not valid JSON."]}, code="invalid") from None
    if not isinstance(configure, dict):
        raise serializers.ValidationError({"configure": ["Expected an object."]}, code="invalid")
    unknown = sorted(set(configure) - set(CONFIGURE_KEYS))
    if unknown:
        raise serializers.ValidationError(
            {"configure": [f"Unknown option(s) {named(unknown)}; allowed: {', '.join(CONFIGURE_KEYS)}."]},
            code="unknown_option",
        )
    is_url = image.strip().lower().startswith(("http://", "https://"))
    return {**configure, "image_url" if is_url else "image_base64": image}


def add_error_header(response: Response) -> None:
    """Market clients read the reason from X-Ca-Error-Message. The message may echo the
    client's input: a newline in it would be a BadHeaderError (500), so it is made printable."""
    message = "".join(c if c.isprintable() else " " for c in response.data["error"]["message"])
    response["X-Ca-Error-Message"] = message.encode("latin-1", "replace").decode("latin-1")[:HEADER_SHOWN]
