"""The case store: a folder holding a case's tables, its manifest and its quality report.

Layout::

    CASE/
      case.json         manifest: case id, tool version, creation time, sources with their
                        SHA-256 and counts, parameters used by later stages, outputs
      tables/*.parquet  the canonical tables (fixes, events, places as GeoParquet with WGS84
                        point geometry; sources, rejects as Parquet; extra tables by name)
      quality.csv       every rejected record and every file that could not be read, with
                        its reason: nothing is lost silently

The store only stores: reading evidence into it is :func:`routetrace.app.ingest.ingest`.
Times written into the manifest honour ``SOURCE_DATE_EPOCH``, and tables are written
sorted, so the same inputs give byte-identical case files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from . import __version__, schema
from .errors import CaseError
from .evidence import sha256_file

__all__ = [
    "GEO_KINDS",
    "QUALITY",
    "SORT_KEYS",
    "TABLE_KINDS",
    "Case",
    "concat_tables",
    "generation_time",
    "open_case",
    "sort_table",
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


def sort_table(df: pd.DataFrame, kind: str) -> pd.DataFrame:
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
    if kind in schema.CANONICAL:
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
            elif name in schema.CANONICAL:
                self._cache[name] = schema.empty(name)
            else:
                raise CaseError(f"case has no table {name!r}", path=str(self.root))
        return self._cache[name]

    def table_names(self) -> list[str]:
        """Names of the tables stored in the case."""
        return sorted(p.stem for p in (self.root / "tables").glob("*.parquet"))

    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        """Store ``df`` as table ``name``, sorted; validated against its declaration in
        :mod:`routetrace.schema` (every table a stage stores is declared there; a loader's
        own extra tables are stored as they come)."""
        kind = schema.kind_of(name)
        if kind is not None:
            if not len(df):  # an empty result may come without dtypes: give it its declared ones
                df = schema.coerce(df, kind)
            schema.validate(df, kind)
        df = sort_table(df, name)
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


def concat_tables(frames: Sequence[pd.DataFrame], kind: str | None) -> pd.DataFrame:
    """Concatenate frames of one table kind, coerced to its schema (empty frames ignored)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return schema.empty(kind) if kind in schema.TABLES else pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return schema.coerce(out, kind) if kind in schema.TABLES else out
