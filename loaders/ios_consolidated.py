"""iOS 4 ``locationd`` consolidated.db: the device's harvested fixes, and (separately) AP/cell caches.

Two kinds of table sit side by side and must never be confused:

* Harvest tables (``LocationHarvest``, ``WifiLocationHarvest``, ``CellLocationHarvest``,
  ``CdmaCellLocationHarvest``) and ``Location`` hold the DEVICE's own positions (the fix
  taken while it saw an AP or cell) -> ``fixes`` (``fix_kind`` "gps" for harvests,
  "unknown" for ``Location``). The AP MAC / cell ids seen are kept in ``extra``.
* ``WifiLocation``, ``CellLocation``, ``CellLocationLocal``, ``CdmaCellLocation``,
  ``CdmaCellLocationLocal`` are positions of access points and cell towers downloaded from
  Apple in batches (thousands of rows share one timestamp): they say where an AP is, not
  where the phone was. They go to ``LoadResult.extra_tables["cache_positions"]`` (columns
  ``record, table, key, t_utc, lat, lon, h_acc_m, confidence, flags``; flag
  ``cache_not_device``), never to ``fixes``.

Record locator: ``<Table>/rowid=<n>``. ``Timestamp`` is Cocoa seconds UTC. -1 (accuracy,
speed, course, altitude accuracy) = unknown -> NA with flag ``sentinel_na``. A row with
latitude = longitude = 0 is Apple's "no position" placeholder and is rejected with that
reason (the real 2011 sample has 209: 207 Wi-Fi + 2 cell). Other tables (``Fences``,
``CompassCalibration``, R*Tree ``*Boxes``, ``*Counts``, ``TableInfo``) are not read.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema, timebase
from ..evidence import invalid_text_note, private_sqlite, read_frame
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

__all__ = ["load_consolidated", "sniff_consolidated"]

DEVICE_TABLES = {"LocationHarvest": "gps", "WifiLocationHarvest": "gps",
                 "CellLocationHarvest": "gps", "CdmaCellLocationHarvest": "gps",
                 "Location": "unknown"}
CACHE_TABLES = ("WifiLocation", "CellLocation", "CellLocationLocal", "CdmaCellLocation",
                "CdmaCellLocationLocal")
_KEYS = ("MAC", "MCC", "MNC", "LAC", "CI", "SID", "NID", "BSID", "BundleId", "RSSI", "Channel",
         "Operator", "TripId", "Context")


def sniff_consolidated(path: Path, head: bytes) -> bool:
    """consolidated.db has ``WifiLocation`` and ``CellLocation`` and ``TableInfo``.

    Parameters
    ----------
    path
        The file; its SQLite schema is read (immutable, nothing written).
    head
        Its first bytes (must open with the SQLite header).

    Returns
    -------
    bool
        Whether the database has the three ``locationd`` tables.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import example_consolidated
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = example_consolidated(Path(tmp) / "consolidated.db", n_fixes=1)
    ...     print(sniff_consolidated(db, db.read_bytes()[:100]))
    True
    """
    if not head.startswith(b"SQLite format 3\x00"):
        return False
    return {"WifiLocation", "CellLocation", "TableInfo"} <= sqlite_tables(path)


def _read(con: sqlite3.Connection, table: str, rejects: list[tuple[str, str]]) -> tuple[pd.DataFrame, int]:
    """The table's rows (rowid order) and how many were read, past damaged pages: a rowid
    range that cannot be read is one reject (``WifiLocation/rowid 41..87``), a rowid the scan
    repeats (a damaged b-tree) is a reject naming its scan row, the first copy is kept."""
    cols = [str(r[1]) for r in con.execute(f'PRAGMA table_info("{table}")')]
    keys = [k for k in _KEYS if k in cols]
    want = ["Timestamp", "Latitude", "Longitude", "HorizontalAccuracy", "Altitude",
            "VerticalAccuracy", "Speed", "Course", "Confidence"]
    sel = ", ".join([f'"{c}"' if c in cols else f"NULL AS {c}" for c in want] + [f'"{k}"' for k in keys])
    faults: list[tuple[str, str]] = []  # unreadable rowid ranges of a damaged page: one reject each
    df = read_frame(con, table, f"rowid, {sel}", ["rid", *want, *keys], key="rowid", faults=faults)
    rejects.extend(faults)
    n_read = len(df) + len(faults)
    df, repeated = split_repeated(df, "rid", lambda k, i: f"{table}/rowid={k} (scan row {i})",
                                  "rowid repeated in the table scan (damaged file)")
    rejects.extend(repeated)
    df["record"] = f"{table}/rowid=" + df["rid"].astype("string")
    df["key"] = pd.Series([compact_json(dict(zip(keys, row, strict=True)))
                           for row in df[keys].itertuples(index=False)] if keys else ["{}"] * len(df),
                          index=df.index, dtype="string")
    return df, n_read


def _prepare(df: pd.DataFrame, rejects: list[tuple[str, str]]) -> pd.DataFrame:
    t = timebase.from_epoch(pd.to_numeric(df["Timestamp"], errors="coerce"), epoch=timebase.APPLE_EPOCH)
    lat = pd.to_numeric(df["Latitude"], errors="coerce").to_numpy("float64")
    lon = pd.to_numeric(df["Longitude"], errors="coerce").to_numpy("float64")
    zero = (lat == 0) & (lon == 0)
    badp = ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180))
    badt = t.isna().to_numpy()
    for r in df["record"][zero]:
        rejects.append((str(r), "latitude = longitude = 0: placeholder for 'no position'"))
    for r in df["record"][badp & ~zero]:
        rejects.append((str(r), "latitude/longitude missing or out of range"))
    for r in df["record"][badt & ~zero & ~badp]:
        rejects.append((str(r), "Timestamp is not a plausible Cocoa time (1980-2100)"))
    out = pd.DataFrame({"record": df["record"], "t_utc": t, "lat": lat, "lon": lon, "key": df["key"]})
    sentinel = np.zeros(len(df), dtype=bool)
    for src, dst in (("HorizontalAccuracy", "h_acc_m"), ("VerticalAccuracy", "v_acc_m"),
                     ("Speed", "speed_mps"), ("Course", "course_deg")):
        v = pd.to_numeric(df[src], errors="coerce").astype("float64")
        neg = (v < 0).to_numpy()
        sentinel |= neg
        out[dst] = v.mask(v < 0)
    out["alt_m"] = pd.to_numeric(df["Altitude"], errors="coerce").astype("float64")
    out["confidence"] = pd.to_numeric(df["Confidence"], errors="coerce").astype("float64")
    out["flags"] = schema.add_flag(pd.Series("", index=df.index, dtype="string"), sentinel,
                                   "sentinel_na").to_numpy()
    return out[~(zero | badp | badt)]


@register(LoaderSpec(
    name="ios-consolidated",
    description="iOS 4 locationd consolidated.db: harvested device fixes; AP/cell caches apart",
    sniff=sniff_consolidated,
    produces=("fixes",),
))
def load_consolidated(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load consolidated.db. Harvest rows -> fixes; AP/cell caches -> extra table only.

    Every row of a harvest table, ``Location`` and the AP/cell cache tables is one record,
    ``<Table>/rowid=<n>``: a device fix, a ``cache_positions`` row (where an access point
    or cell is, not where the phone was), or a reject (0,0 placeholder, unusable time,
    repeated key of a damaged b-tree).

    Parameters
    ----------
    path
        The database (read from a private copy with its ``-wal``/``-journal``).
    ctx
        The load context (source identity, subject) built by
        :func:`routetrace.loaders.load`; no ``tz``: ``Timestamp`` is Cocoa seconds UTC.

    Returns
    -------
    LoadResult
        ``fixes``, ``rejects`` and ``extra_tables["cache_positions"]``; rows read =
        fixes + cache rows + rejects.

    Example
    -------
    >>> import sqlite3, tempfile
    >>> from routetrace.loaders import load
    >>> from routetrace.testing import example_consolidated
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = example_consolidated(Path(tmp) / "consolidated.db", n_fixes=2)
    ...     con = sqlite3.connect(db)
    ...     _ = con.execute("INSERT INTO LocationHarvest VALUES (325072900, 0, 0, -1, -1, -1)")
    ...     _ = con.execute("INSERT INTO WifiLocation VALUES ('0:1:2:3:4:5', 325072800, 51, 3.7)")
    ...     con.commit()
    ...     con.close()
    ...     res = load(db)
    >>> res.fixes[["t_utc", "lat", "h_acc_m", "record"]]
                          t_utc       lat  h_acc_m                   record
    0 2011-04-21 10:00:00+00:00  51.00000      5.0  LocationHarvest/rowid=1
    1 2011-04-21 10:00:10+00:00  51.00001      5.0  LocationHarvest/rowid=2
    >>> res.rejects[["record", "reason"]].values.tolist()
    [['LocationHarvest/rowid=3', "latitude = longitude = 0: placeholder for 'no position'"]]
    >>> res.extra_tables["cache_positions"][["record", "flags"]]
                     record             flags
    0  WifiLocation/rowid=1  cache_not_device
    >>> res.records_read
    4
    """
    rejects: list[tuple[str, str]] = []
    fixes: list[pd.DataFrame] = []
    caches: list[pd.DataFrame] = []
    n = 0
    with private_sqlite(path) as con:
        tables = {str(r[0]) for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, kind in DEVICE_TABLES.items():
            if table in tables:
                raw, k = _read(con, table, rejects)
                n += k
                f = _prepare(raw, rejects)
                f["fix_kind"] = kind
                f["extra"] = '{"seen":' + f["key"] + ',"table":"' + table + '"}'
                fixes.append(f.drop(columns=["key", "confidence"]))
        for table in CACHE_TABLES:
            if table in tables:
                raw, k = _read(con, table, rejects)
                n += k
                c = _prepare(raw, rejects)
                c.insert(1, "table", table)
                c["flags"] = schema.add_flag(c["flags"].astype("string"), np.ones(len(c), bool),
                                             "cache_not_device").to_numpy()
                caches.append(c[["record", "table", "key", "t_utc", "lat", "lon", "h_acc_m",
                                 "confidence", "flags"]])
    fx = [f for f in fixes if len(f)]
    cache = (pd.concat([c for c in caches if len(c)], ignore_index=True)
             if any(len(c) for c in caches) else pd.DataFrame(
                 columns=["record", "table", "key", "t_utc", "lat", "lon", "h_acc_m", "confidence", "flags"]))
    if len(cache):
        cache["source_id"] = ctx.source_id
    return ctx.finish(
        records_read=n,
        time_basis="Timestamp: Cocoa seconds since 2001-01-01T00:00:00Z (UTC)" + invalid_text_note(con),
        fixes=pd.concat(fx, ignore_index=True) if fx else None,
        rejects=rejects, extra_tables={"cache_positions": cache},
        companion_hashes=companion_hashes(path), default_subject="iphone",
    )
