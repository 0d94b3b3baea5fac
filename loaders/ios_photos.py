"""iOS / macOS Photos.sqlite: one photo or video asset = one record.

Asset table ``ZGENERICASSET`` (iOS 13-14, macOS 10.15) or ``ZASSET`` (later), joined to
``ZADDITIONALASSETATTRIBUTES`` on ``ZASSET = Z_PK`` (one row per asset). Read from a private
copy with the ``-wal`` applied (committed, un-checkpointed rows are part of the evidence).
Each table is read past damaged pages: an unreadable ``Z_PK`` range of the asset table is
one reject (``ZASSET/Z_PK 41..87``); one of the attribute table is one reject too, and the
assets it described are loaded without their attributes.

* ``ZDATECREATED``: Cocoa seconds UTC (:data:`routetrace.timebase.APPLE_EPOCH`), stored as
  REAL or INTEGER in the same column; an implausible value (e.g. 123456789012345) makes the
  asset a reject with the value in the reason.
* ``ZLATITUDE``/``ZLONGITUDE``: degrees; -180.0 is Apple's "no location" sentinel. No
  ``> 0`` filter: southern and western hemispheres are real.
* An asset with a valid time yields an event ``kind="photo"`` (``text`` = file name; lat/lon
  when located) and, when located, a fix ``fix_kind="photo"``; both share the record
  ``<table>/Z_PK=<n>``.
* ``extra``: uuid, directory, original file name, kind, ``tz_offset_s`` (``ZTIMEZONEOFFSET``),
  ``inferred_tz_offset_s``, ``tz_name``, ``exif_local`` (``ZEXIFTIMESTAMPSTRING``), trashed
  date. Flags: ``trashed`` (``ZTRASHEDSTATE`` = 1), ``tz_disagreement`` (stated and inferred
  offsets differ), ``sentinel_na`` (location was -180). ``ZGPSHORIZONTALACCURACY`` (newer
  schema only) -> ``h_acc_m`` (-1 = unknown -> NA, flag ``sentinel_na``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema, timebase
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

__all__ = ["load_photos", "sniff_photos"]


def sniff_photos(path: Path, head: bytes) -> bool:
    """Photos.sqlite has an asset table and ``ZADDITIONALASSETATTRIBUTES``.

    Parameters
    ----------
    path
        The file; its SQLite schema is read (immutable, nothing written).
    head
        Its first bytes (must open with the SQLite header).

    Returns
    -------
    bool
        Whether the database has ``ZASSET`` or ``ZGENERICASSET`` and the attribute table.

    Example
    -------
    >>> import sqlite3, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = Path(tmp) / "Photos.sqlite"
    ...     con = sqlite3.connect(db)
    ...     for t in ("ZASSET", "ZADDITIONALASSETATTRIBUTES"):
    ...         _ = con.execute(f"CREATE TABLE {t} (Z_PK INTEGER PRIMARY KEY)")
    ...     con.close()
    ...     print(sniff_photos(db, db.read_bytes()[:100]))
    True
    """
    if not head.startswith(b"SQLite format 3\x00"):
        return False
    t = sqlite_tables(path)
    return "ZADDITIONALASSETATTRIBUTES" in t and bool({"ZASSET", "ZGENERICASSET"} & t)


_ASSET = ("ZDATECREATED", "ZLATITUDE", "ZLONGITUDE", "ZTRASHEDSTATE", "ZTRASHEDDATE", "ZFILENAME",
          "ZDIRECTORY", "ZUUID", "ZKIND")
_ATTRS = ("ZTIMEZONEOFFSET", "ZINFERREDTIMEZONEOFFSET", "ZTIMEZONENAME", "ZEXIFTIMESTAMPSTRING",
          "ZORIGINALFILENAME", "ZGPSHORIZONTALACCURACY")


def _num(v: Any) -> Any:
    """A number for ``extra``: int when whole; a value that is no number (a damaged row's blob
    or text) is kept as text (hex for a blob), not dropped.

    >>> _num(3600.0), _num(7.5), _num("12.0"), _num(b"\\x01\\t"), _num(None)
    (3600, 7.5, 12, '0109', None)
    """
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, int):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return v.hex() if isinstance(v, bytes) else str(v)
    return int(f) if f.is_integer() else f


@register(LoaderSpec(
    name="ios-photos",
    description="iOS/macOS Photos.sqlite (ZGENERICASSET / ZASSET): photo fixes and events",
    sniff=sniff_photos,
    produces=("fixes", "events"),
))
def load_photos(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load Photos.sqlite assets (read from a private copy with its -wal).

    Every asset is one record, ``<table>/Z_PK=<n>``: an event ``kind="photo"`` and, when
    located (not Apple's -180 sentinel), a fix ``fix_kind="photo"``; an asset with an
    implausible time, or an unreadable ``Z_PK`` range of a damaged table, is a reject.

    Parameters
    ----------
    path
        The database (read from a private copy with its ``-wal`` applied).
    ctx
        The load context (source identity, subject) built by
        :func:`routetrace.loaders.load`; no ``tz``: ``ZDATECREATED`` is Cocoa seconds UTC.

    Returns
    -------
    LoadResult
        ``events`` (every dated asset), ``fixes`` (located ones) and ``rejects``; assets
        read = assets produced + rejected.

    Example
    -------
    Two photos, the second without a location (-180):

    >>> import tempfile
    >>> import pandas as pd
    >>> from routetrace.loaders import load
    >>> from routetrace.samples.ios_db import cocoa, write_photos
    >>> t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    >>> assets = pd.DataFrame({
    ...     "Z_PK": [1, 2], "ZDATECREATED": cocoa([t0, t0 + pd.Timedelta("1min")]),
    ...     "ZLATITUDE": [50.1, -180.0], "ZLONGITUDE": [4.1, -180.0], "ZKIND": 0,
    ...     "ZTRASHEDSTATE": 0, "ZFILENAME": ["IMG_0001.HEIC", "IMG_0002.HEIC"]})
    >>> attrs = pd.DataFrame({"Z_PK": [1, 2], "ZASSET": [1, 2], "ZTIMEZONEOFFSET": 7200})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = write_photos(Path(tmp) / "Photos.sqlite", assets, attrs)[0]
    ...     res = load(db)
    >>> res.events[["t_utc", "text", "lat", "record"]]
                          t_utc           text   lat         record
    0 2025-10-24 10:00:00+00:00  IMG_0001.HEIC  50.1  ZASSET/Z_PK=1
    1 2025-10-24 10:01:00+00:00  IMG_0002.HEIC   NaN  ZASSET/Z_PK=2
    >>> res.fixes["record"].tolist(), res.records_read
    (['ZASSET/Z_PK=1'], 2)
    """
    with private_sqlite(path) as con:
        tables = {str(r[0]) for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        table = "ZASSET" if "ZASSET" in tables else "ZGENERICASSET"
        if table not in tables:
            raise CorruptSource("no asset table (ZASSET or ZGENERICASSET): not a Photos library",
                                path=ctx.display_path)
        acols = {str(r[1]) for r in con.execute(f"PRAGMA table_info({table})")}
        xcols = {str(r[1]) for r in con.execute("PRAGMA table_info(ZADDITIONALASSETATTRIBUTES)")}
        # each table read on its own, past damaged pages (an unreadable Z_PK range is one
        # reject), then joined here as ``LEFT JOIN x ON x.ZASSET = a.Z_PK ORDER BY a.Z_PK``
        faults: list[tuple[str, str]] = []
        assets = read_frame(con, table, ", ".join(["Z_PK", *(c if c in acols else "NULL" for c in _ASSET)]),
                            ["Z_PK", *_ASSET], key="Z_PK", faults=faults)
        attr_faults: list[tuple[str, str]] = []
        if "ZASSET" in xcols:
            attrs = read_frame(con, "ZADDITIONALASSETATTRIBUTES",
                               ", ".join(["Z_PK", "ZASSET", *(c if c in xcols else "NULL" for c in _ATTRS)]),
                               ["x_pk", "ZASSET", *_ATTRS], key="Z_PK", faults=attr_faults)
        else:
            attrs = pd.DataFrame(columns=["x_pk", "ZASSET", *_ATTRS])
    rejects = faults + [(rec, f"{why}; the assets they described are loaded without their "
                              "time-zone and original-file-name attributes") for rec, why in attr_faults]
    asset = pd.to_numeric(attrs["ZASSET"], errors="coerce").to_numpy("float64")
    matches = np.isfinite(asset) & (asset == np.round(asset)) & (np.abs(asset) < 2.0**63)
    attrs = attrs[matches].assign(ZASSET=asset[matches].astype("int64")).drop(columns="x_pk")
    df = assets.merge(attrs, left_on="Z_PK", right_on="ZASSET", how="left", sort=False)
    n_read = len(df) + len(rejects)  # rows of the join (one per asset, or more) + unread ranges
    for c in _ATTRS:  # an asset without attributes: None, as SQLite's LEFT JOIN gives it
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    df, repeated = split_repeated(  # a damaged b-tree, or two attribute rows for one asset
        df, "Z_PK", lambda k, i: f"{table}/Z_PK={k} (row {i})",
        "Z_PK repeated in the query (a damaged b-tree, or two ZADDITIONALASSETATTRIBUTES rows "
        "for one asset): this copy is not used")
    rejects += repeated
    rec = f"{table}/Z_PK=" + df["Z_PK"].astype("string")
    raw = pd.to_numeric(df["ZDATECREATED"], errors="coerce")
    t = timebase.from_epoch(raw, epoch=timebase.APPLE_EPOCH)
    bad = t.isna().to_numpy()
    rejects += [(str(r), f"ZDATECREATED {v!r} is not a plausible Cocoa time (1980-2100)")
                for r, v in zip(rec[bad], df["ZDATECREATED"][bad], strict=True)]
    lat = pd.to_numeric(df["ZLATITUDE"], errors="coerce").to_numpy("float64")
    lon = pd.to_numeric(df["ZLONGITUDE"], errors="coerce").to_numpy("float64")
    sentinel = (lat == -180.0) | (lon == -180.0)
    located = (~sentinel & np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90)
               & (np.abs(lon) <= 180))
    lat = np.where(located, lat, np.nan)
    lon = np.where(located, lon, np.nan)
    off = pd.to_numeric(df["ZTIMEZONEOFFSET"], errors="coerce")
    inf = pd.to_numeric(df["ZINFERREDTIMEZONEOFFSET"], errors="coerce")
    tzd = (off.notna() & inf.notna() & (off != inf)).to_numpy()
    trashed = (pd.to_numeric(df["ZTRASHEDSTATE"], errors="coerce").fillna(0) != 0).to_numpy()
    hacc = pd.to_numeric(df["ZGPSHORIZONTALACCURACY"], errors="coerce").astype("float64")
    acc_na = (hacc < 0).to_numpy()
    hacc = hacc.mask(hacc < 0)
    flags = pd.Series("", index=df.index, dtype="string")
    flags = schema.add_flag(flags, trashed, "trashed")
    flags = schema.add_flag(flags, tzd, "tz_disagreement")
    flags = schema.add_flag(flags, sentinel | acc_na, "sentinel_na")
    tdel = timebase.from_epoch(pd.to_numeric(df["ZTRASHEDDATE"], errors="coerce"),
                               epoch=timebase.APPLE_EPOCH)
    extra = [compact_json({
        "uuid": r.ZUUID, "directory": r.ZDIRECTORY, "original_filename": r.ZORIGINALFILENAME,
        "kind": _num(r.ZKIND), "tz_offset_s": _num(r.ZTIMEZONEOFFSET),
        "inferred_tz_offset_s": _num(r.ZINFERREDTIMEZONEOFFSET), "tz_name": r.ZTIMEZONENAME,
        "exif_local": r.ZEXIFTIMESTAMPSTRING,
        "trashed_utc": None if pd.isna(td) else td.isoformat(),
    }) for r, td in zip(df.itertuples(index=False), tdel, strict=True)]
    name = df["ZFILENAME"].where(df["ZFILENAME"].notna(), df["ZORIGINALFILENAME"])
    ok = ~bad
    events = pd.DataFrame({
        "record": rec, "t_utc": t, "kind": "photo", "text": name, "lat": lat, "lon": lon,
        "flags": flags, "extra": extra,
    })[ok]
    fixes = pd.DataFrame({
        "record": rec, "t_utc": t, "lat": lat, "lon": lon,
        "h_acc_m": hacc,
        "fix_kind": "photo", "flags": flags, "extra": extra,
    })[ok & located]
    return ctx.finish(
        records_read=n_read,
        time_basis="ZDATECREATED: Cocoa seconds since 2001-01-01T00:00:00Z (UTC)" + invalid_text_note(con),
        fixes=fixes, events=events, rejects=rejects, companion_hashes=companion_hashes(path),
        default_subject="iphone",
    )
