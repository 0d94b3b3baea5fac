"""The chronology: numbered stops and unobserved intervals, in time order, in local time.

The same table feeds the map's numbered markers, the chronology page of the PDF and the
chronology CSV, so the number a court sees on the map is the number in the table.

Each row is also written in words, for a reader who is not an analyst:

* ``arrival`` / ``departure``: "arrived between 13:02 and 13:10" — the last fix elsewhere
  and the first fix at rest at the place or an ignition-off (``t_arrival_after`` and
  ``t_arrival_before`` of the stop; "left between" uses ``t_departure_after`` and
  ``t_departure_before``: see :mod:`routetrace.routes.stops`), in the local time of the place;
* ``dwell_range``: the observed dwell as the minimum and the bounded span as the maximum;
* ``note``: unobserved or parked time spelled out ("no fixes 18:30–21:19 except single
  reports at 19:30 and 20:30"; "ignition off 18:30–21:20") instead of a bare flag;
* ``near_place``: the nearest named thing — a place a witness indicated, a geofence or an
  investigator's placemark with a human name, or else the nearest town or village
  (GeoNames, background only) with its distance. Internal ids of the places within reach
  go to ``sources``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..geodesy import haversine_m
from ..localtime import fmt_clock, fmt_duration, fmt_local, tz_names
from ..routes.stops import parked_intervals
from .gazetteer import nearest_places

__all__ = ["build_chronology", "number_stops"]

COLUMNS = ["no", "row_kind", "subject_id", "id", "tz", "start_local", "end_local", "start_utc",
           "end_utc", "dwell", "lat", "lon", "radius_m", "n_fixes", "observed_fraction",
           "near_place", "sources", "flags", "arrival", "departure", "dwell_range", "note",
           "arrival_after_utc", "departure_before_utc", "near_town"]

#: A name that is a key rather than words: no space and an underscore, colon, slash or '='.
_IDENT = re.compile(r"^\S*[_:/=]\S*$")


def _human(name: object) -> bool:
    """True for a name a reader can read (``hotel in Brussels``), not a key (``brussels_hotel``)."""
    return isinstance(name, str) and bool(name.strip()) and not _IDENT.match(name.strip())


def number_stops(stops: pd.DataFrame) -> pd.DataFrame:
    """Return ``stops`` sorted by arrival (then subject, stop id) with ``no`` = 1..n.

    Parameters
    ----------
    stops : pandas.DataFrame
        A ``stops`` table; not modified.

    Returns
    -------
    pandas.DataFrame
        A sorted copy with a new index and the column ``no``.

    Example
    -------
    >>> s = pd.DataFrame({"subject_id": ["phone", "lorry"], "stop_id": ["phone:S0001", "lorry:S0001"],
    ...                   "t_arrival": pd.to_datetime(["2025-10-26T22:00Z", "2025-10-26T21:00Z"])})
    >>> number_stops(s)[["no", "stop_id"]].values.tolist()
    [[1, 'lorry:S0001'], [2, 'phone:S0001']]
    """
    out = stops.sort_values(["t_arrival", "subject_id", "stop_id"], kind="mergesort").reset_index(drop=True)
    out["no"] = np.arange(1, len(out) + 1)
    return out


def _candidates(places: pd.DataFrame | None, geofences: pd.DataFrame | None) -> pd.DataFrame:
    """Places that can name a stop or be cited for it: label (or ''), ref, lat, lon, reach, rank."""
    rows: list[dict[str, object]] = []
    if places is not None and len(places):
        pl = places[places["lat"].notna() & places["lon"].notna()]
        for r in pl.itertuples(index=False):
            name, kind = r.name if isinstance(r.name, str) else "", str(r.kind)
            label, rank = "", 9
            if kind == "indicated" and _human(name):
                label, rank = f"{name.strip()} (indicated in a statement)", 0
            elif kind == "placemark" and _human(name):
                label, rank = f"{name.strip()} (investigator's placemark)", 1
            ref = name.strip() if kind in ("placemark", "geofence") and name.strip() else str(r.place_id)
            rows.append({"label": label, "ref": ref, "lat": float(r.lat), "lon": float(r.lon),
                         "reach": float(np.nan_to_num(r.radius_m, nan=50.0)), "rank": rank})
    if geofences is not None and len(geofences) and "wkt" in geofences:
        import shapely

        for name, wkt in zip(geofences["name"].astype(str), geofences["wkt"].astype(str), strict=True):
            g = shapely.from_wkt(wkt)
            c = g.centroid
            xy = np.asarray(g.exterior.coords if hasattr(g, "exterior") else g.coords)
            reach = float(haversine_m(np.full(len(xy), c.y), np.full(len(xy), c.x), xy[:, 1], xy[:, 0]).max())
            rows.append({"label": f"{name} (geofence)" if _human(name) else "", "ref": name,
                         "lat": float(c.y), "lon": float(c.x), "reach": reach, "rank": 1})
    return pd.DataFrame(rows, columns=["label", "ref", "lat", "lon", "reach", "rank"])


def _near_place(stops: pd.DataFrame, places: pd.DataFrame | None,
                geofences: pd.DataFrame | None = None) -> tuple[list[str], list[list[str]], list[str]]:
    """Per stop: the nearest named thing (see module doc), the refs of the places within
    reach and the nearest town or village (``''`` when none within 25 km).

    A place is within reach of a stop when its centre lies within its radius (50 m when
    unknown) plus the stop's radius plus 50 m of the stop's centre.
    """
    n = len(stops)
    if not n:
        return [], [], []
    lat, lon = stops["lat"].to_numpy(float), stops["lon"].to_numpy(float)
    labels: list[str] = [""] * n
    refs: list[list[str]] = [[] for _ in range(n)]
    cand = _candidates(places, geofences)
    if len(cand):
        d = haversine_m(lat[:, None], lon[:, None], cand["lat"].to_numpy(float)[None, :],
                        cand["lon"].to_numpy(float)[None, :])
        reach = cand["reach"].to_numpy(float)[None, :] + np.nan_to_num(stops["radius_m"].to_numpy(float),
                                                                       nan=50.0)[:, None] + 50.0
        rank = cand["rank"].to_numpy(int)
        for i in range(n):
            inside = np.flatnonzero(d[i] <= reach[i])
            order = inside[np.lexsort((d[i, inside], rank[inside]))]
            named = [j for j in order if cand["label"].iat[j]]
            labels[i] = str(cand["label"].iat[named[0]]) if named else ""
            by_dist = inside[np.argsort(d[i, inside], kind="mergesort")]
            refs[i] = list(dict.fromkeys(str(cand["ref"].iat[j]) for j in by_dist))[:3]
    towns = ["" if t is None else t.label() for t in nearest_places(lat, lon)]
    return [lb or tw for lb, tw in zip(labels, towns, strict=True)], refs, towns


def _arrival_text(after: pd.Timestamp, arr: pd.Timestamp, tz: str) -> str:
    a = fmt_clock(arr, tz, ref=arr)
    if pd.isna(after):
        return f"arrived by {a} (the record begins here)"
    b = fmt_clock(after, tz, ref=arr)
    return f"arrived at {a}" if a == b else f"arrived between {b} and {a}"


def _departure_text(dep: pd.Timestamp, before: pd.Timestamp, tz: str) -> str:
    a = fmt_clock(dep, tz, ref=dep)
    if pd.isna(before):
        return f"left at {a} or later (the record ends here)"
    b = fmt_clock(before, tz, ref=dep)
    return f"left at {a}" if a == b else f"left between {a} and {b}"


def _dwell_text(dwell: pd.Timedelta, span: pd.Timedelta, after: pd.Timestamp, before: pd.Timestamp) -> str:
    """``at least 1 h 05 min observed, at most 1 h 20 min`` (the span between the bounds)."""
    if pd.isna(after) or pd.isna(before):
        most = "open (the record {} with the stop)".format(
            "begins and ends" if pd.isna(after) and pd.isna(before) else "begins" if pd.isna(after) else "ends")
    else:
        most = fmt_duration(before - after)
    least = f"at least {fmt_duration(dwell)} observed" if dwell >= pd.Timedelta("1min") \
        else "observed only at isolated fixes"
    if fmt_duration(span) != fmt_duration(dwell):
        least += f" ({fmt_duration(span)} from its first to its last fix)"
    return f"{least}, at most {most}"


def _silence_text(g: pd.DataFrame, tz: str) -> str:
    """``no fixes 18:30–21:19 except single reports at 19:30 and 20:30``: chained silences merged."""
    parts = []
    i, n = 0, len(g)
    ts, te = g["t_start"].tolist(), g["t_end"].tolist()
    while i < n:
        j = i
        while j + 1 < n and te[j] == ts[j + 1]:
            j += 1
        a = fmt_clock(ts[i], tz, ref=ts[i])
        b = fmt_clock(te[j], tz, ref=ts[i])
        txt = f"no fixes {a}–{b}"
        if j > i:
            pings = [fmt_clock(te[k], tz, ref=ts[i]) for k in range(i, j)]
            txt += " except single reports at " + (", ".join(pings[:-1]) + " and " + pings[-1]
                                                   if len(pings) > 1 else pings[0])
        parts.append(txt)
        i = j + 1
    return "; ".join(parts)


def _stop_note(r: object, tz: str, gaps: pd.DataFrame | None, parked: pd.DataFrame) -> str:
    """Unobserved and parked time of one stop, in words."""
    notes = []
    subj, t0, t1 = r.subject_id, r.t_arrival, r.t_departure  # type: ignore[attr-defined]
    if len(parked):
        p = parked[(parked["subject_id"] == subj) & (parked["t_off"] <= t1)
                   & (parked["t_on"].isna() | (parked["t_on"] >= t0))]
        for q in p.itertuples(index=False):
            on = fmt_clock(q.t_on, tz, ref=q.t_off) if pd.notna(q.t_on) else "end of record"
            notes.append(f"ignition off {fmt_clock(q.t_off, tz, ref=q.t_off)}–{on}")
    if gaps is not None and len(gaps):
        g = gaps[(gaps["subject_id"] == subj) & (gaps["t_start"] >= t0) & (gaps["t_end"] <= t1)]
        if len(g):
            g = g.sort_values("t_start", kind="mergesort")
            total = g["duration"].sum()
            notes.append(f"unobserved {fmt_duration(total)} of {fmt_duration(t1 - t0)}: "
                         f"{_silence_text(g, tz)}")
    return "; ".join(notes)


def _source_names(sources: pd.DataFrame | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if sources is not None and len(sources):
        for sid, path in zip(sources["source_id"].astype(str), sources["path"].astype(str), strict=True):
            out[sid] = f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]} ({sid[:12]})"
    return out


def _utc(t: pd.Timestamp) -> str:
    return "" if t is None or pd.isna(t) else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _stop_rows(st: pd.DataFrame, gaps: pd.DataFrame | None, places: pd.DataFrame | None,
               sources: pd.DataFrame | None, geofences: pd.DataFrame | None,
               events: pd.DataFrame | None) -> list[dict[str, object]]:
    src_name = _source_names(sources)
    tzs = tz_names(st["lat"], st["lon"])
    near, refs, towns = _near_place(st, places, geofences)
    parked = parked_intervals(events)
    nat = pd.Series(pd.NaT, index=st.index, dtype="datetime64[ns, UTC]")
    after = st["t_arrival_after"] if "t_arrival_after" in st else nat
    before = st["t_departure_before"] if "t_departure_before" in st else nat
    arrived_by = st["t_arrival_before"] if "t_arrival_before" in st else st["t_arrival"]
    left_from = st["t_departure_after"] if "t_departure_after" in st else st["t_departure"]
    rows: list[dict[str, object]] = []
    for i, r in enumerate(st.itertuples(index=False)):
        srcs = "; ".join(src_name.get(s, s[:12]) for s in str(r.sources).split("|") if s)
        if refs[i]:
            srcs = (srcs + "; " if srcs else "") + "places within reach: " + ", ".join(refs[i])
        a, b = after.iat[i], before.iat[i]
        rows.append({
            "no": int(r.no), "row_kind": "stop", "subject_id": r.subject_id, "id": r.stop_id,
            "tz": tzs[i], "start_local": fmt_local(r.t_arrival, tzs[i]),
            "end_local": fmt_local(r.t_departure, tzs[i]),
            "start_utc": _utc(r.t_arrival), "end_utc": _utc(r.t_departure),
            "dwell": fmt_duration(r.dwell), "lat": float(r.lat), "lon": float(r.lon),
            "radius_m": float(r.radius_m), "n_fixes": int(r.n_fixes),
            "observed_fraction": float(r.observed_fraction), "near_place": near[i],
            "sources": srcs, "flags": str(r.flags),
            "arrival": _arrival_text(a, arrived_by.iat[i], tzs[i]),
            "departure": _departure_text(left_from.iat[i], b, tzs[i]),
            "dwell_range": _dwell_text(r.dwell, r.t_departure - r.t_arrival, a, b),
            "note": _stop_note(r, tzs[i], gaps, parked),
            "arrival_after_utc": _utc(a), "departure_before_utc": _utc(b), "near_town": towns[i],
            "_t": r.t_arrival,
        })
    return rows


def _distance(d_m: float) -> str:
    """``40 m`` below one kilometre, ``3.2 km`` from one on."""
    return f"{d_m:.0f} m" if d_m < 1000 else f"{d_m / 1000:.1f} km"


def _gap_rows(gaps: pd.DataFrame) -> list[dict[str, object]]:
    g = gaps.sort_values(["t_start", "subject_id", "gap_id"], kind="mergesort")
    glat, glon = g["lat_start"].to_numpy(float), g["lon_start"].to_numpy(float)
    gtz = tz_names(np.where(np.isnan(glat), g["lat_end"].to_numpy(float), glat),
                   np.where(np.isnan(glon), g["lon_end"].to_numpy(float), glon))
    rows: list[dict[str, object]] = []
    for i, r in enumerate(g.itertuples(index=False)):
        moved = "" if pd.isna(r.distance_m) else f"; the fixes before and after lie {_distance(r.distance_m)} apart"
        rows.append({
            "no": pd.NA, "row_kind": "unobserved", "subject_id": r.subject_id, "id": r.gap_id,
            "tz": gtz[i], "start_local": fmt_local(r.t_start, gtz[i]),
            "end_local": fmt_local(r.t_end, gtz[i]),
            "start_utc": _utc(r.t_start), "end_utc": _utc(r.t_end),
            "dwell": fmt_duration(r.duration), "lat": float(r.lat_start), "lon": float(r.lon_start),
            "radius_m": np.nan, "n_fixes": 0, "observed_fraction": 0.0, "near_place": "",
            "sources": "", "flags": str(r.flags), "arrival": "", "departure": "", "dwell_range": "",
            "note": f"no fixes {fmt_clock(r.t_start, gtz[i], ref=r.t_start)}–"
                    f"{fmt_clock(r.t_end, gtz[i], ref=r.t_start)} ({fmt_duration(r.duration)}){moved}",
            "arrival_after_utc": "", "departure_before_utc": "", "near_town": "", "_t": r.t_start,
        })
    return rows


def build_chronology(stops: pd.DataFrame, gaps: pd.DataFrame | None = None,
                     places: pd.DataFrame | None = None,
                     sources: pd.DataFrame | None = None, *,
                     geofences: pd.DataFrame | None = None,
                     events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Numbered stops and unobserved intervals as one time-ordered table.

    Columns: ``no`` (stop number, NA for gaps), ``row_kind`` (``stop`` / ``unobserved``),
    ``subject_id``, ``id``, ``tz``, ``start_local``, ``end_local`` (local time of the place
    with its UTC offset), ``start_utc``, ``end_utc`` (ISO 8601 Z), ``dwell`` (stops: observed
    dwell; gaps: duration), ``lat``, ``lon``, ``radius_m``, ``n_fixes``,
    ``observed_fraction``, ``near_place`` (a name, never an id: see the module doc),
    ``sources`` (file names with SHA-256 prefixes, then the ids of the places within
    reach), ``flags``, and in words ``arrival``, ``departure``, ``dwell_range``, ``note``,
    with the bounds in UTC ``arrival_after_utc``, ``departure_before_utc``, and
    ``near_town`` (the nearest GeoNames town or village with its distance, background).

    ``geofences`` (``name, wkt``) and ``events`` (ignition on/off) are optional: with them
    a stop can be named after a geofence and its parked time spelled out.

    Parameters
    ----------
    stops : pandas.DataFrame
        A ``stops`` table.
    gaps : pandas.DataFrame, optional
        A ``gaps`` table (the unobserved rows); default None: none.
    places : pandas.DataFrame, optional
        A ``places`` table whose places can name or be cited for a stop; default None.
    sources : pandas.DataFrame, optional
        The case's ``sources`` (file names and SHA-256 for the ``sources`` column); default
        None.
    geofences : pandas.DataFrame, optional
        ``name, wkt`` rows; default None.
    events : pandas.DataFrame, optional
        An ``events`` table (ignition on/off); default None.

    Returns
    -------
    pandas.DataFrame
        The rows in time order with the columns listed above (``COLUMNS``).

    Example
    -------
    >>> from routetrace.routes import detect_stops
    >>> from routetrace.testing import make_fixes
    >>> t = pd.date_range("2025-10-26T21:00Z", periods=30, freq="1min")
    >>> lat = np.r_[np.linspace(50.95, 50.874, 10), np.full(12, 50.875), np.linspace(50.874, 50.80, 8)]
    >>> _, stops = detect_stops(make_fixes(subject_id="lorry", t_utc=t, lat=lat, lon=4.26, h_acc_m=5.0))
    >>> row = build_chronology(stops).iloc[0]
    >>> row["arrival"], row["departure"], row["near_place"]
    ('arrived between 22:08 and 22:10', 'left between 22:21 and 22:23', 'Groot-Bijgaarden (Dilbeek), 0.8 km')
    """
    st = number_stops(stops)
    rows = _stop_rows(st, gaps, places, sources, geofences, events)
    if gaps is not None and len(gaps):
        rows += _gap_rows(gaps)
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in COLUMNS})
    df = pd.DataFrame(rows)
    df["_k"] = (df["row_kind"] == "stop").astype(int)
    df = df.sort_values(["_t", "_k", "subject_id", "id"], kind="mergesort").reset_index(drop=True)
    df["no"] = df["no"].astype("Int64")
    return df[COLUMNS]
