"""The chronology engine: stop rules, properties, simulator accuracy, the sample case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routetrace import schema
from routetrace.errors import ParameterError
from routetrace.routes import build_trips, detect_gaps, detect_stops, order_chronology
from routetrace.samples.simulate import score_stops, simulate
from routetrace.testing import make_fixes

T0 = pd.Timestamp("2025-10-26T18:00Z")


def _track(spec: list[tuple[float, float, int, float]], subject: str = "s", acc: float = 10.0) -> pd.DataFrame:
    """Fixes from (lat, lon, n, step_s) segments, consecutive in time."""
    t, lat, lon = [], [], []
    now = T0
    for la, lo, n, step in spec:
        for _ in range(n):
            t.append(now)
            lat.append(la)
            lon.append(lo)
            now = now + pd.Timedelta(seconds=step)
    return make_fixes(subject_id=subject, t_utc=t, lat=lat, lon=lon, h_acc_m=acc)


def test_public_api_with_make_fixes() -> None:
    f = _track([(51.0, 3.87, 12, 60), (51.01, 3.87, 3, 30), (51.05, 3.9, 10, 60)])
    linked, stops = detect_stops(f, radius_m=100, min_dwell=pd.Timedelta("5min"), max_gap=pd.Timedelta("30min"))
    assert len(stops) == 2 and list(stops["n_fixes"]) == [12, 10]
    assert stops["stop_id"].tolist() == ["s:S0001", "s:S0002"]
    assert linked["stop_id"].notna().sum() == 22 and (linked.index == f.index).all()
    assert stops.attrs["params"]["radius_m"] == 100.0
    with pytest.raises(ParameterError, match="radius_m"):
        detect_stops(f, radius_m=0)


def test_cell_fix_neither_makes_nor_breaks_a_stop() -> None:
    f = _track([(51.0, 3.87, 10, 60)])
    f.loc[5, ["lat", "h_acc_m"]] = [51.01, 1500.0]  # 1.1 km away, a cell tower
    linked, stops = detect_stops(f)
    assert len(stops) == 1 and stops["n_fixes"].iloc[0] == 9
    assert linked.loc[5, "stop_role"] == "coarse"


def test_single_outlier_does_not_split_a_stop_but_a_real_departure_does() -> None:
    f = _track([(51.0, 3.87, 10, 60)])
    f.loc[4, "lat"] = 51.004  # one Wi-Fi fix 450 m off
    _, stops = detect_stops(f)
    assert len(stops) == 1
    g = _track([(51.0, 3.87, 10, 60), (51.004, 3.87, 10, 60)])
    _, stops2 = detect_stops(g)
    assert len(stops2) == 2


def test_silence_inside_a_stop_is_marked_and_not_dwell() -> None:
    f = _track([(51.0, 3.87, 5, 60), (51.0, 3.87, 5, 60)])
    f.loc[5:, "t_utc"] = f.loc[5:, "t_utc"] + pd.Timedelta(hours=3)  # 3 h of silence
    _, stops = detect_stops(f)
    s = stops.iloc[0]
    assert "spans_gap" in s["flags"] and s["observed_fraction"] < 0.2
    assert s["dwell"] < s["t_departure"] - s["t_arrival"]
    gaps = stops.attrs["gaps"]
    assert len(gaps) == 1 and gaps["duration"].iloc[0] > pd.Timedelta("3h")


def test_ignition_off_on_is_parked_time_not_a_gap() -> None:
    f = _track([(51.0, 3.87, 1, 3600), (51.0, 3.87, 1, 3600), (51.0, 3.87, 1, 60)])
    ev = pd.DataFrame({"subject_id": "s", "t_utc": [T0, T0 + pd.Timedelta("2h1min")],
                       "kind": ["ignition_off", "ignition_on"], "source_id": "0" * 64, "record": ["1", "2"],
                       "flags": ""})
    _, stops = detect_stops(f, events=ev)
    assert stops["observed_fraction"].iloc[0] == 1.0 and "spans_gap" not in stops["flags"].iloc[0]
    assert stops["t_departure"].iloc[0] == T0 + pd.Timedelta("2h1min")
    assert "bounded_by_ignition" in stops["flags"].iloc[0]
    assert detect_gaps(f, events=ev).empty and len(detect_gaps(f)) == 2


def _random_track(seed: int) -> pd.DataFrame:
    fixes, _, _ = simulate(n_fixes=600, kind=["phone", "truck"][seed % 2], seed=seed)
    return fixes


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_properties(seed: int) -> None:
    f = _random_track(seed)
    _, stops = detect_stops(f)
    for _, g in stops.groupby("subject_id"):
        g = g.sort_values("t_arrival")
        # stops never overlap
        assert (g["t_arrival"].iloc[1:].to_numpy() >= g["t_departure"].iloc[:-1].to_numpy()).all()
    # dwell <= departure - arrival, and observed_fraction in [0, 1]
    assert (stops["dwell"] <= stops["t_departure"] - stops["t_arrival"]).all()
    assert stops["observed_fraction"].between(0, 1).all()
    # a silence longer than max_gap inside a stop is never unmarked
    gaps = stops.attrs["gaps"]
    for r in stops.itertuples():
        inner = gaps[(gaps["subject_id"] == r.subject_id) & (gaps["t_start"] >= r.t_arrival)
                     & (gaps["t_end"] <= r.t_departure)]
        if len(inner):
            assert "spans_gap" in r.flags
    # independent of input row order
    _, shuffled = detect_stops(f.sample(frac=1.0, random_state=seed))
    pd.testing.assert_frame_equal(stops.reset_index(drop=True), shuffled.reset_index(drop=True))
    # a longer min_dwell never finds time in a stop that a shorter one leaves outside
    lk5, _ = detect_stops(f, min_dwell=pd.Timedelta("5min"))
    lk15, s15 = detect_stops(f, min_dwell=pd.Timedelta("15min"))
    assert (s15["t_departure"] - s15["t_arrival"] >= pd.Timedelta("15min")).all()
    in5 = set(schema.fix_ids(lk5[lk5["stop_id"].notna()]))
    assert set(schema.fix_ids(lk15[lk15["stop_id"].notna()])) <= in5


def test_a_stop_at_rest_for_less_than_min_dwell_is_no_stop() -> None:
    """simulate(600, phone, seed=254): a stop of 15 min 6 s whose first fix was still
    arriving (moving fast) is trimmed to 14 min 59 s at rest. With min_dwell 15 min it is
    dropped, not kept whole with its arriving fix (which made min_dwell 15 min put a fix in
    a stop that min_dwell 5 min leaves outside)."""
    f = _random_track(254)
    lk5, s5 = detect_stops(f, min_dwell=pd.Timedelta("5min"))
    lk15, s15 = detect_stops(f, min_dwell=pd.Timedelta("15min"))
    second = s5.iloc[1]
    assert second["t_departure"] - second["t_arrival"] == pd.Timedelta("14min 58.73s")
    assert lk5.set_index("record").loc["21", "stop_id"] is pd.NA  # the arriving fix (one source)
    assert len(s15) == len(s5) - 1 and second["t_arrival"] not in set(s15["t_arrival"])
    assert pd.isna(lk15.set_index("record").loc["21", "stop_id"])


@pytest.mark.parametrize(("kind", "target"), [("truck", 0.95), ("phone", 0.90)])
def test_accuracy_on_simulated_traces(kind: str, target: float) -> None:
    fixes, events, truth = simulate(n_fixes=15_000, kind=kind, seed=3)
    _, stops = detect_stops(fixes, events=events)
    score = score_stops(stops, truth)
    assert score["f1"] >= target, score
    assert score["median_arrival_error_s"] <= 120 and score["median_departure_error_s"] <= 120


def test_trips_and_chronology_order() -> None:
    f = _track([(51.0, 3.87, 10, 60), (51.005, 3.875, 5, 30), (51.05, 3.9, 10, 60)])
    _, stops = detect_stops(f)
    trips = build_trips(f, stops)
    assert len(trips) == 1 and trips["start_stop_id"].iloc[0] == "s:S0001"
    assert trips["distance_m"].iloc[0] > 5000 and trips["n_fixes"].iloc[0] == 5
    ch = order_chronology(stops, trips, stops.attrs["gaps"])
    assert ch["kind"].tolist() == ["stop", "trip", "stop"] and ch["seq"].tolist() == [1, 2, 3]
    assert np.all(ch["local_start"].str.contains("CET"))


def test_merge_sources_fuses_copies_across_sources_only(realdata_dir: Path) -> None:
    from routetrace.loaders import load
    from routetrace.routes import merge_sources

    a = load(realdata_dir / "ios" / "routined_jads" / "Cache.sqlite", subject_id="phone")
    b = load(realdata_dir / "ios" / "routined_jads" / "oud_Cache.sqlite", subject_id="phone")
    fixes = pd.concat([a.fixes, b.fixes], ignore_index=True)
    fixes = fixes[fixes["fix_kind"] != "hint"]
    merged = merge_sources(fixes)
    assert len(merged) == 21_056
    shared = merged[merged["flags"].str.contains("duplicate_merged")]
    assert len(shared) == 6_976 and shared["also_seen_in"].notna().all()


def test_the_fast_link_test_decides_every_pair_as_haversine_does() -> None:
    """stops._linked (haversine term against sin² of the limit, no arcsin) gives the same
    answer as ``haversine_m(...) <= limit`` on random pairs and on pairs exactly at, just
    inside and just outside their limit (decided by haversine_m itself there)."""
    from routetrace.geodesy import haversine_m
    from routetrace.routes.stops import _linked

    rng = np.random.default_rng(7)
    n, k = 20_000, 1
    lat = rng.uniform(-80, 80, n + k)
    lon = rng.uniform(-179, 179, n + k)
    lat[k:] = lat[:-k] + rng.normal(0, 2e-3, n)  # neighbours within a few hundred metres
    lon[k:] = lon[:-k] + rng.normal(0, 2e-3, n)
    d = haversine_m(lat[:n], lon[:n], lat[k:], lon[k:])
    limit = rng.uniform(0, 600, n)
    limit[:3000] = d[:3000]  # exactly at the limit
    limit[3000:6000] = np.nextafter(d[3000:6000], np.inf)
    limit[6000:9000] = np.nextafter(d[6000:9000], -np.inf)
    limit[9000:9100] = np.nan  # no limit: never linked
    phi, lam = np.radians(lat), np.radians(lon)
    got = _linked(lat, lon, phi, lam, np.cos(phi), k, n, limit)
    want = d <= limit
    assert want[:3000].all() and not want[6000:9100].any()
    np.testing.assert_array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(codes=st.lists(st.integers(0, 5), min_size=1, max_size=60), data=st.data())
def test_subject_time_order_is_lexsort(codes: list[int], data: st.DataObject) -> None:
    """stops._subject_time_order (one 63-bit key when it fits) is exactly the stable
    ``np.lexsort((t, codes))``: ties keep input order, and times spanning more than the key
    holds (nanoseconds over centuries, negative epochs) fall back to lexsort itself."""
    from routetrace.routes.stops import _subject_time_order

    wide = data.draw(st.booleans())
    lo, hi = (-(2**62), 2**62) if wide else (0, 50)
    t = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=len(codes), max_size=len(codes))),
                 dtype=np.int64)
    c = np.array(codes, dtype=np.int32)
    np.testing.assert_array_equal(_subject_time_order(c, t), np.lexsort((t, c)))


def test_an_absent_measurement_held_once_gives_the_same_stops_as_one_held_per_row() -> None:
    """A column nobody measured (``h_acc_m``/``speed_mps`` from ``make_fixes``) is one NaN
    broadcast over the rows; detect_stops reads it without copying it into sorted order (16 MB
    at 1e6 rows). Rows out of subject/time order, so the sorted path is the one taken."""
    from routetrace.testing import make_fixes

    fixes, _, _ = simulate(n_fixes=4_000, kind="phone", seed=3)
    shuffled = fixes.sample(frac=1.0, random_state=1).reset_index(drop=True)
    lean = make_fixes(subject_id=shuffled["subject_id"].astype(str), t_utc=shuffled["t_utc"],
                      lat=shuffled["lat"], lon=shuffled["lon"])
    assert lean["h_acc_m"].to_numpy().strides == (0,) and lean["speed_mps"].to_numpy().strides == (0,)
    full = lean.assign(h_acc_m=np.full(len(lean), np.nan), speed_mps=np.full(len(lean), np.nan))
    kw = {"radius_m": 100, "min_dwell": pd.Timedelta("5min"), "max_gap": pd.Timedelta("30min")}
    la, ls = detect_stops(lean, **kw)
    fa, fs = detect_stops(full, **kw)
    assert len(ls) > 5
    pd.testing.assert_frame_equal(ls, fs)
    from routetrace.routes.stops import _Sorted

    sorted_ = _Sorted(lean)
    assert sorted_._idx is not None  # out of order: a real column is taken in sorted order
    assert np.shares_memory(sorted_.column(lean, "speed_mps"), lean["speed_mps"].to_numpy())
    assert not np.shares_memory(sorted_.column(lean, "lat"), lean["lat"].to_numpy())
    pd.testing.assert_series_equal(la["stop_id"], fa["stop_id"])
