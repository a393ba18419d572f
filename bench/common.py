"""Shared helpers for the bench scripts: summary rows for `--json` (read by bench/run_all),
percentiles, worker memory, the machine's description and the usual test images.

Every bench script prints its figures and, with `--json PATH`, writes a list of rows:
{"bench", "metric", "value", "unit", "target", "ok"} (see `row`).
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so `app.tests.imaging` etc. import from a plain `python bench/x.py`
    sys.path.insert(0, str(ROOT))


def row(bench: str, metric: str, value: Any, unit: str, target: str = "", ok: bool | None = None) -> dict:
    """One line of bench/run_all's summary table; `ok` is None when there is no target."""
    if isinstance(value, float):
        value = round(value, 4)
    return {"bench": bench, "metric": metric, "value": value, "unit": unit, "target": target, "ok": ok}


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="also write the summary rows to PATH as JSON")


def write_rows(path: str | None, rows: list[dict]) -> None:
    if path:
        Path(path).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: share 0.95 gives p95."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process (VmRSS) in MB, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def machine() -> str:
    """Cores, memory and CPU model, for the figures' context."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except FileNotFoundError:
        pass
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {ram_gb:.0f} GB RAM, {cpu}, {platform.system()} {platform.release()}"


IDLE_PAUSE = 0.03  # seconds: about what a uWSGI worker idles while a captcha is read elsewhere


def cold_page_ns(pause: float = IDLE_PAUSE, pages: int = 4096) -> tuple[float, float]:
    """Nanoseconds to touch one page of memory again, right away and after `pause` seconds
    idle (medians). On some virtual machines memory left untouched for milliseconds costs far
    more to touch again (the host's doing; seen here: 10 ns warm, 65-1,643 ns after 30 ms).
    Every process a request wakes (nginx, uWSGI, Django) pays it for each page it touches, so
    latency figures from machines whose two numbers differ much do not compare."""
    import numpy as np

    strided = np.ones(pages * 4096, dtype=np.uint8)[::4096]
    warm, cold = [], []
    for _ in range(15):
        strided.sum()
        started = time.perf_counter()
        strided.sum()
        warm.append(time.perf_counter() - started)
        time.sleep(pause)
        started = time.perf_counter()
        strided.sum()
        cold.append(time.perf_counter() - started)
    return percentile(warm, 0.5) * 1e9 / pages, percentile(cold, 0.5) * 1e9 / pages


def memory_warmth() -> str:
    warm, cold = cold_page_ns()
    return f"{warm:.0f} ns per page touched warm, {cold:.0f} ns after {IDLE_PAUSE * 1000:.0f} ms idle"


def git_commit() -> str:
    """The checked-out commit, marked `+changes` when the tree has uncommitted edits."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def text_image(lines: int, *, seed: int = 1, size: int = 32):
    """An English page of `lines` lines drawn in code, and its text."""
    from app.tests.imaging import english_lines, render

    text = english_lines(lines, seed=seed)
    return render(text, size=size), "\n".join(text)


def chinese_image(lines: int = 5, *, seed: int = 1, chars: int = 12, size: int = 40):
    """The bench's Chinese page (as bench/engines.py draws it), and its text."""
    from app.tests.imaging import CJK_FONT, chinese_lines, render

    text = chinese_lines(lines, seed=seed, chars=chars)
    return render(text, size=size, font=CJK_FONT), "\n".join(text)


def captcha_image(text: str = "k7mx3", *, seed: int = 1):
    """A dotted, jittered captcha drawn in code (app/tests/captchas.py), and its answer."""
    from app.tests.captchas import captcha

    return captcha(text, seed), text


def png(image) -> bytes:
    from app.tests.imaging import encode

    return encode(image)


def session_pids(session: int) -> list[int]:
    """Every live process in a session: a server started with `start_new_session=True` and
    all it forked (nginx and uWSGI workers, engine subprocesses)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[3]) == session:  # field 6 of proc(5), counted after the ")"
            pids.append(int(stat.parent.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and of their children they have waited for
    (e.g. each tesseract run), in seconds; processes already gone count 0."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def api_key_headers(stack, username: str) -> dict[str, str]:
    """Sign a user up through the stack and give it an API key: unlike a JWT (15 minutes),
    a key lasts however long a bench runs. Headers for every request, proxy's included."""
    from app.tests.stack import VIA_TLS, signed_up

    created = stack.post("/api/keys/", headers=signed_up(stack, username), json={"name": "bench"})
    assert created.status_code == 201, created.text
    return {**VIA_TLS, "X-API-Key": created.json()["key"]}
