"""Ingest: load evidence files, folders and archives into a case.

The case store (:mod:`routetrace.case`) only stores; this job reads evidence with the
loaders and adds what they produced to the store. Ingesting is idempotent: a file whose
SHA-256 is already in the case adds nothing. A bad file becomes a quality-report entry and
never stops the rest of the ingest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..case import QUALITY, TABLE_KINDS, Case, concat_tables, open_case, sort_table
from ..loaders import LoadResult, load_many

__all__ = ["IngestReport", "ingest"]


@dataclass
class IngestReport:
    """What one ingest did: files added, skipped as already present, and failures."""

    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    rejected_records: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary (for ``--json``)."""
        return {"added": self.added, "duplicates": self.duplicates,
                "errors": [{"path": p, "error": e} for p, e in self.errors],
                "rows": self.rows, "rejected_records": self.rejected_records}


def ingest(
    root: str | Path,
    inputs: Iterable[str | Path],
    *,
    subject_id: str | None = None,
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
    (same SHA-256) are skipped; failures are reported, never fatal for the other files:
    neither running out of memory on one file nor taking longer than ``file_timeout_s``
    seconds on it (then that file is an error). ``quality.file_errors`` in case.json is
    the number of file-level rows in quality.csv (each file error once, however often the
    same input is ingested again).

    Example
    -------
    >>> rep = ingest("case-42", ["phone.gpx"], subject_id="phone-A")  # doctest: +SKIP
    >>> rep.added  # doctest: +SKIP
    ['phone.gpx']
    """
    case = open_case(root, create=True, case_id=case_id)
    report = IngestReport()
    existing = case.table("sources")
    known = set(existing["source_id"].astype(str))
    new: list[LoadResult] = []
    for item in inputs:
        for outcome in load_many(item, format=format, subject_id=subject_id, tz=tz,
                                 options=options, progress=progress,
                                 file_timeout_s=file_timeout_s):
            if outcome.error is not None:
                report.errors.append((outcome.path, outcome.error.one_line()))
                continue
            res = outcome.result
            assert res is not None
            if res.source_id in known:
                report.duplicates.append(outcome.path)
                continue
            known.add(res.source_id)
            new.append(res)
            report.added.append(outcome.path)
            report.rejected_records += len(res.rejects)

    tables: dict[str, pd.DataFrame] = {}
    for kind in TABLE_KINDS:
        frames = [case.table(kind)] + [
            (r.source if kind == "sources" else getattr(r, kind)) for r in new]
        tables[kind] = concat_tables(frames, kind)
    extra_names = sorted({n for r in new for n in r.extra_tables} |
                         {n for n in case.table_names() if n not in schema.TABLES})
    for name in extra_names:
        old = case.table(name) if case.table_path(name).exists() else pd.DataFrame()
        tables[name] = concat_tables([old] + [r.extra_tables[name] for r in new if name in r.extra_tables],
                               None)
    for name, df in tables.items():
        if name in schema.TABLES or len(df):
            case.write_table(name, df)
    for kind in ("fixes", "events", "places"):
        report.rows[kind] = len(tables[kind])

    n_file_rows = _write_quality(case, tables["rejects"], tables["sources"], report.errors)
    src = tables["sources"]
    case.manifest["sources"] = json.loads(sort_table(src, "sources").to_json(orient="records"))
    q = case.manifest.setdefault("quality", {})
    q["rejected_records"] = len(tables["rejects"])
    q["file_errors"] = n_file_rows
    case.record_outputs()
    return report


def _write_quality(case: Case, rejects: pd.DataFrame, sources: pd.DataFrame,
                   new_errors: Sequence[tuple[str, str]]) -> int:
    """Rewrite quality.csv: record rejects (with the file path) and file-level errors;
    return the number of file-level rows."""
    path_of = dict(zip(sources["source_id"].astype(str), sources["path"].astype(str), strict=True))
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
    files = pd.concat([old_files, pd.DataFrame({
        "level": "file", "path": [p for p, _ in new_errors], "source_id": "",
        "record": "", "reason": [e for _, e in new_errors]})], ignore_index=True)
    files = files.drop_duplicates()
    out = pd.concat([files, rej], ignore_index=True)
    out = out.sort_values(["level", "path", "record"], kind="mergesort")
    out.to_csv(qpath, index=False, lineterminator="\n")
    return len(files)


