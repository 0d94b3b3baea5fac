"""A neutral, offline background: country outlines, optional road lines and offline tiles.

* Country outlines: Natural Earth 1:110m (public domain), shipped in ``maps/data`` and
  clipped to the exhibit's extent, so the exhibit never calls a tile server.
* Road lines: any ``{name: [(lat, lon), ...]}`` mapping (the sample case passes its
  generator's roads) or a GeoDataFrame of lines (e.g. read from a user's GeoPackage).
* Town and village names: :func:`named_places` (GeoNames populated places, offline; see
  :mod:`routetrace.maps.gazetteer`), with :data:`GEONAMES_ATTRIBUTION` for the footer.
* Raster tiles: a user-supplied MBTiles file; only the tiles that cover the exhibit's
  extent are inlined (as ``data:`` URLs), highest zoom levels dropped first to stay within
  a byte budget. The file name and SHA-256 are recorded in the footer.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from ..errors import ExportError
from ..evidence import private_sqlite, sha256_file
from .gazetteer import GEONAMES_ATTRIBUTION, named_places

__all__ = ["BASEMAP_ATTRIBUTION", "GEONAMES_ATTRIBUTION", "TOWNS_ATTRIBUTION", "TileSet", "countries_geojson", "load_mbtiles",
           "named_places", "roads_json", "town_labels"]

BASEMAP_ATTRIBUTION = ("Country outlines from Natural Earth 1:110m (public domain), "
                       "a small-scale backdrop, not evidence of any location.")


def countries_geojson(bounds: tuple[float, float, float, float], *, margin_deg: float = 3.0) -> dict[str, Any]:
    """Country outlines clipped to ``bounds`` = (south, west, north, east) plus a margin.

    Parameters
    ----------
    bounds : tuple of float
        ``(south, west, north, east)`` in degrees.
    margin_deg : float, default 3.0
        Degrees added on every side, so that outlines reach past the edge of the map.

    Returns
    -------
    dict
        A GeoJSON FeatureCollection, one feature per country with a ``name`` property.

    Example
    -------
    >>> fc = countries_geojson((50.8, 3.0, 51.2, 4.5))
    >>> fc["type"], "Belgium" in {f["properties"]["name"] for f in fc["features"]}
    ('FeatureCollection', True)
    """
    raw = resources.files("routetrace.maps").joinpath("data/ne_countries_110m.geojson").read_text("utf-8")
    data = json.loads(raw)
    s, w, n, e = bounds
    box = shapely.box(w - margin_deg, s - margin_deg, e + margin_deg, n + margin_deg)
    feats = []
    for f in data["features"]:
        geom = shapely.geometry.shape(f["geometry"])
        if not geom.intersects(box):
            continue
        clipped = shapely.set_precision(shapely.intersection(geom, box), 0.001)
        if clipped.is_empty:
            continue
        feats.append({"type": "Feature", "properties": {"name": f["properties"]["name"]},
                      "geometry": shapely.geometry.mapping(clipped)})
    return {"type": "FeatureCollection", "features": feats}


def roads_json(roads: Any) -> list[dict[str, Any]]:
    """Road lines as ``[{"name": str, "lat": [...], "lon": [...]}]`` (rounded to 1e-5 deg).

    ``roads``: ``{name: [(lat, lon), ...]}``, a GeoDataFrame of lines, or the path of a
    vector file of lines (GeoPackage, GeoJSON, ...; reprojected to WGS84).

    Parameters
    ----------
    roads : dict, geopandas.GeoDataFrame, str or pathlib.Path
        The road lines, in one of the forms above.

    Returns
    -------
    list of dict
        One dict per line.

    Example
    -------
    >>> roads_json({"E40": [(50.9, 3.7), (50.95, 4.0)]})
    [{'name': 'E40', 'lat': [50.9, 50.95], 'lon': [3.7, 4.0]}]
    """
    if roads is None:
        return []
    if isinstance(roads, (str, Path)):
        import pyogrio
        p = Path(roads)
        if not p.is_file():
            raise ExportError("roads file not found", path=str(p))
        roads = pyogrio.read_dataframe(p)
        if roads.crs is not None and roads.crs.to_epsg() != 4326:
            roads = roads.to_crs(4326)
    out: list[dict[str, Any]] = []
    if isinstance(roads, dict):
        for name in sorted(roads):
            pts = np.asarray(roads[name], dtype=float)
            if pts.ndim == 2 and len(pts) >= 2:
                out.append({"name": str(name), "lat": np.round(pts[:, 0], 5).tolist(),
                            "lon": np.round(pts[:, 1], 5).tolist()})
        return out
    geoms = getattr(roads, "geometry", None)
    if geoms is None:
        raise ExportError("roads must be a {name: [(lat, lon), ...]} mapping or a GeoDataFrame of lines")
    names = roads["name"].astype(str).tolist() if "name" in roads.columns else [""] * len(roads)
    for name, geom in zip(names, geoms, strict=True):
        for part in getattr(geom, "geoms", [geom]):
            if part is None or part.is_empty or part.geom_type != "LineString":
                continue
            xy = shapely.get_coordinates(part)
            out.append({"name": name, "lat": np.round(xy[:, 1], 5).tolist(),
                        "lon": np.round(xy[:, 0], 5).tolist()})
    return out


@dataclass
class TileSet:
    """Raster tiles inlined into an exhibit: ``tiles["z/x/y"] = data URL``."""

    path: str
    sha256: str
    attribution: str
    min_zoom: int
    max_zoom: int
    tiles: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the footer."""
        return (f"Tiles: {Path(self.path).name} (SHA-256 {self.sha256}), zoom {self.min_zoom}-"
                f"{self.max_zoom}, {len(self.tiles)} tiles inlined. {self.attribution}").strip()


def _tile_range(bounds: tuple[float, float, float, float], z: int) -> tuple[int, int, int, int]:
    s, w, n, e = bounds
    def xy(lat: float, lon: float) -> tuple[int, int]:
        lat = min(max(lat, -85.0511), 85.0511)
        x = int((lon + 180.0) / 360.0 * 2**z)
        r = np.radians(lat)
        y = int((1.0 - np.log(np.tan(r) + 1.0 / np.cos(r)) / np.pi) / 2.0 * 2**z)
        return min(max(x, 0), 2**z - 1), min(max(y, 0), 2**z - 1)
    x0, y0 = xy(n, w)
    x1, y1 = xy(s, e)
    return x0, x1, y0, y1


def load_mbtiles(path: str | Path, bounds: tuple[float, float, float, float], *,
                 max_bytes: int = 4_000_000) -> TileSet:
    """Read the raster tiles of an MBTiles file that cover ``bounds`` (south, west, north, east).

    Zoom levels are added from the lowest up while the inlined bytes stay under
    ``max_bytes``. Raises :class:`ExportError` for vector (pbf) tiles, which are not
    supported yet.

    Parameters
    ----------
    path : str or pathlib.Path
        The MBTiles file (SQLite); it is only read.
    bounds : tuple of float
        ``(south, west, north, east)`` in degrees.
    max_bytes : int, default 4000000
        Budget in bytes for the tiles inlined into the page (the exhibit is one
        self-contained file).

    Returns
    -------
    TileSet
        The tiles as data URLs, with the file's SHA-256, attribution and zoom range.

    Raises
    ------
    ExportError
        For a missing file, vector tiles, or a file without tiles.

    Example
    -------
    >>> import sqlite3, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = Path(tmp.name) / "tiles.mbtiles"  # one zoom-0 raster tile covering the world
    >>> con = sqlite3.connect(p)
    >>> _ = con.execute("CREATE TABLE metadata (name text, value text)")
    >>> _ = con.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, "
    ...                 "tile_row integer, tile_data blob)")
    >>> _ = con.executemany("INSERT INTO metadata VALUES (?, ?)", [("format", "png"),
    ...                                                          ("attribution", "test tiles")])
    >>> _ = con.execute("INSERT INTO tiles VALUES (0, 0, 0, ?)", (b"\\x89PNG not really",))
    >>> con.commit(); con.close()
    >>> ts = load_mbtiles(p, (50.8, 3.0, 51.2, 4.5))
    >>> sorted(ts.tiles), ts.min_zoom, ts.max_zoom, ts.attribution
    (['0/0/0'], 0, 0, 'test tiles')
    >>> tmp.cleanup()
    """
    p = Path(path)
    if not p.is_file():
        raise ExportError("tiles file not found", path=str(p))
    meta: dict[str, str] = {}
    chosen: dict[str, str] = {}
    zooms: list[int] = []
    with private_sqlite(p) as con:
        try:
            for k, v in con.execute("SELECT name, value FROM metadata"):
                meta[str(k)] = str(v)
        except sqlite3.Error as exc:  # the metadata table is optional in MBTiles
            meta["_error"] = type(exc).__name__
        fmt = meta.get("format", "png").lower()
        if fmt in ("pbf", "mvt"):
            raise ExportError("vector MBTiles are not supported; pass raster (png/jpg/webp) tiles",
                              path=str(p))
        mime = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}.get(fmt, "image/png")
        avail = [int(r[0]) for r in con.execute("SELECT DISTINCT zoom_level FROM tiles ORDER BY 1")]
        total = 0
        for z in avail:
            x0, x1, y0, y1 = _tile_range(bounds, z)
            # MBTiles rows are TMS (y from the south): flip
            ty0, ty1 = (2**z - 1 - y1), (2**z - 1 - y0)
            rows = con.execute(
                "SELECT tile_column, tile_row, tile_data FROM tiles WHERE zoom_level=? AND "
                "tile_column BETWEEN ? AND ? AND tile_row BETWEEN ? AND ? ORDER BY 1, 2",
                (z, x0, x1, ty0, ty1)).fetchall()
            size = sum(len(r[2]) for r in rows)
            if total + size > max_bytes and zooms:
                break
            total += size
            zooms.append(z)
            for x, ty, data in rows:
                y = 2**z - 1 - int(ty)
                chosen[f"{z}/{int(x)}/{y}"] = f"data:{mime};base64," + base64.b64encode(bytes(data)).decode()
    if not zooms:
        raise ExportError("the tiles file holds no tiles", path=str(p))
    return TileSet(path=str(p), sha256=sha256_file(p), attribution=meta.get("attribution", ""),
                   min_zoom=min(zooms), max_zoom=max(zooms), tiles=chosen)


#: Footer credit when town names are drawn (background, not evidence).
TOWNS_ATTRIBUTION = GEONAMES_ATTRIBUTION


def town_labels(bounds: tuple[float, float, float, float], *, pad_deg: float = 0.05,
                limit: int = 400) -> Any:
    """Towns and villages to label on an exhibit's background: the GeoNames places (1,000
    inhabitants or more) within ``bounds`` = (south, west, north, east) widened by
    ``pad_deg``, the ``limit`` largest, largest first (the map places them in that order
    and leaves out a name that would cover a stop label).

    Parameters
    ----------
    bounds : tuple of float
        ``(south, west, north, east)`` in degrees.
    pad_deg : float, default 0.05
        Degrees added on every side (0.05 degrees of latitude is about 5.6 km).
    limit : int, default 400
        Most names kept.

    Returns
    -------
    pandas.DataFrame
        As :func:`routetrace.maps.gazetteer.named_places`: ``name, admin, lat, lon,
        population``.

    Example
    -------
    >>> "Dilbeek" in set(town_labels((50.86, 4.23, 50.89, 4.28))["name"])
    True
    """
    s, w, n, e = bounds
    return named_places((s - pad_deg, w - pad_deg, n + pad_deg, e + pad_deg), limit=limit)
