"""Per-engine latency and accuracy on generated images, raw engine vs the full API path.

    .venv/bin/python bench/engines.py [--repeat 7] [--json PATH]

Prints, per engine and image: median latency of the raw engine call, of the
in-process API call (auth, validation, decode, OCR, file + row write, JSON), their
ratio, and the character error rate of each. Same process, same images,
alternating, models warmed first. Not a test: it prints figures.
"""

import argparse
import base64
import os
import resource
import statistics
import time
import uuid

import common
import inprocess

inprocess.setup("engines")

from PIL import Image  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from app.engines import registry  # noqa: E402
from app.engines.base import Picture  # noqa: E402
from app.tests.factories import UserFactory  # noqa: E402
from app.tests.imaging import CJK_FONT, cer, chinese_lines, encode, english_lines, render  # noqa: E402


def cases() -> list[tuple[str, str, str, Image.Image, str]]:
    en10 = english_lines(10, seed=1)
    zh5 = chinese_lines(5, chars=12, seed=1)
    crop = ["Total amount 1234.56"]
    page_lines = english_lines(40, seed=11, words=6)
    page = Image.new("RGB", (3000, 4000), "white")
    page.paste(render(page_lines, size=48, pad=0), (150, 150))
    return [
        ("tesseract", "eng", "10-line English", render(en10), "\n".join(en10)),
        ("tesseract", "chi_sim", "5-line Chinese", render(zh5, size=40, font=CJK_FONT), "".join(zh5)),
        ("rapidocr", "", "10-line English", render(en10), "\n".join(en10)),
        ("rapidocr", "", "5-line Chinese", render(zh5, size=40, font=CJK_FONT), "".join(zh5)),
        ("rapidocr", "", "one-line crop", render(crop, size=24), crop[0]),
        ("rapidocr", "", "3000x4000 page", page, "\n".join(page_lines)),
        ("ddddocr", "", "captcha", render(["k7mx3"], size=40, pad=10), "k7mx3"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    common.add_json_argument(parser)
    args = parser.parse_args()
    rows = []
    client = APIClient()
    client.force_authenticate(UserFactory(username=f"bench-{uuid.uuid4().hex}"))
    registry.warm_up()
    print(
        f"{'engine':10} {'image':16} {'raw ms':>8} {'api ms':>8} {'ratio':>6} {'raw CER':>8} {'api CER':>8}"
    )
    for name, lang, label, image, truth in cases():
        engine, options = registry.select(engine=name, lang=lang)
        # force: every repeat really reads the image (the same upload is otherwise answered
        # from the first record, see bench/repeat_upload.py).
        payload = {
            "image_base64": base64.b64encode(encode(image)).decode(),
            "engine": name,
            "lang": lang,
            "force": True,
        }
        raw_times, api_times = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            raw_text = engine.recognize(Picture(image.copy()), options).text
            raw_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = client.post("/api/ocr/", payload, format="json")
            api_times.append(time.perf_counter() - started)
            assert response.status_code == 201, response.content
        raw, api = statistics.median(raw_times) * 1000, statistics.median(api_times) * 1000
        api_text = response.json()["text"]
        lower = name == "ddddocr"  # captcha case is not part of the answer
        raw_cer = cer(truth.lower() if lower else truth, raw_text.lower() if lower else raw_text)
        api_cer = cer(truth.lower() if lower else truth, api_text.lower() if lower else api_text)
        print(f"{name:10} {label:16} {raw:8.1f} {api:8.1f} {api / raw:6.2f} {raw_cer:8.3f} {api_cer:8.3f}")
        case = f"{name} {label}"
        rows += [
            common.row("engines", f"{case}: in-process API/raw", api / raw, "ratio"),
            common.row(
                "engines", f"{case}: API CER", api_cer, "CER", f"<= raw {raw_cer:.3f}", api_cer <= raw_cer
            ),
        ]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    threads = os.environ.get("OCR_ENGINE_THREADS", "0 (library default)")
    print(f"peak RSS {rss:.0f} MB; OCR_ENGINE_THREADS={threads}")
    common.write_rows(args.json, rows)


if __name__ == "__main__":
    main()
