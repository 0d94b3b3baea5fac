"""Car-park transit analysis: geofences, visits, and the patterns investigators look for.

Definitions (the rules a court can read)
----------------------------------------
**Geofence.** A named polygon (WGS84): drawn by the investigator (GeoJSON, KML, GeoPackage),
taken from an OpenStreetMap extract the user supplies (``amenity=parking``,
``highway=rest_area``, ``highway=services``; nothing is downloaded), or proposed
automatically from places where vehicles of the case stopped (:func:`make_geofences_from_stops`).

**Membership of a fix.** A fix is ``inside`` a geofence when its position lies in the
polygon and its whole uncertainty circle (radius ``h_acc_m``) does too; ``uncertain`` when
the position lies inside but the circle crosses the boundary, or the position lies outside
but the circle reaches into the polygon; otherwise it is outside. Fixes with accuracy worse
than ``max_h_acc_m`` (cell towers) do not count. A 300 m Wi-Fi fix is therefore never
declared "inside" a 50 m car park without saying so.

**Visit.** A maximal run of a subject's fixes, in time order, that are inside or uncertain
for the same geofence; it ends at the first fix of the subject that is outside. Entry is the
first such fix and exit the last; the true entry lies between the previous outside fix
(``t_before``) and the entry (likewise ``t_after`` for the exit). Time between consecutive
fixes of a visit longer than ``max_gap`` is *unobserved*: the visit spans it (nothing shows
the subject left) but ``dwell_observed`` excludes it. A visit made only of uncertain fixes
is flagged ``uncertain``.

**Events during a visit.** Ignition and door events of the subject between entry and exit
(inclusive, with ``event_slack`` either side to allow for tracker timing).

**Others present.** Subjects with a visit to the same geofence that overlaps in time.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from shapely.geometry import MultiPoint

from .. import schema
from ..errors import ParameterError
from .arrays import expand_ranges
from .geo import EARTH_R_M, cluster_points_m, local_zone
from .order import sort_fixes

__all__ = [
    "find_carpark_visits",
    "find_dwell_outliers",
    "make_geofences_from_stops",
    "count_hour_of_week",
    "local_zone",
    "find_recurring_visitors",
]

_NAT = np.iinfo(np.int64).min  # pandas reads this int64 as NaT

_VISIT_COLS = [
    "visit_id", "subject_id", "geofence", "t_entry", "t_exit", "t_before", "t_after", "dwell",
    "dwell_observed", "unobserved", "n_fixes", "n_inside", "n_uncertain", "uncertain",
    "ignition_on", "ignition_off", "door_open", "door_close", "event_ids", "fix_ids",
    "others_present", "local_tz", "night", "pass_through",
]


def _geofence_frame(names: Sequence[str], geoms: Sequence[object], source: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": list(names), "source": source}, geometry=list(geoms),
                            crs="EPSG:4326")


def make_geofences_from_stops(
    stops: pd.DataFrame, *, eps_m: float = 150.0, min_stops: int = 2, buffer_m: float = 50.0,
) -> gpd.GeoDataFrame:
    """Propose candidate car parks where stops cluster (``min_stops`` stops within ``eps_m``).

    Single-linkage clustering in metres; each cluster becomes the convex hull of its stop
    centres buffered by ``buffer_m``, named ``auto-1``, ``auto-2``… in west-to-east order.

    Parameters
    ----------
    stops : pandas.DataFrame
        A ``stops`` table (from :func:`routetrace.routes.stops.detect_stops`).
    eps_m : float, default 150.0
        Linkage distance in metres: stop centres closer than this share a cluster.
    min_stops : int, default 2
        Fewest stops a cluster needs to become a candidate (one stop is not a pattern).
    buffer_m : float, default 50.0
        Metres added around the hull of the stop centres, for the stops' own spread.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``name, source, geometry`` (WGS84 polygons, ``source`` is ``auto:stops``);
        empty when no cluster reaches ``min_stops``.

    Example
    -------
    >>> from routetrace.routes.stops import detect_stops
    >>> from routetrace.testing import make_fixes
    >>> t = list(pd.date_range("2025-10-26T21:00Z", periods=10, freq="1min")) * 2
    >>> f = make_fixes(subject_id=["lorry"] * 10 + ["van"] * 10, t_utc=t,
    ...                lat=[51.0] * 10 + [51.0005] * 10, lon=3.87, h_acc_m=5.0)
    >>> _, stops = detect_stops(f)
    >>> len(stops), make_geofences_from_stops(stops)["name"].tolist()
    (2, ['auto-1'])
    """
    schema.validate(stops, "stops")
    if stops.empty:
        return _geofence_frame([], [], "auto:stops")
    lat, lon = stops["lat"].to_numpy(float), stops["lon"].to_numpy(float)
    lat0 = float(lat.mean())
    xy = np.c_[np.radians(lon) * EARTH_R_M * np.cos(np.radians(lat0)), np.radians(lat) * EARTH_R_M]
    labels = cluster_points_m(lat, lon, eps_m=eps_m)
    names, geoms = [], []
    clusters = [np.flatnonzero(labels == r) for r in np.unique(labels)]
    clusters = [c for c in clusters if len(c) >= min_stops]
    clusters.sort(key=lambda c: float(lon[c].mean()))
    for k, idx in enumerate(clusters, start=1):
        hull = MultiPoint(xy[idx]).convex_hull.buffer(buffer_m)
        ring = np.asarray(hull.exterior.coords)
        lons = np.degrees(ring[:, 0] / (EARTH_R_M * np.cos(np.radians(lat0))))
        lats = np.degrees(ring[:, 1] / EARTH_R_M)
        names.append(f"auto-{k}")
        geoms.append(shapely.Polygon(np.c_[lons, lats]))
    return _geofence_frame(names, geoms, "auto:stops")


def _near_boxes(lat: np.ndarray, lon: np.ndarray, usable: np.ndarray, boxes: np.ndarray,
                reach_deg: float) -> np.ndarray:
    """Rows of the usable fixes inside any of ``boxes`` (minx, miny, maxx, maxy) grown by
    ``reach_deg`` on every side, ascending: a superset of the fixes within ``reach_deg`` of a
    fence, found with one sort and a band per fence, so that only they become points."""
    rows = np.flatnonzero(usable)
    rows = rows[np.argsort(lat[rows], kind="stable")]
    lat_sorted = lat[rows]
    picked = []
    for minx, miny, maxx, maxy in boxes:
        a = np.searchsorted(lat_sorted, miny - reach_deg, side="left")
        b = np.searchsorted(lat_sorted, maxy + reach_deg, side="right")
        band = rows[a:b]
        picked.append(band[(lon[band] >= minx - reach_deg) & (lon[band] <= maxx + reach_deg)])
    return np.unique(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.intp)


def _membership(fixes: pd.DataFrame, fences: gpd.GeoDataFrame, max_h_acc_m: float,
                accuracy_aware: bool) -> pd.DataFrame:
    """(fix row, fence index, inside: bool) for every fix inside or uncertain for a fence."""
    lat, lon = fixes["lat"].to_numpy(float), fixes["lon"].to_numpy(float)
    acc = np.nan_to_num(fixes["h_acc_m"].to_numpy(float), nan=0.0)
    if not accuracy_aware:
        acc = np.zeros_like(acc)
    usable = ~(fixes["h_acc_m"].to_numpy(float) > max_h_acc_m)
    tree = shapely.STRtree(fences.geometry.values)
    reach_deg = (acc + 1.0) / 111_320.0 / np.maximum(np.cos(np.radians(lat)), 0.05)
    near = _near_boxes(lat, lon, usable, shapely.bounds(fences.geometry.values),
                       float(reach_deg[usable].max()) if usable.any() else 0.0)
    hit_fix, cand_fence = tree.query(shapely.points(lon[near], lat[near]), predicate="dwithin",
                                     distance=reach_deg[near])
    cand_fix = near[hit_fix]
    if len(cand_fix) == 0:
        return pd.DataFrame({"row": [], "fence": [], "inside": []})
    # local equirectangular metres around each fence's centroid: exact enough for 1 km
    cent = shapely.centroid(fences.geometry.values)
    cx = shapely.get_x(cent)[cand_fence]
    cy = shapely.get_y(cent)[cand_fence]
    k = np.cos(np.radians(cy))
    px = np.radians(lon[cand_fix] - cx) * EARTH_R_M * k
    py = np.radians(lat[cand_fix] - cy) * EARTH_R_M
    out_rows = []
    for f_idx in np.unique(cand_fence):
        sel = cand_fence == f_idx
        g = fences.geometry.values[f_idx]
        cxf, cyf = shapely.get_x(cent[f_idx]), shapely.get_y(cent[f_idx])
        kf = np.cos(np.radians(cyf))
        gm = shapely.transform(g, lambda a, cxf=cxf, cyf=cyf, kf=kf: np.c_[
            np.radians(a[:, 0] - cxf) * EARTH_R_M * kf, np.radians(a[:, 1] - cyf) * EARTH_R_M])
        p_m = shapely.points(px[sel], py[sel])
        within = shapely.contains_xy(gm, px[sel], py[sel])
        d_edge = shapely.distance(shapely.boundary(gm), p_m)
        a = acc[cand_fix[sel]]
        inside = within & (d_edge >= a)
        uncertain = (within & (d_edge < a)) | (~within & (d_edge <= a))
        hit = inside | uncertain
        out_rows.append(pd.DataFrame({"row": cand_fix[sel][hit], "fence": f_idx,
                                      "inside": inside[hit]}))
    return pd.concat(out_rows, ignore_index=True)


def find_carpark_visits(
    fixes: pd.DataFrame,
    geofences: gpd.GeoDataFrame,
    *,
    events: pd.DataFrame | None = None,
    max_gap: pd.Timedelta = pd.Timedelta("30min"),
    max_h_acc_m: float = 500.0,
    accuracy_aware: bool = True,
    event_slack: pd.Timedelta = pd.Timedelta("2min"),
    night_hours: tuple[int, int] = (22, 6),
    min_dwell: pd.Timedelta = pd.Timedelta("2min"),
) -> pd.DataFrame:
    """Return the visits of every subject to every geofence (see the module's rules).

    Columns: ``visit_id, subject_id, geofence, t_entry, t_exit, t_before, t_after, dwell,
    dwell_observed, unobserved, n_fixes, n_inside, n_uncertain, uncertain, ignition_on,
    ignition_off, door_open, door_close, event_ids, fix_ids, others_present, local_tz,
    night, pass_through`` (``night``: entry or a door opening during ``night_hours`` local
    time; ``pass_through``: dwell shorter than ``min_dwell`` (default 2 min, about the time
    to cross a car park at walking pace), e.g. a motorway passing the car park — kept and
    marked, never dropped).
    Parameters are recorded in ``attrs["params"]``.

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table (UTC times, WGS84 degrees, ``h_acc_m`` in metres).
    geofences : geopandas.GeoDataFrame
        Polygons in WGS84 with a ``name`` column (loaded by a geofence loader or from
        :func:`make_geofences_from_stops`).
    events : pandas.DataFrame, optional
        An ``events`` table; its ignition and door events are attached to visits. Default
        None: no events.
    max_gap : pandas.Timedelta, default 30 min
        Longer silences inside a visit are unobserved (same default as the stops stage).
    max_h_acc_m : float, default 500.0
        Fixes with a worse accuracy (metres) do not count; 500 m excludes cell-tower fixes.
    accuracy_aware : bool, default True
        Use the uncertainty circle for membership; False treats every fix as exact.
    event_slack : pandas.Timedelta, default 2 min
        Allowance either side of a visit for tracker timing when attaching events.
    night_hours : tuple of int, default (22, 6)
        Local hours ``(start, end)`` that count as night (22:00 to 06:00).
    min_dwell : pandas.Timedelta, default 2 min
        Visits shorter than this are marked ``pass_through`` (see above).

    Returns
    -------
    pandas.DataFrame
        One row per visit, with the columns listed above and ``attrs["params"]``.

    Example
    -------
    >>> import geopandas as gpd, shapely
    >>> from routetrace.testing import make_fixes
    >>> fence = gpd.GeoDataFrame({"name": ["P"]}, geometry=[shapely.box(3.86, 50.99, 3.88, 51.01)],
    ...                          crs="EPSG:4326")
    >>> f = make_fixes(subject_id="lorry", t_utc=["2025-10-26T21:00Z", "2025-10-26T21:40Z"],
    ...                lat=51.0, lon=3.87, h_acc_m=5.0)
    >>> find_carpark_visits(f, fence)[["subject_id", "geofence", "n_fixes"]].values.tolist()
    [['lorry', 'P', 2]]
    """
    schema.validate(fixes, "fixes")
    if max_gap <= pd.Timedelta(0):
        raise ParameterError(f"max_gap must be positive, got {max_gap}")
    params = {"max_gap": str(max_gap), "max_h_acc_m": max_h_acc_m, "accuracy_aware": accuracy_aware,
              "event_slack": str(event_slack), "night_hours": list(night_hours),
              "min_dwell": str(min_dwell)}
    fences = geofences.reset_index(drop=True)
    f = sort_fixes(fixes).reset_index(drop=True)
    if f.empty or fences.empty:
        out = pd.DataFrame(columns=_VISIT_COLS)
        out.attrs["params"] = params
        return out
    mem = _membership(f, fences, max_h_acc_m, accuracy_aware)
    usable = ~(f["h_acc_m"].to_numpy(float) > max_h_acc_m)
    subj = f["subject_id"].astype(str).to_numpy()
    t = f["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    # position of each usable fix within its subject's usable stream
    order = np.flatnonzero(usable)
    rank = np.full(len(f), -1)
    rank[order] = np.arange(len(order))
    mem = mem.assign(rank=rank[mem["row"].to_numpy()], subject=subj[mem["row"].to_numpy()])
    mem = mem.sort_values(["fence", "subject", "rank"], kind="mergesort")
    # a visit continues while the subject's next usable fix is in the same fence
    new = (mem["fence"].ne(mem["fence"].shift()) | mem["subject"].ne(mem["subject"].shift())
           | mem["rank"].diff().ne(1))
    mem["visit"] = new.cumsum()
    cent = shapely.centroid(fences.geometry.values)
    tz_of = np.array([local_zone(float(c.y), float(c.x)) for c in cent], dtype=object)
    rows = mem["row"].to_numpy()
    mem["t"] = t[rows]
    step = mem["t"].diff().where(~new, 0)
    mem["unobs"] = step.where(step > max_gap.value, 0)
    g = mem.groupby("visit", sort=False)
    agg = g.agg(fence=("fence", "first"), subject_id=("subject", "first"), first=("rank", "first"),
                last=("rank", "last"), t_entry=("t", "first"), t_exit=("t", "last"),
                n_fixes=("row", "size"), n_inside=("inside", "sum"), unobs=("unobs", "sum"))
    # each visit's fixes, '|'-joined: the ids of the cited fixes only, joined in one Arrow pass
    agg["fix_ids"] = _join_runs(schema.fix_ids(f.iloc[rows]), np.flatnonzero(new.to_numpy()))
    first, last = agg["first"].to_numpy(), agg["last"].to_numpy()
    subj_v = agg["subject_id"].to_numpy()
    prev = order[np.clip(first - 1, 0, None)]
    nxt = order[np.clip(last + 1, None, len(order) - 1)]
    has_before = (first > 0) & (subj[prev] == subj_v)
    has_after = (last + 1 < len(order)) & (subj[nxt] == subj_v)
    fence_idx = agg["fence"].to_numpy(dtype=int)
    dwell = agg["t_exit"].to_numpy() - agg["t_entry"].to_numpy()
    unobs = agg["unobs"].to_numpy(dtype="int64")
    v = pd.DataFrame({
        "subject_id": subj_v, "geofence": fences["name"].astype(str).to_numpy()[fence_idx],
        "t_entry": pd.to_datetime(agg["t_entry"].to_numpy(), unit="ns", utc=True),
        "t_exit": pd.to_datetime(agg["t_exit"].to_numpy(), unit="ns", utc=True),
        "t_before": pd.to_datetime(np.where(has_before, t[prev], _NAT), unit="ns", utc=True),
        "t_after": pd.to_datetime(np.where(has_after, t[nxt], _NAT), unit="ns", utc=True),
        "dwell": pd.to_timedelta(dwell, unit="ns"),
        "dwell_observed": pd.to_timedelta(dwell - unobs, unit="ns"),
        "unobserved": pd.to_timedelta(unobs, unit="ns"),
        "n_fixes": agg["n_fixes"].to_numpy(), "n_inside": agg["n_inside"].to_numpy(dtype=int),
        "n_uncertain": (agg["n_fixes"] - agg["n_inside"]).to_numpy(dtype=int),
        "fix_ids": agg["fix_ids"].to_numpy(), "local_tz": tz_of[fence_idx],
    })
    v["uncertain"] = v["n_inside"] == 0
    v, door_times = _attach_events(v, events, event_slack)
    v = _attach_others(v)
    v["night"] = _night(v, door_times, night_hours)
    v["pass_through"] = v["dwell"] < min_dwell
    order_v = v.sort_values(["t_entry", "subject_id", "geofence"], kind="mergesort").index
    v = v.loc[order_v].reset_index(drop=True)
    v.insert(0, "visit_id", [f"V{i + 1:05d}" for i in range(len(v))])
    v = v[_VISIT_COLS]
    v.attrs["params"] = params
    return v


def _join_runs(texts: pd.Series, starts: np.ndarray) -> np.ndarray:
    """``texts`` '|'-joined per run, the runs starting at positions ``starts`` (ascending,
    the first 0) and each ending where the next starts."""
    values = pa.array(texts.array, type=pa.large_string())
    if isinstance(values, pa.ChunkedArray):  # an Arrow-backed column of several chunks
        values = values.combine_chunks()
    offsets = pa.array(np.r_[starts, len(texts)].astype(np.int64))
    joined = pc.binary_join(pa.LargeListArray.from_arrays(offsets, values), pa.scalar("|", pa.large_string()))
    return np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)


def _attach_events(v: pd.DataFrame, events: pd.DataFrame | None,
                   slack: pd.Timedelta) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Count ignition/door events per visit; return (visits, door-open times by visit index).

    An event is a visit's when it is the visit's subject's and within ``slack`` of the
    visit (``t_entry - slack <= t <= t_exit + slack``). Each subject's events are sorted by
    time (then ``event_id``) once, and each visit's are found by bisection: no merge of every
    visit with every event of its subject. ``event_ids`` lists them in that order.
    """
    kinds = ("ignition_on", "ignition_off", "door_open", "door_close")
    for k in kinds:
        v[k] = 0
    v["event_ids"] = ""
    empty_doors = pd.DataFrame({"visit": pd.Series(dtype="int64"), "t_utc": pd.Series(dtype="datetime64[ns, UTC]")})
    if events is None or events.empty or v.empty:
        return v, empty_doors
    provenance = ["source_id", "record"] + (["part"] if "part" in events.columns else [])
    ev = events.loc[events["kind"].isin(kinds), ["subject_id", "t_utc", "kind", *provenance]]
    if ev.empty:
        return v, empty_doors
    ids = schema.event_ids(ev).reset_index(drop=True)
    codes, _ = pd.factorize(np.concatenate([v["subject_id"].astype(str).to_numpy(dtype=object),
                                            ev["subject_id"].astype(str).to_numpy(dtype=object)]))
    v_code, e_code = codes[:len(v)], codes[len(v):]
    e_t = ev["t_utc"].to_numpy(dtype="datetime64[ns]").view("int64")
    order = np.lexsort((pd.factorize(ids, sort=True)[0], e_t, e_code))  # subject, time, event id
    e_code, e_t = e_code[order], e_t[order]
    lo = np.zeros(len(v), dtype=np.int64)
    hi = np.zeros(len(v), dtype=np.int64)
    t_from = v["t_entry"].to_numpy(dtype="datetime64[ns]").view("int64") - slack.value
    t_to = v["t_exit"].to_numpy(dtype="datetime64[ns]").view("int64") + slack.value
    n_codes = int(codes.max()) + 1
    e_bounds = np.searchsorted(e_code, np.arange(n_codes + 1))
    v_order = np.argsort(v_code, kind="stable")
    v_bounds = np.searchsorted(v_code[v_order], np.arange(n_codes + 1))
    for c in np.flatnonzero((np.diff(e_bounds) > 0) & (np.diff(v_bounds) > 0)).tolist():
        e0, e1 = int(e_bounds[c]), int(e_bounds[c + 1])
        mine = v_order[v_bounds[c]:v_bounds[c + 1]]
        lo[mine] = e0 + np.searchsorted(e_t[e0:e1], t_from[mine], side="left")
        hi[mine] = e0 + np.searchsorted(e_t[e0:e1], t_to[mine], side="right")
    pos, visit = expand_ranges(lo, hi)  # by visit, each visit's events in time order
    if not len(pos):
        return v, empty_doors
    rows = order[pos]  # positions in ev
    kind = pd.Categorical(ev["kind"].astype(str).to_numpy()[rows], categories=kinds).codes
    counts = np.bincount(visit * len(kinds) + kind, minlength=len(v) * len(kinds)).reshape(len(v), len(kinds))
    for i, k in enumerate(kinds):
        v[k] = counts[:, i]
    starts = np.flatnonzero(np.r_[True, visit[1:] != visit[:-1]])
    v.loc[visit[starts], "event_ids"] = _join_runs(ids.iloc[rows], starts)
    doors = kind == kinds.index("door_open")
    return v, pd.DataFrame({"visit": visit[doors],
                            "t_utc": ev["t_utc"].iloc[rows[doors]].reset_index(drop=True)})


def _attach_others(v: pd.DataFrame) -> pd.DataFrame:
    """Subjects with an overlapping visit to the same geofence ('|'-joined, sorted).

    Two visits overlap when each enters before the other exits (touching counts). Per
    geofence, visits sorted by entry: the candidates of a visit are those entering before
    it exits and not ending (by the running maximum of exits) before it enters; the exact
    test is then applied to each candidate. No all-pairs merge.
    """
    v["others_present"] = ""
    if v.empty:
        return v
    g, _ = pd.factorize(v["geofence"])
    te = v["t_entry"].to_numpy(dtype="datetime64[ns]").view("int64")
    tx = v["t_exit"].to_numpy(dtype="datetime64[ns]").view("int64")
    subj, subj_names = pd.factorize(v["subject_id"], sort=True)
    order = np.lexsort((te, g))
    gs, es, xs = g[order], te[order], tx[order]
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    ends = np.r_[starts[1:], len(gs)]
    pos_i: list[np.ndarray] = []
    pos_j: list[np.ndarray] = []
    for b0, b1 in zip(starts.tolist(), ends.tolist(), strict=True):
        e, x = es[b0:b1], xs[b0:b1]
        hi = np.searchsorted(e, x, side="right")  # entering no later than this visit exits
        lo = np.searchsorted(np.maximum.accumulate(x), e, side="left")  # not over before it enters
        j, i = expand_ranges(lo, hi)
        ok = (j != i) & (x[j] >= e[i]) & (e[j] <= x[i])
        pos_i.append(order[b0 + i[ok]])
        pos_j.append(order[b0 + j[ok]])
    if not pos_i:
        return v
    pi, pj = np.concatenate(pos_i), np.concatenate(pos_j)
    keep = subj[pi] != subj[pj]
    pairs = pd.DataFrame({"visit": pi[keep], "other": subj[pj][keep]}).drop_duplicates()
    pairs = pairs.sort_values(["visit", "other"], kind="mergesort")
    if pairs.empty:
        return v
    names = pd.Series(np.asarray(subj_names, dtype=object)[pairs["other"].to_numpy()], dtype="string")
    visit = pairs["visit"].to_numpy()
    starts = np.flatnonzero(np.r_[True, visit[1:] != visit[:-1]])
    col = v.columns.get_loc("others_present")
    v.iloc[visit[starts], col] = _join_runs(names, starts)
    return v


def _local_hour(times: pd.Series, zones: np.ndarray) -> np.ndarray:
    out = np.zeros(len(times), dtype=int)
    for z in pd.unique(zones):
        sel = zones == z
        out[sel] = times[sel].dt.tz_convert(z).dt.hour.to_numpy()
    return out


def _night(v: pd.DataFrame, door_times: pd.DataFrame, hours: tuple[int, int]) -> np.ndarray:
    start, end = hours

    def is_night(h: np.ndarray) -> np.ndarray:
        return (h >= start) | (h < end) if start > end else (h >= start) & (h < end)

    night = is_night(_local_hour(v["t_entry"], v["local_tz"].to_numpy()))
    if len(door_times):
        zones = v["local_tz"].to_numpy()[door_times["visit"].to_numpy()]
        hit = is_night(_local_hour(door_times["t_utc"].reset_index(drop=True), zones))
        night[np.unique(door_times["visit"].to_numpy()[hit])] = True
    return night


def count_hour_of_week(visits: pd.DataFrame, *, by: str = "geofence") -> pd.DataFrame:
    """Count visits by local weekday (0 = Monday) and hour of entry, per ``by`` value.

    Local time is the geofence's zone (``local_tz``), DST-correct. Returns a long table
    ``<by>, weekday, hour, visits``.

    Parameters
    ----------
    visits : pandas.DataFrame
        Visits from :func:`find_carpark_visits` (needs ``t_entry``, ``local_tz`` and ``by``).
    by : str, default "geofence"
        Column to count per (e.g. ``subject_id``).

    Returns
    -------
    pandas.DataFrame
        Columns ``<by>, weekday, hour, visits``; empty (with those columns) for no visits.

    Example
    -------
    >>> v = pd.DataFrame({"geofence": ["P", "P"], "local_tz": ["Europe/Brussels"] * 2,
    ...                   "t_entry": pd.to_datetime(["2025-10-27T21:10Z", "2025-11-03T21:50Z"])})
    >>> count_hour_of_week(v).values.tolist()
    [['P', 0, 22, 2]]
    """
    if visits.empty:
        return pd.DataFrame(columns=[by, "weekday", "hour", "visits"])
    local = [t.tz_convert(z) for t, z in zip(visits["t_entry"], visits["local_tz"], strict=True)]
    df = pd.DataFrame({by: visits[by].to_numpy(), "weekday": [x.weekday() for x in local],
                       "hour": [x.hour for x in local]})
    return df.groupby([by, "weekday", "hour"]).size().rename("visits").reset_index()


def find_recurring_visitors(visits: pd.DataFrame, *, min_visits: int = 2) -> pd.DataFrame:
    """Subjects that visited the same geofence on at least ``min_visits`` different local days.

    Parameters
    ----------
    visits : pandas.DataFrame
        Visits from :func:`find_carpark_visits` (``visit_id, subject_id, geofence, t_entry,
        local_tz``).
    min_visits : int, default 2
        Fewest different local days (in the geofence's zone) that make a recurring visitor;
        two days is the least that can show a return.

    Returns
    -------
    pandas.DataFrame
        Columns ``geofence, subject_id, visits, days`` (number of visits and of distinct
        local days), one row per recurring pair.

    Example
    -------
    >>> v = pd.DataFrame({"visit_id": [1, 2, 3], "subject_id": ["lorry"] * 3,
    ...                   "geofence": ["P"] * 3, "local_tz": ["Europe/Brussels"] * 3,
    ...                   "t_entry": pd.to_datetime(["2025-10-27T21:00Z", "2025-10-27T22:00Z",
    ...                                              "2025-10-28T21:00Z"])})
    >>> find_recurring_visitors(v).values.tolist()
    [['P', 'lorry', 3, 2]]
    """
    if visits.empty:
        return pd.DataFrame(columns=["geofence", "subject_id", "visits", "days"])
    day = [t.tz_convert(z).date().isoformat() for t, z in zip(visits["t_entry"], visits["local_tz"], strict=True)]
    df = visits.assign(day=day)
    g = df.groupby(["geofence", "subject_id"]).agg(visits=("visit_id", "size"), days=("day", "nunique"))
    return g[g["days"] >= min_visits].reset_index()


def find_dwell_outliers(visits: pd.DataFrame, *, z: float = 3.0, min_visits: int = 5) -> pd.DataFrame:
    """Visits whose observed dwell is unusual for their geofence (robust z-score > ``z``).

    Robust z = (dwell − median) / (1.4826 · MAD) over that geofence's visits; geofences with
    fewer than ``min_visits`` visits are not judged (too little to call anything unusual).

    Parameters
    ----------
    visits : pandas.DataFrame
        Visits from :func:`find_carpark_visits` (needs ``geofence`` and ``dwell_observed``).
    z : float, default 3.0
        Robust z-score above which (in absolute value) a dwell is unusual; 3 is the usual
        cut for "far outside the typical spread".
    min_visits : int, default 5
        Fewest visits a geofence needs before any of its visits is judged.

    Returns
    -------
    pandas.DataFrame
        The unusual visits (all their columns) with ``dwell_z`` added.

    Example
    -------
    >>> mins = [10, 11, 12, 10, 11, 95]
    >>> v = pd.DataFrame({"geofence": ["P"] * 6,
    ...                   "dwell_observed": pd.to_timedelta(mins, unit="min")})
    >>> find_dwell_outliers(v)["dwell_observed"].tolist()
    [Timedelta('0 days 01:35:00')]
    """
    if visits.empty:
        return visits.assign(dwell_z=pd.Series(dtype=float))
    mins = visits["dwell_observed"].dt.total_seconds() / 60
    g = mins.groupby(visits["geofence"])
    med = g.transform("median")
    mad = (mins - med).abs().groupby(visits["geofence"]).transform("median") * 1.4826
    n = g.transform("size")
    zscore = (mins - med) / mad.replace(0, np.nan)
    out = visits.assign(dwell_z=zscore)
    return out[(n >= min_visits) & (zscore.abs() > z)].reset_index(drop=True)


def visits_to_json(visits: pd.DataFrame) -> str:
    """Visits as JSON lines-friendly text (times ISO UTC) for reports."""
    df = visits.copy()
    for c in ("dwell", "dwell_observed", "unobserved"):
        df[c] = df[c].dt.total_seconds()
    return json.dumps(json.loads(df.to_json(orient="records", date_format="iso")), indent=1)


# deprecated aliases (old stage names), kept for one release


def carpark_visits(*args: Any, **kwargs: Any) -> Any:
    """Deprecated: the old name of :func:`find_carpark_visits` (removed in the next release)."""
    warnings.warn("routetrace: carpark_visits() is renamed find_carpark_visits(); the old name goes in "
                  "the next release", DeprecationWarning, stacklevel=2)
    return find_carpark_visits(*args, **kwargs)


def hour_of_week(*args: Any, **kwargs: Any) -> Any:
    """Deprecated: the old name of :func:`count_hour_of_week` (removed in the next release)."""
    warnings.warn("routetrace: hour_of_week() is renamed count_hour_of_week(); the old name goes in "
                  "the next release", DeprecationWarning, stacklevel=2)
    return count_hour_of_week(*args, **kwargs)


def recurring_visitors(*args: Any, **kwargs: Any) -> Any:
    """Deprecated: the old name of :func:`find_recurring_visitors` (removed in the next release)."""
    warnings.warn("routetrace: recurring_visitors() is renamed find_recurring_visitors(); the old name goes in "
                  "the next release", DeprecationWarning, stacklevel=2)
    return find_recurring_visitors(*args, **kwargs)


def dwell_outliers(*args: Any, **kwargs: Any) -> Any:
    """Deprecated: the old name of :func:`find_dwell_outliers` (removed in the next release)."""
    warnings.warn("routetrace: dwell_outliers() is renamed find_dwell_outliers(); the old name goes in "
                  "the next release", DeprecationWarning, stacklevel=2)
    return find_dwell_outliers(*args, **kwargs)


def geofences_from_stops(*args: Any, **kwargs: Any) -> Any:
    """Deprecated: the old name of :func:`make_geofences_from_stops` (removed in the next release)."""
    warnings.warn("routetrace: geofences_from_stops() is renamed make_geofences_from_stops(); the old name goes in "
                  "the next release", DeprecationWarning, stacklevel=2)
    return make_geofences_from_stops(*args, **kwargs)
