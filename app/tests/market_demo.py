# ruff: noqa: UP031, SIM108  (the demo as the market ships it)
"""The cloud market's stock Python 3 demo (the `get_img_base64` / `predict` template every
market OCR product page ships; ../shared/reference/aliyun_market_ocr.md), as the client under
test: only the address and the AppCode change. It posts through urllib without a Content-Type,
sends `configure` as JSON text, and takes any status but 200 for a failure."""

import base64
import json
import urllib.error
import urllib.request

ENCODING = "utf-8"


def get_img_base64(data: bytes) -> str:
    """The demo reads a file; the tests hand in its bytes."""
    return base64.b64encode(data).decode(ENCODING)


def predict(url, appcode, img_base64, kv_config, old_format):
    if not old_format:
        param = {}
        param["image"] = img_base64
        if kv_config is not None:
            param["configure"] = json.dumps(kv_config)
        body = json.dumps(param)
    else:
        param = {}
        pic = {}
        pic["dataType"] = 50
        pic["dataValue"] = img_base64
        param["image"] = pic

        if kv_config is not None:
            conf = {}
            conf["dataType"] = 50
            conf["dataValue"] = json.dumps(kv_config)
            param["configure"] = conf

        inputs = {"inputs": [param]}
        body = json.dumps(inputs)

    headers = {"Authorization": "APPCODE %s" % appcode}
    request = urllib.request.Request(url=url, headers=headers, data=str.encode(body))
    try:
        response = urllib.request.urlopen(request, timeout=60)
        return response.code, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def demo(url, appcode, img_data, config, is_old_format):
    """The demo's main, returning what it prints: the parsed result on 200, else the status,
    the header's message and the body."""
    stat, header, content = predict(url, appcode, get_img_base64(img_data), config, is_old_format)
    if stat != 200:
        return stat, header.get("x-ca-error-message"), content
    if is_old_format:
        result_str = json.loads(content)["outputs"][0]["outputValue"]["dataValue"]
    else:
        result_str = content
    return stat, header, json.loads(result_str)
