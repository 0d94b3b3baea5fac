"""Co-presence: properties (symmetry, monotonicity, thresholds) and a brute-force cross-check."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from routetrace import schema
from routetrace.routes.copresence import (
    detect_copresence,
    detect_cotravel,
    find_copresence_pairs,
    haversine_m,
)
from routetrace.testing import make_fixes

T0 = pd.Timestamp("2025-10-26T21:00Z")


def _random_fixes(seed: int, n: int = 120, subjects: int = 4, spread_m: float = 600.0,
                  span_min: float = 120.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return make_fixes(
        subject_id=[f"s{i}" for i in rng.integers(0, subjects, n)],
        t_utc=T0 + pd.to_timedelta(rng.uniform(0, span_min * 60, n), unit="s"),
        lat=51.0 + rng.normal(0, spread_m / 111_320, n),
        lon=3.87 + rng.normal(0, spread_m / 70_000, n),
        h_acc_m=rng.choice([5.0, 20.0, 65.0, np.nan, 1500.0], n),
    )


def _brute(f: pd.DataFrame, radius_m: float, max_dt: pd.Timedelta, aware: bool, max_acc: float) -> set[tuple[str, str]]:
    f = f[~(f["h_acc_m"] > max_acc)]
    f = f.assign(fix_id=schema.fix_ids(f))
    acc = np.nan_to_num(f["h_acc_m"].to_numpy(float)) if aware else np.zeros(len(f))
    out = set()
    rows = list(f.itertuples())
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            a, b = rows[i], rows[j]
            if a.subject_id == b.subject_id or abs(a.t_utc - b.t_utc) > max_dt:
                continue
            d = haversine_m(np.array([a.lat]), np.array([a.lon]), np.array([b.lat]), np.array([b.lon]))[0]
            if d <= radius_m + acc[i] + acc[j]:
                out.add(tuple(sorted((a.fix_id, b.fix_id))))
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), radius=st.floats(10, 400), minutes=st.integers(1, 30),
       aware=st.booleans())
def test_matches_brute_force(seed: int, radius: float, minutes: int, aware: bool) -> None:
    f = _random_fixes(seed)
    dt = pd.Timedelta(minutes=minutes)
    pairs = find_copresence_pairs(f, radius_m=radius, max_dt=dt, accuracy_aware=aware)
    got = {tuple(sorted(p)) for p in zip(pairs["fix_a"], pairs["fix_b"], strict=True)}
    assert got == _brute(f, radius, dt, aware, 500.0)
    # never beyond the thresholds
    assert (pairs["dt"] <= dt).all()
    lim = radius + (pairs[["h_acc_a", "h_acc_b"]].fillna(0).sum(axis=1) if aware else 0)
    assert (pairs["distance_m"] <= lim + 1e-6).all()
    assert (pairs["subject_a"] < pairs["subject_b"]).all()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_symmetric_and_monotone(seed: int) -> None:
    f = _random_fixes(seed)
    base = find_copresence_pairs(f)
    rev = find_copresence_pairs(f.iloc[::-1].reset_index(drop=True))
    assert base[["fix_a", "fix_b"]].values.tolist() == rev[["fix_a", "fix_b"]].values.tolist()
    key = lambda p: set(zip(p["fix_a"], p["fix_b"], strict=True))  # noqa: E731
    assert key(find_copresence_pairs(f, radius_m=50)) <= key(base) <= key(find_copresence_pairs(f, radius_m=200))
    assert key(find_copresence_pairs(f, max_dt=pd.Timedelta("2min"))) <= key(base) <= \
        key(find_copresence_pairs(f, max_dt=pd.Timedelta("30min")))


def test_meetings_group_pairs_and_cell_fixes_are_not_used() -> None:
    t = [T0 + pd.Timedelta(minutes=m) for m in (0, 5, 10, 60)]
    f = make_fixes(
        subject_id=["lorry"] * 4 + ["phone"] * 4 + ["cell"],
        t_utc=t + t + [T0],
        lat=[51.0] * 4 + [51.0004] * 4 + [51.0],
        lon=3.87, h_acc_m=[5.0] * 8 + [1500.0],
    )
    pairs, meetings = detect_copresence(f)
    assert "cell" not in set(pairs["subject_a"]) | set(pairs["subject_b"])
    assert meetings[["subject_a", "subject_b", "n_pairs"]].values.tolist() == [
        ["lorry", "phone", 9], ["lorry", "phone", 1]]  # every pair within 10 min counts
    assert meetings["t_start"].iloc[0] == T0 and meetings["t_end"].iloc[0] == t[2]
    assert len(meetings["fix_ids"].iloc[0].split("|")) == 6


def test_cotravel_matches_a_phone_in_the_lorry_and_not_one_left_behind() -> None:
    n = 40
    t = [T0 + pd.Timedelta(seconds=30 * i) for i in range(n)]
    lat = 51.0 + np.arange(n) * 0.006  # ~22 m/s north
    f = make_fixes(subject_id=["lorry"] * n + ["phone-in"] * n + ["phone-out"] * n,
                   t_utc=t + [x + pd.Timedelta(seconds=7) for x in t] + t,
                   lat=np.r_[lat, lat + 0.0002, np.full(n, 51.0)], lon=3.87, h_acc_m=8.0)
    inside = detect_cotravel(f, subject="phone-in", with_subject="lorry")
    outside = detect_cotravel(f, subject="lorry", with_subject="phone-out")
    assert inside["matched_fraction"].iloc[0] > 0.95
    assert outside["matched_fraction"].max() < 0.1
