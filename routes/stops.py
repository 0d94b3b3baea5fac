"""Stops, dwell times and unobserved intervals.

Definitions (the rules a court can read)
----------------------------------------
**Position fixes.** Only fixes whose stated accuracy is ``max_h_acc_m`` or better (default
500 m) place a subject; coarser fixes (cell towers: evidence of an area, not of a position)
and 0,0 placeholders neither make nor break a stop. They still count as observations.

**Stop.** A stop is a maximal run of a subject's position fixes, in time order, that all lie
within ``radius_m`` of the run's centre — widened by each fix's own stated accuracy, so a
50 m Wi-Fi fix may lie up to ``radius_m + 50`` m away — and that spans at least
``min_dwell``. Up to ``max_outliers`` consecutive fixes outside that limit, followed by a
return inside it, are treated as position noise and do not end the stop (they are linked
to it with role ``outlier``). The centre is the component-wise median of the stop's fixes;
``radius_m`` in the stops table is the largest distance of a stop fix from it.

**Arrival and departure** are the times of the first and last fix of the stop: the true
arrival lies between the previous fix and the first one (likewise for departure), and the
chronology shows that bound. When the subject is a vehicle with ignition events, an
ignition-off event inside or just before the stop brings the arrival forward to it, and an
ignition-on event at or after the last fix moves the departure to it (flag
``bounded_by_ignition``).

**Unobserved time.** A silence longer than ``max_gap`` between consecutive fixes (of any
accuracy) is an *unobserved interval* (table ``gaps``). A stop whose fixes before and after a
silence are at the same place spans it: the stop says so (flag ``spans_gap``), its ``dwell``
excludes the silence and ``observed_fraction`` gives the share of the stop's span that was
observed. A silence during which the vehicle's ignition was off (ignition-off before it,
ignition-on after it) is not unobserved: the vehicle was parked, and trackers report
hourly when parked.

Defaults: ``radius_m`` 100 m (a motorway car park or a building with its car park),
``min_dwell`` 5 min (shorter halts are traffic), ``max_gap`` 30 min (phones and trackers
record at least that often while they move).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import schema
from ..errors import ParameterError
from .geo import haversine_m, local_xy_m

__all__ = ["StopParams", "detect_gaps", "detect_stops", "parked_intervals"]


@dataclass(frozen=True)
class StopParams:
    """The parameters of a stop detection, as recorded in ``stops.attrs["params"]``."""

    radius_m: float
    min_dwell: pd.Timedelta
    max_gap: pd.Timedelta
    max_h_acc_m: float
    max_outliers: int

    def as_dict(self) -> dict[str, object]:
        """JSON-able form (durations as strings)."""
        return {"radius_m": self.radius_m, "min_dwell": str(self.min_dwell),
                "max_gap": str(self.max_gap), "max_h_acc_m": self.max_h_acc_m,
                "max_outliers": self.max_outliers}


def _check(p: StopParams) -> None:
    if not p.radius_m > 0:
        raise ParameterError(f"radius_m must be > 0, got {p.radius_m}")
    if p.min_dwell < pd.Timedelta(0):
        raise ParameterError(f"min_dwell must be >= 0, got {p.min_dwell}")
    if not p.max_gap > pd.Timedelta(0):
        raise ParameterError(f"max_gap must be > 0, got {p.max_gap}")
    if p.max_outliers < 0:
        raise ParameterError(f"max_outliers must be >= 0, got {p.max_outliers}")


def parked_intervals(events: pd.DataFrame | None) -> pd.DataFrame:
    """Ignition-off → next ignition-on intervals per subject: ``subject_id, t_off, t_on``.

    An ignition-off with no later ignition-on (end of record) gives an open interval
    (``t_on`` NaT); an ignition-on without a preceding off is ignored.
    """
    cols = {"subject_id": pd.Series(dtype="string"), "t_off": pd.Series(dtype="datetime64[ns, UTC]"),
            "t_on": pd.Series(dtype="datetime64[ns, UTC]")}
    if events is None or events.empty:
        return pd.DataFrame(cols)
    ev = events[events["kind"].isin(["ignition_off", "ignition_on"])]
    ev = ev.sort_values(["subject_id", "t_utc", "kind"], kind="mergesort")
    if ev.empty:
        return pd.DataFrame(cols)
    nxt_kind = ev.groupby("subject_id")["kind"].shift(-1)
    nxt_t = ev.groupby("subject_id")["t_utc"].shift(-1)
    off = ev["kind"] == "ignition_off"
    out = pd.DataFrame({"subject_id": ev.loc[off, "subject_id"].astype("string"),
                        "t_off": ev.loc[off, "t_utc"],
                        "t_on": nxt_t[off].where(nxt_kind[off] == "ignition_on")})
    out["t_on"] = pd.to_datetime(out["t_on"], utc=True)
    return out.reset_index(drop=True)


def _parked_arrays(parked: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per subject: (ignition-off times, ignition-on times) in ns, sorted; open end = max."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s, g in parked.groupby("subject_id"):
        g = g.sort_values("t_off", kind="mergesort")
        offs = g["t_off"].to_numpy(dtype="datetime64[ns]").astype("int64")
        ons = g["t_on"].to_numpy(dtype="datetime64[ns]").astype("int64")
        out[str(s)] = (offs, np.where(ons == np.iinfo(np.int64).min, np.iinfo(np.int64).max, ons))
    return out


def _covered(arrays: tuple[np.ndarray, np.ndarray] | None, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """True where one parked interval covers [t0, t1] (vectorised, by binary search)."""
    if arrays is None or len(t0) == 0:
        return np.zeros(len(t0), dtype=bool)
    offs, ons = arrays
    idx = np.searchsorted(offs, t0, side="right") - 1
    ok = idx >= 0
    cover = np.zeros(len(t0), dtype=bool)
    cover[ok] = t1[ok] <= ons[idx[ok]]
    return cover


def _in_parked(subj: np.ndarray, t0: np.ndarray, t1: np.ndarray, parked: pd.DataFrame) -> np.ndarray:
    """For intervals (subject, t0, t1) in ns: True when one parked interval covers [t0, t1]."""
    out = np.zeros(len(subj), dtype=bool)
    if parked.empty or len(subj) == 0:
        return out
    for s, arrays in _parked_arrays(parked).items():
        sel = subj == s
        if sel.any():
            out[sel] = _covered(arrays, t0[sel], t1[sel])
    return out


def _time_order(fixes: pd.DataFrame) -> np.ndarray:
    """Positions that sort ``fixes`` by subject, time and (only on ties) fix id."""
    subj_codes, _ = pd.factorize(fixes["subject_id"].astype(str), sort=True)
    t = fixes["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    idx = np.lexsort((t, subj_codes))
    st, tt = subj_codes[idx], t[idx]
    if len(idx) > 1 and bool(np.any((st[1:] == st[:-1]) & (tt[1:] == tt[:-1]))):
        fid, _ = pd.factorize(fixes["fix_id"].astype(str), sort=True)
        idx = np.lexsort((fid, t, subj_codes))
    return np.asarray(idx)


def detect_gaps(fixes: pd.DataFrame, *, max_gap: pd.Timedelta = pd.Timedelta("30min"),
                events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Unobserved intervals: consecutive fixes of a subject more than ``max_gap`` apart.

    Silences covered by one ignition-off → ignition-on interval are not gaps (the vehicle
    was parked with its engine off). Returns a ``gaps`` table.
    """
    schema.validate(fixes, "fixes")
    idx = _time_order(fixes)
    subj = fixes["subject_id"].astype(str).to_numpy()[idx]
    t = fixes["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")[idx]
    lat, lon = fixes["lat"].to_numpy(float)[idx], fixes["lon"].to_numpy(float)[idx]
    same = np.r_[False, subj[1:] == subj[:-1]]
    dt = np.r_[0, np.diff(t)]
    hit = np.flatnonzero(same & (dt > pd.Timedelta(max_gap).value))
    before = hit - 1
    parked = _in_parked(subj[hit], t[before], t[hit], parked_intervals(events))
    hit, before = hit[~parked], before[~parked]
    g = pd.DataFrame({
        "subject_id": subj[hit],
        "t_start": pd.to_datetime(t[before], unit="ns", utc=True),
        "t_end": pd.to_datetime(t[hit], unit="ns", utc=True),
        "lat_start": lat[before], "lon_start": lon[before], "lat_end": lat[hit], "lon_end": lon[hit],
        "distance_m": haversine_m(lat[before], lon[before], lat[hit], lon[hit]) if len(hit) else [],
    })
    g["duration"] = g["t_end"] - g["t_start"]
    g["gap_id"] = [f"{s}:G{i + 1:04d}" for s, i in zip(g["subject_id"], g.groupby("subject_id").cumcount(), strict=True)]
    g["flags"] = ""
    out = schema.coerce(g, "gaps")
    out.attrs["params"] = {"max_gap": str(pd.Timedelta(max_gap))}
    return out


def _scan(x: np.ndarray, y: np.ndarray, lim: np.ndarray, t: np.ndarray, radius_m: float,
          min_dwell_ns: int, max_outliers: int) -> list[tuple[list[int], list[int]]]:
    """Sequential scan of one candidate window: list of (member indices, outlier indices).

    Plain Python floats (not numpy scalars) keep this loop cheap; it only runs on the
    windows whose fixes do not all lie within the limit of their mean.
    """
    xs, ys, ls, ts = x.tolist(), y.tolist(), lim.tolist(), t.tolist()
    out: list[tuple[list[int], list[int]]] = []
    n = len(xs)
    i = 0
    while i < n:
        members = [i]
        outliers: list[int] = []
        sx, sy = xs[i], ys[i]
        j = i + 1
        pending: list[int] = []
        while j < n:
            k = len(members)
            dx, dy = xs[j] - sx / k, ys[j] - sy / k
            if dx * dx + dy * dy <= (radius_m + ls[j]) ** 2:
                members.append(j)
                outliers.extend(pending)
                pending = []
                sx += xs[j]
                sy += ys[j]
            else:
                pending.append(j)
                if len(pending) > max_outliers:
                    break
            j += 1
        if ts[members[-1]] - ts[members[0]] >= min_dwell_ns:
            out.append((members, outliers))
            i = members[-1] + 1
        else:
            i += 1
    return out


def detect_stops(
    fixes: pd.DataFrame,
    *,
    radius_m: float = 100.0,
    min_dwell: pd.Timedelta = pd.Timedelta("5min"),
    max_gap: pd.Timedelta = pd.Timedelta("30min"),
    max_h_acc_m: float = 500.0,
    max_outliers: int = 2,
    events: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Find stops (see the module's rules); return ``(fixes with stop_id, stops)``.

    The returned fixes are the input rows (same order) with ``stop_id`` (NA outside stops)
    and ``stop_role`` (``member``, ``outlier``, ``coarse`` — a fix too inaccurate to place
    the subject but recorded during the stop — or NA). The unobserved intervals are
    ``stops.attrs["gaps"]`` (a ``gaps`` table, also from :func:`detect_gaps`) and the
    parameters ``stops.attrs["params"]``.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id="lorry", t_utc=pd.date_range("2025-10-26T21:00Z", periods=12,
    ...                freq="1min"), lat=51.0, lon=3.87, h_acc_m=5.0)
    >>> linked, stops = detect_stops(f, radius_m=100, min_dwell=pd.Timedelta("5min"))
    >>> stops[["subject_id", "n_fixes", "dwell"]].values.tolist()
    [['lorry', 11, Timedelta('0 days 00:11:00')]]
    """
    p = StopParams(float(radius_m), pd.Timedelta(min_dwell), pd.Timedelta(max_gap), float(max_h_acc_m),
                   int(max_outliers))
    _check(p)
    schema.validate(fixes, "fixes")
    idx = _time_order(fixes)
    f = fixes[["subject_id", "t_utc", "lat", "lon", "h_acc_m", "flags", "source_id"]].iloc[idx]
    n = len(f)
    subj = f["subject_id"].astype(str).to_numpy()
    t = f["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    lat, lon = f["lat"].to_numpy(float), f["lon"].to_numpy(float)
    acc_raw = f["h_acc_m"].to_numpy(float)
    zero = schema.has_flag(f["flags"], "zero_position").to_numpy() | ((lat == 0) & (lon == 0))
    positional = ~(acc_raw > p.max_h_acc_m) & ~zero
    acc = np.nan_to_num(np.minimum(acc_raw, p.max_h_acc_m), nan=0.0)
    pi = np.flatnonzero(positional)
    # 1. candidate runs: consecutive position fixes of a subject that could share a centre
    ps, pt = subj[pi], t[pi]
    x, y = local_xy_m(lat[pi], lon[pi], lat0=float(np.nanmean(lat)) if n else 0.0,
                      lon0=float(np.nanmean(lon)) if n else 0.0)
    if len(pi) > 1:
        step = np.hypot(np.diff(x), np.diff(y))
        link = (ps[1:] == ps[:-1]) & (step <= 2 * p.radius_m + acc[pi][1:] + acc[pi][:-1])
    else:
        link = np.zeros(0, dtype=bool)
    run = np.cumsum(np.r_[True, ~link]) - 1 if len(pi) else np.zeros(0, dtype=int)
    stop_of = np.full(n, -1)
    role = np.full(n, "", dtype=object)
    stop_rows: list[dict[str, object]] = []
    if len(pi):
        bounds = np.flatnonzero(np.r_[True, run[1:] != run[:-1], True])
        run_s, run_e = bounds[:-1], bounds[1:]
        lim = acc[pi]
        min_ns = p.min_dwell.value
        # windows the scan walks: a run, joined with the next run of the same subject when
        # only a short run (<= max_outliers fixes: a noise excursion) separates them
        w_s, w_e = [], []
        k = 0
        nr = len(run_s)
        while k < nr:
            s0, e0 = run_s[k], run_e[k]
            while (k + 2 < nr and ps[run_s[k + 2]] == ps[s0]
                   and run_e[k + 1] - run_s[k + 1] <= p.max_outliers):
                k += 2
                e0 = run_e[k]
            w_s.append(s0)
            w_e.append(e0)
            k += 1
        for s0, e0 in zip(w_s, w_e, strict=True):
            if pt[e0 - 1] - pt[s0] < min_ns:
                continue
            cx, cy = x[s0:e0], y[s0:e0]
            mx, my = cx.mean(), cy.mean()
            found: list[tuple[list[int], list[int]]]
            if np.all(np.hypot(cx - mx, cy - my) <= p.radius_m + lim[s0:e0]):
                found = [(list(range(e0 - s0)), [])]
            else:
                found = _scan(cx, cy, lim[s0:e0], pt[s0:e0], p.radius_m, min_ns, p.max_outliers)
            for members, outs in found:
                sid = len(stop_rows)
                mem = pi[s0 + np.asarray(members)]
                stop_of[mem] = sid
                role[mem] = "member"
                if outs:
                    o = pi[s0 + np.asarray(outs)]
                    stop_of[o] = sid
                    role[o] = "outlier"
                stop_rows.append({"members": mem})
    stops = _stop_table(f, stop_rows, subj, t, lat, lon, positional, stop_of, role, p, events)
    linked = fixes.copy(deep=False)
    ids = stops["stop_id"].astype(str).to_numpy(dtype=object) if len(stops) else np.zeros(0, dtype=object)
    sid_sorted = np.where(stop_of >= 0, ids[np.clip(stop_of, 0, None)] if len(ids) else None, None)
    # position of each input row in the sorted order, to put the links back in input order
    pos = np.empty(n, dtype=np.int64)
    pos[idx] = np.arange(n)
    linked["stop_id"] = pd.array(sid_sorted[pos], dtype="string")
    role_out = role.copy()
    role_out[role_out == ""] = None
    linked["stop_role"] = pd.array(role_out[pos], dtype="string")
    stops.attrs["params"] = p.as_dict()
    stops.attrs["gaps"] = detect_gaps(fixes, max_gap=p.max_gap, events=events)
    return linked, stops


def _stop_table(f: pd.DataFrame, rows: list[dict[str, object]], subj: np.ndarray, t: np.ndarray,
                lat: np.ndarray, lon: np.ndarray, positional: np.ndarray, stop_of: np.ndarray,
                role: np.ndarray, p: StopParams, events: pd.DataFrame | None) -> pd.DataFrame:
    if not rows:
        out = schema.empty("stops")
        return out
    parked = parked_intervals(events)
    parked_by = _parked_arrays(parked)
    src = f["source_id"].astype(str).to_numpy()
    # fixes are sorted by subject then time: each subject is one contiguous block
    names, first_idx = np.unique(subj, return_index=True)
    block = {str(nm): (int(a), int(b)) for nm, a, b in
             zip(names, first_idx, np.r_[first_idx[1:], len(subj)] if len(names) else [], strict=True)}
    recs = []
    counter: dict[str, int] = {}
    for k, r in enumerate(rows):
        mem = np.asarray(r["members"])
        s = subj[mem[0]]
        ta, td = int(t[mem[0]]), int(t[mem[-1]])
        clat, clon = float(np.median(lat[mem])), float(np.median(lon[mem]))
        rad = float(haversine_m(lat[mem], lon[mem], clat, clon).max())
        flags: list[str] = []
        # ignition bounds
        arrays = parked_by.get(s)
        if arrays is not None:
            offs, ons = arrays
            prev_fix = int(t[mem[0] - 1]) if mem[0] > 0 and subj[mem[0] - 1] == s else None
            next_fix = int(t[mem[-1] + 1]) if mem[-1] + 1 < len(t) and subj[mem[-1] + 1] == s else None
            # only intervals that start between the previous fix and the departure matter,
            # plus the one already running at the previous fix
            lo_i = max(int(np.searchsorted(offs, prev_fix if prev_fix is not None else offs[0] - 1)) - 1, 0)
            hi_i = int(np.searchsorted(offs, td, side="right"))
            for off, on in zip(offs[lo_i:hi_i].tolist(), ons[lo_i:hi_i].tolist(), strict=True):
                open_end = on == np.iinfo(np.int64).max
                if off <= td and (prev_fix is None or off >= prev_fix) and off < ta:
                    ta = int(off)
                    flags.append("bounded_by_ignition")
                if not open_end and on >= ta and on > td and (next_fix is None or on <= next_fix):
                    td = int(on)
                    flags.append("bounded_by_ignition")
        # all fixes of the subject inside [ta, td] are observations during the stop
        a0, b0 = block[s]
        lo = a0 + int(np.searchsorted(t[a0:b0], ta, side="left"))
        hi = a0 + int(np.searchsorted(t[a0:b0], td, side="right"))
        sel = np.arange(lo, hi)
        coarse = sel[~positional[sel] & (stop_of[sel] < 0)]
        stop_of[coarse] = k
        role[coarse] = "coarse"
        obs_t = np.unique(np.r_[ta, t[sel], td])
        steps = np.diff(obs_t)
        long = steps > p.max_gap.value
        unobs = 0
        if long.any():
            a, b = obs_t[:-1][long], obs_t[1:][long]
            covered = _covered(parked_by.get(s), a, b)
            unobs = int(steps[long][~covered].sum())
        if unobs:
            flags.append("spans_gap")
        span = td - ta
        counter[s] = counter.get(s, 0) + 1
        recs.append({
            "subject_id": s, "stop_id": f"{s}:S{counter[s]:04d}",
            "t_arrival": ta, "t_departure": td, "dwell": span - unobs,
            "lat": clat, "lon": clon, "radius_m": rad, "n_fixes": len(mem),
            "sources": "|".join(sorted(set(src[mem]))),
            "observed_fraction": 1.0 - unobs / span if span > 0 else 1.0,
            "flags": "|".join(sorted(set(flags))),
        })
    df = pd.DataFrame(recs)
    df["t_arrival"] = pd.to_datetime(df["t_arrival"], unit="ns", utc=True)
    df["t_departure"] = pd.to_datetime(df["t_departure"], unit="ns", utc=True)
    df["dwell"] = pd.to_timedelta(df["dwell"], unit="ns")
    return schema.coerce(df, "stops")
