"""Export a case's tables as CSV, GeoJSON or GeoPackage for the analyst's own tools."""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from .. import __version__
from ..case import Case, generation_time, open_case
from ..errors import ExportError, RoutetraceError
from ..evidence import sha256_file

__all__ = ["export_case", "formula_safe"]


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
                formula_safe(case.table(name)).to_csv(
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
    _record(case, dest, written, to)
    return written


def _record(case: Case, dest: Path, written: list[Path], to: str) -> None:
    """``manifest.json`` in the export folder (the SHA-256 of each file, as an exhibit's),
    and the same hashes in case.json, so ``routetrace verify`` catches an edited export."""
    hashes = {p.name: sha256_file(p) for p in written}
    manifest = {"kind": f"export {to}", "case_id": case.case_id, "generated": generation_time(),
                "tool": {"name": "routetrace", "version": __version__},
                "outputs": {k: {"sha256": v} for k, v in sorted(hashes.items())}}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                        encoding="utf-8")
    try:
        folder = Path(os.path.relpath(dest.resolve(), case.root.resolve())).as_posix()
    except ValueError:
        folder = dest.resolve().as_posix()
    exports = case.manifest.setdefault("exports", {})
    for k in [k for k in exports if k.rsplit("/", 1)[0] == folder]:
        del exports[k]  # the folder was written again: its old files are not outputs any more
    exports.update({f"{folder}/{name}": h for name, h in hashes.items()})
    case.save_manifest()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(df: pd.DataFrame) -> pd.DataFrame:
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
