"""The C heap under torch's CPU tensors: when to give freed memory back and when to keep it.

Both policies are glibc's (``malloc_trim``, ``mallopt``); elsewhere these do nothing.
"""

from __future__ import annotations

import ctypes
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter numbers (glibc's ``malloc.h``)."""
KEEP_MMAP_THRESHOLD = 64 << 20
"""Blocks below this come from the heap, not a fresh ``mmap``: every tensor of a training
step at the paper's image size (17 MB at most, batch 32) is one."""
KEEP_TRIM_THRESHOLD = 1 << 30
"""Freed heap memory is handed back only when more than this lies free at its top."""
GLIBC_THRESHOLD = 128 << 10
"""glibc's default for both thresholds (before it adapts the mmap one to the blocks freed)."""


def release_free_memory() -> None:
    """Hand freed heap memory back to the OS.

    Encoding allocates buffers of many sizes per batch (decoded files, STFTs, images);
    glibc keeps what they free in fragmented heaps instead of returning it, and the
    resident set grew by about 0.15 MB per encoded file (1.9 GB after 3,528 files).
    Trimming every few batches kept it flat at the first batch's level (measured in
    docs/benchmarks.md).
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def keep_freed_memory(keep: bool = True) -> None:
    """Reuse freed blocks instead of returning them to the OS and faulting them back in.

    A training step allocates and frees the same few hundred MB of tensors every time.
    By default glibc serves blocks above 128 KB-32 MB with a fresh ``mmap`` and returns
    them on free, so every step touched its tensors' pages anew: about 18,000 page faults
    per paper-model step, 13-16 % of the run in the kernel. Kept in the heap, a step
    faults next to nothing, the peak resident set stays about the same (it is the step's
    own peak; the README main job 1.23 GiB against 1.20) and the step is 1.06x-1.11x
    faster (``benchmarks/bench_train.py --settings fp32,heap-default``, docs/benchmarks.md).
    The cost: memory freed after a peak (a preview render) stays in the process until it
    exits or :func:`release_free_memory` runs. ``keep=False`` sets glibc's default
    thresholds back (benchmarks compare the two).
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD if keep else GLIBC_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD if keep else GLIBC_THRESHOLD)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # no C library handle (as on Windows)
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
