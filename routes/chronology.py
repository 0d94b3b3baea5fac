"""The chronology: per subject, the ordered sequence stop → trip → gap → stop.

Each row gives UTC times and the local time of the place with its UTC offset (the zone of
the position from timezonefinder's offline polygons, with the summer-time rule of that
date from zoneinfo; a trip that crosses a border starts in one zone and ends in another),
and the evidence behind it (stop, trip or gap id; the number of fixes). Local times are
written by the one formatter every output uses, :func:`routetrace.localtime.fmt_local`
(a missing time is ``unknown``).
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from ..localtime import fmt_local
from .geo import local_zone

__all__ = ["order_chronology", "fmt_local"]

COLUMNS = ["subject_id", "seq", "kind", "ref_id", "t_start_utc", "t_end_utc", "local_start",
           "local_end", "tz_start", "tz_end", "duration", "dwell", "lat", "lon", "radius_m",
           "distance_m", "n_fixes", "observed_fraction", "flags"]


def order_chronology(stops: pd.DataFrame, trips: pd.DataFrame, gaps: pd.DataFrame) -> pd.DataFrame:
    """Order stops, trips and gaps per subject into one table (see module doc).

    Parameters
    ----------
    stops : pandas.DataFrame
        A ``stops`` table (from :func:`routetrace.routes.stops.detect_stops`).
    trips : pandas.DataFrame
        A ``trips`` table (from :func:`routetrace.routes.trips.build_trips`).
    gaps : pandas.DataFrame
        A ``gaps`` table (``stops.attrs["gaps"]`` or
        :func:`routetrace.routes.stops.detect_gaps`).

    Returns
    -------
    pandas.DataFrame
        One row per stop, trip or gap, in time order per subject, with the columns of
        ``COLUMNS`` (``seq`` numbers the rows of each subject from 1).

    Example
    -------
    >>> from routetrace.routes.stops import detect_stops
    >>> from routetrace.routes.trips import build_trips
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id="lorry", t_utc=pd.date_range("2025-10-26T21:00Z", periods=12,
    ...                freq="1min"), lat=51.0, lon=3.87, h_acc_m=5.0)
    >>> linked, stops = detect_stops(f)
    >>> trips = build_trips(linked, stops, gaps=stops.attrs["gaps"])
    >>> order_chronology(stops, trips, stops.attrs["gaps"])[["kind", "local_start"]].values.tolist()
    [['stop', '2025-10-26 22:00:00 CET (UTC+01:00)']]
    """
    rows = []
    for r in stops.itertuples():
        tz = local_zone(r.lat, r.lon)
        rows.append({"subject_id": r.subject_id, "kind": "stop", "ref_id": r.stop_id,
                     "t_start_utc": r.t_arrival, "t_end_utc": r.t_departure, "tz_start": tz, "tz_end": tz,
                     "duration": r.t_departure - r.t_arrival, "dwell": r.dwell, "lat": r.lat, "lon": r.lon,
                     "radius_m": r.radius_m, "n_fixes": r.n_fixes, "observed_fraction": r.observed_fraction,
                     "flags": r.flags})
    stop_pos = {r.stop_id: (r.lat, r.lon) for r in stops.itertuples()}
    for r in trips.itertuples():
        a = stop_pos.get(r.start_stop_id) if pd.notna(r.start_stop_id) else None
        b = stop_pos.get(r.end_stop_id) if pd.notna(r.end_stop_id) else None
        tz0 = local_zone(*a) if a else (local_zone(*b) if b else "UTC")
        tz1 = local_zone(*b) if b else tz0
        rows.append({"subject_id": r.subject_id, "kind": "trip", "ref_id": r.trip_id,
                     "t_start_utc": r.t_start, "t_end_utc": r.t_end, "tz_start": tz0, "tz_end": tz1,
                     "duration": r.duration, "distance_m": r.distance_m, "n_fixes": r.n_fixes,
                     "flags": r.flags})
    for r in gaps.itertuples():
        rows.append({"subject_id": r.subject_id, "kind": "gap", "ref_id": r.gap_id,
                     "t_start_utc": r.t_start, "t_end_utc": r.t_end,
                     "tz_start": local_zone(r.lat_start, r.lon_start), "tz_end": local_zone(r.lat_end, r.lon_end),
                     "duration": r.duration, "distance_m": r.distance_m, "lat": r.lat_start,
                     "lon": r.lon_start, "flags": r.flags})
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.DataFrame(rows)
    order = {"stop": 0, "gap": 1, "trip": 2}
    df["_k"] = df["kind"].map(order)
    df = df.sort_values(["subject_id", "t_start_utc", "_k"], kind="mergesort").drop(columns="_k")
    df["seq"] = df.groupby("subject_id").cumcount() + 1
    df["local_start"] = [fmt_local(t, z) for t, z in zip(df["t_start_utc"], df["tz_start"], strict=True)]
    df["local_end"] = [fmt_local(t, z) for t, z in zip(df["t_end_utc"], df["tz_end"], strict=True)]
    return df.reindex(columns=COLUMNS).reset_index(drop=True)


# deprecated aliases (old stage names), kept for one release


def chronology(*args: Any, **kwargs: Any) -> Any:
    """Deprecated: the old name of :func:`order_chronology` (removed in the next release)."""
    warnings.warn("routetrace: chronology() is renamed order_chronology(); the old name goes in "
                  "the next release", DeprecationWarning, stacklevel=2)
    return order_chronology(*args, **kwargs)
