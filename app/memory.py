"""Give the heap memory that reads leave behind back to the system once the worker is idle.

glibc keeps freed heap memory for reuse, and raises its own mmap threshold as large blocks
are freed, so a worker's size followed its largest recent read: between 294 and 541 MB
after the same 2,000 mixed requests (bench/memory.py). Trimming inside a request made the
next read fault its buffers in again (RapidOCR +15 % CPU per 10-line page, throughput 0.86
of raw), and so did a low MALLOC_MMAP_THRESHOLD_. So a thread per process trims only once
no read has run for OCR_TRIM_IDLE_SECONDS: a busy worker keeps its warm buffers, an idle
one gives them back, and the next read after a pause faults in what it touches.
"""

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from django.conf import settings


@cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only


class IdleTrimmer:
    """Counts the reads in flight in this process; its thread trims once they have stopped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last_done = 0.0
        self._pending = False  # a read finished since the last look
        self._pid = 0  # the process the thread runs in: a fork has none until its first read
        self.trims = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        self._start_in_this_process()
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last_done = time.monotonic()
                self._pending = True

    def _start_in_this_process(self) -> None:
        seconds = settings.OCR_TRIM_IDLE_SECONDS
        if seconds <= 0 or _libc() is None or self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._watch, args=(seconds,), name="heap-trim", daemon=True).start()

    def _watch(self, seconds: float) -> None:
        while True:
            time.sleep(seconds / 4)
            self.trim_if_idle(seconds)

    def trim_if_idle(self, seconds: float) -> bool:
        with self._lock:
            idle = self._pending and not self._in_flight and time.monotonic() - self._last_done >= seconds
            if not idle:
                return False
            self._pending = False
        _libc().malloc_trim(0)
        self.trims += 1
        return True


trimmer = IdleTrimmer()
reading = trimmer.reading
