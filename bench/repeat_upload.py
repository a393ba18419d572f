"""Latency of a repeat upload: the same bytes and options sent again are answered from the
earlier record without running an engine.

    .venv/bin/python bench/repeat_upload.py [--repeat 200] [--json PATH]

Prints the median and p95 of the first (real OCR) and the repeat uploads through the
in-process API (JWT auth, validation, hashing, the lookup, JSON). Not a test.
"""

import argparse
import base64
import statistics
import time
import uuid

import common
import inprocess

inprocess.setup("repeat")

from rest_framework.test import APIClient  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from app.engines import registry  # noqa: E402
from app.tests.factories import UserFactory  # noqa: E402
from app.tests.imaging import encode, english_lines, render  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    common.add_json_argument(parser)
    args = parser.parse_args()
    rows = []
    registry.warm_up()
    client = APIClient()
    user = UserFactory(username=f"bench-{uuid.uuid4().hex}")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    for engine, label in (
        ("tesseract", "10-line page"),
        ("rapidocr", "10-line page"),
        ("ddddocr", "captcha"),
    ):
        image = render(["k7mx3"], size=40) if engine == "ddddocr" else render(english_lines(10, seed=5))
        payload = {"image_base64": base64.b64encode(encode(image)).decode(), "engine": engine}
        started = time.perf_counter()
        first = client.post("/api/ocr/", payload, format="json")
        first_ms = (time.perf_counter() - started) * 1000
        assert first.status_code == 201, first.content
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            again = client.post("/api/ocr/", payload, format="json")
            times.append((time.perf_counter() - started) * 1000)
            assert again.status_code == 200, again.content
            assert again.json()["cached"], again.content
        median, p95 = statistics.median(times), percentile(times, 0.95)
        print(
            f"{engine:10} {label:13} first {first_ms:8.1f} ms   repeat median {median:6.2f} ms   "
            f"p95 {p95:6.2f} ms   ({args.repeat} repeats, {len(payload['image_base64'])} b64 chars)"
        )
        metric = f"{engine} {label}: repeat median"
        rows.append(common.row("repeat_upload", metric, median, "ms", "<= 15", median <= 15))
    common.write_rows(args.json, rows)


if __name__ == "__main__":
    main()
