"""Find the known iOS location artifacts in a full-file-system extraction (folder, zip, tar).

Acquisition tools root an extraction differently (``private/var/...``, ``var/...``,
``filesystem1/private/var/...``, ``Dump/...``), so artifacts are matched by the TAIL of their
iOS path (:data:`ARTIFACTS`), wherever it starts. Each found file is loaded with the
registered loader its content sniffs as (content decides, the path only names the row), and
reported as:

``loaded``      the loader read records (``records_read`` > 0)
``empty``       the loader read it and it holds no location records (a reported fact)
``unreadable``  the loader (or sniffing) failed; ``detail`` says why
``no loader``   a known artifact routetrace does not read (e.g. ``cache_encryptedB.db``)
``not found``   the artifact is absent from the extraction (one row per missing artifact)

Archives are extracted once into a private temporary folder with the limits of
:func:`routetrace.evidence.extract_archive`; nothing is written beside the evidence.
``load_many`` stays generic (content sniffing); this module adds the iOS view for
``routetrace ingest`` and the case report.

>>> from routetrace.loaders.ios_discovery import discover
>>> report = discover("extraction.zip")  # doctest: +SKIP
>>> report[["artifact", "member", "status", "records_read"]]  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import LoaderError, RoutetraceError, UnknownFormat
from ..evidence import SQLITE_COMPANIONS, extract_archive, is_archive
from .base import LoadResult, load

__all__ = ["ARTIFACTS", "IosDiscovery", "discover", "discover_and_load"]

#: artifact name -> (iOS path tail, expected loader or None when routetrace has none).
ARTIFACTS: dict[str, tuple[str, str | None]] = {
    "routined Cache.sqlite": ("Library/Caches/com.apple.routined/Cache.sqlite", "ios-routined"),
    "routined Local.sqlite": ("Library/Caches/com.apple.routined/Local.sqlite", "ios-routined"),
    "routined Cloud-V2.sqlite": ("Library/Caches/com.apple.routined/Cloud-V2.sqlite", "ios-routined"),
    "Photos.sqlite": ("Media/PhotoData/Photos.sqlite", "ios-photos"),
    "consolidated.db": ("Library/Caches/locationd/consolidated.db", "ios-consolidated"),
    "cache_encryptedB.db": ("Library/Caches/locationd/cache_encryptedB.db", None),
    "knowledgeC.db": ("Library/CoreDuet/Knowledge/knowledgeC.db", "ios-knowledgec"),
}
#: photos: any image under a ``DCIM`` folder of the media partition.
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".heic", ".heif")
_COLUMNS = ["artifact", "ios_path", "member", "format", "status", "records_read", "n_fixes",
            "n_events", "n_places", "n_rejects", "detail"]


@dataclass
class IosDiscovery:
    """What :func:`discover_and_load` found: the report table and the results by member."""

    report: pd.DataFrame
    results: dict[str, LoadResult] = field(default_factory=dict)


def _match(rel: str) -> str | None:
    for name, (tail, _fmt) in ARTIFACTS.items():
        if rel == tail or rel.endswith("/" + tail):
            return name
    parts = rel.split("/")
    if "DCIM" in parts[:-1] and rel.lower().endswith(PHOTO_SUFFIXES):
        return "DCIM photo"
    return None


def _scan(root: Path, shown: str, opts: Mapping[str, Any]) -> IosDiscovery:
    rows: list[dict[str, Any]] = []
    results: dict[str, LoadResult] = {}
    seen: set[str] = set()
    files = sorted(q for q in root.rglob("*") if q.is_file() and not q.is_symlink())
    for f in files:
        rel = f.relative_to(root).as_posix()
        if rel.endswith(SQLITE_COMPANIONS):
            continue
        art = _match(rel)
        if art is None:
            continue
        seen.add(art)
        tail, expected = ARTIFACTS.get(art, ("DCIM/**", "exif"))
        row: dict[str, Any] = {"artifact": art, "ios_path": tail, "member": rel}
        if expected is None:
            row.update(status="no loader", detail="known location artifact routetrace does not read")
            rows.append(row)
            continue
        display = f"{shown}!{rel}" if shown else rel
        try:
            res = load(f, subject_id=opts.get("subject_id"), tz=opts.get("tz"))
            res.source["path"] = display
            res.source["member"] = rel
        except RoutetraceError as exc:
            kind = "empty" if isinstance(exc, UnknownFormat) and f.stat().st_size == 0 else "unreadable"
            row.update(status=kind, detail=f"{type(exc).__name__}: {exc}")
            rows.append(row)
            continue
        results[rel] = res
        fmt = res.source["format"].iloc[0]
        row.update(format=fmt, records_read=res.records_read, n_fixes=len(res.fixes),
                   n_events=len(res.events), n_places=len(res.places), n_rejects=len(res.rejects),
                   status="loaded" if res.records_read > 0 else "empty",
                   detail=None if fmt == expected else f"content sniffs as {fmt}, not {expected}")
        rows.append(row)
    for name, (tail, _fmt) in ARTIFACTS.items():
        if name not in seen:
            rows.append({"artifact": name, "ios_path": tail, "status": "not found"})
    if "DCIM photo" not in seen:
        rows.append({"artifact": "DCIM photo", "ios_path": "DCIM/**", "status": "not found"})
    df = pd.DataFrame(rows, columns=_COLUMNS)
    for c in ("records_read", "n_fixes", "n_events", "n_places", "n_rejects"):
        df[c] = df[c].astype("Int64")
    for c in ("artifact", "ios_path", "member", "format", "status", "detail"):
        df[c] = df[c].astype("string")
    return IosDiscovery(df, results)


def discover_and_load(path: str | Path, *, subject_id: str | None = None,
                      tz: str | None = None) -> IosDiscovery:
    """Find and load the known iOS artifacts of an extraction (folder, zip or tar).

    Parameters
    ----------
    path
        The extraction: a folder, or a zip/tar archive (extracted privately, with limits).
    subject_id, tz
        Passed to every loader (``tz`` only matters for photos without offset or GPS time).

    Returns
    -------
    IosDiscovery
        ``report`` (one row per found file and per missing artifact; columns
        ``artifact, ios_path, member, format, status, records_read, n_fixes, n_events,
        n_places, n_rejects, detail``) and ``results`` (member -> LoadResult).

    Raises
    ------
    LoaderError
        When ``path`` does not exist or is neither a folder nor an archive.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import example_consolidated
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = Path(tmp) / "private/var/root/Library/Caches/locationd/consolidated.db"
    ...     db.parent.mkdir(parents=True)
    ...     _ = example_consolidated(db, n_fixes=3)
    ...     found = discover_and_load(tmp, subject_id="phone-A")
    >>> found.report[["artifact", "status", "records_read"]].head(3)
                    artifact     status  records_read
    0        consolidated.db     loaded             3
    1  routined Cache.sqlite  not found          <NA>
    2  routined Local.sqlite  not found          <NA>
    >>> res = found.results["private/var/root/Library/Caches/locationd/consolidated.db"]
    >>> len(res.fixes), res.fixes["subject_id"].iloc[0]
    (3, 'phone-A')
    """
    root = Path(path)
    opts = {"subject_id": subject_id, "tz": tz}
    if not root.exists():
        raise LoaderError("no such file or folder", path=str(path))
    if root.is_dir():
        return _scan(root, "", opts)
    if not is_archive(root):
        raise UnknownFormat("not a folder, zip or tar archive: discover() reads extractions",
                            path=str(path))
    with tempfile.TemporaryDirectory(prefix="routetrace-ios-") as tmp:
        rep = extract_archive(root, tmp)
        out = _scan(Path(tmp), str(path), opts)
        if rep.refused:
            extra = pd.DataFrame([{"artifact": "refused member", "member": n, "status": "unreadable",
                                   "detail": why} for n, why in rep.refused], columns=_COLUMNS)
            out.report = pd.concat([out.report, extra.astype(out.report.dtypes.to_dict())],
                                   ignore_index=True)
        return out


def discover(path: str | Path, *, subject_id: str | None = None, tz: str | None = None) -> pd.DataFrame:
    """The report table of :func:`discover_and_load` (which artifacts were found, loaded,
    empty, unreadable or absent).

    Parameters
    ----------
    path
        The extraction: a folder, or a zip/tar archive (extracted privately, with limits).
    subject_id, tz
        Passed to every loader, as for :func:`discover_and_load`.

    Returns
    -------
    pandas.DataFrame
        One row per found file and per missing artifact: ``artifact, ios_path, member,
        format, status, records_read, n_fixes, n_events, n_places, n_rejects, detail``.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import example_consolidated
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     db = Path(tmp) / "var/root/Library/Caches/locationd/consolidated.db"
    ...     db.parent.mkdir(parents=True)
    ...     _ = example_consolidated(db, n_fixes=3)
    ...     report = discover(tmp)
    >>> report.loc[report["status"] != "not found", ["artifact", "member", "n_fixes"]]
              artifact                                             member  n_fixes
    0  consolidated.db  var/root/Library/Caches/locationd/consolidated.db        3
    >>> int((report["status"] == "not found").sum())
    7
    """
    return discover_and_load(path, subject_id=subject_id, tz=tz).report
