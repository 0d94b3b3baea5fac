"""The loader framework: registration as data, sniffing, the LoadResult and its count rule.

A loader is one pure function per format, registered with a :class:`LoaderSpec`::

    @register(LoaderSpec(name="gpx", description="GPX 1.0/1.1 tracks, routes, waypoints",
                         sniff=sniff_gpx, produces=("fixes", "places")))
    def load_gpx(path: Path, *, ctx: LoadContext) -> LoadResult:
        ...
        return ctx.finish(fixes=fixes, rejects=rejects, records_read=n, time_basis="...")

The count rule holds for every loader and is checked by :meth:`LoadContext.finish`:
*records read = records that produced rows + records rejected*, each record counted once
(a record that yields a fix and an event counts once; a rejected record yields no row).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import signal
import sqlite3
import stat
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..errors import (
    AmbiguousFormat,
    CorruptSource,
    LoaderBug,
    LoaderError,
    ParameterError,
    RoutetraceError,
    UnknownFormat,
    UnsafeArchive,
)
from ..evidence import (
    SQLITE_COMPANIONS,
    ArchiveReport,
    WalCheck,
    check_wal,
    companions,
    extract_archive,
    is_archive,
    sha256_file,
    source_identity,
)
from ..memory import release_freed_memory

__all__ = [
    "PART_ROWS",
    "REGISTRY",
    "LoadContext",
    "LoadOutcome",
    "LoadPart",
    "LoadResult",
    "Loader",
    "LoaderSpec",
    "SinkFailed",
    "check_options",
    "compact_json",
    "detect_format",
    "load",
    "load_many",
    "register",
    "split_repeated",
    "sqlite_tables",
]

SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class LoaderSpec:
    """What a loader is, as data.

    Parameters
    ----------
    name
        The format name users pass to ``--format`` (e.g. ``"gpx"``).
    description
        One line for ``routetrace formats``.
    sniff
        ``sniff(path, head) -> bool``: cheap recognition from the first 64 KiB (``head``)
        or the SQLite schema; never reads the whole file.
    produces
        Tables this loader can fill (``fixes``, ``events``, ``places``).
    version
        Loader version, recorded in ``sources.loader_version``; bump when output changes.
    options
        The ``options`` keys the loader reads (``--option KEY=VALUE``); a key that no
        loader reads is refused (:func:`check_options`), so a typo is never ignored.
    """

    name: str
    description: str
    sniff: Callable[[Path, bytes], bool]
    produces: tuple[str, ...]
    version: str = "1"
    options: tuple[str, ...] = ()


@dataclass
class LoadResult:
    """What a loader returns: the canonical tables for one evidence file.

    ``source`` is a one-row ``sources`` table; ``extra_tables`` holds tables outside the
    canonical set (e.g. Wi-Fi AP caches that are not the device's track), keyed by name.
    """

    fixes: pd.DataFrame
    events: pd.DataFrame
    places: pd.DataFrame
    rejects: pd.DataFrame
    source: pd.DataFrame
    records_read: int
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def source_id(self) -> str:
        """The SHA-256 of the evidence file (with its SQLite ``-wal``/``-journal``: see
        :func:`routetrace.evidence.source_identity`)."""
        return str(self.source["source_id"].iloc[0])


@dataclass
class LoadPart:
    """Rows of one evidence file that a streaming loader gives before its end
    (:meth:`LoadContext.emit`), so that memory holds a part of the file, not all of it.

    The tables are canonical (ids, provenance, dtypes) and the count rule holds for the
    part on its own: ``records_read`` = its records that produced rows + its rejects.
    """

    source_id: str
    display_path: str
    fixes: pd.DataFrame
    events: pd.DataFrame
    places: pd.DataFrame
    rejects: pd.DataFrame
    records_read: int


class SinkFailed(BaseException):
    """The sink failed on a part (a full disk while storing it): not the file's fault, so
    neither a file error nor a bad record. It passes through the loader's and
    :func:`load_many`'s handlers (a BaseException) with the sink's exception in ``error``,
    for the caller to raise."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


#: rows a streaming loader gives at most per part when a sink takes them (about 80 MiB of
#: canonical fixes)
PART_ROWS = 500_000

Loader = Callable[..., LoadResult]

#: name -> (spec, function); filled by :func:`register` from ``loaders/__init__.py``.
REGISTRY: dict[str, tuple[LoaderSpec, Loader]] = {}


def register(spec: LoaderSpec) -> Callable[[Loader], Loader]:
    """Register ``fn`` as the loader for ``spec.name`` (explicit; no directory scanning).

    Parameters
    ----------
    spec
        What the loader is: its format name, description, sniffer and tables.

    Returns
    -------
    Callable
        A decorator that adds ``(spec, fn)`` to :data:`REGISTRY` and returns ``fn``
        unchanged. Registering a name twice raises ``RuntimeError``.

    Example
    -------
    >>> spec = LoaderSpec(name="doc-example", description="an example",
    ...                   sniff=lambda path, head: False, produces=("fixes",))
    >>> @register(spec)
    ... def load_example(path, *, ctx):
    ...     return ctx.finish(records_read=0, time_basis="none")
    >>> REGISTRY["doc-example"][1] is load_example
    True
    >>> del REGISTRY["doc-example"]  # leave the registry as it was
    """

    def deco(fn: Loader) -> Loader:
        if spec.name in REGISTRY:
            raise RuntimeError(f"loader {spec.name!r} registered twice")
        REGISTRY[spec.name] = (spec, fn)
        return fn

    return deco


def compact_json(obj: Mapping[str, Any]) -> str:
    """Serialise source attributes for the ``extra`` column: sorted keys, no spaces, NA dropped.

    Parameters
    ----------
    obj
        The attributes; ``None`` and NaN values are left out, other non-JSON values are
        written with ``str``.

    Returns
    -------
    str
        Compact JSON, the same bytes for the same attributes (reproducible outputs).

    Example
    -------
    >>> compact_json({"z": 1, "a": "é", "gone": None, "nan": float("nan")})
    '{"a":"é","z":1}'
    """
    clean = {k: v for k, v in obj.items() if v is not None and not (isinstance(v, float) and v != v)}
    return json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def split_repeated(df: pd.DataFrame, key: str, record: Callable[[Any, int], str],
                   reason: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Rows whose ``key`` already came (a damaged b-tree can repeat a key in a scan): the
    first row of each key is kept; each later one is a ``(record(key value, row number),
    reason)`` reject. Returns the kept rows (index reset when any is dropped) and the rejects.

    Parameters
    ----------
    df
        The rows as scanned.
    key
        The column that should be unique (e.g. ``Z_PK``).
    record
        ``record(key value, row number) -> str``: the locator of a rejected row.
    reason
        The reject reason for every repeated row.

    Returns
    -------
    tuple of (pandas.DataFrame, list of (str, str))
        The kept rows, and one ``(record, reason)`` per repeated row: kept + rejected =
        rows scanned (the count rule).

    Example
    -------
    >>> df = pd.DataFrame({"Z_PK": [1, 2, 1]})
    >>> kept, rej = split_repeated(df, "Z_PK", lambda k, i: f"T/Z_PK={k} (row {i})", "repeated")
    >>> kept["Z_PK"].tolist(), rej
    ([1, 2], [('T/Z_PK=1 (row 2)', 'repeated')])
    """
    dup = df[key].duplicated().to_numpy()
    if not dup.any():
        return df, []
    rejects = [(record(df[key].iloc[i], int(i)), reason) for i in np.flatnonzero(dup)]
    return df[~dup].reset_index(drop=True), rejects


def sqlite_tables(path: Path) -> set[str]:
    """Names of the tables of a SQLite file, read without writing anything ("immutable").

    Returns an empty set for a file that is not SQLite. Used by sniffers only; loaders read
    from :func:`routetrace.evidence.private_sqlite`.

    Parameters
    ----------
    path
        The file; opened read-only and immutable, never written.

    Returns
    -------
    set of str
        The table names; empty for a file that is not SQLite or whose schema cannot be read.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import example_consolidated
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = example_consolidated(Path(tmp) / "consolidated.db", n_fixes=1)
    ...     (Path(tmp) / "note.txt").write_text("not sqlite")
    ...     print(sorted(sqlite_tables(db)), sqlite_tables(Path(tmp) / "note.txt"))
    10
    ['CellLocation', 'LocationHarvest', 'TableInfo', 'WifiLocation'] set()
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                return set()
        uri = f"file:{path.resolve().as_posix()}?mode=ro&immutable=1"
        con = sqlite3.connect(uri, uri=True)
        con.text_factory = bytes  # a damaged schema may hold invalid UTF-8: never raise on it
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        finally:
            con.close()
        return {bytes(r[0]).decode("utf-8", errors="replace") for r in rows if r[0] is not None}
    except (sqlite3.DatabaseError, OSError, UnicodeDecodeError):
        # UnicodeDecodeError: SQLite's own error message quoting a damaged schema is not UTF-8
        return set()


@dataclass
class LoadContext:
    """Everything a loader needs besides the path: identity, subject, time basis, options.

    ``path`` is the file to read (a private extracted copy for archive members);
    ``display_path`` is how the user names it (``archive.zip!member/path``). ``parts``
    holds the SHA-256 of each file of a source made of several (a SQLite database with its
    ``-wal``/``-journal``, see :func:`routetrace.evidence.source_identity`); ``wal`` what
    its WAL holds: frames that SQLite will not apply become one rejected record.
    """

    path: Path
    display_path: str
    source_id: str
    size_bytes: int
    spec: LoaderSpec
    subject_id: str | None = None
    tz: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    member: str | None = None
    parts: Mapping[str, str] = field(default_factory=dict)
    wal: WalCheck | None = None
    sink: Callable[[LoadPart], None] | None = None
    part_rows: int = field(default_factory=lambda: PART_ROWS)  # read when the load starts
    #: what :meth:`emit` gave so far: records, fixes, events, places, rejects
    _given: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0], init=False, repr=False)

    @property
    def streaming(self) -> bool:
        """Whether a sink takes rows part by part (:meth:`emit`): a streaming loader then
        gives its rows every :attr:`part_rows` rows instead of holding the whole file."""
        return self.sink is not None

    def subject(self, fallback: str | None = None) -> str:
        """The subject for rows: the user's ``subject_id``, else ``fallback``, else the file stem."""
        return self.subject_id or fallback or Path(self.member or self.display_path).stem

    def error(self, cls: type[RoutetraceError], message: str, record: str | None = None) -> RoutetraceError:
        """Build an error of ``cls`` naming this file (and record)."""
        return cls(message, path=self.display_path, record=record)

    def finish(
        self,
        *,
        records_read: int,
        time_basis: str,
        fixes: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        places: pd.DataFrame | None = None,
        rejects: pd.DataFrame | Sequence[tuple[str, str]] | None = None,
        extra_tables: Mapping[str, pd.DataFrame] | None = None,
        companion_hashes: Mapping[str, str] | None = None,
        default_subject: str | None = None,
    ) -> LoadResult:
        """Complete the tables (ids, provenance, dtypes), check the count rule, build the result.

        Columns the loader leaves out are filled: ``source_id``; ``subject_id`` (from
        :meth:`subject`); ``fix_id``/``event_id``/``place_id`` from the source and record;
        ``flags`` as ``""``. ``rejects`` may be a list of ``(record, reason)`` pairs.

        ``records_read`` counts every record of the file. A streaming loader that gave rows
        in parts (:meth:`emit`) passes here only the rows it has not given; the result
        holds those, and its ``sources`` row counts the whole file.

        Raises
        ------
        LoaderBug
            When the count rule does not hold (a loader bug: a record was lost or counted
            twice). Never silently passes.
        """
        # the loader's intermediate arrays are dead now: their pages go back to the system
        # before the tables are completed (RSS, not results: routetrace.memory)
        release_freed_memory(rows=records_read)
        subj = self.subject(default_subject)
        rejects, records_read, time_basis = self._with_wal(rejects, records_read, time_basis)
        g_read, g_fixes, g_events, g_places, g_rejects = self._given
        tables, rej, extras = self._complete(subj, fixes=fixes, events=events, places=places,
                                             rejects=rejects, extra_tables=extra_tables,
                                             records_read=records_read - g_read)

        comps = "|".join(f"{k}={v}" for k, v in sorted({**(companion_hashes or {}),
                                                           **self.parts}.items()))
        source = schema.coerce(pd.DataFrame([{
            "source_id": self.source_id,
            "path": self.display_path,
            "member": self.member,
            "size_bytes": self.size_bytes,
            "format": self.spec.name,
            "loader_version": self.spec.version,
            "time_basis": time_basis,
            "subject_id": subj,
            "records_read": records_read,
            "n_fixes": g_fixes + len(tables["fixes"]),
            "n_events": g_events + len(tables["events"]),
            "n_places": g_places + len(tables["places"]),
            "n_rejects": g_rejects + len(rej),
            "companions": comps or None,
        }]), "sources")
        return LoadResult(fixes=tables["fixes"], events=tables["events"], places=tables["places"],
                          rejects=rej, source=source, records_read=records_read,
                          extra_tables=extras)

    def emit(
        self,
        *,
        records_read: int,
        fixes: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        places: pd.DataFrame | None = None,
        rejects: pd.DataFrame | Sequence[tuple[str, str]] | None = None,
        default_subject: str | None = None,
    ) -> None:
        """Give the rows of ``records_read`` records now, before the file's end, to the
        sink (only when :attr:`streaming`). The tables are completed as :meth:`finish`
        completes them and the count rule is checked for these records on their own;
        :meth:`finish` then gives the rest, and its ``sources`` row counts every part.
        A loader calls it with records it will not meet again (each record in one part).

        Raises
        ------
        LoaderBug
            Called without a sink, or the count rule does not hold for the part.
        SinkFailed
            The sink raised (its exception in ``error``).
        """
        if self.sink is None:
            raise LoaderBug("internal: emit() without a sink (loader bug)", path=self.display_path)
        tables, rej, _ = self._complete(self.subject(default_subject), fixes=fixes, events=events,
                                        places=places, rejects=rejects, extra_tables=None,
                                        records_read=records_read)
        part = LoadPart(source_id=self.source_id, display_path=self.display_path,
                        fixes=tables["fixes"], events=tables["events"], places=tables["places"],
                        rejects=rej, records_read=records_read)
        del tables, rej
        g = self._given
        g[0] += records_read
        g[1] += len(part.fixes)
        g[2] += len(part.events)
        g[3] += len(part.places)
        g[4] += len(part.rejects)
        try:
            self.sink(part)
        except Exception as exc:  # a time budget or Ctrl-C (BaseException) stays what it is
            raise SinkFailed(exc) from exc

    def _complete(
        self,
        subj: str,
        *,
        fixes: pd.DataFrame | None,
        events: pd.DataFrame | None,
        places: pd.DataFrame | None,
        rejects: pd.DataFrame | Sequence[tuple[str, str]] | None,
        extra_tables: Mapping[str, pd.DataFrame] | None,
        records_read: int,
    ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, pd.DataFrame]]:
        """The loader's rows as canonical tables (ids, provenance, dtypes), its rejects and
        side tables; the count rule checked for ``records_read`` records."""
        prefix = self.source_id[:16]
        tables: dict[str, pd.DataFrame] = {}
        for kind, df in (("fixes", fixes), ("events", events), ("places", places)):
            if df is None or len(df) == 0:
                tables[kind] = schema.empty(kind)
                continue
            df = df.copy(deep=False)  # copy-on-write: columns are added, never changed in place
            # provenance and subject dictionary-encoded (schema.DICTIONARY): the 64-character
            # source_id is held once, each row costs a byte
            df["source_id"] = schema.repeat(self.source_id, len(df), df.index)
            if "subject_id" not in df.columns:
                df["subject_id"] = schema.repeat(subj if kind != "places" else None, len(df), df.index)
            elif kind != "places":
                df["subject_id"] = schema.as_dictionary(df["subject_id"], fill=subj)
            # fix_id and event_id are derived from source_id and record, not stored
            # (schema.DERIVED_IDS); a place keeps its id
            if kind == "places" and "place_id" not in df.columns:
                df["place_id"] = prefix + ":" + df["record"].astype("string")
            tables[kind] = schema.validate(schema.coerce(df.reset_index(drop=True), kind), kind)

        if rejects is None:
            rej = schema.empty("rejects")
        elif isinstance(rejects, pd.DataFrame):
            rej = rejects.reset_index(drop=True)
            rej = schema.coerce(rej.assign(source_id=schema.repeat(self.source_id, len(rej))), "rejects")
        else:
            rej = schema.coerce(pd.DataFrame(
                {"source_id": schema.repeat(self.source_id, len(rejects)),
                 "record": [r for r, _ in rejects], "reason": [why for _, why in rejects]},
            ), "rejects") if len(rejects) else schema.empty("rejects")
        # provenance of a side table too: a loader that leaves out its source_id gets it here
        # (dictionary-encoded like the canonical tables': the SHA-256 once, not on every row)
        extras = {k: (v if "source_id" in v.columns else
                      v.assign(source_id=schema.repeat(self.source_id, len(v), v.index)))
                  .reset_index(drop=True) for k, v in (extra_tables or {}).items()}

        # the count rule's "produced": the distinct records of every table, hashed once
        # (no Python string per row; a table whose locators are a shared dictionary, like
        # an IO table's, costs a count of its codes)
        produced = _record_union([df["record"] for df in [*tables.values(), *extras.values()]
                                  if len(df)])
        rejected = rej["record"].astype("string")
        if rejected.duplicated().any():
            dup = rejected[rejected.duplicated()].iloc[0]
            raise LoaderBug(f"internal: record {dup!r} rejected twice (loader bug)",
                            path=self.display_path)
        both = produced.among(pa.array(rejected).cast(pa.large_string()) if len(rejected) else _NO_TEXT)
        if len(both):
            raise LoaderBug(f"internal: record {sorted(both.to_pylist())[0]!r} both produced and "
                            "rejected (loader bug)", path=self.display_path)
        if len(produced) + len(rej) != records_read:
            raise LoaderBug(
                f"internal: count rule broken: {records_read} records read but "
                f"{len(produced)} produced + {len(rej)} rejected (loader bug)",
                path=self.display_path)
        return tables, rej, extras


    def _with_wal(self, rejects: pd.DataFrame | Sequence[tuple[str, str]] | None, records_read: int,
                  time_basis: str) -> tuple[pd.DataFrame | Sequence[tuple[str, str]] | None, int, str]:
        """Add the WAL's frames that SQLite does not apply as one rejected record, and the
        WAL's frame counts to the notes (see :func:`routetrace.evidence.check_wal`)."""
        if self.wal is None:
            return rejects, records_read, time_basis
        time_basis += self.wal.note()
        if self.wal.fault is None:
            return rejects, records_read, time_basis
        fault = pd.DataFrame([self.wal.fault], columns=["record", "reason"])
        if rejects is None or len(rejects) == 0:
            rej: pd.DataFrame | Sequence[tuple[str, str]] = fault
        elif isinstance(rejects, pd.DataFrame):
            rej = pd.concat([rejects, fault], ignore_index=True)
        else:
            rej = [*rejects, self.wal.fault]
        return rej, records_read + 1, time_basis


_NO_TEXT = pa.array([], pa.large_string())


@dataclass(frozen=True)
class RecordUnion:
    """The distinct records of a loader's tables (the count rule's "produced"): the used
    entries of one locator dictionary (``categories``, ``used``) plus the distinct texts
    that are not in it (``others``). ``len()`` is their number."""

    categories: pa.Array
    used: np.ndarray
    others: pa.Array

    def __len__(self) -> int:
        return int(np.count_nonzero(self.used)) + len(self.others)

    def among(self, values: pa.Array) -> pa.Array:
        """The records of the union that are among ``values`` (large_string; few, e.g. the
        rejected records: only they are hashed, the union is probed against them)."""
        if not len(values):
            return _NO_TEXT
        in_dictionary = np.asarray(pc.is_in(self.categories, value_set=values), dtype=bool) & self.used
        return pa.concat_arrays([self.categories.filter(pa.array(in_dictionary)),
                                 self.others.filter(pc.is_in(self.others, value_set=values))])


def _record_union(records: Sequence[pd.Series]) -> RecordUnion:
    """The distinct values of ``record`` columns, each hashed once.

    The locators of the categorical column with the widest dictionary are the base: a
    column sharing that dictionary (the same categories object, as an IO table and its
    records table share theirs) adds the codes it uses, by a count and without hashing;
    the other columns' texts are looked up in it once, and those not found are the
    ``others``.

    >>> u = _record_union([pd.Series(["a", "b", "a"]), pd.Series(pd.Categorical(["b", "c"]))])
    >>> len(u), sorted(u.among(pa.array(["c", "d", "a"], pa.large_string())).to_pylist())
    (3, ['a', 'c'])
    """
    cats = [r for r in records if isinstance(r.dtype, pd.CategoricalDtype)]
    base = max(cats, key=lambda r: len(r.cat.categories)).cat.categories if cats else None
    used = np.zeros(0 if base is None else len(base), dtype=bool)
    texts: list[pa.Array] = []
    for r in records:
        if base is not None and isinstance(r.dtype, pd.CategoricalDtype) and r.cat.categories is base:
            codes = r.array.codes  # the categorical's own codes: no copy of 1e7 of them
            used[codes if not len(codes) or codes.min() >= 0 else codes[codes >= 0]] = True
            continue
        if isinstance(r.dtype, pd.CategoricalDtype):  # another dictionary: the entries it uses
            codes = r.cat.codes.to_numpy()
            seen = np.bincount(codes[codes >= 0], minlength=len(r.cat.categories)) > 0
            r = pd.Series(r.cat.categories[seen])
        arr = pa.array(r.astype("string")).cast(pa.large_string())
        texts.extend(arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr])
    rest = pa.chunked_array(texts, type=pa.large_string())
    if base is None:
        return RecordUnion(_NO_TEXT, used, pc.unique(rest) if len(texts) else _NO_TEXT)
    dictionary = pa.array(pd.Series(base).astype("string")).cast(pa.large_string())
    if isinstance(dictionary, pa.ChunkedArray):
        dictionary = dictionary.combine_chunks()
    if not len(texts):
        return RecordUnion(dictionary, used, _NO_TEXT)
    idx = pc.index_in(rest, value_set=dictionary)
    found = idx.is_valid()
    hits = idx.filter(found).to_numpy()
    used[hits] = True
    others = pc.unique(rest.filter(pc.invert(found))) if len(hits) < len(rest) else _NO_TEXT
    return RecordUnion(dictionary, used, others)


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(SNIFF_BYTES)


def _refuse_blank(head: bytes, path: Path, shown: str) -> None:
    """An empty file, or one whose first 64 KiB are all zero bytes, is no loader's: said so
    at once, without reading the rest (a wiped 2 GiB file would cost minutes of sniffing)."""
    if not head:
        raise UnknownFormat("empty file (0 bytes): nothing to load", path=shown)
    if not any(head):
        size = path.stat().st_size
        what = "all zero bytes" if size <= len(head) else f"zero bytes in its first {len(head)}"
        raise UnknownFormat(f"{size} bytes, {what} (wiped or never written?): no loader reads "
                            "it; pass --format NAME to force one", path=shown)


def _sniff_all(path: Path, head: bytes, shown: str | None = None) -> list[LoaderSpec]:
    """Every loader whose sniffer recognises the file. A sniffer that raises instead of
    answering is a defect: :class:`LoaderBug` naming it."""
    hits = []
    for spec, _fn in REGISTRY.values():
        try:
            if spec.sniff(path, head):
                hits.append(spec)
        except Exception as exc:  # a sniffer must answer yes or no, whatever the bytes
            raise LoaderBug(f"the {spec.name} sniffer crashed ({type(exc).__name__}: {exc}); "
                            "this is a defect in routetrace, please report it; pass --format "
                            "NAME to load the file meanwhile", path=shown or str(path)) from exc
    return hits


def detect_format(path: Path, *, display_path: str | None = None) -> LoaderSpec:
    """Return the one loader that recognises ``path``.

    Every registered sniffer is asked (from the first 64 KiB or the SQLite schema); the
    file is not loaded.

    Parameters
    ----------
    path
        The evidence file.
    display_path
        How to name the file in errors (e.g. ``archive.zip!member``); default ``path``.

    Returns
    -------
    LoaderSpec
        The spec of the one loader whose sniffer says yes.

    Raises
    ------
    UnknownFormat
        No loader recognises it (the message says how to force one).
    AmbiguousFormat
        Several do (the message lists them).
    LoaderBug
        A sniffer raised instead of answering (a defect, not a property of the file).

    Example
    -------
    >>> import tempfile
    >>> from routetrace.errors import UnknownFormat
    >>> from routetrace.testing import example_gpx
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print(detect_format(example_gpx(Path(tmp) / "t.gpx", [51.0])).name)
    ...     (Path(tmp) / "note.txt").write_text("hello")
    ...     try:
    ...         detect_format(Path(tmp) / "note.txt", display_path="note.txt")
    ...     except UnknownFormat as exc:
    ...         print(type(exc).__name__)
    gpx
    5
    UnknownFormat
    """
    shown = display_path or str(path)
    head = _head(path)
    _refuse_blank(head, path, shown)
    hits = _sniff_all(path, head, shown)
    if not hits:
        raise UnknownFormat("no loader recognises this file; see `routetrace formats` and "
                            "pass --format NAME to force one", path=shown)
    if len(hits) > 1:
        names = ", ".join(sorted(s.name for s in hits))
        raise AmbiguousFormat(f"several loaders recognise this file ({names}); "
                              "pass --format NAME to choose", path=shown)
    return hits[0]


def _load_file(
    path: Path,
    *,
    display_path: str,
    member: str | None,
    format: str | None,
    subject_id: str | None,
    tz: str | None,
    options: Mapping[str, Any] | None,
    sink: Callable[[LoadPart], None] | None = None,
) -> LoadResult:
    if not path.exists():
        raise LoaderError("no such file", path=display_path)
    if path.is_dir():
        raise LoaderError("is a folder: use load_many() or `routetrace ingest`", path=display_path)
    if format is not None:
        if format not in REGISTRY:
            raise UnknownFormat(f"unknown format {format!r}; known: {', '.join(sorted(REGISTRY))}",
                                path=display_path)
        spec = REGISTRY[format][0]
        if path.stat().st_size == 0:
            raise UnknownFormat("empty file (0 bytes): nothing to load", path=display_path)
    else:
        spec = detect_format(path, display_path=display_path)
    fn = REGISTRY[spec.name][1]
    source_id, parts = source_identity(path)
    wal = check_wal(Path(str(path) + "-wal")) if "-wal" in parts else None
    ctx = LoadContext(path=path, display_path=display_path, source_id=source_id,
                      size_bytes=path.stat().st_size, spec=spec, subject_id=subject_id, tz=tz,
                      options=dict(options or {}), member=member, parts=parts, wal=wal,
                      sink=sink)
    try:
        return fn(path, ctx=ctx)
    except RoutetraceError:
        raise
    except MemoryError:
        pass  # raised below, outside this block: no traceback keeps the failed load's memory
    except Exception as exc:  # parser libraries raise anything on hostile bytes
        raise CorruptSource(f"cannot be read as {spec.name}: {type(exc).__name__}: {exc}",
                            path=display_path) from exc
    raise LoaderError(f"ran out of memory reading it as {spec.name}: this file is not loaded, "
                      "the others are (read it on a machine with more memory)", path=display_path)


def load(
    path: str | Path,
    *,
    format: str | None = None,
    subject_id: str | None = None,
    tz: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> LoadResult:
    """Load one evidence file into the canonical tables.

    Parameters
    ----------
    path
        The evidence file. It is only read (SQLite from a private copy).
    format
        Force a loader by name instead of sniffing (see ``routetrace formats``).
    subject_id
        The subject the rows belong to; default: what the source says (IMEI, device tag)
        or the file name.
    tz
        IANA zone for sources that store local times without an offset
        (e.g. ``"Europe/Brussels"``); required for them, ignored by others.
    options
        Format-specific options, documented by each loader.

    Returns
    -------
    LoadResult
        ``fixes``, ``events``, ``places``, ``rejects`` (record and reason of every record
        that gave no row) and a one-row ``sources`` table; ``records_read`` = records that
        produced rows + records rejected (the count rule, checked before returning).

    Raises
    ------
    LoaderError
        (or a subclass) with the file, the record and what to do.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> from routetrace.testing import example_gpx
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = load(example_gpx(Path(tmp) / "phone.gpx", [51.0, 51.001]), subject_id="phone-A")
    >>> res.fixes[["subject_id", "t_utc", "lat", "lon"]]
      subject_id                     t_utc     lat   lon
    0    phone-A 2025-10-26 21:00:00+00:00  51.000  3.87
    1    phone-A 2025-10-26 21:01:00+00:00  51.001  3.87
    >>> res.records_read, len(res.rejects), res.source["format"].iloc[0]
    (2, 0, 'gpx')
    """
    check_options(options, format=format)
    p = Path(path)
    return _load_file(p, display_path=str(path), member=None, format=format,
                      subject_id=subject_id, tz=tz, options=options)


def check_options(options: Mapping[str, Any] | None, *, format: str | None = None) -> None:
    """Refuse an option key that the loader ``format`` does not read or, without ``format``,
    that no loader reads (one set of options goes to every file of a mixed folder): a
    mistyped key would otherwise change nothing, without a word.

    Parameters
    ----------
    options
        The options given (``--option KEY=VALUE``, ``options={...}``); None: none.
    format
        The loader forced with ``--format``, if any.

    Raises
    ------
    ParameterError
        Naming the key, the closest known key and the keys that are read.

    Example
    -------
    >>> check_options({"keep_damaged": "true", "chunk_rows": 100})
    >>> check_options({"keep_damage": "true"})
    Traceback (most recent call last):
    ...
    routetrace.errors.ParameterError: unknown option 'keep_damage': no loader reads it; did you mean 'keep_damaged'? ...
    """
    if not options:
        return
    spec = REGISTRY[format][0] if format in REGISTRY else None
    specs = [spec] if spec is not None else [s for s, _ in REGISTRY.values()]
    known = sorted({k for s in specs for k in s.options})
    for key in options:
        if key in known:
            continue
        near = difflib.get_close_matches(str(key), known, n=1)
        who, by = ((f"the {spec.name} loader does not read it", f" by {spec.name}")
                   if spec is not None else ("no loader reads it", ""))
        raise ParameterError(
            f"unknown option {key!r}: {who}" + (f"; did you mean {near[0]!r}?" if near else "")
            + f" (options read{by}: " + (", ".join(known) or "none")
            + "; `routetrace formats` lists them by format)")


@dataclass
class LoadOutcome:
    """One file met by :func:`load_many`: its result, or the error that stopped it."""

    path: str
    result: LoadResult | None = None
    error: RoutetraceError | None = None


def _is_companion(p: Path, siblings: set[str]) -> bool:
    for sfx in SQLITE_COMPANIONS:
        if p.name.endswith(sfx) and p.name[: -len(sfx)] in siblings:
            return True
    return False


def _not_regular(mode: int) -> str:
    kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or
            stat.S_ISBLK(mode) else "not a regular file")
    return f"skipped: {kind}, not followed or read (evidence is read from regular files only)"


def _walk(root: Path) -> tuple[Iterator[Path], list[tuple[Path, str]]]:
    """The regular files under ``root`` in sorted order (SQLite companions left to their
    database), given one at a time as the folders are read, and every other entry met
    (symbolic links to files or folders, pipes, devices) with the reason it is skipped.
    Links are never followed. The files are not listed in memory: a fleet's folder of
    230,000 daily exports listed as paths took 79 MiB, more than the rest of its ingest
    grows by."""
    skipped: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for d in list(dirnames):
            if (base / d).is_symlink():
                dirnames.remove(d)
                skipped.append((base / d, _not_regular(stat.S_IFLNK)))
        for n in filenames:
            mode = os.lstat(os.path.join(dirpath, n)).st_mode
            if not stat.S_ISREG(mode):
                skipped.append((base / n, _not_regular(mode)))
    return _sorted_files(root), sorted(skipped)


def _sorted_files(folder: Path) -> Iterator[Path]:
    """The regular files under ``folder`` (companions left out), in the order of sorted
    paths: each folder's entries by name, a subfolder's files in its place; a folder that
    cannot be read is passed over, as :func:`os.walk` does."""
    try:
        with os.scandir(folder) as it:
            entries = sorted((e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                              for e in it)
    except OSError:
        return
    names = {name for name, _, regular in entries if regular}
    for name, is_dir, regular in entries:
        if is_dir:
            yield from _sorted_files(folder / name)
        elif regular and not _is_companion(folder / name, names):
            yield folder / name


class _OutOfTime(BaseException):
    """The per-file time budget ran out (a BaseException: a loader's ``except Exception``
    around one record must not take it for a bad record)."""


@contextlib.contextmanager
def _time_budget(seconds: float | None) -> Iterator[None]:
    """Raise :class:`_OutOfTime` in this thread after ``seconds`` (main thread only; SIGALRM)."""
    if not seconds or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _OutOfTime

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def load_many(
    path: str | Path,
    *,
    format: str | None = None,
    subject_id: str | None = None,
    tz: str | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    file_timeout_s: float | None = None,
    sink: Callable[[LoadPart], None] | None = None,
) -> Iterator[LoadOutcome]:
    """Load every evidence file in a folder or archive (zip/tar), one outcome per file.

    A file that fails gives an outcome with ``error`` set; the others still load. So does
    every entry that is not read: a symbolic link, pipe or device in a folder (never
    followed), an empty or all-zero file, an archive with no files, an archive member that
    cannot be placed (unsafe path, name collision, over the limits: an
    :class:`~routetrace.errors.UnsafeArchive`). Archive members are extracted into a
    private temporary folder with size, ratio and path checks
    (:func:`routetrace.evidence.extract_archive`). SQLite companions (``-wal``, ``-shm``,
    ``-journal``) are read with their database, not as files of their own.

    A zip is loaded as one KMZ only when it is one: a ``doc.kml`` (or a single ``.kml``)
    at its root and no other member that a loader reads; otherwise (a phone extraction
    holding a ``.kml``, a KMZ holding several KML or GPX files) every member is read.

    Running out of memory, or past ``file_timeout_s`` seconds on one file, is an error
    for that file; the others still load.

    Parameters
    ----------
    path
        A folder (walked recursively; links never followed), an archive, or one file.
    format, subject_id, tz, options
        As for :func:`load`, applied to every file.
    progress
        Called with each file's display path before it is read.
    file_timeout_s
        Time budget per file, in seconds (main thread only); default none.
    sink
        Takes the rows of a large file part by part as its loader reads them (GPX, KML:
        every :data:`PART_ROWS` rows), each a :class:`LoadPart` naming its file
        (``display_path``); an outcome's ``result`` then holds the rows not given, and its
        ``sources`` row counts the whole file. When the outcome is an error, the parts of
        that file already given are not part of any result: the caller discards them.
        Default none: every result holds all its file's rows.

    Returns
    -------
    Iterator of LoadOutcome
        One outcome per file met, in path order: its ``result``, or the ``error`` that
        stopped it (nothing is skipped unannounced).

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import example_gpx
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = example_gpx(Path(tmp) / "a.gpx", [51.0, 51.001, 51.002])
    ...     _ = (Path(tmp) / "b.txt").write_text("hello")
    ...     for out in load_many(tmp):
    ...         print(Path(out.path).name, out.result.records_read if out.result else
    ...               type(out.error).__name__)
    a.gpx 3
    b.txt UnknownFormat
    """
    check_options(options, format=format)
    root = Path(path)
    kwargs: dict[str, Any] = dict(format=format, subject_id=subject_id, tz=tz, options=options,
                                  sink=sink)

    def one(p: Path, shown: str, member: str | None) -> LoadOutcome:
        if progress:
            progress(shown)
        try:
            with _time_budget(file_timeout_s):
                return LoadOutcome(shown, _load_file(p, display_path=shown, member=member, **kwargs))
        except RoutetraceError as exc:
            return LoadOutcome(shown, error=exc)
        except _OutOfTime:
            return LoadOutcome(shown, error=LoaderError(
                f"not read: took longer than the time budget of {file_timeout_s:g} s per file "
                "(--file-timeout-s); nothing of it is in the case", path=shown))
        except MemoryError:
            return LoadOutcome(shown, error=LoaderError(
                "not read: ran out of memory reading it (a hostile or damaged file?); "
                "nothing of it is in the case", path=shown))

    if root.is_symlink() and not root.exists():
        yield LoadOutcome(str(path), error=LoaderError(_not_regular(stat.S_IFLNK), path=str(path)))
        return
    if not root.exists():
        yield LoadOutcome(str(path), error=LoaderError("no such file or folder", path=str(path)))
        return
    if root.is_dir():
        files, skipped = _walk(root)
        for q, why in skipped:
            yield LoadOutcome(str(q), error=LoaderError(why, path=str(q)))
        for f in files:
            yield from _expand(f, str(f), None, one, kwargs)
        return
    yield from _expand(root, str(path), None, one, kwargs)


def _expand(
    f: Path,
    shown: str,
    member: str | None,
    one: Callable[[Path, str, str | None], LoadOutcome],
    kwargs: Mapping[str, Any],
) -> Iterator[LoadOutcome]:
    try:
        whole = kwargs.get("format") is not None or not is_archive(f) or _whole_archive_loader(f)
    except RoutetraceError as exc:  # a sniffer that fails on the archive (a LoaderBug)
        yield LoadOutcome(shown, error=exc)
        return
    if whole:
        yield one(f, shown, member)
        return
    with tempfile.TemporaryDirectory(prefix="routetrace-archive-") as tmp:
        try:
            report = extract_archive(f, tmp)
        except (UnsafeArchive, CorruptSource) as exc:
            yield LoadOutcome(shown, error=exc)
            return
        if _is_kmz(f, report):
            yield one(f, shown, member)
            return
        yield from _archive_outcomes(Path(tmp), report, shown, one)


def _archive_outcomes(tmp: Path, report: ArchiveReport, shown: str,
                      one: Callable[[Path, str, str | None], LoadOutcome]) -> Iterator[LoadOutcome]:
    """One outcome per member: refused ones as errors, the others loaded."""
    if not report.members and not report.refused:
        what = f"only {report.folders} folder entr{'y' if report.folders == 1 else 'ies'}" \
            if report.folders else "no members at all"
        yield LoadOutcome(shown, error=LoaderError(f"archive holds no files ({what}): nothing "
                                                   "to load", path=shown))
        return
    for name, why in report.refused:
        yield LoadOutcome(f"{shown}!{name}", error=UnsafeArchive(why, path=f"{shown}!{name}"))
    extracted = {m.path: m.name for m in report.members}
    files, _ = _walk(tmp)
    for p in files:
        if p in extracted:
            yield one(p, f"{shown}!{extracted[p]}", extracted[p])


def _whole_archive_loader(path: Path) -> bool:
    """True when a loader other than ``kmz`` reads this archive as a whole."""
    return any(s.name != "kmz" for s in _sniff_all(path, _head(path)))


def _is_kmz(path: Path, report: ArchiveReport) -> bool:
    """A zip is a KMZ when it has a ``doc.kml`` at its root (or a single ``.kml`` there),
    every member was extracted, and no other member is one that a loader reads."""
    if report.refused or not zipfile.is_zipfile(path):
        return False
    root_kml = [m for m in report.members if len(PurePosixPath(m.name.replace("\\", "/")).parts) == 1
                and m.name.lower().endswith(".kml")]
    doc = [m for m in root_kml if m.name.lower() == "doc.kml"]
    main = doc[0] if doc else root_kml[0] if len(root_kml) == 1 else None
    if main is None:
        return False
    return not any(_claimed_by_loader(m.path) for m in report.members if m is not main)


def _claimed_by_loader(path: Path) -> bool:
    """True unless no loader recognises ``path`` (several loaders, or a sniffer that fails
    on it, count as claimed: the member is then read, and its error reported, on its own)."""
    try:
        detect_format(path)
        return True
    except UnknownFormat:
        return False
    except RoutetraceError:
        return True


def companion_hashes(path: Path) -> dict[str, str]:
    """SHA-256 of each SQLite companion (``-wal``, ``-shm``) beside ``path``, by suffix."""
    return {c.name[len(path.name):]: sha256_file(c) for c in companions(path)}


def iter_records(values: Iterable[Any]) -> Iterator[tuple[int, Any]]:
    """Enumerate records from 0, the locator convention for row-based sources."""
    return enumerate(values)
