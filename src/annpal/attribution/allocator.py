"""Reuse of freed memory for attribution runs (glibc).

captum's passes and SmoothGrad's noisy copies allocate and free tensors of tens to hundreds of MB per
pass. glibc serves allocations above its mmap threshold (at most 32 MB) with fresh ``mmap`` calls and
returns them with ``munmap`` when freed, so every pass faults its pages in again: at paper scale captum IG
spent ~20 % and SmoothGrad ~35 % of their CPU time in the kernel doing that
(benchmarks/bench_attribution.py --paper-scale). With mmap off and the heap never trimmed, a freed tensor's
memory is handed to the next one without new page faults. The cost is that the process keeps its peak heap
until it exits, which a one-shot command does anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Tell glibc to serve large allocations from the heap and never trim it; ``False`` where that is
    not possible (not glibc), in which case nothing changes."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    if not ok:
        log.debug("mallopt refused; freed memory is returned to the system as usual")
    return ok
