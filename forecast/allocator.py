"""The C library's malloc, set for a training loop: the same buffers freed and taken again every step.

glibc serves a buffer above its mmap threshold with fresh pages and gives freed memory at the top
of its heap back to the OS above its trim threshold. Both thresholds adapt as buffers are freed,
but a training step (batch 512, lookback 56, hidden 64) still gave back about 2,500 pages, and
had them faulted in and zeroed again on the next. Fixing both thresholds keeps those pages: with a
60M-row panel loaded, training ran 1.11x faster (docs/benchmarks.md, "The malloc thresholds").
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # buffers up to this come from the heap: glibc's ceiling on 64-bit systems
TRIM_THRESHOLD = 256 * 2**20  # freed heap kept for reuse, beyond a step's churn, before any goes back


def user_settings() -> list[str]:
    """The environment's settings of malloc: glibc's MALLOC_* variables and GLIBC_TUNABLES."""
    return [k for k, v in os.environ.items() if v and (k.startswith("MALLOC_") or k == "GLIBC_TUNABLES")]


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; return whether they were set.

    Nothing changes off Linux, with another C library, or where the user set malloc up (a MALLOC_*
    variable or GLIBC_TUNABLES) or preloaded another allocator. Larger buffers still get their own
    pages, and up to TRIM_THRESHOLD of freed memory stays with the process.
    """
    if not sys.platform.startswith("linux") or user_settings():
        return False
    if "malloc" in os.environ.get("LD_PRELOAD", ""):  # jemalloc, tcmalloc: their own policies
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # the mmap threshold first: setting either stops glibc adapting both, and a trim threshold
    # alone would freeze the mmap threshold at its 128 KB start, mapping every larger buffer afresh
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
