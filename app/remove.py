"""Remove sources from a case: exactly their rows and files, and the analyses re-derived.

A source added by mistake (the wrong phone, a file of another case) is taken out with
:func:`remove_sources`: its parts of the partitioned tables go (the parts of every other
source stay byte-identical), its rows of ``sources``, ``rejects``, the loaders' side tables
and ``quality.csv`` go, devices and subjects left without a source go, and the analyses
already run are re-derived as after a re-assignment (chronology and co-presence run again
with their recorded parameters; car-park and corroboration tables, which need inputs the
case does not keep, are removed with a note). The evidence files are never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..case import Case, lock_case, open_case
from ..errors import CaseError
from .ingest import DERIVED, _paths_of, _rederive, _write_quality

__all__ = ["RemovalReport", "remove_sources"]

#: the shortest source-id prefix accepted (16 hex digits name a source in the store)
MIN_PREFIX = 8


@dataclass
class RemovalReport:
    """What :func:`remove_sources` did."""

    removed: list[dict[str, str]] = field(default_factory=list)
    subjects_removed: list[str] = field(default_factory=list)
    devices_removed: list[str] = field(default_factory=list)
    rederived: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (the CLI's ``--json`` object)."""
        return {"removed": self.removed, "subjects_removed": self.subjects_removed,
                "devices_removed": self.devices_removed, "rederived": self.rederived,
                "rows": self.rows}


def _resolve(sources: pd.DataFrame, wanted: str) -> list[str]:
    """The source ids that ``wanted`` names: one source by a source-id prefix of at least
    :data:`MIN_PREFIX` characters, by the path recorded at ingest or by its file name; or
    every source read from inside an archive, by the archive's path."""
    ids = sources["source_id"].astype(str)
    paths = sources["path"].astype(str)
    members = sorted(set(ids[paths.str.startswith(wanted + "!")]))
    if members:
        return members
    hit = (paths == wanted) | (paths.map(lambda p: Path(p.split("!")[-1]).name) == wanted)
    if len(wanted) >= MIN_PREFIX:
        hit |= ids.str.startswith(wanted.lower())
    found = sorted(set(ids[hit]))
    if not found:
        raise CaseError(f"no source of the case is {wanted!r}",
                        hint=f"name a source by its path, its file name or the first {MIN_PREFIX}+ "
                             "characters of its id (`routetrace subjects CASE` lists them)")
    if len(found) > 1:
        listed = "; ".join(f"{s[:16]} {paths[ids == s].iloc[0]}" for s in found[:5])
        raise CaseError(f"{wanted!r} names {len(found)} sources ({listed}); name one",
                        hint="use a longer id prefix or the full path")
    return found


def remove_sources(root: str | Path, sources: Sequence[str]) -> RemovalReport:
    """Remove ``sources`` from the case at ``root`` and re-derive what was derived from them.

    Parameters
    ----------
    root
        The case folder.
    sources
        Each a source-id prefix (at least 8 characters), the path recorded at ingest, or
        that path's file name, each naming exactly one source; or the path of an archive
        ingested, naming every source read from it. All are resolved before anything changes.

    Returns
    -------
    RemovalReport
        The removed sources (id, path), the subjects and devices left without a source
        (removed too), what was re-derived, and the row counts now.

    Raises
    ------
    CaseError
        ``root`` is not a case, or a name matches no source or several (nothing is changed).

    Example
    -------
    >>> import tempfile
    >>> from routetrace.app.ingest import ingest
    >>> from routetrace.testing import example_gpx
    >>> with tempfile.TemporaryDirectory() as d:
    ...     a = example_gpx(Path(d) / "a.gpx", [50.0 + i / 1e4 for i in range(5)])
    ...     b = example_gpx(Path(d) / "b.gpx", [51.0 + i / 1e4 for i in range(7)])
    ...     _ = ingest(Path(d) / "case", [a], subject_id="phone-A")
    ...     _ = ingest(Path(d) / "case", [b], subject_id="phone-B")
    ...     rep = remove_sources(Path(d) / "case", ["b.gpx"])
    ...     print(rep.subjects_removed, rep.rows["fixes"])
    ['phone-B'] 5
    """
    with lock_case(root):
        case = open_case(root)
        table = case.table("sources")
        ids = list(dict.fromkeys(s for w in sources for s in _resolve(table, str(w))))
        report = RemovalReport(removed=[
            {"source_id": s, "path": str(table.loc[table["source_id"].astype(str) == s, "path"].iloc[0])}
            for s in ids])
        with case.transaction():
            _remove(case, ids, report)
        return report


def _remove(case: Case, ids: list[str], report: RemovalReport) -> None:
    """The removal, the lock held: store, small tables, quality report, manifest, re-derive."""
    gone = set(ids)
    for sid in ids:
        case.remove_source(sid)
    for name in case.table_names():  # the loaders' side tables (Wi-Fi scans, ...)
        if name in schema.CANONICAL or name in DERIVED:
            continue
        t = case.table(name)
        if "source_id" in t.columns:
            case.write_table(name, t[~t["source_id"].astype(str).isin(gone)].reset_index(drop=True))
    sources = case.table("sources")
    devices = case.table("devices")
    left = sources["device_id"].astype(str).value_counts()
    keep = devices["device_id"].astype(str).isin(left.index)
    report.devices_removed = sorted(devices.loc[~keep, "device_id"].astype(str))
    devices = devices[keep].reset_index(drop=True)
    devices["n_sources"] = devices["device_id"].astype(str).map(left).astype(devices["n_sources"].dtype)
    subjects = case.table("subjects")
    has = subjects["subject_id"].astype(str).isin(set(devices["subject_id"].astype(str)))
    report.subjects_removed = sorted(subjects.loc[~has, "subject_id"].astype(str))
    case.write_table("devices", devices)
    case.write_table("subjects", subjects[has].reset_index(drop=True))
    rejects = case.table("rejects")
    _write_quality(case, rejects, _paths_of(sources, set(rejects["source_id"].astype(str))), [])
    case.manifest.setdefault("quality", {})["rejected_records"] = len(rejects)
    case.record_outputs()
    report.rederived = _rederive(case)
    case.reload()
    report.rows = {kind: case.n_rows(kind) for kind in ("fixes", "events", "places")}
