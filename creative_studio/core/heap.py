"""How a process that runs models keeps its C heap: freed memory reused within a job, given
back to the system between jobs.

glibc's allocator gives memory back to the system as soon as a free leaves more than a small
threshold at the top of the heap (128 KiB at first, adjusted as it goes), and hands every
block above another threshold to its own ``mmap``. A model's job frees and allocates
tensors of the same sizes hundreds of times; each time the pages go back and come again,
zeroed by the kernel, one page fault each. Measured in the model process (bench/threads.py,
Harmonize, 2 threads): ~100,000 page faults and 0.2 s of system time per 0.45-s job, the job
0.55 s instead of the 0.45 s the same call takes in a process whose heap had settled
otherwise. :func:`tune` sets fixed thresholds once per process: the heap keeps up to
:data:`TRIM_THRESHOLD` free at its top and grows by :data:`TOP_PAD`; only blocks of
:data:`MMAP_THRESHOLD` and more get their own mapping. :func:`release` gives back what a job
left free beyond :data:`KEEP` when it ends, so a large job (a big upscale) does not leave
the studio holding its peak.

Elsewhere than glibc (macOS, Windows, musl) both do nothing: their allocators keep freed
memory by their own rules. Nothing here imports Qt or torch.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading
from functools import cache

log = logging.getLogger(__name__)

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MIB = 1024 * 1024
TRIM_THRESHOLD = 256 * MIB  # free memory at the heap's top kept for the next allocation
TOP_PAD = 64 * MIB  # the heap grows by this much more than asked (fewer system calls)
MMAP_THRESHOLD = 32 * MIB  # blocks this large get their own mapping (glibc's dynamic maximum)
KEEP = 256 * MIB  # free heap memory a finished job may leave behind

_lock = threading.Lock()
_tuned = False


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


@cache
def _libc() -> ctypes.CDLL | None:
    """glibc, where this process runs on it (and it has the calls used here)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        if hasattr(libc, "mallinfo2"):  # glibc ≥ 2.33
            libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError):
        return None
    return libc


def tune() -> bool:
    """Set the thresholds (once per process); False where the allocator is not glibc's."""
    global _tuned
    libc = _libc()
    if libc is None:
        return False
    with _lock:
        if not _tuned:
            ok = all(libc.mallopt(param, value) == 1 for param, value in (
                (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                (M_TOP_PAD, TOP_PAD)))
            if not ok:
                log.warning("the C heap's thresholds could not be set (mallopt refused)")
            _tuned = True
    return True


def free_bytes() -> int | None:
    """Free memory the heap holds (all arenas); None where that cannot be asked."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):  # glibc < 2.33
        return None
    return int(libc.mallinfo2().fordblks)


def release(keep: int = KEEP) -> bool:
    """After a job: give the system back the heap's free memory when more than ``keep``
    bytes of it are free (True when it did)."""
    libc = _libc()
    if libc is None:
        return False
    free = free_bytes()
    if free is not None and free <= keep:
        return False
    return bool(libc.malloc_trim(0))
