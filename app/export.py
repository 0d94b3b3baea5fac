"""Export a case's tables as CSV, GeoJSON or GeoPackage for the analyst's own tools."""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from .. import __version__, schema
from ..case import Case, generation_time, open_case
from ..codehash import code_sha256
from ..csvout import iso_utc, write_csv
from ..errors import ExportError, RoutetraceError
from ..evidence import sha256_file
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
    geometry. No row is left out. ``fixes`` and ``events`` carry their ids (``fix_id``,
    ``event_id``, derived from source and record: :func:`routetrace.schema.with_ids`) as
    their first column, so the ids other tables cite resolve in the export.

    Raises
    ------
    ExportError
        For an unknown target or an output that cannot be written.

    Parameters
    ----------
    root : str or pathlib.Path
        The case folder (made by :func:`routetrace.app.ingest.ingest`).
    to : str
        ``csv``, ``geojson`` or ``gpkg``.
    out : str or pathlib.Path
        The output folder (``csv``, ``geojson``) or GeoPackage file (``gpkg``).

    Returns
    -------
    list of pathlib.Path
        The files written, sorted.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from routetrace.testing import example_case
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = example_case(d / "case")  # a lorry stopping 10 min with a phone beside it, then leaving
    >>> files = export_case(d / "case", to="csv", out=d / "csv")
    >>> [p.name for p in files]
    ['devices.csv', 'events.csv', 'fixes.csv', 'places.csv', 'rejects.csv', 'sources.csv', 'subjects.csv']
    >>> tmp.cleanup()
    """
    case = open_case(root)
    if to not in ("csv", "geojson", "gpkg"):
        raise ExportError(f"unknown export target {to!r}; use csv, geojson or gpkg "
                          "(KML, GPX and exhibits: `routetrace exhibit`)")
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    names = case.table_names()

    def table(name: str) -> pd.DataFrame:  # with the derived fix_id / event_id, which others cite
        return schema.with_ids(case.table(name), name)

    try:
        if to == "csv":
            written = [write_csv(table(name), dest / f"{name}.csv") for name in names]
        elif to == "geojson":
            written = [_write_geojson(table(name), dest / f"{name}.geojson") for name in names
                       if {"lat", "lon"} <= set(case.table(name).columns)]
        else:
            p = dest / f"{case.case_id}.gpkg"
            p.unlink(missing_ok=True)
            os.environ.setdefault("OGR_CURRENT_DATE", generation_time())
            for name in names:
                write_gpkg_table(p, name, table(name))
            written = [p]
        _record(case, dest, written, to)
    except RoutetraceError:
        raise
    except OSError as exc:
        raise ExportError(f"cannot write: {exc}", path=str(dest)) from exc
    return written


def _record(case: Case, dest: Path, written: list[Path], to: str) -> None:
    """``manifest.json`` in the export folder (the SHA-256 of each file, as an exhibit's),
    and the same hashes in case.json, so ``routetrace verify`` catches an edited export."""
    hashes = {p.name: sha256_file(p) for p in written}
    manifest = {"kind": f"export {to}", "case_id": case.case_id, "generated": generation_time(),
                "tool": {"name": "routetrace", "version": __version__, "code_sha256": code_sha256()},
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
