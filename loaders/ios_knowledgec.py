"""iOS / macOS CoreDuet ``knowledgeC.db``: location-bearing ``ZOBJECT`` rows.

A record is a ``ZOBJECT`` row whose ``ZSTRUCTUREDMETADATA`` carries a position in
``Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__LATITUDE/__LONGITUDE`` (a place an app showed
or the user acted on, e.g. a Maps destination; name/address in the same row) or
``Z_DKLOCATIONMETADATAKEY__LATITUDE/__LONGITUDE``. Such a position is where the activity
pointed, not necessarily where the phone was, so it becomes a place ``kind="app_location"``
(``t_start``/``t_end`` = ``ZSTARTDATE``/``ZENDDATE``, Cocoa seconds UTC; ``text`` = stream
name and bundle id) and never a fix. Rows without a position are not location records and
are not counted. A database with no location rows (the macOS 10.14 sample) gives an empty
result with ``records_read`` 0: a reported fact, not an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import timebase
from ..errors import CorruptSource
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

__all__ = ["load_knowledgec", "sniff_knowledgec"]

_A = "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__"
_L = "Z_DKLOCATIONMETADATAKEY__"


def sniff_knowledgec(path: Path, head: bytes) -> bool:
    """knowledgeC has ``ZOBJECT``, ``ZSTRUCTUREDMETADATA`` and ``ZSOURCE``.

    Parameters
    ----------
    path
        The file; its SQLite schema is read (immutable, nothing written).
    head
        Its first bytes (must open with the SQLite header).

    Returns
    -------
    bool
        Whether the database has the three CoreDuet tables.

    Example
    -------
    >>> import sqlite3, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = Path(tmp) / "knowledgeC.db"
    ...     con = sqlite3.connect(db)
    ...     for t in ("ZOBJECT", "ZSTRUCTUREDMETADATA", "ZSOURCE"):
    ...         _ = con.execute(f"CREATE TABLE {t} (Z_PK INTEGER PRIMARY KEY)")
    ...     con.close()
    ...     print(sniff_knowledgec(db, db.read_bytes()[:100]))
    True
    """
    if not head.startswith(b"SQLite format 3\x00"):
        return False
    return {"ZOBJECT", "ZSTRUCTUREDMETADATA", "ZSOURCE"} <= sqlite_tables(path)


@register(LoaderSpec(
    name="ios-knowledgec",
    description="iOS/macOS knowledgeC.db: app-activity and location metadata positions (places)",
    sniff=sniff_knowledgec,
    produces=("places",),
))
def load_knowledgec(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load the location-bearing rows of knowledgeC.db as places.

    Every ``ZOBJECT`` row whose metadata has a latitude/longitude column value is one
    record, ``ZOBJECT/Z_PK=<n>``: a place ``kind="app_location"`` (where the activity
    pointed, never a fix), or a reject when the position is missing, out of range or
    0,0. Rows without any position are not location records and are not counted.

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
        ``places`` and ``rejects``; location rows read = places + rejects.

    Example
    -------
    >>> import sqlite3, tempfile
    >>> from routetrace.loaders import load
    >>> key = "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__"
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = Path(tmp) / "knowledgeC.db"
    ...     con = sqlite3.connect(db)
    ...     _ = con.execute("CREATE TABLE ZOBJECT (Z_PK INTEGER PRIMARY KEY, ZSTREAMNAME, "
    ...                     "ZSTARTDATE, ZENDDATE, ZSTRUCTUREDMETADATA, ZSOURCE)")
    ...     _ = con.execute(f"CREATE TABLE ZSTRUCTUREDMETADATA (Z_PK INTEGER PRIMARY KEY, "
    ...                     f"{key}LATITUDE, {key}LONGITUDE, {key}DISPLAYNAME)")
    ...     _ = con.execute("CREATE TABLE ZSOURCE (Z_PK INTEGER PRIMARY KEY, ZBUNDLEID)")
    ...     objects = [(1, 783e6, 783e6 + 30, 1), (2, 783e6 + 60, 783e6 + 90, 2)]
    ...     _ = con.executemany("INSERT INTO ZOBJECT VALUES (?, '/app/locationActivity', ?, ?, ?, "
    ...                         "NULL)", objects)
    ...     _ = con.executemany("INSERT INTO ZSTRUCTUREDMETADATA VALUES (?, ?, ?, ?)",
    ...                         [(1, 51.0, 3.87, "Car park"), (2, 0.0, 0.0, "x")])
    ...     con.commit()
    ...     con.close()
    ...     res = load(db)
    >>> res.places[["kind", "name", "t_start", "lat", "record"]]
               kind      name                   t_start   lat          record
    0  app_location  Car park 2025-10-24 12:00:00+00:00  51.0  ZOBJECT/Z_PK=1
    >>> res.records_read, res.rejects[["record", "reason"]].values.tolist()
    (2, [['ZOBJECT/Z_PK=2', 'latitude/longitude missing, out of range or 0,0']])
    """
    with private_sqlite(path) as con:
        mcols = {str(r[1]) for r in con.execute("PRAGMA table_info(ZSTRUCTUREDMETADATA)")}
        ocols = {str(r[1]) for r in con.execute("PRAGMA table_info(ZOBJECT)")}
        if "Z_PK" not in mcols or not {"Z_PK", "ZSTRUCTUREDMETADATA"} <= ocols:
            raise CorruptSource("no ZOBJECT.ZSTRUCTUREDMETADATA -> ZSTRUCTUREDMETADATA.Z_PK link: "
                                "not a knowledgeC database", path=ctx.display_path)

        def m(c: str) -> str:
            return f"m.{c}" if c in mcols else "NULL"

        def o(c: str) -> str:
            return f"o.{c}" if c in ocols else "NULL"

        lat = f"COALESCE({m(_A + 'LATITUDE')}, {m(_L + 'LATITUDE')})"
        lon = f"COALESCE({m(_A + 'LONGITUDE')}, {m(_L + 'LONGITUDE')})"
        scols = {str(r[1]) for r in con.execute("PRAGMA table_info(ZSOURCE)")}
        joins_source = "ZSOURCE" in ocols and {"Z_PK", "ZBUNDLEID"} <= scols
        bundle = "s.ZBUNDLEID" if joins_source else "NULL"
        select = (f"o.Z_PK, {o('ZSTREAMNAME')}, {o('ZSTARTDATE')}, {o('ZENDDATE')}, {lat}, {lon}, "
                  f"{m(_A + 'DISPLAYNAME')}, {m(_A + 'FULLYFORMATTEDADDRESS')}, "
                  f"{m(_A + 'LOCATIONNAME')}, {bundle}")
        source = ("ZOBJECT o JOIN ZSTRUCTUREDMETADATA m ON o.ZSTRUCTUREDMETADATA = m.Z_PK"
                  + (" LEFT JOIN ZSOURCE s ON o.ZSOURCE = s.Z_PK" if joins_source else ""))
        faults: list[tuple[str, str]] = []  # Z_PK ranges a damaged page made unreadable
        df = read_frame(con, source, select, ["pk", "stream", "t0", "t1", "lat", "lon", "name",
                                              "address", "locname", "bundle"],
                        key="o.Z_PK", where=f"{lat} IS NOT NULL OR {lon} IS NOT NULL",
                        name="ZOBJECT", faults=faults)
    n_read = len(df) + len(faults)
    df, repeated = split_repeated(df, "pk", lambda k, i: f"ZOBJECT/Z_PK={k} (row {i})",
                                  "Z_PK repeated in the query (a damaged b-tree): this copy is not used")
    rec = "ZOBJECT/Z_PK=" + df["pk"].astype("string")
    t0 = timebase.from_epoch(pd.to_numeric(df["t0"], errors="coerce"), epoch=timebase.APPLE_EPOCH)
    t1 = timebase.from_epoch(pd.to_numeric(df["t1"], errors="coerce"), epoch=timebase.APPLE_EPOCH)
    la = pd.to_numeric(df["lat"], errors="coerce").to_numpy("float64")
    lo = pd.to_numeric(df["lon"], errors="coerce").to_numpy("float64")
    badp = ~(np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90) & (np.abs(lo) <= 180)) | (
        (la == 0) & (lo == 0))
    badt = t0.isna().to_numpy()
    rejects = faults + repeated + [(str(r), "latitude/longitude missing, out of range or 0,0") for r in rec[badp]]
    rejects += [(str(r), "ZSTARTDATE is not a plausible Cocoa time (1980-2100)")
                for r in rec[badt & ~badp]]
    places = pd.DataFrame({
        "record": rec, "kind": "app_location", "lat": la, "lon": lo,
        "name": df["name"].where(df["name"].notna(), df["locname"]), "address": df["address"],
        "text": df["stream"], "t_start": t0, "t_end": t1, "t_precision": "instant",
        "flags": "", "extra": [compact_json({"bundle_id": b}) for b in df["bundle"]],
    })[~(badp | badt)]
    return ctx.finish(
        records_read=n_read,
        time_basis="ZSTARTDATE/ZENDDATE: Cocoa seconds since 2001-01-01T00:00:00Z (UTC)" + invalid_text_note(con),
        places=places, rejects=rejects, companion_hashes=companion_hashes(path),
        default_subject="iphone",
    )
