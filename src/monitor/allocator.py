"""Large freed buffers go back to the system (glibc's allocator).

glibc serves an allocation above ``M_MMAP_THRESHOLD`` (128 KiB) with its own mapping, which
``free`` returns to the system.  But by default the threshold adapts: each time such a chunk is
freed, the threshold rises to its size (up to 32 MiB), and later buffers of that size come from
the heap, where a freed one stays resident.  The service allocates many large short-lived
buffers (micro-batches, state snapshots, decoded messages), so with the default the resident
memory grew by 30.5 KB per added sensor with full windows; with the threshold fixed at 128 KiB
or 4 MiB, by 13.8 KB (docs/benchmarks.md, session 13).

Setting the threshold explicitly turns the adaptation off (glibc manual, "Malloc Tunable
Parameters").  ``MALLOC_MMAP_THRESHOLD_`` in the environment, glibc's own way, wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3  # malloc.h


def fix_mmap_threshold(nbytes: int) -> bool:
    """Fix glibc's mmap threshold at ``nbytes`` (0: leave the adaptive default).  Returns
    whether it was set; elsewhere than on glibc it does nothing."""
    if nbytes <= 0 or not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False  # set by the operator for the whole process already
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, int(nbytes)))
    if not done:
        log.warning("malloc mmap threshold not set to %d bytes (mallopt refused)", nbytes)
    return done
