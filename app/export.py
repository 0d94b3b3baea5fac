"""Export a case's tables as CSV, GeoJSON or GeoPackage for the analyst's own tools."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from ..case import generation_time, open_case
from ..csvout import iso_utc, write_csv
from ..errors import ExportError, RoutetraceError
from ..maps.exports import write_gpkg_table

__all__ = ["export_case"]


def export_case(root: str | Path, *, to: str, out: str | Path) -> list[Path]:
    """Export the case's tables to ``out`` as ``csv`` (one file per table), ``geojson``
    (the tables with positions) or ``gpkg`` (one GeoPackage, a layer per table).

    CSV goes through the one formula-safe writer (:func:`routetrace.csvout.write_csv`:
    durations in seconds as ``NAME_s``, times ISO UTC). In the GeoPackage times are typed
    ``DATETIME`` columns and rows without a position (an ignition event, a chat message) are
    kept in an attribute table ``NAME_no_position``
    (:func:`routetrace.maps.exports.write_gpkg_table`); in GeoJSON they are features without
    geometry. No row is left out.

    Raises
    ------
    ExportError
        For an unknown target or an output that cannot be written.
    """
    case = open_case(root)
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    names = case.table_names()
    try:
        if to == "csv":
            return [write_csv(case.table(name), dest / f"{name}.csv") for name in names]
        if to == "geojson":
            return [_write_geojson(case.table(name), dest / f"{name}.geojson") for name in names
                    if {"lat", "lon"} <= set(case.table(name).columns)]
        if to == "gpkg":
            p = dest / f"{case.case_id}.gpkg"
            p.unlink(missing_ok=True)
            os.environ.setdefault("OGR_CURRENT_DATE", generation_time())
            for name in names:
                write_gpkg_table(p, name, case.table(name))
            return [p]
    except RoutetraceError:
        raise
    except OSError as exc:
        raise ExportError(f"cannot write: {exc}", path=str(dest)) from exc
    raise ExportError(f"unknown export target {to!r}; use csv, geojson or gpkg "
                      "(KML, GPX and exhibits: `routetrace exhibit`)")


def _write_geojson(df: pd.DataFrame, p: Path) -> Path:
    has = (df["lat"].notna() & df["lon"].notna()).to_numpy()
    geom = shapely.points(df["lon"].to_numpy(float), df["lat"].to_numpy(float))
    geom[~has] = None
    gdf = gpd.GeoDataFrame(_stringify(df), geometry=geom, crs="EPSG:4326")
    p.write_text(gdf.to_json(drop_id=True, sort_keys=True) + "\n", encoding="utf-8")
    return p


def _stringify(df: pd.DataFrame) -> pd.DataFrame:
    """Times as ISO-8601 UTC text and durations as seconds (``NAME_s``), for GeoJSON."""
    out = df.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = iso_utc(out[c])
        elif pd.api.types.is_timedelta64_dtype(out[c].dtype):
            out[f"{c}_s"] = out.pop(c).dt.total_seconds()
    return out
