"""Find every location artifact in a Google Takeout export (zip, tar or folder).

Takeout folder names are localised (``Location History``, ``Standortverlauf``,
``Historial de ubicaciones``, ``ロケーション履歴``, ...) and change over the years, so nothing
here looks at names: every member is recognised by content, with the same sniffers that
:func:`routetrace.loaders.load` uses. :func:`discover` only reads the first 64 KiB of each
member straight from the archive (nothing is extracted, except a SQLite member, whose
sniffer needs the file); the files are then loaded with
:func:`routetrace.loaders.load_many`, which extracts the archive safely.

>>> from routetrace.loaders.takeout_discovery import discover
>>> found = discover("takeout-20250101T000000Z-001.zip")  # doctest: +SKIP
>>> found.loc[found["format"].notna(), ["member", "format"]]  # doctest: +SKIP
"""

from __future__ import annotations

import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pandas as pd

from ..errors import AmbiguousFormat, LoaderError, UnknownFormat
from ..evidence import _safe_name
from .base import REGISTRY, SNIFF_BYTES, LoaderSpec, detect_format

__all__ = ["discover", "summarise"]

_SQLITE = b"SQLite format 3\x00"


def _sniff_head(name: str, head: bytes) -> list[LoaderSpec]:
    hits = []
    for spec, _fn in REGISTRY.values():
        try:
            if spec.sniff(Path(PurePosixPath(name).name), head):
                hits.append(spec)
        except Exception:  # a sniffer that needs the real file (SQLite) says "no" here
            continue
    return hits


def _members(root: Path) -> Iterator[tuple[str, int, bytes | None, str | None]]:
    """(member name, size, head or None, refusal reason) for each regular member."""
    if zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                if _safe_name(info.filename) is None:
                    yield info.filename, info.file_size, None, "unsafe path (absolute or '..')"
                    continue
                with zf.open(info) as zfh:
                    yield info.filename, info.file_size, zfh.read(SNIFF_BYTES), None
    else:
        with tarfile.open(root) as tf:
            for m in sorted(tf.getmembers(), key=lambda m: m.name):
                if m.isdir():
                    continue
                if not m.isreg() or _safe_name(m.name) is None:
                    yield m.name, m.size, None, "unsafe member (link, device or '..' path)"
                    continue
                tfh = tf.extractfile(m)
                yield m.name, m.size, tfh.read(SNIFF_BYTES) if tfh else b"", None


def _classify(name: str, head: bytes, extract: Path | None = None) -> tuple[str | None, str]:
    if not head:
        return None, "empty file"
    if head.startswith(_SQLITE) and extract is not None:
        try:
            return detect_format(extract).name, "recognised"
        except AmbiguousFormat as exc:
            return None, f"ambiguous: {exc}"
        except LoaderError:
            return None, "not a location artifact routetrace reads"
    hits = _sniff_head(name, head)
    if len(hits) == 1:
        return hits[0].name, "recognised"
    if len(hits) > 1:
        return None, "ambiguous: " + ", ".join(sorted(s.name for s in hits))
    return None, "not a location artifact routetrace reads"


def discover(path: str | Path) -> pd.DataFrame:
    """List what a Takeout export (zip/tar/folder) holds, member by member.

    Members are recognised by content (the loaders' sniffers on their first 64 KiB),
    never by their localised folder names; nothing is loaded.

    Parameters
    ----------
    path
        The export: a zip, a tar or an extracted folder (only read).

    Returns
    -------
    pandas.DataFrame
        One row per file: ``member`` (path inside the export), ``size_bytes``, ``format``
        (the loader that will read it, NA when none), ``description`` (what that format
        is) and ``status`` (``recognised``, ``not a location artifact ...``, ``ambiguous:
        ...``, ``refused: ...``), sorted by member.

    Raises
    ------
    LoaderError
        When ``path`` does not exist or is neither a folder nor an archive.

    Example
    -------
    >>> import json, tempfile, zipfile
    >>> month = {"timelineObjects": [{"placeVisit": {
    ...     "location": {"latitudeE7": 510000000, "longitudeE7": 38700000},
    ...     "duration": {"startTimestamp": "2025-10-26T21:00:00Z",
    ...                  "endTimestamp": "2025-10-26T21:10:00Z"}}}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     z = Path(tmp) / "takeout.zip"
    ...     with zipfile.ZipFile(z, "w") as zf:
    ...         zf.writestr("Takeout/Standortverlauf/2025/2025_OCTOBER.json", json.dumps(month))
    ...         zf.writestr("Takeout/archive_browser.html", "<html></html>")
    ...     found = discover(z)
    >>> found[["format", "status"]]
                        format                                   status
    0  google-takeout-semantic                               recognised
    1                     <NA>  not a location artifact routetrace reads
    >>> found["member"].iloc[0]
    'Takeout/Standortverlauf/2025/2025_OCTOBER.json'
    """
    root = Path(path)
    rows = []
    if not root.exists():
        raise LoaderError("no such file or folder", path=str(path))
    if root.is_dir():
        for f in sorted(q for q in root.rglob("*") if q.is_file() and not q.is_symlink()):
            with open(f, "rb") as fh:
                head = fh.read(SNIFF_BYTES)
            fmt, status = _classify(f.name, head, f)
            rows.append((f.relative_to(root).as_posix(), f.stat().st_size, fmt, status))
    elif zipfile.is_zipfile(root) or tarfile.is_tarfile(root):
        with tempfile.TemporaryDirectory(prefix="routetrace-discover-") as tmp:
            for name, size, mhead, refused in _members(root):
                if refused is not None or mhead is None:
                    rows.append((name, size, None, f"refused: {refused}"))
                    continue
                extracted = None
                if mhead.startswith(_SQLITE):
                    extracted = Path(tmp) / f"m{len(rows)}.sqlite"
                    _extract_one(root, name, extracted)
                fmt, status = _classify(name, mhead, extracted)
                rows.append((name, size, fmt, status))
    else:
        raise UnknownFormat("not a folder, zip or tar archive: discover() lists exports",
                            path=str(path))
    df = pd.DataFrame(rows, columns=["member", "size_bytes", "format", "status"])
    df["format"] = df["format"].astype("string")
    df["description"] = df["format"].map(
        lambda f: REGISTRY[f][0].description if isinstance(f, str) else None).astype("string")
    return df[["member", "size_bytes", "format", "description", "status"]]


def _extract_one(archive: Path, name: str, dest: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf, zf.open(name) as fin, open(dest, "wb") as fout:
            while chunk := fin.read(1 << 20):
                fout.write(chunk)
    else:
        with tarfile.open(archive) as tf:
            fh = tf.extractfile(name)
            with open(dest, "wb") as fout:
                while fh is not None and (chunk := fh.read(1 << 20)):
                    fout.write(chunk)


def summarise(found: pd.DataFrame) -> str:
    """A few lines for a person: how many files of each format, and what was not read.

    Parameters
    ----------
    found
        The table :func:`discover` returns.

    Returns
    -------
    str
        One line per format (count, name, description), then one line counting the files
        not read, with their reasons.

    Example
    -------
    >>> found = pd.DataFrame({
    ...     "member": ["a/2025_OCTOBER.json", "a/b.json", "a/c.html"],
    ...     "format": ["google-takeout-semantic", None, None],
    ...     "status": ["recognised", "ambiguous: csv, portal",
    ...                "not a location artifact routetrace reads"]})
    >>> print(summarise(found))
        1  google-takeout-semantic: Google Takeout Semantic Location History month (visits,
        trips, raw path)
        2  other files not read as location evidence (ambiguous: csv, portal, not a location
        artifact routetrace reads)
    """
    lines = []
    rec = found[found["format"].notna()]
    for fmt, grp in rec.groupby("format", sort=True):
        lines.append(f"{len(grp):5d}  {fmt}: {REGISTRY[str(fmt)][0].description}")
    other = found[found["format"].isna()]
    if len(other):
        lines.append(f"{len(other):5d}  other files not read as location evidence "
                     f"({', '.join(sorted(set(other['status'].astype(str))))})")
    return "\n".join(lines)
