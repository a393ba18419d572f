"""A newcomer's `./start.sh` on one kept-alive connection: `/api/health/` and a repeat upload.

    .venv/bin/python bench/keepalive.py [--repeat 200] [--quick] [--command dev] [--json PATH]

Starts `./start.sh` with no argument, as a newcomer does (uWSGI's HTTP router, one worker per
core, engines warmed), on a free loopback port with a fresh SQLite database, media and static
folder in a temporary directory, and waits for `/api/health/`. Then, on ONE requests.Session
(one TCP connection, as a browser keeps it): signs up (register + token), times `/api/health/`,
sends a 10-line English page once (real OCR, Tesseract), then the same bytes again (the cached
answer, 200 `"cached": true`); medians and p95 beside the targets. The same two requests on a
fresh connection each are shown for comparison. runserver, the default before, answered every
request after the first on a kept-alive connection about 45 ms late: `--command dev` times
`./start.sh dev`, which still runs it, the same way.

The only setting changed from a newcomer's: OCR_USER_THROTTLE is raised (120/minute would
refuse most of the repeats); every request is still counted against it, as it would be.
"""

import argparse
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import common
import requests

from app.tests.processes import free_port, kill_group
from app.tests.stack import OWN_PREFIXES, PASSWORD

BENCH = "keepalive"
TARGETS_MS = {"health": 10.0, "repeat": 15.0}
START_TIMEOUT = 300


def start(base: Path, command: list[str]) -> tuple[subprocess.Popen, str, Path]:
    """`./start.sh [command]` in its own process group, its settings from this function only."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)},
        "VENV": sys.prefix,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_MEDIA_ROOT": str(base / "media"),
        "DJANGO_STATIC_ROOT": str(base / "static"),
        "OCR_USER_THROTTLE": "1000000/minute",
    }
    log = base / "start.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["./start.sh", *command],
            cwd=common.ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}", log


def wait_healthy(process: subprocess.Popen, url: str, log: Path) -> float:
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT:
        if process.poll() is not None:
            sys.exit(f"start.sh exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(f"{url}/api/health/", timeout=60).status_code == 200:
                return time.monotonic() - started
        except requests.ConnectionError:
            time.sleep(0.2)
    sys.exit(f"start.sh not healthy within {START_TIMEOUT} s:\n{log.read_text(errors='replace')[-3000:]}")


def timed(
    call: Callable[[], requests.Response], repeat: int, check: Callable[[requests.Response], bool]
) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - started) * 1000)
        assert check(response), f"{response.status_code} {response.text[:500]}"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=200, help="requests timed per figure (default 200)")
    parser.add_argument("--quick", action="store_true", help="30 requests per figure")
    parser.add_argument("--command", help="a start.sh command instead of none (dev: runserver, to compare)")
    common.add_json_argument(parser)
    args = parser.parse_args()
    repeat = 30 if args.quick else args.repeat
    base = Path(tempfile.mkdtemp(prefix="onlineocr-keepalive-"))
    command = [args.command] if args.command else []
    name = " ".join(["./start.sh", *command])
    process, url, log = start(base, command)
    try:
        to_health = wait_healthy(process, url, log)
        print(f"{name} -> /api/health/ 200 in {to_health:.1f} s, {os.cpu_count()} cores")
        image = common.png(common.text_image(10, seed=5)[0])
        files = {"image": ("page.png", image, "image/png")}
        account = {"username": f"ka-{uuid.uuid4().hex[:10]}", "password": PASSWORD}

        def cached(response: requests.Response) -> bool:
            return response.status_code == 200 and response.json()["cached"] is True

        def ok(response: requests.Response) -> bool:
            return response.status_code == 200

        with requests.Session() as session:
            assert session.post(f"{url}/api/register/", json=account).status_code == 201
            tokens = session.post(f"{url}/api/token_obtain_pair/", json=account).json()
            session.headers["Authorization"] = f"Bearer {tokens['access']}"
            timed(lambda: session.get(f"{url}/api/health/"), 5, ok)  # both workers' first requests
            health = timed(lambda: session.get(f"{url}/api/health/"), repeat, ok)
            started = time.perf_counter()
            first = session.post(f"{url}/api/ocr/", files=files, data={"engine": "tesseract"})
            first_ms = (time.perf_counter() - started) * 1000
            assert first.status_code == 201, first.text
            again = timed(
                lambda: session.post(f"{url}/api/ocr/", files=files, data={"engine": "tesseract"}),
                repeat,
                cached,
            )
            pools = session.get_adapter(url).poolmanager.pools
            # TCP connects made (the pool container is not iterable: keys() it is)
            connections = sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118
        auth = {"Authorization": f"Bearer {tokens['access']}"}
        fresh_health = timed(lambda: requests.get(f"{url}/api/health/"), repeat, ok)
        fresh_again = timed(
            lambda: requests.post(f"{url}/api/ocr/", files=files, data={"engine": "tesseract"}, headers=auth),
            repeat,
            cached,
        )
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        stop_s = time.monotonic() - stopping
    finally:
        kill_group(process)
        shutil.rmtree(base, ignore_errors=True)

    print(
        f"one kept-alive connection ({connections} TCP connection(s) opened in all), {repeat} requests each:"
    )
    print(f"  first upload (10-line page, Tesseract, real OCR)  {first_ms:7.1f} ms ({len(image)} bytes)")
    rows = []
    for key, label, times, fresh in (
        ("health", "/api/health/", health, fresh_health),
        ("repeat", "repeat upload (cached)", again, fresh_again),
    ):
        median, p95, target = statistics.median(times), common.percentile(times, 0.95), TARGETS_MS[key]
        met = median <= target
        print(
            f"  {label:24} median {median:6.2f} ms  p95 {p95:6.2f} ms   target <= {target:g} ms: "
            f"{'met' if met else 'MISSED'}   (a fresh connection each: {statistics.median(fresh):6.2f} ms)"
        )
        rows.append(
            common.row(BENCH, f"{name}, kept-alive: {label} median", median, "ms", f"<= {target:g}", met)
        )
        rows.append(
            common.row(BENCH, f"{name}, fresh connections: {label} median", statistics.median(fresh), "ms")
        )
    print(f"SIGTERM -> {name} stopped in {stop_s:.1f} s")
    rows.append(
        common.row(
            BENCH,
            f"{name}, one connection for the whole session",
            connections,
            "connections",
            "1",
            connections == 1,
        )
    )
    rows.append(common.row(BENCH, f"{name} -> /api/health/ 200", to_health, "s"))
    rows.append(common.row(BENCH, f"SIGTERM -> {name} stopped", stop_s, "s"))
    common.write_rows(args.json, rows)


if __name__ == "__main__":
    main()
