"""Teltonika loader: events from IO elements (value, edge and derived events).

Rules (what becomes an event, thresholds, flags) are documented in the module docstring of
:mod:`routetrace.loaders.teltonika`; this module computes them per subject in time order,
vectorised over the long IO table built by :mod:`routetrace.loaders.teltonika_tables`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import schema

__all__ = ["io_events"]


def io_events(*, io_rec: np.ndarray, io_id: np.ndarray, io_raw: np.ndarray, io_value: np.ndarray,
            io_ent: np.ndarray, kind_u: np.ndarray, units_u: np.ndarray, names_u: np.ndarray,
            step_u: np.ndarray, io_bytes: np.ndarray, t_ns: np.ndarray, subj: np.ndarray, record: np.ndarray, event_io: np.ndarray,
            prof_of_rec: np.ndarray, profs: list[dict[str, Any]], rec_lat: np.ndarray,
            rec_lon: np.ndarray, rec_flag: np.ndarray) -> pd.DataFrame:
    """Value events and derived events, per subject in time order (vectorised)."""
    sel = pd.notna(kind_u)[io_ent] & ~io_bytes
    if not sel.any():
        return schema.empty("events")
    subj_codes = pd.factorize(pd.Series(subj, dtype="object"))[0].astype(np.int32)
    # stable sort: subject, io id (within profile), time, record order; one IO row per
    # element (~10 per record), so the columns are reordered one at a time (memory)
    rec = io_rec[sel]
    iid = io_id[sel]
    order = np.lexsort((rec, t_ns[rec], (prof_of_rec[rec] * 65536 + iid).astype(np.int32),
                        subj_codes[rec]))
    rec, iid = rec[order], iid[order]
    raw = io_raw[sel][order]
    val = io_value[sel][order]
    u = io_ent[sel][order]
    del order, sel
    s = subj_codes[rec]
    t = t_ns[rec]
    pk = (prof_of_rec[rec] * 65536 + iid).astype(np.int32)

    def is_kind(k: str) -> np.ndarray:
        out: np.ndarray = np.asarray(kind_u == k, dtype=bool)[u]
        return out

    def before(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``a`` at the row before each row of ``mask`` (rows of one subject and IO: ``same``)."""
        return a[np.flatnonzero(mask) - 1]
    same = np.zeros(len(rec), dtype=bool)
    same[1:] = (s[1:] == s[:-1]) & (pk[1:] == pk[:-1])
    # value events: at the first reading and when the value changes; for entries with a
    # `step`, when the value moves into another multiple of the step (odometer every km...)
    step = step_u[u]
    with np.errstate(invalid="ignore"):
        q = np.where(np.isnan(step), raw.astype(np.float64), np.floor(val / step))
    del step
    changed = ~same
    changed[1:] |= q[1:] != q[:-1]
    del q
    frames: list[pd.DataFrame] = []

    def frame(mask: np.ndarray, kinds: np.ndarray | str, value: np.ndarray, units: np.ndarray | str,
              text: pd.Series, extra: pd.Series, derived: bool,
              more_flag: str | None = None) -> None:
        if not mask.any():
            return
        r = rec[mask]
        fl = pd.Series(rec_flag[r], dtype="string")
        if derived:
            fl = schema.add_flag(fl, np.ones(len(r), bool), "derived")
        if more_flag:
            fl = schema.add_flag(fl, np.ones(len(r), bool), more_flag)
        frames.append(pd.DataFrame({
            "record": record[r], "subject_id": subj[r], "t_utc": t[mask],
            "kind": kinds, "value": value, "unit": units,
            "text": text.to_numpy(dtype=object), "lat": rec_lat[r], "lon": rec_lon[r],
            "flags": fl.to_numpy(), "extra": extra.to_numpy(dtype=object)}))

    def sx(a: Any) -> pd.Series:
        """A string Series with a fresh index (so concatenations align by position)."""
        return pd.Series(np.asarray(a)).astype("string").reset_index(drop=True)

    trig = np.where(event_io[rec] == iid, "true", "false")
    # value events
    m = changed
    frame(m, kind_u[u[m]], val[m], units_u[u[m]],
          ("IO " + sx(iid[m]) + " " + sx(names_u[u[m]]) + " = " + sx(raw[m])),
          ('{"io_id":' + sx(iid[m]) + ',"raw":' + sx(raw[m]) + ',"triggered":' + sx(trig[m]) + "}"),
          derived=False)
    # edges
    edge_names: list[str] = []
    edge_code = np.full(len(rec), -1, dtype=np.int64)
    for pi, p in enumerate(profs):
        for io_num, e in p["io"].items():
            for rv, k in (e.get("edges") or {}).items():
                if k not in edge_names:
                    edge_names.append(k)
                hit = (pk == pi * 65536 + io_num) & (raw == int(rv))
                edge_code[hit] = edge_names.index(k)
    m = same & (edge_code >= 0)
    m[1:] &= raw[1:] != raw[:-1]
    ek = np.asarray([*edge_names, ""], dtype=object)[edge_code[m]]
    frame(m, ek, val[m], "", (sx(ek) + ": IO " + sx(iid[m]) + " "
                              + sx(before(raw, m)) + " -> " + sx(raw[m])),
          ('{"from_record":"' + sx(record[before(rec, m)]) + '","io_id":' + sx(iid[m])
           + ',"triggered":' + sx(trig[m]) + "}"), derived=True)
    # fuel: refuel / drop, per subject from the % series if present, else litres
    th = profs[0]["derived"]
    delta = np.full(len(val), np.nan)  # change from the row before (meaningful where ``same``)
    delta[1:] = val[1:] - val[:-1]
    for fkind, up_k, down_k, funit in (("fuel_level", "refuel_pct", "fuel_drop_pct", "%"),
                                   ("fuel_volume", "refuel_l", "fuel_drop_l", "l")):
        is_f = is_kind(fkind) & (prof_of_rec[rec] == 0)
        if fkind == "fuel_volume":
            has_pct = np.isin(s, np.unique(s[is_kind("fuel_level") & (prof_of_rec[rec] == 0)]))
            is_f &= ~has_pct
        if not is_f.any() or up_k not in th:
            continue
        with np.errstate(invalid="ignore"):
            mu = is_f & same & (delta >= th[up_k])
            md = is_f & same & (delta <= -th[down_k])
        for mm, k, thr in ((mu, "refuel", th[up_k]), (md, "fuel_drop", th[down_k])):
            if mm.any():
                frame(mm, k, delta[mm], funit,
                      (f"{k}: fuel " + sx(np.round(before(val, mm), 3)) + f" {funit} -> "
                       + sx(np.round(val[mm], 3)) + f" {funit} (threshold {thr:g} {funit})"),
                      ('{"from_record":"' + sx(record[before(rec, mm)]) + '","threshold":'
                       + f"{thr:g}" + "}"), derived=True)
    # odometer jumps
    if "odometer_max_speed_kmh" in th:
        is_o = is_kind("odometer") & same & (prof_of_rec[rec] == 0)
        dt_s = np.full(len(rec), np.nan)
        dt_s[is_o] = (t[is_o] - before(t, is_o)) / 1e9
        limit = th["odometer_max_speed_kmh"] / 3.6 * np.maximum(dt_s, 0) + th["odometer_slack_m"]
        with np.errstate(invalid="ignore"):
            mo = is_o & ((delta > limit) | (delta < -th["odometer_rollback_m"]))
        if mo.any():
            frame(mo, "odometer_jump", delta[mo], "m",
                  ("odometer changed by " + sx(delta[mo]) + " m in " + sx(dt_s[mo]) + " s"),
                  ('{"from_record":"' + sx(record[before(rec, mo)]) + '","limit_m":'
                   + sx(np.round(limit[mo], 1)) + "}"),
                  derived=True, more_flag="inconsistent_value")
    if not frames:
        return schema.empty("events")
    out = pd.concat(frames, ignore_index=True)
    out["t_utc"] = pd.to_datetime(out["t_utc"].astype("int64"), unit="ns", utc=True)
    return out
