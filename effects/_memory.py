"""Let glibc reuse freed image buffers instead of handing them back to the kernel.

Every effect returns a fresh image-sized float32 array (12 MiB at 1024²) and drops its temporaries.
With glibc's defaults those blocks go back to the kernel on free (mmap'd blocks, and heap tops above
the trim threshold), so the next allocation page-faults and zero-fills brand-new memory: at 1024² that
was about a quarter of the whole pipeline's time (131 ms → 103 ms for all 13 effects on this 2-core
machine). Raising the mmap threshold to glibc's 64-bit maximum (32 MiB) and the trim threshold to
1 GiB keeps them in the heap for the next image. The cost: up to that much freed memory stays
resident, which is why this is the caller's choice (``app.py``, the CLI and the benchmark make it),
not a side effect of importing ``effects``. Elsewhere than glibc this does nothing.
"""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_buffers() -> None:
    """Tune glibc's malloc as described above (once per process; harmless to repeat)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return
    mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
    mallopt(_M_TRIM_THRESHOLD, 2**30)
