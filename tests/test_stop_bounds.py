"""Stop bounds (#17): t_arrival_after / t_departure_before, moving edges, fixes that do not bound."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
