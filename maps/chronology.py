"""The chronology: numbered stops and unobserved intervals, in time order, in local time.

The same table feeds the map's numbered markers, the chronology page of the PDF and the
chronology CSV, so the number a court sees on the map is the number in the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..geodesy import haversine_m
from .localtime import fmt_duration, fmt_local, tz_names

__all__ = ["build_chronology", "number_stops"]



def number_stops(stops: pd.DataFrame) -> pd.DataFrame:
    """Return ``stops`` sorted by arrival (then subject, stop id) with ``no`` = 1..n."""
    out = stops.sort_values(["t_arrival", "subject_id", "stop_id"], kind="mergesort").reset_index(drop=True)
    out["no"] = np.arange(1, len(out) + 1)
    return out


def _near_place(stops: pd.DataFrame, places: pd.DataFrame | None) -> list[str]:
    """Name of the closest named place within its radius + the stop radius (or '')."""
    if places is None or not len(places) or not len(stops):
        return [""] * len(stops)
    pl = places[places["lat"].notna() & places["lon"].notna()]
    if not len(pl):
        return [""] * len(stops)
    d = haversine_m(stops["lat"].to_numpy(float)[:, None], stops["lon"].to_numpy(float)[:, None],
                     pl["lat"].to_numpy(float)[None, :], pl["lon"].to_numpy(float)[None, :])
    reach = (np.nan_to_num(pl["radius_m"].to_numpy(float), nan=50.0)[None, :]
             + np.nan_to_num(stops["radius_m"].to_numpy(float), nan=50.0)[:, None] + 50.0)
    d = np.where(d <= reach, d, np.inf)
    best = np.argmin(d, axis=1)
    names = pl["name"].astype("string").fillna(pl["place_id"].astype("string")).tolist()
    return [names[j] if np.isfinite(d[i, j]) else "" for i, j in enumerate(best)]


def build_chronology(stops: pd.DataFrame, gaps: pd.DataFrame | None = None,
                     places: pd.DataFrame | None = None,
                     sources: pd.DataFrame | None = None) -> pd.DataFrame:
    """Numbered stops and unobserved intervals as one time-ordered table.

    Columns: ``no`` (stop number, NA for gaps), ``row_kind`` (``stop`` / ``unobserved``),
    ``subject_id``, ``id``, ``tz``, ``start_local``, ``end_local`` (local time of the place
    with its UTC offset), ``start_utc``, ``end_utc`` (ISO 8601 Z), ``dwell`` (stops: observed
    dwell; gaps: duration), ``lat``, ``lon``, ``radius_m``, ``n_fixes``,
    ``observed_fraction``, ``near_place``, ``sources`` (file names with SHA-256 prefixes),
    ``flags``.
    """
    st = number_stops(stops)
    src_name: dict[str, str] = {}
    if sources is not None and len(sources):
        for sid, path in zip(sources["source_id"].astype(str), sources["path"].astype(str), strict=True):
            src_name[sid] = f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]} ({sid[:12]})"
    tzs = tz_names(st["lat"], st["lon"])
    rows: list[dict[str, object]] = []
    near = _near_place(st, places)
    for i, r in enumerate(st.itertuples(index=False)):
        srcs = [s for s in str(r.sources).split("|") if s]
        rows.append({
            "no": int(r.no), "row_kind": "stop", "subject_id": r.subject_id, "id": r.stop_id,
            "tz": tzs[i], "start_local": fmt_local(r.t_arrival, tzs[i]),
            "end_local": fmt_local(r.t_departure, tzs[i]),
            "start_utc": r.t_arrival.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_utc": r.t_departure.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dwell": fmt_duration(r.dwell), "lat": float(r.lat), "lon": float(r.lon),
            "radius_m": float(r.radius_m), "n_fixes": int(r.n_fixes),
            "observed_fraction": float(r.observed_fraction), "near_place": near[i],
            "sources": "; ".join(src_name.get(s, s[:12]) for s in srcs), "flags": str(r.flags),
            "_t": r.t_arrival,
        })
    if gaps is not None and len(gaps):
        g = gaps.sort_values(["t_start", "subject_id", "gap_id"], kind="mergesort")
        glat = g["lat_start"].to_numpy(float)
        glon = g["lon_start"].to_numpy(float)
        gtz = tz_names(np.where(np.isnan(glat), g["lat_end"].to_numpy(float), glat),
                       np.where(np.isnan(glon), g["lon_end"].to_numpy(float), glon))
        for i, r in enumerate(g.itertuples(index=False)):
            rows.append({
                "no": pd.NA, "row_kind": "unobserved", "subject_id": r.subject_id, "id": r.gap_id,
                "tz": gtz[i], "start_local": fmt_local(r.t_start, gtz[i]),
                "end_local": fmt_local(r.t_end, gtz[i]),
                "start_utc": r.t_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end_utc": r.t_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "dwell": fmt_duration(r.duration), "lat": float(r.lat_start), "lon": float(r.lon_start),
                "radius_m": np.nan, "n_fixes": 0, "observed_fraction": 0.0, "near_place": "",
                "sources": "", "flags": str(r.flags), "_t": r.t_start,
            })
    cols = ["no", "row_kind", "subject_id", "id", "tz", "start_local", "end_local", "start_utc",
            "end_utc", "dwell", "lat", "lon", "radius_m", "n_fixes", "observed_fraction",
            "near_place", "sources", "flags"]
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in cols})
    df = pd.DataFrame(rows)
    df["_k"] = (df["row_kind"] == "stop").astype(int)
    df = df.sort_values(["_t", "_k", "subject_id", "id"], kind="mergesort").reset_index(drop=True)
    df["no"] = df["no"].astype("Int64")
    return df[cols]
