"""The case store: a folder holding a case's tables, its manifest and its quality report.

Layout::

    CASE/
      case.json         manifest: case id, tool version, creation time, sources with their
                        SHA-256 and counts, parameters used by later stages, outputs
      tables/*.parquet  the canonical tables (fixes, events, places as GeoParquet with WGS84
                        point geometry; sources, rejects as Parquet; extra tables by name)
      quality.csv       every rejected record and every file that could not be read, with
                        its reason: nothing is lost silently

Ingesting is idempotent: a file whose SHA-256 is already in the case adds nothing. A bad
file becomes a quality-report entry and never stops the rest of the ingest. Times written
into the manifest honour ``SOURCE_DATE_EPOCH``, and tables are written sorted, so the same
inputs give byte-identical case files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from . import __version__, schema
from .errors import CaseError, ExportError, RoutetraceError
from .evidence import sha256_file
from .loaders import LoadResult, load_many

__all__ = [
    "Case",
    "IngestReport",
    "SORT_KEYS",
    "export_case",
    "generation_time",
    "ingest",
    "open_case",
]

MANIFEST = "case.json"
QUALITY = "quality.csv"
TABLE_KINDS = ("fixes", "events", "places", "sources", "rejects")
GEO_KINDS = ("fixes", "events", "places")
SORT_KEYS: dict[str, list[str]] = {
    "fixes": ["subject_id", "t_utc", "source_id", "record"],
    "events": ["subject_id", "t_utc", "source_id", "record", "kind"],
    "places": ["source_id", "record"],
    "sources": ["path", "source_id"],
    "rejects": ["source_id", "record"],
}


def generation_time() -> str:
    """The generation stamp: ``SOURCE_DATE_EPOCH`` if set (reproducible builds), else now (UTC)."""
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde is not None:
        try:
            ts = pd.Timestamp(int(sde), unit="s", tz="UTC")
        except ValueError as exc:
            raise CaseError(f"SOURCE_DATE_EPOCH={sde!r} is not a whole number of seconds") from exc
    else:
        ts = pd.Timestamp.now(tz="UTC").floor("s")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sort(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    keys = [k for k in SORT_KEYS.get(kind, []) if k in df.columns]
    if not keys or df.empty:
        return df.reset_index(drop=True)
    return df.sort_values(keys, kind="mergesort", na_position="last").reset_index(drop=True)


def _write_table(df: pd.DataFrame, path: Path, *, geo: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = df.reset_index(drop=True)
    out.attrs = {}  # parameters live in case.json; attrs may hold tables (not JSON)
    if geo:
        lat = out["lat"].to_numpy(dtype=float)
        lon = out["lon"].to_numpy(dtype=float)
        geom = shapely.points(lon, lat)
        geom[pd.isna(lat) | pd.isna(lon)] = None
        gdf = gpd.GeoDataFrame(out, geometry=geom, crs="EPSG:4326")
        gdf.to_parquet(path, index=False, compression="zstd", write_covering_bbox=False)
    else:
        out.to_parquet(path, index=False, compression="zstd")


def _read_table(path: Path, kind: str | None) -> pd.DataFrame:
    df = pd.read_parquet(path)
    if "geometry" in df.columns:
        df = df.drop(columns="geometry")
    df = pd.DataFrame(df)
    if kind in schema.TABLES:
        df = schema.coerce(df, kind)
    return df


@dataclass
class Case:
    """An opened case folder. Tables are read lazily from Parquet and cached."""

    root: Path
    manifest: dict[str, Any]
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def case_id(self) -> str:
        """The case identifier (given at creation, default: the folder name)."""
        return str(self.manifest["case_id"])

    def table_path(self, name: str) -> Path:
        """Where table ``name`` is stored."""
        return self.root / "tables" / f"{name}.parquet"

    def table(self, name: str) -> pd.DataFrame:
        """Return table ``name`` (a canonical kind or an extra table); empty if absent."""
        if name not in self._cache:
            p = self.table_path(name)
            if p.exists():
                self._cache[name] = _read_table(p, name)
            elif name in schema.TABLES:
                self._cache[name] = schema.empty(name)
            else:
                raise CaseError(f"case has no table {name!r}", path=str(self.root))
        return self._cache[name]

    def table_names(self) -> list[str]:
        """Names of the tables stored in the case."""
        return sorted(p.stem for p in (self.root / "tables").glob("*.parquet"))

    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        """Store ``df`` as table ``name`` (validated when it is a canonical kind), sorted."""
        if name in schema.TABLES:
            schema.validate(df, name)
        df = _sort(df, name)
        p = self.table_path(name)
        _write_table(df, p, geo=name in GEO_KINDS or {"lat", "lon"} <= set(df.columns))
        self._cache[name] = df
        if "outputs" in self.manifest:
            self.manifest["outputs"][p.relative_to(self.root).as_posix()] = sha256_file(p)
        return p

    def set_parameters(self, stage: str, params: Mapping[str, Any]) -> None:
        """Record the parameters a stage used (shown on exhibits) and save the manifest."""
        self.manifest.setdefault("parameters", {})[stage] = {
            k: (str(v) if isinstance(v, pd.Timedelta) else v) for k, v in sorted(params.items())}
        self.save_manifest()

    def record_outputs(self) -> None:
        """Record the SHA-256 of every table and of the quality report, then save the manifest.

        ``routetrace verify`` recomputes them.
        """
        files = [*sorted(self.root.glob("tables/*.parquet")), self.root / QUALITY,
                 *sorted(self.root.glob("figures/*"))]
        self.manifest["outputs"] = {p.relative_to(self.root).as_posix(): sha256_file(p)
                                    for p in files if p.is_file()}
        self.save_manifest()

    def save_manifest(self) -> None:
        """Write case.json (sorted keys, stable formatting)."""
        (self.root / MANIFEST).write_text(
            json.dumps(self.manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def open_case(root: str | Path, *, create: bool = False, case_id: str | None = None) -> Case:
    """Open the case folder ``root`` (creating it when ``create``).

    Raises
    ------
    CaseError
        When the folder is not a case (no case.json) and ``create`` is false, or when the
        manifest is damaged.
    """
    r = Path(root)
    mpath = r / MANIFEST
    if mpath.exists():
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CaseError(f"damaged manifest: {exc}", path=str(mpath)) from exc
        return Case(r, manifest)
    if not create:
        raise CaseError("not a case folder (no case.json); create one with `routetrace ingest`",
                        path=str(r))
    if r.exists() and any(r.iterdir()):
        raise CaseError("folder exists, is not empty and is not a case; choose a new folder",
                        path=str(r))
    r.mkdir(parents=True, exist_ok=True)
    manifest = {
        "case_id": case_id or r.name,
        "created": generation_time(),
        "tool": {"name": "routetrace", "version": __version__},
        "time_convention": "all times stored in UTC; exhibits show local time of the place "
                           "with its UTC offset",
        "sources": [],
        "parameters": {},
        "quality": {"file_errors": 0, "rejected_records": 0},
    }
    case = Case(r, manifest)
    case.save_manifest()
    return case


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


def _concat(frames: Sequence[pd.DataFrame], kind: str | None) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return schema.empty(kind) if kind in schema.TABLES else pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return schema.coerce(out, kind) if kind in schema.TABLES else out


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
) -> IngestReport:
    """Add evidence files, folders or archives to the case at ``root`` (created if new).

    Each file is loaded with :func:`routetrace.loaders.load_many`; the case's tables,
    manifest and quality report are rewritten once at the end. Files already in the case
    (same SHA-256) are skipped; failures are reported, never fatal for the other files.

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
                                 options=options, progress=progress):
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
        tables[kind] = _concat(frames, kind)
    extra_names = sorted({n for r in new for n in r.extra_tables} |
                         {n for n in case.table_names() if n not in schema.TABLES})
    for name in extra_names:
        old = case.table(name) if case.table_path(name).exists() else pd.DataFrame()
        tables[name] = _concat([old] + [r.extra_tables[name] for r in new if name in r.extra_tables],
                               None)
    for name, df in tables.items():
        if name in schema.TABLES or len(df):
            case.write_table(name, df)
    for kind in ("fixes", "events", "places"):
        report.rows[kind] = len(tables[kind])

    _write_quality(case, tables["rejects"], tables["sources"], report.errors)
    src = tables["sources"]
    case.manifest["sources"] = json.loads(_sort(src, "sources").to_json(orient="records"))
    q = case.manifest.setdefault("quality", {})
    q["rejected_records"] = len(tables["rejects"])
    q["file_errors"] = int(q.get("file_errors", 0)) + len(report.errors)
    case.record_outputs()
    return report


def _write_quality(case: Case, rejects: pd.DataFrame, sources: pd.DataFrame,
                   new_errors: Sequence[tuple[str, str]]) -> None:
    """Rewrite quality.csv: record rejects (with the file path) and file-level errors."""
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


def export_case(root: str | Path, *, to: str, out: str | Path) -> list[Path]:
    """Export the case's tables to ``out`` as ``csv`` (one file per table), ``geojson``
    (fixes, events, places) or ``gpkg`` (one GeoPackage, a layer per table).

    Raises
    ------
    ExportError
        For an unknown target or an output that cannot be written.
    """
    case = open_case(root)
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    names = [n for n in case.table_names()]
    try:
        if to == "csv":
            for name in names:
                p = dest / f"{name}.csv"
                _formula_safe(case.table(name)).to_csv(
                    p, index=False, lineterminator="\n", date_format="%Y-%m-%dT%H:%M:%S.%fZ")
                written.append(p)
        elif to in ("geojson", "gpkg"):
            os.environ.setdefault("OGR_CURRENT_DATE", generation_time())
            for name in names:
                df = case.table(name)
                if not {"lat", "lon"} <= set(df.columns):
                    if to == "geojson":
                        continue
                    gdf = gpd.GeoDataFrame(_stringify(df))
                else:
                    df = df[df["lat"].notna() & df["lon"].notna()]
                    gdf = gpd.GeoDataFrame(_stringify(df), geometry=shapely.points(
                        df["lon"].to_numpy(float), df["lat"].to_numpy(float)), crs="EPSG:4326")
                if to == "geojson":
                    p = dest / f"{name}.geojson"
                    p.write_text(gdf.to_json(drop_id=True, sort_keys=True) + "\n", encoding="utf-8")
                else:
                    p = dest / f"{case.case_id}.gpkg"
                    gdf.to_file(p, layer=name, driver="GPKG")
                if p not in written:
                    written.append(p)
        else:
            raise ExportError(f"unknown export target {to!r}; use csv, geojson or gpkg "
                              "(KML, GPX and exhibits: `routetrace exhibit`)")
    except RoutetraceError:
        raise
    except OSError as exc:
        raise ExportError(f"cannot write: {exc}", path=str(dest)) from exc
    return written


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _formula_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe.

    Evidence text (chat lines, place names) is hostile: ``=HYPERLINK(...)`` must stay inert
    when an analyst opens the CSV. Only text columns are touched; numbers are left as they
    are.
    """
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_string_dtype(out[c].dtype) or pd.api.types.is_object_dtype(out[c].dtype):
            text = out[c].astype("string")
            risky = text.str.startswith(_FORMULA_START).fillna(False).astype(bool)
            if risky.any():
                out[c] = text.where(~risky, "'" + text)
    return out


def _stringify(df: pd.DataFrame) -> pd.DataFrame:
    """Times as ISO-8601 UTC text and durations as seconds, for formats without those types."""
    out = df.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        elif pd.api.types.is_timedelta64_dtype(out[c].dtype):
            out[c] = out[c].dt.total_seconds()
    return out
