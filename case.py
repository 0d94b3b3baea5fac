"""The case store: a folder holding a case's tables, its manifest and its quality report.

Layout::

    CASE/
      case.json          manifest: case id, tool version, creation time, parameters used by
                         later stages, and ``outputs``: the SHA-256 of every file of the case
                         but the parts, which the ledger (parts.parquet, named in ``outputs``)
                         lists. The two are the index of the tables: a file under tables/ that
                         they do not list is not part of the case.
      tables/fixes/source=<sha[:16]>/part-0.parquet
                         the large tables (fixes, events, places: GeoParquet with WGS84 point
                         geometry), one part per evidence file (a large file streamed by its
                         loader: part-0, part-00001, ..., each of at most PART_ROWS rows), so
                         adding a source writes only its own parts and removing one removes
                         exactly its files
      tables/<name>.parquet
                         the other tables (sources, rejects, subjects, devices, stops, ...)
      parts.parquet      the ledger of the parts: each part's path, SHA-256 and rows. case.json
                         names it in ``outputs`` with its SHA-256; the parts are listed there,
                         not in case.json, so the manifest stays small however many evidence
                         files the case holds (a fleet-year of daily tracker files: 230,000)
      quality.csv        every rejected record and every file that could not be read, with
                         its reason: nothing is lost silently
      .lock              the case lock (``fcntl.flock``): one writing process at a time
      .staging/          files written by a run that has not committed yet (absent when idle)

**Commit.** Nothing that the committed manifest names is ever written in place. A run writes
its files under ``.staging/`` (each one flushed and ``fsync``-ed), then commits by replacing
``case.json`` atomically (a temporary file, ``fsync``, ``os.replace``): the manifest is
written last. Only then are the staged files moved into place and the files the new manifest
no longer names deleted. A run killed before the commit leaves the case as it was (its
staged files are discarded by the next writer); one killed after it is completed by the
next writer or the next :func:`open_case` (a staged file whose SHA-256 is the committed one
is moved into place). A full disk is the same: the failing run discards its staged files and
raises :class:`~routetrace.errors.CaseError`.

**Lock.** Every writer holds the case lock from its first staged file to its commit; the
jobs that read, compute and write (ingest, the analysis stages) hold it for their whole run,
so two of them on one case run one after the other. A :class:`Case` opened before another
process committed refuses to write (nothing is lost; open the case again).

The store only stores: reading evidence into it is :func:`routetrace.app.ingest.ingest`.
Times written into the manifest honour ``SOURCE_DATE_EPOCH``, and tables are written
sorted, so the same inputs give byte-identical case files.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import heapq
import inspect
import itertools
import json
import os
import shutil
import signal
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyproj

from . import __version__, schema
from .errors import CaseError
from .evidence import sha256_file
from .extras import require

__all__ = [
    "GEO_KINDS",
    "PARTITIONED",
    "QUALITY",
    "SORT_KEYS",
    "TABLE_KINDS",
    "Case",
    "TimeSlice",
    "atomic_write",
    "concat_tables",
    "generation_time",
    "lock_case",
    "open_case",
    "sort_table",
    "writes_case",
]

MANIFEST = "case.json"
QUALITY = "quality.csv"
LOCK = ".lock"
STAGING = ".staging"
TABLE_KINDS = ("fixes", "events", "places", "sources", "rejects")
GEO_KINDS = ("fixes", "events", "places")
#: tables stored as one part per source (the large ones); the others are one file each
PARTITIONED = ("fixes", "events", "places")
SORT_KEYS: dict[str, list[str]] = {
    "fixes": ["subject_id", "t_utc", "source_id", "record"],
    "events": ["subject_id", "t_utc", "source_id", "record", "kind"],
    "places": ["source_id", "record"],
    "sources": ["path", "source_id"],
    "rejects": ["source_id", "record"],
}
#: the partitioned tables stored in time order (per subject), whose parts' row groups are cut
#: at UTC days (:func:`_day_groups`); places are stored by record, not by time
BY_DAY = ("fixes", "events")
#: a Dask partition of a stored table holds whole part files, about this many rows
DASK_PARTITION_ROWS = 250_000
#: the ledger of the parts of the partitioned tables (module docstring): one row per part
LEDGER = "parts.parquet"
LEDGER_SCHEMA = pa.schema([("rel", pa.string()), ("sha256", pa.string()), ("rows", pa.int64())])
#: new ledger rows held in memory at most; then staged as a chunk until the commit
LEDGER_CHUNK = 4096
#: rows per row group of the ledger written (fixed: the same parts give the same bytes)
LEDGER_GROUP_ROWS = 4096
#: staged files moved into place (and their folders fsync-ed) at a time, at the commit
PUBLISH_BATCH = 4096
_CHUNK_PREFIX = "#parts-"  # a staged ledger chunk ('#' is escaped in staged files' names)
_PART_DIRS = tuple(f"tables/{n}/" for n in PARTITIONED)
#: test hook: ``stage:N`` (the N-th staged file) or ``commit`` (after case.json is written,
#: before the staged files are moved) sends SIGKILL to this process, like a crash there
KILL_HOOK = "ROUTETRACE_TEST_KILL_AT"

P = ParamSpec("P")
R = TypeVar("R")


def generation_time() -> str:
    """The generation stamp: ``SOURCE_DATE_EPOCH`` if set (reproducible builds), else now (UTC).

    Returns
    -------
    str
        ISO-8601 UTC time to the second, ``YYYY-MM-DDTHH:MM:SSZ``.

    Raises
    ------
    CaseError
        When ``SOURCE_DATE_EPOCH`` is not a whole number of seconds.

    Example
    -------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"SOURCE_DATE_EPOCH": "1767225600"}):  # set for the block
    ...     generation_time()
    '2026-01-01T00:00:00Z'
    """
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde is not None:
        try:
            ts = pd.Timestamp(int(sde), unit="s", tz="UTC")
        except ValueError as exc:
            raise CaseError(f"SOURCE_DATE_EPOCH={sde!r} is not a whole number of seconds") from exc
    else:
        ts = pd.Timestamp.now(tz="UTC").floor("s")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def sort_table(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``df`` in the stored order of table ``kind``: by its :data:`SORT_KEYS` that ``df``
    has (a stable sort, missing values last), with a fresh index; a table without sort
    keys keeps its row order. Sorting before writing makes case files byte-identical.

    Parameters
    ----------
    df : pandas.DataFrame
        The rows; not modified.
    kind : str
        The table name (``fixes``, ``events``, ...; any other name: no keys).

    Returns
    -------
    pandas.DataFrame
        The sorted rows, index ``0..n-1``.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(t_utc=["2025-10-26T21:01Z", "2025-10-26T21:00Z"], lat=[51.001, 51.0], lon=3.87)
    >>> sort_table(f, "fixes")["lat"].tolist()
    [51.0, 51.001]
    """
    keys = [k for k in SORT_KEYS.get(kind, []) if k in df.columns]
    if not keys or df.empty:
        return df.reset_index(drop=True)
    return df.sort_values(keys, kind="mergesort", na_position="last").reset_index(drop=True)


# ---------------------------------------------------------------- files written durably


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary file in the same
    folder, which is ``fsync``-ed and renamed over ``path`` (``os.replace``).

    A crash or a full disk leaves the old ``path`` (or none), never a truncated one.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write (its folder is made if missing).
    write : callable
        ``write(tmp)`` writes the whole content to the temporary file ``tmp``.

    Returns
    -------
    pathlib.Path
        ``path``, now holding what ``write`` wrote.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = Path(tmp.name) / "a.txt"
    >>> atomic_write(p, lambda t: t.write_text("hello")).read_text()
    'hello'
    >>> tmp.cleanup()
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        _fsync_path(tmp)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_path(p.parent, directory=True)
    return p


_KILL_COUNTS: dict[str, int] = {}


def _crash_point(where: str) -> None:
    spec = os.environ.get(KILL_HOOK)
    if not spec:
        return
    name, _, n = spec.partition(":")
    if name == where:
        _KILL_COUNTS[where] = _KILL_COUNTS.get(where, 0) + 1
        if _KILL_COUNTS[where] >= int(n or 1):
            os.kill(os.getpid(), signal.SIGKILL)


#: most rows per Parquet row group (most of a day of a 1 Hz phone). The parts of fixes and
#: events (:data:`BY_DAY`) are also cut where the UTC day changes (:func:`_day_groups`), so
#: a read of one day (:class:`Selection`, :meth:`Case.time_slices`) skips the groups of the
#: other days by their statistics, even in a source that spans months (a tracker's dump)
ROW_GROUP_ROWS = 65_536
#: rows per row group of table ``sources``: an ingest writes it a row group at a time
#: (:meth:`Case.write_table_batches`), holding one group, so a small one
SOURCES_GROUP_ROWS = 8192


def group_rows(name: str) -> int:
    """Rows per Parquet row group of table ``name`` (:data:`ROW_GROUP_ROWS`; ``sources``:
    :data:`SOURCES_GROUP_ROWS`)."""
    return SOURCES_GROUP_ROWS if name == "sources" else ROW_GROUP_ROWS


#: the index type of every dictionary column written: one type in all the parts of a table,
#: so that a reader of the whole folder (``pd.read_parquet("CASE/tables/fixes")``) can join
#: parts whose dictionaries differ in size (pandas would write int8 for < 128 texts)
DICTIONARY_INDEX = pa.int32()


def _dictionary_schema(table: pa.Table) -> pa.Table:
    """``table`` with each dictionary column's indices as :data:`DICTIONARY_INDEX`."""
    fields = [f.with_type(pa.dictionary(DICTIONARY_INDEX, f.type.value_type))
              if pa.types.is_dictionary(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _day_groups(t_utc: pd.Series, rows: int = ROW_GROUP_ROWS) -> list[int]:
    """Where row groups start in rows with times ``t_utc`` (a part's, in stored order): at
    the first row, wherever the UTC day differs from the row before, and every ``rows``
    rows within one day."""
    ns = t_utc.to_numpy(dtype="datetime64[ns]").astype("int64")
    day = np.floor_divide(ns, 86_400 * 10**9)
    runs = [*np.flatnonzero(np.r_[True, day[1:] != day[:-1]]).tolist(), len(ns)]
    return [k for a, b in itertools.pairwise(runs) for k in range(a, b, rows)]


def _write_parquet(df: pd.DataFrame, path: Path, *, geo: bool, by_day: bool = False,
                   group: int | None = None) -> None:
    """Write ``df`` as GeoParquet (``geo``) or Parquet, zstd, row groups of at most
    ``group`` rows (default :data:`ROW_GROUP_ROWS`); ``by_day``: also cut where the UTC
    day changes."""
    out = df.reset_index(drop=True)
    out.attrs = {}  # parameters live in case.json; attrs may hold tables (not JSON)
    # dictionary columns (schema.DICTIONARY) are written as Parquet dictionaries holding the
    # texts this file's rows use: a source's part never depends on the other sources
    cats = [c for c in out.columns if isinstance(out[c].dtype, pd.CategoricalDtype)]
    if cats:
        out = out.assign(**{c: out[c].cat.remove_unused_categories() for c in cats})
    table = pa.Table.from_pandas(out, preserve_index=False)
    if geo:
        table = _with_point_geometry(table, out["lat"].to_numpy(dtype=float),
                                     out["lon"].to_numpy(dtype=float))
    table = _dictionary_schema(table) if cats else table
    rows = group or ROW_GROUP_ROWS
    # a dictionary with more texts than a row group has rows (teltonika_io's record: one
    # per record, ~10 rows each) is written per row group, holding the texts its rows use:
    # Parquet stores a column's dictionary in every row group, so the whole one would be
    # written, compressed and stored once per row group (at 1e6 records: 168 times, 20 s)
    wide = [c for c in cats if len(out[c].cat.categories) > rows]
    starts = (_day_groups(out["t_utc"], rows) if by_day and "t_utc" in out.columns and len(out)
              else [0])
    if len(starts) <= 1 and not wide:
        pq.write_table(table, path, compression="zstd", row_group_size=rows)
        return
    if len(starts) <= 1:
        starts = list(range(0, len(out), rows)) or [0]
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for a, b in itertools.pairwise([*starts, len(out)]):
            part = table.slice(a, b - a)
            writer.write_table(_used_texts(part, wide) if wide else part, row_group_size=b - a)


def _used_texts(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """``table`` with the dictionary columns ``names`` encoded again from the texts its rows
    use (indices :data:`DICTIONARY_INDEX`; missing values stay missing).

    >>> t = pa.table({"r": pa.array(["a", "b", "c", "b"]).dictionary_encode()}).slice(1, 2)
    >>> _used_texts(t, ["r"])["r"].chunk(0).dictionary.to_pylist()
    ['b', 'c']
    """
    for name in names:
        i = table.schema.get_field_index(name)
        texts = table.column(i).cast(table.schema.field(i).type.value_type)
        encoded = texts.combine_chunks().dictionary_encode()
        encoded = pa.DictionaryArray.from_arrays(encoded.indices.cast(DICTIONARY_INDEX),
                                                 encoded.dictionary)
        table = table.set_column(i, table.schema.field(i), encoded)
    return table


#: the bytes of one WKB point (ISO/OGC, little-endian): byte order, type 1, x, y
_WKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


@functools.cache
def _wgs84_projjson() -> dict[str, Any]:
    """EPSG:4326 as PROJJSON, the form GeoParquet states a CRS in."""
    return dict(pyproj.CRS.from_epsg(4326).to_json_dict())


def _with_point_geometry(table: pa.Table, lat: np.ndarray, lon: np.ndarray) -> pa.Table:
    """``table`` with a GeoParquet ``geometry`` column of WKB points (lon, lat; null where
    either is missing) and the ``geo`` metadata that GeoParquet 1.1 readers (QGIS, GDAL,
    geopandas) expect; built in a few vectorised passes, no Python object per row (a 1e6-row
    part through shapely and geopandas held ~200 MB more)."""
    n = len(lat)
    rec = np.empty(n, dtype=_WKB_POINT)
    rec["order"], rec["type"], rec["x"], rec["y"] = 1, 1, lon, lat
    missing = np.isnan(lat) | np.isnan(lon)
    offsets = np.arange(0, _WKB_POINT.itemsize * (n + 1), _WKB_POINT.itemsize, dtype=np.int32)
    validity = pa.array(~missing).buffers()[1] if missing.any() else None
    wkb = pa.Array.from_buffers(pa.binary(), n, [validity, pa.py_buffer(offsets),
                                                 pa.py_buffer(rec.view(np.uint8))],
                                null_count=int(missing.sum()))
    column: dict[str, Any] = {"encoding": "WKB", "crs": _wgs84_projjson(),
                              "geometry_types": ["Point"] if n > int(missing.sum()) else []}
    if column["geometry_types"]:
        x, y = lon[~missing], lat[~missing]
        column["bbox"] = [float(x.min()), float(y.min()), float(x.max()), float(y.max())]
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column},
           "creator": {"library": "routetrace", "version": __version__}}
    meta = {**(table.schema.metadata or {}), b"geo": json.dumps(geo).encode()}
    return table.append_column("geometry", wkb).replace_schema_metadata(meta)


def _read_table(path: Path, kind: str | None) -> pd.DataFrame:
    df = pd.read_parquet(path)
    if "geometry" in df.columns:
        df = df.drop(columns="geometry")
    df = pd.DataFrame(df)
    if kind in schema.CANONICAL:
        df = schema.coerce(df, kind)
    return df


def _read_parts(paths: Sequence[Path], kind: str | None,
                columns: Sequence[str] | None = None, *,
                where: Selection | None = None) -> pd.DataFrame:
    """The parts of one table as one frame: schema dtypes, ``columns`` (default: all but
    the geometry), sorted as :func:`sort_table` sorts the whole table; only the rows
    ``where`` selects (its filters are pushed down to Parquet: row groups whose
    statistics exclude them are not read)."""
    if len(paths) == 1 and columns is None and where is None:
        return _read_table(paths[0], kind)
    names = [c for c in pq.read_schema(paths[0]).names if c != "geometry"]
    want = [c for c in names if columns is None or c in columns]
    if kind in schema.CANONICAL:  # coercion needs the required columns
        need = {c.name for c in schema.columns(kind) if c.required}
        want = [c for c in names if c in want or c in need]
    try:
        arrow = pa.concat_tables(_same_text_types([_read_selected(p, want, where) for p in paths]),
                                 promote_options="permissive")
    except FileNotFoundError as exc:
        raise CaseError("a table file of the case is gone: another process changed the case "
                        "while it was open here; open it again", path=str(exc.filename)) from exc
    df = arrow.to_pandas()
    if kind in schema.CANONICAL:
        df = schema.coerce(df, kind)
    if len(paths) > 1:
        df = sort_table(df, kind or "")
    return df if columns is None else _wanted(df, kind, columns)


def _wanted(df: pd.DataFrame, kind: str | None, columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` of ``df``, in its order; a derived id asked for (``fix_id``, ``event_id``:
    :data:`routetrace.schema.DERIVED_IDS`) is built from the provenance first."""
    if kind in schema.DERIVED_IDS and schema.DERIVED_IDS[kind] in columns:
        df = schema.with_ids(df, kind)
    return df[[c for c in df.columns if c in columns]]


def _read_group(paths: Sequence[Path], where: Selection | None, *, kind: str,
                columns: Sequence[str] | None, empty: pd.DataFrame) -> pd.DataFrame:
    """One partition of :meth:`Case.dask_tables_by_subject`: the rows of ``paths`` that
    ``where`` selects (``empty`` when the partition has no file of this table)."""
    return _read_parts(paths, kind, columns, where=where) if paths else empty


def _read_selected(path: Path, columns: list[str], where: Selection | None) -> pa.Table:
    """``columns`` of the rows of part ``path`` that ``where`` selects: the row groups whose
    footer statistics may hold them (:meth:`Selection.may_hold`), then their rows filtered.
    The same rows as ``pq.read_table(path, filters=where.filters())``, without the dataset
    machinery that costs ~1.5 ms a file (a day of a fleet of day files opens thousands)."""
    if where is None:
        return pq.read_table(path, columns=columns)
    pf = pq.ParquetFile(path)
    md = pf.metadata
    names = [md.schema.column(j).path for j in range(md.num_columns)]
    groups = [g for g in range(md.num_row_groups) if where._group_may_hold(md.row_group(g), names)]
    table = pf.read_row_groups(groups, columns=[*columns, *(c for c in ("t_utc", "subject_id")
                                                          if c not in columns and c in names)])
    keep = None
    for name, op, value in where.filters() or []:
        col = table.column(name)
        if op == "in":
            hit = pc.is_in(col.cast(pa.large_string()), value_set=pa.array(value, type=pa.large_string()))
        else:
            bound = pa.scalar(pd.Timestamp(value).as_unit("ns").value, type=pa.int64())
            t = col.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
            hit = pc.greater_equal(t, bound) if op == ">=" else pc.less(t, bound)
        keep = hit if keep is None else pc.and_kleene(keep, hit)
    if keep is not None:
        table = table.filter(keep)
    return table.select(columns)


def _same_text_types(tables: list[pa.Table]) -> list[pa.Table]:
    """Parts whose text column is a dictionary in some and plain in others (a part written
    before the dictionary form, or by a stage that rewrote the column as plain text): the
    plain ones dictionary-encoded, every such column ``dictionary<int32, large_string>``
    (Arrow joins no dictionary with plain text)."""
    names = {f.name for t in tables for f in t.schema if pa.types.is_dictionary(f.type)}
    if not names or len(tables) < 2:
        return tables
    target = pa.dictionary(DICTIONARY_INDEX, pa.large_string())
    out = []
    for t in tables:
        for name in names & set(t.column_names):
            col = t.column(name)
            if pa.types.is_dictionary(col.type) and col.type == target:
                continue
            if not pa.types.is_dictionary(col.type):
                col = pc.dictionary_encode(col.cast(pa.large_string()))
            t = t.set_column(t.schema.get_field_index(name), name, col.cast(target))
        out.append(t)
    return out


@dataclass(frozen=True)
class Selection:
    """Rows of a large table by subject and time: ``subjects`` (None: all) and
    ``t_from`` <= t_utc < ``t_to`` (None: open). Part files whose Parquet statistics
    exclude the selection are not opened; inside the others, row groups are skipped the
    same way."""

    subjects: tuple[str, ...] | None = None
    t_from: pd.Timestamp | None = None
    t_to: pd.Timestamp | None = None

    def filters(self) -> list[tuple[str, str, Any]] | None:
        """The selection as pyarrow filters (None when it selects everything)."""
        out: list[tuple[str, str, Any]] = []
        if self.subjects is not None:
            out.append(("subject_id", "in", list(self.subjects)))
        if self.t_from is not None:
            out.append(("t_utc", ">=", self.t_from))
        if self.t_to is not None:
            out.append(("t_utc", "<", self.t_to))
        return out or None

    def may_hold(self, path: Path) -> bool:
        """Whether part file ``path`` may hold selected rows (from its footer alone)."""
        md = pq.ParquetFile(path).metadata
        names = [md.schema.column(j).path for j in range(md.num_columns)]
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            if rg.num_rows and self._group_may_hold(rg, names):
                return True
        return False

    def _group_may_hold(self, rg: Any, names: list[str]) -> bool:
        def stats(col: str) -> Any:
            st = rg.column(names.index(col)).statistics if col in names else None
            return st if st is not None and st.has_min_max else None

        if self.subjects is not None and (st := stats("subject_id")) is not None:
            if not any(str(st.min) <= s <= str(st.max) for s in self.subjects):
                return False
        if (st := stats("t_utc")) is not None:
            lo, hi = pd.Timestamp(st.min), pd.Timestamp(st.max)
            lo, hi = (lo.tz_localize("UTC") if lo.tzinfo is None else lo,
                      hi.tz_localize("UTC") if hi.tzinfo is None else hi)
            if self.t_from is not None and hi < self.t_from:
                return False
            if self.t_to is not None and lo >= self.t_to:
                return False
        return True


@dataclass(frozen=True)
class TimeSlice:
    """One period of a partitioned table, to be read on a worker: the rows with
    ``t_from - reach_back`` <= t_utc < ``t_to``, from ``files`` only (the parts whose
    footers say they may hold such rows; row groups outside it are skipped too).

    A stage over time that needs the ``reach_back`` before each period (co-presence: the
    ``max_dt`` before it, so the earlier fix of every pair is there) runs on each slice and
    keeps what belongs to its own period, ``t_from`` <= t < ``t_to``. Made by
    :meth:`Case.time_slices`; :meth:`read` is the only reading, so the stage itself opens
    no file.
    """

    kind: str
    files: tuple[Path, ...]
    t_from: pd.Timestamp
    t_to: pd.Timestamp
    reach_back: pd.Timedelta
    columns: tuple[str, ...] | None = None

    def read(self) -> pd.DataFrame:
        """The slice's rows (its period and the ``reach_back`` before it), with the dtypes
        of :meth:`Case.table`, sorted as the table is; only ``columns`` (default all)."""
        cols = None if self.columns is None else list(self.columns)
        where = Selection(None, self.t_from - self.reach_back, self.t_to)
        return _read_parts(list(self.files), self.kind, cols, where=where)


def _file_time_range(path: Path) -> tuple[int, int] | None:
    """(first, last) ``t_utc`` of part file ``path`` in ns since 1970 UTC, from its footer's
    row-group statistics (from the column itself when a row group has none); None when it
    has no times."""
    try:
        md = pq.ParquetFile(path).metadata
    except FileNotFoundError as exc:
        raise CaseError("a table file of the case is gone: another process changed the case "
                        "while it was open here; open it again", path=str(exc.filename)) from exc
    names = [md.schema.column(j).path for j in range(md.num_columns)]
    if "t_utc" not in names:
        raise CaseError("a part of the table has no t_utc column: it cannot be read by period",
                        path=str(path))
    i = names.index("t_utc")
    lo, hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        if not rg.num_rows:
            continue
        st = rg.column(i).statistics
        if st is None or not st.has_min_max:
            return _exact_time_range(path)
        a, b = pd.Timestamp(st.min), pd.Timestamp(st.max)
        a = a.tz_localize("UTC") if a.tzinfo is None else a
        b = b.tz_localize("UTC") if b.tzinfo is None else b
        lo, hi = min(lo, a.as_unit("ns").value), max(hi, b.as_unit("ns").value)
    return (lo, hi) if lo <= hi else None


def _exact_time_range(path: Path) -> tuple[int, int] | None:
    """(first, last) ``t_utc`` of part file ``path`` read from its ``t_utc`` column (a part
    written without statistics)."""
    col = pq.read_table(path, columns=["t_utc"]).column(0)
    if col.null_count == len(col):
        return None
    mm = pc.min_max(col.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()))
    return int(mm["min"].as_py()), int(mm["max"].as_py())


def _selection(subjects: Sequence[str] | None, t_from: Any, t_to: Any) -> Selection | None:
    """A :class:`Selection`, or None when nothing is selected away."""
    if subjects is None and t_from is None and t_to is None:
        return None

    def utc(t: Any) -> pd.Timestamp | None:
        if t is None:
            return None
        ts = pd.Timestamp(t)
        if ts.tzinfo is None:
            raise CaseError(f"time {t!r} has no time zone: give UTC, e.g. {ts.isoformat()}Z")
        return ts.tz_convert("UTC")

    return Selection(None if subjects is None else tuple(str(s) for s in subjects),
                     utc(t_from), utc(t_to))


def part_rel(name: str, source_id: str, part: int = 0) -> str:
    """Where part ``part`` of the rows of source ``source_id`` of partitioned table ``name``
    is stored, relative to the case folder.

    A source has one part (``part-0.parquet``) unless its loader streamed it in parts
    (:meth:`Case.append_part`): the later ones are ``part-00001.parquet``, ... (sorted in
    the order they were written).

    Example
    -------
    >>> part_rel("fixes", "9f2c" * 16), part_rel("fixes", "9f2c" * 16, 3)
    ('tables/fixes/source=9f2c9f2c9f2c9f2c/part-0.parquet', 'tables/fixes/source=9f2c9f2c9f2c9f2c/part-00003.parquet')
    """
    if part < 0:
        raise ValueError(f"part must be >= 0, got {part}")
    leaf = "part-0" if part == 0 else f"part-{part:05d}"
    return f"{_source_dir(name, source_id)}{leaf}.parquet"


def _source_dir(name: str, source_id: str) -> str:
    return f"tables/{name}/source={source_id[:16]}/"


def _group_files(paths: Sequence[Path], rows: int) -> list[list[Path]]:
    """Consecutive part files in groups of about ``rows`` rows (one Dask partition each)."""
    groups: list[list[Path]] = [[]]
    n = 0
    for p in paths:
        k = pq.ParquetFile(p).metadata.num_rows
        if groups[-1] and n + k > rows:
            groups.append([])
            n = 0
        groups[-1].append(p)
        n += k
    return groups


def _file_subjects(path: Path) -> tuple[set[str], int]:
    """The subjects in one part file and its row count, from one read of its footer: the
    subjects from the Parquet statistics when each row group holds one subject, else from
    its subject_id column."""
    md = pq.ParquetFile(path).metadata
    names = [md.schema.column(j).path for j in range(md.num_columns)]
    if "subject_id" not in names:
        return set(), md.num_rows
    i = names.index("subject_id")
    found = set()
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(i).statistics
        if st is None or not st.has_min_max or st.min != st.max or st.null_count:
            col = pq.read_table(path, columns=["subject_id"]).column(0)
            return {str(x) for x in pc.unique(col).to_pylist()}, md.num_rows
        found.add(str(st.min))
    return found, md.num_rows


def _group_whole_subjects(paths: Sequence[Path], rows: int) -> list[list[Path]]:
    """Part files in groups of about ``rows`` rows such that all the files holding one
    subject are in one group (files that share a subject are joined first)."""
    return [files for files, _ in _subject_groups(paths, rows)]


def _subject_groups(paths: Sequence[Path], rows: int) -> list[tuple[list[Path], set[str]]]:
    """:func:`_group_whole_subjects` with the subjects of each group."""
    parent = list(range(len(paths)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    rows_of: dict[Path, int] = {}
    subjects_of: dict[Path, set[str]] = {}
    for i, p in enumerate(paths):
        subjects_of[p], rows_of[p] = _file_subjects(p)
        for subject in sorted(subjects_of[p]):
            if subject in owner:
                parent[find(i)] = find(owner[subject])
            else:
                owner[subject] = i
    comps: dict[int, list[Path]] = {}
    for i, p in enumerate(paths):
        comps.setdefault(find(i), []).append(p)
    groups: list[tuple[list[Path], set[str]]] = [([], set())]
    n = 0
    for files in comps.values():
        k = sum(rows_of[p] for p in files)
        if groups[-1][0] and n + k > rows:
            groups.append(([], set()))
            n = 0
        groups[-1][0].extend(files)
        groups[-1][1].update(*(subjects_of[p] for p in files))
        n += k
    return groups


def _files_of_subjects(paths: Sequence[Path], subjects: Sequence[set[str]]) -> tuple[
        list[list[Path]], list[Selection | None]]:
    """Part files ``paths`` (of another table) sent to the groups of ``subjects``: a file
    goes to each group holding one of its subjects, and a group reading a file that also
    holds another group's subjects selects its own rows (a :class:`Selection`). The rows of
    subjects in no group go to the last one, so every row is in exactly one group."""
    group_of = {s: k for k, group in enumerate(subjects) for s in group}
    files: list[list[Path]] = [[] for _ in subjects]
    mixed = [False] * len(subjects)
    last = len(subjects) - 1
    orphans: set[str] = set()
    for p in paths:
        found, _ = _file_subjects(p)
        ks = sorted({group_of.get(s, last) for s in found})
        orphans |= {s for s in found if s not in group_of}
        for k in ks:
            files[k].append(p)
            mixed[k] |= len(ks) > 1
    where = [Selection(tuple(sorted(subjects[k] | (orphans if k == last else set()))))
             if mixed[k] else None for k in range(len(subjects))]
    return files, where


# ---------------------------------------------------------------- the case lock

_HELD: dict[str, list[int]] = {}  # case folder (real path) -> [lock fd, depth] in this process


def _scratch(name: str) -> bool:
    """The lock, the staging folder, a manifest being written: not content of the case."""
    return name in (LOCK, STAGING) or name.startswith(f".{MANIFEST}.tmp-")


def _is_part(rel: str) -> bool:
    """Whether the case file ``rel`` is a part of a partitioned table (listed in the ledger)."""
    return rel.startswith(_PART_DIRS)


def _ledger_table(rows: Sequence[tuple[str, str, int | None]]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    return pa.table([pa.array(c, f.type) for c, f in zip(cols, LEDGER_SCHEMA, strict=True)],
                    schema=LEDGER_SCHEMA)


def _read_ledger(path: Path) -> Iterator[pa.Table]:
    """The ledger at ``path``, a row group at a time; :class:`CaseError` when it is missing
    or damaged."""
    try:
        pf = pq.ParquetFile(path)
        for i in range(pf.num_row_groups):
            yield pf.read_row_group(i)
    except (OSError, pa.ArrowException) as exc:
        raise CaseError(f"the ledger of the parts is missing or damaged ({exc}); the tables "
                        "cannot be listed: run routetrace verify, restore the case from a copy",
                        path=str(path)) from exc


def _staged_name(rel: str) -> str:
    """Staged files lie flat in .staging/ (one folder to fsync): ``rel`` with its slashes escaped."""
    return urllib.parse.quote(rel, safe="")


def _check_lockable(r: Path, *, create: bool) -> None:
    if (r / MANIFEST).exists():
        return
    if not create:
        raise CaseError("not a case folder (no case.json); create one with `routetrace ingest`",
                        path=str(r))
    if r.exists() and not all(_scratch(p.name) for p in r.iterdir()):
        raise CaseError("folder exists, is not empty and is not a case; choose a new folder",
                        path=str(r))


def _acquire(r: Path, *, create: bool, wait: bool) -> int | None:
    """Open and flock ``r/.lock``; None when ``wait`` is false and another process has it."""
    while True:
        _check_lockable(r, create=create)
        if create:
            r.mkdir(parents=True, exist_ok=True)
        lock = r / LOCK
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue  # the folder was removed meanwhile (a first ingest that loaded nothing)
        except OSError as exc:
            raise CaseError(f"cannot lock the case: {exc.strerror}", path=str(lock)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # we locked a lock file that was deleted meanwhile: lock the new one


@contextlib.contextmanager
def lock_case(root: str | Path, *, create: bool = False) -> Iterator[None]:
    """Hold the case lock of ``root`` (waiting for another process that holds it).

    Re-entrant within a process. On first acquiring it, what a crashed writer left is
    settled (see the module docstring). ``create`` makes the folder when it is new.

    Parameters
    ----------
    root : str or pathlib.Path
        The case folder.
    create : bool
        Make the folder (new, or empty) instead of refusing a folder without ``case.json``.

    Returns
    -------
    contextlib.AbstractContextManager
        Holds the lock while its ``with`` block runs.

    Raises
    ------
    CaseError
        ``root`` is not a case folder (and ``create`` is false), or cannot be locked.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with lock_case(Path(tmp.name) / "case-42", create=True):
    ...     (Path(tmp.name) / "case-42" / ".lock").exists()
    True
    >>> tmp.cleanup()
    """
    r = Path(root)
    key = os.path.realpath(r)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            if key in _HELD:  # an outer holder that failed may have released it already
                _HELD[key][1] -= 1
        return
    fd = _acquire(r, create=create, wait=True)
    assert fd is not None
    _HELD[key] = [fd, 1]
    try:
        _recover(r)
        yield
    finally:
        del _HELD[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def writes_case(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: a job whose first argument is a case folder holds its lock while it runs.

    Parameters
    ----------
    fn : callable
        The job; its first parameter is the case folder (positional or by keyword).

    Returns
    -------
    callable
        ``fn`` with the same signature, run inside :func:`lock_case` of that folder.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import example_case
    >>> @writes_case
    ... def n_sources(root):
    ...     return len(open_case(root).table("sources"))
    >>> tmp = tempfile.TemporaryDirectory()
    >>> n_sources(example_case(Path(tmp.name) / "case"))
    2
    >>> tmp.cleanup()
    """
    first = next(iter(inspect.signature(fn).parameters))

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        root = args[0] if args else kwargs[first]
        with lock_case(root):  # type: ignore[arg-type]
            return fn(*args, **kwargs)
    return run


def _manifest_outputs(r: Path) -> dict[str, str] | None:
    try:
        return dict(json.loads((r / MANIFEST).read_text(encoding="utf-8")).get("outputs", {}))
    except (OSError, ValueError):
        return None


def _remove_empty_dirs(top: Path) -> None:
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            d.rmdir()


def _recover(r: Path) -> list[str]:
    """Settle what a crashed writer left (the lock held): staged files that the committed
    manifest names with their hash are moved into place, the rest are discarded, and files
    under tables/ that the manifest does not name are removed. Returns the files moved."""
    for tmp in r.glob(f".{MANIFEST}.tmp-*"):
        tmp.unlink()
    staging = r / STAGING
    if not staging.exists():
        return []
    outputs = _manifest_outputs(r)
    moved, dirs = [], set()
    ledger = staging / _staged_name(LEDGER)  # first: the committed ledger names the parts
    if outputs is not None and ledger.exists() and outputs.get(LEDGER) == sha256_file(ledger):
        os.replace(ledger, r / LEDGER)
        moved.append(LEDGER)
        dirs.add(r)
    listed = True  # the files under tables/ that the case holds are known
    if outputs is not None and LEDGER in outputs:
        try:
            for t in _read_ledger(r / LEDGER):
                outputs.update(zip(t["rel"].to_pylist(), t["sha256"].to_pylist(), strict=True))
        except CaseError:
            listed = False  # a damaged ledger: no part is taken for an orphan and removed
    for f in sorted(staging.iterdir()):
        rel = urllib.parse.unquote(f.name)
        if outputs is not None and outputs.get(rel) == sha256_file(f):
            dirs |= _make_parents(r / rel)
            os.replace(f, r / rel)
            moved.append(rel)
    for d in dirs:
        _fsync_path(d, directory=True)
    if outputs is not None and listed and (r / "tables").is_dir():
        for f in (p for p in (r / "tables").rglob("*") if p.is_file()):
            if f.relative_to(r).as_posix() not in outputs:
                f.unlink()
        _remove_empty_dirs(r / "tables")
    shutil.rmtree(staging)
    _fsync_path(r, directory=True)
    return moved


def _make_parents(path: Path) -> set[Path]:
    """Make the folders above ``path``; return the folders whose entries changed (to fsync)."""
    changed = {path.parent}
    missing = [d for d in path.parents if not d.exists()]
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        changed.add(d.parent)
    return changed


def _try_recover(r: Path) -> None:
    """:func:`_recover` when no process (this one included) is writing the case."""
    if os.path.realpath(r) in _HELD:
        return
    try:
        fd = _acquire(r, create=False, wait=False)
    except CaseError:
        return
    if fd is None:
        return
    try:
        _recover(r)
    except OSError:
        pass  # a read-only copy of the case: read it as it is
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# ---------------------------------------------------------------- the case


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


@dataclass
class Case:
    """An opened case folder. Tables are read lazily from Parquet and cached.

    Writes (:meth:`write_table`, :meth:`write_parts`, :meth:`stage_output`, ...) are staged
    and become part of the case when the manifest is saved (:meth:`save_manifest`,
    :meth:`set_parameters`, :meth:`record_outputs`); :meth:`abort` discards them.
    """

    root: Path
    manifest: dict[str, Any]
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _on_disk: bytes | None = field(default=None, repr=False)  # case.json as read or written
    _staged: set[str] = field(default_factory=set, repr=False)  # rels staged (_staged_path)
    _unhashed: set[str] = field(default_factory=set, repr=False)  # staged, hashed at commit
    _dropped: set[str] = field(default_factory=set, repr=False)  # deleted at commit
    _txn: contextlib.ExitStack | None = field(default=None, repr=False)  # the lock while writing
    # the ledger (LEDGER): the committed one read on demand (rel -> sha256, rows), the parts
    # this run added (in memory, then in staged chunks), and those it wrote again
    _committed: dict[str, tuple[str, int | None]] | None = field(default=None, repr=False)
    _new_rows: list[tuple[str, str, int]] = field(default_factory=list, repr=False)
    _new_chunks: int = field(default=0, repr=False)
    _override: dict[str, tuple[str, int | None]] = field(default_factory=dict, repr=False)

    @property
    def case_id(self) -> str:
        """The case identifier (given at creation, default: the folder name)."""
        return str(self.manifest["case_id"])

    # ------------------------------------------------------------ reading

    @property
    def _outputs(self) -> dict[str, str]:
        out: dict[str, str] = self.manifest.setdefault("outputs", {})
        return out

    def _files(self, name: str) -> list[str]:
        """The files of table ``name`` (relative to the case folder), sorted."""
        if "outputs" not in self.manifest:  # a case written before outputs were recorded
            p = self.root / "tables" / f"{name}.parquet"
            return [f"tables/{name}.parquet"] if p.is_file() else []
        single = f"tables/{name}.parquet"
        found = set(self._part_rels(f"tables/{name}/")) if name in PARTITIONED else set()
        return sorted(found | ({single} if single in self._outputs else set()))

    def _path(self, rel: str) -> Path:
        if rel in self._staged or (self._txn is not None and _is_part(rel)
                                   and self._staged_path(rel).exists()):
            return self._staged_path(rel)
        return self.root / rel

    def _ledger_runs(self, prefix: str = "") -> list[Iterator[pa.Table]]:
        """The ledger as it stands in this run (committed, less what was dropped or written
        again, plus what was added) as runs sorted by path, each read a row group at a time
        when iterated; only the parts whose path starts with ``prefix``."""
        skip = self._dropped | set(self._override)
        skip_set = pa.array(sorted(skip), pa.string()) if skip else None

        def kept(tables: Iterable[pa.Table], *, fresh: bool = False) -> Iterator[pa.Table]:
            for t in tables:
                if prefix:
                    t = t.filter(pc.starts_with(t["rel"], prefix))
                if skip_set is not None and not fresh and len(t):
                    t = t.filter(pc.invert(pc.is_in(t["rel"], value_set=skip_set)))
                yield t

        runs = []
        if LEDGER in self._outputs:
            runs.append(kept(_read_ledger(self._path(LEDGER))))
        legacy = [(k, v, None) for k, v in sorted(self._outputs.items()) if _is_part(k)]  # an older case
        if legacy:
            runs.append(kept([_ledger_table(legacy)]))
        runs += [kept(_read_ledger(self._chunk_path(k))) for k in range(self._new_chunks)]
        if self._new_rows:
            runs.append(kept([_ledger_table(sorted(self._new_rows))]))
        if self._override:
            runs.append(kept([_ledger_table([(r, *v) for r, v in sorted(self._override.items())])],
                             fresh=True))
        return runs

    def _ledger_pieces(self, prefix: str = "") -> Iterator[pa.Table]:
        """The ledger as it stands (:meth:`_ledger_runs`), a piece at a time, in no order."""
        for run in self._ledger_runs(prefix):
            yield from run

    def _part_rels(self, prefix: str) -> list[str]:
        """The parts (relative paths) whose path starts with ``prefix``, in ledger order."""
        return [r for t in self._ledger_pieces(prefix) for r in t["rel"].to_pylist()]

    def _chunk_path(self, k: int) -> Path:
        return self.root / STAGING / f"{_CHUNK_PREFIX}{k:05d}.parquet"

    def scratch_path(self, name: str) -> Path:
        """A path for a scratch file of this run (in .staging/, never part of the case:
        deleted at the commit or when the run fails); takes the case lock."""
        self._begin()
        (self.root / STAGING).mkdir(exist_ok=True)
        return self.root / STAGING / f"#{name}"

    def _committed_part(self, rel: str) -> tuple[str, int | None] | None:
        """The SHA-256 and rows the committed ledger gives part ``rel`` (None: not there)."""
        if self._committed is None:
            self._committed = {}
            if LEDGER in self._outputs and (self.root / LEDGER).is_file():
                for t in _read_ledger(self.root / LEDGER):
                    self._committed.update(zip(t["rel"].to_pylist(),
                                               zip(t["sha256"].to_pylist(), t["rows"].to_pylist(),
                                                   strict=True), strict=True))
            self._committed.update({k: (v, None) for k, v in self._outputs.items() if _is_part(k)})
        return self._committed.get(rel)

    def recorded_files(self) -> list[tuple[str, str]]:
        """Every file of the case with its recorded SHA-256 (``outputs`` of case.json and the
        parts in the ledger), sorted by path: what ``routetrace verify`` re-hashes.

        Example
        -------
        >>> import tempfile
        >>> from routetrace.testing import example_case
        >>> tmp = tempfile.TemporaryDirectory()
        >>> files = open_case(example_case(Path(tmp.name) / "c")).recorded_files()
        >>> [rel for rel, _ in files if rel.startswith("tables/fixes/")][0][:20], files[-1][0]
        ('tables/fixes/source=', 'tables/subjects.parquet')
        >>> tmp.cleanup()
        """
        out = dict(self._outputs)
        with contextlib.suppress(CaseError):  # a damaged ledger: verify reports it as changed
            for t in self._ledger_pieces():
                out.update(zip(t["rel"].to_pylist(), t["sha256"].to_pylist(), strict=True))
        return sorted(out.items())

    def _staged_path(self, rel: str) -> Path:
        """Where the staged (not yet committed) file ``rel`` lies: a path derived from ``rel``,
        not kept per file (a fleet ingest stages hundreds of thousands)."""
        return self.root / STAGING / _staged_name(rel)

    def table_path(self, name: str) -> Path:
        """Where table ``name`` is stored: its file, or the folder of its parts."""
        if name in PARTITIONED:
            return self.root / "tables" / name
        return self.root / "tables" / f"{name}.parquet"

    def table_files(self, name: str) -> list[Path]:
        """The files holding table ``name`` (none when the case has no such table)."""
        return [self._path(rel) for rel in self._files(name)]

    def has_table(self, name: str) -> bool:
        """Whether the case stores table ``name``."""
        return bool(self._files(name))

    def table(self, name: str) -> pd.DataFrame:
        """Return table ``name`` (a canonical kind or an extra table); empty if absent."""
        if name not in self._cache:
            files = self.table_files(name)
            if files:
                self._cache[name] = _read_parts(files, name)
            elif name in schema.CANONICAL:
                self._cache[name] = schema.empty(name)
            else:
                raise CaseError(f"case has no table {name!r}", path=str(self.root))
        return self._cache[name]

    def source_records(self) -> list[dict[str, Any]]:
        """The case's sources as JSON values, one dict per row of table ``sources`` (path,
        SHA-256, format, counts...). The sources are listed there only, not in case.json,
        so the manifest does not grow with each file of a fleet.

        Example
        -------
        >>> import tempfile
        >>> from routetrace.testing import example_case
        >>> tmp = tempfile.TemporaryDirectory()
        >>> [Path(s["path"]).name for s in open_case(example_case(Path(tmp.name) / "c")).source_records()]
        ['lorry.gpx', 'phone.gpx']
        >>> tmp.cleanup()
        """
        records: list[dict[str, Any]] = json.loads(self.table("sources").to_json(orient="records"))
        return records

    def n_rows(self, name: str) -> int:
        """Rows of table ``name``, from the ledger or the Parquet footers (nothing else is read)."""
        if name in self._cache:
            return len(self._cache[name])
        if name not in PARTITIONED or "outputs" not in self.manifest:
            return sum(pq.ParquetFile(p).metadata.num_rows for p in self.table_files(name))
        total, unknown = 0, []
        for t in self._ledger_pieces(f"tables/{name}/"):
            total += int(pc.sum(t["rows"]).as_py() or 0)
            unknown += t.filter(pc.is_null(t["rows"]))["rel"].to_pylist()  # an older case's
        single = [f"tables/{name}.parquet"] if f"tables/{name}.parquet" in self._outputs else []
        return total + sum(pq.ParquetFile(self._path(r)).metadata.num_rows for r in [*unknown, *single])

    def dask_table(self, name: str, *, columns: Sequence[str] | None = None,
                   whole_subjects: bool = False, partition_rows: int = DASK_PARTITION_ROWS,
                   subjects: Sequence[str] | None = None, t_from: Any = None,
                   t_to: Any = None) -> Any:
        """Table ``name`` as a Dask DataFrame read straight from the store by the workers.

        Each partition holds whole part files (about ``partition_rows`` rows), with the
        dtypes of :meth:`table`; only ``columns`` are read (default: all). With
        ``whole_subjects``, every subject's rows are in one partition (a per-subject stage
        then needs no shuffle). ``subjects`` and ``t_from`` <= t_utc < ``t_to`` (UTC
        timestamps or ISO strings) select rows: part files whose footers exclude them are
        never read (:meth:`select_files`), so a stage on one day or one subject of a
        fleet-year reads that day's or that subject's parts. Needs the ``fleet`` extra.

        Example
        -------
        >>> fixes = open_case("case-42").dask_table("fixes", columns=["subject_id", "t_utc"])  # doctest: +SKIP
        >>> fixes.groupby("subject_id").size().compute()  # doctest: +SKIP
        """
        dd = require("dask.dataframe", extra="fleet", purpose="reading a case table with Dask")
        where = _selection(subjects, t_from, t_to)
        files = self.select_files(name, subjects=subjects, t_from=t_from, t_to=t_to)
        cols = None if columns is None else list(columns)
        if not files:
            empty = self.table(name).head(0) if where is not None else self.table(name)
            return dd.from_pandas(empty if cols is None else _wanted(empty, name, cols), npartitions=1)
        meta = _read_parts(files[:1], name, cols).head(0)
        groups = (_group_whole_subjects(files, partition_rows) if whole_subjects
                  else _group_files(files, partition_rows))
        return dd.from_map(_read_parts, groups, kind=name, columns=cols, where=where, meta=meta,
                           enforce_metadata=False)

    def dask_tables_by_subject(self, names: Sequence[str], *,
                               columns: Mapping[str, Sequence[str] | None] | None = None,
                               partition_rows: int | None = None) -> dict[str, Any]:
        """Tables ``names`` as Dask DataFrames of whole subjects whose partition ``k`` holds
        the same subjects in every table: a per-subject stage that needs two tables (the
        car-park visits: fixes and events) runs partition by partition on the workers,
        each reading its subjects' rows of both from the store, with no shuffle and nothing
        of either table on the client.

        Partitions are cut by the first table (about ``partition_rows`` of its rows, default
        :data:`DASK_PARTITION_ROWS`; whole subjects, as :meth:`dask_table` with
        ``whole_subjects``). A part file of another
        table is read by each partition holding one of its subjects (that partition's rows
        only); rows of subjects not in the first table are in the last partition, so every
        row of every table is in exactly one partition. Only ``columns[name]`` are read
        (default: all). Needs the ``fleet`` extra.

        Example
        -------
        >>> t = open_case("case-42").dask_tables_by_subject(["fixes", "events"])  # doctest: +SKIP
        >>> t["fixes"].npartitions == t["events"].npartitions  # doctest: +SKIP
        True
        """
        dd = require("dask.dataframe", extra="fleet", purpose="reading case tables with Dask")
        if not names:
            raise CaseError("dask_tables_by_subject needs at least one table name")
        columns = columns or {}
        first = self.table_files(names[0])
        if not first:
            return {n: self.dask_table(n, columns=columns.get(n)) for n in names}
        groups = _subject_groups(first, DASK_PARTITION_ROWS if partition_rows is None else partition_rows)
        subjects = [g for _, g in groups]
        out: dict[str, Any] = {}
        for name in names:
            want = columns.get(name)
            cols = None if want is None else list(want)
            files = self.table_files(name)
            where: list[Selection | None]
            if name == names[0]:
                parts, where = [f for f, _ in groups], [None] * len(groups)
            else:
                parts, where = _files_of_subjects(files, subjects)
            empty = (_read_parts(files[:1], name, cols) if files
                     else schema.empty(name) if name in schema.CANONICAL else self.table(name)).head(0)
            if cols is not None:
                empty = _wanted(empty, name, cols)
            out[name] = dd.from_map(_read_group, parts, where, kind=name, columns=cols, empty=empty,
                                    meta=empty, enforce_metadata=False)
        return out

    def select_files(self, name: str, *, subjects: Sequence[str] | None = None,
                     t_from: Any = None, t_to: Any = None) -> list[Path]:
        """The files of table ``name`` that may hold rows of ``subjects`` with
        ``t_from`` <= t_utc < ``t_to``, judged from their Parquet footers alone.

        Parameters
        ----------
        name
            A table of the case (the large ones are stored in parts, one per source).
        subjects
            Subject ids (None: every subject).
        t_from, t_to
            UTC times (``pd.Timestamp`` or ISO strings; None: open).

        Returns
        -------
        list of Path
            The files to read; a file left out holds no selected row.

        Example
        -------
        >>> case = open_case("case-42")  # doctest: +SKIP
        >>> len(case.select_files("fixes", t_from="2025-03-02T00:00Z", t_to="2025-03-03T00:00Z"))  # doctest: +SKIP
        12
        """
        where = _selection(subjects, t_from, t_to)
        files = self.table_files(name)
        return files if where is None else [p for p in files if where.may_hold(p)]

    def time_slices(self, name: str, *, every: pd.Timedelta = pd.Timedelta("1D"),
                    reach_back: pd.Timedelta = pd.Timedelta(0),
                    columns: Sequence[str] | None = None) -> list[TimeSlice]:
        """Table ``name`` cut into periods of ``every`` (UTC days by default), each to be
        read on its own with the ``reach_back`` before it: a stage over time runs on a
        cluster one period per task, with no shuffle (:class:`TimeSlice`).

        Each part's first and last time are read once, here, from its Parquet footer (the
        row-group statistics of ``t_utc``); a slice lists only the parts that overlap its
        period or its ``reach_back``, so a task opens only those. There is a slice for each
        period that some part overlaps, in time order; every row of the table lies in the
        period of exactly one slice.

        Parameters
        ----------
        name
            A partitioned table (:data:`PARTITIONED`) with a ``t_utc`` column.
        every
            Length of the periods, counted from 1970-01-01T00:00Z (default one day: UTC days).
        reach_back
            How far before its period each slice also reads (zero or more).
        columns
            The columns to read (default: all but the geometry).

        Returns
        -------
        list of TimeSlice

        Raises
        ------
        CaseError
            ``every`` is not positive or ``reach_back`` is negative.

        Example
        -------
        >>> case = open_case("case-42")  # doctest: +SKIP
        >>> days = case.time_slices("fixes", reach_back=pd.Timedelta("10min"), columns=["t_utc"])  # doctest: +SKIP
        >>> days[0].t_from, len(days[0].files), len(days[0].read())  # doctest: +SKIP
        (Timestamp('2025-03-01 00:00:00+0000', tz='UTC'), 12, 86412)
        """
        every, reach_back = pd.Timedelta(every), pd.Timedelta(reach_back)
        if every <= pd.Timedelta(0) or reach_back < pd.Timedelta(0):
            raise CaseError(f"periods of {every} reaching back {reach_back}: the period must be "
                            "positive and the reach back not negative", path=str(self.root))
        found = [(p, r) for p in self.table_files(name) if (r := _file_time_range(p)) is not None]
        if not found:
            return []
        lo = np.array([r[0] for _, r in found], dtype=np.int64)
        hi = np.array([r[1] for _, r in found], dtype=np.int64)
        e, back = every.value, reach_back.value
        periods = np.unique(np.concatenate([np.arange(a // e, b // e + 1) for a, b in zip(lo, hi, strict=True)]))
        cols = None if columns is None else tuple(columns)
        out = []
        for k in periods.tolist():
            start, end = k * e, (k + 1) * e
            near = np.flatnonzero((hi >= start - back) & (lo < end))
            out.append(TimeSlice(name, tuple(found[i][0] for i in near), pd.Timestamp(start, tz="UTC"),
                                 pd.Timestamp(end, tz="UTC"), reach_back, cols))
        return out

    def table_names(self) -> list[str]:
        """Names of the tables stored in the case."""
        if "outputs" not in self.manifest:
            return sorted(p.stem for p in (self.root / "tables").glob("*.parquet"))
        names = {k.split("/")[1].removesuffix(".parquet")
                 for k in self._outputs if k.startswith("tables/")}
        if "sources" in names:  # the large tables are there, maybe empty, once sources are
            names |= set(PARTITIONED)
        return sorted(names)

    # ------------------------------------------------------------ staging writes

    def _begin(self) -> None:
        """Take the case lock for this Case's writes, unless already held; refuse when
        another process committed since this Case read the manifest."""
        if self._txn is not None:
            return
        stack = contextlib.ExitStack()
        stack.enter_context(lock_case(self.root, create=self._on_disk is None))
        mpath = self.root / MANIFEST
        now = mpath.read_bytes() if mpath.exists() else None
        if now != self._on_disk:
            stack.close()
            raise CaseError("another routetrace process changed this case since it was opened "
                            "here; nothing was written: open the case again and repeat",
                            path=str(self.root))
        self._txn = stack
        if (self.root / STAGING).exists():  # a crashed writer's: settled before this run stages
            _recover(self.root)
        for name in PARTITIONED:  # a case stored before parts: its large tables into parts,
            if f"tables/{name}.parquet" in self._outputs:  # once, with this run's commit
                self.write_table(name, self.table(name))

    def _end(self) -> None:
        if self._txn is not None:
            self._txn.close()
            self._txn = None

    def _failed(self, exc: OSError, what: str) -> CaseError:
        self.abort()
        return CaseError(f"cannot write {what}: {exc.strerror or exc}; nothing was committed, "
                         "the case is as it was before this run", path=str(self.root))

    def _stage_table(self, rel: str, df: pd.DataFrame, *, geo: bool, group: int | None = None) -> None:
        by_day = any(rel.startswith(f"tables/{n}/") for n in BY_DAY)
        self._stage_file(rel, lambda dest: _write_parquet(df, dest, geo=geo, by_day=by_day, group=group),
                         rows=len(df))

    def _stage_file(self, rel: str, write: Callable[[Path], object], *, rows: int = 0) -> None:
        """Stage the case file ``rel`` that ``write(path)`` writes (a part of ``rows`` rows
        goes in the ledger, any other file in ``outputs``)."""
        self._begin()
        dest = self._staged_path(rel)
        part = _is_part(rel)
        again = part and (dest.exists() or rel in self._dropped or rel in self._override)
        try:
            dest.parent.mkdir(exist_ok=True)
            write(dest)
            _fsync_path(dest)
        except OSError as exc:
            dest.unlink(missing_ok=True)
            raise self._failed(exc, rel) from exc
        except BaseException:  # a time budget or Ctrl-C while writing: no orphan in staging
            dest.unlink(missing_ok=True)
            raise
        digest = sha256_file(dest)
        if part:
            self._record_part(rel, digest, rows, again=again)
        elif self._outputs.get(rel) == digest:  # the same bytes are already there: keep them
            dest.unlink()
        else:
            self._staged.add(rel)
            self._outputs[rel] = digest
        self._dropped.discard(rel)
        _crash_point("stage")

    def _record_part(self, rel: str, digest: str, rows: int, *, again: bool) -> None:
        """Enter the part ``rel`` just staged in the ledger; ``again``: staged before in this
        run. Only a part written over one in the case (or over one of this run) is kept by
        name; a new part is a row of the ledger, held in memory by the thousand at most."""
        committed = self._committed_part(rel) if (self.root / rel).is_file() else None
        if committed is not None and committed[0] == digest:
            self._staged_path(rel).unlink()  # the same bytes are already there: keep them
        if committed is not None or again:
            self._override[rel] = (digest, rows)
            self._outputs.pop(rel, None)  # an older case listed its parts in case.json
            return
        self._new_rows.append((rel, digest, rows))
        if len(self._new_rows) >= LEDGER_CHUNK:  # a sorted run, read back in small row groups
            pq.write_table(_ledger_table(sorted(self._new_rows)), self._chunk_path(self._new_chunks),
                           row_group_size=max(1, LEDGER_CHUNK // 8))
            self._new_chunks += 1
            self._new_rows.clear()

    def _drop(self, rel: str) -> None:
        self._begin()
        self._outputs.pop(rel, None)
        if rel in self._staged:
            self._staged.discard(rel)
            self._staged_path(rel).unlink(missing_ok=True)
        if _is_part(rel):
            self._override.pop(rel, None)
            self._staged_path(rel).unlink(missing_ok=True)
        self._dropped.add(rel)

    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        """Store ``df`` as table ``name``, sorted; validated against its declaration in
        :mod:`routetrace.schema` (every table a stage stores is declared there; a loader's
        own extra tables are stored as they come).

        A partitioned table (:data:`PARTITIONED`) is stored as one part per source; a part
        whose bytes are unchanged is not written again.
        """
        kind = schema.kind_of(name)
        if kind is not None:
            if not len(df):  # an empty result may come without dtypes: give it its declared ones
                df = schema.coerce(df, kind)
            schema.validate(df, kind)
            df = schema.encode_dictionaries(df, kind)  # stored as Parquet dictionaries
        df = sort_table(df, name)
        if name in PARTITIONED:
            kept = self._write_groups(name, df)
            for rel in set(self._files(name)) - kept:
                self._drop(rel)
        else:
            geo = name in GEO_KINDS or {"lat", "lon"} <= set(df.columns)
            self._stage_table(f"tables/{name}.parquet", df, geo=geo, group=group_rows(name))
        self._cache[name] = df
        return self.table_path(name)

    def write_table_batches(self, name: str, batches: Iterable[pd.DataFrame]) -> Path:
        """Store table ``name`` (not a partitioned one) from ``batches`` of its rows already
        in its stored order (:func:`sort_table`), each validated as :meth:`write_table`
        validates, written one at a time: for a table too large to hold twice (the sources
        of a fleet-year, 230,000 rows). With every batch but the last of
        :func:`group_rows` rows the file is the one :meth:`write_table` writes.

        Example
        -------
        >>> import tempfile
        >>> from routetrace.testing import example_case
        >>> tmp = tempfile.TemporaryDirectory()
        >>> case = open_case(example_case(Path(tmp.name) / "c"))
        >>> src = case.table("sources")
        >>> with case.transaction():
        ...     _ = case.write_table_batches("sources", [src])
        ...     case.save_manifest()
        >>> case.table("sources").equals(src)
        True
        >>> tmp.cleanup()
        """
        kind = schema.kind_of(name)
        if name in PARTITIONED or kind in schema.DICTIONARY:
            raise CaseError(f"table {name!r} is stored in parts or with dictionaries: use write_table",
                            path=str(self.root))

        def write(dest: Path) -> None:
            writer = None
            try:
                for df in batches:
                    if kind is not None:
                        schema.validate(df, kind)
                        df = schema.encode_dictionaries(df, kind)
                    out = df.reset_index(drop=True)
                    out.attrs = {}
                    table = pa.Table.from_pandas(out, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(dest, table.schema, compression="zstd")
                    writer.write_table(table, row_group_size=group_rows(name))
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:  # no rows
                _write_parquet(schema.empty(kind) if kind else pd.DataFrame(), dest, geo=False)

        self._stage_file(f"tables/{name}.parquet", write)
        self._cache.pop(name, None)
        return self.table_path(name)

    def write_parts(self, name: str, df: pd.DataFrame) -> list[Path]:
        """Store the rows of each source in ``df`` as that source's part of partitioned
        table ``name``, replacing every part that source had; the parts of other sources
        are not touched (adding a source to a case rewrites nothing already in it)."""
        if name not in PARTITIONED:
            raise CaseError(f"table {name!r} is not stored in parts", path=str(self.root))
        schema.validate(df, name)
        self._begin()
        rels = self._write_groups(name, sort_table(schema.encode_dictionaries(df, name), name))
        for rel in set(self._parts_of(name, pd.unique(df["source_id"].astype(str)))) - rels:
            self._drop(rel)
        self._cache.pop(name, None)
        return [self._path(r) for r in sorted(rels)]

    def append_part(self, name: str, df: pd.DataFrame, *, part: int | None = None) -> str:
        """Store ``df``, rows of one source, as that source's next part of partitioned table
        ``name`` (its first is ``part-0``); its parts already written are not touched. A
        loader that streams a large file gives its rows part by part this way
        (:func:`routetrace.app.ingest.ingest`), so memory holds one part, not the file.

        ``part``: the number of parts the source has already (an ingest counts them for a
        new source; None: looked up in the ledger).

        Returns
        -------
        str
            The part's path relative to the case folder (:meth:`drop_part` takes it back
            before the commit).

        Raises
        ------
        CaseError
            ``name`` is not partitioned, ``df`` is empty or holds rows of several sources.
        """
        if name not in PARTITIONED:
            raise CaseError(f"table {name!r} is not stored in parts", path=str(self.root))
        sids = pd.unique(df["source_id"].astype(str)) if len(df) else []
        if len(sids) != 1:
            raise CaseError(f"a part holds the rows of one source, not {len(sids)}", path=str(self.root))
        schema.validate(df, name)
        self._begin()
        n = len(self.source_parts(name, str(sids[0]))) if part is None else part
        rel = part_rel(name, str(sids[0]), n)
        self._stage_table(rel, sort_table(schema.encode_dictionaries(df, name), name).reset_index(drop=True),
                          geo=True)
        self._cache.pop(name, None)
        return rel

    def drop_part(self, rel: str) -> None:
        """Take back a part staged by :meth:`append_part` (a file whose load failed after
        some of its parts were written: nothing of it stays in the case)."""
        self._drop(rel)
        self._cache.pop(rel.split("/")[1], None)

    def source_parts(self, name: str, source_id: str) -> list[str]:
        """The parts of source ``source_id`` in partitioned table ``name`` (relative paths,
        in the order they were written). Parts are numbered from 0 without gaps, so this
        looks up as many names as the source has parts, however many the case has."""
        have = set(self._part_rels(_source_dir(name, source_id)))
        found: list[str] = []
        while (rel := part_rel(name, source_id, len(found))) in have:
            found.append(rel)
        return found

    def _parts_of(self, name: str, source_ids: Iterable[str]) -> list[str]:
        """The parts of table ``name`` of the sources ``source_ids``, from one pass over the ledger."""
        dirs = {_source_dir(name, str(s)) for s in source_ids}
        if not dirs:
            return []
        k = len(next(iter(dirs)))
        return [r for r in self._part_rels(f"tables/{name}/") if r[:k] in dirs]

    def _write_groups(self, name: str, df: pd.DataFrame) -> set[str]:
        rels: set[str] = set()
        if df.empty:
            return rels
        for sid, part in df.groupby(df["source_id"].astype(str), sort=True):
            rel = part_rel(name, str(sid))
            self._stage_table(rel, part.reset_index(drop=True), geo=True)
            rels.add(rel)
        return rels

    def source_rows(self, name: str, source_ids: Sequence[str]) -> pd.DataFrame:
        """The rows of partitioned table ``name`` from ``source_ids``, reading only their parts."""
        if name in self._cache or f"tables/{name}.parquet" in self._outputs:
            t = self.table(name)
            return t[t["source_id"].astype(str).isin(set(source_ids))].reset_index(drop=True)
        rels = sorted(self._parts_of(name, set(source_ids)))
        if not rels:
            return schema.empty(name)
        return _read_parts([self._path(r) for r in rels], name)

    def drop_table(self, name: str) -> None:
        """Remove table ``name`` from the case (its files go at the next commit)."""
        for rel in self._files(name):
            self._drop(rel)
        self._cache.pop(name, None)

    def remove_source(self, source_id: str) -> None:
        """Remove one source: exactly its parts of the partitioned tables, its rows of
        ``sources`` and ``rejects`` (committed by the next save).
        Derived tables are not touched: run the stages again."""
        sid = str(source_id)
        self._begin()  # a case stored before parts is put into parts first
        for name in PARTITIONED:
            for rel in self.source_parts(name, sid):
                self._drop(rel)
                self._cache.pop(name, None)
        for name in ("sources", "rejects"):
            t = self.table(name)
            if self.has_table(name):
                self.write_table(name, t[t["source_id"].astype(str) != sid])

    def stage_output(self, rel: str) -> Path:
        """A path to write the case file ``rel`` (``quality.csv``, ``figures/x.png``) to;
        it replaces ``rel`` at the next commit, and its SHA-256 is recorded then.

        Raises
        ------
        CaseError
            When ``rel`` could not be put in place at the commit (a file stands where one of
            its folders goes): said now, before anything is committed.
        """
        for parent in (self.root / rel).parents:
            if parent == self.root:
                break
            if parent.exists() and not parent.is_dir():
                raise CaseError(f"cannot write {rel}: {parent.name} in the case folder is a file, "
                                "not a folder; move it away", path=str(parent))
        self._begin()
        dest = self._staged_path(rel)
        dest.parent.mkdir(exist_ok=True)
        self._staged.add(rel)
        self._unhashed.add(rel)
        self._dropped.discard(rel)
        return dest

    def abort(self) -> None:
        """Discard the writes not yet committed and release the case lock."""
        if self._txn is not None:  # everything staged is this run's (_begin settled the rest)
            shutil.rmtree(self.root / STAGING, ignore_errors=True)
        for rel in self._staged:
            self._staged_path(rel).unlink(missing_ok=True)
        self._staged.clear()
        self._unhashed.clear()
        self._dropped.clear()
        self._clear_ledger()
        if self._on_disk is not None:
            self.manifest = json.loads(self._on_disk)
        else:
            self.manifest["outputs"] = {}
        self._cache.clear()
        with contextlib.suppress(OSError):
            (self.root / STAGING).rmdir()
        self._end()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Case]:
        """Writes in the block are committed by the caller's save, or all discarded when the
        block raises (a full disk becomes :class:`CaseError`)."""
        try:
            yield self
        except OSError as exc:
            raise self._failed(exc, "the case") from exc
        except BaseException:
            self.abort()
            raise

    # ------------------------------------------------------------ commit

    def set_parameters(self, stage: str, params: Mapping[str, Any]) -> None:
        """Record the parameters a stage used (shown on exhibits) and save the manifest."""
        self.manifest.setdefault("parameters", {})[stage] = {
            k: (str(v) if isinstance(v, pd.Timedelta) else v) for k, v in sorted(params.items())}
        self.save_manifest()

    def record_outputs(self) -> None:
        """Record the SHA-256 of the case files written outside the store (the quality
        report, figures) that are not recorded yet, then save the manifest.

        Tables and staged files are recorded as they are written. ``routetrace verify``
        recomputes every recorded hash.
        """
        for p in [self.root / QUALITY, *sorted(self.root.glob("figures/*"))]:
            rel = p.relative_to(self.root).as_posix()
            if p.is_file() and rel not in self._staged and rel not in self._outputs:
                self._outputs[rel] = sha256_file(p)
        self.save_manifest()

    def save_manifest(self) -> None:
        """Commit: write case.json (sorted keys, stable formatting) atomically, then move
        the staged files into place and delete the files no longer named."""
        self._begin()
        try:
            for rel in sorted(self._unhashed):
                staged = self._staged_path(rel)
                self._outputs[rel] = sha256_file(staged)
                _fsync_path(staged)
            if self._ledger_pending or any(map(_is_part, self._dropped)):
                self._stage_ledger()
            if (self.root / STAGING).is_dir():
                _fsync_path(self.root / STAGING, directory=True)
            self.manifest.pop("sources", None)  # the sources table lists them (older cases: here too)
            data = _manifest_bytes(self.manifest)
            atomic_write(self.root / MANIFEST, lambda tmp: tmp.write_bytes(data))
        except OSError as exc:
            raise self._failed(exc, MANIFEST) from exc
        self._on_disk = data
        _crash_point("commit")
        self._publish()
        self._end()

    def _stage_ledger(self) -> None:
        """Stage the ledger as it stands (:meth:`_ledger_pieces`), sorted by path, and record
        its SHA-256 in ``outputs``. The same parts give the same bytes however the case was
        built; the pieces are sorted each (the committed ledger is; a chunk is sorted when
        staged) and merged a row group at a time, so memory does not grow with the parts."""
        dest = self._staged_path(LEDGER)
        dest.parent.mkdir(exist_ok=True)

        def rows(run: Iterator[pa.Table]) -> Iterator[tuple[str, str, int | None]]:
            for t in run:
                yield from zip(t["rel"].to_pylist(), t["sha256"].to_pylist(), t["rows"].to_pylist(),
                               strict=True)

        with pq.ParquetWriter(dest, LEDGER_SCHEMA, compression="zstd") as writer:
            batch: list[tuple[str, str, int | None]] = []
            written = 0
            for row in heapq.merge(*map(rows, self._ledger_runs()), key=lambda r: r[0]):
                batch.append(row)
                if len(batch) == LEDGER_GROUP_ROWS:
                    writer.write_table(_ledger_table(batch))
                    written += len(batch)
                    batch.clear()
            if batch or not written:
                writer.write_table(_ledger_table(batch))
        _fsync_path(dest)
        for rel in [k for k in self._outputs if _is_part(k)]:  # an older case's: now in the ledger
            del self._outputs[rel]
        self._clear_ledger()
        self._staged.add(LEDGER)
        self._outputs[LEDGER] = sha256_file(dest)

    def _clear_ledger(self) -> None:
        for k in range(self._new_chunks):
            self._chunk_path(k).unlink(missing_ok=True)
        self._new_rows.clear()
        self._new_chunks = 0
        self._override.clear()
        self._committed = None

    def _publish(self) -> None:
        """After the commit: staged files into place (every file in .staging/: this run's
        tables, parts and outputs), dropped files removed."""
        staging = self.root / STAGING
        while staging.is_dir():  # a batch at a time: a fleet ingest stages 230,000 files
            with os.scandir(staging) as it:
                batch = [e.name for e in itertools.islice(it, PUBLISH_BATCH)]
            if not batch:
                break
            dirs: set[Path] = set()
            for name in batch:
                if name.startswith("#"):  # scratch (scratch_path), not a file of the case
                    (staging / name).unlink()
                    continue
                dest = self.root / urllib.parse.unquote(name)
                dirs |= _make_parents(dest)
                os.replace(staging / name, dest)
            for d in dirs:
                _fsync_path(d, directory=True)
        for rel in sorted(self._dropped):
            if _is_part(rel) or rel not in self._outputs:
                (self.root / rel).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    (self.root / rel).parent.rmdir()  # a source's folder, now empty
        self._staged.clear()
        self._unhashed.clear()
        self._dropped.clear()
        with contextlib.suppress(OSError):
            (self.root / STAGING).rmdir()

    @property
    def _ledger_pending(self) -> bool:
        """Whether parts were added or rewritten since the ledger was last written."""
        return bool(self._new_rows or self._new_chunks or self._override)

    def reload(self) -> None:
        """Read the manifest again (after another job committed in this process)."""
        if self._staged or self._dropped or self._ledger_pending:
            raise CaseError("uncommitted writes: save or abort them first", path=str(self.root))
        data = (self.root / MANIFEST).read_bytes()
        self.manifest, self._on_disk = json.loads(data), data
        self._cache.clear()
        self._committed = None


def open_case(root: str | Path, *, create: bool = False, case_id: str | None = None) -> Case:
    """Open the case folder ``root`` (creating it when ``create``).

    A new case is written at its first commit (an ingest that is killed before it leaves no
    case). Opening a case that a crashed writer left settles it first (module docstring).

    Parameters
    ----------
    root : str or pathlib.Path
        The case folder.
    create : bool
        Open a new case when ``root`` holds none (the folder must be new or empty).
    case_id : str, optional
        Identifier of a new case (default: the folder name).

    Returns
    -------
    Case
        The opened case; its tables are read when first asked for.

    Raises
    ------
    CaseError
        When the folder is not a case (no case.json) and ``create`` is false, or when the
        manifest is damaged.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import example_case
    >>> tmp = tempfile.TemporaryDirectory()
    >>> case = open_case(example_case(Path(tmp.name) / "case-42"))
    >>> case.case_id, case.n_rows("fixes"), "stops" in case.table_names()
    ('case-42', 30, False)
    >>> tmp.cleanup()
    """
    r = Path(root)
    mpath = r / MANIFEST
    if mpath.exists():
        if (r / STAGING).exists():
            _try_recover(r)
        try:
            data = mpath.read_bytes()
            manifest = json.loads(data.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CaseError(f"damaged manifest: {exc}", path=str(mpath)) from exc
        return Case(r, manifest, _on_disk=data)
    _check_lockable(r, create=create)
    r.mkdir(parents=True, exist_ok=True)
    manifest = {
        "case_id": case_id or r.name,
        "created": generation_time(),
        "tool": {"name": "routetrace", "version": __version__},
        "time_convention": "all times stored in UTC; exhibits show local time of the place "
                           "with its UTC offset",
        "parameters": {},
        "quality": {"file_errors": 0, "rejected_records": 0},
        "outputs": {},
    }
    return Case(r, manifest)


def concat_tables(frames: Sequence[pd.DataFrame], kind: str | None) -> pd.DataFrame:
    """Concatenate frames of one table kind, coerced to its schema (empty frames ignored).

    Parameters
    ----------
    frames : sequence of pandas.DataFrame
        Parts of one table.
    kind : str or None
        Its declared kind (:mod:`routetrace.schema`), or None for a table kept as it comes.

    Returns
    -------
    pandas.DataFrame
        The rows of every frame, index ``0..n-1``; with the declared columns and dtypes
        when ``kind`` is declared (an empty table of that kind when no frame has rows).

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> a = make_fixes(subject_id="lorry", t_utc=["2025-10-26T21:00Z"], lat=51.0, lon=3.87)
    >>> b = make_fixes(subject_id="phone", t_utc=["2025-10-26T21:00Z"], lat=51.0, lon=3.87)
    >>> t = concat_tables([a, b.head(0), b], "fixes")
    >>> t["subject_id"].tolist(), str(t["t_utc"].dtype)
    (['lorry', 'phone'], 'datetime64[ns, UTC]')
    >>> len(concat_tables([], "stops")), list(concat_tables([], None).columns)
    (0, [])
    """
    frames = [f for f in frames if len(f)]
    if kind in schema.TABLES:  # dictionary columns keep their form (categories unioned)
        return schema.concat(frames, kind)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

