"""bench/carparks.py: the time-bucketed pandas join finds the same pairs as routetrace."""

from __future__ import annotations

import pandas as pd
from benchmods import load_bench

from routetrace.routes.copresence import find_copresence_pairs
from routetrace.testing import make_fixes

C = load_bench("carparks")


def test_bucketed_join_counts_pairs_across_bucket_edges_once() -> None:
    # a and b 50 m apart across the 10:00 bucket edge (2 min apart): a pair; so are b and a's
    # second fix (a-a is one subject); c comes 10 min 30 s after b (too late), d is 170 m away
    f = make_fixes(subject_id=["a", "b", "c", "d", "a"],
                   t_utc=["2025-01-06T09:59Z", "2025-01-06T10:01Z", "2025-01-06T10:11:30Z",
                          "2025-01-06T09:59:30Z", "2025-01-06T10:00Z"],
                   lat=[51.0, 51.00045, 51.00045, 51.0020, 51.0], lon=[3.0] * 5, h_acc_m=5.0)
    assert C.bucketed_pairs(f) == 2  # a-b and b with a's second fix
    assert C.bucketed_pairs(f, max_rows=1) == 2  # one bucket per chunk: the same pairs
    assert int((find_copresence_pairs(f)["distance_m"] <= 100).sum()) == 2


def test_bucketed_join_agrees_with_routetrace_on_a_fleet() -> None:
    n = 8000
    f = C.data(n)
    firm = int((find_copresence_pairs(f)["distance_m"] <= 100).sum())
    assert firm > 0
    assert C.bucketed_pairs(f) == firm
    assert C.bucketed_pairs(f, max_rows=10_000) == firm
    chunks = C._bucket_chunks(pd.Series([5, 5, 5], index=[10, 11, 12]), 130)
    assert [c.tolist() for c in chunks] == [[10, 11], [12]]
