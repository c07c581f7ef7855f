"""Keep freed memory in the process: the training step's allocator setting (``train.keep_freed_memory``).

A training step allocates its activations and gradients afresh and frees them at the end (about
a gigabyte for the book's configuration). glibc's malloc hands every block over 128 KiB-32 MiB
to the kernel as its own ``mmap`` and unmaps it when freed, so each step faults the same memory
in again, page by page, and the kernel zeroes every page first: about 200,000 page faults and
half a CPU-second a step on the book's 2-core machine (``benchmarks/bench_train_step.py``'s
``+keep_freed_memory`` mode measures it). :func:`keep_freed_memory` tells glibc (``mallopt``) to
take large blocks from the heap too and to keep freed memory for the next step. It changes
where tensors live, never what is computed: the same step gives the same numbers bit for bit
(``tests/test_allocator.py``). The price is that the process holds on to its peak memory.

The setting is process-wide and cannot be undone: a notebook kernel that trains keeps it, and
the DataLoader's worker processes, forked after it, inherit it. Elsewhere (macOS, Windows, a
Linux without glibc such as musl) nothing is changed and :class:`AllocatorSetting` says why.
"""

from __future__ import annotations

import ctypes
import platform
import sys
from dataclasses import dataclass

# glibc's mallopt parameters (malloc.h) and the values that keep freed memory: {name: (param, value)}
KEEP_FREED = {
    "M_MMAP_MAX": (-4, 0),  # no block gets its own mmap: large blocks come from the heap and go back to it
    "M_TRIM_THRESHOLD": (-1, 1 << 30),  # give the top of the heap back to the kernel only past 1 GiB free
    "M_TOP_PAD": (-2, 64 << 20),  # grow the heap 64 MiB at a time, not page by page
}


@dataclass(frozen=True)
class AllocatorSetting:
    """Whether freed memory is kept, and how, or why not (recorded with the run's fast path)."""

    kept: bool
    detail: str

    def __str__(self) -> str:
        return self.detail


def keep_freed_memory(enabled: bool = True) -> AllocatorSetting:
    """Ask glibc to keep freed memory for reuse (see the module docstring); with ``enabled``
    false, or where there is no glibc, leave the allocator as it is and say so."""
    if not enabled:
        return AllocatorSetting(False, "the platform's default (train.keep_freed_memory: false)")
    libc_name, libc_version = platform.libc_ver()
    if not sys.platform.startswith("linux") or libc_name != "glibc":
        return AllocatorSetting(False, f"the platform's default (no glibc on {sys.platform}: nothing to set)")
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError) as err:
        return AllocatorSetting(False, f"the platform's default (glibc's mallopt not found: {err})")
    refused = [name for name, (param, value) in KEEP_FREED.items()
               if mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1]
    if refused:
        return AllocatorSetting(False, f"the platform's default (glibc {libc_version} refused {', '.join(refused)})")
    return AllocatorSetting(True, f"glibc {libc_version}: freed memory kept (no mmap for large blocks, trim past 1 GiB)")


__all__ = ["AllocatorSetting", "KEEP_FREED", "keep_freed_memory"]
