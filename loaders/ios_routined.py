"""iOS ``com.apple.routined`` databases: Cache.sqlite and Local.sqlite (Core Data, CoreRoutine).

One loader reads whichever routined tables a file holds (Cache.sqlite and Local.sqlite share
one Core Data model; Cache.sqlite carries the learned tables empty, Local.sqlite fills them),
so the two files never compete in sniffing:

* ``ZRTCLLOCATIONMO`` -> fixes (``fix_kind`` "fused": CoreLocation's fused position).
  ``ZSPEED``/``ZCOURSE`` = -1 mean "invalid" and become NA with flag ``sentinel_na``;
  accuracy, altitude, vertical accuracy kept; ``ZTYPE`` and ``ZSIGNALENVIRONMENTTYPE``
  kept in ``extra``. Rows are read through a cursor in chunks into one preallocated numpy
  array and put in (``ZTIMESTAMP``, ``Z_PK``) order (Z_PK order is not time order).
* ``ZRTVISITMO`` -> places ``kind="visit"``, ONE per visit. routined writes a visit as it
  goes: an arrival row (``ZTYPE`` 1, no exit) when it detects the arrival and a departure row
  (``ZTYPE`` 3) when it detects the departure, each usually twice (``ZCONFIDENCE`` 0.0 then
  1.0), and the position estimate moves between them (real Cache.sqlite: median 48 m). All
  rows with the same ``ZENTRYDATE`` are one visit, whose exit, position and uncertainty are
  those of its latest row (highest ``ZDETECTIONDATE``, then ``Z_PK``); its ``record`` lists
  every Z_PK (``ZRTVISITMO/Z_PK=3066+3067+3070``) and ``extra.rows`` counts them. For the
  count rule a visit record is such a group (records read = visits) and ``sum(extra.rows)``
  equals the table's row count. A visit whose rows are all arrivals is open (``t_end`` NA,
  ``extra.arrival_only``). ``confidence`` = the highest ``ZCONFIDENCE`` (routined's own 0/1
  visit confidence: a visit it never confirmed keeps 0, 54 of 126 in the real Cache.sqlite);
  ``ZLOCATIONUNCERTAINTY`` -> ``radius_m``; in ``extra``: ``detected_utc`` (latest row's
  ``ZDETECTIONDATE``), ``first_detected_utc``, ``data_points`` (``ZDATAPOINTCOUNT``),
  ``place_inference_confidence`` (highest ``ZPLACEINFERENCECONFIDENCE``), ``type``,
  ``types``, ``sources``. Real counts: Cache.sqlite 365 rows -> 126 visits, oud_Cache.sqlite
  495 -> 168 (both extractions fused: 207, see :mod:`routetrace.loaders.dedup`).
* ``ZRTHINTMO`` -> fixes ``fix_kind="hint"`` with flag ``hint`` (``ZHORIZONTALUNCERTAINTY``,
  ``ZSOURCE`` in ``extra``).
* Local.sqlite: ``ZRTLEARNEDLOCATIONOFINTERESTMO`` -> places ``kind="learned"`` (name from
  ``ZRTMAPITEMMO`` via ``ZPLACEMAPITEMIDENTIFIER`` = ``ZRTMAPITEMMO.ZIDENTIFIER``, or the custom
  label), ``ZRTLEARNEDLOCATIONOFINTERESTVISITMO`` and ``ZRTLEARNEDVISITMO`` -> places
  ``kind="learned_visit"``; ``ZRTVEHICLEEVENTMO`` -> events ``kind="parked_car"`` (with
  position). ``ZRTMAPITEMMO`` rows are a lookup (names/addresses), not records.

Local.sqlite schema sources (no public sample exists; checked in these public files):

* the column lists Apple ships in the same Core Data model, present (empty) in the real
  Cache.sqlite of ``../shared/realdata/ios/routined_jads`` (model 'CoreRoutine 8');
* mac4n6/APOLLO ``modules/routined_local_vehicle_parked.txt`` (commit 05cee49):
  ``ZRTVEHICLEEVENTMO.ZDATE/ZLOCDATE/ZLOCLATITUDE/ZLOCLONGITUDE/ZLOCUNCERTAINTY/ZNOTES/
  ZUSERSETLOCATION`` in Local.sqlite, iOS 11-13; and
  ``modules/routined_local_learned_location_of_interest_entry.txt``;
* abrignoni/iLEAPP ``scripts/artifacts/routineDLocationsLocal.py`` (commit 0a5921b):
  ``ZRTLEARNEDLOCATIONOFINTERESTVISITMO`` joined to ``ZRTLEARNEDLOCATIONOFINTERESTMO`` on
  ``ZLOCATIONOFINTEREST = Z_PK``, ``ZENTRYDATE/ZEXITDATE/ZCONFIDENCE/
  ZLOCATIONHORIZONTALUNCERTAINTY`` (iOS 14+; ``ZLOCATIONUNCERTAINTY`` before);
* abrignoni/iLEAPP ``scripts/artifacts/appleMapsTrips.py`` (commit 5a7c94a): paths
  ``*/Library/Caches/com.apple.routined/Local.sqlite`` and ``Cloud-V2.sqlite``; names and
  addresses from ``ZRTMAPITEMMO`` / ``ZRTADDRESSMO`` (``ZSUBTHOROUGHFARE, ZTHOROUGHFARE,
  ZLOCALITY, ZCOUNTRY``).

Times are Cocoa seconds (:data:`routetrace.timebase.APPLE_EPOCH`), UTC, REAL or INTEGER;
values outside :data:`routetrace.timebase.PLAUSIBLE` are rejected with a reason. No ``> 0``
filters: any latitude/longitude in range is real.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import timebase
from ..errors import CorruptSource
from ..evidence import invalid_text_note, private_sqlite, read_frame, read_rows
from .base import (
    LoadContext,
    LoaderSpec,
    LoadResult,
    compact_json,
    companion_hashes,
    register,
    split_repeated,
    sqlite_tables,
)

__all__ = ["load_routined", "sniff_routined"]

_MARKERS = {"ZRTCLLOCATIONMO", "ZRTVISITMO", "ZRTLEARNEDLOCATIONOFINTERESTMO",
            "ZRTVEHICLEEVENTMO", "ZRTHINTMO"}
CHUNK = 50_000


def sniff_routined(path: Path, head: bytes) -> bool:
    """A routined database has the CoreRoutine tables (``ZRTCLLOCATIONMO``, ``ZRT...``)."""
    if not head.startswith(b"SQLite format 3\x00"):
        return False
    return len(_MARKERS & sqlite_tables(path)) >= 2


def _cols(con: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in con.execute(f'PRAGMA table_info("{table}")')}


def _apple(values: Any) -> pd.Series:
    return timebase.from_epoch(values, epoch=timebase.APPLE_EPOCH)


def _bad_latlon(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    ok: np.ndarray = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    return ~ok


def _floats(rows: list[tuple[Any, ...]]) -> np.ndarray:
    """Rows of numbers as a float array, NULL -> nan; a value that is no number (a damaged
    row's blob or text) -> nan too, so its row is judged (and rejected) on its own."""
    try:
        return np.array(rows, dtype="float64")
    except (ValueError, TypeError):
        frame = pd.DataFrame.from_records(rows)
        return frame.apply(lambda c: pd.to_numeric(c, errors="coerce")).to_numpy("float64")


def _read_locations(con: sqlite3.Connection, rejects: list[tuple[str, str]]) -> tuple[pd.DataFrame, int]:
    """The location rows as fixes, and how many rows were read."""
    cols = ["Z_PK", "ZTIMESTAMP", "ZLATITUDE", "ZLONGITUDE", "ZALTITUDE", "ZHORIZONTALACCURACY",
            "ZVERTICALACCURACY", "ZSPEED", "ZCOURSE", "ZTYPE", "ZSIGNALENVIRONMENTTYPE"]
    have = _cols(con, "ZRTCLLOCATIONMO")
    sel = ", ".join(c if c in have else "NULL" for c in cols)
    try:
        n = int(con.execute("SELECT count(*) FROM ZRTCLLOCATIONMO").fetchone()[0])
    except sqlite3.DatabaseError:  # a damaged page: read what can be read below
        n = 0
    # One preallocated float array filled chunk by chunk (memory: the array plus one chunk
    # of Python tuples); rows come in Z_PK (rowid) order, read past damaged pages, and are
    # put in time order by a stable numpy sort (cheaper than SQLite's B-tree for ORDER BY).
    arr = np.empty((n, len(cols)), dtype="float64")
    faults: list[tuple[str, str]] = []
    i = 0
    for rows in read_rows(con, "ZRTCLLOCATIONMO", sel, key="Z_PK", batch=CHUNK, faults=faults):
        if i + len(rows) > len(arr):  # a damaged file's count(*) can disagree with its scan
            arr = np.concatenate([arr[:i], np.empty((len(rows) + i // 2, len(cols)))])
        arr[i:i + len(rows)] = _floats(rows)
        i += len(rows)
    rejects.extend(faults)
    arr, n_read = arr[:i], i + len(faults)
    order = np.lexsort((arr[:, 0], np.nan_to_num(arr[:, 1], nan=np.inf)))
    arr = arr[order]
    dup = pd.Series(arr[:, 0]).duplicated().to_numpy()
    if dup.any():  # a damaged b-tree can yield a key twice in a scan: the later copies are rejects
        for k in np.flatnonzero(dup):
            key = int(arr[k, 0]) if np.isfinite(arr[k, 0]) else arr[k, 0]
            rejects.append((f"ZRTCLLOCATIONMO/Z_PK={key} (scan row {int(order[k])})",
                            "Z_PK repeated in the table scan (damaged file); this copy has "
                            f"ZTIMESTAMP {arr[k, 1]!r}, ZLATITUDE {arr[k, 2]!r}, ZLONGITUDE {arr[k, 3]!r}"))
        arr = arr[~dup]
    pk = arr[:, 0].astype("int64")
    t = _apple(arr[:, 1])
    lat, lon = arr[:, 2], arr[:, 3]
    bad_t = t.isna().to_numpy()
    bad_p = _bad_latlon(lat, lon)
    rec = "ZRTCLLOCATIONMO/Z_PK=" + pd.Series(pk).astype("string")
    for r, v in zip(rec[bad_t], arr[bad_t, 1], strict=True):
        rejects.append((str(r), f"ZTIMESTAMP {v!r} is not a plausible Cocoa time (1980-2100)"))
    for r in rec[bad_p & ~bad_t]:
        rejects.append((str(r), "latitude/longitude missing or out of range"))
    keep = ~(bad_t | bad_p)
    if not keep.all():
        arr, rec, t = arr[keep], rec[keep], t[keep]
    speed, course = arr[:, 7], arr[:, 8]
    s_na, c_na = speed == -1, course == -1
    # type/signal-environment codes -> a small lookup of JSON strings (few distinct pairs)
    typ = np.nan_to_num(arr[:, 9], nan=-1).astype("int64")
    env = np.nan_to_num(arr[:, 10], nan=-1).astype("int64")
    # distinct (env, type) pairs in sorted order from three 1-D sorts (np.unique on rows,
    # axis=0, took 1.7 s at 1e6 fixes)
    env_u, env_i = np.unique(env, return_inverse=True)
    typ_u, typ_i = np.unique(typ, return_inverse=True)
    pair_u, inv = np.unique(env_i.reshape(-1) * len(typ_u) + typ_i.reshape(-1), return_inverse=True)
    labels = [compact_json({"signal_env": None if e < 0 else int(e), "type": None if ty < 0 else int(ty)})
              for e, ty in zip(env_u[pair_u // len(typ_u)], typ_u[pair_u % len(typ_u)], strict=True)]
    extra = pd.Categorical.from_codes(inv.reshape(-1), categories=pd.Index(labels, dtype=object))
    flags = pd.Categorical.from_codes((s_na | c_na).astype("int8"),
                                      categories=pd.Index(["", "sentinel_na"], dtype=object))
    return pd.DataFrame({
        "record": rec.to_numpy(), "t_utc": t.array, "lat": arr[:, 2], "lon": arr[:, 3],
        "alt_m": arr[:, 4], "h_acc_m": arr[:, 5], "v_acc_m": arr[:, 6],
        "speed_mps": np.where(s_na, np.nan, speed), "course_deg": np.where(c_na, np.nan, course),
        "fix_kind": "fused", "flags": flags, "extra": extra,
    }), n_read


def _read_columns(con: sqlite3.Connection, table: str, cols: list[str],
                  faults: list[tuple[str, str]]) -> pd.DataFrame:
    """A table's ``cols`` (NULL where the schema lacks one), in Z_PK order, read past damaged
    pages; each unreadable Z_PK range is appended to ``faults``."""
    have = _cols(con, table)
    return read_frame(con, table, ", ".join(c if c in have else "NULL" for c in cols), cols,
                      key="Z_PK", faults=faults)


def _records(con: sqlite3.Connection, table: str, cols: list[str],
             rejects: list[tuple[str, str]], *, text: tuple[str, ...] = ()) -> tuple[pd.DataFrame, int]:
    """A record table's rows, one per Z_PK, read past damaged pages, and how many rejects
    that added: one per unreadable Z_PK range (``ZRTVISITMO/Z_PK 41..87``), and one per row
    whose Z_PK a damaged b-tree repeated in the scan (the later copies, named by scan row).
    Columns not in ``text`` are numbers: a value that is not (a damaged row's blob) is NaN."""
    faults: list[tuple[str, str]] = []
    df = _read_columns(con, table, cols, faults)
    for c in cols:  # a number column holding text or a blob (object or str dtype)
        if c not in text and not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = pd.to_numeric(df[c], errors="coerce")
    df, repeated = split_repeated(df, "Z_PK", lambda k, i: f"{table}/Z_PK={k} (scan row {i})",
                                  "Z_PK repeated in the table scan (damaged file)")
    rejects.extend(faults + repeated)
    return df, len(faults) + len(repeated)


def _times(df: pd.DataFrame, col: str, table: str, rec: pd.Series, rejects: list[tuple[str, str]],
           *, required: bool) -> tuple[pd.Series, np.ndarray]:
    """Convert ``col``; return (times, bad mask). NULL is bad only when ``required``."""
    raw = pd.to_numeric(df[col], errors="coerce")
    t = _apple(raw)
    bad = (t.isna() & (raw.notna() | required)).to_numpy()
    return t, bad


def _reject(rejects: list[tuple[str, str]], recs: pd.Series, mask: np.ndarray, why: str) -> None:
    rejects.extend((str(r), why) for r in recs[mask])


_VISIT_COLS = ["Z_PK", "ZTYPE", "ZSOURCE", "ZCONFIDENCE", "ZDETECTIONDATE", "ZENTRYDATE", "ZEXITDATE",
               "ZLOCATIONLATITUDE", "ZLOCATIONLONGITUDE", "ZLOCATIONUNCERTAINTY", "ZDATAPOINTCOUNT",
               "ZPLACEINFERENCECONFIDENCE"]


def _fold_visits(df: pd.DataFrame) -> pd.DataFrame:
    """One row per visit: the ``ZRTVISITMO`` rows with the same ``ZENTRYDATE`` folded.

    The visit's fields are those of its latest row (highest ``ZDETECTIONDATE``, then highest
    ``Z_PK``): routined writes an arrival row (``ZTYPE`` 1, no exit) and later a departure row
    (``ZTYPE`` 3) whose exit and position estimate supersede it. Added columns: ``pks`` (every
    Z_PK, ascending, joined by '+'), ``rows``, ``conf`` (highest ``ZCONFIDENCE``),
    ``place_conf`` (highest ``ZPLACEINFERENCECONFIDENCE``), ``srcs`` and ``types`` (sorted
    distinct ``ZSOURCE``/``ZTYPE``). A row without a usable ``ZENTRYDATE`` is a visit of its own.
    """
    entry = df["ZENTRYDATE"].to_numpy("float64")
    pk = df["Z_PK"].astype("int64").astype(str).to_numpy()
    key = np.where(np.isnan(entry), "Z_PK=" + pk, entry.astype(str))
    df = df.assign(_key=key).sort_values(["ZDETECTIONDATE", "Z_PK"], na_position="first", kind="stable")
    g = df.groupby("_key", sort=False)

    def distinct(s: pd.Series) -> list[int]:
        return sorted({int(v) for v in s.dropna()})

    agg = g.agg(pks=("Z_PK", lambda s: "+".join(str(int(v)) for v in sorted(s))),
                rows=("Z_PK", "size"), conf=("ZCONFIDENCE", "max"),
                place_conf=("ZPLACEINFERENCECONFIDENCE", "max"), first_detection=("ZDETECTIONDATE", "min"),
                srcs=("ZSOURCE", distinct), types=("ZTYPE", distinct))
    out = g.tail(1).set_index("_key").join(agg)
    return out.sort_values(["ZENTRYDATE", "pks"], na_position="last", kind="stable").reset_index(drop=True)


def _cocoa_iso(v: Any) -> str | None:
    t = _apple([v]).iloc[0]
    return None if pd.isna(t) else t.isoformat().replace("+00:00", "Z")


def _visit_extra(out: pd.DataFrame) -> list[str]:
    def num(v: Any, kind: type = int) -> Any:
        return None if pd.isna(v) else kind(v)

    return [compact_json({
        "type": num(ty), "types": tys, "sources": s, "rows": int(n), "arrival_only": bool(tys == [1]),
        "detected_utc": _cocoa_iso(det), "first_detected_utc": _cocoa_iso(det0),
        "data_points": num(dp), "place_inference_confidence": num(pc, float)})
        for ty, tys, s, n, det, det0, dp, pc in zip(
            out["ZTYPE"], out["types"], out["srcs"], out["rows"], out["ZDETECTIONDATE"],
            out["first_detection"], out["ZDATAPOINTCOUNT"], out["place_conf"], strict=True)]


def _read_visits(con: sqlite3.Connection, rejects: list[tuple[str, str]]) -> tuple[pd.DataFrame, int]:
    df, repeated = _records(con, "ZRTVISITMO", _VISIT_COLS, rejects)
    if df.empty:
        return pd.DataFrame(), repeated
    out = _fold_visits(df)
    rec = "ZRTVISITMO/Z_PK=" + out["pks"].astype("string")
    t0, bad0 = _times(out, "ZENTRYDATE", "ZRTVISITMO", rec, rejects, required=True)
    t1, bad1 = _times(out, "ZEXITDATE", "ZRTVISITMO", rec, rejects, required=False)
    lat = out["ZLOCATIONLATITUDE"].to_numpy("float64")
    lon = out["ZLOCATIONLONGITUDE"].to_numpy("float64")
    badp = _bad_latlon(lat, lon)
    _reject(rejects, rec, bad0, "ZENTRYDATE missing or not a plausible Cocoa time")
    _reject(rejects, rec, bad1 & ~bad0, "ZEXITDATE (of the visit's latest row) is not a plausible Cocoa time")
    _reject(rejects, rec, badp & ~bad0 & ~bad1,
            "visit latitude/longitude (of the visit's latest row) missing or out of range")
    keep = ~(bad0 | bad1 | badp)
    places = pd.DataFrame({
        "record": rec, "kind": "visit", "lat": lat, "lon": lon,
        "radius_m": out["ZLOCATIONUNCERTAINTY"].astype("float64"), "t_start": t0, "t_end": t1,
        "t_precision": "instant", "confidence": out["conf"].astype("float64"),
        "flags": "", "extra": _visit_extra(out),
    })[keep]
    return places, len(out) + repeated


def _read_hints(con: sqlite3.Connection, rejects: list[tuple[str, str]]) -> tuple[pd.DataFrame, int]:
    df, repeated = _records(con, "ZRTHINTMO", ["Z_PK", "ZSOURCE", "ZDATE", "ZHORIZONTALUNCERTAINTY",
                                               "ZLATITUDE", "ZLONGITUDE"], rejects)
    if df.empty:
        return pd.DataFrame(), repeated
    rec = "ZRTHINTMO/Z_PK=" + df["Z_PK"].astype("string")
    t, badt = _times(df, "ZDATE", "ZRTHINTMO", rec, rejects, required=True)
    lat, lon = df["ZLATITUDE"].to_numpy("float64"), df["ZLONGITUDE"].to_numpy("float64")
    badp = _bad_latlon(lat, lon)
    _reject(rejects, rec, badt, "ZDATE missing or not a plausible Cocoa time")
    _reject(rejects, rec, badp & ~badt, "hint latitude/longitude missing or out of range")
    keep = ~(badt | badp)
    src = pd.to_numeric(df["ZSOURCE"], errors="coerce").astype("Int64").astype("string").fillna("null")
    fixes = pd.DataFrame({
        "record": rec, "t_utc": t, "lat": lat, "lon": lon,
        "h_acc_m": df["ZHORIZONTALUNCERTAINTY"].astype("float64"), "fix_kind": "hint",
        "flags": "hint", "extra": '{"source":' + src + "}",
    })[keep]
    return fixes, len(df) + repeated


def _ident(v: Any) -> str | None:
    """A map-item identifier as the key both tables share: hex for a blob, None for NULL."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v.hex().upper() if isinstance(v, bytes) else str(v)


def _read_learned(con: sqlite3.Connection, tables: set[str],
                  rejects: list[tuple[str, str]]) -> tuple[list[pd.DataFrame], list[pd.DataFrame], int]:
    places: list[pd.DataFrame] = []
    events: list[pd.DataFrame] = []
    n = 0
    names: dict[str, tuple[Any, Any]] = {}
    if "ZRTMAPITEMMO" in tables:
        # a lookup, read past damaged pages too: an unreadable key range is one reject, and
        # the learned places that name its map items are kept without a name or address
        faults: list[tuple[str, str]] = []
        mi = _read_columns(con, "ZRTMAPITEMMO", ["Z_PK", "ZIDENTIFIER", "ZNAME", "ZADDRESS"], faults)
        addr: dict[int, Any] = {}
        if "ZRTADDRESSMO" in tables:
            acol = _cols(con, "ZRTADDRESSMO")
            fld = [c for c in ("ZSUBTHOROUGHFARE", "ZTHOROUGHFARE", "ZLOCALITY", "ZCOUNTRY")
                   if c in acol]
            if fld:
                for rows in read_rows(con, "ZRTADDRESSMO", f"Z_PK, {', '.join(fld)}", key="Z_PK",
                                      batch=50_000, faults=faults):
                    for row in rows:
                        addr[row[0]] = ", ".join(str(v) for v in row[1:] if v)
        rejects.extend((rec, f"{why}; learned places that name these map items are kept without "
                             "their name or address") for rec, why in faults)
        n += len(faults)
        # the address key is an integer; text in it (a damaged row) means no address
        akeys = pd.to_numeric(mi["ZADDRESS"], errors="coerce")
        for ident, name, a in zip(mi["ZIDENTIFIER"], mi["ZNAME"], akeys, strict=True):
            key = _ident(ident)
            if key is not None:
                names[key] = (name, addr.get(int(a)) if np.isfinite(a) else None)

    specs = [
        ("ZRTLEARNEDLOCATIONOFINTERESTMO", "learned", "ZLOCATIONHORIZONTALUNCERTAINTY",
         "ZPLACECREATIONDATE", "ZPLACEEXPIRATIONDATE"),
        ("ZRTLEARNEDLOCATIONOFINTERESTVISITMO", "learned_visit", "ZLOCATIONHORIZONTALUNCERTAINTY",
         "ZENTRYDATE", "ZEXITDATE"),
        ("ZRTLEARNEDVISITMO", "learned_visit", "ZLOCATIONUNCERTAINTY", "ZENTRYDATE", "ZEXITDATE"),
    ]
    for table, kind, unc, c0, c1 in specs:
        if table not in tables:
            continue
        tcols = _cols(con, table)
        if unc not in tcols and "ZLOCATIONUNCERTAINTY" in tcols:
            unc = "ZLOCATIONUNCERTAINTY"  # iOS < 14 (iLEAPP routineDLocationsLocal)
        df, repeated = _records(con, table, ["Z_PK", "ZLOCATIONLATITUDE", "ZLOCATIONLONGITUDE", unc,
                                             c0, c1, "ZCONFIDENCE", "ZPLACECUSTOMLABEL",
                                             "ZPLACEMAPITEMIDENTIFIER", "ZLOCATIONOFINTEREST",
                                             "ZPLACETYPE"], rejects,
                                      text=("ZPLACECUSTOMLABEL", "ZPLACEMAPITEMIDENTIFIER"))
        n += repeated + len(df)
        if df.empty:
            continue
        rec = f"{table}/Z_PK=" + df["Z_PK"].astype("string")
        t0, bad0 = _times(df, c0, table, rec, rejects, required=False)
        t1, bad1 = _times(df, c1, table, rec, rejects, required=False)
        lat = df["ZLOCATIONLATITUDE"].to_numpy("float64")
        lon = df["ZLOCATIONLONGITUDE"].to_numpy("float64")
        badp = _bad_latlon(lat, lon)
        _reject(rejects, rec, bad0 | bad1, f"{c0}/{c1} is not a plausible Cocoa time")
        _reject(rejects, rec, badp & ~(bad0 | bad1), "latitude/longitude missing or out of range")
        nm = [names.get(_ident(k) or "", (None, None)) for k in df["ZPLACEMAPITEMIDENTIFIER"]]
        label = df["ZPLACECUSTOMLABEL"]
        extra = [compact_json({"place_type": None if pd.isna(pt) else int(pt),
                               "loi": None if pd.isna(lo) else int(lo)})
                 for pt, lo in zip(df["ZPLACETYPE"], df["ZLOCATIONOFINTEREST"], strict=True)]
        p = pd.DataFrame({
            "record": rec, "kind": kind, "lat": lat, "lon": lon,
            "name": [lb if isinstance(lb, str) and lb else x[0] for lb, x in zip(label, nm, strict=True)],
            "address": [x[1] for x in nm], "radius_m": df[unc].astype("float64"),
            "t_start": t0, "t_end": t1, "t_precision": "instant",
            "confidence": pd.to_numeric(df["ZCONFIDENCE"], errors="coerce").astype("float64"),
            "flags": "", "extra": extra,
        })[~(bad0 | bad1 | badp)]
        places.append(p)
    if "ZRTVEHICLEEVENTMO" in tables:
        df, repeated = _records(con, "ZRTVEHICLEEVENTMO", ["Z_PK", "ZDATE", "ZLOCDATE", "ZLOCLATITUDE",
                                                           "ZLOCLONGITUDE", "ZLOCUNCERTAINTY", "ZNOTES",
                                                           "ZUSERSETLOCATION"], rejects, text=("ZNOTES",))
        n += repeated + len(df)
        if not df.empty:
            rec = "ZRTVEHICLEEVENTMO/Z_PK=" + df["Z_PK"].astype("string")
            t, badt = _times(df, "ZDATE", "ZRTVEHICLEEVENTMO", rec, rejects, required=True)
            lat = df["ZLOCLATITUDE"].to_numpy("float64")
            lon = df["ZLOCLONGITUDE"].to_numpy("float64")
            badp = _bad_latlon(lat, lon)
            _reject(rejects, rec, badt, "ZDATE missing or not a plausible Cocoa time")
            lat = np.where(badp, np.nan, lat)
            lon = np.where(badp, np.nan, lon)
            extra = [compact_json({"loc_uncertainty_m": u, "user_set": None if pd.isna(us) else int(us)})
                     for u, us in zip(df["ZLOCUNCERTAINTY"], df["ZUSERSETLOCATION"], strict=True)]
            ev = pd.DataFrame({"record": rec, "t_utc": t, "kind": "parked_car", "text": df["ZNOTES"],
                               "lat": lat, "lon": lon, "flags": "", "extra": extra})[~badt]
            events.append(ev)
    return places, events, n


def _table(rejects: list[tuple[str, str]], name: str, read: Callable[..., Any],
           con: sqlite3.Connection) -> Any:
    """``read(con, rejects)``, or None after one reject for ``name`` when SQLite finds the
    table's pages damaged (the rejects ``read`` had added are taken back: its rows are not
    counted as read)."""
    mark = len(rejects)
    try:
        return read(con, rejects)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        del rejects[mark:]
        rejects.append((name, f"table unreadable: {exc} (a damaged page); its rows are not read"))
        return None


@register(LoaderSpec(
    name="ios-routined",
    description="iOS com.apple.routined Cache.sqlite / Local.sqlite: fixes, visits, hints, "
                "learned places, parked-car events",
    sniff=sniff_routined,
    produces=("fixes", "places", "events"),
))
def load_routined(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a routined Cache.sqlite or Local.sqlite (read from a private copy, WAL applied)."""
    rejects: list[tuple[str, str]] = []
    fixes: list[pd.DataFrame] = []
    places: list[pd.DataFrame] = []
    events: list[pd.DataFrame] = []
    n = 0
    with private_sqlite(path) as con:
        tables = {str(r[0]) for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "ZRTCLLOCATIONMO" in tables:
            if "Z_PK" not in _cols(con, "ZRTCLLOCATIONMO"):  # rows are read in Z_PK order
                raise ctx.error(CorruptSource, "table ZRTCLLOCATIONMO has no Z_PK column")
            f, k = _read_locations(con, rejects)
            n += k
            fixes.append(f)
            del f
        # the record tables and lookups are read past damaged pages too; a damage SQLite
        # meets elsewhere (a page of a table's schema or index) costs that table group (one
        # reject naming it), not the whole file
        for name, read, into in (("ZRTVISITMO", _read_visits, places), ("ZRTHINTMO", _read_hints, fixes)):
            if name in tables:
                got = _table(rejects, name, read, con)
                if got is None:
                    n += 1  # the table's one reject
                else:
                    n += got[1]
                    into.append(got[0])
        learned = _table(rejects, "learned places (ZRTLEARNEDLOCATIONOFINTEREST*, ZRTVEHICLEEVENTMO)",
                         lambda c, r: _read_learned(c, tables, r), con)
        if learned is None:
            n += 1
        else:
            places.extend(learned[0])
            events.extend(learned[1])
            n += learned[2]
    fx = [f for f in fixes if len(f)]
    pl = [p for p in places if len(p)]
    evs = [e for e in events if len(e)]
    return ctx.finish(
        records_read=n,
        time_basis="Cocoa seconds since 2001-01-01T00:00:00Z (UTC), as stored by routined" + invalid_text_note(con),
        fixes=(fx[0] if len(fx) == 1 else pd.concat(fx, ignore_index=True)) if fx else None,
        places=pd.concat(pl, ignore_index=True) if pl else None,
        events=pd.concat(evs, ignore_index=True) if evs else None,
        rejects=rejects, companion_hashes=companion_hashes(path), default_subject="iphone",
    )
