"""bench/_measure.py: a measured call that fails is a failure at once, not a long wait."""

from __future__ import annotations

import os
import time

import pytest
from benchmods import load_bench


def _boom() -> None:
    raise ValueError("boom")


def _dies() -> None:
    os._exit(3)


def _answer(x: int) -> int:
    return x + 1


def test_a_call_that_returns_gives_its_result_and_time() -> None:
    # the peak is sampled every 20 ms: a call this short may end before the first sample
    secs, peak_mib, out = load_bench("_measure").measure(_answer, 41)
    assert out == 42 and 0 <= secs < 5 and peak_mib >= 0


@pytest.mark.parametrize("fn", [_boom, _dies], ids=["raises", "exits"])
def test_a_child_that_dies_is_reported_at_once_not_after_the_timeout(fn: object) -> None:
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="failed in its process"):
        load_bench("_measure").measure(fn, timeout_s=600)
    assert time.monotonic() - t0 < 30
