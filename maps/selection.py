"""Which rows of a case an exhibit shows: some subjects, a period (``routetrace exhibit
--subject S --from T --to T``).

An exhibit of one subject or one period is the same exhibit drawn from fewer rows, never
from changed ones:

* **Subjects.** Rows of a subject are kept for the subjects named only. A row without a
  subject of its own goes with its source's subject when that source's fixes and events are
  all of one subject (the places an iPhone learned, the waypoints of a lorry's GPX, ingested
  without ``--subject`` or a mapping). Rows of case material (an investigator's pins, places
  indicated in a statement: files of places only) belong to the case and are kept.
* **Period**, ``t_from <= t < t_to`` (UTC; either end open). A fix or an event is kept when
  its time is inside. A stop, trip, unobserved interval or dated place is kept when it
  overlaps the period, and kept whole: a stop that began before ``t_from`` keeps its arrival
  and its dwell, which are what the evidence says, not what the window cut. A place without
  a time (a safehouse named in a statement) is kept.
* **Sources.** The sources listed (with their SHA-256) are those a kept row cites.

The selection is stated on the exhibit (footer and ``manifest.json``) by
:func:`selection_params`.

Example
-------
>>> import pandas as pd
>>> from routetrace.testing import make_fixes
>>> f = make_fixes(subject_id=["a", "a", "b"], lat=51.0, lon=3.7,
...                t_utc=["2025-10-24T08:00Z", "2025-10-25T08:00Z", "2025-10-24T09:00Z"])
>>> out = select_rows({"fixes": f}, subjects=["a"], t_from="2025-10-25T00:00+02:00", t_to=None)
>>> out["fixes"]["t_utc"].tolist()
[Timestamp('2025-10-25 08:00:00+0000', tz='UTC')]
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ParameterError

__all__ = ["SPANS", "describe_selection", "select_rows", "selection_params", "utc_bound"]

#: each table's time: one column (a point in time) or two (an interval), by table name
SPANS: dict[str, tuple[str, ...]] = {
    "fixes": ("t_utc",),
    "events": ("t_utc", "t_end"),
    "stops": ("t_arrival", "t_departure"),
    "trips": ("t_start", "t_end"),
    "gaps": ("t_start", "t_end"),
    "places": ("t_start", "t_end"),
}


def utc_bound(t: Any, *, name: str) -> pd.Timestamp | None:
    """A period's end as a UTC timestamp; a time without a zone is refused.

    Parameters
    ----------
    t : str, datetime, pandas.Timestamp or None
        The time, with its zone or UTC offset (``2025-10-25T00:00+02:00``, ``...Z``).
    name : str
        What the time is (``--from``), for the error.

    Returns
    -------
    pandas.Timestamp or None
        The time in UTC; None for None (an open end).

    Raises
    ------
    ParameterError
        A time without a zone, or text that is not a time.

    Example
    -------
    >>> utc_bound("2025-10-25T00:00+02:00", name="--from")
    Timestamp('2025-10-24 22:00:00+0000', tz='UTC')
    >>> utc_bound("2025-10-25 00:00", name="--from")
    Traceback (most recent call last):
    ...
    routetrace.errors.ParameterError: --from '2025-10-25 00:00' has no time zone: give its UTC offset, e.g. 2025-10-25T00:00:00+02:00, or UTC, e.g. 2025-10-25T00:00:00Z
    """
    if t is None:
        return None
    try:
        ts = pd.Timestamp(t)
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"{name} {t!r} is not a time: give e.g. 2025-10-25T00:00:00+02:00") from exc
    if ts is pd.NaT:
        raise ParameterError(f"{name} {t!r} is not a time: give e.g. 2025-10-25T00:00:00+02:00")
    if ts.tzinfo is None:
        raise ParameterError(f"{name} {t!r} has no time zone: give its UTC offset, e.g. "
                             f"{ts.isoformat()}+02:00, or UTC, e.g. {ts.isoformat()}Z")
    return ts.tz_convert("UTC")


def _times(df: pd.DataFrame, col: str) -> np.ndarray:
    """``col`` as int64 nanoseconds since 1970 UTC (NaT as the int64 minimum)."""
    return pd.DatetimeIndex(df[col]).as_unit("ns").asi8


def _owners(tables: Mapping[str, pd.DataFrame | None]) -> pd.Series:
    """The subject of each source whose fixes and events all have one subject, by
    ``source_id``: a row of that source without a subject of its own (a place it holds) is
    that subject's evidence. A source of places only (case material) or of several subjects
    has none."""
    cols = ["source_id", "subject_id"]
    parts = [df[cols] for name in ("fixes", "events")
             if (df := tables.get(name)) is not None and set(cols) <= set(df.columns)]
    if not parts:
        return pd.Series(dtype="string")
    both = pd.concat([p.astype({"source_id": "string", "subject_id": "string"}) for p in parts],
                     ignore_index=True).dropna()
    per = both.groupby("source_id", observed=True, sort=False)["subject_id"].agg(["nunique", "first"])
    one = per[per["nunique"] == 1]
    return pd.Series(one["first"].to_numpy(), index=one.index.astype(str), dtype="string")


def _subjects_of(df: pd.DataFrame, owners: pd.Series | None) -> pd.Series:
    """Each row's subject: its own, else (when it has none) its source's (:func:`_owners`)."""
    sid = df["subject_id"].astype("string")
    if owners is None or not len(owners) or "source_id" not in df.columns or not sid.isna().any():
        return sid
    return sid.fillna(pd.Series(df["source_id"].astype(str).map(owners).to_numpy(dtype=object),
                                index=df.index, dtype="string"))


def _keep(df: pd.DataFrame, table: str, subjects: frozenset[str] | None,
          t_from: pd.Timestamp | None, t_to: pd.Timestamp | None,
          owners: pd.Series | None = None) -> np.ndarray:
    keep = np.ones(len(df), dtype=bool)
    if subjects is not None and "subject_id" in df.columns:
        sid = _subjects_of(df, owners)
        keep &= (sid.isna() | sid.isin(subjects)).to_numpy(dtype=bool)
    cols = SPANS.get(table, ())
    if (t_from is None and t_to is None) or not cols or not all(c in df.columns for c in cols):
        return keep
    nat = np.iinfo(np.int64).min
    start = _times(df, cols[0])
    end = _times(df, cols[-1])
    end = np.where(end == nat, start, end)  # an open or point row ends when it starts
    undated = start == nat
    if t_from is not None:
        keep &= undated | (end >= t_from.value)
    if t_to is not None:
        keep &= undated | (start < t_to.value)
    return keep


def select_rows(tables: Mapping[str, pd.DataFrame | None], *, subjects: Sequence[str] | None = None,
                t_from: Any = None, t_to: Any = None) -> dict[str, pd.DataFrame | None]:
    """The rows of ``tables`` an exhibit of ``subjects`` over ``[t_from, t_to)`` shows.

    See the module's rules. ``sources`` keeps the sources a kept row of ``fixes``,
    ``events`` or ``places`` cites (or a kept stop lists).

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame or None
        Canonical tables by name (``fixes``, ``events``, ``stops``, ``trips``, ``gaps``,
        ``places``, ``sources``); None stays None.
    subjects : sequence of str, optional
        The subjects shown; default None: every subject.
    t_from, t_to : str, datetime or pandas.Timestamp, optional
        The period, ``t_from <= t < t_to``, each with its zone; default None: open.

    Returns
    -------
    dict of str to pandas.DataFrame or None
        The same tables, with the rows selected (index renumbered from 0; attrs kept).

    Raises
    ------
    ParameterError
        A time without a zone, ``t_to`` not after ``t_from``, or a subject no row has
        (the error lists the case's subjects).

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id=["a", "b"], lat=51.0, lon=3.7, t_utc=["2025-10-24T08:00Z"] * 2)
    >>> len(select_rows({"fixes": f}, subjects=["b"])["fixes"])
    1
    >>> select_rows({"fixes": f}, subjects=["c"])
    Traceback (most recent call last):
    ...
    routetrace.errors.ParameterError: no subject 'c' in the case; its subjects: a, b
    """
    lo, hi = utc_bound(t_from, name="--from"), utc_bound(t_to, name="--to")
    if lo is not None and hi is not None and not hi > lo:
        raise ParameterError(f"the period ends ({hi.isoformat()}) before it starts ({lo.isoformat()})")
    wanted = None if subjects is None else frozenset(str(s) for s in subjects)
    if wanted is not None:
        known: set[str] = set()
        for name, df in tables.items():
            if df is not None and name != "sources" and "subject_id" in df.columns:
                known.update(df["subject_id"].dropna().astype(str).unique().tolist())
        missing = sorted(wanted - known)
        if missing:
            near = [c for m in missing for c in difflib.get_close_matches(m, sorted(known), n=1)]
            raise ParameterError(f"no subject {', '.join(map(repr, missing))} in the case; its subjects: "
                                 f"{', '.join(sorted(known)) or 'none'}",
                                 hint=(f"did you mean {', '.join(map(repr, near))}? " if near else "")
                                 + "`routetrace subjects CASE` lists them")
    owners = _owners(tables) if wanted is not None else None
    out: dict[str, pd.DataFrame | None] = {}
    for name, df in tables.items():
        if df is None or name == "sources":
            out[name] = df
            continue
        sel = df.loc[_keep(df, name, wanted, lo, hi, owners)].reset_index(drop=True)
        sel.attrs = dict(df.attrs)
        out[name] = sel
    src = tables.get("sources")
    if src is not None:
        cited: set[str] = set()
        for name in ("fixes", "events", "places"):
            df = out.get(name)
            if df is not None and "source_id" in df.columns:
                cited.update(df["source_id"].dropna().astype(str).unique().tolist())
        st = out.get("stops")
        if st is not None and "sources" in st.columns:
            for v in st["sources"].dropna().astype(str).unique().tolist():
                cited.update(x for x in v.split("|") if x)
        kept = src.loc[src["source_id"].astype(str).isin(cited).to_numpy(dtype=bool)].reset_index(drop=True)
        kept.attrs = dict(src.attrs)
        out["sources"] = kept
    return out


def selection_params(*, subjects: Sequence[str] | None = None, t_from: Any = None,
                     t_to: Any = None) -> dict[str, Any]:
    """The selection as the exhibit states it (footer, ``manifest.json``); empty when the
    exhibit shows the whole case.

    Parameters
    ----------
    subjects : sequence of str, optional
        The subjects shown.
    t_from, t_to : str, datetime or pandas.Timestamp, optional
        The period, each with its zone.

    Returns
    -------
    dict
        ``{"selection": {...}}``: the subjects, and the period in UTC with the rule.

    Example
    -------
    >>> selection_params(subjects=["lorry-1"], t_from="2025-10-25T00:00+02:00")
    {'selection': {'subjects': ['lorry-1'], 'from': '2025-10-24T22:00:00Z', 'rule': 'rows of those subjects only (a row without a subject goes with the subject of its source; case material kept); period: fixes and events inside it; stops, trips, unobserved intervals and dated places overlapping it, shown whole'}}
    >>> selection_params()
    {}
    """
    lo, hi = utc_bound(t_from, name="--from"), utc_bound(t_to, name="--to")
    if subjects is None and lo is None and hi is None:
        return {}
    sel: dict[str, Any] = {}
    rule = []
    if subjects is not None:
        sel["subjects"] = sorted(str(s) for s in subjects)
        rule.append("rows of those subjects only (a row without a subject goes with the subject of its source; case material kept)")
    if lo is not None:
        sel["from"] = lo.strftime("%Y-%m-%dT%H:%M:%SZ")
    if hi is not None:
        sel["to (excluded)"] = hi.strftime("%Y-%m-%dT%H:%M:%SZ")
    if lo is not None or hi is not None:
        rule.append("period: fixes and events inside it; stops, trips, unobserved intervals and dated "
                    "places overlapping it, shown whole")
    sel["rule"] = "; ".join(rule)
    return {"selection": sel}


def describe_selection(params: Mapping[str, Any]) -> str:
    """A line for the exhibit's title saying what it shows, from :func:`selection_params`'s
    dict; empty for the whole case.

    Parameters
    ----------
    params : mapping
        ``selection_params(...)`` (or any parameters holding its ``selection``).

    Returns
    -------
    str
        ``subjects lorry-1, phone-A · 2025-10-26 18:00Z to 2025-10-27 00:00Z``.

    Example
    -------
    >>> describe_selection(selection_params(subjects=["lorry-1"], t_to="2025-10-27T01:00+01:00"))
    'subject lorry-1 · to 2025-10-27 00:00Z'
    >>> describe_selection({})
    ''
    """
    sel = params.get("selection")
    if not sel:
        return ""

    def short(t: str) -> str:  # 2025-10-26T18:00:00Z -> 2025-10-26 18:00Z (seconds when not 0)
        return t.replace("T", " ").replace(":00Z", "Z") if t.endswith(":00Z") else t.replace("T", " ")

    parts = []
    if sel.get("subjects"):
        subj = list(sel["subjects"])
        parts.append(("subject " if len(subj) == 1 else "subjects ") + ", ".join(subj))
    lo, hi = sel.get("from"), sel.get("to (excluded)")
    if lo and hi:
        parts.append(f"{short(lo)} to {short(hi)}")
    elif lo:
        parts.append(f"from {short(lo)}")
    elif hi:
        parts.append(f"to {short(hi)}")
    return " · ".join(parts)
