"""Queued jobs on a real Celery worker over the machine's Redis, against the test database.

The worker is `./start.sh worker`, a separate process: it sees only committed rows, so
these tests use transactional_db, and the test database is a file (settings.py).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection
from PIL import Image

from app.models import OcrRecord
from app.tests.imaging import cer, encode, english_lines, render
from app.tests.processes import stop_group
from onlineocr.celery import app as celery_app

pytestmark = pytest.mark.worker

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def broker(settings):
    """The broker the test settings name (app/tests/testenv.py), emptied; jobs go to it."""
    url = settings.CELERY_BROKER_URL
    client = redis.Redis.from_url(url)
    client.ping()  # the machine's Redis must be up (CI starts it)
    client.flushdb()
    settings.OCR_ASYNC, settings.CELERY_TASK_ALWAYS_EAGER = True, False
    celery_app.conf.task_always_eager = False
    yield url
    celery_app.conf.task_always_eager = True
    client.flushdb()


@pytest.fixture
def worker(broker, transactional_db, settings, tmp_path):
    log = tmp_path / "worker.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_"))},
        "VENV": sys.prefix,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_CONCURRENCY": "1",
        "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["./start.sh", "worker", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for(lambda: "ready." in log.read_text(), 90, lambda: log.read_text()[-3000:])
    yield process, log
    stop_group(process, timeout=30)


def wait_for(condition, seconds: float, detail=lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {seconds} s\n{detail()}")


def status_of(record_id: int) -> str:
    return OcrRecord.objects.filter(pk=record_id).values_list("status", flat=True).first()


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_queued_job_is_done_by_a_worker(api, worker):
    lines = english_lines(3, seed=81)
    response = api.post("/api/ocr/?async=1", {"image": _upload(encode(render(lines))), "engine": "tesseract"})
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    record_id = response.json()["id"]
    wait_for(lambda: status_of(record_id) == "done", 60, lambda: worker[1].read_text()[-3000:])
    body = api.get(f"/api/history/{record_id}/").json()
    assert cer("\n".join(lines), body["text"]) <= 0.05


def test_a_worker_killed_mid_job_gives_it_back_and_it_finishes_once(api, worker):
    process, log = worker
    lines = english_lines(40, seed=82, words=6)
    page = Image.new("RGB", (3000, 4000), "white")
    page.paste(render(lines, size=48, pad=0), (150, 150))
    response = api.post("/api/ocr/?async=1", {"image": _upload(encode(page)), "engine": "rapidocr"})
    record_id = response.json()["id"]
    wait_for(lambda: status_of(record_id) == "running", 60, lambda: log.read_text()[-3000:])
    (pool_process,) = children(process.pid)
    os.kill(pool_process, signal.SIGKILL)
    wait_for(lambda: status_of(record_id) == "done", 120, lambda: log.read_text()[-3000:])
    assert "WorkerLostError" in log.read_text() or "SIGKILL" in log.read_text()
    assert OcrRecord.objects.count() == 1
    assert cer("\n".join(lines), OcrRecord.objects.get().text) <= 0.01


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("page.png", data, "image/png")
