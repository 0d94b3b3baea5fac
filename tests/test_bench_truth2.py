"""bench/truth2.py: the independent stop truth keeps the properties its rule states."""

from __future__ import annotations

import numpy as np
import pandas as pd
from benchmods import load_bench

T = load_bench("truth2")


def test_errors_are_correlated_in_time_with_the_stated_sigma() -> None:
    t = np.arange(0.0, 200_000.0, 10.0)
    n = len(t)
    e = T._gauss_markov(t, np.full(n, 6.0), np.full(n, 120.0), np.random.default_rng(3))
    assert abs(e[:, 0].std() - 6.0) < 0.3
    lag1 = np.corrcoef(e[:-1, 0], e[1:, 0])[0, 1]
    assert abs(lag1 - np.exp(-10 / 120)) < 0.02  # independent errors would give about 0


def test_truth_is_the_itinerary_with_no_fix_at_any_boundary() -> None:
    fixes, truth = T.simulate_independent(n_fixes=10_000, seed=4)
    assert len(fixes) == 10_000 and truth["observed"].mean() > 0.5
    assert ((truth["t_departure"] - truth["t_arrival"]) >= pd.Timedelta("6min")).all()
    t = set(fixes["t_utc"].astype("int64"))
    assert not t & set(truth["t_arrival"].astype("int64")) and not t & set(truth["t_departure"].astype("int64"))
    assert set(fixes["fix_kind"]) == {"gps", "wifi", "cell"}
    # every condition shares one truth; only the errors differ
    f2, truth2 = T.simulate_independent(n_fixes=10_000, seed=4, correlated=False, multipath=False)
    pd.testing.assert_frame_equal(truth, truth2)
    assert (f2["t_utc"] == fixes["t_utc"]).all() and not np.allclose(f2["lat"], fixes["lat"])


def test_section_scores_routetrace_against_it() -> None:
    text = T.section(n_fixes=5_000, seeds=(1,))
    rows = [r for r in text.splitlines() if r.startswith("| correlated")]
    assert len(rows) == len(T.CONDITIONS)
    f1 = [float(r.split("|")[7]) for r in rows]
    assert all(0.5 < v <= 1.0 for v in f1)
