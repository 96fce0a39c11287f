"""Tuning of the C allocator for bulk streaming (``crmsync evaluate``).

``crmsync evaluate`` moves blocks of a few megabytes between processes (input chunks,
output texts, their pickles). glibc serves blocks that large with a fresh ``mmap`` and
gives them back with ``munmap`` when freed, so every block costs one page fault per 4 KiB
page touched again: about 800,000 faults for a million complaints, a fifth of the
command's CPU time spent in the kernel. Raising the mmap and trim thresholds makes glibc
serve them from the heap and keep freed memory for the next block; peak memory stays
bounded by the blocks in flight. Elsewhere (not glibc) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 64 << 20
"""Blocks below this size come from the heap (glibc's dynamic default tops out at 32 MiB
but starts at 128 KiB)."""
TRIM_THRESHOLD = 256 << 20
"""Free memory at the heap's top kept for reuse, up to this much."""
TOP_PAD = 64 << 20
"""Extra heap requested from the kernel at a time."""


def keep_large_blocks_on_the_heap() -> bool:
    """Apply the thresholds above for this process and the workers it forks; True when
    the C library took them (glibc on Linux), False where it has no ``mallopt``."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(
        mallopt(option, value) == 1
        for option, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (_M_TOP_PAD, TOP_PAD),
        )
    )


def prepare_to_fork_workers() -> None:
    """Tune this process for bulk streaming before it forks worker processes: the
    allocator thresholds above, and ``gc.freeze()``.

    Everything alive at this point (modules, the charter) lives until exit. Frozen, the
    cyclic collector never walks it again, here or in the workers forked from here (nor
    copies its pages into them by touching them): a worker spent about 6% of its time in
    collections before.
    """
    keep_large_blocks_on_the_heap()
    gc.freeze()
