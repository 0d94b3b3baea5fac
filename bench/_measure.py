"""Benchmark helpers: run a callable in a fresh process, report wall time and peak memory.

Peak memory is the largest summed RSS of the process and all its children (Dask workers
included), sampled every 20 ms with psutil.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _child(fn: Callable[..., Any], args: tuple[Any, ...], q: Any) -> None:
    t0 = time.perf_counter()
    out = fn(*args)
    q.put((time.perf_counter() - t0, out))


def measure(fn: Callable[..., Any], *args: Any, timeout_s: float = 3600) -> tuple[float, float, Any]:
    """Run ``fn(*args)`` in a fresh process; return (seconds, peak MiB, fn's return value).

    Seconds are measured inside the child around the call (no interpreter start-up).

    Raises
    ------
    queue.Empty
        ``fn`` did not return within ``timeout_s``.
    RuntimeError
        The child process ended without a result (``fn`` raised: its traceback is printed).
    """
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, args, q))
    peak = 0
    p.start()
    ps = psutil.Process(p.pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(ps))
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:  # a child that dies (an exception, killed) is a failure, not a long wait
            try:
                secs, out = q.get(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                break
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise
                if not p.is_alive() and q.empty():
                    raise RuntimeError(f"{getattr(fn, '__name__', fn)}{args!r} failed in its "
                                       f"process (exit code {p.exitcode}); see its traceback above") from None
    finally:
        stop.set()
        th.join()
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    return secs, peak / 2**20, out
