"""Give the heap memory freed by a large read back to the system once the read is done.

glibc keeps freed heap memory for reuse, and raises its own mmap threshold as large blocks
are freed, so a worker that once read an A4 scan stayed that size: +6-12 % RSS over 2,000
mixed requests (bench/memory.py). Setting MALLOC_MMAP_THRESHOLD_ low fixed that but made
every small read ~20 % slower, and so did trimming after every read (the next read faults
its buffers in again: RapidOCR +15 % CPU per 10-line page). Trimming only after large reads
costs a few ms on reads that take seconds, and nothing on the rest.
"""

import ctypes
import ctypes.util
from functools import cache

LARGE_PIXELS = 4_000_000  # about 2000x2000; a PDF counts as large from its second page


@cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only


def release_after(pixels: int, pages: int = 1) -> None:
    libc = _libc()
    if libc is not None and (pixels >= LARGE_PIXELS or pages > 1):
        libc.malloc_trim(0)
