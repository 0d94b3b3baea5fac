"""Ingest: load evidence files, folders and archives into a case.

The case store (:mod:`routetrace.case`) only stores; this job reads evidence with the
loaders and adds what they produced to the store. Ingesting is idempotent: a file whose
SHA-256 is already in the case adds nothing. A bad file becomes a quality-report entry and
never stops the rest of the ingest.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import schema
from ..case import (
    PARTITIONED,
    QUALITY,
    Case,
    TimeSlice,
    concat_tables,
    group_rows,
    lock_case,
    open_case,
    sort_table,
)
from ..csvout import formula_safe, write_csv
from ..errors import CaseError, SchemaError
from ..loaders import LoadPart, LoadResult, load_many
from ..loaders.base import SinkFailed, check_options
from ..localtime import fmt_duration
from .subjects import (
    LOOKALIKE_MAX_DT,
    LOOKALIKE_RADIUS_M,
    DeviceRule,
    SubjectMap,
    assign_subject,
    build_devices,
    build_subjects,
    load_subject_map,
    lookalike_subjects,
    merge_lines,
    with_subject,
)

__all__ = ["IngestReport", "PathList", "ingest"]

#: the items a compact collection of this module keeps as Python objects before packing them
PACK_EVERY = 4096


class PathList(Sequence[str]):
    """A list of paths held as Arrow text: about 64 bytes a path, where a Python list of
    strings takes about 120 (the paths an ingest of a fleet-year added: 230,000).

    Example
    -------
    >>> added = PathList()
    >>> added.append("lorry-7/2025-01-06.csv")
    >>> len(added), added[0], added == ["lorry-7/2025-01-06.csv"]
    (1, 'lorry-7/2025-01-06.csv', True)
    """

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._packed: list[pa.Array] = []
        self._recent: list[str] = []
        for p in paths:
            self.append(p)

    def append(self, path: str) -> None:
        """Add ``path`` at the end."""
        self._recent.append(path)
        if len(self._recent) >= PACK_EVERY:
            self._packed.append(pa.array(self._recent, pa.string()))
            self._recent = []

    def __len__(self) -> int:
        return sum(len(a) for a in self._packed) + len(self._recent)

    def __iter__(self) -> Iterator[str]:
        for a in self._packed:
            yield from a.to_pylist()
        yield from self._recent

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return list(self)[i]
        n = len(self)
        k = i + n if i < 0 else i
        if not 0 <= k < n:
            raise IndexError("PathList index out of range")
        for a in self._packed:  # whole packed arrays before it are skipped, not listed
            if k < len(a):
                return str(a[k].as_py())
            k -= len(a)
        return self._recent[k]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and not isinstance(other, str) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PathList({list(self)!r})"


class _SourceIds:
    """The set of source ids (SHA-256, 64 hex digits) an ingest checks each file against:
    32 bytes an id in a sorted array, where a Python set of the texts takes about 180."""

    def __init__(self, ids: Iterable[str] = (), *, sorted_keys: np.ndarray | None = None) -> None:
        self._sorted = np.array([], dtype="S32") if sorted_keys is None else sorted_keys
        self._recent: set[str] = set()
        for sid in ids:
            self.add(sid)

    @staticmethod
    def _key(sid: str) -> bytes | None:
        try:
            b = bytes.fromhex(sid)
        except ValueError:
            return None
        return b if len(b) == 32 else None

    @staticmethod
    def find(sorted_keys: np.ndarray, sid: str) -> int | None:
        """Position of id ``sid`` in ``sorted_keys`` (packed ids, sorted), None if absent.

        >>> keys = np.array([bytes.fromhex("00" * 31 + "01")], dtype="S32")
        >>> _SourceIds.find(keys, "00" * 31 + "01"), _SourceIds.find(keys, "ab" * 32)
        (0, None)
        """
        key = _SourceIds._key(sid)
        if key is None or not len(sorted_keys):
            return None
        i = int(np.searchsorted(sorted_keys, np.bytes_(key)))
        # numpy drops an S32 value's trailing zero bytes: compare without them
        return i if i < len(sorted_keys) and bytes(sorted_keys[i]) == key.rstrip(b"\0") else None

    def __contains__(self, sid: object) -> bool:
        if not isinstance(sid, str):
            return False
        return sid in self._recent or self.find(self._sorted, sid) is not None

    def add(self, sid: str) -> None:
        """Add ``sid`` (any text; a SHA-256 is packed into the array)."""
        self._recent.add(sid)
        if len(self._recent) >= PACK_EVERY:
            keyed = {s: self._key(s) for s in self._recent}
            keys = [k for k in keyed.values() if k is not None]
            self._recent = {s for s, k in keyed.items() if k is None}
            self._sorted = np.union1d(self._sorted, np.array(keys, dtype="S32")).astype("S32")


class _StoredSources:
    """The sources a case holds before an ingest: each id, 32 bytes in a sorted array, and
    its subject, a code into the distinct subjects. Read two columns a batch at a time from
    the stored table: a fleet-year's 230,000 sources as a pandas table with a dict of ids
    held about 100 MB through the ingest."""

    def __init__(self, files: Sequence[Path]) -> None:
        keys: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        self._names: list[Any] = []
        self._other: dict[str, Any] = {}  # ids that are not a SHA-256 (none written today)
        code_of: dict[Any, int] = {}
        for f in files:
            for b in pq.ParquetFile(f).iter_batches(columns=["source_id", "subject_id"], batch_size=65_536):
                k_batch, c_batch = [], []
                for sid, sub in zip(b.column(0).to_pylist(), b.column(1).to_pylist(), strict=True):
                    subject = pd.NA if sub is None else str(sub)
                    key = _SourceIds._key(str(sid))
                    if key is None:
                        self._other[str(sid)] = subject
                        continue
                    if subject not in code_of:
                        code_of[subject] = len(self._names)
                        self._names.append(subject)
                    k_batch.append(key)
                    c_batch.append(code_of[subject])
                keys.append(np.array(k_batch, dtype="S32"))
                codes.append(np.array(c_batch, dtype=np.int32))
        k = np.concatenate(keys) if keys else np.array([], dtype="S32")
        order = np.argsort(k, kind="stable")
        self.keys = k[order]
        self._codes = (np.concatenate(codes) if codes else np.array([], dtype=np.int32))[order]

    def ids(self) -> _SourceIds:
        """The ids as the set an ingest checks and adds to."""
        return _SourceIds(self._other, sorted_keys=self.keys)

    def subject(self, sid: str) -> Any:
        """The subject of stored source ``sid`` (``pd.NA`` when it has none; None when the
        case does not hold it)."""
        if sid in self._other:
            return self._other[sid]
        i = _SourceIds.find(self.keys, sid)
        return None if i is None else self._names[int(self._codes[i])]


@dataclass
class IngestReport:
    """What one ingest did: files added, skipped as already present, and failures; the
    subjects and devices it created, sources it re-assigned, and warnings."""

    added: PathList = field(default_factory=PathList)
    duplicates: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    rejected_records: int = 0
    subjects_created: list[str] = field(default_factory=list)
    devices_created: list[str] = field(default_factory=list)
    reassigned: list[tuple[str, str, str]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    rederived: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary (for ``--json``)."""
        return {"added": list(self.added), "duplicates": self.duplicates,
                "errors": [{"path": p, "error": e} for p, e in self.errors],
                "rows": self.rows, "rejected_records": self.rejected_records,
                "subjects_created": self.subjects_created,
                "devices_created": self.devices_created,
                "reassigned": [{"path": p, "from": a, "to": b} for p, a, b in self.reassigned],
                "unmapped": self.unmapped, "rederived": self.rederived,
                "warnings": self.warnings}


#: tables the analysis stages derive from the canonical ones (re-derived when subjects change)
DERIVED = ("stops", "trips", "gaps", "fix_stop_links", "recurring_places", "places_merged",
           "portal_comparison",
           "chronology", "copresence_pairs", "meetings", "geofences", "carpark_visits",
           "carpark_hour_of_week", "carpark_recurring", "carpark_unusual_dwell", "statements",
           "corroboration", "corroboration_evidence", "corroboration_sequence")


@dataclass
class _Assigner:
    """Decides each source's subject and device: the mapping, else --subject, else the
    loader's own subject."""

    case_root: Path
    mapping: SubjectMap | None
    subject_id: str | None
    rules: dict[str, DeviceRule] = field(default_factory=dict)
    declared: dict[str, str] = field(default_factory=dict)

    def wanted(self, path: str) -> tuple[DeviceRule | None, str | None]:
        rule = self.mapping.match(path) if self.mapping else None
        if rule is not None:
            self.rules[rule.device_id] = rule
            return rule, rule.subject_id
        return None, self.subject_id

    def part_subject(self, path: str, *, tracked: bool) -> str | None:
        """The subject the rows of file ``path`` go to (None: the loader's own);
        ``tracked``: the file gave fixes or events (an archive member's then go to the
        archive's subject)."""
        _, subject = self.wanted(path)
        if subject is None and "!" in path and tracked:
            subject = Path(path.split("!", 1)[0]).stem  # an extraction is one device
            self.declared.setdefault(subject, "one extraction (archive) is one device")
        return subject

    def place(self, res: LoadResult, path: str, report: IngestReport, *,
              streamed: bool = False) -> LoadResult:
        """``res`` given its subject and its source its device; ``streamed``: the file
        gave fixes or events in parts already stored (:class:`_PartSink`)."""
        tracked = streamed or bool(len(res.fixes) or len(res.events))
        rule, _ = self.wanted(path)
        subject = self.part_subject(path, tracked=tracked)
        if subject is not None:
            res = assign_subject(res, subject)
        src_subject = res.source["subject_id"].astype("string").iloc[0]
        case_material = not tracked  # statements, pins: places only
        device = (rule.device_id if rule else "case" if case_material and subject is None
                  else str(src_subject) if pd.notna(src_subject) else "case")
        if rule is not None:
            self.declared[device] = self.mapping.declared_by if self.mapping else ""
        elif self.subject_id is not None:
            self.declared.setdefault(device, "--subject")
        elif self.mapping is not None and device != "case":
            report.unmapped.append(path)
        outer = Path(path.split("!", 1)[0]).resolve()
        try:
            rel = Path(os.path.relpath(outer, self.case_root.resolve())).as_posix()
        except ValueError:
            rel = outer.as_posix()
        res.source = res.source.assign(device_id=device, case_relpath=rel)
        return res


@dataclass
class _PartSink:
    """Stores the parts that a streaming loader gives (:class:`~routetrace.loaders.LoadPart`)
    as the next parts of their source in the case, so an ingest holds one part of a large
    file, not the file. A file already in the case gives nothing; a file whose load fails
    after some parts has them taken back (:meth:`discard`)."""

    case: Case
    known: _SourceIds
    assigner: _Assigner
    staged: dict[str, list[str]] = field(default_factory=dict)  # display path -> part paths
    rejects: dict[str, list[pd.DataFrame]] = field(default_factory=dict)

    def __call__(self, part: LoadPart) -> None:
        if part.source_id in self.known:
            return  # a duplicate: reported as one by the ingest, nothing stored
        tracked = bool(len(part.fixes) or len(part.events))
        subject = self.assigner.part_subject(part.display_path, tracked=tracked)
        rels = self.staged.setdefault(part.display_path, [])
        for kind in PARTITIONED:
            df = getattr(part, kind)
            if len(df):
                rels.append(self.case.append_part(kind, df if subject is None else with_subject(df, subject),
                                                  part=self.part_counts(part.display_path)[kind]))
        if len(part.rejects):
            self.rejects.setdefault(part.display_path, []).append(part.rejects)

    def part_counts(self, path: str) -> dict[str, int]:
        """The parts of each table the file ``path`` gave so far (its source is new: its
        next part's number, without looking it up in the case)."""
        rels = self.staged.get(path, [])
        return {kind: sum(r.startswith(f"tables/{kind}/") for r in rels) for kind in PARTITIONED}

    def streamed(self, path: str) -> bool:
        """Whether the file ``path`` gave rows in parts."""
        return bool(self.staged.get(path))

    def with_part_rejects(self, path: str, res: LoadResult) -> LoadResult:
        """``res`` with the rejects its file gave in parts before it."""
        before = self.rejects.pop(path, [])
        self.staged.pop(path, None)
        if not before:
            return res
        return dataclasses.replace(res, rejects=concat_tables([*before, res.rejects], "rejects"))

    def discard(self, path: str) -> None:
        """The file ``path`` failed: take back the parts it gave (nothing of it stays)."""
        for rel in self.staged.pop(path, []):
            self.case.drop_part(rel)
        self.rejects.pop(path, None)


def _check_inputs(inputs: Sequence[str | Path], root: str | Path) -> None:
    """Every input exists; the case folder is not inside an input folder (the case would be
    written into the evidence, and the walk would read the case's own files as evidence)
    and no input is inside the case folder."""
    case = Path(os.path.realpath(root))
    for item in inputs:
        p = Path(item)
        if not (p.exists() or p.is_symlink()):
            raise CaseError("no such file or folder", path=str(item),
                            hint="check the path; nothing was written")
        real = Path(os.path.realpath(p))
        if p.is_dir() and case.is_relative_to(real):
            raise CaseError(f"the case folder {root} is inside this evidence folder: the case would "
                            "be written into the evidence and read back as evidence", path=str(item),
                            hint="choose a case folder outside the evidence; nothing was written")
        if real.is_relative_to(case):
            raise CaseError(f"this input is inside the case folder {root}: a case's own files are "
                            "not evidence", path=str(item), hint="nothing was written")


def _reassign(tables: dict[str, pd.DataFrame], moves: dict[str, tuple[str, str]]) -> None:
    """Give every row of the sources in ``moves`` (source_id -> (subject, device)) its new
    subject, and the sources their new device."""
    subject_of = {k: v[0] for k, v in moves.items()}
    for name, df in tables.items():
        if not len(df) or not {"source_id", "subject_id"} <= set(df.columns):
            continue
        new = df["source_id"].astype(str).map(subject_of)
        hit = new.notna()
        if hit.any():
            df = df.copy()
            df["subject_id"] = df["subject_id"].astype("string").where(~hit, new.astype("string"))
            tables[name] = df
    src = tables["sources"]
    device = src["source_id"].astype(str).map({k: v[1] for k, v in moves.items()})
    src["device_id"] = src["device_id"].astype("string").where(device.isna(),
                                                               device.astype("string"))


def ingest(
    root: str | Path,
    inputs: Iterable[str | Path],
    *,
    subject_id: str | None = None,
    subjects: str | Path | SubjectMap | None = None,
    tz: str | None = None,
    format: str | None = None,
    options: Mapping[str, Any] | None = None,
    case_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    file_timeout_s: float | None = None,
) -> IngestReport:
    """Add evidence files, folders or archives to the case at ``root`` (created if new).

    Each file is loaded with :func:`routetrace.loaders.load_many`; the case's tables,
    manifest and quality report are rewritten once at the end. Files already in the case
    (same SHA-256) are skipped, unless this ingest gives them another subject: then they
    are re-assigned and the analyses already run are re-derived. Failures are reported,
    never fatal for the other files: neither running out of memory on one file nor taking
    longer than ``file_timeout_s`` seconds on it (then that file is an error). An input that
    does not exist is refused before anything is written; files that exist but cannot be
    read are listed in quality.csv, even when none could. ``quality.file_errors`` in case.json is
    the number of file-level rows in quality.csv (each file error once, however often the
    same input is ingested again).

    Parameters
    ----------
    root
        The case folder.
    inputs
        Evidence files, folders, zip or tar archives (all must exist).
    subject_id
        Subject of every input (``--subject``); ``subjects`` takes precedence where it matches.
    subjects
        A subjects mapping file (see :mod:`routetrace.app.subjects`) or a parsed one.
    tz, format, options
        As for :func:`routetrace.loaders.load`.
    case_id
        Identifier of a new case (default: the folder name).
    progress
        Called with each file's path as it is read.
    file_timeout_s
        Time budget per file, seconds (None: no limit).

    Returns
    -------
    IngestReport

    Raises
    ------
    CaseError
        An input does not exist (nothing is written), or ``root`` is not a case.
    ParameterError
        The subjects mapping cannot be read.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import example_gpx
    >>> tmp = tempfile.TemporaryDirectory()
    >>> gpx = example_gpx(Path(tmp.name) / "phone.gpx", [51.0, 51.001, 51.002])
    >>> rep = ingest(Path(tmp.name) / "case-42", [gpx], subject_id="phone-A")
    >>> rep.subjects_created, rep.rows["fixes"], len(rep.added)
    (['phone-A'], 3, 1)
    >>> len(ingest(Path(tmp.name) / "case-42", [gpx]).duplicates)  # the same file again: nothing added
    1
    >>> tmp.cleanup()
    """
    inputs = list(inputs)
    _check_inputs(inputs, root)
    check_options(options, format=format)  # a mistyped key: refused before anything is written
    mapping = load_subject_map(subjects) if isinstance(subjects, str | Path) else subjects
    with lock_case(root, create=True):  # one ingest or stage at a time on a case
        created = not (Path(root) / "case.json").exists()
        case = open_case(root, create=True, case_id=case_id)
        try:
            with case.transaction():  # a failure (a full disk) leaves the case as it was
                try:
                    return _ingest(case, created, inputs, mapping, subject_id=subject_id, tz=tz,
                                   format=format, options=options, progress=progress,
                                   file_timeout_s=file_timeout_s)
                except SinkFailed as exc:  # storing a streamed part failed: the store's error
                    raise exc.error from None
        except BaseException:
            if created and not (case.root / "case.json").exists():
                shutil.rmtree(case.root, ignore_errors=True)  # ... and a new case as none
            raise


#: the small tables of this many new sources are folded into one table each
FOLD_SOURCES = 256
#: the new sources' rows are staged, sorted, every this many files (a run), and read back
#: :data:`RUN_ROWS` at a time from each run when the sources table is written
SPILL_SOURCES = 4096
RUN_ROWS = 256


@dataclass
class _NewSources:
    """The small tables (``sources``, ``rejects``, a loader's side tables) of the sources an
    ingest adds, whose fixes, events and places are staged as parts already
    (:func:`_spill`). Every :data:`FOLD_SOURCES` files each table's pieces are joined into
    one, so memory grows with their rows, not with a pandas frame per file (about 90 KB
    each: a LoadResult kept per file made 2,000 small files peak at 385 MB instead of 200).
    With ``spill`` (where run k goes), the rows of ``sources`` (about 380 bytes a file) are
    staged every :data:`SPILL_SOURCES` files as a sorted run (:meth:`sources_runs`).
    """

    tables: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    files: int = 0
    spill: Callable[[int], Path] | None = None
    runs: list[Path] = field(default_factory=list)

    def add(self, res: LoadResult) -> None:
        """Keep ``res``'s small tables (its staged parts are not kept)."""
        pieces = {"sources": res.source, "rejects": res.rejects, **res.extra_tables}
        for name, df in pieces.items():
            self.tables.setdefault(name, []).append(df)
        self.files += 1
        if self.files % FOLD_SOURCES == 0:
            for name, frames in self.tables.items():
                if len(frames) > 1:
                    self.tables[name] = [one_chunk(self.joined(name))]
        if self.spill is not None and self.files % SPILL_SOURCES == 0:
            run = sort_table(self.joined("sources"), "sources")
            path = self.spill(len(self.runs))
            pq.write_table(pa.Table.from_pandas(run, preserve_index=False), path, row_group_size=RUN_ROWS)
            self.runs.append(path)
            self.tables["sources"] = []

    def sources_runs(self) -> list[Iterator[pd.DataFrame]]:
        """The new rows of ``sources`` as runs in stored order (:func:`sort_table`), each
        read :data:`RUN_ROWS` rows at a time when iterated."""
        def read(path: Path) -> Iterator[pd.DataFrame]:
            pf = pq.ParquetFile(path)
            for i in range(pf.num_row_groups):
                yield schema.coerce(pf.read_row_group(i).to_pandas(), "sources")

        rest = self.joined("sources")
        return [*map(read, self.runs), *([iter([sort_table(rest, "sources")])] if len(rest) else [])]

    def all_sources(self) -> pd.DataFrame:
        """The new rows of ``sources`` as one table."""
        return concat_tables([df for run in self.sources_runs() for df in run], "sources")

    def joined(self, name: str) -> pd.DataFrame:
        """The new rows of table ``name`` as one table (its pieces in the order added)."""
        kind = name if name in ("sources", "rejects") else None
        return concat_tables(self.tables.get(name, []), kind)

    @property
    def extra_names(self) -> set[str]:
        """The side tables the new sources brought."""
        return set(self.tables) - {"sources", "rejects"}


def one_chunk(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each Arrow-backed column (``string[pyarrow]``) held in one Arrow chunk.

    ``pandas.concat`` keeps every piece's chunk: the sources of 8,000 files folded into one
    table were 8,000 chunks per text column, about 10 KB of chunk bookkeeping per file
    (an ingest's memory then grew with its files). Meant for small tables: each such
    column is copied once.

    Example
    -------
    >>> s = pd.Series(["a"], dtype="string[pyarrow]")
    >>> t = one_chunk(pd.concat([s.to_frame("x")] * 3, ignore_index=True))
    >>> pa.chunked_array(pa.array(t["x"].array)).num_chunks, t["x"].tolist()
    (1, ['a', 'a', 'a'])
    """
    out = {}
    for col in df.columns:
        arr = df[col].array
        arrow = pa.array(arr) if isinstance(arr, pd.arrays.ArrowExtensionArray) else None
        if isinstance(arrow, pa.ChunkedArray) and arrow.num_chunks > 1:
            out[col] = pd.Series(df[col].dtype.__from_arrow__(pa.chunked_array([arrow.combine_chunks()])),
                                 index=df.index)
    return df.assign(**out) if out else df


def _ingest(case: Case, created: bool, inputs: list[str | Path], mapping: SubjectMap | None, *,
            subject_id: str | None, tz: str | None, format: str | None,
            options: Mapping[str, Any] | None, progress: Callable[[str], None] | None,
            file_timeout_s: float | None = None) -> IngestReport:
    """The ingest, the case lock held: load, stage each new source's parts, commit."""
    report = IngestReport()
    stored = _StoredSources(case.table_files("sources"))
    known = stored.ids()
    assigner = _Assigner(case.root, mapping, subject_id)
    new = _NewSources(spill=lambda k: case.scratch_path(f"sources-{k:05d}.parquet"))
    moves: dict[str, tuple[str, str]] = {}
    sink = _PartSink(case, known, assigner)  # a large GPX/KML file is stored part by part
    for item in inputs:
        for outcome in load_many(item, format=format, subject_id=subject_id, tz=tz,
                                 options=options, progress=progress,
                                 file_timeout_s=file_timeout_s, sink=sink):
            if mapping is not None and Path(outcome.path).resolve() == mapping.path.resolve():
                continue  # the subjects mapping itself, not evidence
            if outcome.error is not None:
                sink.discard(outcome.path)
                if Path(outcome.path).name in ("subjects.yaml", "subjects.yml") and mapping is None:
                    report.warnings.append(f"{outcome.path} looks like a subjects mapping, not "
                                           "evidence: pass it with --subjects to use it")
                    report.errors.append((outcome.path, f"{outcome.path}: a subjects mapping, not "
                                          "evidence (pass it with --subjects to use it)"))
                    continue
                report.errors.append((outcome.path, outcome.error.one_line()))
                continue
            res, outcome.result = outcome.result, None  # one reference: released once stored
            assert res is not None
            if res.source_id in known:
                report.duplicates.append(outcome.path)
                rule, want = assigner.wanted(outcome.path)
                was = stored.subject(res.source_id)
                if want is not None and was is not None and str(was) != want:
                    moves[res.source_id] = (want, rule.device_id if rule else want)
                    assigner.declared[moves[res.source_id][1]] = (
                        mapping.declared_by if rule and mapping else "--subject")
                    report.reassigned.append((outcome.path, str(was), want))
                continue
            known.add(res.source_id)
            placed = assigner.place(res, outcome.path, report, streamed=sink.streamed(outcome.path))
            counts = sink.part_counts(outcome.path)
            placed = sink.with_part_rejects(outcome.path, placed)
            report.rejected_records += len(placed.rejects)
            _spill(case, placed, counts)
            new.add(placed)
            del placed, res
            report.added.append(outcome.path)
    _store(case, new, moves, assigner, report)
    return report


def _spill(case: Case, res: LoadResult, parts: Mapping[str, int]) -> None:
    """Stage a new source's fixes, events and places (those its loader did not give in
    parts already: ``parts`` of each table) as its next parts of the case now, so memory
    holds one file's rows at a time; its small tables go to :class:`_NewSources`."""
    for kind in PARTITIONED:
        df = getattr(res, kind)
        if len(df):
            case.append_part(kind, concat_tables([df], kind), part=parts[kind])


def _store(case: Case, new: _NewSources, moves: dict[str, tuple[str, str]], assigner: _Assigner,
           report: IngestReport) -> None:
    """Write the new rows, subjects, devices, quality report and manifest into the case.

    The new sources' parts are staged already (:func:`_spill`); the parts of sources in the
    case are rewritten only when they move to another subject. The manifest is written
    last: it commits the ingest."""
    old_subjects = set(case.table("subjects")["subject_id"].astype(str))
    old_devices_t = case.table("devices")
    old_devices = set(old_devices_t["device_id"].astype(str))
    tables: dict[str, pd.DataFrame] = {}
    tables["rejects"] = concat_tables([case.table("rejects"), *new.tables.get("rejects", [])], "rejects")
    # a loader's extra tables: those this ingest adds rows to, read and written again; the
    # others are left as they are, not read (a later statement added to a case holding a
    # tracker capture read its IO table whole: 1.8 GB for a 1e6-record capture), unless
    # sources move to another subject
    extra_names = sorted(new.extra_names |
                         ({n for n in case.table_names()
                           if n not in schema.CANONICAL and n not in DERIVED} if moves else set()))
    for name in extra_names:
        old = case.table(name) if case.has_table(name) else pd.DataFrame()
        tables[name] = _as_declared(concat_tables([old, *new.tables.get(name, [])], None), name)
    with_rejects = set(tables["rejects"]["source_id"].astype(str))
    path_of: dict[str, str] = {}  # of the sources with rejected records, for quality.csv
    if moves:  # the sources table whole, some of its rows moved
        src = _with_device(concat_tables([case.table("sources"), new.all_sources()], "sources"))
        tables["sources"] = src
        _reassign_sources(case, tables, moves)
        owners = _device_owners(tables["sources"])
        path_of = _paths_of(tables["sources"], with_rejects)
    else:  # written a few rows at a time: a fleet-year's sources are not held twice
        held: list[pd.DataFrame] = []
        case.write_table_batches("sources", _merged_sources(case, new, owners=held, paths=path_of,
                                                            with_rejects=with_rejects))
        owners = concat_tables(held, None)
    declared = {str(r.device_id): str(r.declared_by) for r in old_devices_t.itertuples()}
    declared.update(assigner.declared)
    rules = dict(assigner.rules)
    devices = build_devices(owners, rules, declared)
    keep = old_devices_t[~old_devices_t["device_id"].astype(str).isin(rules)].set_index("device_id")
    for col in ("kind", "label"):  # what an earlier mapping said of devices not re-mapped now
        devices[col] = devices[col].fillna(devices["device_id"].map(keep[col]) if len(keep) else pd.NA)
    tables["devices"] = devices
    tables["subjects"] = build_subjects(devices, rules)
    touched = new.extra_names | (set(extra_names) if moves else set())
    for name, df in tables.items():  # an extra table without new rows is left as it is
        if name in schema.CANONICAL or (name in touched and len(df)):
            case.write_table(name, df)
    for kind in PARTITIONED:
        report.rows[kind] = case.n_rows(kind)
    report.subjects_created = sorted(set(tables["subjects"]["subject_id"].astype(str)) - old_subjects)
    report.devices_created = sorted(set(devices["device_id"].astype(str)) - old_devices)
    n_file_errors = _write_quality(case, tables["rejects"], path_of, report.errors)
    q = case.manifest.setdefault("quality", {})
    q["rejected_records"] = len(tables["rejects"])
    q["file_errors"] = n_file_errors  # as listed in quality.csv (a file failing again is one)
    case.record_outputs()
    if moves:
        report.rederived = _rederive(case)
    # one device under two subjects needs two subjects: a case of one is not read back
    # (a 1e6-point GPX ingest peaked at 1.2 GiB instead of 0.7 reading its fixes again)
    if report.subjects_created and assigner.mapping is None and len(tables["subjects"]) > 1:
        report.warnings += _lookalike_warnings(case, _fixes_around(case, report.subjects_created),
                                               case.table("sources"), new_subjects=report.subjects_created)


def _with_device(src: pd.DataFrame) -> pd.DataFrame:
    """``src`` (rows of ``sources``) with each source's device: its own, else its subject's
    (one device per subject), else ``case`` (case material)."""
    return src.assign(device_id=src["device_id"].astype("string").fillna(
        src["subject_id"].astype("string")).fillna("case"))


def _device_owners(src: pd.DataFrame) -> pd.DataFrame:
    """Per device of ``src`` (rows of ``sources`` with their devices), its first subject
    (``case`` for none) and its number of sources (``n_sources``), in order of first row:
    what :func:`~routetrace.app.subjects.build_devices` needs, a row per device."""
    own = src.assign(subject_id=src["subject_id"].astype("string").fillna("case"))
    g = own.groupby(own["device_id"].astype(str), sort=False)
    first = g["subject_id"].first()
    return pd.DataFrame({"device_id": first.index.astype(str), "subject_id": first.to_numpy(),
                         "n_sources": g.size().reindex(first.index).to_numpy()})


def _paths_of(src: pd.DataFrame, source_ids: set[str]) -> dict[str, str]:
    hit = src[src["source_id"].astype(str).isin(source_ids)]
    return dict(zip(hit["source_id"].astype(str), hit["path"].astype(str), strict=True))


def _merged_sources(case: Case, new: _NewSources, *, owners: list[pd.DataFrame], paths: dict[str, str],
                    with_rejects: set[str]) -> Iterator[pd.DataFrame]:
    """The case's sources and the new ones in stored order (by path, then source id),
    a row group (:func:`~routetrace.case.group_rows`) at a time, each with its device
    (:func:`_with_device`): the runs (the stored table, the new sources' runs) are merged
    holding :data:`RUN_ROWS` rows of each. Appends each batch's device and subject columns
    to ``owners``, and the paths of the sources in ``with_rejects`` to ``paths``."""
    cols = [c.name for c in schema.columns("sources")]
    key = (cols.index("path"), cols.index("source_id"))

    def stored() -> Iterator[pd.DataFrame]:
        for f in case.table_files("sources"):
            for b in pq.ParquetFile(f).iter_batches(batch_size=RUN_ROWS):
                yield schema.coerce(pa.Table.from_batches([b]).to_pandas(), "sources")

    def rows(run: Iterator[pd.DataFrame]) -> Iterator[tuple[Any, ...]]:
        for df in run:
            yield from df.reindex(columns=cols).itertuples(index=False, name=None)

    merged = heapq.merge(*map(rows, [stored(), *new.sources_runs()]), key=lambda r: (r[key[0]], r[key[1]]))
    while batch := list(itertools.islice(merged, group_rows("sources"))):
        df = _with_device(schema.coerce(pd.DataFrame.from_records(batch, columns=cols), "sources"))
        owners.append(_device_owners(df))
        paths.update(_paths_of(df, with_rejects))
        yield df
    for run in new.runs:
        run.unlink()


def _as_declared(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """A loader's side table as stored: as the loader made it when it meets its declaration
    in :mod:`routetrace.schema` (Teltonika's dictionary-encoded columns stay so), else
    converted to the declared dtypes (a column of only missing values has none of its own);
    :class:`SchemaError` naming the column when it cannot be."""
    kind = schema.kind_of(name)
    if kind is None or not len(df):
        return df
    try:
        return schema.validate(df, kind)
    except SchemaError:
        return schema.coerce(df, kind)


def _reassign_sources(case: Case, tables: dict[str, pd.DataFrame], moves: dict[str, tuple[str, str]]) -> None:
    """:func:`_reassign` on the small tables and on the parts of the moved sources only
    (rewritten with their new subject); no other part is touched."""
    moved = {kind: case.source_rows(kind, sorted(moves)) for kind in PARTITIONED}
    both = {**tables, **moved}
    _reassign(both, moves)
    for kind in PARTITIONED:
        if len(both[kind]):
            case.write_parts(kind, both[kind])
    tables.update({k: both[k] for k in tables})


def _rederive(case: Case) -> list[str]:
    """Subjects changed: run again the stages already run (with their recorded parameters);
    drop the tables of stages that need inputs the case does not keep (car parks,
    corroboration), so nothing stale stays behind. Returns what was done, for a person."""
    from .analysis import run_chronology, run_copresence

    names = set(case.table_names())
    params = case.manifest.get("parameters", {})
    done = []
    if "stops" in names:
        p = params.get("stops", {})
        run_chronology(case.root, radius_m=float(p.get("radius_m", 100.0)),
                       min_dwell=pd.Timedelta(p.get("min_dwell", "5min")),
                       max_gap=pd.Timedelta(p.get("max_gap", "30min")),
                       max_h_acc_m=float(p.get("max_h_acc_m", 500.0)),
                       place_eps_m=float(p.get("place_eps_m", 150.0)))
        done.append("chronology re-run with its recorded parameters")
    if "meetings" in names:
        p = params.get("copresence", {})
        run_copresence(case.root, radius_m=float(p.get("radius_m", 100.0)),
                       max_dt=pd.Timedelta(p.get("max_dt", "10min")))
        done.append("co-presence re-run with its recorded parameters")
    stale = sorted(n for n in names if n.startswith(("carpark_", "corroboration")) or n in ("geofences", "statements"))
    case.reload()  # the stages above committed their own tables
    for n in stale:
        case.drop_table(n)
    if stale:
        case.record_outputs()
        done.append(f"removed {', '.join(stale)}: run carparks / corroborate again")
    return done


_ALL_TIME = (pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))


def _fixes_around(case: Case, subjects: Sequence[str]) -> pd.DataFrame:
    """The case's fixes within :data:`LOOKALIKE_MAX_DT` of the time span of ``subjects``'
    fixes: all that :func:`lookalike_subjects` compares them with. Only the parts whose
    footers may hold such fixes are read, not the whole table (a phone's GPX added to a case
    holding a 1e6-record tracker capture read all its fixes)."""
    files = case.select_files("fixes", subjects=subjects)
    if not files:
        return schema.empty("fixes")
    own = TimeSlice("fixes", tuple(files), *_ALL_TIME, reach_back=pd.Timedelta(0),
                    columns=("subject_id", "t_utc")).read()
    t = own.loc[own["subject_id"].astype(str).isin(set(subjects)), "t_utc"]
    if not len(t):
        return schema.empty("fixes")
    lo, hi = t.min() - LOOKALIKE_MAX_DT, t.max() + LOOKALIKE_MAX_DT + pd.Timedelta(1, "ns")
    return TimeSlice("fixes", tuple(case.select_files("fixes", t_from=lo, t_to=hi)), lo, hi,
                     reach_back=pd.Timedelta(0)).read()


def _lookalike_warnings(case: Case, fixes: pd.DataFrame, sources: pd.DataFrame, *,
                        new_subjects: Sequence[str]) -> list[str]:
    """Warnings for subjects this ingest created that look like one device with another
    (only their pairs are compared, within their time span: ``fixes`` need hold only that,
    :func:`_fixes_around`). The mapping it proposes lists every source of the two."""
    out = []
    path_of = dict(zip(sources["source_id"].astype(str), sources["path"].astype(str), strict=True))
    for r in lookalike_subjects(fixes, among=new_subjects).itertuples():
        pair = [r.subject_a, r.subject_b]
        ids = set(fixes.loc[fixes["subject_id"].astype(str).isin(pair), "source_id"].astype(str))
        ids |= set(sources.loc[sources["subject_id"].astype(str).isin(pair), "source_id"].astype(str))
        paths = [path_of[s] for s in sorted(ids) if s in path_of]
        keep = min((str(r.subject_a), str(r.subject_b)), key=lambda x: (" " in x, x))
        snippet = merge_lines(keep, paths, base=case.root.parent)
        out.append(f"subjects {r.subject_a} and {r.subject_b} look like ONE device: "
                   f"{r.n_coincident} of {r.n_fixes} fixes coincide within "
                   f"{LOOKALIKE_RADIUS_M:.0f} m and {fmt_duration(LOOKALIKE_MAX_DT)}. "
                   f"If they are, ingest again with --subjects FILE, FILE holding "
                   f"(paths relative to FILE's folder, here {case.root.parent}):\n{snippet}")
    return out


def _write_quality(case: Case, rejects: pd.DataFrame, path_of: Mapping[str, str],
                   new_errors: Sequence[tuple[str, str]]) -> int:
    """Rewrite quality.csv: record rejects (with the file path, ``path_of`` their source)
    and file-level errors. Returns the number of file-level errors it lists."""
    rej = pd.DataFrame({
        "level": "record",
        "path": rejects["source_id"].astype(str).map(path_of),
        "source_id": rejects["source_id"].astype(str),
        "record": rejects["record"].astype(str),
        "reason": rejects["reason"].astype(str),
    })
    qpath = case.root / QUALITY
    old_files = pd.DataFrame(columns=["level", "path", "source_id", "record", "reason"])
    if qpath.exists():
        prev = pd.read_csv(qpath, dtype=str, keep_default_na=False)
        old_files = prev[prev["level"] == "file"]
    # the rows read back are as written (formula-safe): new ones alike, so a repeat is one row
    files = pd.concat([old_files, formula_safe(pd.DataFrame({
        "level": "file", "path": [p for p, _ in new_errors], "source_id": "",
        "record": "", "reason": [e for _, e in new_errors]}))], ignore_index=True)
    files = files.drop_duplicates()
    out = pd.concat([files, rej], ignore_index=True)
    out = out.sort_values(["level", "path", "record"], kind="mergesort")
    write_csv(out, case.stage_output(QUALITY))
    return len(files)


