"""Recurring places: where a subject (or several) stopped again and again.

**Place.** Stop centres closer than ``eps_m`` to one another are linked (single linkage);
each group of linked stops is a place, whose centre is the median of its stops' centres.
A place reports how many stops it holds, how many distinct subjects and days, its first
arrival and last departure, and the stop ids behind it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from .geo import cluster_points_m, haversine_m

__all__ = ["cluster_places"]


def cluster_places(stops: pd.DataFrame, *, eps_m: float = 150.0, min_stops: int = 1,
                   per_subject: bool = False, tz: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(stops with place_id, places)`` (see module rule).

    ``per_subject`` clusters each subject's stops separately; by default places are shared
    across subjects (so a safehouse used by a phone and a lorry is one place). Days are
    counted in ``tz`` (default UTC).

    Parameters
    ----------
    stops : pandas.DataFrame
        A ``stops`` table (from :func:`routetrace.routes.stops.detect_stops`).
    eps_m : float, default 150.0
        Linkage distance in metres between stop centres.
    min_stops : int, default 1
        Fewest stops a place needs; default 1 so every stop belongs to a place.
    per_subject : bool, default False
        Cluster each subject's stops separately (see above).
    tz : str, optional
        IANA zone in which distinct days are counted; default None: UTC.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(stops with place_id, places)``: a copy of the stops with a ``place_id`` link
        column (NA for stops in no place), and one row per place: ``place_id, lat, lon,
        radius_m, n_stops, n_subjects, subjects, n_days, first_arrival, last_departure,
        total_dwell, stop_ids``.

    Example
    -------
    >>> from routetrace.routes.stops import detect_stops
    >>> from routetrace.testing import make_fixes
    >>> t = list(pd.date_range("2025-10-26T21:00Z", periods=10, freq="1min")) * 2
    >>> f = make_fixes(subject_id=["lorry"] * 10 + ["phone"] * 10, t_utc=t,
    ...                lat=[51.0] * 10 + [51.0005] * 10, lon=3.87, h_acc_m=5.0)
    >>> linked, places = cluster_places(detect_stops(f)[1])
    >>> linked["place_id"].nunique(), len(places)
    (1, 1)
    """
    schema.validate(stops, "stops")
    st = stops.copy()
    st["place_id"] = pd.array([pd.NA] * len(st), dtype="string")
    cols = ["place_id", "lat", "lon", "radius_m", "n_stops", "n_subjects", "subjects", "n_days",
            "first_arrival", "last_departure", "total_dwell", "stop_ids"]
    if st.empty:
        return st, pd.DataFrame(columns=cols)
    groups = [("", st)] if not per_subject else list(st.groupby("subject_id", sort=True))
    rows: list[dict[str, object]] = []
    for prefix, g in groups:
        labels = cluster_points_m(g["lat"].to_numpy(float), g["lon"].to_numpy(float), eps_m=eps_m)
        for lab in np.unique(labels):
            m = g[labels == lab]
            if len(m) < min_stops:
                continue
            pid = f"{prefix + ':' if prefix else ''}P{len(rows) + 1:04d}"
            st.loc[m.index, "place_id"] = pid
            clat, clon = float(m["lat"].median()), float(m["lon"].median())
            days = m["t_arrival"].dt.tz_convert(tz or "UTC").dt.date
            rows.append({
                "place_id": pid, "lat": clat, "lon": clon,
                "radius_m": float(haversine_m(m["lat"].to_numpy(float), m["lon"].to_numpy(float), clat, clon).max()),
                "n_stops": len(m), "n_subjects": m["subject_id"].nunique(),
                "subjects": "|".join(sorted(m["subject_id"].astype(str).unique())),
                "n_days": days.nunique(), "first_arrival": m["t_arrival"].min(),
                "last_departure": m["t_departure"].max(), "total_dwell": m["dwell"].sum(),
                "stop_ids": "|".join(m["stop_id"].astype(str)),
            })
    places = pd.DataFrame(rows, columns=cols).sort_values(["n_stops", "place_id"], ascending=[False, True])
    places = places.reset_index(drop=True)
    places.attrs["params"] = {"eps_m": eps_m, "min_stops": min_stops, "per_subject": per_subject}
    return st, places
