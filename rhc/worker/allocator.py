# SPDX-License-Identifier: BSD-3-Clause
"""The task process keeps the memory its tasks free, for the next task to reuse.

glibc hands freed memory above its heap's top back to the kernel, and every page the next
task touches faults in again: on a NanoAOD chunk of 100k events that was about 4,000 faults,
a quarter of the chunk's time on a virtual machine (1.5 µs each). Keeping a pad of freed
memory at the top of the heap made those faults disappear, and chunks 25 % faster.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("rhc.worker")

KEPT_FREE_BYTES = 64 * 2**20
"""Freed memory the heap keeps at its top for reuse, on top of what is in use."""

_M_TOP_PAD = -2  # mallopt's parameter number, from glibc's malloc.h


def keep_freed_memory(kept_bytes: int = KEPT_FREE_BYTES) -> bool:
    """Ask the C library to keep `kept_bytes` of freed memory; False where it cannot (a C
    library other than glibc), and tasks then run as they would elsewhere."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None or not mallopt(_M_TOP_PAD, kept_bytes):
        log.debug("the C library keeps no freed memory: tasks fault their pages in afresh")
        return False
    return True
