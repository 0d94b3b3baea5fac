"""Geofences (named car-park and rest-area polygons) read from files the user supplies.

A geofence table has columns ``name``, ``source`` and a WGS84 polygon ``geometry``; the
car-park stage (:func:`routetrace.routes.carparks.find_carpark_visits`) takes it as it is.
Two readers, both offline:

* :func:`load_geofences`: polygons an investigator drew (GeoJSON, KML, GeoPackage,
  Shapefile);
* :func:`geofences_from_osm`: ``amenity=parking``, ``highway=rest_area`` and
  ``highway=services`` areas of an OpenStreetMap extract (``.osm.pbf``) the user supplies.

Nothing is skipped silently: an OSM area that cannot be assembled into a polygon (a broken
ring) is listed in ``fences.attrs["skipped"]`` as ``(osm id, reason)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from ..errors import LoaderError
from ..extras import require

__all__ = ["geofences_from_osm", "load_geofences"]


def _frame(names: Sequence[str], geoms: Sequence[object], source: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": list(names), "source": source}, geometry=list(geoms),
                            crs="EPSG:4326")


def load_geofences(path: str | Path, *, name_field: str | None = None) -> gpd.GeoDataFrame:
    """Read named polygons (GeoJSON, KML, GeoPackage, Shapefile) as geofences.

    Parameters
    ----------
    path
        The file.
    name_field
        The attribute holding each polygon's name; default the first of ``name``,
        ``Name``, ``title`` (else ``<file stem>-<n>``).

    Returns
    -------
    geopandas.GeoDataFrame
        ``name``, ``source`` (``file:<name>``) and WGS84 polygon geometry.

    Raises
    ------
    LoaderError
        When the file cannot be read or holds no polygon (points are not geofences).

    Example
    -------
    A GeoJSON with one car-park polygon and one point (a point is no geofence):

    >>> import json, tempfile
    >>> ring = [[3.869, 50.999], [3.871, 50.999], [3.871, 51.001], [3.869, 51.001], [3.869, 50.999]]
    >>> doc = {"type": "FeatureCollection", "features": [
    ...     {"type": "Feature", "properties": {"name": "Parking Wetteren"},
    ...      "geometry": {"type": "Polygon", "coordinates": [ring]}},
    ...     {"type": "Feature", "properties": {"name": "a point"},
    ...      "geometry": {"type": "Point", "coordinates": [3.87, 51.0]}}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "carparks.geojson"
    ...     _ = p.write_text(json.dumps(doc))
    ...     fences = load_geofences(p)
    >>> fences[["name", "source"]]
                   name                 source
    0  Parking Wetteren  file:carparks.geojson
    >>> fences.geometry.iloc[0].bounds
    (3.869, 50.999, 3.871, 51.001)
    """
    p = Path(path)
    try:
        gdf = gpd.read_file(p)
    except Exception as exc:  # pyogrio raises its own DataSourceError family
        raise LoaderError(f"cannot read geofences: {exc}", path=str(p)) from exc
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs("EPSG:4326")
    polys = gdf[gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polys.empty:
        raise LoaderError("no polygon in the file (geofences must be areas, not points)",
                          path=str(p))
    field = name_field or next((c for c in ("name", "Name", "title") if c in polys.columns), None)
    names = (polys[field].astype(str) if field else
             pd.Series([f"{p.stem}-{i + 1}" for i in range(len(polys))], index=polys.index))
    return _frame(names.tolist(), polys.geometry.tolist(), f"file:{p.name}")


def geofences_from_osm(path: str | Path) -> gpd.GeoDataFrame:
    """Car parks and rest areas from a user-supplied OpenStreetMap extract (``.osm.pbf``).

    Areas tagged ``amenity=parking``, ``highway=rest_area`` or ``highway=services`` become
    geofences named by their ``name`` tag (else ``osm-<type>-<id>``). Read offline with
    pyosmium; nothing is downloaded. Areas osmium cannot assemble are listed in
    ``attrs["skipped"]`` as ``(osm id, reason)``, never dropped unannounced.

    Parameters
    ----------
    path
        The ``.osm.pbf`` (or ``.osm``) extract.

    Returns
    -------
    geopandas.GeoDataFrame
        ``name``, ``source`` (``osm:<file>``) and WGS84 (multi)polygon geometry.

    Raises
    ------
    LoaderError
        When the file does not exist or osmium cannot read it.

    Example
    -------
    >>> fences = geofences_from_osm("region.osm.pbf")  # doctest: +SKIP
    >>> fences.attrs["skipped"]  # doctest: +SKIP
    []
    """
    osmium = require("osmium", extra="osm", purpose="geofences from OSM extracts")

    p = Path(path)
    if not p.is_file():
        raise LoaderError("no such OSM extract", path=str(p))
    names: list[str] = []
    geoms: list[object] = []
    skipped: list[tuple[str, str]] = []
    wkb = osmium.geom.WKBFactory()
    try:
        for obj in osmium.FileProcessor(str(p)).with_areas():
            if not isinstance(obj, osmium.osm.Area):
                continue
            tags = obj.tags
            if not (tags.get("amenity") == "parking" or
                    tags.get("highway") in ("rest_area", "services")):
                continue
            kind = "way" if obj.from_way() else "relation"
            ident = f"osm-{kind}-{obj.orig_id()}"
            try:
                geom = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(obj)))
            except RuntimeError as exc:
                skipped.append((ident, f"area cannot be assembled: {exc}"))
                continue
            names.append(tags.get("name") or ident)
            geoms.append(geom)
    except RuntimeError as exc:
        raise LoaderError(f"cannot read OSM extract: {exc}", path=str(p)) from exc
    fences = _frame(names, geoms, f"osm:{p.name}")
    fences.attrs["skipped"] = skipped
    return fences
