"""iOS ``com.apple.routined`` databases: Cache.sqlite, Local.sqlite, Cloud-V2.sqlite (Core Data).

One loader reads whichever routined tables a file holds (Cache.sqlite and Local.sqlite share
one Core Data model; Cache.sqlite carries the learned tables empty, Local.sqlite fills them;
Cloud-V2.sqlite holds only the tables synced through the Apple ID: learned visits, learned
places, transitions, devices, map items, addresses), so the files never compete in sniffing:

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
  those of its latest row (the latest departure row when there is one; latest = highest
  ``ZDETECTIONDATE``, then ``Z_PK``); its ``record`` lists
  every Z_PK (``ZRTVISITMO/Z_PK=3066+3067+3070``) and ``extra.rows`` counts them. For the
  count rule a visit record is such a group (records read = visits) and ``sum(extra.rows)``
  equals the table's row count. A visit whose rows are all arrivals is open (``t_end`` NA,
  ``extra.arrival_only``). ``confidence`` = the highest ``ZCONFIDENCE`` (routined's own 0/1
  visit confidence: a visit it never confirmed keeps 0, 54 of 126 in the real Cache.sqlite);
  ``ZLOCATIONUNCERTAINTY`` -> ``radius_m``; in ``extra``: ``detected_utc`` (latest row's
  ``ZDETECTIONDATE``), ``first_detected_utc``, ``data_points`` (``ZDATAPOINTCOUNT``),
  ``place_inference_confidence`` (highest ``ZPLACEINFERENCECONFIDENCE``), ``type``,
  ``types``, ``sources``. Real counts: Cache.sqlite 365 rows -> 126 visits, oud_Cache.sqlite
  495 -> 168 (both extractions fused: 207, see :func:`routetrace.routes.merge.merge_places`).
* ``ZRTHINTMO`` -> fixes ``fix_kind="hint"`` with flag ``hint`` (``ZHORIZONTALUNCERTAINTY``,
  ``ZSOURCE`` in ``extra``).
* Local.sqlite: ``ZRTLEARNEDLOCATIONOFINTERESTMO`` -> places ``kind="learned"`` (name from
  ``ZRTMAPITEMMO`` via ``ZPLACEMAPITEMIDENTIFIER`` = ``ZRTMAPITEMMO.ZIDENTIFIER``, or the custom
  label), ``ZRTLEARNEDLOCATIONOFINTERESTVISITMO`` and ``ZRTLEARNEDVISITMO`` -> places
  ``kind="learned_visit"``. ``t_start``/``t_end`` are a visit's entry/exit; a learned place's
  ``t_start`` is its creation date and ``t_end`` stays NA: its ``ZPLACEEXPIRATIONDATE`` is
  when routined will forget the place, not "present until", and is kept as
  ``extra.expires_utc`` (every ``ZEXPIRATIONDATE``/``ZCREATIONDATE`` likewise:
  ``expires_utc``, ``created_utc``; ``*_raw`` when the value is not a plausible time).
  ``ZDATAPOINTCOUNT`` -> ``extra.data_points``.
* Cloud-V2.sqlite: ``ZRTLEARNEDVISITMO`` -> places ``kind="learned_visit"`` named after its
  learned place (``ZPLACE`` -> ``ZRTLEARNEDPLACEMO``: custom label, else its map item's name),
  with ``extra.device`` and ``extra.device_info`` (``ZRTDEVICEMO``: class, model, name: the
  device of the Apple ID that recorded the visit, not necessarily this phone);
  ``ZRTLEARNEDPLACEMO`` -> places ``kind="learned"`` at its map item's position
  (``ZMAPITEM`` -> ``ZRTMAPITEMMO.Z_PK``); one whose map item has no position is a reject.
* Learned transitions between significant places, ``ZRTLEARNEDLOCATIONOFINTERESTTRANSITIONMO``
  (origin/destination: ``ZVISITIDENTIFIERORIGIN/DESTINATION`` = the visit's ``ZIDENTIFIER``)
  and ``ZRTLEARNEDTRANSITIONMO`` (``ZORIGIN``/``ZDESTINATION`` = ``ZRTLEARNEDVISITMO.Z_PK``) ->
  events ``kind="learned_transition"``: ``t_utc`` = ``ZSTARTDATE``, ``t_end`` = ``ZSTOPDATE``,
  position = the origin visit's; ``extra``: ``motion_type``
  (``ZPREDOMINANTMOTIONACTIVITYTYPE``), ``motion`` (label, only for the values in
  :data:`MOTION_TYPES`), ``origin``/``destination`` (the visits' record locators).
* ``ZRTVEHICLEEVENTMO`` and ``ZRTVEHICLEEVENTHISTORYMO`` (earlier parked-car positions,
  ``extra.history``) -> events ``kind="parked_car"``, position when valid; ``extra``:
  ``vehicle_id`` (``ZVEHICLEIDENTIFIER``), ``identifier``, ``loc_utc`` (``ZLOCDATE``),
  ``loc_uncertainty_m``, ``user_set``, ``usual_location``, ``location_quality``.
* ``ZRTMAPITEMMO``, ``ZRTADDRESSMO``, ``ZRTDEVICEMO`` rows are lookups, not records.

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
  ZLOCALITY, ZCOUNTRY``); ``ZPREDOMINANTMOTIONACTIVITYTYPE`` 1 walking, 4 driving;
* mac4n6/APOLLO ``modules/routined_cloud_visit_inbound_start.txt`` (commit 060edbe):
  Cloud-V2 ``ZRTLEARNEDVISITMO`` joined to ``ZRTDEVICEMO`` (``ZDEVICE``), ``ZRTLEARNEDPLACEMO``
  (``ZPLACE``), ``ZRTLEARNEDTRANSITIONMO`` (``ZINBOUND``) and ``ZRTMAPITEMMO``
  (``ZRTLEARNEDPLACEMO.ZMAPITEM = ZRTMAPITEMMO.Z_PK``). No real Cloud-V2.sqlite is in the
  corpus; the tests use a generated one with the real model's columns.

Times are Cocoa seconds (:data:`routetrace.timebase.APPLE_EPOCH`), UTC, REAL or INTEGER;
values outside :data:`routetrace.timebase.PLAUSIBLE` are rejected with a reason. No ``> 0``
filters: any latitude/longitude in range is real.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
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
            "ZRTVEHICLEEVENTMO", "ZRTHINTMO",
            # Cloud-V2.sqlite holds only the synced tables (no ZRTCLLOCATIONMO, no ZRTVISITMO)
            "ZRTLEARNEDVISITMO", "ZRTLEARNEDPLACEMO", "ZRTLEARNEDTRANSITIONMO"}
CHUNK = 50_000


def sniff_routined(path: Path, head: bytes) -> bool:
    """A routined database has the CoreRoutine tables (``ZRTCLLOCATIONMO``, ``ZRT...``).

    Parameters
    ----------
    path
        The file; its SQLite schema is read (immutable, nothing written).
    head
        Its first bytes (must open with the SQLite header).

    Returns
    -------
    bool
        Whether at least two of the CoreRoutine marker tables are present (Cache,
        Local or Cloud-V2.sqlite).

    Example
    -------
    >>> import tempfile
    >>> from routetrace.samples.ios_db import write_routined
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = write_routined(Path(tmp) / "Cache.sqlite", {})
    ...     print(sniff_routined(db, db.read_bytes()[:100]))
    True
    """
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

    The visit's fields are those of its latest row: the latest departure row (one with a
    ``ZEXITDATE``) when there is one, else the latest arrival row; latest = highest
    ``ZDETECTIONDATE``, then highest ``Z_PK``. routined writes an arrival row (``ZTYPE`` 1, no
    exit) and later a departure row (``ZTYPE`` 3) whose exit and position estimate supersede it. Added columns: ``pks`` (every
    Z_PK, ascending, joined by '+'), ``rows``, ``conf`` (highest ``ZCONFIDENCE``),
    ``place_conf`` (highest ``ZPLACEINFERENCECONFIDENCE``), ``srcs`` and ``types`` (sorted
    distinct ``ZSOURCE``/``ZTYPE``). A row without a usable ``ZENTRYDATE`` is a visit of its own.
    """
    entry = df["ZENTRYDATE"].to_numpy("float64")
    pk = df["Z_PK"].astype("int64").astype(str).to_numpy()
    key = np.where(np.isnan(entry), "Z_PK=" + pk, entry.astype(str))
    # departure rows (with an exit) after arrival rows whatever their detection dates: a
    # visit some row closes is closed
    df = df.assign(_key=key, _closed=df["ZEXITDATE"].notna()).sort_values(
        ["_closed", "ZDETECTIONDATE", "Z_PK"], na_position="first", kind="stable")
    g = df.groupby("_key", sort=False)

    def distinct(s: pd.Series) -> list[int]:
        return sorted({k for k in map(_int_or_none, s) if k is not None})

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
    return [compact_json({
        "type": _int_or_none(ty), "types": tys, "sources": s, "rows": int(n), "arrival_only": tys == [1],
        "detected_utc": _cocoa_iso(det), "first_detected_utc": _cocoa_iso(det0),
        "data_points": _int_or_none(dp),
        "place_inference_confidence": float(pc) if np.isfinite(pc) else None})
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


def _int_or_none(v: Any) -> int | None:
    """An integer column's value, None for NULL or a value no integer holds (NaN, inf)."""
    try:
        return None if v is None or not np.isfinite(v) else int(v)
    except TypeError:  # text or a blob in a damaged row
        return None


def _time_attr(v: Any) -> dict[str, Any]:
    """A Cocoa time kept as an attribute: ISO UTC, or the raw value when not plausible."""
    if v is None or pd.isna(v):
        return {}
    iso = _cocoa_iso(v)
    return {"utc": iso} if iso is not None else {"raw": float(v)}


@dataclass
class _Lookups:
    """What learned rows point to (lookups, not records): map items by identifier and by Z_PK,
    learned places (Cloud-V2) and devices by Z_PK, learned visits by Z_PK and identifier."""

    names: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    items: dict[int, tuple[Any, Any, float, float, float]] = field(default_factory=dict)
    places: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    devices: dict[int, dict[str, Any]] = field(default_factory=dict)
    visits: dict[str, tuple[str, float, float]] = field(default_factory=dict)


def _read_addresses(con: sqlite3.Connection, tables: set[str], faults: list[tuple[str, str]]) -> dict[int, Any]:
    addr: dict[int, Any] = {}
    if "ZRTADDRESSMO" not in tables:
        return addr
    acol = _cols(con, "ZRTADDRESSMO")
    fld = [c for c in ("ZSUBTHOROUGHFARE", "ZTHOROUGHFARE", "ZLOCALITY", "ZCOUNTRY") if c in acol]
    if fld:
        for rows in read_rows(con, "ZRTADDRESSMO", f"Z_PK, {', '.join(fld)}", key="Z_PK",
                              batch=50_000, faults=faults):
            for row in rows:
                addr[row[0]] = ", ".join(str(v) for v in row[1:] if v)
    return addr


def _read_lookups(con: sqlite3.Connection, tables: set[str], rejects: list[tuple[str, str]]) -> tuple[_Lookups, int]:
    """The map items (names, addresses, positions), learned places and devices learned rows
    name. Read past damaged pages: an unreadable key range is one reject, and the rows that
    name its items are kept without them."""
    lk = _Lookups()
    faults: list[tuple[str, str]] = []
    if "ZRTMAPITEMMO" in tables:
        mi = _read_columns(con, "ZRTMAPITEMMO", ["Z_PK", "ZIDENTIFIER", "ZNAME", "ZADDRESS", "ZLATITUDE",
                                                 "ZLONGITUDE", "ZUNCERTAINTY"], faults)
        addr = _read_addresses(con, tables, faults)
        # the address key is an integer; text in it (a damaged row) means no address
        akeys = pd.to_numeric(mi["ZADDRESS"], errors="coerce")
        pos = mi[["ZLATITUDE", "ZLONGITUDE", "ZUNCERTAINTY"]].apply(pd.to_numeric, errors="coerce")
        for pk, ident, name, a, (la, lo, un) in zip(mi["Z_PK"], mi["ZIDENTIFIER"], mi["ZNAME"], akeys,
                                                    pos.itertuples(index=False), strict=True):
            entry = (name, addr.get(int(a)) if np.isfinite(a) else None)
            key = _ident(ident)
            if key is not None:
                lk.names[key] = entry
            lk.items[int(pk)] = (*entry, la, lo, un)
    if "ZRTDEVICEMO" in tables:
        dv = _read_columns(con, "ZRTDEVICEMO", ["Z_PK", "ZDEVICECLASS", "ZDEVICEMODEL", "ZDEVICENAME"], faults)
        for pk, cls, model, name in dv.itertuples(index=False):
            lk.devices[int(pk)] = {"class": cls, "model": model, "name": name}
    rejects.extend((rec, f"{why}; learned places that name these map items (or devices) are kept "
                         "without their name or address") for rec, why in faults)
    return lk, len(faults)


@dataclass(frozen=True)
class _Spec:
    """How one learned table becomes places: its position, time and attribute columns."""

    table: str
    kind: str
    t0: str
    t1: str | None  # None: the table has no end of presence (an expiry is not one)
    unc: tuple[str, ...] = ("ZLOCATIONHORIZONTALUNCERTAINTY", "ZLOCATIONUNCERTAINTY")
    times: tuple[tuple[str, str], ...] = ()  # extra key -> Cocoa time column kept as an attribute
    ints: tuple[tuple[str, str], ...] = ()  # extra key -> integer column


_LEARNED = (
    _Spec("ZRTLEARNEDLOCATIONOFINTERESTMO", "learned", "ZPLACECREATIONDATE", None,
          times=(("expires", "ZPLACEEXPIRATIONDATE"),),
          ints=(("place_type", "ZPLACETYPE"), ("data_points", "ZDATAPOINTCOUNT"))),
    _Spec("ZRTLEARNEDLOCATIONOFINTERESTVISITMO", "learned_visit", "ZENTRYDATE", "ZEXITDATE",
          times=(("created", "ZCREATIONDATE"), ("expires", "ZEXPIRATIONDATE")),
          ints=(("loi", "ZLOCATIONOFINTEREST"), ("data_points", "ZDATAPOINTCOUNT"))),
    _Spec("ZRTLEARNEDVISITMO", "learned_visit", "ZENTRYDATE", "ZEXITDATE", unc=("ZLOCATIONUNCERTAINTY",),
          times=(("created", "ZCREATIONDATE"), ("expires", "ZEXPIRATIONDATE")),
          ints=(("place", "ZPLACE"), ("device", "ZDEVICE"), ("data_points", "ZDATAPOINTCOUNT"),
                ("inbound", "ZINBOUND"), ("outbound", "ZOUTBOUND"))),
    # Cloud-V2: a learned place has no position of its own; it is its map item's
    _Spec("ZRTLEARNEDPLACEMO", "learned", "ZCREATIONDATE", None, unc=("ZUNCERTAINTY",),
          times=(("expires", "ZEXPIRATIONDATE"),),
          ints=(("place_type", "ZTYPE"), ("device", "ZDEVICE"), ("map_item", "ZMAPITEM"))),
)


def _learned_frame(con: sqlite3.Connection, spec: _Spec, lk: _Lookups,
                   rejects: list[tuple[str, str]]) -> tuple[pd.DataFrame, int]:
    """A learned table's rows with uniform columns: lat, lon, unc, name and address
    (``ZRTLEARNEDPLACEMO`` takes them from its map item), plus the spec's columns."""
    tcols = _cols(con, spec.table)
    unc = next((c for c in spec.unc if c in tcols), spec.unc[0])
    label = "ZCUSTOMLABEL" if spec.table == "ZRTLEARNEDPLACEMO" else "ZPLACECUSTOMLABEL"
    own = ["Z_PK", "ZLOCATIONLATITUDE", "ZLOCATIONLONGITUDE", unc, spec.t0, "ZCONFIDENCE", label,
           "ZPLACEMAPITEMIDENTIFIER", "ZIDENTIFIER", "ZMAPITEM",
           *[c for _, c in spec.times], *[c for _, c in spec.ints]]
    if spec.t1:
        own.append(spec.t1)
    cols = list(dict.fromkeys(own))
    df, repeated = _records(con, spec.table, cols, rejects,
                            text=(label, "ZPLACEMAPITEMIDENTIFIER", "ZIDENTIFIER"))
    if spec.table == "ZRTLEARNEDPLACEMO":
        item = [lk.items.get(_int_or_none(k) or -1) for k in df["ZMAPITEM"]]
        nm = [(x[0], x[1]) if x else (None, None) for x in item]
        df["ZLOCATIONLATITUDE"] = [x[2] if x else np.nan for x in item]
        df["ZLOCATIONLONGITUDE"] = [x[3] if x else np.nan for x in item]
        df[unc] = [x[4] if x else np.nan for x in item]
    else:
        nm = [lk.names.get(_ident(k) or "", (None, None)) for k in df["ZPLACEMAPITEMIDENTIFIER"]]
    if spec.table == "ZRTLEARNEDVISITMO":  # named after its learned place (Cloud-V2)
        nm = [lk.places.get(_int_or_none(p) or -1, (None, None)) for p in df["ZPLACE"]]
    df["_name"] = [lb if isinstance(lb, str) and lb else x[0] for lb, x in zip(df[label], nm, strict=True)]
    df["_address"] = [x[1] for x in nm]
    df["_unc"] = pd.to_numeric(df[unc], errors="coerce")
    return df, repeated


def _learned_extra(df: pd.DataFrame, spec: _Spec, lk: _Lookups) -> list[str]:
    out = []
    for _, row in df.iterrows():
        e: dict[str, Any] = {k: _int_or_none(row[c]) for k, c in spec.ints}
        for k, c in spec.times:
            for suffix, v in _time_attr(row[c]).items():
                e[f"{k}_{suffix}"] = v
        dev = e.get("device")
        if dev is not None and dev in lk.devices:
            e["device_info"] = {k: v for k, v in lk.devices[dev].items() if isinstance(v, str)}
        out.append(compact_json(e))
    return out


def _read_learned_table(con: sqlite3.Connection, spec: _Spec, lk: _Lookups,
                        rejects: list[tuple[str, str]]) -> tuple[pd.DataFrame, int]:
    """One learned table as places; the positions of its rows go into ``lk.visits``."""
    df, repeated = _learned_frame(con, spec, lk, rejects)
    if df.empty:
        return pd.DataFrame(), repeated
    rec = f"{spec.table}/Z_PK=" + df["Z_PK"].astype("string")
    t0, bad0 = _times(df, spec.t0, spec.table, rec, rejects, required=False)
    if spec.t1:
        t1, bad1 = _times(df, spec.t1, spec.table, rec, rejects, required=False)
    else:
        t1, bad1 = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]"), np.zeros(len(df), bool)
    lat = pd.to_numeric(df["ZLOCATIONLATITUDE"], errors="coerce").to_numpy("float64")
    lon = pd.to_numeric(df["ZLOCATIONLONGITUDE"], errors="coerce").to_numpy("float64")
    badp = _bad_latlon(lat, lon)
    shown = f"{spec.t0}/{spec.t1}" if spec.t1 else spec.t0
    _reject(rejects, rec, bad0 | bad1, f"{shown} is not a plausible Cocoa time")
    why = ("no position: its map item (ZMAPITEM) has no latitude/longitude" if spec.table == "ZRTLEARNEDPLACEMO"
           else "latitude/longitude missing or out of range")
    _reject(rejects, rec, badp & ~(bad0 | bad1), why)
    keep = ~(bad0 | bad1 | badp)
    for r, pk, ident, la, lo in zip(rec[keep], df["Z_PK"][keep], df["ZIDENTIFIER"][keep], lat[keep], lon[keep],
                                    strict=True):
        lk.visits[f"{spec.table}:pk:{int(pk)}"] = (str(r), float(la), float(lo))
        if _ident(ident) is not None:
            lk.visits[f"{spec.table}:id:{_ident(ident)}"] = (str(r), float(la), float(lo))
    p = pd.DataFrame({
        "record": rec, "kind": spec.kind, "lat": lat, "lon": lon, "name": df["_name"],
        "address": df["_address"], "radius_m": df["_unc"].astype("float64"),
        "t_start": t0, "t_end": t1, "t_precision": "instant",
        "confidence": pd.to_numeric(df["ZCONFIDENCE"], errors="coerce").astype("float64"),
        "flags": "", "extra": _learned_extra(df, spec, lk),
    })[keep]
    return p, repeated + len(df)


def _learned_place_names(con: sqlite3.Connection, tables: set[str], lk: _Lookups) -> None:
    """Cloud-V2 learned places (custom label, else map item name) by Z_PK, for their visits."""
    if "ZRTLEARNEDPLACEMO" not in tables:
        return
    faults: list[tuple[str, str]] = []  # the table's own read (a record read) reports them
    lp = _read_columns(con, "ZRTLEARNEDPLACEMO", ["Z_PK", "ZCUSTOMLABEL", "ZMAPITEM"], faults)
    for pk, label, item in zip(lp["Z_PK"], lp["ZCUSTOMLABEL"], pd.to_numeric(lp["ZMAPITEM"], errors="coerce"),
                               strict=True):
        x = lk.items.get(int(item)) if np.isfinite(item) else None
        name = label if isinstance(label, str) and label else (x[0] if x else None)
        lk.places[int(pk)] = (name, x[1] if x else None)


def _read_learned(con: sqlite3.Connection, tables: set[str], lk: _Lookups,
                  rejects: list[tuple[str, str]]) -> tuple[list[pd.DataFrame], int]:
    """Learned places and learned visits (Local.sqlite, Cloud-V2.sqlite) as places."""
    _learned_place_names(con, tables, lk)
    places: list[pd.DataFrame] = []
    n = 0
    for spec in _LEARNED:
        if spec.table in tables:
            p, k = _read_learned_table(con, spec, lk, rejects)
            places.append(p)
            n += k
    return places, n


#: ``ZPREDOMINANTMOTIONACTIVITYTYPE`` labels stated by a public source (abrignoni/iLEAPP
#: ``scripts/artifacts/appleMapsTrips.py``, commit 5a7c94a: 1 walking, 4 driving); other
#: values are kept as the number only.
MOTION_TYPES = {1: "walking", 4: "driving"}

#: transition table -> (origin column, destination column, visit table they point to, how)
_TRANSITIONS = {
    "ZRTLEARNEDLOCATIONOFINTERESTTRANSITIONMO": ("ZVISITIDENTIFIERORIGIN", "ZVISITIDENTIFIERDESTINATION",
                                                 "ZRTLEARNEDLOCATIONOFINTERESTVISITMO", "identifier"),
    "ZRTLEARNEDTRANSITIONMO": ("ZORIGIN", "ZDESTINATION", "ZRTLEARNEDVISITMO", "pk"),
}


def _visit_ref(v: Any, table: str, how: str, lk: _Lookups) -> tuple[str, float, float] | None:
    if how == "pk":
        return lk.visits.get(f"{table}:pk:{_int_or_none(v)}")
    key = _ident(v)
    return lk.visits.get(f"{table}:id:{key}") if key is not None else None


def _read_transitions(con: sqlite3.Connection, tables: set[str], lk: _Lookups,
                      rejects: list[tuple[str, str]]) -> tuple[list[pd.DataFrame], int]:
    """Learned transitions between significant places -> events ``kind="learned_transition"``:
    ``t_utc`` = ``ZSTARTDATE``, ``t_end`` = ``ZSTOPDATE``, position = the origin visit's."""
    events: list[pd.DataFrame] = []
    n = 0
    for table, (c_from, c_to, vtable, how) in _TRANSITIONS.items():
        if table not in tables:
            continue
        cols = ["Z_PK", "ZSTARTDATE", "ZSTOPDATE", "ZPREDOMINANTMOTIONACTIVITYTYPE", c_from, c_to,
                "ZCREATIONDATE", "ZEXPIRATIONDATE", "ZLOCATIONOFINTEREST", "ZDEVICE"]
        df, repeated = _records(con, table, cols, rejects, text=(c_from, c_to) if how == "identifier" else ())
        n += repeated + len(df)
        if df.empty:
            continue
        rec = f"{table}/Z_PK=" + df["Z_PK"].astype("string")
        t0, bad0 = _times(df, "ZSTARTDATE", table, rec, rejects, required=True)
        t1, bad1 = _times(df, "ZSTOPDATE", table, rec, rejects, required=False)
        _reject(rejects, rec, bad0, "ZSTARTDATE missing or not a plausible Cocoa time")
        _reject(rejects, rec, bad1 & ~bad0, "ZSTOPDATE is not a plausible Cocoa time")
        origin = [_visit_ref(v, vtable, how, lk) for v in df[c_from]]
        dest = [_visit_ref(v, vtable, how, lk) for v in df[c_to]]
        extra = []
        for i, (mt, o, d) in enumerate(zip(df["ZPREDOMINANTMOTIONACTIVITYTYPE"], origin, dest, strict=True)):
            e: dict[str, Any] = {"motion_type": _int_or_none(mt), "motion": MOTION_TYPES.get(_int_or_none(mt) or -1),
                                 "origin": o[0] if o else None, "destination": d[0] if d else None,
                                 "loi": _int_or_none(df["ZLOCATIONOFINTEREST"].iloc[i]),
                                 "device": _int_or_none(df["ZDEVICE"].iloc[i])}
            for k, c in (("created", "ZCREATIONDATE"), ("expires", "ZEXPIRATIONDATE")):
                e.update({f"{k}_{s}": v for s, v in _time_attr(df[c].iloc[i]).items()})
            extra.append(compact_json(e))
        events.append(pd.DataFrame({
            "record": rec, "t_utc": t0, "t_end": t1, "kind": "learned_transition",
            "lat": [o[1] if o else np.nan for o in origin], "lon": [o[2] if o else np.nan for o in origin],
            "flags": "", "extra": extra})[~(bad0 | bad1)])
    return events, n


#: vehicle table -> its extra columns (key -> column); both become events ``kind="parked_car"``
_VEHICLES = {
    "ZRTVEHICLEEVENTMO": (("vehicle_id", "ZVEHICLEIDENTIFIER"), ("identifier", "ZIDENTIFIER")),
    "ZRTVEHICLEEVENTHISTORYMO": (("identifier", "ZIDENTIFIER"),),
}


def _read_vehicles(con: sqlite3.Connection, tables: set[str],
                   rejects: list[tuple[str, str]]) -> tuple[list[pd.DataFrame], int]:
    """Parked-car events (``ZRTVEHICLEEVENTMO``) and their history (``ZRTVEHICLEEVENTHISTORYMO``,
    earlier parked-car positions) -> events ``kind="parked_car"``; the position may be missing."""
    events: list[pd.DataFrame] = []
    n = 0
    for table, texts in _VEHICLES.items():
        if table not in tables:
            continue
        tcols = [c for _, c in texts]
        df, repeated = _records(con, table, ["Z_PK", "ZDATE", "ZLOCDATE", "ZLOCLATITUDE", "ZLOCLONGITUDE",
                                             "ZLOCUNCERTAINTY", "ZNOTES", "ZUSERSETLOCATION", "ZUSUALLOCATION",
                                             "ZLOCATIONQUALITY", *tcols], rejects, text=("ZNOTES", *tcols))
        n += repeated + len(df)
        if df.empty:
            continue
        rec = f"{table}/Z_PK=" + df["Z_PK"].astype("string")
        t, badt = _times(df, "ZDATE", table, rec, rejects, required=True)
        lat = df["ZLOCLATITUDE"].to_numpy("float64")
        lon = df["ZLOCLONGITUDE"].to_numpy("float64")
        badp = _bad_latlon(lat, lon)
        _reject(rejects, rec, badt, "ZDATE missing or not a plausible Cocoa time")
        extra = []
        for i in range(len(df)):
            row = df.iloc[i]
            e: dict[str, Any] = {"loc_uncertainty_m": row["ZLOCUNCERTAINTY"],
                                 "user_set": _int_or_none(row["ZUSERSETLOCATION"]),
                                 "usual_location": _int_or_none(row["ZUSUALLOCATION"]),
                                 "location_quality": _int_or_none(row["ZLOCATIONQUALITY"]),
                                 "history": table == "ZRTVEHICLEEVENTHISTORYMO" or None}
            e.update({k: row[c] for k, c in texts if isinstance(row[c], str)})
            e.update({f"loc_{s}": v for s, v in _time_attr(row["ZLOCDATE"]).items()})
            extra.append(compact_json(e))
        events.append(pd.DataFrame({"record": rec, "t_utc": t, "kind": "parked_car", "text": df["ZNOTES"],
                                    "lat": np.where(badp, np.nan, lat), "lon": np.where(badp, np.nan, lon),
                                    "flags": "", "extra": extra})[~badt])
    return events, n


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


def _read_learned_groups(con: sqlite3.Connection, tables: set[str], rejects: list[tuple[str, str]],
                         places: list[pd.DataFrame], events: list[pd.DataFrame]) -> int:
    """The learned tables in three groups (learned places and visits, transitions, vehicle
    events), each costing one reject when SQLite finds its pages damaged; returns records read."""
    lk = _Lookups()
    got = _table(rejects, "map items and devices (ZRTMAPITEMMO, ZRTADDRESSMO, ZRTDEVICEMO)",
                 lambda c, r: _read_lookups(c, tables, r), con)
    n = 1 if got is None else got[1]
    lk = lk if got is None else got[0]
    groups: tuple[tuple[str, Callable[..., Any], list[pd.DataFrame]], ...] = (
        ("learned places (ZRTLEARNED*MO)", lambda c, r: _read_learned(c, tables, lk, r), places),
        ("learned transitions (ZRTLEARNED*TRANSITIONMO)", lambda c, r: _read_transitions(c, tables, lk, r), events),
        ("vehicle events (ZRTVEHICLEEVENT*MO)", lambda c, r: _read_vehicles(c, tables, r), events),
    )
    for name, read, into in groups:
        got = _table(rejects, name, read, con)
        if got is None:
            n += 1  # the group's one reject
        else:
            into.extend(got[0])
            n += got[1]
    return n


@register(LoaderSpec(
    name="ios-routined",
    description="iOS com.apple.routined Cache.sqlite / Local.sqlite / Cloud-V2.sqlite: fixes, visits, "
                "hints, learned places and visits, transitions, parked-car events",
    sniff=sniff_routined,
    produces=("fixes", "places", "events"),
))
def load_routined(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a routined Cache.sqlite, Local.sqlite or Cloud-V2.sqlite (read from a private copy,
    WAL applied).

    A record is a row of a location table (``<TABLE>/Z_PK=<n>``), except visits: all
    ``ZRTVISITMO`` rows with one ``ZENTRYDATE`` are one visit, one record
    (``ZRTVISITMO/Z_PK=10+11``). Rows with an implausible time or position, repeated keys
    and unreadable page ranges of a damaged table are rejects with the reason (see the
    module doc for every table).

    Parameters
    ----------
    path
        The database (read from a private copy with its ``-wal``).
    ctx
        The load context (source identity, subject) built by
        :func:`routetrace.loaders.load`; no ``tz``: times are Cocoa seconds UTC.

    Returns
    -------
    LoadResult
        ``fixes`` (CoreLocation positions, hints), ``places`` (visits, learned places
        and visits), ``events`` (transitions, parked car) and ``rejects``; records read =
        produced + rejected.

    Example
    -------
    Two fused fixes (the first with speed -1, "invalid") and one visit written as an
    arrival row and a departure row:

    >>> import tempfile
    >>> import pandas as pd
    >>> from routetrace.loaders import load
    >>> from routetrace.samples.ios_db import cocoa, write_routined
    >>> t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    >>> fixes = pd.DataFrame({"Z_PK": [1, 2], "ZLATITUDE": [51.0, 51.001], "ZLONGITUDE": 3.87,
    ...                       "ZHORIZONTALACCURACY": 5.0, "ZSPEED": [-1.0, 3.5],
    ...                       "ZTIMESTAMP": cocoa([t0, t0 + pd.Timedelta("1min")])})
    >>> visit = pd.DataFrame({"Z_PK": [10, 11], "ZTYPE": [1, 3], "ZCONFIDENCE": [0.0, 1.0],
    ...                       "ZENTRYDATE": cocoa([t0, t0]) + 120,
    ...                       "ZEXITDATE": [float("nan"), cocoa([t0])[0] + 1800],
    ...                       "ZLOCATIONLATITUDE": 51.0, "ZLOCATIONLONGITUDE": 3.87,
    ...                       "ZLOCATIONUNCERTAINTY": 30.0})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = write_routined(Path(tmp) / "Cache.sqlite",
    ...                         {"ZRTCLLOCATIONMO": fixes, "ZRTVISITMO": visit})
    ...     res = load(db)
    >>> res.fixes[["t_utc", "speed_mps", "flags", "record"]]
                          t_utc  speed_mps        flags                  record
    0 2025-10-24 10:00:00+00:00        NaN  sentinel_na  ZRTCLLOCATIONMO/Z_PK=1
    1 2025-10-24 10:01:00+00:00        3.5               ZRTCLLOCATIONMO/Z_PK=2
    >>> res.places[["t_start", "t_end", "record"]]
                        t_start                     t_end                 record
    0 2025-10-24 10:02:00+00:00 2025-10-24 10:30:00+00:00  ZRTVISITMO/Z_PK=10+11
    >>> res.records_read, len(res.rejects)
    (3, 0)
    """
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
        n += _read_learned_groups(con, tables, rejects, places, events)
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
