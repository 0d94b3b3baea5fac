"""Helpers for readable tests, for routetrace's own suite and for users' notebooks.

>>> from routetrace.testing import make_fixes
>>> f = make_fixes(subject_id="s1", t_utc=["2025-10-24T20:00Z", "2025-10-24T20:01Z"],
...                lat=[51.0, 51.001], lon=[3.87, 3.87], h_acc_m=10.0)
>>> len(f), str(f["t_utc"].dtype)
(2, 'datetime64[ns, UTC]')
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence, Sized
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import schema
from .errors import SchemaError

__all__ = [
    "assert_count_rule",
    "example_case",
    "example_consolidated",
    "example_teltonika",
    "example_gpx",
    "assert_fixes_equal",
    "assert_page_loss",
    "damage_page",
    "hash_tree",
    "make_fixes",
    "unread_keys",
]


def _broadcast(value: Any, n: int) -> Any:
    """``value`` as a column of ``n``: a scalar repeated; an array without a Python object per
    value (a Series without its index, sharing its memory until either is written to; an
    array copied); any other iterable as a list."""
    if isinstance(value, (bool, int, float, np.number)) and not isinstance(value, np.bool_):
        return np.full(n, value)  # a number: one array, not n Python objects
    if isinstance(value, (str, bytes)) or np.isscalar(value) or value is None:
        return [value] * n
    if isinstance(value, pd.Series):  # a lazy copy: copy-on-write keeps the two apart
        vals: Any = value.reset_index(drop=True)
    elif isinstance(value, pd.Index):  # immutable
        vals = value.array
    elif isinstance(value, (np.ndarray, pd.api.extensions.ExtensionArray)):
        vals = value.copy()  # the caller may write to it later
    else:
        vals = list(value)
    if len(vals) != n:
        raise SchemaError(f"make_fixes: a column has {len(vals)} values, expected {n}")
    return vals


def _text(value: Any, n: int) -> Any:
    """A text column of ``n`` rows: a scalar as one dictionary-encoded value (no Python
    string per row, see :data:`routetrace.schema.DICTIONARY`), a column as it is."""
    if isinstance(value, str) or value is None:
        return schema.repeat(value, n)
    return _broadcast(value, n)


def _numbered(n: int) -> pd.Series:
    """``0 .. n-1`` as a string column, built in Arrow."""
    nums = pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string())
    return pd.Series(pd.StringDtype("pyarrow").__from_arrow__(nums))


def make_fixes(
    *,
    subject_id: str | Sequence[str] = "subject",
    t_utc: Iterable[Any],
    lat: Iterable[float] | float,
    lon: Iterable[float] | float,
    h_acc_m: Iterable[float] | float | None = None,
    fix_kind: str | Sequence[str] = "gps",
    source_id: str = "0" * 64,
    **columns: Any,
) -> pd.DataFrame:
    """Build a valid ``fixes`` table from columns (scalars are broadcast).

    ``t_utc`` values must carry a zone (``"...Z"`` strings or aware timestamps); naive
    values raise :class:`SchemaError`, as everywhere in routetrace. Records are numbered
    ``0..n-1``, so the fixes' ids (derived: :func:`routetrace.schema.fix_ids`) are
    ``<source_id[:16]>:<n>``; tables of several calls need distinct ``source_id`` for
    distinct ids. Extra keyword columns are added as given.

    Parameters
    ----------
    subject_id : str or sequence of str, default "subject"
        Subject of each fix.
    t_utc : iterable
        Aware times (``"...Z"`` text or timestamps).
    lat, lon : float or iterable of float
        WGS84 degrees.
    h_acc_m : float or iterable of float, optional
        Stated horizontal accuracy in metres; default None: unknown (NA).
    fix_kind : str or sequence of str, default "gps"
        Kind of each fix (a declared ``fix_kind``).
    source_id : str, default 64 zeros
        The SHA-256 the rows cite (a placeholder: no file).
    **columns
        Further columns of the ``fixes`` schema (``speed_mps``, ``flags``, ...).

    Returns
    -------
    pandas.DataFrame
        A ``fixes`` table that passes ``schema.validate(df, "fixes")``.

    Raises
    ------
    SchemaError
        For naive times or a value that does not fit its column.

    Example
    -------
    >>> f = make_fixes(subject_id="lorry", t_utc=["2025-10-26T21:00Z", "2025-10-26T21:01Z"],
    ...                lat=51.0, lon=[3.87, 3.88], h_acc_m=5.0)
    >>> f[["subject_id", "lon", "record"]].values.tolist()
    [['lorry', 3.87, '0'], ['lorry', 3.88, '1']]
    """
    times = pd.Series(_broadcast(t_utc, len(t_utc)) if isinstance(t_utc, Sized) else list(t_utc), copy=False)
    if pd.api.types.is_datetime64_any_dtype(times.dtype):
        parsed = times
    else:
        parsed = pd.to_datetime(times, format="ISO8601")
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        raise SchemaError("make_fixes: t_utc must carry a time zone (e.g. '2025-10-24T20:00Z')")
    n = len(parsed)
    record = _numbered(n)
    df = pd.DataFrame({
        "subject_id": _text(subject_id, n),
        "t_utc": parsed if parsed.dtype == "datetime64[ns, UTC]" else parsed.dt.tz_convert("UTC"),
        "lat": _broadcast(lat, n),
        "lon": _broadcast(lon, n),
        "fix_kind": _text(fix_kind, n),
        "source_id": schema.repeat(source_id, n),
        "record": record,
        "flags": schema.repeat("", n),
    }, copy=False)  # the columns as given (copy-on-write keeps the caller's arrays safe)
    if h_acc_m is not None:  # None: left to schema.coerce (unknown, one shared NaN)
        df.insert(df.columns.get_loc("lon") + 1, "h_acc_m", _broadcast(h_acc_m, n))
    for name, value in columns.items():
        df[name] = _broadcast(value, n)
    return schema.validate(schema.coerce(df, "fixes"), "fixes")


def assert_fixes_equal(left: pd.DataFrame, right: pd.DataFrame, *, check_ids: bool = False,
                       atol_deg: float = 1e-9) -> None:
    """Assert two fixes tables hold the same fixes (subject, time, position, kind).

    Row order is ignored (both are sorted by subject and time). Positions are compared
    with ``atol_deg``; provenance (and so the derived ``fix_id``) only when ``check_ids``.

    Parameters
    ----------
    left, right : pandas.DataFrame
        ``fixes`` tables.
    check_ids : bool, default False
        Also compare the provenance, ``source_id`` and ``record``, which give ``fix_id``
        (off by default: two loaders of one track
        number their rows differently).
    atol_deg : float, default 1e-9
        Tolerance on latitude and longitude in degrees (1e-9 degrees is about 0.1 mm).

    Raises
    ------
    AssertionError
        Naming the first difference.

    Example
    -------
    >>> a = make_fixes(t_utc=["2025-10-26T21:00Z", "2025-10-26T21:01Z"], lat=[51.0, 51.1], lon=3.87)
    >>> assert_fixes_equal(a, a.iloc[::-1])  # row order is ignored
    >>> assert_fixes_equal(a, a.assign(lat=[51.0, 51.2]))
    Traceback (most recent call last):
    ...
    AssertionError: ...
    """
    cols = ["subject_id", "t_utc", "lat", "lon", "fix_kind"]
    if check_ids:
        cols += ["source_id", "record"]
    a = left[cols].sort_values(["subject_id", "t_utc", "lat", "lon"]).reset_index(drop=True)
    b = right[cols].sort_values(["subject_id", "t_utc", "lat", "lon"]).reset_index(drop=True)
    if len(a) != len(b):
        raise AssertionError(f"fixes differ in length: {len(a)} != {len(b)}")
    for c in cols:
        if c in ("lat", "lon"):
            diff = np.abs(a[c].to_numpy(float) - b[c].to_numpy(float))
            if np.nanmax(diff, initial=0.0) > atol_deg:
                i = int(np.nanargmax(diff))
                raise AssertionError(f"column {c} differs at row {i}: {a[c][i]} != {b[c][i]}")
        elif not a[c].astype(str).equals(b[c].astype(str)):
            i = int(np.flatnonzero(a[c].astype(str).to_numpy() != b[c].astype(str).to_numpy())[0])
            raise AssertionError(f"column {c} differs at row {i}: {a[c][i]!r} != {b[c][i]!r}")


def assert_count_rule(result: Any) -> None:
    """Assert a LoadResult obeys the count rule and that every reject has a reason.

    records read = distinct records that produced rows + records rejected.

    Parameters
    ----------
    result : LoadResult
        What a loader returned.

    Raises
    ------
    AssertionError
        When records read differ from records that produced rows plus records rejected, or a
        reject has no reason.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = example_consolidated(Path(tmp.name) / "consolidated.db")  # 3000 fixes
    >>> from routetrace.loaders import load
    >>> assert_count_rule(load(p))
    >>> tmp.cleanup()
    """
    produced: set[str] = set()
    for df in [result.fixes, result.events, result.places, *result.extra_tables.values()]:
        if len(df):
            produced.update(df["record"].astype(str))
    rejected = result.rejects["record"].astype(str).tolist()
    assert len(set(rejected)) == len(rejected), "a record is rejected twice"
    assert not produced & set(rejected), "a record is both produced and rejected"
    assert len(produced) + len(rejected) == result.records_read, (
        f"count rule: {result.records_read} read != {len(produced)} produced + "
        f"{len(rejected)} rejected")
    reasons = result.rejects["reason"].astype(str)
    assert (reasons.str.len() > 0).all(), "a reject has no reason"
    for name in ("fixes", "events", "places"):
        schema.validate(getattr(result, name), name)


def hash_tree(root: str | Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (or of ``root`` itself), keyed by path.

    Used to prove evidence stays byte-identical: hash before, run, hash after, compare.

    Parameters
    ----------
    root : str or pathlib.Path
        A folder (every file under it, recursively) or one file.

    Returns
    -------
    dict of str to str
        Path (as text) to SHA-256 hex digest.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = example_consolidated(Path(tmp.name) / "consolidated.db")  # 3000 fixes
    >>> from routetrace.loaders import load
    >>> before = hash_tree(tmp.name)
    >>> res = load(p)
    >>> hash_tree(tmp.name) == before, len(before)  # the evidence is unchanged
    (True, 1)
    >>> tmp.cleanup()
    """
    p = Path(root)
    files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def damage_page(path: str | Path, *, at: float = 0.5, page_size: int = 4096,
                table: str | None = None) -> int:
    """Overwrite one whole page of a SQLite file with 0xA5 bytes, in place; returns its index
    (0-based: SQLite's page number less one).

    The page is the one ``at`` (0..1) of the way through the file: with one large table, a
    leaf page of its rows. With ``table``, it is the leaf page of that table ``at`` of the
    way through its leaves (found with SQLite's ``dbstat``). Used to show a loader loses that
    page's rows, not the file.

    Parameters
    ----------
    path : str or pathlib.Path
        A SQLite file (a test's own copy: it is modified).
    at : float, default 0.5
        Where the page lies, 0 (start) to 1 (end); the middle keeps rows on both sides.
    page_size : int, default 4096
        SQLite's page size in bytes (its default).
    table : str, optional
        Damage a leaf page of this table; default None: by position in the file.

    Returns
    -------
    int
        The 0-based index of the page overwritten.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = example_consolidated(Path(tmp.name) / "consolidated.db")  # 3000 fixes
    >>> damage_page(p)
    15
    >>> tmp.cleanup()
    """
    p = Path(path)
    if table is None:
        n = int(p.stat().st_size // page_size * at)
    else:
        con = sqlite3.connect(p)
        try:
            leaves = [int(r[0]) - 1 for r in con.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", (table,))]
        finally:
            con.close()
        if not leaves:
            raise ValueError(f"{p}: table {table!r} has no leaf page")
        n = leaves[min(int(len(leaves) * at), len(leaves) - 1)]
    data = bytearray(p.read_bytes())
    data[n * page_size: (n + 1) * page_size] = b"\xa5" * page_size
    p.write_bytes(bytes(data))
    return n


def unread_keys(records: Iterable[str]) -> set[int]:
    """The integer keys named by ``read_rows`` fault records (``"T/Z_PK 41..87"``, ``"T/rowid 9"``).

    Parameters
    ----------
    records : iterable of str
        The ``record`` values of the fault rejects.

    Returns
    -------
    set of int
        Every key the records name (ranges expanded).

    Example
    -------
    >>> sorted(unread_keys(["ZT/Z_PK 3..5", "WifiLocation/rowid 9"]))
    [3, 4, 5, 9]
    """
    keys: set[int] = set()
    for rec in records:
        lo, _, hi = rec.split()[-1].partition("..")
        keys |= set(range(int(lo), int(hi or lo) + 1))
    return keys


def assert_page_loss(result: Any, *, table: str, n: int, key: str = "Z_PK", rows: str = "fixes",
                     max_lost: int = 200) -> set[int]:
    """Assert what a load of a table of keys 1..``n`` with one damaged page (:func:`damage_page`)
    must give: the count rule, rows of ``table`` before and after the damage (keys 1 and ``n``),
    fewer than ``max_lost`` rows lost, and faults (``"<table>/<key> a..b"`` rejects) naming
    exactly the keys missing. Returns the keys loaded into the ``rows`` table.

    Parameters
    ----------
    result : LoadResult
        The load of the damaged file.
    table : str
        The damaged table.
    n : int
        Its number of rows (keys 1..``n``).
    key : str, default "Z_PK"
        Its key column (Core Data's primary key; ``rowid`` for plain tables).
    rows : str, default "fixes"
        The result table its rows load into.
    max_lost : int, default 200
        Most rows the damage may cost (losing more means more than the one page was lost).

    Returns
    -------
    set of int
        The keys loaded.

    Raises
    ------
    AssertionError
        When any of the conditions above fails.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = example_consolidated(Path(tmp.name) / "consolidated.db")  # 3000 fixes
    >>> from routetrace.loaders import load
    >>> _ = damage_page(p)
    >>> res = load(p)
    >>> res.rejects["record"].tolist()
    ['LocationHarvest/rowid 1205..1324']
    >>> len(assert_page_loss(res, table="LocationHarvest", key="rowid", n=3000))
    2880
    >>> tmp.cleanup()
    """
    assert_count_rule(result)
    rejects = result.rejects
    faults = rejects[rejects["reason"].str.startswith("rows unreadable")]
    assert len(faults) >= 1, "the damaged page gave no fault"
    assert faults["record"].str.startswith(f"{table}/{key} ").all(), faults["record"].tolist()
    loaded = set(getattr(result, rows)["record"].str.removeprefix(f"{table}/{key}=").astype(int))
    assert min(loaded) == 1 and max(loaded) == n, "rows before or after the damage are missing"
    assert n - max_lost < len(loaded) < n, f"{n - len(loaded)} rows lost"
    assert unread_keys(faults["record"]) == set(range(1, n + 1)) - loaded, "faults miss some lost keys"
    return loaded


# --- mutation fuzzing -------------------------------------------------------------------


def example_gpx(path: str | Path, lats: Sequence[float], *, lon: float = 3.87,
                start: str = "2025-10-26T21:00:00Z") -> Path:
    """Write a GPX track of one fix a minute from ``start`` at longitude ``lon``, one fix per
    latitude in ``lats`` (degrees); return its path. For examples and tests.

    Parameters
    ----------
    path
        The file to write.
    lats
        Latitudes, degrees, one fix each, a minute apart.
    lon
        Longitude of every fix, degrees.
    start
        Time of the first fix (ISO-8601 with ``Z``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> p = example_gpx(Path(tempfile.mkdtemp()) / "t.gpx", [51.0, 51.001])
    >>> p.read_text().count("<trkpt")
    2
    """
    t0 = pd.Timestamp(start)
    pts = "".join(f'<trkpt lat="{lat}" lon="{lon}"><time>{(t0 + pd.Timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ")}'
                  "</time></trkpt>" for k, lat in enumerate(lats))
    p = Path(path)
    p.write_text('<gpx version="1.1" creator="x" xmlns="http://www.topografix.com/GPX/1/1">'
                 f"<trk><trkseg>{pts}</trkseg></trk></gpx>", encoding="utf-8")
    return p


def example_case(root: str | Path) -> Path:
    """Make the tiny case the docstring examples use: subject ``lorry`` stops 10 minutes at
    51.0, 3.87 from 21:00 UTC on 2025-10-26, then drives north for 10 minutes; subject
    ``phone`` is 22 m away during the stop. Each is a GPX file beside the case folder,
    ingested with its subject.

    Parameters
    ----------
    root
        The case folder to make (its parent gets the two GPX files).

    Returns
    -------
    pathlib.Path
        The case folder.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.case import open_case
    >>> case = example_case(Path(tempfile.mkdtemp()) / "case")
    >>> sorted(open_case(case).table("fixes")["subject_id"].unique())
    ['lorry', 'phone']
    """
    from .app.ingest import ingest  # the jobs layer; testing is above it

    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    lorry = example_gpx(root.parent / "lorry.gpx", [51.0] * 10 + [51.0 + 0.005 * k for k in range(1, 11)])
    phone = example_gpx(root.parent / "phone.gpx", [51.0002] * 10)
    ingest(root, [lorry], subject_id="lorry")
    ingest(root, [phone], subject_id="phone")
    return root


def example_consolidated(path: str | Path, *, n_fixes: int = 3000) -> Path:
    """Write a small iOS ``consolidated.db`` (the tables its loader recognises, and
    ``n_fixes`` rows of ``LocationHarvest`` 10 s apart from 2011-04-21 10:00 UTC, 5 m
    accuracy) for examples and tests of damaged pages; return its path.

    Parameters
    ----------
    path
        The database file to create.
    n_fixes
        Rows of ``LocationHarvest``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> len(load(example_consolidated(Path(tempfile.mkdtemp()) / "c.db", n_fixes=5)).fixes)
    5
    """
    p = Path(path)
    con = sqlite3.connect(p)
    try:
        for sql in ("CREATE TABLE TableInfo (TableName TEXT, Version INTEGER)",
                    "CREATE TABLE WifiLocation (MAC TEXT, Timestamp FLOAT, Latitude FLOAT, Longitude FLOAT)",
                    "CREATE TABLE CellLocation (MCC INTEGER, Timestamp FLOAT, Latitude FLOAT, Longitude FLOAT)",
                    "CREATE TABLE LocationHarvest (Timestamp FLOAT, Latitude FLOAT, Longitude FLOAT, "
                    "HorizontalAccuracy FLOAT, Speed FLOAT, Course FLOAT)"):
            con.execute(sql)
        con.executemany("INSERT INTO LocationHarvest VALUES (?, ?, ?, ?, ?, ?)",
                        [(325072800.0 + 10 * i, 51.0 + i * 1e-5, 3.7, 5.0, 1.0, 90.0)
                         for i in range(n_fixes)])
        con.commit()
    finally:
        con.close()
    return p


def example_teltonika() -> tuple[Any, Any]:
    """Three decoded Teltonika codec-8E records of a lorry, a minute apart (ignition off,
    on, on; serving cell 1234, 1234, 1235; an iButton id), with the loader context a
    load of ``lorry.hex`` would have. For the examples of the Teltonika table builders.

    Returns
    -------
    tuple
        ``(decoded, ctx)``: :func:`routetrace.loaders.teltonika_codec.decode_messages` of one
        TCP frame, and a :class:`routetrace.loaders.base.LoadContext` (subject ``lorry``).

    Example
    -------
    >>> d, ctx = example_teltonika()
    >>> ctx.subject_id, ctx.display_path
    ('lorry', 'lorry.hex')
    """
    from .loaders.base import REGISTRY, LoadContext
    from .loaders.teltonika_codec import IoValue, Record, decode_messages, encode_tcp_frame

    recs = [Record(t_ms=1761512400000 + 60_000 * k, lat=51.0 + 0.001 * k, lon=3.87, sats=9,
                   io=(IoValue(239, on, 1), IoValue(182, 12, 2), IoValue(206, 3001, 2),
                       IoValue(205, cell, 4), IoValue(78, 0x0100000012345678 * k, 8)))
            for k, (on, cell) in enumerate([(0, 1234), (1, 1234), (1, 1235)])]
    frame = encode_tcp_frame(recs)
    decoded = decode_messages(frame, [("tcp", 0, len(frame), "line 1")])
    ctx = LoadContext(path=Path("lorry.hex"), display_path="lorry.hex", source_id="0" * 64,
                      size_bytes=0, spec=REGISTRY["teltonika"][0], subject_id="lorry")
    return decoded, ctx
