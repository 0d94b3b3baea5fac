"""Stops, dwell times and unobserved intervals.

Definitions (the rules a court can read)
----------------------------------------
**Position fixes.** Only fixes whose stated accuracy is ``max_h_acc_m`` or better (default
500 m) place a subject, and a cell fix that states no accuracy does not; coarser fixes (cell
towers: evidence of an area, not of a position) and 0,0 placeholders neither make nor break
a stop. They still count as observations.

**Stop.** A stop is a maximal run of a subject's position fixes, in time order, that all lie
within ``radius_m`` of the run's centre — widened by each fix's own stated accuracy, so a
50 m Wi-Fi fix may lie up to ``radius_m + 50`` m away — and that spans at least
``min_dwell``. Up to ``max_outliers`` consecutive fixes outside that limit, followed by a
return inside it, are treated as position noise and do not end the stop (they are linked
to it with role ``outlier``). A stop's first fixes are not part of it while the step from each to the next member, or
the speed the fix itself reports, is faster than ``edge_speed_mps`` (the subject was still
arriving), nor its last fixes while the step to each from the previous member, or their own
speed, is (it was already leaving); a stop whose fixes at rest then span less than
``min_dwell`` is no stop. The centre is the
component-wise median of the stop's fixes;
``radius_m`` in the stops table is the largest distance of a stop fix from it.

**Arrival and departure** (``t_arrival``, ``t_departure``) are the times of the first and
last fix of the stop. When the subject is a vehicle with ignition events, an ignition-off
event inside or just before the stop brings the arrival forward to it, and an ignition-on
event at or after the last fix moves the departure to it (flag ``bounded_by_ignition``).
A stop's first fix may have been taken while the subject was still driving in (inside the
radius but not yet stopped) and its last one while it was already driving off, so these two
times are not bounds of the true arrival and departure. The bounds are four other columns;
each is the time of a fix or event that shows where the subject was:

* ``t_arrival_after``: the subject's last position fix before the stop that places it
  *elsewhere*: farther from the stop's centre than ``radius_m`` plus *f* times the fix's
  stated accuracy (a fix within that distance may have been taken at the place and does not
  bound; the search steps back over it). The subject had not arrived yet at that time.
  *f* is three (``ELSEWHERE_ACCURACY_FACTOR``) unless the subject's own fixes at rest show
  that its device understates its error (see *The device's accuracy at rest* below).
* ``t_arrival_before``: the first fix of the stop that shows the subject *there and at
  rest*: the step from the subject's previous position fix to it is not faster than
  ``edge_speed_mps`` (5 m/s: walking pace), nor is the speed the fix reports itself; or,
  if earlier, an ignition-off recorded at or after ``t_arrival_after`` (a vehicle whose
  ignition is off has stopped). The subject had arrived by that time.
* ``t_departure_after``: symmetrically, the last fix of the stop there and at rest (the step
  from it to the next position fix and its own speed at most ``edge_speed_mps``) or, if
  later, the last ignition-on up to ``t_departure_before`` (a vehicle cannot drive off before
  its ignition is on). The subject had not left yet.
* ``t_departure_before``: the subject's first position fix after the stop that places it
  elsewhere (as for ``t_arrival_after``). It had left by then.

So the true arrival lies in [``t_arrival_after``, ``t_arrival_before``] and the true
departure in [``t_departure_after``, ``t_departure_before``]; the outer bound is NA where
the record begins or ends with the stop, and the chronology shows these bounds. A stop
without a fix at rest falls back to its last (first) fix for ``t_arrival_before``
(``t_departure_after``). Coarse fixes do not bound: they do not place the subject.
What the bounds rest on: the stated accuracy as calibrated below (a fix farther off than *f*
times its accuracy defeats the outer bound) and ``edge_speed_mps`` (a fix taken while the
subject crawled towards its bay at under 5 m/s counts as at rest: the inner bound can precede
the final halt by the time of that crawl). docs/validation.md measures how often they hold on
simulated ground truth.

**The device's accuracy at rest** (:func:`elsewhere_factor`). A device that understates its
error (a phone stating 5 m whose fixes at rest scatter 60 m) would place the subject
"elsewhere" with fixes taken at the place. The check uses only the evidence: the subject's
stop members, fixes taken while it stayed at one place, show how far its fixes scatter. For
each member, its distance from its stop's centre divided by its stated accuracy; the median
of these over all the subject's stops is its observed error at rest in stated accuracies.
Were the stated accuracy a true 68 % radius of a circular Gaussian error (Android's
definition), that median would be 0.78 (``RATIO_MEDIAN_STATED``); the device's optimism is
``k = median / 0.78``, and *f* is ``3 k`` where ``k > 1``, else 3. An honest device keeps
3; one that understates its error by a factor k must be k times farther off to count as
elsewhere. Limits: one factor per subject (all its sources and fix kinds together; a
subject carried by two devices gets the pooled median); the median is taken over members,
which lie within ``radius_m`` plus their accuracy of the centre, so a device scattering
beyond that is underestimated; the centre is itself estimated from the members; and the
calibration holds only as far as the error while moving resembles that at rest. It widens
the windows of such a device (by the time the subject takes to travel the extra distance,
seconds while driving) and never narrows any window below the factor-3 rule.

**Unobserved time.** A silence longer than ``max_gap`` between consecutive fixes (of any
accuracy) is an *unobserved interval* (table ``gaps``). A stop whose fixes before and after a
silence are at the same place spans it: the stop says so (flag ``spans_gap``), its ``dwell``
excludes the silence and ``observed_fraction`` gives the share of the stop's span that was
observed. A silence during which the vehicle's ignition was off (ignition-off before it,
ignition-on after it) is not unobserved: the vehicle was parked, and trackers report
hourly when parked.

Defaults: ``radius_m`` 100 m (a motorway car park or a building with its car park),
``min_dwell`` 5 min (shorter halts are traffic), ``max_gap`` 30 min (phones and trackers
record at least that often while they move), ``edge_speed_mps`` 5 m/s (18 km/h: faster than
walking, slower than a vehicle entering a car park; the apparent speed of a stationary
device's position noise between fixes a minute or more apart stays below it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..errors import ParameterError
from .arrays import expand_ranges
from .geo import EARTH_R_M, haversine_m

__all__ = ["StopParams", "detect_gaps", "detect_stops", "elsewhere_factor", "parked_intervals"]

#: A fix shows the subject *elsewhere* only beyond ``radius_m`` + this many times its stated
#: accuracy (times the device's optimism at rest, :func:`elsewhere_factor`, where above 1). Android states a 68 % radius (the 99 % radius of a circular Gaussian is 2.0
#: times it) and stated accuracies are often optimistic (docs/validation.md section 5: up to
#: 9 % of a sample tracker's fixes lie outside twice their circle), hence 3.
ELSEWHERE_ACCURACY_FACTOR = 3.0

#: The median distance of a fix from the true position, in units of its stated accuracy, when
#: that accuracy is a true 68 % radius of a circular Gaussian error: sqrt(2 ln 2) /
#: sqrt(-2 ln 0.32) = 1.1774 / 1.5096.
RATIO_MEDIAN_STATED = 0.78


@dataclass(frozen=True)
class StopParams:
    """The parameters of a stop detection, as recorded in ``stops.attrs["params"]``."""

    radius_m: float
    min_dwell: pd.Timedelta
    max_gap: pd.Timedelta
    max_h_acc_m: float
    max_outliers: int
    edge_speed_mps: float = 5.0

    def as_dict(self) -> dict[str, object]:
        """JSON-able form (durations as strings)."""
        return {"radius_m": self.radius_m, "min_dwell": str(self.min_dwell),
                "max_gap": str(self.max_gap), "max_h_acc_m": self.max_h_acc_m,
                "max_outliers": self.max_outliers, "edge_speed_mps": self.edge_speed_mps}


def _check(p: StopParams) -> None:
    if not p.radius_m > 0:
        raise ParameterError(f"radius_m must be > 0, got {p.radius_m}")
    if p.min_dwell < pd.Timedelta(0):
        raise ParameterError(f"min_dwell must be >= 0, got {p.min_dwell}")
    if not p.max_gap > pd.Timedelta(0):
        raise ParameterError(f"max_gap must be > 0, got {p.max_gap}")
    if p.max_outliers < 0:
        raise ParameterError(f"max_outliers must be >= 0, got {p.max_outliers}")
    if not p.edge_speed_mps > 0:
        raise ParameterError(f"edge_speed_mps must be > 0, got {p.edge_speed_mps}")


def parked_intervals(events: pd.DataFrame | None) -> pd.DataFrame:
    """Ignition-off → next ignition-on intervals per subject: ``subject_id, t_off, t_on``.

    ``t_on`` is the subject's first ignition-on at or after the ignition-off, whichever
    source recorded it; several ignition-offs before one ignition-on (the same event read from
    two sources, a tracker and its portal) are one interval from the earliest. An
    ignition-off with no later ignition-on (end of record) gives an open interval (``t_on``
    NaT); an ignition-on without a preceding off is ignored.

    Parameters
    ----------
    events : pandas.DataFrame or None
        An ``events`` table (``subject_id, kind, t_utc``); None or empty gives no intervals.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject_id, t_off, t_on`` (UTC), one row per parked interval.

    Example
    -------
    >>> ev = pd.DataFrame({"subject_id": ["l"] * 3, "kind": ["ignition_off", "ignition_off", "ignition_on"],
    ...                    "t_utc": pd.to_datetime(["2025-10-26T20:43:27.000Z", "2025-10-26T20:43:27.985Z",
    ...                                             "2025-10-26T21:49:00.000Z"])})
    >>> parked_intervals(ev)[["t_off", "t_on"]].astype(str).values.tolist()
    [['2025-10-26 20:43:27+00:00', '2025-10-26 21:49:00+00:00']]
    """
    cols = {"subject_id": pd.Series(dtype="string"), "t_off": pd.Series(dtype="datetime64[ns, UTC]"),
            "t_on": pd.Series(dtype="datetime64[ns, UTC]")}
    if events is None or events.empty:
        return pd.DataFrame(cols)
    ev = events[events["kind"].isin(["ignition_off", "ignition_on"])]
    ev = ev.sort_values(["subject_id", "t_utc", "kind"], kind="mergesort")
    if ev.empty:
        return pd.DataFrame(cols)
    parts = []
    for subj, g in ev.groupby("subject_id", sort=True):
        t = g["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
        on = g["kind"].to_numpy() == "ignition_on"
        ons, offs = t[on], t[~on]
        k = np.searchsorted(ons, offs, side="left")
        t_on = np.where(k < len(ons), ons[np.minimum(k, max(len(ons) - 1, 0))] if len(ons) else 0,
                        np.iinfo(np.int64).min)
        first = np.r_[True, t_on[1:] != t_on[:-1]]  # offs sharing one ignition-on: the earliest
        parts.append(pd.DataFrame({"subject_id": pd.array([str(subj)] * int(first.sum()), dtype="string"),
                                   "t_off": pd.to_datetime(offs[first], unit="ns", utc=True),
                                   "t_on": pd.to_datetime(t_on[first], unit="ns", utc=True)}))
    if not parts:
        return pd.DataFrame(cols)
    return pd.concat(parts, ignore_index=True)


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


_INDEX = np.int32  # row positions (int64 above 2**31 rows)


def _factorize_sorted(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes (int32; -1 for NA) of a string column and its distinct values in lexical order.

    Arrow-backed strings are dictionary-encoded by pyarrow (no Python strings per row).
    """
    if isinstance(col.dtype, pd.CategoricalDtype) and col.cat.categories.is_monotonic_increasing:
        # dictionary-encoded (schema.DICTIONARY): the codes already are lexical ranks;
        # categories no row uses are left out
        raw = col.cat.codes.to_numpy()
        used = np.bincount(raw[raw >= 0], minlength=len(col.cat.categories)) > 0
        rank = np.full(len(used) + 1, -1, dtype=np.int32)
        rank[:-1][used] = np.arange(int(used.sum()), dtype=np.int32)
        return rank[raw], [str(c) for c in col.cat.categories[used]]
    ch = col.array.__arrow_array__() if hasattr(col.array, "__arrow_array__") else None
    if ch is None or not (pa.types.is_string(ch.type) or pa.types.is_large_string(ch.type)) or len(ch) == 0:
        codes, uniq = pd.factorize(col, sort=True)
        return codes.astype(np.int32), [str(u) for u in uniq]
    enc = pc.dictionary_encode(ch)
    names = [str(x) for x in enc.chunk(0).dictionary.to_pylist()]
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names) + 1, dtype=np.int32)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(names), dtype=np.int32)
    rank[-1] = -1  # NA (index -1) stays -1
    idx = np.concatenate([c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in enc.chunks])
    return rank[idx], [names[i] for i in order]


def _subject_time_order(codes: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The stable order by subject code, then time: ``np.lexsort((t, codes))``.

    When code and time offset fit one 63-bit key (any subjects and ~290 years of
    nanoseconds), it is a stable sort of that key: the same order, several times faster
    than ``lexsort``'s two passes on the nearly sorted tables loaders give.

    >>> codes, t = np.array([1, 0, 1, 0]), np.array([5, 7, 2, 7])
    >>> _subject_time_order(codes, t).tolist() == np.lexsort((t, codes)).tolist() == [1, 3, 2, 0]
    True
    """
    if len(t) == 0 or int(codes.min()) < 0:
        return np.lexsort((t, codes))
    t0 = int(t.min())
    t_bits = (int(t.max()) - t0).bit_length()
    if t_bits + int(codes.max()).bit_length() > 63:
        return np.lexsort((t, codes))
    key = (codes.astype(np.int64) << t_bits) | (t - t0)
    return np.argsort(key, kind="stable")


class _Sorted:
    """A fixes table's columns as numpy arrays, sorted by subject, time and (on ties) fix id.

    ``idx`` maps sorted positions to input rows; ``code`` is the subject's index in
    ``names`` (lexical order); ``b0``/``b1`` give each subject's block of positions.
    """

    def __init__(self, fixes: pd.DataFrame) -> None:
        codes, names = _factorize_sorted(fixes["subject_id"])
        t = fixes["t_utc"].to_numpy(dtype="datetime64[ns]").view("int64")
        n = len(t)
        idx: np.ndarray | None = None
        if n > 1:
            same = codes[1:] == codes[:-1]
            in_order = bool(np.all((codes[1:] > codes[:-1]) | (same & (t[1:] >= t[:-1]))))
            tied = np.flatnonzero(same & (t[1:] == t[:-1])) if in_order else np.zeros(0, dtype=np.int64)
            del same
            if len(tied):  # equal times: in order only when their fix ids ascend
                rows = np.union1d(tied, tied + 1)  # the ids of those rows only (derived)
                fid = schema.fix_ids(fixes.iloc[rows]).astype(str).to_numpy()
                in_order = bool(np.all(fid[np.searchsorted(rows, tied)] < fid[np.searchsorted(rows, tied + 1)]))
                del rows, fid
            if not in_order:
                idx = _subject_time_order(codes, t)
                cs, ts = codes[idx], t[idx]
                if bool(np.any((cs[1:] == cs[:-1]) & (ts[1:] == ts[:-1]))):
                    fid, _ = pd.factorize(schema.fix_ids(fixes).astype(str), sort=True)
                    idx = np.lexsort((fid, t, codes))
                    del fid
                    cs, ts = codes[idx], t[idx]
                idx = idx.astype(_INDEX)
                codes, t = cs, ts  # the sorted copies (made once)
                del cs, ts
        self.n = n
        self._idx = idx
        self.names = [str(s) for s in names]
        self.code = codes
        self.t = t
        self.lat, self.lon = self.column(fixes, "lat"), self.column(fixes, "lon")
        bounds = np.searchsorted(self.code, np.arange(len(self.names) + 1), side="left")
        self.b0, self.b1 = bounds[:-1], bounds[1:]

    def column(self, fixes: pd.DataFrame, name: str) -> np.ndarray:
        """A numeric column of ``fixes`` as float64 in sorted order (NA as NaN)."""
        c = fixes[name]
        # a float64 column as it is (NaN already NaN: no copy); others converted
        a = c.to_numpy() if c.dtype == np.float64 else c.to_numpy(dtype="float64", na_value=np.nan)
        if a.ndim == 1 and len(a) > 1 and a.strides[0] == 0:
            return a  # one value broadcast (an absent measurement's shared NaN): any order is itself
        return self.take(a)

    @property
    def idx(self) -> np.ndarray:
        """Input row of each sorted position."""
        return np.arange(self.n, dtype=_INDEX) if self._idx is None else self._idx

    def take(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per input row) in sorted order."""
        return values if self._idx is None else values[self._idx]

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Input rows of sorted ``positions``."""
        return positions if self._idx is None else self._idx[positions]

    def to_input(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per sorted position) back in input row order."""
        if self._idx is None:
            return values
        out = np.empty_like(values)
        out[self._idx] = values
        return out


def _gap_hits(s: _Sorted, max_gap: pd.Timedelta, parked_by: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Sorted positions whose fix follows a silence longer than ``max_gap`` (parked time excluded)."""
    if s.n < 2:
        return np.zeros(0, dtype=np.int64)
    gap_ns = pd.Timedelta(max_gap).value
    parts = []
    step = 1 << 18  # bounded temporaries
    for a in range(0, s.n - 1, step):
        b = min(s.n - 1, a + step)
        cb, tb = s.code[a:b + 1], s.t[a:b + 1]
        parts.append(np.flatnonzero((cb[1:] == cb[:-1]) & (tb[1:] - tb[:-1] > gap_ns)) + (a + 1))
    hit = np.concatenate(parts)
    if len(hit) and parked_by:
        keep = np.ones(len(hit), dtype=bool)
        hc = s.code[hit]
        for c, name in enumerate(s.names):
            arrays = parked_by.get(name)
            if arrays is None:
                continue
            sel = np.flatnonzero(hc == c)
            if len(sel):
                keep[sel] = ~_covered(arrays, s.t[hit[sel] - 1], s.t[hit[sel]])
        hit = hit[keep]
    return hit


def _gaps_table(s: _Sorted, hit: np.ndarray, max_gap: pd.Timedelta) -> pd.DataFrame:
    before = hit - 1
    subj = np.asarray(s.names, dtype=object)[s.code[hit]] if len(hit) else np.zeros(0, dtype=object)
    g = pd.DataFrame({
        "subject_id": subj,
        "t_start": pd.to_datetime(s.t[before], unit="ns", utc=True),
        "t_end": pd.to_datetime(s.t[hit], unit="ns", utc=True),
        "lat_start": s.lat[before], "lon_start": s.lon[before], "lat_end": s.lat[hit], "lon_end": s.lon[hit],
        "distance_m": haversine_m(s.lat[before], s.lon[before], s.lat[hit], s.lon[hit]),
    })
    g["duration"] = g["t_end"] - g["t_start"]
    g["gap_id"] = [f"{sj}:G{i + 1:04d}" for sj, i in zip(g["subject_id"], g.groupby("subject_id").cumcount(), strict=True)]
    g["flags"] = ""
    out = schema.coerce(g, "gaps")
    out.attrs["params"] = {"max_gap": str(pd.Timedelta(max_gap))}
    return out


def detect_gaps(fixes: pd.DataFrame, *, max_gap: pd.Timedelta = pd.Timedelta("30min"),
                events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Unobserved intervals: consecutive fixes of a subject more than ``max_gap`` apart.

    Silences covered by one ignition-off → ignition-on interval are not gaps (the vehicle
    was parked with its engine off). Returns a ``gaps`` table.

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table (every accuracy counts as an observation).
    max_gap : pandas.Timedelta, default 30 min
        Longest silence that is not a gap (phones and trackers record at least that often
        while they move).
    events : pandas.DataFrame, optional
        An ``events`` table whose ignition events excuse parked silences (see
        :func:`parked_intervals`); default None: no events.

    Returns
    -------
    pandas.DataFrame
        A ``gaps`` table, one row per unobserved interval.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id="lorry", t_utc=["2025-10-26T21:00Z", "2025-10-26T23:00Z"],
    ...                lat=51.0, lon=3.87, h_acc_m=5.0)
    >>> detect_gaps(f)[["subject_id", "t_start", "t_end"]].astype(str).values.tolist()
    [['lorry', '2025-10-26 21:00:00+00:00', '2025-10-26 23:00:00+00:00']]
    """
    schema.validate(fixes, "fixes")
    s = _Sorted(fixes)
    return _gaps_table(s, _gap_hits(s, max_gap, _parked_arrays(parked_intervals(events))), max_gap)


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


#: relative margin of :func:`_linked`'s fast test: pairs closer to the limit than this are
#: decided by :func:`haversine_m` itself (the two ways of computing differ by ~1e-11)
_LINK_MARGIN = 1e-8


def _linked(lat: np.ndarray, lon: np.ndarray, phi: np.ndarray, lam: np.ndarray, cos_phi: np.ndarray,
            k: int, w: int, limit_m: np.ndarray) -> np.ndarray:
    """Whether fix ``i`` and fix ``i + k`` (``i < w``) are within ``limit_m[i]`` metres
    (great circle): ``haversine_m(...) <= limit_m``, decided as that test decides it.

    The haversine term ``h = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2)`` is compared with
    ``sin²(limit / 2R)`` (the same test, without ``arcsin`` and ``sqrt``, from radians and
    cosines computed once per fix); the few pairs within a relative ``_LINK_MARGIN`` of the
    limit are decided by :func:`haversine_m`, so no pair is decided otherwise than before.
    """
    h = np.sin((phi[k:k + w] - phi[:w]) * 0.5) ** 2 + cos_phi[:w] * cos_phi[k:k + w] * \
        np.sin((lam[k:k + w] - lam[:w]) * 0.5) ** 2
    h_lim = np.sin(np.minimum(limit_m / (2 * EARTH_R_M), np.pi / 2)) ** 2
    ok = h <= h_lim
    near = np.flatnonzero(np.abs(h - h_lim) <= _LINK_MARGIN * h_lim)
    if len(near):
        ok[near] = haversine_m(lat[near], lon[near], lat[near + k], lon[near + k]) <= limit_m[near]
    return ok


def _windows(s: _Sorted, pi: np.ndarray, lim: np.ndarray, p: StopParams) -> tuple[np.ndarray, np.ndarray]:
    """Candidate windows (start, end) over the position fixes ``pi`` (in sorted order).

    Two position fixes of a subject are linked when at most ``max_outliers`` position fixes
    lie between them and they are within ``2 * radius_m`` plus both accuracies of each
    other. Consecutive members of a stop are always linked (each lies within ``radius_m``
    plus its accuracy of the stop's centre, up to the centre's drift while the stop grows),
    so the scan only needs to look inside windows: maximal chains of links that span at
    least ``min_dwell``.
    """
    m = len(pi)
    if m == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    reach = np.arange(m, dtype=_INDEX)
    look = p.max_outliers + 1
    chunk = 1 << 13  # bounded temporaries (64 KiB each: reused from the heap, in cache)
    for a in range(0, m, chunk):
        seg = pi[a:min(m, a + chunk + look)]
        code, lat, lon, lm = s.code[seg], s.lat[seg], s.lon[seg], lim[a:a + len(seg)]
        phi, lam = np.radians(lat), np.radians(lon)
        cos_phi = np.cos(phi)
        for k in range(1, look + 1):
            w = min(chunk, len(seg) - k)
            if w <= 0:
                break
            ok = _linked(lat, lon, phi, lam, cos_phi, k, w, 2 * p.radius_m + lm[:w] + lm[k:k + w])
            ok &= code[:w] == code[k:k + w]
            r = reach[a:a + w]
            r[ok] = np.flatnonzero(ok) + (a + k)
    reach = np.maximum.accumulate(reach, out=reach)
    ends = (np.flatnonzero(reach == np.arange(m, dtype=_INDEX)) + 1).astype(_INDEX)
    del reach
    starts = np.r_[_INDEX(0), ends[:-1]]
    if p.min_dwell.value > 0:  # a single fix spans no time
        several = ends - starts > 1
        starts, ends = starts[several], ends[several]
    long = s.t[pi[ends - 1]] - s.t[pi[starts]] >= p.min_dwell.value
    return starts[long], ends[long]


def _find_stops(s: _Sorted, pi: np.ndarray, lim: np.ndarray, p: StopParams
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stops over the position fixes: (member positions, their stop, outlier positions, their stop).

    Positions are sorted positions; stops are numbered in time order per subject.
    """
    ws, we = _windows(s, pi, lim, p)
    empty = np.zeros(0, dtype=np.int64)
    if not len(ws):
        return empty, empty, empty, empty
    # a window whose fixes all lie within the limit of their mean is one stop as it stands
    w_pos, w_of = expand_ranges(ws, we)
    gp = pi[w_pos]
    ref_lat, ref_lon = s.lat[pi[ws]], s.lon[pi[ws]]
    # per-window projection: shift to the window's first fix and scale by its latitude
    x = np.radians(s.lon[gp] - ref_lon[w_of]) * EARTH_R_M * np.cos(np.radians(ref_lat[w_of]))
    y = np.radians(s.lat[gp] - ref_lat[w_of]) * EARTH_R_M
    cnt = (we - ws).astype(float)
    mx = np.bincount(w_of, weights=x, minlength=len(ws)) / cnt
    my = np.bincount(w_of, weights=y, minlength=len(ws)) / cnt
    inside = np.hypot(x - mx[w_of], y - my[w_of]) <= p.radius_m + lim[w_pos]
    bad = np.bincount(w_of, weights=~inside, minlength=len(ws)) > 0
    whole = ~bad
    mem_parts = [w_pos[whole[w_of]]]
    lab_parts = [ws[w_of[whole[w_of]]]]  # provisional label: position of the stop's first member
    out_parts: list[np.ndarray] = []
    olab_parts: list[np.ndarray] = []
    woff = np.cumsum(we - ws) - (we - ws)  # offset of each window in w_pos
    for k in np.flatnonzero(bad).tolist():
        a, b, o = int(ws[k]), int(we[k]), int(woff[k])
        sl = slice(o, o + b - a)
        for members, outs in _scan(x[sl], y[sl], lim[a:b], s.t[pi[a:b]], p.radius_m, p.min_dwell.value,
                                   p.max_outliers):
            first = a + members[0]
            mem_parts.append(a + np.asarray(members))
            lab_parts.append(np.full(len(members), first))
            if outs:
                out_parts.append(a + np.asarray(outs))
                olab_parts.append(np.full(len(outs), first))
    mem, lab = np.concatenate(mem_parts), np.concatenate(lab_parts)
    omem = np.concatenate(out_parts) if out_parts else empty
    olab = np.concatenate(olab_parts) if olab_parts else empty
    keys, lab = np.unique(lab, return_inverse=True)
    olab = np.searchsorted(keys, olab)
    order = np.lexsort((mem, lab))
    return pi[mem[order]], lab[order], pi[omem], olab


#: two position fixes of one instant at most this far apart (metres) are one position
#: recorded twice (two sources rounding it differently), not a movement, when the stop
#: time bounds judge whether a fix was taken at rest
SAME_INSTANT_M = 10.0


def _edge_speed(s: _Sorted, a: np.ndarray, b: np.ndarray, *, same_instant_m: float = 0.0) -> np.ndarray:
    """Speed (m/s) of the step between sorted positions ``a`` and ``b`` (inf: no time
    between them and more than ``same_instant_m`` metres apart)."""
    d = haversine_m(s.lat[a], s.lon[a], s.lat[b], s.lon[b])
    dt = np.abs(s.t[b] - s.t[a]) / 1e9
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dt > 0, d / np.where(dt > 0, dt, 1.0), np.where(d > same_instant_m, np.inf, 0.0))


def _trim_moving_edges(s: _Sorted, mem: np.ndarray, lab: np.ndarray, omem: np.ndarray, olab: np.ndarray,
                       speed: np.ndarray, p: StopParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drop a stop's first (last) fixes while the step to the next (from the previous) fix of
    the stop, or the fix's own reported speed (``speed``, m/s per sorted position, NaN when
    not reported), is faster than ``edge_speed_mps``: the subject was still arriving
    (already leaving). Outliers count as fixes of the stop for the steps; one left at an
    edge becomes a member: it is then the stop's first (last) fix.

    A stop keeps at least two members (if trimming would leave fewer, that stop is left as
    found). A stop whose fixes at rest span less than ``min_dwell`` once its moving edges
    are dropped is no stop: its fixes are dropped too, so a longer ``min_dwell`` never puts
    more time or fixes in stops than a shorter one.
    """
    if not len(mem):
        return mem, lab, omem, olab
    allp = np.r_[mem, omem]
    alab = np.r_[lab, olab]
    is_mem = np.r_[np.ones(len(mem), dtype=bool), np.zeros(len(omem), dtype=bool)]
    order = np.lexsort((allp, alab))
    allp, alab, is_mem = allp[order], alab[order], is_mem[order]
    # only edges go, so each stop keeps a contiguous range [h, t] of its fixes
    starts = np.flatnonzero(np.r_[True, alab[1:] != alab[:-1]])
    h, t = starts.copy(), np.r_[starts[1:], len(allp)] - 1
    todo = np.arange(len(starts))
    while len(todo):  # each round drops at most one fix at each end of each stop still moving
        todo = todo[t[todo] - h[todo] >= 2]  # three or more fixes: one may go
        a, b = h[todo], t[todo]
        drop_h = ((_edge_speed(s, allp[a], allp[a + 1]) > p.edge_speed_mps)
                  | (speed[allp[a]] > p.edge_speed_mps))
        drop_t = ((_edge_speed(s, allp[b - 1], allp[b]) > p.edge_speed_mps)
                  | (speed[allp[b]] > p.edge_speed_mps)) & ~(drop_h & (b - a == 2))
        h[todo] += drop_h
        t[todo] -= drop_t
        todo = todo[drop_h | drop_t]
    grp = np.cumsum(np.r_[True, alab[1:] != alab[:-1]]) - 1
    pos_in = np.arange(len(allp))
    keep = (pos_in >= h[grp]) & (pos_in <= t[grp])
    if keep.all():
        return mem, lab, omem, olab
    # an outlier left at an edge is the stop's first (last) fix: it becomes a member (outliers
    # lie between members in time, the subject came back: position noise at the place)
    ns = int(alab.max()) + 1
    km = keep & is_mem
    lo_m = np.full(ns, np.iinfo(np.int64).max)
    hi_m = np.full(ns, -1)
    np.minimum.at(lo_m, alab[km], allp[km])
    np.maximum.at(hi_m, alab[km], allp[km])
    is_mem = is_mem | (keep & ((allp < lo_m[alab]) | (allp > hi_m[alab])))
    # a stop left with fewer than two members is left as found; one whose span at rest is
    # under min_dwell is dropped
    km = keep & is_mem
    first = np.full(ns, np.iinfo(np.int64).max)
    last = np.full(ns, np.iinfo(np.int64).min)
    np.minimum.at(first, alab[km], s.t[allp[km]])
    np.maximum.at(last, alab[km], s.t[allp[km]])
    n_mem = np.bincount(alab[km], minlength=ns)
    bad = n_mem < 2
    short = ~bad & (last - first < p.min_dwell.value)  # at rest for less than min_dwell: no stop
    keep |= bad[alab]
    keep &= ~short[alab]
    is_mem = np.where(bad[alab], np.r_[np.ones(len(mem), dtype=bool), np.zeros(len(omem), dtype=bool)][order],
                      is_mem)
    km = keep & is_mem
    ko = keep & ~is_mem
    if short.any():  # number the stops left 0, 1, ... again (in time order, as before)
        alab = np.cumsum(~short)[alab] - 1
    return allp[km], alab[km], allp[ko], alab[ko]


def _block_search(s: _Sorted, qcode: np.ndarray, qt: np.ndarray, side: str) -> np.ndarray:
    """Sorted positions of times ``qt`` within the blocks of subjects ``qcode`` (searchsorted)."""
    out = np.empty(len(qt), dtype=np.int64)
    for c in np.unique(qcode).tolist():
        sel = qcode == c
        a, b = int(s.b0[c]), int(s.b1[c])
        out[sel] = a + np.searchsorted(s.t[a:b], qt[sel], side=side)  # type: ignore[call-overload]
    return out


def detect_stops(
    fixes: pd.DataFrame,
    *,
    radius_m: float = 100.0,
    min_dwell: pd.Timedelta = pd.Timedelta("5min"),
    max_gap: pd.Timedelta = pd.Timedelta("30min"),
    max_h_acc_m: float = 500.0,
    max_outliers: int = 2,
    edge_speed_mps: float = 5.0,
    events: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Find stops (see the module's rules); return ``(fixes with stop_id, stops)``.

    The returned fixes are the input rows (same order) with ``stop_id`` (NA outside stops)
    and ``stop_role`` (``member``, ``outlier``, ``coarse`` — a fix too inaccurate to place
    the subject but recorded during the stop — or NA). The unobserved intervals are
    ``stops.attrs["gaps"]`` (a ``gaps`` table, also from :func:`detect_gaps`) and the
    parameters ``stops.attrs["params"]``.

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table; it is not modified.
    radius_m : float, default 100.0
        Stop radius in metres (a motorway car park or a building with its car park).
    min_dwell : pandas.Timedelta, default 5 min
        Shortest stop (shorter halts are traffic).
    max_gap : pandas.Timedelta, default 30 min
        Longest silence that is observed time (see *Unobserved time*).
    max_h_acc_m : float, default 500.0
        Fixes with a worse accuracy (metres: cell towers) neither make nor break a stop.
    max_outliers : int, default 2
        Consecutive fixes outside the radius that are treated as position noise when the
        subject returns inside.
    edge_speed_mps : float, default 5.0
        Speed (m/s, 18 km/h) above which first and last fixes are arriving or leaving, not
        stopped.
    events : pandas.DataFrame, optional
        An ``events`` table whose ignition events bound arrivals and departures and excuse
        parked silences; default None: no events.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(fixes with stop_id and stop_role, stops)`` as described above.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id="lorry", t_utc=pd.date_range("2025-10-26T21:00Z", periods=12,
    ...                freq="1min"), lat=51.0, lon=3.87, h_acc_m=5.0)
    >>> linked, stops = detect_stops(f, radius_m=100, min_dwell=pd.Timedelta("5min"))
    >>> stops[["subject_id", "n_fixes", "dwell"]].values.tolist()
    [['lorry', 12, Timedelta('0 days 00:11:00')]]
    """
    p = StopParams(float(radius_m), pd.Timedelta(min_dwell), pd.Timedelta(max_gap), float(max_h_acc_m),
                   int(max_outliers), float(edge_speed_mps))
    _check(p)
    schema.validate(fixes, "fixes")
    s = _Sorted(fixes)
    flags = fixes["flags"]
    zero = (s.lat == 0) & (s.lon == 0)
    maybe = flags.str.contains("zero_position", regex=False).to_numpy(dtype=bool, na_value=False)
    if maybe.any():
        zero |= s.take(schema.has_flag(flags, "zero_position").to_numpy(dtype=bool))
    acc = s.column(fixes, "h_acc_m")
    positional = ~(acc > p.max_h_acc_m) & ~zero & np.isfinite(s.lat) & np.isfinite(s.lon)
    cell = (fixes["fix_kind"] == "cell").to_numpy(dtype=bool, na_value=False)
    if cell.any():  # a cell fix of unknown accuracy places the subject no better than any cell fix
        positional &= ~(s.take(cell) & np.isnan(acc))
    pi = np.flatnonzero(positional).astype(_INDEX)
    lim = np.nan_to_num(acc[pi], nan=0.0, copy=False)  # position fixes: accuracy <= max_h_acc_m or unknown
    del acc
    parked_by = _parked_arrays(parked_intervals(events))
    mem, lab, omem, olab = _trim_moving_edges(s, *_find_stops(s, pi, lim, p), s.column(fixes, "speed_mps"), p)
    hit = _gap_hits(s, p.max_gap, parked_by)
    stop_of = np.full(s.n, -1, dtype=_INDEX)
    role = np.zeros(s.n, dtype=np.int8)  # 0 none, 1 member, 2 outlier, 3 coarse
    stop_of[mem], role[mem] = lab, 1
    stop_of[omem], role[omem] = olab, 2
    del mem, lab, omem, olab, pi, lim
    stops = _stop_table(fixes, s, positional, stop_of, role, hit, parked_by, p)
    gaps = _gaps_table(s, hit, p.max_gap)
    s.lat = s.lon = s.t = np.zeros(0)  # the sorted copies are done with: free them first
    del positional, hit
    linked = fixes.copy(deep=False)
    codes = s.to_input(stop_of)
    ids = pa.array(stops["stop_id"].astype(str).tolist(), type=pa.string())
    linked["stop_id"] = pd.arrays.ArrowStringArray(ids.take(pa.array(codes, mask=codes < 0)))
    del codes
    names = pa.array([None, "member", "outlier", "coarse"], type=pa.string())
    linked["stop_role"] = pd.arrays.ArrowStringArray(names.take(pa.array(s.to_input(role))))
    stops.attrs["params"] = p.as_dict()
    stops.attrs["gaps"] = gaps
    return linked, stops


def _stop_table(fixes: pd.DataFrame, s: _Sorted, positional: np.ndarray, stop_of: np.ndarray, role: np.ndarray,
                hit: np.ndarray, parked_by: dict[str, tuple[np.ndarray, np.ndarray]], p: StopParams) -> pd.DataFrame:
    """The stops table (and coarse links in ``stop_of``/``role``), vectorised over stops."""
    mem = np.flatnonzero(role == 1).astype(_INDEX)
    if not len(mem):
        return schema.empty("stops")
    lab = stop_of[mem]  # stops are disjoint and numbered in time order: sorted with mem
    ns = int(lab[-1]) + 1
    bnd = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    first, last = mem[bnd], mem[np.r_[bnd[1:], len(mem)] - 1]
    code = s.code[first]
    ta, td = s.t[first].copy(), s.t[last].copy()
    grp = pd.DataFrame({"lab": lab, "lat": s.lat[mem], "lon": s.lon[mem]}).groupby("lab", sort=True)
    clat, clon = grp["lat"].median().to_numpy(), grp["lon"].median().to_numpy()
    dist = haversine_m(s.lat[mem], s.lon[mem], clat[lab], clon[lab])
    rad = np.maximum.reduceat(dist, bnd)
    n_fixes = np.diff(np.r_[bnd, len(mem)])
    bounded = np.zeros(ns, dtype=bool)
    edge_unobs = np.zeros(ns, dtype=np.int64)
    # ignition bounds: an ignition-off between the previous fix and the first one brings the
    # arrival forward to it; an ignition-on between the last fix and the next one moves the
    # departure to it
    lo_all = np.iinfo(np.int64).min
    hi_all = np.iinfo(np.int64).max
    prev_t = np.where(first > s.b0[code], s.t[np.maximum(first - 1, 0)], lo_all)
    next_t = np.where(last + 1 < s.b1[code], s.t[np.minimum(last + 1, s.n - 1)], hi_all)
    for c, name in enumerate(s.names):
        arrays = parked_by.get(name)
        sel = np.flatnonzero(code == c)
        if arrays is None or not len(sel):
            continue
        offs, ons = arrays
        j = np.searchsorted(offs, prev_t[sel], side="left")
        okj = j < len(offs)
        cand = np.where(okj, offs[np.minimum(j, len(offs) - 1)], hi_all)
        arr = okj & (cand < ta[sel])
        ta[sel[arr]] = cand[arr]
        h = np.searchsorted(offs, td[sel], side="right") - 1
        okh = h >= 0
        on = np.where(okh, ons[np.maximum(h, 0)], lo_all)
        dep = okh & (on != hi_all) & (on > td[sel]) & (on <= next_t[sel])
        td[sel[dep]] = on[dep]
        bounded[sel] = arr | dep
    # all fixes of the subject inside [arrival, departure] are observations during the stop
    lo = _block_search(s, code, ta, "left")
    hi = _block_search(s, code, td, "right")
    cand = np.flatnonzero(~positional & (stop_of < 0))  # coarse fixes: only these can join
    kk = np.searchsorted(lo, cand, side="right") - 1
    earlier = (kk >= 1) & (cand < hi[np.maximum(kk - 1, 0)])  # touching stops: the earlier wins
    kk = np.where(earlier, kk - 1, kk)
    inside = (kk >= 0) & (cand < hi[np.maximum(kk, 0)])
    stop_of[cand[inside]] = kk[inside]
    role[cand[inside]] = 3
    # unobserved time: silences longer than max_gap between observations of the stop
    # (ignition-off parked time excepted), including those before the first and after the
    # last fix when ignition events moved arrival or departure
    steps = np.r_[0, np.cumsum(s.t[hit] - s.t[hit - 1])] if len(hit) else np.zeros(1, dtype=np.int64)
    unobs = steps[np.searchsorted(hit, hi, side="left")] - steps[np.searchsorted(hit, lo + 1, side="left")]
    for c, name in enumerate(s.names):
        sel = np.flatnonzero((code == c) & bounded)
        if not len(sel):
            continue
        arrays = parked_by.get(name)
        for a, b in ((ta[sel], s.t[lo[sel]]), (s.t[hi[sel] - 1], td[sel])):
            long = (b - a) > p.max_gap.value
            long &= ~_covered(arrays, a, b)
            edge_unobs[sel] += np.where(long, b - a, 0)
    unobs = unobs + edge_unobs
    span = td - ta
    acc = s.column(fixes, "h_acc_m")
    with np.errstate(divide="ignore", invalid="ignore"):  # a stated accuracy of 0: inf/NaN, ignored
        ratio = dist / acc[mem]
    factor = elsewhere_factor(s.code[mem], ratio, n_subjects=len(s.names))[code]
    del dist, ratio
    after, before = _outer_fixes(s, positional, code, lo, hi, (clat, clon), (acc, factor), p.radius_m)
    arrived_by, left_from = _rest_bounds(s, positional, mem, bnd, s.column(fixes, "speed_mps"), p.edge_speed_mps)
    arrived_by, left_from = _ignition_bounds(s, code, parked_by, (after, arrived_by), (left_from, before))
    # codes of the whole column (Arrow dictionary encoding: no per-row strings), then the
    # members' rows: taking the members' strings first copied the column (about 70 MiB at 1e6)
    src_all, src_names = _factorize_sorted(fixes["source_id"])
    src_codes = src_all[s.rows(mem)].astype(np.int64)
    del src_all
    sk = np.unique(lab.astype(np.int64) * (len(src_names) + 1) + src_codes)
    sk_stop, sk_src = sk // (len(src_names) + 1), sk % (len(src_names) + 1)
    srcs = ["" for _ in range(ns)]
    src_list = [str(x) for x in src_names]
    for st, sc in zip(sk_stop.tolist(), sk_src.tolist(), strict=True):
        srcs[st] = src_list[sc] if not srcs[st] else srcs[st] + "|" + src_list[sc]
    seq = np.arange(ns) - np.searchsorted(code, code, side="left") + 1
    names = np.asarray(s.names, dtype=object)[code]
    fl = np.where(bounded, "bounded_by_ignition", "")
    fl = np.where(unobs > 0, np.char.add(np.where(bounded, "bounded_by_ignition|", ""), "spans_gap"), fl)
    df = pd.DataFrame({
        "subject_id": names,
        "stop_id": [f"{nm}:S{q:04d}" for nm, q in zip(names.tolist(), seq.tolist(), strict=True)],
        "t_arrival": pd.to_datetime(ta, unit="ns", utc=True),
        "t_departure": pd.to_datetime(td, unit="ns", utc=True),
        "dwell": pd.to_timedelta(span - unobs, unit="ns"),
        "lat": clat, "lon": clon, "radius_m": rad, "n_fixes": n_fixes, "sources": srcs,
        "observed_fraction": np.where(span > 0, 1.0 - unobs / np.maximum(span, 1), 1.0),
        "flags": fl,
        "t_arrival_after": pd.to_datetime(after, unit="ns", utc=True),
        "t_departure_before": pd.to_datetime(before, unit="ns", utc=True),
        "t_arrival_before": pd.to_datetime(arrived_by, unit="ns", utc=True),
        "t_departure_after": pd.to_datetime(left_from, unit="ns", utc=True),
    })
    return schema.coerce(df, "stops")


def _walk_out(s: _Sorted, pos: np.ndarray, k: np.ndarray, ok: np.ndarray, step: int, centre: tuple[np.ndarray, np.ndarray],
              reach: np.ndarray, acc_factor: tuple[np.ndarray, np.ndarray], code: np.ndarray) -> np.ndarray:
    """From index ``k`` into ``pos`` (position fixes), step by ``step`` past the fixes that lie
    at the stop (within ``reach`` + the stop's elsewhere factor times their accuracy of its
    centre); the time of the first one that does not (ns), NaT where the subject's record
    ends first. ``acc_factor`` is (accuracy of each sorted position, factor of each stop)."""
    acc, factor = acc_factor
    nat = np.iinfo(np.int64).min
    out = np.full(len(k), nat, dtype=np.int64)
    k, ok = k.copy(), ok.copy()
    lo_b, hi_b = s.b0[code], s.b1[code]
    todo = np.flatnonzero(ok)
    while len(todo):
        p = pos[k[todo]]
        d = haversine_m(s.lat[p], s.lon[p], centre[0][todo], centre[1][todo])
        away = d > reach[todo] + factor[todo] * np.nan_to_num(acc[p], nan=0.0)
        out[todo[away]] = s.t[p[away]]
        nxt = todo[~away]
        k[nxt] += step
        inside = (k[nxt] >= 0) & (k[nxt] < len(pos))
        nxt = nxt[inside]
        q = pos[k[nxt]]
        todo = nxt[(q >= lo_b[nxt]) & (q < hi_b[nxt])]
    return out


def _outer_fixes(s: _Sorted, positional: np.ndarray, code: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 centre: tuple[np.ndarray, np.ndarray], acc: tuple[np.ndarray, np.ndarray],
                 radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Times (ns; NaT where none) of each stop's last position fix elsewhere before it and
    first after it.

    ``lo``/``hi`` are the sorted positions of the stop's first observation and one past its
    last (ignition bounds included); only fixes of the same subject count, and a position fix
    that may lie at the stop (within ``radius_m`` plus the stop's elsewhere factor times its
    accuracy of the centre; :func:`elsewhere_factor`) does not bound it: the walk goes on past
    it. ``acc`` is (the accuracy of each sorted position, the factor of each stop).
    """
    pos = np.flatnonzero(positional)
    reach = np.full(len(lo), float(radius_m))
    if not len(pos):
        nat = np.full(len(lo), np.iinfo(np.int64).min, dtype=np.int64)
        return nat, nat.copy()
    j = np.searchsorted(pos, lo, side="left") - 1
    ok = (j >= 0) & (pos[np.maximum(j, 0)] >= s.b0[code])
    after = _walk_out(s, pos, np.maximum(j, 0), ok, -1, centre, reach, acc, code)
    k = np.searchsorted(pos, hi, side="left")
    ok = (k < len(pos)) & (pos[np.minimum(k, len(pos) - 1)] < s.b1[code])
    before = _walk_out(s, pos, np.minimum(k, len(pos) - 1), ok, 1, centre, reach, acc, code)
    return after, before


def elsewhere_factor(code: np.ndarray, ratio: np.ndarray, *, n_subjects: int) -> np.ndarray:
    """Per subject: how many times its stated accuracy a fix must lie beyond ``radius_m`` of a
    stop's centre to place the subject elsewhere (the device-level calibration at rest).

    ``ratio`` is, for each stop member (``code``: its subject), its distance from its stop's
    centre divided by its stated accuracy. Their median, over all the subject's stops, is the
    device's observed error at rest in units of its stated accuracy; were the stated accuracy
    a true 68 % radius (Android's definition) of a circular Gaussian error, it would be
    ``RATIO_MEDIAN_STATED`` (0.78). The factor is ``ELSEWHERE_ACCURACY_FACTOR`` (3) times the
    optimism ``k = median / 0.78`` where ``k > 1``, else 3. A subject without a member of
    known accuracy gets 3. The module doc (*The device's accuracy at rest*) gives the limits.

    Parameters
    ----------
    code : numpy.ndarray
        Subject index (0 .. ``n_subjects`` - 1) of each stop member.
    ratio : numpy.ndarray
        Each member's distance from its stop's centre over its stated accuracy (NaN: unknown
        accuracy, ignored).
    n_subjects : int
        Number of subjects.

    Returns
    -------
    numpy.ndarray
        The factor of each subject (float, at least ``ELSEWHERE_ACCURACY_FACTOR``).

    Example
    -------
    >>> elsewhere_factor(np.array([0, 0, 0, 1]), np.array([0.5, 2.34, 4.0, 0.2]), n_subjects=3).round(1).tolist()
    [9.0, 3.0, 3.0]
    """
    ok = np.isfinite(ratio) & (code >= 0)
    out = np.full(n_subjects, ELSEWHERE_ACCURACY_FACTOR)
    if not ok.any():
        return out
    c, r = code[ok].astype(np.int64), ratio[ok]
    order = np.lexsort((r, c))
    c, r = c[order], r[order]
    start = np.searchsorted(c, np.arange(n_subjects), side="left")
    n = np.searchsorted(c, np.arange(n_subjects), side="right") - start
    has = n > 0
    lo_i = start + (n - 1) // 2
    hi_i = start + n // 2
    med = np.where(has, (r[np.minimum(lo_i, len(r) - 1)] + r[np.minimum(hi_i, len(r) - 1)]) / 2, 0.0)
    return ELSEWHERE_ACCURACY_FACTOR * np.maximum(1.0, med / RATIO_MEDIAN_STATED)


def _rest_bounds(s: _Sorted, positional: np.ndarray, mem: np.ndarray, bnd: np.ndarray, speed: np.ndarray,
                 edge_speed_mps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per stop (members ``mem`` in stop order, each stop starting at ``bnd``): the time (ns)
    of its first member *at rest on arrival* and of its last member *at rest on departure*.

    A member is at rest on arrival when the step from the subject's previous position fix to
    it, and the speed it reports itself, are both at most ``edge_speed_mps`` (or it is the
    subject's first position fix); at rest on departure when the step from it to the next
    position fix, and its own speed, are. A stop without such a member falls back to its last
    (first) member: the subject was at the place then. A step between two fixes at one
    instant counts as fast, unless they lie within ``SAME_INSTANT_M`` of each other (one
    position recorded by two sources).
    """
    pos = np.flatnonzero(positional)
    k = np.searchsorted(pos, mem)  # every member is a position fix: pos[k] == mem
    code = s.code[mem]
    prv = pos[np.maximum(k - 1, 0)]
    nxt = pos[np.minimum(k + 1, len(pos) - 1)]
    has_prv = (k > 0) & (s.code[prv] == code)
    has_nxt = (k + 1 < len(pos)) & (s.code[nxt] == code)
    slow_self = ~(speed[mem] > edge_speed_mps)
    rest_in = slow_self & (~has_prv | ~(_edge_speed(s, prv, mem, same_instant_m=SAME_INSTANT_M)
                                        > edge_speed_mps))
    rest_out = slow_self & (~has_nxt | ~(_edge_speed(s, mem, nxt, same_instant_m=SAME_INSTANT_M)
                                         > edge_speed_mps))
    t = s.t[mem]
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    arrived = np.minimum.reduceat(np.where(rest_in, t, big), bnd)
    left = np.maximum.reduceat(np.where(rest_out, t, small), bnd)
    last = t[np.r_[bnd[1:], len(mem)] - 1]
    first = t[bnd]
    return np.where(arrived == big, last, arrived), np.where(left == small, first, left)


def _ignition_bounds(s: _Sorted, code: np.ndarray, parked_by: dict[str, tuple[np.ndarray, np.ndarray]],
                     arrival: tuple[np.ndarray, np.ndarray], departure: tuple[np.ndarray, np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Tighten the at-rest bounds with ignition events: the earliest ignition-off in
    [``t_arrival_after``, arrived-by] is the arrived-by time (a vehicle with its ignition off
    has stopped), the latest ignition-on in [left-from, ``t_departure_before``] the left-from
    time (it cannot leave before its ignition is on). An open outer bound (NaT) does not
    limit the search. ``arrival`` is (after, arrived-by), ``departure`` (left-from, before)."""
    nat = np.iinfo(np.int64).min
    after, arrived = arrival
    left, before = departure
    arrived, left = arrived.copy(), left.copy()
    for c, name in enumerate(s.names):
        arrays = parked_by.get(name)
        sel = np.flatnonzero(code == c)
        if arrays is None or not len(sel):
            continue
        offs, ons = arrays  # sorted; an open interval's ignition-on is int64 max
        j = np.searchsorted(offs, np.where(after[sel] == nat, nat, after[sel]), side="left")
        cand = offs[np.minimum(j, len(offs) - 1)]
        use = (j < len(offs)) & (cand < arrived[sel])
        arrived[sel[use]] = cand[use]
        ons_f = ons[ons != np.iinfo(np.int64).max]
        if not len(ons_f):
            continue
        hi = np.where(before[sel] == nat, np.iinfo(np.int64).max, before[sel])
        h = np.searchsorted(ons_f, hi, side="right") - 1
        cand = ons_f[np.maximum(h, 0)]
        use = (h >= 0) & (cand > left[sel])
        left[sel[use]] = cand[use]
    return arrived, left
