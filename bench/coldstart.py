"""Cold start: from launching `./start.sh serve` to the first successful OCR answer.

    .venv/bin/python bench/coldstart.py [--repeat 3] [--quick] [--json PATH]

Each start is a fresh deployment on loopback (app/tests/stack.py): a new SQLite database and
media folder, the virtual environment already installed, uWSGI with one worker per core
(the production default). From the moment start.sh is launched, a client polls every 50 ms:
`/api/health/` until it answers 200, then it signs up (register + token) and sends a real
OCR request (a 3-line English image, engine left to `auto`) until one answers 201. Split:
launch -> health (install checks, migrate, collectstatic, check --deploy, uWSGI loading the
app and warming every engine; uWSGI's own "ready in N seconds" is shown as app load), then
health -> first OCR (the sign-up's password hashing, then the OCR request). Median of the
starts.
"""

import argparse
import os
import re
import statistics
import threading
import time
import uuid

import common
import requests

from app.tests.processes import free_port
from app.tests.stack import PASSWORD, VIA_TLS, missing_tools, running_stack

BENCH = "coldstart"
POLL_SECONDS = 0.05
TIMEOUT = 300


def first_answers(url: str, started: float, times: dict[str, float], stop: threading.Event) -> None:
    """Poll from launch: health, then a new user, then OCR; seconds since `started` for each."""
    image = common.png(common.text_image(3)[0])

    def until(step: str, call) -> bool:
        while not stop.is_set():
            try:
                if call():
                    times[step] = time.monotonic() - started
                    return True
            except requests.RequestException:
                pass  # nothing listening yet, or nginx answering 502 while uWSGI starts
            time.sleep(POLL_SECONDS)
        return False

    user = {"username": f"cold-{uuid.uuid4().hex[:10]}", "password": PASSWORD}
    headers = dict(VIA_TLS)

    def sign_up() -> bool:
        registered = requests.post(f"{url}/api/register/", json=user, headers=VIA_TLS, timeout=10)
        if registered.status_code not in (201, 400):  # 400: registered by an earlier try
            return False
        tokens = requests.post(f"{url}/api/token_obtain_pair/", json=user, headers=VIA_TLS, timeout=10)
        headers["Authorization"] = f"Bearer {tokens.json()['access']}"
        return tokens.status_code == 200

    def read() -> bool:
        files = {"image": ("cold.png", image)}
        return requests.post(f"{url}/api/ocr/", headers=headers, files=files, timeout=60).status_code == 201

    def healthy() -> bool:
        return requests.get(f"{url}/api/health/", headers=VIA_TLS, timeout=2).status_code == 200

    if until("health", healthy) and until("user", sign_up):
        until("ocr", read)


def one_start() -> dict[str, float]:
    port = free_port()
    times: dict[str, float] = {}
    stop = threading.Event()
    started = time.monotonic()
    poller = threading.Thread(target=first_answers, args=(f"http://127.0.0.1:{port}", started, times, stop))
    poller.start()
    try:
        with running_stack(timeout=TIMEOUT, PORT=str(port), UWSGI_PROCESSES=str(os.cpu_count())) as stack:
            poller.join(TIMEOUT)
            # uWSGI logs how long each worker took to import the app and warm the engines.
            loads = [int(s) for s in re.findall(r"ready in (\d+) seconds", stack.log_text())]
            times["app load"] = max(loads, default=float("nan"))
    finally:
        stop.set()
        poller.join()
    assert "ocr" in times, f"no OCR answer within {TIMEOUT} s: {times}"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="starts (default 3)")
    parser.add_argument("--quick", action="store_true", help="one start")
    common.add_json_argument(parser)
    args = parser.parse_args()
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh install"
    starts = 1 if args.quick else args.repeat
    print(f"{starts} cold starts of ./start.sh serve, {os.cpu_count()} uWSGI workers, fresh SQLite + media")
    print(
        f"{'start':5} {'to health s':>11} {'(app load s)':>12} {'sign-up s':>9} {'OCR s':>6} "
        f"{'to first OCR s':>14}"
    )
    runs = []
    for n in range(1, starts + 1):
        times = one_start()
        runs.append(times)
        print(
            f"{n:5} {times['health']:11.2f} {times['app load']:12.0f} {times['user'] - times['health']:9.2f} "
            f"{times['ocr'] - times['user']:6.2f} {times['ocr']:14.2f}"
        )
    health = statistics.median(t["health"] for t in runs)
    total = statistics.median(t["ocr"] for t in runs)
    after = statistics.median(t["ocr"] - t["health"] for t in runs)
    print(f"median: {health:.2f} s to health, {after:.2f} s more to the first OCR, {total:.2f} s in all")
    rows = [
        common.row(BENCH, "start.sh serve -> first OCR (median)", total, "s"),
        common.row(BENCH, "start.sh serve -> health 200 (median)", health, "s"),
        common.row(BENCH, "health 200 -> first OCR, sign-up included (median)", after, "s"),
    ]
    common.write_rows(args.json, rows)


if __name__ == "__main__":
    main()
