"""The idle heap trim (app/memory.py), on this process's real glibc heap.

Each test frees ~160 MB of 64 KB blocks below a small live block, so glibc keeps them (free
only gives back the top of the heap) and only malloc_trim can return them.
"""

import time

import pytest

from app import memory, recognition
from app.engines import registry
from app.engines.base import Options
from app.tests.imaging import encode, render

pytestmark = pytest.mark.skipif(memory._libc() is None, reason="needs glibc's malloc_trim and mallinfo2")

BLOCK = 64 * 1024  # under glibc's smallest mmap threshold: these come from the heap
FREED_MB = 160


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def read_that_leaves_free_heap(trimmer: memory.IdleTrimmer) -> list[bytes]:
    """A 'read' that touches FREED_MB and frees it; returns the live block that pins the heap."""
    with trimmer.reading():
        blocks = [bytes([n % 251]) * BLOCK for n in range(FREED_MB * 1024 * 1024 // BLOCK)]
        pin = [b"p" * BLOCK]
        del blocks
    return pin


@pytest.fixture
def trimmer(settings) -> memory.IdleTrimmer:
    settings.OCR_TRIM_IDLE_SECONDS = 0  # no thread: the tests call trim_if_idle themselves
    return memory.IdleTrimmer()


def test_an_idle_process_gives_the_freed_heap_back(trimmer):
    pin = read_that_leaves_free_heap(trimmer)
    kept = rss_mb()
    time.sleep(0.2)
    assert rss_mb() > kept - FREED_MB * 0.2  # glibc kept the freed blocks
    assert trimmer.trim_if_idle(0.1)
    assert kept - rss_mb() >= FREED_MB * 0.8
    del pin


def test_no_trim_before_the_idle_time_or_while_another_read_runs(trimmer):
    pin = read_that_leaves_free_heap(trimmer)
    assert not trimmer.trim_if_idle(60)  # the read ended just now
    with trimmer.reading():
        time.sleep(0.2)
        assert not trimmer.trim_if_idle(0.1)  # idle long enough, but a read is running
    time.sleep(0.2)
    assert trimmer.trim_if_idle(0.1)
    assert not trimmer.trim_if_idle(0.1)  # nothing read since: nothing to look at
    assert trimmer.trims == 1
    del pin


def test_the_thread_trims_by_itself_once_the_process_is_idle(settings):
    settings.OCR_TRIM_IDLE_SECONDS = 0.2
    trimmer = memory.IdleTrimmer()
    pin = read_that_leaves_free_heap(trimmer)
    kept = rss_mb()
    deadline = time.monotonic() + 5
    while trimmer.trims == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert trimmer.trims == 1
    assert kept - rss_mb() >= FREED_MB * 0.8
    del pin


def test_every_read_counts_as_in_flight(settings, monkeypatch):
    """recognition.run holds the process's trimmer, so no trim lands in the middle of a read."""
    settings.OCR_TRIM_IDLE_SECONDS = 0
    trimmer = memory.IdleTrimmer()
    monkeypatch.setattr(memory, "reading", trimmer.reading)
    engine = registry.get("tesseract")
    in_flight = []
    real = engine.recognize
    monkeypatch.setattr(
        engine, "recognize", lambda image, opts: in_flight.append(trimmer._in_flight) or real(image, opts)
    )
    source = recognition.load(encode(render(["Nothing trims mid read"], size=32)))
    result = recognition.run(engine, Options(lang="eng", task="document"), source).result
    assert "trims" in result.text
    assert in_flight == [1]
    time.sleep(0.2)
    assert trimmer.trim_if_idle(0.1)
