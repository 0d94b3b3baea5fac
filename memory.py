"""Process memory: hand the memory a finished build step freed back to the operating system.

A loader builds its tables from many short-lived numpy and Arrow arrays of 1 to 30 MB.
glibc's allocator serves arrays of that size from its heap once a larger one has been
freed (its mmap threshold rises to the largest freed block, up to 32 MB), and it keeps
the pages of freed blocks that are not at the top of the heap: they stay in the
process's resident memory (RSS) until ``malloc_trim`` returns them. At a 1e6-record
Teltonika capture that was 230 MB of freed memory still resident when the tables went to
``LoadContext.finish``.

:func:`release_freed_memory` collects unreachable objects (a loader may run with the cyclic
garbage collector paused) and calls ``malloc_trim(0)``. On a C library without it (macOS,
musl, Windows) only the collection runs. Nothing in use is moved or freed: this changes
the process's footprint, not any result.

Example
-------
>>> from routetrace.memory import release_freed_memory
>>> release_freed_memory() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable

__all__ = ["MIN_ROWS", "release_freed_memory"]

#: Builds of fewer rows than this leave little garbage: a collection (milliseconds, up to
#: ~100 ms in a process holding many objects, as a long ingest or a fuzzing run does)
#: would cost more than it returns, so :func:`release_freed_memory` given ``rows`` below it
#: does nothing.
MIN_ROWS = 100_000


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    out: Callable[[int], int] = trim
    return out


def release_freed_memory(*, rows: int | None = None) -> bool:
    """Collect unreachable objects, then return the heap's free pages to the operating
    system (glibc ``malloc_trim(0)``).

    Parameters
    ----------
    rows
        The size of the build that freed the memory (e.g. the records of a load): below
        :data:`MIN_ROWS` nothing is done. None (the default): always.

    Returns
    -------
    bool
        True when the C library released memory; False when it had none to release, has
        no ``malloc_trim``, or ``rows`` was below :data:`MIN_ROWS`.

    Example
    -------
    >>> import numpy as np
    >>> parts = [np.ones(100_000) for _ in range(50)]  # 800 kB each
    >>> del parts
    >>> isinstance(release_freed_memory(), bool), release_freed_memory(rows=10)
    (True, False)
    """
    if rows is not None and rows < MIN_ROWS:
        return False
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
