"""Corroboration: does the technical evidence support the places people indicated?

For each indicated place (a ``places`` row of ``kind="indicated"``, from a statements
file) and each subject it is tested against, one verdict — **supported**,
**contradicted**, **not observed** or **inconclusive** — with the evidence rows behind it
and a plain-language reason. Also a **sequence check**: does the order of the places in a
person's account match the order of the subject's visits?

Definitions (the rules a court can read)
----------------------------------------
*Place.* The indicated point P with its uncertainty ``r_P`` (``places.radius_m``; when the
statement states none, ``default_place_radius_m``, recorded in the row).

*Window.* W = [t_start − ``time_tolerance``, t_end + ``time_tolerance``] of the
statement (an open end stays open; a statement with no time at all is tested against the
whole record). A statement without a time of its own but with an order constraint
("before the hotel") gets the bound of the statement it refers to: ``before: S`` ends W
at S's t_end, ``after: S`` starts W at S's t_start.

*Near.* An evidence row E is near P when the great-circle distance
``d(E, P) <= r_P + r_E + slack_m``, where ``r_E`` is the fix's stated horizontal accuracy
(``default_fix_accuracy_m`` when the source states none) or the stop's radius: the two
uncertainty circles, widened by ``slack_m``, overlap. A near row is *coarse* when
``r_P + r_E > coarse_m``: it shows the subject was in the area, not at the place.

Verdicts, in this order:

1. **supported** — a stop of the subject that overlaps W is near P and is observed
   inside W (at least one near fix of the subject in W during the stop: a stop that spans
   a silence proves nothing about the silence), or at least ``min_fixes`` fixes of the
   subject inside W are near P; and that evidence is not coarse.
2. **not observed** — the subject has no fix inside W: the window falls in an
   unobserved interval (device off, no signal, outside the record). An evidence gap is
   not a contradiction; the fixes just before and after W are reported.
3. **contradicted** — the subject has fixes inside W, none is near P (not even
   coarsely), and at no moment in W could the subject have been at P: for every interval
   between consecutive fixes that overlaps W (edges included), going from the fix before
   to P and on to the fix after would need a speed above ``max_speed_mps`` (both fixes'
   accuracies and ``r_P`` are subtracted from the distance in the subject's favour). W
   must lie inside the subject's record (first to last fix).
4. **inconclusive** — everything else, with the reason: only coarse or fewer than
   ``min_fixes`` near fixes; or no near fix but an unobserved interval in W long enough
   to have reached P (the interval is reported); or no time to test against and no visit.

When the verdict is not *supported*, the subject's visit to P closest in time outside W
(a stop, or a run of near fixes lasting 5 minutes) is added as evidence (role
``outside_window``) and named in the reason: the place may be right and the time wrong.

"Supported" says the subject was at the place during the window, not that it stopped
there: the evidence rows show whether a stop (a dwell) or passing fixes support it.

Sequence consistency: for each person and subject, the person's statements with an
``order`` are taken in that order; each place's *visits* are the subject's stops near it
(without a stops table: runs of consecutive near fixes lasting at least 5 minutes, so
driving past is not a visit), at any time. The account is consistent when
visits can be chosen in the stated order, each arriving no earlier than the one before
(chosen greedily: the earliest visit that keeps the order, which finds such a choice
whenever one exists). A place with no visit at all is ``not visited`` and does not break
the order; a place whose visits all come before the previous choice is ``out of order``.
``before``/``after`` constraints are checked pairwise the same way.

Defaults and their reasons: ``time_tolerance`` 30 min (people round times to the half
hour; devices log at least every few minutes while moving), ``slack_m`` 100 m (a car park
or hotel block is about 100 m across), ``default_place_radius_m`` 250 m (a point chosen on
a street-level map without a stated zoom), ``default_fix_accuracy_m`` 50 m (a typical
phone fix), ``min_fixes`` 2 (one fix can be an outlier), ``coarse_m`` 2 km (cell-tower
level), ``max_speed_mps`` 40 m/s (144 km/h: faster than road travel over any stretch).
The parameters used are in ``result.params`` and in the CSV header row of each verdict.

Example
-------
>>> res = corroborate_statements(places, fixes, stops=stops, gaps=gaps)  # doctest: +SKIP
>>> res.verdicts[["statement_id", "subject_id", "verdict", "reason"]]  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import ParameterError
from ..geodesy import haversine_m
from .order import sort_fixes

__all__ = [
    "VERDICTS",
    "CorroborationResult",
    "corroborate_statements",
    "statement_layer",
]

VERDICTS = ("supported", "contradicted", "not observed", "inconclusive")
_MAX_EVIDENCE_FIXES = 5
#: Without a stops table, a visit is a run of near fixes lasting at least this long.
VISIT_MIN_DWELL = pd.Timedelta("5min")


@dataclass
class CorroborationResult:
    """Verdicts, the evidence rows behind them, the sequence check, and the parameters."""

    verdicts: pd.DataFrame
    evidence: pd.DataFrame
    sequence: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)


def _extra(s: Any) -> dict[str, Any]:
    if s is None or (isinstance(s, float) and np.isnan(s)) or s is pd.NA:
        return {}
    try:
        v = json.loads(str(s))
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


def _iso(t: Any) -> str:
    return "open" if pd.isna(t) else str(pd.Timestamp(t).strftime("%Y-%m-%d %H:%M UTC"))


def _dur(td: pd.Timedelta) -> str:
    mins = round(td.total_seconds() / 60)
    if mins < 120:
        return f"{mins} min"
    return f"{mins // 60} h {mins % 60:02d} min"


@dataclass
class _Track:
    t: np.ndarray  # int64 ns, sorted
    lat: np.ndarray
    lon: np.ndarray
    acc: np.ndarray
    src: np.ndarray  # index of each row's source in ``sources``
    sources: list[str]
    record: Any  # the rows' record locators (a pandas array: no Python string per row)

    def fix_id(self, j: int) -> str:
        """Row ``j``'s ``fix_id``, derived as :func:`routetrace.schema.fix_ids` does; built
        only for the rows a result cites."""
        return f"{self.sources[self.src[j]][:16]}:{self.record[j]}"

    def source_id(self, j: int) -> str:
        return self.sources[self.src[j]]


def _tracks(fixes: pd.DataFrame, default_acc: float) -> dict[str, _Track]:
    out: dict[str, _Track] = {}
    if not len(fixes):
        return out
    f = sort_fixes(fixes)
    t = f["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    codes, names = pd.factorize(f["subject_id"], use_na_sentinel=False)
    acc = f["h_acc_m"].to_numpy(dtype=float, na_value=np.nan)
    acc = np.where(np.isnan(acc), default_acc, acc)
    lat, lon = f["lat"].to_numpy(dtype=float), f["lon"].to_numpy(dtype=float)
    src, sources = pd.factorize(f["source_id"], use_na_sentinel=False)
    source_list = [str(x) for x in sources]
    record = f["record"].array
    bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
    for a, b in itertools.pairwise(bounds):
        out[str(names[codes[a]])] = _Track(t[a:b], lat[a:b], lon[a:b], acc[a:b], src[a:b],
                                           source_list, record[a:b])
    return out


def _ns(t: Any, default: int) -> int:
    return default if pd.isna(t) else int(pd.Timestamp(t).value)


_LO, _HI = np.iinfo("int64").min // 2, np.iinfo("int64").max // 2


def _windows(pl: pd.DataFrame, tol: pd.Timedelta) -> pd.DataFrame:
    """Effective windows (ns) including bounds from before/after constraints."""
    rows = []
    by_sid = {r["statement_id"]: r for r in pl.to_dict("records")}
    for r in pl.to_dict("records"):
        lo = _ns(r["t_start"], _LO)
        hi = _ns(r["t_end"], _HI)
        notes = []
        if r["t_precision"] == "none":
            for other in r["before"]:
                o = by_sid.get(other)
                if o is not None and pd.notna(o["t_end"]):
                    hi = min(hi, int(pd.Timestamp(o["t_end"]).value))
                    notes.append(f"before {other}")
            for other in r["after"]:
                o = by_sid.get(other)
                if o is not None and pd.notna(o["t_start"]):
                    lo = max(lo, int(pd.Timestamp(o["t_start"]).value))
                    notes.append(f"after {other}")
        if lo != _LO:
            lo -= tol.value
        if hi != _HI:
            hi += tol.value
        rows.append({"w_lo": lo, "w_hi": hi, "window_rule": "; ".join(notes)})
    return pd.DataFrame(rows, index=pl.index)


def _prepare(places: pd.DataFrame, kinds: Sequence[str]) -> pd.DataFrame:
    schema.validate(places, "places")
    pl = places[places["kind"].astype(str).isin(list(kinds))].copy()
    ex = [_extra(x) for x in pl["extra"]] if "extra" in pl.columns else [{} for _ in range(len(pl))]
    pl["statement_id"] = [e.get("statement_id") or pid for e, pid in zip(ex, pl["place_id"], strict=False)]
    pl["person_id"] = [e.get("person_id") or e.get("sender") for e in ex]
    pl["role"] = [e.get("role") for e in ex]
    pl["order"] = [e.get("order") for e in ex]
    pl["before"] = [list(e.get("before") or []) for e in ex]
    pl["after"] = [list(e.get("after") or []) for e in ex]
    pl["subjects"] = [list(e.get("subjects") or []) for e in ex]
    return pl.reset_index(drop=True)


def corroborate_statements(
    places: pd.DataFrame,
    fixes: pd.DataFrame,
    *,
    stops: pd.DataFrame | None = None,
    gaps: pd.DataFrame | None = None,
    subjects: Iterable[str] | None = None,
    kinds: Sequence[str] = ("indicated",),
    time_tolerance: pd.Timedelta = pd.Timedelta("30min"),
    slack_m: float = 100.0,
    default_place_radius_m: float = 250.0,
    default_fix_accuracy_m: float = 50.0,
    min_fixes: int = 2,
    coarse_m: float = 2000.0,
    max_speed_mps: float = 40.0,
) -> CorroborationResult:
    """Test indicated places against the subjects' fixes, stops and gaps (rules: module doc).

    Parameters
    ----------
    places
        A ``places`` table; rows of ``kinds`` are tested (``extra`` carries the statement
        fields written by the statements loader).
    fixes, stops, gaps
        The subjects' ``fixes``; ``stops`` and ``gaps`` as produced by the stops stage
        (optional: without stops, fixes alone decide; gaps are cited as evidence).
    subjects
        Subjects to test every place against, overriding the statements' own ``subjects``.
        Default: the statement's ``subjects``, else every subject in ``fixes``.
    time_tolerance, slack_m, default_place_radius_m, default_fix_accuracy_m, min_fixes, coarse_m, max_speed_mps
        See the module docstring (units in the names; all recorded in ``params``).

    Returns
    -------
    CorroborationResult
        ``verdicts`` (one row per place and subject), ``evidence`` (rows behind each
        verdict, keyed by ``corroboration_id``), ``sequence`` (order check), ``params``.

    Raises
    ------
    ParameterError
        For a non-positive distance, speed or count, or a negative tolerance.
    SchemaError
        When an input table does not match its declaration.

    Example
    -------
    >>> from routetrace import schema
    >>> from routetrace.testing import make_fixes
    >>> t0 = pd.Timestamp("2025-10-26T21:00Z")
    >>> places = schema.from_records([{
    ...     "place_id": "p1", "record": "0", "kind": "indicated", "lat": 51.0, "lon": 3.87,
    ...     "radius_m": 50.0, "t_start": t0, "t_end": t0 + pd.Timedelta("1h"),
    ...     "t_precision": "window", "source_id": "statement", "flags": "",
    ...     "extra": '{"statement_id": "S1"}'}], "places")
    >>> f = make_fixes(subject_id="lorry", t_utc=pd.date_range(t0, periods=12, freq="5min"),
    ...                lat=51.0, lon=3.87, h_acc_m=5.0)
    >>> result = corroborate_statements(places, f)
    >>> result.verdicts[["statement_id", "subject_id", "verdict"]].values.tolist()
    [['S1', 'lorry', 'supported']]
    """
    tol = pd.Timedelta(time_tolerance)
    for name, value in (("slack_m", slack_m), ("coarse_m", coarse_m),
                    ("default_place_radius_m", default_place_radius_m),
                    ("default_fix_accuracy_m", default_fix_accuracy_m),
                    ("max_speed_mps", max_speed_mps), ("min_fixes", min_fixes)):
        if not value > 0:
            raise ParameterError(f"{name} must be > 0, got {value}")
    if tol < pd.Timedelta(0):
        raise ParameterError(f"time_tolerance must be >= 0, got {tol}")
    params: dict[str, Any] = {
        "time_tolerance": str(tol), "slack_m": slack_m, "default_place_radius_m": default_place_radius_m,
        "default_fix_accuracy_m": default_fix_accuracy_m, "min_fixes": min_fixes,
        "coarse_m": coarse_m, "max_speed_mps": max_speed_mps, "kinds": list(kinds)}
    schema.validate(fixes, "fixes")
    if stops is not None:
        schema.validate(stops, "stops")
    if gaps is not None:
        schema.validate(gaps, "gaps")
    pl = _prepare(places, kinds)
    tracks = _tracks(fixes, default_fix_accuracy_m)
    forced = sorted(set(subjects)) if subjects is not None else None
    win = _windows(pl, tol) if len(pl) else pd.DataFrame(columns=["w_lo", "w_hi", "window_rule"])
    windows = win.to_dict("index")  # per place: its window's bounds (ns) and rule
    verdicts: list[dict[str, Any]] = []
    evidence: list[dict[str, Any]] = []
    for i, p in pl.iterrows():
        subs = forced or p["subjects"] or sorted(tracks)
        r_p = float(p["radius_m"]) if pd.notna(p["radius_m"]) else default_place_radius_m
        lo_i, hi_i, rule = int(windows[i]["w_lo"]), int(windows[i]["w_hi"]), windows[i]["window_rule"]
        for s in subs:
            cid = f"{p['statement_id']}|{s}"
            v, reason, ev = _judge(
                p, s, r_p, lo_i, hi_i, tracks.get(s),
                stops, gaps, slack_m=slack_m, min_fixes=min_fixes, coarse_m=coarse_m,
                max_speed_mps=max_speed_mps)
            if v != "supported" and (lo_i != _LO or hi_i != _HI):
                other = _closest_visit(p, s, tracks.get(s), stops, lo_i, hi_i, slack_m=slack_m,
                                       default_r=default_place_radius_m)
                if other is not None:
                    ev.append(other)
                    when = "before" if other["t_end"].value < lo_i else "after"
                    reason += (f". Outside the window, {s} was at the place "
                               f"{_dur(other['time_diff'])} {when} it ({other['evidence_id']}, "
                               f"{_iso(other['t_start'])} to {_iso(other['t_end'])})")
            if rule:
                reason += f" (time window from the order constraint: {rule})"
            for e in ev:
                e["corroboration_id"] = cid
            evidence.extend(ev)
            near = [e for e in ev if e["role"] in ("supporting", "near")]
            ranked = [e for e in ev if e["distance_m"] == e["distance_m"]
                      and e["role"] != "outside_window"]
            best = min(ranked, key=lambda e: e["distance_m"]) if ranked else None
            verdicts.append({
                "corroboration_id": cid, "place_id": p["place_id"],
                "statement_id": p["statement_id"], "person_id": p["person_id"], "role": p["role"],
                "subject_id": s, "verdict": v, "reason": reason,
                "place_lat": p["lat"], "place_lon": p["lon"], "place_radius_m": r_p,
                "place_radius_stated": pd.notna(p["radius_m"]),
                "window_start": pd.NaT if lo_i == _LO else pd.Timestamp(lo_i, tz="UTC"),
                "window_end": pd.NaT if hi_i == _HI else pd.Timestamp(hi_i, tz="UTC"),
                "n_fixes_in_window": _count_in(tracks.get(s), lo_i, hi_i),
                "stop_ids": "|".join(e["evidence_id"] for e in near if e["evidence_kind"] == "stop"),
                "fix_ids": "|".join(e["evidence_id"] for e in near if e["evidence_kind"] == "fix"),
                "gap_ids": "|".join(e["evidence_id"] for e in ev if e["evidence_kind"] == "gap"),
                "nearest_m": best["distance_m"] if best else np.nan,
                "nearest_time_diff": best["time_diff"] if best else pd.NaT,
                "nearest_accuracy_m": best["accuracy_m"] if best else np.nan,
            })
    vcols = ["corroboration_id", "place_id", "statement_id", "person_id", "role", "subject_id",
             "verdict", "reason", "place_lat", "place_lon", "place_radius_m", "place_radius_stated",
             "window_start", "window_end", "n_fixes_in_window", "stop_ids", "fix_ids", "gap_ids",
             "nearest_m", "nearest_time_diff", "nearest_accuracy_m"]
    vdf = pd.DataFrame(verdicts, columns=vcols)
    for c in ("window_start", "window_end"):
        vdf[c] = pd.to_datetime(vdf[c], utc=True).astype("datetime64[ns, UTC]")
    vdf["nearest_time_diff"] = _td(vdf["nearest_time_diff"])
    for c in ("corroboration_id", "place_id", "statement_id", "person_id", "role", "subject_id",
              "verdict", "reason", "stop_ids", "fix_ids", "gap_ids"):
        vdf[c] = vdf[c].astype("string")
    vdf["n_fixes_in_window"] = vdf["n_fixes_in_window"].astype("Int64")
    vdf["place_radius_stated"] = vdf["place_radius_stated"].astype("boolean")
    ecols = ["corroboration_id", "evidence_kind", "evidence_id", "role", "t_start", "t_end",
             "lat", "lon", "distance_m", "limit_m", "time_diff", "accuracy_m", "source_id"]
    edf = pd.DataFrame(evidence, columns=ecols)
    for c in ("t_start", "t_end"):
        edf[c] = pd.to_datetime(edf[c], utc=True).astype("datetime64[ns, UTC]")
    edf["time_diff"] = _td(edf["time_diff"])
    for c in ("corroboration_id", "evidence_kind", "evidence_id", "role", "source_id"):
        edf[c] = edf[c].astype("string")
    for c in ("lat", "lon", "distance_m", "limit_m", "accuracy_m"):
        edf[c] = edf[c].astype(float)
    seq = _sequence(pl, tracks, stops, slack_m=slack_m, default_r=default_place_radius_m,
                    forced=forced)
    vdf.attrs["params"] = params
    return CorroborationResult(verdicts=vdf, evidence=edf, sequence=seq, params=params)


def _td(col: pd.Series) -> pd.Series:
    vals = [pd.NaT if (x is None or x is pd.NaT or (isinstance(x, float) and np.isnan(x)))
            else pd.Timedelta(x).value for x in col]
    return pd.Series(pd.to_timedelta([v for v in vals], unit="ns"), index=col.index,
                     dtype="timedelta64[ns]")


def _count_in(tr: _Track | None, lo: int, hi: int) -> int:
    if tr is None:
        return 0
    return int(np.searchsorted(tr.t, hi, side="right") - np.searchsorted(tr.t, lo, side="left"))


def _fix_ev(tr: _Track, idx: np.ndarray, d: np.ndarray, lim: np.ndarray, role: str,
            lo: int, hi: int) -> list[dict[str, Any]]:
    out = []
    for j, dist, li in zip(idx, d, lim, strict=False):
        t = int(tr.t[j])
        diff = 0 if lo <= t <= hi else (lo - t if t < lo else t - hi)
        out.append({"evidence_kind": "fix", "evidence_id": tr.fix_id(j), "role": role,
                    "t_start": pd.Timestamp(t, tz="UTC"), "t_end": pd.Timestamp(t, tz="UTC"),
                    "lat": float(tr.lat[j]), "lon": float(tr.lon[j]), "distance_m": round(float(dist), 1),
                    "limit_m": round(float(li), 1), "time_diff": pd.Timedelta(diff),
                    "accuracy_m": float(tr.acc[j]), "source_id": tr.source_id(j)})
    return out


def _gap_ev(gaps: pd.DataFrame | None, subject: str, lo: int, hi: int,
            p_lat: float, p_lon: float) -> list[dict[str, Any]]:
    if gaps is None or not len(gaps):
        return []
    g = gaps[(gaps["subject_id"].astype(str) == subject)
             & (gaps["t_start"].astype("int64") < hi) & (gaps["t_end"].astype("int64") > lo)]
    out = []
    for r in g.sort_values("t_start").itertuples():
        d = np.nan
        if pd.notna(r.lat_start) and pd.notna(r.lat_end):
            d = float(min(haversine_m(r.lat_start, r.lon_start, p_lat, p_lon),
                          haversine_m(r.lat_end, r.lon_end, p_lat, p_lon)))
        out.append({"evidence_kind": "gap", "evidence_id": str(r.gap_id), "role": "unobserved",
                    "t_start": r.t_start, "t_end": r.t_end, "lat": np.nan, "lon": np.nan,
                    "distance_m": round(d, 1) if d == d else np.nan, "limit_m": np.nan,
                    "time_diff": pd.Timedelta(0), "accuracy_m": np.nan, "source_id": None})
    return out


def _judge(
    p: Mapping[str, Any], subject: str, r_p: float, lo: int, hi: int, tr: _Track | None,
    stops: pd.DataFrame | None, gaps: pd.DataFrame | None, *, slack_m: float, min_fixes: int,
    coarse_m: float, max_speed_mps: float,
) -> tuple[str, str, list[dict[str, Any]]]:
    sid = p["statement_id"]
    plat, plon = float(p["lat"]), float(p["lon"])
    timed = not (lo == _LO and hi == _HI)
    span = (f"between {_iso(None if lo == _LO else pd.Timestamp(lo, tz='UTC'))} and "
            f"{_iso(None if hi == _HI else pd.Timestamp(hi, tz='UTC'))}")
    if tr is None or len(tr.t) == 0:
        return ("not observed", f"{subject} has no fixes in the case at all, so the evidence "
                f"cannot test statement {sid}", [])
    ev: list[dict[str, Any]] = []
    i0 = int(np.searchsorted(tr.t, lo, side="left"))
    i1 = int(np.searchsorted(tr.t, hi, side="right"))
    idx = np.arange(i0, i1)
    d = haversine_m(tr.lat[idx], tr.lon[idx], plat, plon)
    lim = r_p + tr.acc[idx] + slack_m
    near = d <= lim
    near_t = tr.t[idx][near]
    # stops overlapping W and near P; one counts only when observed inside W (a near fix of
    # the subject in W during the stop), so a stop spanning a silence proves nothing there
    stop_hits: list[dict[str, Any]] = []
    spanning: list[dict[str, Any]] = []
    if stops is not None and len(stops):
        st = stops[stops["subject_id"].astype(str) == subject]
        a = st["t_arrival"].astype("int64").to_numpy()
        b = st["t_departure"].astype("int64").to_numpy()
        ov = (a <= hi) & (b >= lo)
        st = st[ov]
        if len(st):
            sd = haversine_m(st["lat"].to_numpy(float), st["lon"].to_numpy(float), plat, plon)
            rs = st["radius_m"].to_numpy(float)
            slim = r_p + rs + slack_m
            for r, dist, li, re_, ta, tb in zip(st.itertuples(), sd, slim, rs, a[ov], b[ov],
                                                strict=False):
                if dist <= li:
                    seen = bool(((near_t >= ta) & (near_t <= tb)).any())
                    (stop_hits if seen else spanning).append({
                        "evidence_kind": "stop", "evidence_id": str(r.stop_id),
                        "role": ("spans_window" if not seen else
                                 "supporting" if r_p + re_ <= coarse_m else "coarse"),
                        "t_start": r.t_arrival, "t_end": r.t_departure, "lat": float(r.lat),
                        "lon": float(r.lon), "distance_m": round(float(dist), 1),
                        "limit_m": round(float(li), 1), "time_diff": pd.Timedelta(0),
                        "accuracy_m": float(re_), "source_id": str(r.sources)})
    fine = near & (r_p + tr.acc[idx] <= coarse_m)
    good_stops = [h for h in stop_hits if h["role"] == "supporting"]
    n_fine = int(fine.sum())
    if good_stops or n_fine >= min_fixes:
        ev.extend(good_stops)
        order = np.argsort(d[fine], kind="stable")[:_MAX_EVIDENCE_FIXES]
        ev.extend(_fix_ev(tr, idx[fine][order], d[fine][order], lim[fine][order], "supporting", lo, hi))
        what = []
        if good_stops:
            s0 = good_stops[0]
            what.append(f"stop {s0['evidence_id']} ({_iso(s0['t_start'])} to {_iso(s0['t_end'])}) "
                        f"is {s0['distance_m']:.0f} m from the indicated place (limit "
                        f"{s0['limit_m']:.0f} m incl. both uncertainties)")
        if n_fine:
            what.append(f"{n_fine} fix(es) within the limit, the closest "
                        f"{float(d[fine].min()):.0f} m away")
        return "supported", (f"{subject} was at the place of statement {sid} {span}: "
                             + "; ".join(what)), ev
    if len(idx) == 0:
        before = i0 - 1
        after = i1
        br = [j for j in (before, after) if 0 <= j < len(tr.t)]
        bd = haversine_m(tr.lat[br], tr.lon[br], plat, plon) if br else np.array([])
        ev.extend(_fix_ev(tr, np.asarray(br, dtype=int), bd, r_p + tr.acc[br] + slack_m,
                          "bracketing", lo, hi))
        ev.extend(_gap_ev(gaps, subject, lo, hi, plat, plon))
        ev.extend(spanning)
        if before < 0:
            where = f"the window ends before {subject}'s first fix ({_iso(pd.Timestamp(int(tr.t[0]), tz='UTC'))})"
        elif after >= len(tr.t):
            where = f"the window starts after {subject}'s last fix ({_iso(pd.Timestamp(int(tr.t[-1]), tz='UTC'))})"
        else:
            gap = pd.Timedelta(int(tr.t[after] - tr.t[before]))
            where = (f"the window lies inside an unobserved interval of {_dur(gap)} "
                     f"(last fix {_iso(pd.Timestamp(int(tr.t[before]), tz='UTC'))}, "
                     f"{bd[0]:.0f} m from the place; next fix "
                     f"{_iso(pd.Timestamp(int(tr.t[after]), tz='UTC'))}, {bd[1]:.0f} m from the place)")
        if spanning:
            where += (f"; stop {spanning[0]['evidence_id']} near the place spans the window "
                      "but was not observed during it")
        return "not observed", (f"{subject} has no fix {span}: {where}. This is a gap in the "
                                f"evidence, not a contradiction of statement {sid}"), ev
    # fixes in W exist; nothing fine-grained supports
    coarse_hits = [h for h in stop_hits if h["role"] == "coarse"]
    if near.any() or coarse_hits:
        order = np.argsort(d[near], kind="stable")[:_MAX_EVIDENCE_FIXES]
        ev.extend(coarse_hits)
        ev.extend(_fix_ev(tr, idx[near][order], d[near][order], lim[near][order], "near", lo, hi))
        if n_fine:
            why = (f"only {n_fine} fix(es) of {subject} within the limit {span} "
                   f"(at least {min_fixes} or a stop are needed)")
        else:
            why = (f"{subject}'s evidence near the place {span} is coarse (uncertainty above "
                   f"{coarse_m:.0f} m): it shows the area, not the place")
        return "inconclusive", f"statement {sid}: {why}", ev
    # all fixes in W are far: could the subject have reached P unobserved?
    lo_j = max(i0 - 1, 0)
    hi_j = min(i1, len(tr.t) - 1)
    a_i = np.arange(lo_j, hi_j)
    a_lat, a_lon, b_lat, b_lon = tr.lat[a_i], tr.lon[a_i], tr.lat[a_i + 1], tr.lon[a_i + 1]
    need = (haversine_m(a_lat, a_lon, plat, plon) + haversine_m(plat, plon, b_lat, b_lon)
            - 2 * r_p - tr.acc[a_i] - tr.acc[a_i + 1])
    dt_s = (tr.t[a_i + 1] - tr.t[a_i]) / 1e9
    feasible = need <= max_speed_mps * np.maximum(dt_s, 1e-9)
    open_start = i0 == 0 and lo < tr.t[0]
    open_end = i1 == len(tr.t) and hi > tr.t[-1]
    order = np.argsort(d, kind="stable")[:_MAX_EVIDENCE_FIXES]
    ev.extend(_fix_ev(tr, idx[order], d[order], lim[order], "far", lo, hi))
    ev.extend(_gap_ev(gaps, subject, lo, hi, plat, plon))
    nearest = float(d.min())
    if feasible.any() or open_start or open_end:
        if feasible.any():
            k = int(np.flatnonzero(feasible)[np.argmax(dt_s[feasible])])
            ta, tb = int(tr.t[a_i[k]]), int(tr.t[a_i[k] + 1])
            hole = (f"between {_iso(pd.Timestamp(ta, tz='UTC'))} and {_iso(pd.Timestamp(tb, tz='UTC'))} "
                    f"({_dur(pd.Timedelta(tb - ta))} without fixes) {subject} could have "
                    f"reached the place at up to {max_speed_mps:g} m/s")
        else:
            hole = (f"part of the window lies {'before the first' if open_start else 'after the last'} "
                    f"fix of {subject}")
        return "inconclusive", (f"statement {sid}: none of {len(idx)} fixes of {subject} {span} "
                                f"is near the place (closest {nearest:.0f} m), but {hole}"), ev
    if not timed:
        return "inconclusive", (f"statement {sid} gives no time and {subject} is never near the "
                                f"place in its record (closest {nearest:.0f} m)"), ev
    return "contradicted", (f"all {len(idx)} fixes of {subject} {span} are far from the place of "
                            f"statement {sid} (closest {nearest:.0f} m, beyond both "
                            f"uncertainties), and between fixes it could not have reached the "
                            f"place at {max_speed_mps:g} m/s"), ev


def _closest_visit(p: Mapping[str, Any], subject: str, tr: _Track | None,
                   stops: pd.DataFrame | None, lo: int, hi: int, *, slack_m: float,
                   default_r: float) -> dict[str, Any] | None:
    """The subject's visit to the place closest in time to the window (outside it)."""
    vis = _visits(p, subject, tr, stops, slack_m=slack_m, default_r=default_r)
    best: tuple[int, tuple[int, int, str]] | None = None
    for v in vis:
        gap = lo - v[1] if v[1] < lo else v[0] - hi if v[0] > hi else 0
        if gap > 0 and (best is None or gap < best[0]):
            best = (gap, v)
    if best is None:
        return None
    gap, (a, b, vid) = best
    return {"evidence_kind": "stop" if stops is not None and len(stops) else "visit",
            "evidence_id": vid, "role": "outside_window", "t_start": pd.Timestamp(a, tz="UTC"),
            "t_end": pd.Timestamp(b, tz="UTC"), "lat": np.nan, "lon": np.nan,
            "distance_m": np.nan, "limit_m": np.nan, "time_diff": pd.Timedelta(gap),
            "accuracy_m": np.nan, "source_id": None}


# ----------------------------------------------------------------------------- sequence

def _visits(p: Mapping[str, Any], subject: str, tr: _Track | None, stops: pd.DataFrame | None,
            *, slack_m: float, default_r: float) -> list[tuple[int, int, str]]:
    r_p = float(p["radius_m"]) if pd.notna(p["radius_m"]) else default_r
    plat, plon = float(p["lat"]), float(p["lon"])
    if stops is not None and len(stops):
        st = stops[stops["subject_id"].astype(str) == subject]
        if not len(st):
            return []
        d = haversine_m(st["lat"].to_numpy(float), st["lon"].to_numpy(float), plat, plon)
        ok = d <= r_p + st["radius_m"].to_numpy(float) + slack_m
        st = st[ok]
        return sorted(zip(st["t_arrival"].astype("int64").tolist(),
                          st["t_departure"].astype("int64").tolist(),
                          st["stop_id"].astype(str).tolist(), strict=False))
    if tr is None:
        return []
    # bounding-box prefilter (cheap comparisons), then great-circle distance on the few left
    reach = (r_p + float(tr.acc.max()) + slack_m) * 1.01
    dlat = reach / 111_000.0
    dlon = dlat / max(np.cos(np.radians(min(abs(plat) + dlat, 89.9))), 1e-6)
    cand = np.flatnonzero(np.abs(tr.lat - plat) <= dlat)
    cand = cand[np.abs((tr.lon[cand] - plon + 180.0) % 360.0 - 180.0) <= dlon]
    near = cand[haversine_m(tr.lat[cand], tr.lon[cand], plat, plon) <= r_p + tr.acc[cand] + slack_m]
    # without stops: maximal runs of consecutive near fixes lasting at least VISIT_MIN_DWELL
    # (driving past a place is not a visit)
    if not len(near):
        return []
    cut = np.flatnonzero(np.diff(near) != 1)
    starts, ends = near[np.r_[0, cut + 1]], near[np.r_[cut, len(near) - 1]]
    keep = (tr.t[ends] - tr.t[starts]) >= VISIT_MIN_DWELL.value
    return [(int(tr.t[a]), int(tr.t[b]), f"{tr.fix_id(a)}..{tr.fix_id(b)}")
            for a, b in zip(starts[keep], ends[keep], strict=False)]


def _sequence(pl: pd.DataFrame, tracks: Mapping[str, _Track], stops: pd.DataFrame | None, *,
              slack_m: float, default_r: float, forced: list[str] | None) -> pd.DataFrame:
    cols = ["person_id", "subject_id", "check", "position", "statement_id", "status",
            "visit_id", "visit_start", "visit_end", "consistent", "reason"]
    rows: list[dict[str, Any]] = []
    if not len(pl):
        return _seq_frame(rows, cols)
    by_sid = {r["statement_id"]: r for r in pl.to_dict("records")}
    for person, g in pl.groupby(pl["person_id"].astype(str), sort=True):
        ordered = g[g["order"].notna()].sort_values("order", kind="mergesort")
        subs = forced or sorted({s for lst in g["subjects"] for s in lst}) or sorted(tracks)
        statements = g.to_dict("records")
        for s in subs:
            if len(ordered) >= 2:
                rows.extend(_greedy(person, s, ordered, tracks.get(s), stops, slack_m, default_r))
            for r in statements:
                for kind, others in (("before", r["before"]), ("after", r["after"])):
                    for o in others:
                        if o not in by_sid:
                            continue
                        first, second = (r, by_sid[o]) if kind == "before" else (by_sid[o], r)
                        rows.append(_pair(person, s, first, second, tracks.get(s), stops,
                                          slack_m, default_r))
    return _seq_frame(rows, cols)


def _seq_frame(rows: list[dict[str, Any]], cols: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=cols)
    for c in ("visit_start", "visit_end"):
        df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[ns, UTC]")
    for c in ("person_id", "subject_id", "check", "statement_id", "status", "visit_id", "reason"):
        df[c] = df[c].astype("string")
    df["position"] = df["position"].astype("Int64")
    df["consistent"] = df["consistent"].astype("boolean")
    return df


def _greedy(person: str, subject: str, ordered: pd.DataFrame, tr: _Track | None,
            stops: pd.DataFrame | None, slack_m: float, default_r: float) -> list[dict[str, Any]]:
    cur = _LO
    prev_sid: str | None = None
    out: list[dict[str, Any]] = []
    for r in ordered.to_dict("records"):
        vis = _visits(r, subject, tr, stops, slack_m=slack_m, default_r=default_r)
        row: dict[str, Any] = {"person_id": person, "subject_id": subject, "check": "order",
                               "position": int(r["order"]), "statement_id": r["statement_id"]}
        if not vis:
            row.update(status="not visited", reason=f"{subject} never comes near the place of "
                       f"{r['statement_id']}; it does not count for or against the order")
        else:
            pick = next((v for v in vis if v[0] >= cur), None)
            if pick is None:
                row.update(status="out of order", visit_id=vis[-1][2],
                           visit_start=pd.Timestamp(vis[-1][0], tz="UTC"),
                           visit_end=pd.Timestamp(vis[-1][1], tz="UTC"),
                           reason=f"every visit of {subject} to the place of {r['statement_id']} "
                                  f"(last {_iso(pd.Timestamp(vis[-1][0], tz='UTC'))}) comes before "
                                  f"the visit matched to {prev_sid}, which the account puts first")
            else:
                cur = pick[0]
                prev_sid = str(r["statement_id"])
                row.update(status="in order", visit_id=pick[2],
                           visit_start=pd.Timestamp(pick[0], tz="UTC"),
                           visit_end=pd.Timestamp(pick[1], tz="UTC"),
                           reason=f"visit {pick[2]} at {_iso(pd.Timestamp(pick[0], tz='UTC'))} "
                                  "keeps the stated order")
        out.append(row)
    ok = not any(x["status"] == "out of order" for x in out)
    placed = sum(1 for x in out if x["status"] != "not visited")
    for x in out:
        x["consistent"] = ok if placed >= 2 or not ok else pd.NA
    return out


def _pair(person: str, subject: str, first: Mapping[str, Any], second: Mapping[str, Any],
          tr: _Track | None, stops: pd.DataFrame | None, slack_m: float,
          default_r: float) -> dict[str, Any]:
    va = _visits(first, subject, tr, stops, slack_m=slack_m, default_r=default_r)
    vb = _visits(second, subject, tr, stops, slack_m=slack_m, default_r=default_r)
    row: dict[str, Any] = {"person_id": person, "subject_id": subject, "check": "constraint",
                           "statement_id": f"{first['statement_id']}<{second['statement_id']}"}
    if not va or not vb:
        row.update(status="not visited", consistent=pd.NA,
                   reason=f"{subject} has no visit to "
                          f"{first['statement_id'] if not va else second['statement_id']}")
    elif va[0][0] <= vb[-1][0]:
        row.update(status="in order", consistent=True, visit_id=f"{va[0][2]}<{vb[-1][2]}",
                   reason=f"{first['statement_id']} visited {_iso(pd.Timestamp(va[0][0], tz='UTC'))}, "
                          f"{second['statement_id']} visited {_iso(pd.Timestamp(vb[-1][0], tz='UTC'))}")
    else:
        row.update(status="out of order", consistent=False,
                   reason=f"the first visit to {first['statement_id']} "
                          f"({_iso(pd.Timestamp(va[0][0], tz='UTC'))}) is after the last visit to "
                          f"{second['statement_id']} ({_iso(pd.Timestamp(vb[-1][0], tz='UTC'))})")
    return row


# ----------------------------------------------------------------------------- map layer

def statement_layer(places: pd.DataFrame, result: CorroborationResult | None = None) -> pd.DataFrame:
    """The indicated places as a map layer: one row per statement, verdicts summarised.

    Columns: ``statement_id, person_id, role, place_id, lat, lon, radius_m, t_start, t_end,
    t_precision, time_text, name, text`` (``name``/``text``/``time_text`` are hostile
    text: a renderer escapes them), and with a ``result``: ``verdicts`` (``"phone-A:
    supported; lorry-1: supported"``) and ``worst`` (contradicted > inconclusive > not
    observed > supported, for the marker colour). Plain data for ``maps/``; no rendering.

    Parameters
    ----------
    places : pandas.DataFrame
        A ``places`` table; its ``indicated`` and ``shared`` rows are the statements.
    result : CorroborationResult, optional
        The verdicts from :func:`corroborate_statements`; default None: no ``verdicts``/``worst`` columns.

    Returns
    -------
    pandas.DataFrame
        One row per statement, sorted by ``statement_id``, with the columns listed above.

    Example
    -------
    >>> from routetrace import schema
    >>> from routetrace.testing import make_fixes
    >>> t0 = pd.Timestamp("2025-10-26T21:00Z")
    >>> places = schema.from_records([{
    ...     "place_id": "p1", "record": "0", "kind": "indicated", "lat": 51.0, "lon": 3.87,
    ...     "radius_m": 50.0, "t_start": t0, "t_end": t0 + pd.Timedelta("1h"),
    ...     "t_precision": "window", "source_id": "statement", "flags": "",
    ...     "extra": '{"statement_id": "S1"}'}], "places")
    >>> f = make_fixes(subject_id="lorry", t_utc=pd.date_range(t0, periods=12, freq="5min"),
    ...                lat=51.0, lon=3.87, h_acc_m=5.0)
    >>> layer = statement_layer(places, corroborate_statements(places, f))
    >>> layer[["statement_id", "verdicts", "worst"]].values.tolist()
    [['S1', 'lorry: supported', 'supported']]
    """
    pl = _prepare(places, ("indicated", "shared"))
    ex = [_extra(x) for x in pl["extra"]]
    out = pd.DataFrame({
        "statement_id": pl["statement_id"].astype("string"),
        "person_id": pl["person_id"].astype("string"), "role": pl["role"].astype("string"),
        "place_id": pl["place_id"].astype("string"), "kind": pl["kind"].astype("string"),
        "lat": pl["lat"], "lon": pl["lon"], "radius_m": pl["radius_m"],
        "t_start": pl["t_start"], "t_end": pl["t_end"], "t_precision": pl["t_precision"],
        "time_text": pd.Series([e.get("time_text") for e in ex], dtype="string"),
        "name": pl["name"], "text": pl["text"]})
    if result is not None:
        rank = {"contradicted": 0, "inconclusive": 1, "not observed": 2, "supported": 3}
        v = result.verdicts.sort_values(["statement_id", "subject_id"], kind="mergesort")
        summary = v.groupby("statement_id", sort=True).apply(
            lambda g: "; ".join(f"{a}: {b}" for a, b in zip(g["subject_id"], g["verdict"],
                                                             strict=True)), include_groups=False)
        worst = v.assign(r=v["verdict"].map(rank)).groupby("statement_id")["r"].min().map(
            {r: k for k, r in rank.items()})
        out["verdicts"] = out["statement_id"].map(summary).astype("string")
        out["worst"] = out["statement_id"].map(worst).astype("string")
    return out.sort_values(["statement_id"], kind="mergesort").reset_index(drop=True)


# deprecated aliases (old stage names), kept for one release


def corroborate(*args: Any, **kwargs: Any) -> Any:
    """Deprecated: the old name of :func:`corroborate_statements` (removed in the next release)."""
    warnings.warn("routetrace: corroborate() is renamed corroborate_statements(); the old name goes in "
                  "the next release", DeprecationWarning, stacklevel=2)
    return corroborate_statements(*args, **kwargs)
