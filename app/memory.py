"""Give the heap memory freed by a read back to the system once the read is done.

glibc keeps freed heap memory for reuse, and raises its own mmap threshold as large blocks
are freed, so a worker that once read an A4 scan stayed that size: +6-12 % RSS over 2,000
mixed requests (bench/memory.py). Setting MALLOC_MMAP_THRESHOLD_ low fixed that but made
every small read ~20 % slower. malloc_trim after each read costs about 0.1 ms.
"""

import ctypes
import ctypes.util
from functools import cache


@cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only


def release() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
