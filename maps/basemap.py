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
* Vector tiles: a user-supplied PMTiles file (e.g. a Protomaps basemap extract, read with
  the ``pmtiles`` package): the Mapbox Vector Tiles that cover the exhibit's extent are
  inlined (base64, same budget) and drawn in the page by the vendored protomaps-leaflet.
  Name, SHA-256 and the file's own attribution go to the footer as background.
"""

from __future__ import annotations

import base64
import bisect
import gzip
import html
import json
import mmap
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from ..errors import ExportError
from ..evidence import private_sqlite, sha256_file
from ..extras import require
from .gazetteer import GEONAMES_ATTRIBUTION, named_places

__all__ = ["BASEMAP_ATTRIBUTION", "GEONAMES_ATTRIBUTION", "TOWNS_ATTRIBUTION", "TileSet", "countries_geojson", "load_mbtiles",
           "load_pmtiles", "load_tiles", "named_places", "roads_json", "town_labels"]

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
    """Tiles inlined into an exhibit.

    ``kind="raster"``: ``tiles["z/x/y"]`` is a ``data:`` URL (an image).
    ``kind="vector"``: ``tiles["z/x/y"]`` is the base64 of one uncompressed Mapbox Vector
    Tile, drawn by the vendored protomaps-leaflet. ``left_out`` says which zoom levels of
    the file were not inlined and why (empty when none).
    """

    path: str
    sha256: str
    attribution: str
    min_zoom: int
    max_zoom: int
    tiles: dict[str, str] = field(default_factory=dict)
    kind: str = "raster"
    left_out: str = ""

    def describe(self) -> str:
        """One line for the footer."""
        if self.kind == "vector":
            raw = sum(len(v) for v in self.tiles.values()) * 3 // 4
            credit = (f"Attribution stated by the file: {self.attribution}." if self.attribution
                      else "The file states no attribution.")
            return (f"Vector tiles: {Path(self.path).name} (SHA-256 {self.sha256}), zoom {self.min_zoom}-"
                    f"{self.max_zoom}, {len(self.tiles)} tiles ({raw / 1e3:.0f} kB) inlined for the exhibit's "
                    f"extent{self.left_out}, drawn by protomaps-leaflet 5.1.0. {credit} "
                    "Background only, not evidence of any location.")
        return (f"Tiles: {Path(self.path).name} (SHA-256 {self.sha256}), zoom {self.min_zoom}-"
                f"{self.max_zoom}, {len(self.tiles)} tiles inlined{self.left_out}. {self.attribution}").strip()


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


#: Most tiles one exhibit inlines from a PMTiles file (about 4 MB of city-zoom vector tiles).
PMTILES_MAX_TILES = 4096
_IMAGE_MIME = {2: "image/png", 3: "image/jpeg", 4: "image/webp"}  # pmtiles TileType values


def _tile_ids(bounds: tuple[float, float, float, float], z: int) -> list[int]:
    from pmtiles.tile import zxy_to_tileid
    x0, x1, y0, y1 = _tile_range(bounds, z)
    return sorted(zxy_to_tileid(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1))


def _find_entries(get_bytes: Callable[[int, int], bytes], header: dict[str, Any], wanted: list[int]
                  ) -> dict[int, tuple[int, int]]:
    """``{tile_id: (offset, length)}`` of the wanted tiles the archive holds (leaf
    directories are read only where they can hold a wanted id)."""
    from pmtiles.tile import deserialize_directory
    found: dict[int, tuple[int, int]] = {}
    todo = [(int(header["root_offset"]), int(header["root_length"]))]
    for _depth in range(4):  # the PMTiles v3 spec allows at most 3 levels of leaves
        nxt = []
        for off, length in todo:
            entries = deserialize_directory(get_bytes(off, length))
            for k, e in enumerate(entries):
                end = e.tile_id + e.run_length if e.run_length else (
                    entries[k + 1].tile_id if k + 1 < len(entries) else 2**63)
                i = bisect.bisect_left(wanted, e.tile_id)
                if i == len(wanted) or wanted[i] >= end:
                    continue
                if e.run_length == 0:
                    nxt.append((int(header["leaf_directory_offset"]) + e.offset, e.length))
                    continue
                for tid in wanted[i:bisect.bisect_left(wanted, end)]:
                    found[tid] = (int(header["tile_data_offset"]) + e.offset, e.length)
        todo = nxt
    return found


def _pmtiles_attribution(reader: Any) -> str:
    """The file's ``attribution`` metadata as plain text (it is often HTML)."""
    try:
        meta = reader.metadata()
    except (ValueError, OSError, EOFError):
        return ""
    text = str(meta.get("attribution", "")) if isinstance(meta, dict) else ""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", text)).split())


def _decode_tile(data: bytes, compression: int, path: Path) -> bytes:
    if compression == 2 or (compression == 0 and data[:2] == b"\x1f\x8b"):  # gzip
        return gzip.decompress(data)
    if compression in (0, 1):
        return data
    raise ExportError("PMTiles tiles compressed with brotli or zstd are not supported; re-encode with gzip "
                      "(pmtiles convert) or none", path=str(path))


def load_pmtiles(path: str | Path, bounds: tuple[float, float, float, float], *,
                 max_bytes: int = 4_000_000, max_tiles: int = PMTILES_MAX_TILES) -> TileSet:
    """Read the tiles of a PMTiles (v3) file that cover ``bounds`` (south, west, north, east).

    Vector tiles (Mapbox Vector Tiles, e.g. a Protomaps basemap extract) are inlined as
    base64 and drawn in the page by the vendored protomaps-leaflet; raster tiles (PNG, JPEG,
    WebP) as ``data:`` URLs. Zoom levels are added from the file's lowest up while the tiles
    stay within ``max_bytes`` (uncompressed) and ``max_tiles``; the footer says which levels
    were left out.

    Parameters
    ----------
    path : str or pathlib.Path
        The PMTiles file; it is only read.
    bounds : tuple of float
        ``(south, west, north, east)`` in degrees: the exhibit's extent.
    max_bytes : int, default 4000000
        Budget in bytes for the tiles inlined into the page (the exhibit is one file; the
        route's own budget is reduced by the same amount).
    max_tiles : int, default PMTILES_MAX_TILES
        Most tiles inlined.

    Returns
    -------
    TileSet
        ``kind`` "vector" or "raster", with the file's SHA-256 and attribution.

    Raises
    ------
    ExportError
        For a missing file, a file that is not PMTiles v3, tiles compressed other than with
        gzip, a tile type that is neither MVT nor an image, no tile covering the extent, or
        when the lowest zoom level alone is over the budget (the message says how to cut
        the file down).

    Example
    -------
    >>> import tempfile
    >>> from pmtiles.tile import Compression, TileType, zxy_to_tileid
    >>> from pmtiles.writer import write
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = Path(tmp.name) / "t.pmtiles"  # one zoom-0 tile, an empty vector tile
    >>> with write(str(p)) as w:
    ...     w.write_tile(zxy_to_tileid(0, 0, 0), b"")
    ...     w.finalize({"tile_type": TileType.MVT, "tile_compression": Compression.NONE,
    ...                 "min_zoom": 0, "max_zoom": 0, "min_lon_e7": -1800000000,
    ...                 "min_lat_e7": -850000000, "max_lon_e7": 1800000000, "max_lat_e7": 850000000,
    ...                 "center_zoom": 0, "center_lon_e7": 0, "center_lat_e7": 0},
    ...                {"attribution": "<a href='x'>test</a> &amp; co"})
    >>> ts = load_pmtiles(p, (50.8, 3.0, 51.2, 4.5))
    >>> ts.kind, sorted(ts.tiles), ts.attribution
    ('vector', ['0/0/0'], 'test & co')
    >>> tmp.cleanup()
    """
    require("pmtiles.reader", extra="pmtiles", purpose="PMTiles backgrounds")
    from pmtiles.reader import Reader
    from pmtiles.tile import MagicNumberNotFound, SpecVersionUnsupported
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        raise ExportError("tiles file not found" if not p.is_file() else "the tiles file is empty", path=str(p))
    with p.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        def get_bytes(offset: int, length: int) -> bytes:
            return mm[offset:offset + length]
        reader = Reader(get_bytes)
        try:
            header: dict[str, Any] = dict(reader.header())
        except (MagicNumberNotFound, SpecVersionUnsupported, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise ExportError(f"not a PMTiles version 3 file ({type(exc).__name__})", path=str(p)) from exc
        ttype = int(getattr(header["tile_type"], "value", header["tile_type"]))
        if ttype != 1 and ttype not in _IMAGE_MIME:
            raise ExportError(f"PMTiles tile type {header['tile_type']} is not supported (vector MVT, PNG, JPEG "
                              "or WebP)", path=str(p))
        chosen, zooms, left_out = _pmtiles_within_budget(get_bytes, header, bounds, p, max_bytes=max_bytes,
                                                         max_tiles=max_tiles)
        attribution = _pmtiles_attribution(reader)
    if not zooms:
        s, w, n, e = bounds
        raise ExportError(f"the PMTiles file holds no tile covering the exhibit's extent "
                          f"({s:.4f}, {w:.4f})-({n:.4f}, {e:.4f})", path=str(p))
    if ttype != 1:
        chosen = {k: f"data:{_IMAGE_MIME[ttype]};base64," + v for k, v in chosen.items()}
    return TileSet(path=str(p), sha256=sha256_file(p), attribution=attribution, min_zoom=min(zooms),
                   max_zoom=max(zooms), tiles=chosen, kind="vector" if ttype == 1 else "raster", left_out=left_out)


def _pmtiles_within_budget(get_bytes: Callable[[int, int], bytes], header: dict[str, Any],
                           bounds: tuple[float, float, float, float], path: Path, *, max_bytes: int,
                           max_tiles: int) -> tuple[dict[str, str], list[int], str]:
    """``({"z/x/y": base64}, zooms inlined, note on the zooms left out)``: zoom levels from
    the file's lowest up while the tiles stay within the budgets."""
    from pmtiles.tile import tileid_to_zxy
    comp = int(getattr(header["tile_compression"], "value", header["tile_compression"]))
    chosen: dict[str, str] = {}
    zooms: list[int] = []
    total = 0
    for z in range(int(header["min_zoom"]), int(header["max_zoom"]) + 1):
        ids = _tile_ids(bounds, z)
        found = _find_entries(get_bytes, header, ids) if len(ids) <= max_tiles else {}
        tiles = {tid: _decode_tile(get_bytes(off, n), comp, path) for tid, (off, n) in sorted(found.items())}
        size = sum(len(t) for t in tiles.values())
        if len(ids) > max_tiles or total + size > max_bytes or len(chosen) + len(tiles) > max_tiles:
            if not zooms:
                raise ExportError(
                    f"the tiles covering the exhibit's extent at zoom {z} are over the inlining budget "
                    f"({size / 1e6:.1f} MB in {len(tiles)} of {len(ids)} tiles; at most {max_bytes / 1e6:.1f} MB "
                    f"and {max_tiles} tiles are inlined): cut the file to the case's area and zooms first "
                    "(pmtiles extract --bbox ... --maxzoom ...)", path=str(path))
            return chosen, zooms, f" (zoom {z}-{header['max_zoom']} of the file left out: over the inlining budget)"
        if tiles:
            zooms.append(z)
        total += size
        for tid, data in tiles.items():
            tz, tx, ty = tileid_to_zxy(tid)
            chosen[f"{tz}/{tx}/{ty}"] = base64.b64encode(data).decode()
    return chosen, zooms, ""


def load_tiles(path: str | Path, bounds: tuple[float, float, float, float], *,
               max_bytes: int = 4_000_000) -> TileSet:
    """Read a user's offline tiles for ``bounds``: :func:`load_pmtiles` for a PMTiles file,
    :func:`load_mbtiles` for an SQLite (MBTiles) file, each recognised by its first bytes.

    Parameters
    ----------
    path : str or pathlib.Path
        A PMTiles (vector or raster) or MBTiles (raster) file.
    bounds : tuple of float
        ``(south, west, north, east)`` in degrees.
    max_bytes : int, default 4000000
        Budget in bytes for the inlined tiles.

    Returns
    -------
    TileSet
        As the reader returns it.

    Raises
    ------
    ExportError
        A file missing or of neither kind, or as the reader raises it.

    Example
    -------
    >>> load_tiles("missing.pmtiles", (50.8, 3.0, 51.2, 4.5))
    Traceback (most recent call last):
    ...
    routetrace.errors.ExportError: missing.pmtiles: tiles file not found
    """
    p = Path(path)
    if not p.is_file():
        raise ExportError("tiles file not found", path=str(p))
    with p.open("rb") as fh:
        magic = fh.read(16)
    if magic[:7] == b"PMTiles":
        return load_pmtiles(p, bounds, max_bytes=max_bytes)
    if magic != b"SQLite format 3\x00":
        raise ExportError("not a tiles file: an MBTiles file is an SQLite database, a PMTiles file "
                          "starts with 'PMTiles'", path=str(p),
                          hint="pass an offline .mbtiles or .pmtiles file to --tiles")
    return load_mbtiles(p, bounds, max_bytes=max_bytes)

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
