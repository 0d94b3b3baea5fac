"""Trips (legs) between stops, and the comparison with stops a fleet portal computed.

**Trip.** For each subject, the movement between two consecutive stops: it starts at the
departure of one stop and ends at the arrival of the next. The trip before the first stop
and after the last one (start and end of the record) have no start or end stop. Distance
is the sum of great-circle steps through the trip's position fixes, from the first stop's
centre to the next stop's centre; it is a lower bound of the distance travelled (the path
between fixes is unknown). A trip containing an unobserved interval says so (``n_gaps``,
flag ``spans_gap``): the straight line across a silence is not the route.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from .geo import haversine_m
from .order import sort_fixes

__all__ = ["build_trips", "compare_portal_stops"]


def build_trips(fixes: pd.DataFrame, stops: pd.DataFrame, *, gaps: pd.DataFrame | None = None,
                max_h_acc_m: float = 500.0) -> pd.DataFrame:
    """Return the ``trips`` table for ``stops`` (from :func:`detect_stops`) and ``fixes``.

    Parameters
    ----------
    fixes : pandas.DataFrame
        The ``fixes`` the stops were found in.
    stops : pandas.DataFrame
        A ``stops`` table of those fixes; a trip runs from one stop's departure to the next
        stop's arrival (and from the first fix to the first stop, and the last stop to the last
        fix).
    gaps : pandas.DataFrame, optional
        A ``gaps`` table; default None: ``stops.attrs["gaps"]``. Trips that contain a gap are
        flagged ``spans_gap``.
    max_h_acc_m : float, default 500.0
        Fixes with a worse accuracy (metres: cell towers) do not draw the route.

    Returns
    -------
    pandas.DataFrame
        A ``trips`` table (distance in metres along the fixes, from stop centre to stop
        centre; mean and maximum speed in m/s), parameters in ``attrs["params"]``.

    Example
    -------
    >>> from routetrace.routes.stops import detect_stops
    >>> from routetrace.testing import make_fixes
    >>> t = pd.date_range("2025-10-26T21:00Z", periods=30, freq="1min")
    >>> lat = [51.0] * 10 + [51.0 + 0.005 * k for k in range(1, 11)] + [51.05] * 10
    >>> linked, stops = detect_stops(make_fixes(subject_id="lorry", t_utc=t, lat=lat, lon=3.87,
    ...                                         h_acc_m=5.0))
    >>> trips = build_trips(linked, stops)
    >>> trips[["trip_id", "start_stop_id", "end_stop_id"]].values.tolist()
    [['lorry:T0001', 'lorry:S0001', 'lorry:S0002']]
    """
    schema.validate(fixes, "fixes")
    schema.validate(stops, "stops")
    gaps = stops.attrs.get("gaps") if gaps is None else gaps
    rows = []
    for subject, st in stops.groupby("subject_id", sort=True):
        st = st.sort_values("t_arrival")
        f = fixes[(fixes["subject_id"] == subject) & ~(fixes["h_acc_m"] > max_h_acc_m)]
        f = sort_fixes(f)  # equal times ordered by fix id
        ft = f["t_utc"]
        g = gaps[gaps["subject_id"] == subject] if gaps is not None and len(gaps) else None
        arr = st["t_arrival"].tolist()
        dep = st["t_departure"].tolist()
        ids = st["stop_id"].astype(str).tolist()
        legs = []
        if len(ft) and ft.min() < arr[0]:
            legs.append((None, ids[0], ft.min(), arr[0]))
        for k in range(len(ids) - 1):
            legs.append((ids[k], ids[k + 1], dep[k], arr[k + 1]))
        if len(ft) and ft.max() > dep[-1]:
            legs.append((ids[-1], None, dep[-1], ft.max()))
        centre = {r.stop_id: (r.lat, r.lon) for r in st.itertuples()}
        for a, b, t0, t1 in legs:
            inside = f[(ft > t0) & (ft < t1)]
            lat = inside["lat"].to_numpy(float)
            lon = inside["lon"].to_numpy(float)
            tt = inside["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
            if a is not None:  # from the centre of the stop left, at its departure
                lat, lon, tt = np.r_[centre[a][0], lat], np.r_[centre[a][1], lon], np.r_[t0.value, tt]
            if b is not None:  # to the centre of the stop reached, at its arrival
                lat, lon, tt = np.r_[lat, centre[b][0]], np.r_[lon, centre[b][1]], np.r_[tt, t1.value]
            steps = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]) if len(lat) > 1 else np.zeros(0)
            step_s = np.diff(tt) / 1e9
            with np.errstate(divide="ignore", invalid="ignore"):
                speeds = np.where(step_s > 0, steps / step_s, np.nan)
            speeds = speeds[np.isfinite(speeds)]
            n_gaps = 0
            if g is not None:
                n_gaps = int(((g["t_start"] >= t0) & (g["t_end"] <= t1)).sum())
            dur = t1 - t0
            dist = float(steps.sum())
            rows.append({
                "subject_id": subject, "start_stop_id": a, "end_stop_id": b, "t_start": t0, "t_end": t1,
                "duration": dur, "distance_m": dist,
                "mean_speed_mps": dist / dur.total_seconds() if dur.total_seconds() > 0 else np.nan,
                "max_speed_mps": float(speeds.max()) if len(speeds) else np.nan,
                "n_fixes": len(inside), "n_gaps": n_gaps, "flags": "spans_gap" if n_gaps else "",
            })
    if not rows:
        return schema.empty("trips")
    df = pd.DataFrame(rows)
    df["trip_id"] = [f"{s}:T{i + 1:04d}" for s, i in zip(df["subject_id"], df.groupby("subject_id").cumcount(), strict=True)]
    out = schema.coerce(df, "trips")
    out.attrs["params"] = {"max_h_acc_m": max_h_acc_m}
    return out


def compare_portal_stops(stops: pd.DataFrame, places: pd.DataFrame, *, radius_m: float = 200.0,
                         tolerance: pd.Timedelta = pd.Timedelta("10min")) -> pd.DataFrame:
    """Match stops a fleet portal computed (places of kind ``portal_stop``) with the engine's.

    A portal stop and an engine stop of the same subject agree when they overlap in time
    (each widened by ``tolerance``) and their centres are within ``radius_m``. Returns one
    row per portal stop and per unmatched engine stop: ``status`` is ``agree``,
    ``portal_only`` or ``engine_only``, with the time differences of arrival and departure.

    Parameters
    ----------
    stops : pandas.DataFrame
        The engine's ``stops`` table.
    places : pandas.DataFrame
        A ``places`` table; its rows of kind ``portal_stop`` are the portal's stops.
    radius_m : float, default 200.0
        Largest distance in metres between the portal's stop position and the engine's stop
        centre.
    tolerance : pandas.Timedelta, default 10 min
        Widening of each interval, both ends, before the overlap test.

    Returns
    -------
    pandas.DataFrame
        One row per portal stop and per unmatched engine stop, with ``status`` and the
        arrival and departure differences.

    Example
    -------
    >>> from routetrace import schema
    >>> from routetrace.routes.stops import detect_stops
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id="lorry", t_utc=pd.date_range("2025-10-26T21:00Z", periods=12,
    ...                freq="1min"), lat=51.0, lon=3.87, h_acc_m=5.0)
    >>> _, stops = detect_stops(f)
    >>> portal = schema.from_records([{
    ...     "place_id": "portal:1", "record": "1", "kind": "portal_stop", "subject_id": "lorry",
    ...     "lat": 51.0005, "lon": 3.87, "t_start": pd.Timestamp("2025-10-26T21:02Z"),
    ...     "t_end": pd.Timestamp("2025-10-26T21:10Z"), "source_id": "portal", "flags": ""}],
    ...     "places")
    >>> cmp = compare_portal_stops(stops, portal)
    >>> cmp[["status", "stop_id", "arrival_diff"]].values.tolist()
    [['agree', 'lorry:S0001', Timedelta('-1 days +23:58:00')]]
    """
    ps = places[places["kind"].astype(str) == "portal_stop"] if len(places) else places
    cols = ["status", "subject_id", "portal_place_id", "stop_id", "portal_start", "portal_end",
            "t_arrival", "t_departure", "arrival_diff", "departure_diff", "distance_m"]
    rows = []
    used: set[str] = set()
    for r in ps.itertuples():
        cand = stops[(stops["subject_id"] == r.subject_id)
                     & (stops["t_arrival"] - tolerance <= (r.t_end if pd.notna(r.t_end) else r.t_start))
                     & (stops["t_departure"] + tolerance >= r.t_start)]
        d = haversine_m(cand["lat"].to_numpy(float), cand["lon"].to_numpy(float), r.lat, r.lon) \
            if len(cand) else np.zeros(0)
        ok = cand[d <= radius_m]
        if len(ok):
            best = ok.iloc[int(np.argmin(d[d <= radius_m]))]
            used.add(str(best["stop_id"]))
            rows.append({"status": "agree", "subject_id": r.subject_id, "portal_place_id": r.place_id,
                         "stop_id": best["stop_id"], "portal_start": r.t_start, "portal_end": r.t_end,
                         "t_arrival": best["t_arrival"], "t_departure": best["t_departure"],
                         "arrival_diff": best["t_arrival"] - r.t_start,
                         "departure_diff": best["t_departure"] - r.t_end if pd.notna(r.t_end) else pd.NaT,
                         "distance_m": float(d[d <= radius_m].min())})
        else:
            rows.append({"status": "portal_only", "subject_id": r.subject_id, "portal_place_id": r.place_id,
                         "portal_start": r.t_start, "portal_end": r.t_end})
    portal_subjects = set(ps["subject_id"].astype(str)) if len(ps) else set()
    for r in stops[stops["subject_id"].astype(str).isin(portal_subjects)].itertuples():
        if str(r.stop_id) not in used:
            rows.append({"status": "engine_only", "subject_id": r.subject_id, "stop_id": r.stop_id,
                         "t_arrival": r.t_arrival, "t_departure": r.t_departure})
    return pd.DataFrame(rows, columns=cols)
