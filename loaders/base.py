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

import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
    RoutetraceError,
    UnknownFormat,
    UnsafeArchive,
)
from ..evidence import SQLITE_COMPANIONS, companions, extract_archive, is_archive, sha256_file

__all__ = [
    "REGISTRY",
    "LoadContext",
    "LoadOutcome",
    "LoadResult",
    "Loader",
    "LoaderSpec",
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
    """

    name: str
    description: str
    sniff: Callable[[Path, bytes], bool]
    produces: tuple[str, ...]
    version: str = "1"


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
        """The SHA-256 of the evidence file."""
        return str(self.source["source_id"].iloc[0])


Loader = Callable[..., LoadResult]

#: name -> (spec, function); filled by :func:`register` from ``loaders/__init__.py``.
REGISTRY: dict[str, tuple[LoaderSpec, Loader]] = {}


def register(spec: LoaderSpec) -> Callable[[Loader], Loader]:
    """Register ``fn`` as the loader for ``spec.name`` (explicit; no directory scanning)."""

    def deco(fn: Loader) -> Loader:
        if spec.name in REGISTRY:
            raise RuntimeError(f"loader {spec.name!r} registered twice")
        REGISTRY[spec.name] = (spec, fn)
        return fn

    return deco


def compact_json(obj: Mapping[str, Any]) -> str:
    """Serialise source attributes for the ``extra`` column: sorted keys, no spaces, NA dropped."""
    clean = {k: v for k, v in obj.items() if v is not None and not (isinstance(v, float) and v != v)}
    return json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def split_repeated(df: pd.DataFrame, key: str, record: Callable[[Any, int], str],
                   reason: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Rows whose ``key`` already came (a damaged b-tree can repeat a key in a scan): the
    first row of each key is kept; each later one is a ``(record(key value, row number),
    reason)`` reject. Returns the kept rows (index reset when any is dropped) and the rejects.

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
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                return set()
        uri = f"file:{path.resolve().as_posix()}?mode=ro&immutable=1"
        con = sqlite3.connect(uri, uri=True)
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        finally:
            con.close()
        return {str(r[0]) for r in rows}
    except (sqlite3.DatabaseError, OSError):
        return set()


@dataclass
class LoadContext:
    """Everything a loader needs besides the path: identity, subject, time basis, options.

    ``path`` is the file to read (a private extracted copy for archive members);
    ``display_path`` is how the user names it (``archive.zip!member/path``).
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

        Raises
        ------
        LoaderBug
            When the count rule does not hold (a loader bug: a record was lost or counted
            twice). Never silently passes.
        """
        subj = self.subject(default_subject)
        prefix = self.source_id[:16]
        tables: dict[str, pd.DataFrame] = {}
        for kind, df in (("fixes", fixes), ("events", events), ("places", places)):
            if df is None or len(df) == 0:
                tables[kind] = schema.empty(kind)
                continue
            df = df.copy(deep=False)  # copy-on-write: columns are added, never changed in place
            df["source_id"] = self.source_id
            if "subject_id" not in df.columns:
                df["subject_id"] = subj if kind != "places" else pd.NA
            elif kind != "places":
                df["subject_id"] = df["subject_id"].astype("string").fillna(subj)
            rec = df["record"].astype("string")
            if kind == "fixes" and "fix_id" not in df.columns:
                df["fix_id"] = prefix + ":" + rec
            elif kind == "events" and "event_id" not in df.columns:
                df["event_id"] = prefix + ":" + rec + ":" + df["kind"].astype("string")
            elif kind == "places" and "place_id" not in df.columns:
                df["place_id"] = prefix + ":" + rec
            tables[kind] = schema.validate(schema.coerce(df.reset_index(drop=True), kind), kind)

        if rejects is None:
            rej = schema.empty("rejects")
        elif isinstance(rejects, pd.DataFrame):
            rej = rejects.copy()
            rej["source_id"] = self.source_id
            rej = schema.coerce(rej.reset_index(drop=True), "rejects")
        else:
            rej = schema.coerce(pd.DataFrame(
                {"source_id": self.source_id,
                 "record": [r for r, _ in rejects], "reason": [why for _, why in rejects]},
            ), "rejects") if len(rejects) else schema.empty("rejects")
        extras = {k: v.reset_index(drop=True) for k, v in (extra_tables or {}).items()}

        # distinct records in Arrow (no Python string per row: a 1e6-row table would cost
        # ~150 MiB); distinct per table first: an IO table has ~10 rows per record
        parts = [_distinct_records(df["record"]) for df in [*tables.values(), *extras.values()]
                 if len(df)]
        produced = pc.unique(pa.chunked_array(parts, type=pa.large_string()))
        rejected = rej["record"].astype("string")
        if rejected.duplicated().any():
            dup = rejected[rejected.duplicated()].iloc[0]
            raise LoaderBug(f"internal: record {dup!r} rejected twice (loader bug)",
                            path=self.display_path)
        both = produced.filter(pc.is_in(produced, value_set=pa.array(rejected.tolist(),
                                                                      type=pa.large_string())))
        if len(both):
            raise LoaderBug(f"internal: record {sorted(both.to_pylist())[0]!r} both produced and "
                            "rejected (loader bug)", path=self.display_path)
        if len(produced) + len(rej) != records_read:
            raise LoaderBug(
                f"internal: count rule broken: {records_read} records read but "
                f"{len(produced)} produced + {len(rej)} rejected (loader bug)",
                path=self.display_path)

        comps = "|".join(f"{k}={v}" for k, v in sorted((companion_hashes or {}).items()))
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
            "n_fixes": len(tables["fixes"]),
            "n_events": len(tables["events"]),
            "n_places": len(tables["places"]),
            "n_rejects": len(rej),
            "companions": comps or None,
        }]), "sources")
        return LoadResult(fixes=tables["fixes"], events=tables["events"], places=tables["places"],
                          rejects=rej, source=source, records_read=records_read,
                          extra_tables=extras)


def _distinct_records(records: pd.Series) -> pa.Array:
    """The distinct values of a ``record`` column as an Arrow large_string array."""
    if isinstance(records.dtype, pd.CategoricalDtype):
        used = records.cat.remove_unused_categories().cat.categories
        return pa.array(pd.Series(used, dtype="string")).cast(pa.large_string())
    return pc.unique(pa.array(records.astype("string")).cast(pa.large_string()))


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(SNIFF_BYTES)


def detect_format(path: Path, *, display_path: str | None = None) -> LoaderSpec:
    """Return the one loader that recognises ``path``.

    Raises
    ------
    UnknownFormat
        No loader recognises it (the message says how to force one).
    AmbiguousFormat
        Several do (the message lists them).
    """
    shown = display_path or str(path)
    head = _head(path)
    if not head:
        raise UnknownFormat("empty file (0 bytes): nothing to load", path=shown)
    hits = []
    for spec, _fn in REGISTRY.values():
        try:
            if spec.sniff(path, head):
                hits.append(spec)
        except Exception:  # a sniffer is a best-effort guess: failing to recognise is "no"
            continue
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
    ctx = LoadContext(path=path, display_path=display_path, source_id=sha256_file(path),
                      size_bytes=path.stat().st_size, spec=spec, subject_id=subject_id, tz=tz,
                      options=dict(options or {}), member=member)
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

    Raises
    ------
    LoaderError
        (or a subclass) with the file, the record and what to do.

    Example
    -------
    >>> from routetrace.loaders import load
    >>> res = load("phone.gpx", subject_id="phone-A")  # doctest: +SKIP
    >>> res.fixes[["t_utc", "lat", "lon"]].head()  # doctest: +SKIP
    """
    p = Path(path)
    return _load_file(p, display_path=str(path), member=None, format=format,
                      subject_id=subject_id, tz=tz, options=options)


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


def _walk(root: Path) -> list[Path]:
    files = sorted(q for q in root.rglob("*") if q.is_file() and not q.is_symlink())
    names_by_dir: dict[Path, set[str]] = {}
    for f in files:
        names_by_dir.setdefault(f.parent, set()).add(f.name)
    return [f for f in files if not _is_companion(f, names_by_dir[f.parent])]


def _claimed_by_loader(path: Path) -> bool:
    try:
        detect_format(path)
        return True
    except LoaderError:
        return False


def load_many(
    path: str | Path,
    *,
    format: str | None = None,
    subject_id: str | None = None,
    tz: str | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Iterator[LoadOutcome]:
    """Load every evidence file in a folder or archive (zip/tar), one outcome per file.

    A file that fails gives an outcome with ``error`` set; the others still load. Archive
    members are extracted into a private temporary folder with size, ratio and path checks
    (:func:`routetrace.evidence.extract_archive`); refused members are outcomes with an
    :class:`~routetrace.errors.UnsafeArchive` error. SQLite companions (``-wal``, ``-shm``)
    are read with their database, not as files of their own. An archive that a loader
    reads as a whole (KMZ, a Takeout zip with a loader) is loaded as one file.
    """
    root = Path(path)
    kwargs: dict[str, Any] = dict(format=format, subject_id=subject_id, tz=tz, options=options)

    def one(p: Path, shown: str, member: str | None) -> LoadOutcome:
        if progress:
            progress(shown)
        try:
            return LoadOutcome(shown, _load_file(p, display_path=shown, member=member, **kwargs))
        except RoutetraceError as exc:
            return LoadOutcome(shown, error=exc)

    if not root.exists():
        yield LoadOutcome(str(path), error=LoaderError("no such file or folder", path=str(path)))
        return
    if root.is_dir():
        for f in _walk(root):
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
    if kwargs.get("format") is None and is_archive(f) and not _claimed_by_loader(f):
        with tempfile.TemporaryDirectory(prefix="routetrace-archive-") as tmp:
            try:
                report = extract_archive(f, tmp)
            except (UnsafeArchive, CorruptSource) as exc:
                yield LoadOutcome(shown, error=exc)
                return
            for name, why in report.refused:
                yield LoadOutcome(f"{shown}!{name}", error=UnsafeArchive(why, path=f"{shown}!{name}"))
            extracted = {m.path: m.name for m in report.members}
            for p in _walk(Path(tmp)):
                if p in extracted:
                    yield one(p, f"{shown}!{extracted[p]}", extracted[p])
        return
    yield one(f, shown, member)


def companion_hashes(path: Path) -> dict[str, str]:
    """SHA-256 of each SQLite companion (``-wal``, ``-shm``) beside ``path``, by suffix."""
    return {c.name[len(path.name):]: sha256_file(c) for c in companions(path)}


def iter_records(values: Iterable[Any]) -> Iterator[tuple[int, Any]]:
    """Enumerate records from 0, the locator convention for row-based sources."""
    return enumerate(values)
