"""Fusing one subject's fixes (and places) from several sources: the one rule of "the same
fix" in routetrace.

* **The same fix** — the same subject, time (to the millisecond), position (to 1e-7 degree,
  about 1 cm) and stated horizontal accuracy (to 1 cm; a copy that states none, such as a
  GPX export, takes the accuracy its twin states) in several sources, e.g. two extractions
  of one phone, or a phone's database and a GPX export of it — is kept once. Identical rows
  *within* one source stay distinct records (the real routined Cache.sqlite holds 167 such
  pairs under different Z_PKs: the phone wrote them twice): the k-th copy in one source
  only merges with the k-th copy in another. The first copy (by source id, then record) is
  kept and lists every other copy in ``also_seen_in``
  (``source_id:record``), flag ``duplicate_merged``. Nothing is lost: the provenance of every
  copy stays on the kept row. A kept row's ``duplicate_time`` flag (set by
  :func:`routetrace.routes.clean.clean_fixes`, which runs first) is taken off when its only
  same-time twins were these merged copies: the flag describes the fused table.
* **Conflicts** — two fixes of the same subject from different sources within
  ``max_dt`` of each other whose distance exceeds both accuracies plus ``conflict_m`` —
  are both flagged ``source_conflict``; neither is removed.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import schema
from .geo import haversine_m

__all__ = ["merge_places", "merge_sources"]


def merge_sources(fixes: pd.DataFrame, *, max_dt: pd.Timedelta = pd.Timedelta("2s"),
                  conflict_m: float = 1000.0) -> pd.DataFrame:
    """Return the fused fixes of all subjects in time order (see module rules).

    Parameters
    ----------
    fixes
        A ``fixes`` table of one or more subjects and sources.
    max_dt
        Two fixes of a subject from different sources this close in time are compared for
        a conflict.
    conflict_m
        They conflict when farther apart than both accuracies plus this, in metres.

    Returns
    -------
    pandas.DataFrame
        ``fixes`` with one row per distinct fix, sorted by subject, time, source, record;
        merged rows carry ``duplicate_merged`` and list their copies in ``also_seen_in``.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> a = make_fixes(subject_id="p", t_utc=["2025-10-24T10:00Z"], lat=[51.0], lon=[3.7],
    ...                h_acc_m=5.0, source_id="a" * 64)
    >>> gpx = a.assign(source_id="b" * 64, h_acc_m=float("nan"))  # an export without accuracy
    >>> fused = merge_sources(pd.concat([a, gpx], ignore_index=True))
    >>> len(fused), fused["also_seen_in"].iloc[0] == "b" * 64 + ":0"
    (1, True)
    """
    schema.validate(fixes, "fixes")
    f = fixes.sort_values(["subject_id", "t_utc", "source_id", "record"], kind="mergesort").copy()
    key = pd.DataFrame({
        "s": f["subject_id"].astype(str),
        "t": f["t_utc"].dt.floor("ms"),
        "la": np.round(f["lat"].to_numpy(float), 7), "lo": np.round(f["lon"].to_numpy(float), 7),
    }, index=f.index)
    # a copy without a stated accuracy takes its twins' (the first stated one); copies that
    # state different accuracies are different records
    acc = pd.Series(np.round(f["h_acc_m"].to_numpy(float), 2), index=f.index)
    stated = acc.groupby([key["s"], key["t"], key["la"], key["lo"]], sort=False).transform("first")
    key["a"] = acc.fillna(stated).fillna(-1.0)
    # rows of one source are distinct records even when their content is identical (a
    # phone may write the same fix twice): the k-th copy in one source only merges with
    # the k-th copy in another
    key["k"] = key.groupby([f["source_id"].astype(str), key["s"], key["t"], key["la"], key["lo"],
                            key["a"]], sort=False).cumcount()
    cols = ["s", "t", "la", "lo", "a", "k"]
    dup = key.duplicated(cols, keep="first")
    first = key.groupby(cols, sort=False).ngroup()
    copies = (f["source_id"].astype(str) + ":" + f["record"].astype(str))
    keep_of = pd.Series(f.index, index=f.index).groupby(first).transform("first")
    extra = copies[dup].groupby(keep_of[dup]).agg("|".join)
    f["also_seen_in"] = f["also_seen_in"].astype("string")
    prior = f.loc[extra.index, "also_seen_in"].fillna("")
    f.loc[extra.index, "also_seen_in"] = [("|".join(filter(None, [p, e]))) for p, e in zip(prior, extra, strict=True)]
    f["flags"] = schema.add_flag(f["flags"], f.index.isin(extra.index), "duplicate_merged")
    f = f[~dup]
    alone = ~f.duplicated(["subject_id", "t_utc"], keep=False).to_numpy()
    f["flags"] = schema.drop_flag(f["flags"], alone, "duplicate_time")
    # conflicts between different sources close in time
    subj = f["subject_id"].astype(str).to_numpy()
    src = f["source_id"].astype(str).to_numpy()
    t = f["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    la, lo = f["lat"].to_numpy(float), f["lon"].to_numpy(float)
    acc = np.nan_to_num(f["h_acc_m"].to_numpy(float))
    conflict = np.zeros(len(f), dtype=bool)
    if len(f) > 1:
        i = np.arange(len(f) - 1)
        j = i + 1
        near = (subj[i] == subj[j]) & (src[i] != src[j]) & (t[j] - t[i] <= pd.Timedelta(max_dt).value)
        far = haversine_m(la[i], lo[i], la[j], lo[j]) > acc[i] + acc[j] + conflict_m
        hit = near & far
        conflict[i[hit]] = True
        conflict[j[hit]] = True
    f["flags"] = schema.add_flag(f["flags"], conflict, "source_conflict")
    out = f.reset_index(drop=True)
    out.attrs["params"] = {"max_dt": str(pd.Timedelta(max_dt)), "conflict_m": conflict_m}
    return out


def _detected(extra: pd.Series) -> pd.Series:
    """``extra.detected_utc`` of routined visits as times (NaT when absent)."""
    def one(e: object) -> object:
        try:
            return json.loads(str(e)).get("detected_utc")
        except (ValueError, AttributeError):
            return None
    return pd.to_datetime(extra.map(one), utc=True, errors="coerce")


def _us(t: pd.Series) -> pd.Series:
    """Times rounded to the microsecond as integers (NaT -> a fixed sentinel key)."""
    return pd.Series(t.dt.round("us").to_numpy("datetime64[ns]").astype("int64"), index=t.index)


def merge_places(places: pd.DataFrame) -> pd.DataFrame:
    """Return the places of several sources with copies of one place kept once.

    Two extractions of one phone taken days apart hold many of the same records. A place
    is the same when it has the same subject, record locator, kind, start and end time (to
    the microsecond) and position (to 1e-9 degree). A routined visit (``kind="visit"``,
    record ``ZRTVISITMO/...``) is identified by subject and entry time alone, because
    routined rewrites a visit as it goes (arrival row, then departure row; Z_PKs are purged
    and re-issued): the two extractions hold the same visit under different Z_PK lists,
    open in the older one and closed in the newer. The copy kept is the most advanced one:
    closed (``t_end`` set) before open, then the latest ``extra.detected_utc``, then the
    first met. The others are listed in ``also_seen_in`` (``source_id:record``) with flag
    ``duplicate_merged``. The real pair ``Cache.sqlite`` (126 visits) + ``oud_Cache.sqlite``
    (168) gives 207 visits, 87 seen in both.

    Parameters
    ----------
    places
        A ``places`` table of one or more sources.

    Returns
    -------
    pandas.DataFrame
        ``places``, one row per distinct place, sorted by ``t_start`` then ``place_id``.

    Example
    -------
    One routined visit in two extractions: open in the older, closed in the newer.

    >>> from routetrace import schema
    >>> t = pd.Timestamp("2025-10-26T21:00Z")
    >>> visit = {"kind": "visit", "lat": 51.0, "lon": 3.87, "t_start": t, "subject_id": "phone-A"}
    >>> places = schema.from_records([
    ...     {**visit, "place_id": "a:5", "source_id": "a" * 64, "record": "ZRTVISITMO/Z_PK=5"},
    ...     {**visit, "place_id": "b:9", "source_id": "b" * 64, "record": "ZRTVISITMO/Z_PK=9",
    ...      "t_end": t + pd.Timedelta("1h")}], "places")
    >>> m = merge_places(places)
    >>> m[["place_id", "flags"]].values.tolist(), m["also_seen_in"].str.replace("a" * 64, "a…").tolist()
    ([['b:9', 'duplicate_merged']], ['a…:ZRTVISITMO/Z_PK=5'])
    """
    schema.validate(places, "places")
    if not len(places):
        return schema.coerce(places.assign(also_seen_in=pd.Series([], dtype="string")), "places")
    allp = places.reset_index(drop=True)
    visit = (allp["kind"].astype(str) == "visit") & allp["record"].astype(str).str.startswith("ZRTVISITMO/")
    key = pd.DataFrame({
        "subj": allp["subject_id"].astype("string").fillna(""),
        "visit": visit,
        "rec": allp["record"].astype(str).where(~visit, ""),
        "k": allp["kind"].astype(str),
        "t0": _us(allp["t_start"]),
        "t1": _us(allp["t_end"]).where(~visit, 0),
        "lat": allp["lat"].round(9).where(~visit, 0.0), "lon": allp["lon"].round(9).where(~visit, 0.0),
    })
    gid = key.groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    # the most advanced copy first: closed before open, then the latest detection; stable
    rank = pd.DataFrame({"gid": gid, "open": allp["t_end"].isna().to_numpy() & visit.to_numpy(),
                         "det": _detected(allp["extra"]).where(visit)})
    order = rank.sort_values(["gid", "open", "det"], ascending=[True, True, False],
                             na_position="last", kind="stable").index.to_numpy()
    first = np.zeros(len(allp), dtype=bool)
    first[order[~pd.Series(gid[order]).duplicated().to_numpy()]] = True
    loc = (allp["source_id"].astype(str) + ":" + allp["record"].astype(str)).to_numpy()
    kept = allp[first].copy()
    prior = kept["also_seen_in"].astype("string") if "also_seen_in" in kept else None
    kept["also_seen_in"] = pd.array([None] * len(kept), dtype="string")
    dup = ~first
    if dup.any():
        others = pd.Series(loc[dup]).groupby(gid[dup]).agg(lambda s: "|".join(sorted(s)))
        seen = pd.Series(gid[first]).map(others)
        has = seen.notna().to_numpy()
        kept["also_seen_in"] = pd.array(np.where(has, seen.to_numpy(dtype=object), None), dtype="string")
        kept["flags"] = schema.add_flag(kept["flags"], has, "duplicate_merged").to_numpy()
    if prior is not None:  # copies merged earlier stay listed
        kept["also_seen_in"] = [("|".join(filter(None, [p, q])) or None)
                                for p, q in zip(prior.fillna(""), kept["also_seen_in"].fillna(""), strict=True)]
    kept = kept.sort_values(["t_start", "place_id"], kind="stable").reset_index(drop=True)
    return schema.validate(schema.coerce(kept, "places"), "places")
