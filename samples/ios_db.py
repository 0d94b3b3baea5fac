"""Schema-faithful writers for iOS SQLite artifacts (routined Cache/Local.sqlite, Photos.sqlite).

The ``CREATE TABLE`` statements are Apple's Core Data DDL as found in a real routined
Cache.sqlite (model 'CoreRoutine 8'; the learned/map-item/vehicle tables are present there,
empty, with the same columns Local.sqlite uses; see ``loaders/ios_routined.py`` for the public
forensic sources of the Local.sqlite layout) and, for Photos.sqlite, the subset of the
``ZASSET``/``ZADDITIONALASSETATTRIBUTES`` columns the loader and common forensic tools read.
All ``Z*`` tables carry ``Z_PK, Z_ENT, Z_OPT``; ``Z_PRIMARYKEY`` records each entity's
``Z_MAX``. Times are Cocoa seconds (2001 epoch) as REAL.

Determinism: same inputs -> byte-identical files (journal mode DELETE; the Photos -wal is
rewritten with fixed salts and recomputed checksums, see :func:`fix_wal_salts`).
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["CLOUD_TABLES", "DDL_ROUTINED", "DDL_ROUTINED_MORE", "cocoa", "fix_wal_salts", "write_photos", "write_routined"]

APPLE_EPOCH = pd.Timestamp("2001-01-01T00:00:00Z")

DDL_ROUTINED = {
    "ZRTCLLOCATIONMO": "CREATE TABLE ZRTCLLOCATIONMO ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, "
    "Z_OPT INTEGER, ZSIGNALENVIRONMENTTYPE INTEGER, ZTYPE INTEGER, ZALTITUDE FLOAT, ZCOURSE FLOAT, "
    "ZHORIZONTALACCURACY FLOAT, ZLATITUDE FLOAT, ZLONGITUDE FLOAT, ZSPEED FLOAT, ZTIMESTAMP TIMESTAMP, "
    "ZVERTICALACCURACY FLOAT )",
    "ZRTVISITMO": "CREATE TABLE ZRTVISITMO ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZDATAPOINTCOUNT INTEGER, ZLOCATIONREFERENCEFRAME INTEGER, ZPLACEINFERENCEPLACETYPE INTEGER, "
    "ZPLACEINFERENCEUSERTYPE INTEGER, ZPLACEINFERENCEUSERTYPESOURCE INTEGER, ZSOURCE INTEGER, "
    "ZTYPE INTEGER, ZCONFIDENCE FLOAT, ZDETECTIONDATE TIMESTAMP, ZENTRYDATE TIMESTAMP, "
    "ZEXITDATE TIMESTAMP, ZLOCATIONDATE TIMESTAMP, ZLOCATIONLATITUDE FLOAT, ZLOCATIONLONGITUDE FLOAT, "
    "ZLOCATIONUNCERTAINTY FLOAT, ZPLACEINFERENCECONFIDENCE FLOAT, ZPLACEINFERENCEMAPITEMIDENTIFIER BLOB )",
    "ZRTHINTMO": "CREATE TABLE ZRTHINTMO ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZSOURCE INTEGER, ZDATE TIMESTAMP, ZHORIZONTALUNCERTAINTY FLOAT, ZLATITUDE FLOAT, ZLONGITUDE FLOAT )",
    "ZRTLEARNEDLOCATIONOFINTERESTMO": "CREATE TABLE ZRTLEARNEDLOCATIONOFINTERESTMO ( Z_PK INTEGER "
    "PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZDATAPOINTCOUNT INTEGER, ZLOCATIONREFERENCEFRAME INTEGER, "
    "ZLOCATIONSOURCEACCURACY INTEGER, ZPLACETYPE INTEGER, ZPLACETYPESOURCE INTEGER, ZCONFIDENCE FLOAT, "
    "ZLOCATIONALTITUDE FLOAT, ZLOCATIONHORIZONTALUNCERTAINTY FLOAT, ZLOCATIONLATITUDE FLOAT, "
    "ZLOCATIONLONGITUDE FLOAT, ZLOCATIONVERTICALUNCERTAINTY FLOAT, ZPLACECREATIONDATE TIMESTAMP, "
    "ZPLACEEXPIRATIONDATE TIMESTAMP, ZPLACECUSTOMLABEL VARCHAR, ZIDENTIFIER BLOB, ZPLACEIDENTIFIER BLOB, "
    "ZPLACEMAPITEMIDENTIFIER BLOB )",
    "ZRTLEARNEDLOCATIONOFINTERESTVISITMO": "CREATE TABLE ZRTLEARNEDLOCATIONOFINTERESTVISITMO ( Z_PK "
    "INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZDATAPOINTCOUNT INTEGER, "
    "ZLOCATIONOFINTERESTSOURCE INTEGER, ZLOCATIONREFERENCEFRAME INTEGER, ZLOCATIONSOURCEACCURACY INTEGER, "
    "ZLOCATIONOFINTEREST INTEGER, Z_FOK_LOCATIONOFINTEREST INTEGER, ZCONFIDENCE FLOAT, "
    "ZCREATIONDATE TIMESTAMP, ZENTRYDATE TIMESTAMP, ZEXITDATE TIMESTAMP, ZEXPIRATIONDATE TIMESTAMP, "
    "ZLOCATIONALTITUDE FLOAT, ZLOCATIONHORIZONTALUNCERTAINTY FLOAT, ZLOCATIONLATITUDE FLOAT, "
    "ZLOCATIONLONGITUDE FLOAT, ZLOCATIONOFINTERESTCONFIDENCE FLOAT, ZLOCATIONVERTICALUNCERTAINTY FLOAT, "
    "ZIDENTIFIER BLOB )",
    "ZRTLEARNEDVISITMO": "CREATE TABLE ZRTLEARNEDVISITMO ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, "
    "Z_OPT INTEGER, ZDATAPOINTCOUNT INTEGER, ZFLAGS INTEGER, ZLOCATIONREFERENCEFRAME INTEGER, "
    "ZLOCATIONSOURCEACCURACY INTEGER, ZPLACESOURCE INTEGER, ZDEVICE INTEGER, ZINBOUND INTEGER, "
    "ZOUTBOUND INTEGER, ZPLACE INTEGER, ZCONFIDENCE FLOAT, ZCREATIONDATE TIMESTAMP, ZENTRYDATE TIMESTAMP, "
    "ZEXITDATE TIMESTAMP, ZEXPIRATIONDATE TIMESTAMP, ZLOCATIONALTITUDE FLOAT, ZLOCATIONLATITUDE FLOAT, "
    "ZLOCATIONLONGITUDE FLOAT, ZLOCATIONUNCERTAINTY FLOAT, ZLOCATIONVERTICALUNCERTAINTY FLOAT, "
    "ZPLACECONFIDENCE FLOAT, ZCKRECORDID VARCHAR, ZIDENTIFIER BLOB, ZCKRECORDSYSTEMFIELDS BLOB )",
    "ZRTMAPITEMMO": "CREATE TABLE ZRTMAPITEMMO ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZDISPUTED INTEGER, ZFLAGS INTEGER, ZMAPITEMSOURCE INTEGER, ZMUID INTEGER, ZREFERENCEFRAME INTEGER, "
    "ZRESULTPROVIDERID INTEGER, ZADDRESS INTEGER, ZDEVICE INTEGER, ZPLACE INTEGER, "
    "ZCREATIONDATE TIMESTAMP, ZEXPIRATIONDATE TIMESTAMP, ZLATITUDE FLOAT, ZLONGITUDE FLOAT, "
    "ZUNCERTAINTY FLOAT, ZCKRECORDID VARCHAR, ZDISPLAYLANGUAGE VARCHAR, ZNAME VARCHAR, "
    "ZEXTENDEDATTRIBUTESIDENTIFIER BLOB, ZIDENTIFIER BLOB, ZCKRECORDSYSTEMFIELDS BLOB, "
    "ZGEOMAPITEMHANDLE BLOB )",
    "ZRTADDRESSMO": "CREATE TABLE ZRTADDRESSMO ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZFLAGS INTEGER, ZISLAND INTEGER, ZDEVICE INTEGER, ZMAPITEM INTEGER, ZCREATIONDATE TIMESTAMP, "
    "ZEXPIRATIONDATE TIMESTAMP, ZADMINISTRATIVEAREA VARCHAR, ZADMINISTRATIVEAREACODE VARCHAR, "
    "ZCKRECORDID VARCHAR, ZCOUNTRY VARCHAR, ZCOUNTRYCODE VARCHAR, ZINLANDWATER VARCHAR, "
    "ZISO3166COUNTRYCODE VARCHAR, ZISO3166SUBDIVISIONCODE VARCHAR, ZLOCALITY VARCHAR, ZOCEAN VARCHAR, "
    "ZPOSTALCODE VARCHAR, ZSUBADMINISTRATIVEAREA VARCHAR, ZSUBLOCALITY VARCHAR, ZSUBTHOROUGHFARE VARCHAR, "
    "ZTHOROUGHFARE VARCHAR, ZAREASOFINTEREST BLOB, ZIDENTIFIER BLOB, ZSUBPREMISES BLOB, "
    "ZCKRECORDSYSTEMFIELDS BLOB )",
    "ZRTVEHICLEEVENTMO": "CREATE TABLE ZRTVEHICLEEVENTMO ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, "
    "Z_OPT INTEGER, ZLOCREFERENCEFRAME INTEGER, ZLOCATIONQUALITY INTEGER, ZUSERSETLOCATION INTEGER, "
    "ZUSUALLOCATION INTEGER, ZDATE TIMESTAMP, ZLOCDATE TIMESTAMP, ZLOCLATITUDE FLOAT, ZLOCLONGITUDE FLOAT, "
    "ZLOCUNCERTAINTY FLOAT, ZIDENTIFIER VARCHAR, ZNOTES VARCHAR, ZVEHICLEIDENTIFIER VARCHAR, "
    "ZMAPITEMIDENTIFIER BLOB, ZPHOTODATA BLOB )",
}
#: Tables added to this writer later (same real Cache.sqlite, model 'CoreRoutine 8'): created
#: only when rows are given for them (or for Cloud-V2), so files written before stay
#: byte-identical.
DDL_ROUTINED_MORE = {
    "ZRTDEVICEMO": "CREATE TABLE ZRTDEVICEMO ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZFLAGS INTEGER, ZCREATIONDATE TIMESTAMP, ZEXPIRATIONDATE TIMESTAMP, ZCKRECORDID VARCHAR, "
    "ZDEVICECLASS VARCHAR, ZDEVICEMODEL VARCHAR, ZDEVICENAME VARCHAR, ZIDENTIFIER BLOB, "
    "ZCKRECORDSYSTEMFIELDS BLOB )",
    "ZRTLEARNEDLOCATIONOFINTERESTTRANSITIONMO": "CREATE TABLE ZRTLEARNEDLOCATIONOFINTERESTTRANSITIONMO ( "
    "Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZPREDOMINANTMOTIONACTIVITYTYPE INTEGER, "
    "ZLOCATIONOFINTEREST INTEGER, ZCREATIONDATE TIMESTAMP, ZEXPIRATIONDATE TIMESTAMP, "
    "ZSTARTDATE TIMESTAMP, ZSTOPDATE TIMESTAMP, ZIDENTIFIER BLOB, ZVISITIDENTIFIERDESTINATION BLOB, "
    "ZVISITIDENTIFIERORIGIN BLOB )",
    "ZRTLEARNEDPLACEMO": "CREATE TABLE ZRTLEARNEDPLACEMO ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, "
    "Z_OPT INTEGER, ZFLAGS INTEGER, ZMAPITEMSOURCE INTEGER, ZTYPE INTEGER, ZTYPESOURCE INTEGER, "
    "ZDEVICE INTEGER, ZMAPITEM INTEGER, ZCREATIONDATE TIMESTAMP, ZEXPIRATIONDATE TIMESTAMP, "
    "ZCKRECORDID VARCHAR, ZCUSTOMLABEL VARCHAR, ZIDENTIFIER BLOB, ZMAPITEMGEOMAPITEM BLOB, "
    "ZCKRECORDSYSTEMFIELDS BLOB, ZMAPITEMGEOMAPITEMHANDLE BLOB )",
    "ZRTLEARNEDTRANSITIONMO": "CREATE TABLE ZRTLEARNEDTRANSITIONMO ( Z_PK INTEGER PRIMARY KEY, "
    "Z_ENT INTEGER, Z_OPT INTEGER, ZFLAGS INTEGER, ZPREDOMINANTMOTIONACTIVITYTYPE INTEGER, "
    "ZDESTINATION INTEGER, ZDEVICE INTEGER, ZORIGIN INTEGER, ZCREATIONDATE TIMESTAMP, "
    "ZEXPIRATIONDATE TIMESTAMP, ZSTARTDATE TIMESTAMP, ZSTOPDATE TIMESTAMP, ZCKRECORDID VARCHAR, "
    "ZIDENTIFIER BLOB, ZCKRECORDSYSTEMFIELDS BLOB )",
    "ZRTVEHICLEEVENTHISTORYMO": "CREATE TABLE ZRTVEHICLEEVENTHISTORYMO ( Z_PK INTEGER PRIMARY KEY, "
    "Z_ENT INTEGER, Z_OPT INTEGER, ZDATE TIMESTAMP, ZLOCDATE TIMESTAMP, ZLOCLATITUDE FLOAT, "
    "ZLOCLONGITUDE FLOAT, ZLOCUNCERTAINTY FLOAT, ZIDENTIFIER VARCHAR )",
}
#: The tables of a Cloud-V2.sqlite (visits synced from the Apple ID's devices), after
#: mac4n6/APOLLO ``modules/routined_cloud_visit_inbound_start.txt`` (commit 060edbe), which
#: joins exactly these; their columns are the same model's as in Cache.sqlite.
CLOUD_TABLES = ("ZRTADDRESSMO", "ZRTDEVICEMO", "ZRTLEARNEDPLACEMO", "ZRTLEARNEDTRANSITIONMO",
                "ZRTLEARNEDVISITMO", "ZRTMAPITEMMO")
_ENT = {"ZRTADDRESSMO": (1, "RTAddressMO"), "ZRTCLLOCATIONMO": (2, "RTCLLocationMO"),
        "ZRTHINTMO": (8, "RTHintMO"), "ZRTLEARNEDLOCATIONOFINTERESTMO": (9, "RTLearnedLocationOfInterestMO"),
        "ZRTLEARNEDLOCATIONOFINTERESTVISITMO": (11, "RTLearnedLocationOfInterestVisitMO"),
        "ZRTLEARNEDVISITMO": (14, "RTLearnedVisitMO"), "ZRTMAPITEMMO": (17, "RTMapItemMO"),
        "ZRTVEHICLEEVENTMO": (21, "RTVehicleEventMO"), "ZRTVISITMO": (22, "RTVisitMO"),
        "ZRTDEVICEMO": (3, "RTDeviceMO"),
        "ZRTLEARNEDLOCATIONOFINTERESTTRANSITIONMO": (10, "RTLearnedLocationOfInterestTransitionMO"),
        "ZRTLEARNEDPLACEMO": (12, "RTLearnedPlaceMO"), "ZRTLEARNEDTRANSITIONMO": (13, "RTLearnedTransitionMO"),
        "ZRTVEHICLEEVENTHISTORYMO": (20, "RTVehicleEventHistoryMO")}

DDL_PHOTOS = {
    "ZASSET": "CREATE TABLE ZASSET ( Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZKIND INTEGER, ZKINDSUBTYPE INTEGER, ZTRASHEDSTATE INTEGER, ZADDITIONALATTRIBUTES INTEGER, "
    "ZADDEDDATE TIMESTAMP, ZDATECREATED TIMESTAMP, ZLATITUDE FLOAT, ZLONGITUDE FLOAT, "
    "ZMODIFICATIONDATE TIMESTAMP, ZTRASHEDDATE TIMESTAMP, ZDIRECTORY VARCHAR, ZFILENAME VARCHAR, "
    "ZUUID VARCHAR )",
    "ZADDITIONALASSETATTRIBUTES": "CREATE TABLE ZADDITIONALASSETATTRIBUTES ( Z_PK INTEGER PRIMARY KEY, "
    "Z_ENT INTEGER, Z_OPT INTEGER, ZINFERREDTIMEZONEOFFSET INTEGER, ZTIMEZONEOFFSET INTEGER, "
    "ZASSET INTEGER, ZEXIFTIMESTAMPSTRING VARCHAR, ZGPSHORIZONTALACCURACY FLOAT, "
    "ZORIGINALFILENAME VARCHAR, ZTIMEZONENAME VARCHAR )",
}


def cocoa(t: Any) -> Any:
    """UTC time(s) -> Cocoa seconds (float).

    Parameters
    ----------
    t : time or sequence of times
        Anything :func:`pandas.to_datetime` reads as UTC (ISO text with ``Z``, Timestamps).

    Returns
    -------
    numpy.ndarray
        Seconds since 2001-01-01T00:00:00Z (Apple's epoch), one per time.

    Example
    -------
    >>> cocoa(["2001-01-01T00:01:00Z", "2025-10-26T21:00:00Z"]).tolist()
    [60.0, 783205200.0]
    """
    s = pd.to_datetime(pd.Series(t), utc=True)
    return ((s - APPLE_EPOCH).dt.total_seconds()).to_numpy()


def _core_data_meta(con: sqlite3.Connection, ents: Iterable[tuple[int, str, int]]) -> None:
    con.execute("CREATE TABLE Z_PRIMARYKEY (Z_ENT INTEGER PRIMARY KEY, Z_NAME VARCHAR, Z_SUPER INTEGER, "
                "Z_MAX INTEGER)")
    con.execute("CREATE TABLE Z_METADATA (Z_VERSION INTEGER PRIMARY KEY, Z_UUID VARCHAR(255), Z_PLIST BLOB)")
    con.execute("CREATE TABLE Z_MODELCACHE (Z_CONTENT BLOB)")
    con.executemany("INSERT INTO Z_PRIMARYKEY VALUES (?, ?, 0, ?)", sorted(ents))
    con.execute("INSERT INTO Z_METADATA VALUES (1, '00000000-0000-4000-8000-000000000000', NULL)")


def _insert(con: sqlite3.Connection, table: str, ent: int, rows: pd.DataFrame) -> int:
    if rows is None or len(rows) == 0:
        return 0
    df = rows.copy()
    df.insert(1, "Z_ENT", ent)
    df.insert(2, "Z_OPT", 1)
    cols = ", ".join(df.columns)
    marks = ", ".join("?" * len(df.columns))
    vals = [tuple(None if (isinstance(v, float) and v != v) else v for v in r)
            for r in df.itertuples(index=False, name=None)]
    con.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", vals)
    return int(df["Z_PK"].max())


def write_routined(path: Path, tables: dict[str, pd.DataFrame], *, batch: int = 200_000,
                   cloud: bool = False) -> Path:
    """Write a routined Cache.sqlite or Local.sqlite with every CoreRoutine table above.

    ``tables`` maps a table name to rows whose columns are that table's (``Z_PK`` first;
    ``Z_ENT``/``Z_OPT`` are filled). Tables of :data:`DDL_ROUTINED` not given are created
    empty, as routined does; those of :data:`DDL_ROUTINED_MORE` only when given. ``cloud``:
    write a Cloud-V2.sqlite instead, with the :data:`CLOUD_TABLES` only.

    Parameters
    ----------
    path : pathlib.Path
        The database to write (replaced if it exists).
    tables : dict of str to pandas.DataFrame
        Rows per table, as above.
    batch : int
        Rows inserted per statement batch (memory bound for large tables).
    cloud : bool
        Write a Cloud-V2.sqlite (see above).

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fix = pd.DataFrame({"Z_PK": [7], "ZLATITUDE": [51.0], "ZLONGITUDE": [3.87],
    ...                     "ZHORIZONTALACCURACY": [5.0], "ZTIMESTAMP": cocoa(["2025-10-26T21:00:00Z"])})
    >>> p = write_routined(Path(tmp.name) / "Cache.sqlite", {"ZRTCLLOCATIONMO": fix})
    >>> con = sqlite3.connect(p)
    >>> con.execute("SELECT Z_PK, Z_ENT, ZLATITUDE FROM ZRTCLLOCATIONMO").fetchall()
    [(7, 2, 51.0)]
    >>> con.execute("SELECT count(*) FROM ZRTVISITMO").fetchone()  # created empty, as routined does
    (0,)
    >>> con.close(); tmp.cleanup()
    """
    ddl = {**DDL_ROUTINED, **DDL_ROUTINED_MORE}
    names = sorted(CLOUD_TABLES) if cloud else [*DDL_ROUTINED, *(t for t in DDL_ROUTINED_MORE if t in tables)]
    path = Path(path)
    if path.exists():
        path.unlink()
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("PRAGMA page_size=4096")
        maxes = []
        for name in names:
            con.execute(ddl[name])
            ent, ename = _ENT[name]
            df = tables.get(name)
            mx = 0
            if df is not None:
                for i in range(0, len(df), batch):
                    mx = max(mx, _insert(con, name, ent, df.iloc[i:i + batch]))
            maxes.append((ent, ename, mx))
        _core_data_meta(con, maxes)
        con.commit()
    finally:
        con.close()
    return path


def _wal_checksum(data: bytes, s0: int, s1: int, fmt: str) -> tuple[int, int]:
    n = len(data) // 4
    words = struct.unpack(f"{fmt[0]}{n}I", data)
    for i in range(0, n, 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def fix_wal_salts(wal: Path, salt1: int = 0x5EED0001, salt2: int = 0x5EED0002) -> None:
    """Rewrite a WAL's random salts with fixed ones and recompute every checksum.

    SQLite draws the salts at random, so a WAL is not reproducible byte for byte; the WAL
    format (sqlite.org/fileformat2.html#walformat) lets us set them and re-chain the
    checksums (header: first 24 bytes; each frame: its first 8 header bytes + page).

    Parameters
    ----------
    wal : pathlib.Path
        The ``-wal`` file, rewritten in place.
    salt1, salt2 : int
        The salts to write (32-bit).

    Example
    -------
    :func:`write_photos` calls it on the ``-wal`` it writes. The checksums are valid: SQLite
    still reads the frame (it would ignore one whose checksum is wrong).

    >>> tmp = tempfile.TemporaryDirectory()
    >>> con = sqlite3.connect(Path(tmp.name) / "a.sqlite")
    >>> con.execute("PRAGMA journal_mode=WAL").fetchone()
    ('wal',)
    >>> _ = con.execute("PRAGMA wal_autocheckpoint=0")
    >>> _ = con.execute("CREATE TABLE t (x)"), con.execute("INSERT INTO t VALUES (42)")
    >>> con.commit()
    >>> for name in ("a.sqlite", "a.sqlite-wal"):  # copied while open: closing would checkpoint
    ...     _ = shutil.copyfile(Path(tmp.name) / name, Path(tmp.name) / f"b{name[1:]}")
    >>> con.close()
    >>> fix_wal_salts(Path(tmp.name) / "b.sqlite-wal")
    >>> (Path(tmp.name) / "b.sqlite-wal").read_bytes()[16:24].hex()
    '5eed00015eed0002'
    >>> con = sqlite3.connect(Path(tmp.name) / "b.sqlite")
    >>> con.execute("SELECT x FROM t").fetchall()
    [(42,)]
    >>> con.close(); tmp.cleanup()
    """
    b = bytearray(wal.read_bytes())
    magic, _ver, page = struct.unpack(">III", b[:12])
    fmt = "<" if magic == 0x377F0682 else ">"
    struct.pack_into(">II", b, 16, salt1, salt2)
    s0, s1 = _wal_checksum(bytes(b[:24]), 0, 0, fmt)
    struct.pack_into(">II", b, 24, s0, s1)
    off = 32
    while off + 24 + page <= len(b):
        struct.pack_into(">II", b, off + 8, salt1, salt2)
        s0, s1 = _wal_checksum(bytes(b[off:off + 8]), s0, s1, fmt)
        s0, s1 = _wal_checksum(bytes(b[off + 24:off + 24 + page]), s0, s1, fmt)
        struct.pack_into(">II", b, off + 16, s0, s1)
        off += 24 + page
    wal.write_bytes(bytes(b))


def write_photos(path: Path, assets: pd.DataFrame, attrs: pd.DataFrame,
                 wal_assets: pd.DataFrame | None = None,
                 wal_attrs: pd.DataFrame | None = None) -> list[Path]:
    """Write Photos.sqlite (``ZASSET`` schema); ``wal_*`` rows are committed only to a -wal.

    Returns the written files (the database and, when WAL rows are given, its ``-wal``).

    Parameters
    ----------
    path : pathlib.Path
        The database to write; its ``-wal`` is written beside it.
    assets : pandas.DataFrame
        ``ZASSET`` rows (``Z_PK`` first; ``Z_ENT``/``Z_OPT`` are filled), committed to the
        database.
    attrs : pandas.DataFrame
        ``ZADDITIONALASSETATTRIBUTES`` rows, committed to the database.
    wal_assets, wal_attrs : pandas.DataFrame, optional
        Rows committed to the ``-wal`` only (not checkpointed).

    Returns
    -------
    list of pathlib.Path
        The database and, when WAL rows are given, its ``-wal`` (fixed salts).

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> a = pd.DataFrame({"Z_PK": [1], "ZKIND": [0], "ZDATECREATED": cocoa(["2025-10-25T08:12:31Z"]),
    ...                   "ZLATITUDE": [50.85], "ZLONGITUDE": [4.35], "ZFILENAME": ["IMG_0001.JPG"]})
    >>> b = pd.DataFrame({"Z_PK": [1], "ZASSET": [1], "ZTIMEZONEOFFSET": [7200]})
    >>> out = write_photos(Path(tmp.name) / "Photos.sqlite", a, b,
    ...                    a.assign(Z_PK=2, ZFILENAME="IMG_0002.JPG"), b.assign(Z_PK=2, ZASSET=2))
    >>> [p.name for p in out]
    ['Photos.sqlite', 'Photos.sqlite-wal']
    >>> con = sqlite3.connect(out[0])  # opened beside its -wal: the WAL's row is read too
    >>> con.execute("SELECT ZFILENAME FROM ZASSET ORDER BY Z_PK").fetchall()
    [('IMG_0001.JPG',), ('IMG_0002.JPG',)]
    >>> con.close(); tmp.cleanup()
    """
    path = Path(path)
    out = [path]
    with tempfile.TemporaryDirectory(prefix="routetrace-photos-") as tmp:
        db = Path(tmp) / "Photos.sqlite"
        con = sqlite3.connect(db)
        try:
            con.execute("PRAGMA page_size=4096")
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA wal_autocheckpoint=0")
            for ddl in DDL_PHOTOS.values():
                con.execute(ddl)
            mx = _insert(con, "ZASSET", 3, assets)
            _insert(con, "ZADDITIONALASSETATTRIBUTES", 1, attrs)
            _core_data_meta(con, [(3, "Asset", mx), (1, "AdditionalAssetAttributes", mx)])
            con.commit()
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            if wal_assets is not None and len(wal_assets):
                _insert(con, "ZASSET", 3, wal_assets)
                if wal_attrs is not None:
                    _insert(con, "ZADDITIONALASSETATTRIBUTES", 1, wal_attrs)
                con.commit()
            # copy while the connection is open: closing would checkpoint the WAL
            shutil.copyfile(db, path)
            wal = Path(str(db) + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                dst = Path(str(path) + "-wal")
                shutil.copyfile(wal, dst)
                fix_wal_salts(dst)
                out.append(dst)
        finally:
            con.close()
    return out


def frames(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows (dicts) -> a frame (helper for small tables)."""
    return pd.DataFrame(list(rows))
