"""``routetrace.memory``: freed heap pages go back to the operating system.

The check runs in a fresh interpreter (a clean heap): it fills the heap with 100 kB blocks
(below glibc's mmap threshold, so they come from the heap, not from their own mappings),
frees all but the last (which pins the heap's top, so glibc cannot give the pages back by
shrinking the heap), and reads the process's resident memory before and after
:func:`routetrace.memory.release_freed_memory`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from routetrace import memory

_CHILD = r"""
import json
from routetrace.memory import release_freed_memory

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20

blocks = [bytearray(100_000) for _ in range(3000)]  # ~300 MB, written (resident)
pin = bytearray(100_000)
full = rss_mb()
del blocks
freed = rss_mb()
released = release_freed_memory()
print(json.dumps({"full": full, "freed": freed, "after": rss_mb(), "released": released}))
"""


@pytest.mark.skipif(memory._malloc_trim() is None or not sys.platform.startswith("linux"),
                    reason="malloc_trim is glibc's (Linux); elsewhere only the collection runs")
def test_freed_heap_pages_are_returned() -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                         check=True, timeout=120)
    m = json.loads(out.stdout)
    # freeing alone leaves the pages resident (what the loaders' builds met) ...
    assert m["freed"] > m["full"] - 100, m
    # ... release_freed_memory hands them back
    assert m["released"] is True
    assert m["after"] < m["freed"] - 200, m


def test_release_collects_unreachable_cycles() -> None:
    """A cycle of objects (as pandas objects make) is collected even with the automatic
    collector paused, as the Teltonika build pauses it."""
    import gc
    import weakref

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    gone = weakref.ref(a)
    was = gc.isenabled()
    gc.disable()
    try:
        del a, b
        assert gone() is not None
        memory.release_freed_memory()
        assert gone() is None
    finally:
        if was:
            gc.enable()
