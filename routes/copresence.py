"""Co-presence and co-travel: which subjects were together, where and when.

Definitions (the rules a court can read)
----------------------------------------
**Co-present fixes.** Two fixes of *different* subjects are co-present when they are at
most ``max_dt`` apart in time and the great-circle distance between them is at most
``radius_m`` plus, when ``accuracy_aware``, both fixes' stated horizontal accuracies
(their uncertainty circles could then be within ``radius_m`` of each other). Such a pair is
``firm`` when the distance alone is within ``radius_m``, else ``possible`` (only the
uncertainty makes it possible). Fixes whose accuracy is worse than ``max_h_acc_m`` (cell
towers: evidence of an area, not of a position) are not used.

**Meeting.** The co-present pairs of two subjects, in time order, form one meeting as long
as consecutive pairs are at most ``max_dt`` apart; a longer pause starts a new meeting. A
meeting reports its first and last pair time, the number of pairs, the smallest distance,
its centre, and the fix ids behind it (the evidence rows).

**Co-travel.** A subject travels with another over a leg when, for the fixes of the first
subject on that leg that are moving (speed ≥ ``min_speed_mps`` or displacement), the other
subject has a co-present fix; the matched fraction of the leg is reported.

Efficiency: fixes are binned into time buckets of ``max_dt`` and grid cells of the search
distance; only fixes in the same or adjacent buckets and cells are compared (a hash join,
not all pairs). The result equals a brute-force comparison of all pairs (tested).

Defaults: 100 m and 10 min — a car park is about 100 m across, and trackers or phones
record at least every few minutes while moving; documented in ``params``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import ParameterError
from ..geodesy import EARTH_R_M, haversine_m
from .arrays import expand_ranges

__all__ = ["find_copresence_pairs", "detect_copresence", "detect_cotravel", "group_meetings"]

_PAIR_COLUMNS = ["subject_a", "subject_b", "fix_a", "fix_b", "t_a", "t_b", "dt", "distance_m",
                 "h_acc_a", "h_acc_b", "lat_a", "lon_a", "lat_b", "lon_b", "firm"]


def _check(radius_m: float, max_dt: pd.Timedelta) -> None:
    if not radius_m > 0:
        raise ParameterError(f"radius_m must be > 0, got {radius_m}")
    if not pd.Timedelta(max_dt) > pd.Timedelta(0):
        raise ParameterError(f"max_dt must be a positive duration, got {max_dt}")


def find_copresence_pairs(
    fixes: pd.DataFrame,
    *,
    radius_m: float = 100.0,
    max_dt: pd.Timedelta = pd.Timedelta("10min"),
    accuracy_aware: bool = True,
    max_h_acc_m: float = 500.0,
    subjects: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return every co-present pair of fixes of different subjects (see module rules).

    Each unordered pair appears once, with ``subject_a < subject_b``. Columns:
    ``subject_a, subject_b, fix_a, fix_b, t_a, t_b, dt, distance_m, h_acc_a, h_acc_b,
    lat_a, lon_a, lat_b, lon_b, firm``.

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table of two or more subjects.
    radius_m : float, default 100.0
        Distance in metres within which two fixes are together (a car park is about 100 m
        across).
    max_dt : pandas.Timedelta, default 10 min
        Largest time difference between the two fixes (phones and trackers record at least
        every few minutes while moving).
    accuracy_aware : bool, default True
        Widen ``radius_m`` by both fixes' stated accuracies (the pair is then ``possible``,
        not ``firm``).
    max_h_acc_m : float, default 500.0
        Fixes with a worse accuracy (metres: cell towers) are not used.
    subjects : sequence of str, optional
        Only these subjects; default None: every subject in ``fixes``.

    Returns
    -------
    pandas.DataFrame
        One row per co-present pair with the columns listed above.

    Raises
    ------
    ParameterError
        For a non-positive ``radius_m`` or ``max_dt``.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id=["lorry", "phone"], t_utc=["2025-10-26T21:30Z", "2025-10-26T21:32Z"],
    ...                lat=[51.0, 51.0003], lon=[3.87, 3.87], h_acc_m=10.0)
    >>> p = find_copresence_pairs(f)
    >>> p[["subject_a", "subject_b", "firm"]].values.tolist(), round(float(p["distance_m"][0]))
    ([['lorry', 'phone', True]], 33)
    """
    _check(radius_m, max_dt)
    schema.validate(fixes, "fixes")
    f = fixes
    if subjects is not None:
        f = f[f["subject_id"].isin(list(subjects))]
    acc = f["h_acc_m"].to_numpy(dtype=float)
    keep = ~(acc > max_h_acc_m)  # NaN accuracy is kept (unknown, not bad)
    f = f[keep]
    acc = np.nan_to_num(f["h_acc_m"].to_numpy(dtype=float), nan=0.0) if accuracy_aware else \
        np.zeros(len(f))
    max_dt_ns = pd.Timedelta(max_dt).value
    # no pair is farther apart than radius_m plus the two largest accuracies in the data
    search_m = radius_m + (2 * float(acc.max()) if len(acc) else 0.0)
    lat = f["lat"].to_numpy(dtype=float)
    lon = f["lon"].to_numpy(dtype=float)
    t = f["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    codes, uniques = pd.factorize(f["subject_id"].astype(str), sort=True)
    # grid: metres north/east from a reference; cell size = the largest search distance
    lat0 = float(np.nanmean(lat)) if len(lat) else 0.0
    y = np.radians(lat) * EARTH_R_M
    x = np.radians(lon) * EARTH_R_M * np.cos(np.radians(lat0))
    # x is scaled at lat0; further from the equator a real east-west distance is shorter
    # than its x-distance, so widen the cells to keep every neighbour within one cell
    cell = search_m
    if len(lat):
        shrink = np.cos(np.radians(np.nanmax(np.abs(lat)))) / max(np.cos(np.radians(lat0)), 1e-9)
        cell = search_m / max(min(shrink, 1.0), 1e-3)
    tb = t // max_dt_ns
    gx = np.floor(x / cell).astype("int64")
    gy = np.floor(y / cell).astype("int64")
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for ca, cb in _neighbour_candidates(tb, gx, gy):
        # drop same-subject pairs and filter each neighbour's candidates at once: memory
        # bounded by one neighbour offset's candidates
        ok = (codes[ca] != codes[cb]) & (np.abs(t[ca] - t[cb]) <= max_dt_ns) & (
            haversine_m(lat[ca], lon[ca], lat[cb], lon[cb]) <= radius_m + acc[ca] + acc[cb])
        parts.append((ca[ok], cb[ok]))
    ia = np.concatenate([a for a, _ in parts]) if parts else np.zeros(0, dtype="int64")
    ib = np.concatenate([b for _, b in parts]) if parts else np.zeros(0, dtype="int64")
    # orient pairs: subject_a < subject_b; one row per unordered pair of fixes
    swap = codes[ia] > codes[ib]
    ia, ib = np.where(swap, ib, ia), np.where(swap, ia, ib)
    key = pd.DataFrame({"a": ia, "b": ib}).drop_duplicates()
    ia, ib = key["a"].to_numpy(), key["b"].to_numpy()
    dist = haversine_m(lat[ia], lon[ia], lat[ib], lon[ib])
    used = np.union1d(ia, ib)  # the ids of the paired fixes only (derived from provenance)
    fid = schema.fix_ids(f.iloc[used]).astype(str).to_numpy()
    raw_acc = f["h_acc_m"].to_numpy(dtype=float)
    out = pd.DataFrame({
        "subject_a": np.asarray(uniques)[codes[ia]], "subject_b": np.asarray(uniques)[codes[ib]],
        "fix_a": fid[np.searchsorted(used, ia)], "fix_b": fid[np.searchsorted(used, ib)],
        "t_a": pd.to_datetime(t[ia], utc=True), "t_b": pd.to_datetime(t[ib], utc=True),
        "dt": pd.to_timedelta(np.abs(t[ia] - t[ib]), unit="ns"), "distance_m": dist,
        "h_acc_a": raw_acc[ia], "h_acc_b": raw_acc[ib],
        "lat_a": lat[ia], "lon_a": lon[ia], "lat_b": lat[ib], "lon_b": lon[ib],
        "firm": dist <= radius_m,
    }, columns=_PAIR_COLUMNS)
    out = out.sort_values(["subject_a", "subject_b", "t_a", "fix_a", "fix_b"], kind="mergesort")
    out = out.reset_index(drop=True)
    out.attrs["params"] = {"radius_m": radius_m, "max_dt": str(pd.Timedelta(max_dt)),
                           "accuracy_aware": accuracy_aware, "max_h_acc_m": max_h_acc_m}
    return out



def _neighbour_candidates(tb: np.ndarray, gx: np.ndarray, gy: np.ndarray
                          ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs of rows (a, b) in the same or a neighbouring (time bucket, grid cell), per offset.

    Each unordered pair of rows in neighbouring cells comes once (within one cell: a < b).
    A sort-merge join on one composite integer key: no hashing, so the cost stays
    O(n log n + candidates) whatever the key pattern.
    """
    n = len(tb)
    if n == 0:
        return
    tb0, gx0, gy0 = tb.min(), gx.min(), gy.min()
    big = np.iinfo(np.int64).max // 4
    span_x, span_y = int(gx.max() - gx0) + 3, int(gy.max() - gy0) + 3
    span_t = int(tb.max() - tb0) + 2
    if span_x * span_y > big // max(span_t, 1):  # only for absurd spans: decades at 1 m cells
        raise ParameterError(f"co-presence search grid too large ({span_t} time buckets x {span_x} x "
                             f"{span_y} cells): run it on shorter periods of the fixes")
    key = ((tb - tb0) * span_x + (gx - gx0 + 1)) * span_y + (gy - gy0 + 1)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    for dtb in (0, 1):
        for dgx in (-1, 0, 1):
            for dgy in (-1, 0, 1):
                if dtb == 0 and (dgx, dgy) < (0, 0):
                    continue  # the mirrored offset covers this neighbour within a bucket
                q = ks + (dtb * span_x + dgx) * span_y + dgy  # sorted queries: a fast search
                pos, of = expand_ranges(np.searchsorted(ks, q, side="left"),
                                        np.searchsorted(ks, q, side="right"))
                a, b = order[of], order[pos]
                if dtb == 0 and (dgx, dgy) == (0, 0):
                    keep = a < b
                    a, b = a[keep], b[keep]
                yield a, b

def detect_copresence(
    fixes: pd.DataFrame,
    *,
    radius_m: float = 100.0,
    max_dt: pd.Timedelta = pd.Timedelta("10min"),
    accuracy_aware: bool = True,
    max_h_acc_m: float = 500.0,
    subjects: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(pairs, meetings)``: co-present fix pairs and the meetings they form.

    ``meetings`` columns: ``meeting_id, subject_a, subject_b, t_start, t_end, duration,
    n_pairs, n_firm, min_distance_m, lat, lon, fix_ids`` (the evidence rows, ``|``-joined).

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table of two or more subjects.
    radius_m, max_dt, accuracy_aware, max_h_acc_m, subjects
        As in :func:`find_copresence_pairs` (defaults 100 m, 10 min, True, 500 m, every subject);
        ``max_dt`` is also the longest pause inside one meeting.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(pairs, meetings)``: the pairs of :func:`find_copresence_pairs` and one row per meeting.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id=["lorry", "phone"], t_utc=["2025-10-26T21:30Z"] * 2,
    ...                lat=[51.0, 51.0003], lon=[3.87, 3.87], h_acc_m=10.0)
    >>> pairs, meetings = detect_copresence(f)
    >>> meetings[["subject_a", "subject_b", "n_pairs"]].values.tolist()
    [['lorry', 'phone', 1]]
    """
    pairs = find_copresence_pairs(fixes, radius_m=radius_m, max_dt=max_dt, accuracy_aware=accuracy_aware,
                             max_h_acc_m=max_h_acc_m, subjects=subjects)
    return pairs, group_meetings(pairs, max_dt=max_dt)


def group_meetings(pairs: pd.DataFrame, *, max_dt: pd.Timedelta = pd.Timedelta("10min")) -> pd.DataFrame:
    """The meetings that co-present ``pairs`` form (see module rules; ``meetings`` of
    :func:`detect_copresence`): for pairs computed elsewhere, e.g. on a cluster, without the
    fixes.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Pairs as :func:`find_copresence_pairs` returns them.
    max_dt : pandas.Timedelta, default 10 min
        The longest pause inside one meeting (the ``max_dt`` the pairs were found with).

    Returns
    -------
    pandas.DataFrame
        One row per meeting, columns as in :func:`detect_copresence`; ``attrs["params"]``
        those of ``pairs``.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id=["lorry", "phone"], t_utc=["2025-10-26T21:30Z"] * 2,
    ...                lat=[51.0, 51.0003], lon=[3.87, 3.87], h_acc_m=10.0)
    >>> group_meetings(find_copresence_pairs(f))[["meeting_id", "n_pairs"]].values.tolist()
    [['M0001', 1]]
    """
    cols = ["meeting_id", "subject_a", "subject_b", "t_start", "t_end", "duration", "n_pairs",
            "n_firm", "min_distance_m", "lat", "lon", "fix_ids"]
    if pairs.empty:
        meetings = pd.DataFrame(columns=cols)
        meetings.attrs["params"] = pairs.attrs.get("params", {})
        return meetings
    p = pairs.assign(t=pairs[["t_a", "t_b"]].min(axis=1), t2=pairs[["t_a", "t_b"]].max(axis=1))
    p = p.sort_values(["subject_a", "subject_b", "t", "fix_a", "fix_b"], kind="mergesort")
    same = (p["subject_a"].eq(p["subject_a"].shift()) & p["subject_b"].eq(p["subject_b"].shift()))
    gap = p["t"].diff() > pd.Timedelta(max_dt)
    p["m"] = (~same | gap).cumsum()
    g = p.groupby("m", sort=True)
    meetings = pd.DataFrame({
        "subject_a": g["subject_a"].first(), "subject_b": g["subject_b"].first(),
        "t_start": g["t"].min(), "t_end": g["t2"].max(), "n_pairs": g.size(),
        "n_firm": g["firm"].sum().astype(int), "min_distance_m": g["distance_m"].min(),
        "lat": g.apply(lambda d: float(np.mean(np.r_[d["lat_a"], d["lat_b"]])), include_groups=False),
        "lon": g.apply(lambda d: float(np.mean(np.r_[d["lon_a"], d["lon_b"]])), include_groups=False),
        "fix_ids": g.apply(lambda d: "|".join(sorted(set(d["fix_a"]) | set(d["fix_b"]))),
                           include_groups=False),
    }).reset_index(drop=True)
    meetings["duration"] = meetings["t_end"] - meetings["t_start"]
    meetings.insert(0, "meeting_id", [f"M{i + 1:04d}" for i in range(len(meetings))])
    meetings = meetings[cols]
    meetings.attrs["params"] = pairs.attrs.get("params", {})
    return meetings


def detect_cotravel(
    fixes: pd.DataFrame,
    *,
    subject: str,
    with_subject: str,
    radius_m: float = 200.0,
    max_dt: pd.Timedelta = pd.Timedelta("2min"),
    min_speed_mps: float = 3.0,
    trips: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """For each leg of ``subject``, the fraction of its moving fixes matched by ``with_subject``.

    A leg is a trip of ``trips`` (schema ``trips``) when given, else a maximal run of
    moving fixes (speed ≥ ``min_speed_mps``, measured or from consecutive fixes). Moving
    at speed, two phones in one vehicle stay within a few tens of metres; ``radius_m``
    defaults to 200 m to allow for sampling offsets within ``max_dt`` (2 min).

    Returns ``leg, t_start, t_end, n_moving, n_matched, matched_fraction, fix_ids``.

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table holding both subjects.
    subject : str
        The subject whose legs are tested.
    with_subject : str
        The subject looked for beside it.
    radius_m : float, default 200.0
        Co-presence distance in metres (see above for the reason).
    max_dt : pandas.Timedelta, default 2 min
        Largest time difference between matched fixes.
    min_speed_mps : float, default 3.0
        A fix is moving at or above this speed (3 m/s, about 11 km/h: faster than walking).
    trips : pandas.DataFrame, optional
        A ``trips`` table of ``subject`` whose trips are the legs; default None: runs of
        moving fixes.

    Returns
    -------
    pandas.DataFrame
        One row per leg with the columns listed above (``matched_fraction`` 0 to 1).

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> t = pd.date_range("2025-10-26T21:00Z", periods=5, freq="1min")
    >>> lat = [51.0 + 0.01 * k for k in range(5)]
    >>> f = make_fixes(subject_id=["lorry"] * 5 + ["phone"] * 5, t_utc=list(t) * 2,
    ...                lat=lat * 2, lon=3.87, h_acc_m=10.0)
    >>> detect_cotravel(f, subject="lorry", with_subject="phone")[["n_moving", "n_matched"]].values.tolist()
    [[4, 4]]
    """
    _check(radius_m, max_dt)
    schema.validate(fixes, "fixes")
    a = fixes[fixes["subject_id"] == subject].sort_values("t_utc", kind="mergesort")
    b = fixes[fixes["subject_id"] == with_subject].sort_values("t_utc", kind="mergesort")
    cols = ["leg", "t_start", "t_end", "n_moving", "n_matched", "matched_fraction", "fix_ids"]
    if a.empty:
        return pd.DataFrame(columns=cols)
    t = a["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    lat, lon = a["lat"].to_numpy(float), a["lon"].to_numpy(float)
    step_v = np.r_[np.nan, haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]) /
                   np.maximum(np.diff(t) / 1e9, 1e-9)]
    v = a["speed_mps"].to_numpy(float)
    v = np.where(np.isnan(v), step_v, v)
    moving = np.nan_to_num(v) >= min_speed_mps
    if trips is not None and len(trips):
        tr = trips[trips["subject_id"] == subject].sort_values("t_start")
        starts = tr["t_start"].to_numpy(dtype="datetime64[ns]").astype("int64")
        ends = tr["t_end"].to_numpy(dtype="datetime64[ns]").astype("int64")
        idx = np.searchsorted(starts, t, side="right") - 1
        inside = (idx >= 0) & (t <= ends[np.clip(idx, 0, None)])
        leg = np.where(inside, idx, -1)
        leg_names = tr["trip_id"].astype(str).to_numpy()
    else:
        run = np.cumsum(np.r_[True, moving[1:] != moving[:-1]])
        leg = np.where(moving, run, -1)
        _, leg = np.unique(leg, return_inverse=True)
        leg = np.where(moving, leg, -1)
        leg_names = np.asarray([f"L{i:04d}" for i in range(int(leg.max()) + 2)])
    # nearest fix of the other subject in time, within max_dt and radius
    tb = b["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    latb, lonb = b["lat"].to_numpy(float), b["lon"].to_numpy(float)
    matched = np.zeros(len(a), dtype=bool)
    if len(b):
        j = np.clip(np.searchsorted(tb, t), 0, len(tb) - 1)
        for cand in (j - 1, j):
            c = np.clip(cand, 0, len(tb) - 1)
            ok = (np.abs(tb[c] - t) <= pd.Timedelta(max_dt).value) & \
                (haversine_m(lat, lon, latb[c], lonb[c]) <= radius_m)
            matched |= ok
    df = pd.DataFrame({"leg": leg, "t": a["t_utc"].to_numpy(), "moving": moving, "matched": matched & moving,
                       "fix_id": schema.fix_ids(a).astype(str).to_numpy()})
    df = df[(df["leg"] >= 0) & df["moving"]]
    if df.empty:
        return pd.DataFrame(columns=cols)
    g = df.groupby("leg", sort=True)
    out = pd.DataFrame({
        "t_start": g["t"].min(), "t_end": g["t"].max(), "n_moving": g.size(),
        "n_matched": g["matched"].sum().astype(int),
        "fix_ids": g.apply(lambda d: "|".join(d.loc[d["matched"], "fix_id"]), include_groups=False),
    })
    out["matched_fraction"] = out["n_matched"] / out["n_moving"]
    out.insert(0, "leg", [str(leg_names[i]) for i in out.index])
    out = out.reset_index(drop=True)[cols]
    out["t_start"] = pd.to_datetime(out["t_start"], utc=True)
    out["t_end"] = pd.to_datetime(out["t_end"], utc=True)
    out.attrs["params"] = {"subject": subject, "with_subject": with_subject, "radius_m": radius_m,
                           "max_dt": str(pd.Timedelta(max_dt)), "min_speed_mps": min_speed_mps}
    return out


# deprecated aliases (old stage names), kept for one release


def copresence_pairs(*args: Any, **kwargs: Any) -> Any:
    """Deprecated: the old name of :func:`find_copresence_pairs` (removed in the next release)."""
    warnings.warn("routetrace: copresence_pairs() is renamed find_copresence_pairs(); the old name goes in "
                  "the next release", DeprecationWarning, stacklevel=2)
    return find_copresence_pairs(*args, **kwargs)
