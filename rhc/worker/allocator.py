# SPDX-License-Identifier: BSD-3-Clause
"""The task process keeps the memory its tasks free, for the next task to reuse.

glibc hands freed memory back to the kernel (large blocks at once, the heap's top beyond a
threshold), and every page the next task touches faults in again: on a NanoAOD chunk of 100k
events that was about 4,000 faults, 1.5 µs each on a virtual machine, a quarter of the chunk's
time. Blocks up to 32 MB taken from the heap, and 64 MB of freed memory kept at its top, made
those faults disappear and the chunks 25 % faster. What a cache keeps, though, is new memory
for every chunk: so the task process faults its first pages in once, when it starts.
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

FAULTED_IN_BYTES = 256 * 2**20
"""Heap the task process touches once when it starts, at most its memory cache's budget: a
first (cold) run's cached arrays then land on pages already in memory, where each NanoAOD chunk
of 100k events faulted about 3,000 fresh ones."""

_FAULT_BLOCK_BYTES = HEAP_BLOCK_BYTES // 2
"""Under HEAP_BLOCK_BYTES: glibc maps a block of that size or more on its own, outside the heap."""

# mallopt's parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
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


def fault_in(nbytes: int) -> None:
    """Touch `nbytes` of heap and free them again, once keep_freed_memory() holds: the heap keeps
    them, in memory, for the next allocations."""
    if nbytes < _FAULT_BLOCK_BYTES:
        return
    libc = ctypes.CDLL(None)
    # Free memory at the heap's top beyond this goes back to the kernel: keep what is faulted
    # in, and the pad the heap grew by on top of it.
    if not libc.mallopt(_M_TRIM_THRESHOLD, nbytes + 2 * KEPT_FREE_BYTES):
        return
    malloc, free = libc.malloc, libc.free
    malloc.restype, malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    free.restype, free.argtypes = None, [ctypes.c_void_p]
    blocks = []
    try:
        for _ in range(nbytes // _FAULT_BLOCK_BYTES):
            block = malloc(_FAULT_BLOCK_BYTES)
            if not block:  # refused (a limit on address space): the rest faults in when used
                break
            ctypes.memset(block, 0, _FAULT_BLOCK_BYTES)
            blocks.append(block)
    finally:
        for block in reversed(blocks):
            free(block)
