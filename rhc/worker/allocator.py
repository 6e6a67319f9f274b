# SPDX-License-Identifier: BSD-3-Clause
"""The task process keeps the memory its tasks free, for the next task to reuse.

glibc hands freed memory back to the kernel (large blocks at once, the heap's top beyond a
threshold), and every page the next task touches faults in again: on a NanoAOD chunk of 100k
events that was about 4,000 faults, 1.5 µs each on a virtual machine, a quarter of the chunk's
time. Blocks up to 32 MB taken from the heap, and 64 MB of freed memory kept at its top, made
those faults disappear and the chunks 25 % faster.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("rhc.worker")

KEPT_FREE_BYTES = 64 * 2**20
"""Freed memory the heap keeps at its top for reuse, on top of what is in use."""

HEAP_BLOCK_BYTES = 32 * 2**20
"""Blocks up to this size come from the heap, and are reused once freed; larger ones are
mapped and returned one by one. glibc's own ceiling, which it reaches only by degrees."""

# mallopt's parameter numbers, from glibc's malloc.h
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Ask the C library to keep freed memory for reuse; False where it cannot (a C library
    other than glibc), and tasks then run as they would elsewhere."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    # Both or neither: setting the pad alone stops glibc from raising its threshold, and then
    # every block over 128 kB is mapped afresh.
    if mallopt is None or not (
        mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCK_BYTES) and mallopt(_M_TOP_PAD, KEPT_FREE_BYTES)
    ):
        log.debug("the C library keeps no freed memory: tasks fault their pages in afresh")
        return False
    return True
