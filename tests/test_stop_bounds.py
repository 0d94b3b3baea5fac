"""Stop bounds (#17): t_arrival_after / t_departure_before, moving edges, fixes that do not bound."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from routetrace import schema
from routetrace.routes import detect_stops
from routetrace.testing import make_fixes

T0 = pd.Timestamp("2025-10-26T20:00Z")
LAT, LON = 51.0, 3.87
M_PER_DEG = 111_195.0


def _times(seconds: list[float]) -> list[pd.Timestamp]:
    return [T0 + pd.Timedelta(seconds=s) for s in seconds]


def _north(m: float) -> float:
    return LAT + m / M_PER_DEG


def test_bounds_are_the_fixes_elsewhere_around_the_stop() -> None:
    # a drive in (fixes 600 m apart every 30 s), 20 min at the place, a drive out
    t = [0, 30, 60] + [90 + 60 * k for k in range(21)] + [1320, 1350]
    lat = [_north(-1800), _north(-1200), _north(-600)] + [LAT] * 21 + [_north(600), _north(1200)]
    _, stops = detect_stops(make_fixes(t_utc=_times(t), lat=lat, lon=LON, h_acc_m=5.0))
    schema.validate(stops, "stops")
    s = stops.iloc[0]
    assert s["t_arrival_after"] == T0 + pd.Timedelta(seconds=60) and s["t_arrival"] == T0 + pd.Timedelta(seconds=90)
    assert s["t_departure"] == T0 + pd.Timedelta(seconds=1290)
    assert s["t_departure_before"] == T0 + pd.Timedelta(seconds=1320)


def test_record_that_begins_or_ends_with_the_stop_has_open_bounds() -> None:
    f = make_fixes(t_utc=pd.date_range(T0, periods=12, freq="1min"), lat=LAT, lon=LON, h_acc_m=5.0)
    _, stops = detect_stops(f)
    assert stops["t_arrival_after"].isna().all() and stops["t_departure_before"].isna().all()


def test_moving_fixes_at_the_edges_are_not_part_of_the_stop() -> None:
    # approach: a fix 60 m out, 3 s before stopping (20 m/s); leaving: 1 s after the last
    # fix at rest, 20 m out; both inside radius_m, both moving
    t = [0, 30, 57] + [60 + 60 * k for k in range(11)] + [661, 690]
    lat = [_north(-1200), _north(-600), _north(-60)] + [LAT] * 11 + [_north(20), _north(600)]
    f = make_fixes(t_utc=_times(t), lat=lat, lon=LON, h_acc_m=5.0)
    _, stops = detect_stops(f)
    s = stops.iloc[0]
    assert s["t_arrival"] == T0 + pd.Timedelta(seconds=60) and s["t_departure"] == T0 + pd.Timedelta(seconds=660)
    # the moving fixes lie within the radius: they do not place the subject elsewhere either,
    # so the bounds are the fixes 600 m out
    assert s["t_arrival_after"] == T0 + pd.Timedelta(seconds=30)
    assert s["t_departure_before"] == T0 + pd.Timedelta(seconds=690)
    # the reported speed tells the same when the step cannot (a fix at the centre, moving)
    speed = np.zeros(len(t))
    speed[3] = 12.0
    _, stops = detect_stops(f.assign(speed_mps=speed))
    assert stops.iloc[0]["t_arrival"] == T0 + pd.Timedelta(seconds=120)
    # with edge_speed_mps above the approach speed, the moving fixes are kept (the old rule)
    _, stops = detect_stops(f, edge_speed_mps=50.0)
    assert stops.iloc[0]["t_arrival"] == T0 + pd.Timedelta(seconds=57)


def test_cell_fix_without_accuracy_neither_joins_nor_bounds_a_stop() -> None:
    t = [60 * k for k in range(11)] + [700, 1000]
    lat = [LAT] * 11 + [_north(1100), _north(3000)]
    kind = ["wifi"] * 11 + ["cell", "gps"]
    f = make_fixes(t_utc=_times(t), lat=lat, lon=LON, h_acc_m=[30.0] * 11 + [np.nan, 5.0], fix_kind=kind)
    linked, stops = detect_stops(f)
    s = stops.iloc[0]
    assert s["t_departure"] == T0 + pd.Timedelta(seconds=600)
    assert s["t_departure_before"] == T0 + pd.Timedelta(seconds=1000)  # the GPS fix, not the cell one
    assert pd.isna(linked["stop_role"].iloc[11])  # not a member: it does not place the subject


# --- the valid bounds (#17): t_arrival_before / t_departure_after ----------------------------

def _ignition(*pairs: tuple[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"subject_id": "subject",
                         "t_utc": [T0 + pd.Timedelta(seconds=s) for _, s in pairs],
                         "kind": [k for k, _ in pairs], "source_id": "0" * 64,
                         "record": [str(i) for i in range(len(pairs))], "flags": ""})


def test_jittery_approach_the_first_fix_is_not_the_arrival_the_first_fix_at_rest_is() -> None:
    # a drive in at 20 m/s (fixes every 30 s); the last one 3 s before stopping (at 60 s), 60 m
    # out and so inside radius_m; no fix at the moment of stopping; then 18 min at rest with
    # 20 m of jitter, fixes every 2 min from 180 s (slow steps)
    rng = np.random.default_rng(4)
    jitter = list(rng.normal(0, 20, 10))
    t = [0, 30, 57] + [180 + 120 * k for k in range(10)] + [1330, 1360]
    lat = [_north(-1140), _north(-540), _north(-60)] + [_north(j) for j in jitter] + [_north(600), _north(1200)]
    f = make_fixes(t_utc=_times(t), lat=lat, lon=LON, h_acc_m=8.0)
    _, stops = detect_stops(f)
    s = stops.iloc[0]
    # the detector keeps the approach fix (the step from it to the next member is slow) ...
    assert s["t_arrival"] == T0 + pd.Timedelta(seconds=57)
    # ... so the true arrival (60 s) is later than t_arrival; the bound is the first fix at rest
    assert s["t_arrival_after"] == T0 + pd.Timedelta(seconds=30)
    assert s["t_arrival_before"] == T0 + pd.Timedelta(seconds=180)
    # the last fix's step to the next is fast (600 m in 70 s): it may have been taken while
    # leaving, so the fix before it bounds the departure (conservative)
    assert s["t_departure"] == T0 + pd.Timedelta(seconds=1260)
    assert s["t_departure_after"] == T0 + pd.Timedelta(seconds=1140)
    assert s["t_departure_before"] == T0 + pd.Timedelta(seconds=1330)
    schema.validate(stops, "stops")


def test_slow_entry_and_a_fix_within_three_accuracies_do_not_bound() -> None:
    # in at 10 m/s, then 5.7 m/s to a fix 130 m out stated at 20 m (within 100 + 3 x 20: it may
    # have been taken at the place, so it is not "elsewhere"), then walking pace into the place
    t = [0, 30, 60, 90] + [120 + 120 * k for k in range(8)] + [1300]
    lat = [_north(-600), _north(-300), _north(-130), _north(-60)] + [LAT] * 8 + [_north(900)]
    acc = [5.0, 5.0, 20.0, 5.0] + [5.0] * 8 + [5.0]
    _, stops = detect_stops(make_fixes(t_utc=_times(t), lat=lat, lon=LON, h_acc_m=acc))
    s = stops.iloc[0]
    assert s["t_arrival_after"] == T0 + pd.Timedelta(seconds=30)  # 300 m out, 5 m: elsewhere
    assert s["t_arrival_before"] == T0 + pd.Timedelta(seconds=90)  # 70 m in 30 s: walking pace
    assert s["t_arrival_before"] >= s["t_arrival"]
    # a departure at walking pace (900 m in 340 s): the last fix at the place bounds it
    assert s["t_departure_after"] == T0 + pd.Timedelta(seconds=960)
    assert s["t_departure_before"] == T0 + pd.Timedelta(seconds=1300)


def test_hourly_truck_reports_bounded_by_ignition() -> None:
    # truck: approach fix 5 s before stopping (100 m out), ignition-off 20 s after stopping,
    # one report an hour while parked, ignition-on 60 s before leaving, next fix 30 s after
    # leaving 600 m out
    stop_t, leave_t = 35, 35 + 3 * 3600 + 600
    t = [0, 30, *(stop_t + 3600 * k for k in range(1, 4)), leave_t - 60, leave_t + 30]
    lat = [_north(-700), _north(-100), _north(10), _north(-15), _north(5), _north(0), _north(600)]
    f = make_fixes(t_utc=_times(t), lat=lat, lon=LON, h_acc_m=5.0)
    ev = _ignition(("ignition_off", stop_t + 20), ("ignition_on", leave_t - 60))
    _, stops = detect_stops(f, events=ev)
    s = stops.iloc[0]
    assert s["t_arrival"] == T0 + pd.Timedelta(seconds=30)  # the approach fix (100 m out, inside)
    assert s["t_arrival_after"] == T0 + pd.Timedelta(seconds=0)
    assert s["t_arrival_before"] == T0 + pd.Timedelta(seconds=stop_t + 20)  # the ignition-off
    assert s["t_departure_after"] == T0 + pd.Timedelta(seconds=leave_t - 60)  # the ignition-on
    assert s["t_departure_before"] == T0 + pd.Timedelta(seconds=leave_t + 30)
    # without the events: the first hourly report (at rest) and the fix at ignition-on, whose
    # step to the next fix is 600 m in 90 s, so the last report before it bounds the departure
    _, stops = detect_stops(f)
    s = stops.iloc[0]
    assert s["t_arrival_before"] == T0 + pd.Timedelta(seconds=stop_t + 3600)
    assert s["t_departure_after"] == T0 + pd.Timedelta(seconds=stop_t + 3 * 3600)
    for a, b in (("t_arrival_after", "t_arrival_before"), ("t_departure_after", "t_departure_before")):
        assert s[a] <= s[b]


def test_moving_departure_fix_at_the_place_is_not_the_departure_bound() -> None:
    # the phone's first fix of the drive away, 1 s after leaving and 20 m out, is a member;
    # the step from it to the next (20 s, 400 m) is fast, so the bound is the fix before it
    t = [60 * k for k in range(11)] + [661, 681]
    lat = [LAT] * 11 + [_north(20), _north(420)]
    _, stops = detect_stops(make_fixes(t_utc=_times(t), lat=lat, lon=LON, h_acc_m=30.0))
    s = stops.iloc[0]
    assert s["t_departure"] == T0 + pd.Timedelta(seconds=661)
    assert s["t_departure_after"] == T0 + pd.Timedelta(seconds=600)
    assert s["t_departure_before"] == T0 + pd.Timedelta(seconds=681)


def _without_boundary_fixes(fixes: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The simulator's fixes at a stay's exact arrival, 0.5 s before and at its departure removed
    (as bench/validate.py does for its primary rows): no real device records those."""
    t = fixes["t_utc"].astype("int64")
    drop = pd.Series(False, index=fixes.index)
    for r in truth.itertuples():
        a, d = pd.Timestamp(r.t_arrival).value, pd.Timestamp(r.t_departure).value
        drop |= (fixes["subject_id"] == r.subject_id) & t.isin([a, d - 500_000_000, d])
    return fixes[~drop].reset_index(drop=True)


@pytest.mark.parametrize("kind", ["truck", "phone"])
def test_bounds_contain_the_simulated_truth(kind: str) -> None:
    from routetrace.samples.simulate import bounds_coverage, simulate

    # seed 3: not one of the seeds docs/validation.md reports
    f, ev, truth = simulate(n_fixes=20_000, kind=kind, seed=3)
    _, stops = detect_stops(_without_boundary_fixes(f, truth), events=ev if kind == "truck" else None)
    cov = bounds_coverage(stops, truth)
    assert len(cov) > 100
    both = (cov["arrival_within"] & cov["departure_within"]).mean()
    assert both >= 0.99, both
    # the detected first and last fixes are not such bounds (the approach and the drive away)
    cov_old = bounds_coverage(stops.drop(columns=["t_arrival_before", "t_departure_after"]), truth)
    assert (cov_old["arrival_within"] & cov_old["departure_within"]).mean() < 0.9


def test_chronology_words_use_the_valid_bounds() -> None:
    from routetrace.maps.chronology import build_chronology

    # the jittery approach: arrived between the fix 540 m out (20:00:30 UTC) and the first fix
    # at rest (20:03:00), not the approach fix (20:00:57)
    t = [0, 30, 57] + [180 + 120 * k for k in range(10)] + [1330, 1360]
    lat = [_north(-1140), _north(-540), _north(-60)] + [LAT] * 10 + [_north(600), _north(1200)]
    _, stops = detect_stops(make_fixes(t_utc=_times(t), lat=lat, lon=LON, h_acc_m=8.0))
    row = build_chronology(stops).iloc[0]
    assert row["arrival"] == "arrived between 21:00 and 21:03", row["arrival"]  # CET
    assert row["departure"] == "left between 21:19 and 21:22", row["departure"]


def _scattered_stay(scatter_m: float) -> pd.DataFrame:
    """A drive in from the south, 22 min at rest with fixes ``scatter_m`` north, south, east
    and west of the place in turn (every 2 min, all stated at 5 m), a drive out to the north.
    The last fix of the approach lies 140 m south of the place and the first of the drive out
    140 m north: beyond radius_m + 3 x 5 m (115 m), within the device's own scatter at rest."""
    east = 1.0 / (M_PER_DEG * np.cos(np.radians(LAT)))
    off = [(scatter_m, 0.0), (-scatter_m, 0.0), (0.0, scatter_m), (0.0, -scatter_m)] * 3
    t = [0, 30, 60] + [120 + 120 * k for k in range(12)] + [1560, 1590, 1620]
    north = [-1800.0, -1200.0, -140.0] + [n for n, _ in off] + [140.0, 1200.0, 1800.0]
    lon = [LON] * 3 + [LON + e * east for _, e in off] + [LON] * 3
    return make_fixes(t_utc=_times(t), lat=[_north(n) for n in north], lon=lon, h_acc_m=5.0)


def test_a_device_that_understates_its_accuracy_is_calibrated_by_its_scatter_at_rest() -> None:
    from routetrace.routes.stops import elsewhere_factor

    # at rest the fixes lie 60 m from the place although they state 5 m: the device
    # understates its error 60 / 5 / 0.78 = 15.4 times, so a fix is elsewhere only beyond
    # 100 + 3 x 15.4 x 5 = 331 m; the fixes 140 m out may have been taken at the place
    _, stops = detect_stops(_scattered_stay(60.0))
    assert len(stops) == 1
    s = stops.iloc[0]
    assert s["t_arrival"] == T0 + pd.Timedelta(seconds=120) and s["radius_m"] > 59
    assert s["t_arrival_after"] == T0 + pd.Timedelta(seconds=30)  # 1,200 m out (the old rule: 60 s)
    assert s["t_departure_before"] == T0 + pd.Timedelta(seconds=1590)  # (the old rule: 1,560 s)
    # the factor is the median at-rest error in stated accuracies over the 0.78 a true 68 %
    # radius gives, times three, and never below three
    f = elsewhere_factor(np.zeros(12, dtype=np.int64), np.full(12, 12.0), n_subjects=1)
    assert f.round(2).tolist() == [round(3 * 12 / 0.78, 2)]
    # a device whose fixes at rest agree with its stated accuracy (here: exactly at the place)
    # keeps the factor 3: the same fixes 140 m out do place it elsewhere
    _, stops = detect_stops(_scattered_stay(0.0))
    s = stops.iloc[0]
    assert s["t_arrival_after"] == T0 + pd.Timedelta(seconds=60)
    assert s["t_departure_before"] == T0 + pd.Timedelta(seconds=1560)


def test_one_instant_recorded_by_two_sources_is_not_a_movement() -> None:
    """A tracker's own file and its portal export both record the first fix of a parked
    lorry, a few centimetres apart (different rounding): that is one position, not an
    infinitely fast step, so the lorry was at rest from that fix on (the sample case's
    lorry-1 read 'arrived by 19:30' for a record that begins with it parked at 18:30)."""
    t = pd.date_range(T0, periods=12, freq="10min")
    own = make_fixes(t_utc=t, lat=LAT, lon=LON, source_id="a" * 64)
    portal = make_fixes(t_utc=t[:1], lat=_north(0.05), lon=LON, source_id="b" * 64)
    _, stops = detect_stops(pd.concat([portal, own], ignore_index=True))
    s = stops.iloc[0]
    assert s["t_arrival"] == T0 and s["t_arrival_before"] == T0
    # two positions of one instant 50 m apart stay a fast step (not at rest)
    far = make_fixes(t_utc=t[:1], lat=_north(50.0), lon=LON, source_id="b" * 64)
    _, stops = detect_stops(pd.concat([far, own], ignore_index=True))
    assert stops.iloc[0]["t_arrival_before"] > T0
