"""Fusing one subject's fixes from several sources.

* **Exact duplicates** — the same subject, time (to the millisecond) and position (to 1e-7
  degree) in several sources, e.g. two extractions of one phone, or a phone's database and
  a GPX export of it — are merged (identical rows *within* one source stay distinct
  records): the first
  copy (by source id, then record) is kept and lists every other copy in ``also_seen_in``
  (``source_id:record``), flag ``duplicate_merged``. Nothing is lost: the provenance of every
  copy stays on the kept row. A kept row's ``duplicate_time`` flag (set by
  :func:`routetrace.routes.clean.clean_fixes`, which runs first) is taken off when its only
  same-time twins were these merged copies: the flag describes the fused table.
* **Conflicts** — two fixes of the same subject from different sources within
  ``max_dt`` of each other whose distance exceeds both accuracies plus ``conflict_m`` —
  are both flagged ``source_conflict``; neither is removed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from .geo import haversine_m

__all__ = ["merge_sources"]


def merge_sources(fixes: pd.DataFrame, *, max_dt: pd.Timedelta = pd.Timedelta("2s"),
                  conflict_m: float = 1000.0) -> pd.DataFrame:
    """Return the fused fixes of all subjects in time order (see module rules)."""
    schema.validate(fixes, "fixes")
    f = fixes.sort_values(["subject_id", "t_utc", "source_id", "record"], kind="mergesort").copy()
    key = pd.DataFrame({
        "s": f["subject_id"].astype(str),
        "t": f["t_utc"].dt.floor("ms"),
        "la": np.round(f["lat"].to_numpy(float), 7), "lo": np.round(f["lon"].to_numpy(float), 7),
    }, index=f.index)
    # rows of one source are distinct records even when their content is identical (a
    # phone may write the same fix twice): the k-th copy in one source only merges with
    # the k-th copy in another
    key["k"] = key.groupby([f["source_id"].astype(str), key["s"], key["t"], key["la"], key["lo"]],
                           sort=False).cumcount()
    cols = ["s", "t", "la", "lo", "k"]
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
