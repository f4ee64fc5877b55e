"""glibc's malloc as training needs it: freed memory kept for the next step.

When TensorFlow's first generator dataset starts (a PyDataset of faces is one), it sets glibc's
``M_TRIM_THRESHOLD`` to 128 KB (it logs "Memory patch applied"). Setting it also stops glibc from
raising its mmap threshold as programs free large blocks, so every buffer over 128 KB (a batch of
faces, most activations) is mapped and unmapped again at every step, and each of its pages is
faulted in afresh: on a 2-core CPU that is a fifth of a small network's training time, most of it
in the kernel. Setting glibc's own upper limits back (32 MB mapped, twice that kept at the top of
the heap) restores the reuse. Elsewhere than glibc nothing is changed.
"""

from __future__ import annotations

import ctypes
import functools
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems


@functools.cache
def _glibc():
    """The process's C library when it is glibc (it has ``gnu_get_libc_version``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def reuse_freed_memory() -> bool:
    """Let malloc serve blocks up to 32 MB from freed memory again; True where it did (glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                     2 * MMAP_THRESHOLD))
