"""Cleaning fixes: flag, never delete.

Each rule adds a flag from :data:`routetrace.schema.FLAGS` with the reason; no row is
removed, so the exhibit can still show every fix and the defence can see what was set
aside and why.

* ``zero_position``: latitude and longitude both exactly 0 (a placeholder).
* ``low_accuracy``: stated accuracy worse than ``low_accuracy_m`` (default 1,000 m: a cell
  tower; evidence of an area, not a position).
* ``duplicate_time``: another fix of the same subject has the same time.
* ``impossible_speed``: the fix is a spike. Going from the previous fix of the subject to
  it, and from it to the next fix, would each need a speed above ``max_speed_mps``
  (default 70 m/s, 252 km/h) even after subtracting both fixes' stated accuracies from the
  distance, while the previous and next fixes are consistent with each other. The first
  (last) fix of a subject is a spike when it cannot be left for (reached from) its
  neighbour while that neighbour is consistent with the fix beyond. A lasting jump (the
  subject is elsewhere from then on) is not a spike: no fix of it is flagged. Fixes
  flagged ``zero_position`` or ``low_accuracy`` take no part in this test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from .geo import haversine_m
from .order import sort_fixes

__all__ = ["clean_fixes"]


def clean_fixes(fixes: pd.DataFrame, *, max_speed_mps: float = 70.0,
                low_accuracy_m: float = 1000.0) -> pd.DataFrame:
    """Return a copy of ``fixes`` with data-quality flags added (see module rules).

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table; it is not modified.
    max_speed_mps : float, default 70.0
        Implied speed (m/s) between consecutive fixes above which a fix is flagged as a jump;
        70 m/s (252 km/h) is beyond any road vehicle in a case.
    low_accuracy_m : float, default 1000.0
        Fixes with ``h_acc_m`` worse than this (metres) are flagged low-accuracy (cell-tower
        positions).

    Returns
    -------
    pandas.DataFrame
        A copy of ``fixes`` with the quality flags added to ``flags`` and the parameters in
    ``attrs["params"]``; no row is removed.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(t_utc=["2025-10-24T20:00Z", "2025-10-24T20:01Z"], lat=[51.0, 0.0],
    ...                lon=[3.87, 0.0], h_acc_m=10.0)
    >>> clean_fixes(f)["flags"].tolist()
    ['', 'zero_position']
    """
    schema.validate(fixes, "fixes")
    f = fixes.copy()
    lat, lon = f["lat"].to_numpy(float), f["lon"].to_numpy(float)
    acc = f["h_acc_m"].to_numpy(float)
    flags = f["flags"]
    zero = (lat == 0) & (lon == 0)
    flags = schema.add_flag(flags, zero, "zero_position")
    flags = schema.add_flag(flags, acc > low_accuracy_m, "low_accuracy")
    tied = f.duplicated(["subject_id", "t_utc"], keep=False).to_numpy()
    flags = schema.add_flag(flags, tied, "duplicate_time")
    s = sort_fixes(f)  # equal times ordered by fix id
    ok = ~((s["lat"] == 0) & (s["lon"] == 0)).to_numpy() & ~(s["h_acc_m"].to_numpy(float) > low_accuracy_m)
    s = s[ok]
    subj = s["subject_id"].astype(str).to_numpy()
    t = s["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    la, lo = s["lat"].to_numpy(float), s["lon"].to_numpy(float)
    a = np.nan_to_num(s["h_acc_m"].to_numpy(float))
    n = len(s)
    if n > 1:
        def fast(k: int) -> np.ndarray:
            """Pairs (i, i + k) of one subject that need more than max_speed_mps."""
            same = subj[k:] == subj[:-k]
            d = haversine_m(la[:-k], lo[:-k], la[k:], lo[k:]) - a[k:] - a[:-k]
            dt = (t[k:] - t[:-k]) / 1e9
            with np.errstate(divide="ignore", invalid="ignore"):
                out = same & (d > 0) & (dt > 0) & (d / np.where(dt > 0, dt, 1) > max_speed_mps)
            return np.asarray(out)

        f1 = fast(1)  # f1[i]: i -> i + 1
        f2 = fast(2) if n > 2 else np.zeros(0, dtype=bool)  # f2[i]: i -> i + 2
        same1 = subj[1:] == subj[:-1]
        has_prev = np.r_[False, same1]
        has_next = np.r_[same1, False]
        fin = np.r_[False, f1]  # from the previous fix
        fout = np.r_[f1, False]  # to the next fix
        across = np.r_[False, f2, False] if n > 2 else np.zeros(n, dtype=bool)  # previous -> next
        spike = has_prev & has_next & fin & fout & ~across
        # ends: the neighbour agrees with the fix beyond it
        ok1 = same1 & ~f1  # i -> i + 1: same subject, possible
        nxt_ok = np.r_[ok1[1:], False, False]  # i + 1 -> i + 2 consistent
        prv_ok = np.r_[False, False, ok1[:-1]]  # i - 2 -> i - 1 consistent
        spike |= ~has_prev & fout & nxt_ok
        spike |= ~has_next & fin & prv_ok
        mask = f.index.isin(s.index[spike])
        flags = schema.add_flag(flags, mask, "impossible_speed")
    f["flags"] = flags
    f.attrs["params"] = {"max_speed_mps": max_speed_mps, "low_accuracy_m": low_accuracy_m}
    return f
