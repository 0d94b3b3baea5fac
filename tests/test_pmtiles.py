"""Vector PMTiles backgrounds (#17): a user's PMTiles file (Mapbox Vector Tiles, the
Protomaps basemap layers) is read with the ``pmtiles`` package, the tiles covering the
exhibit's extent are inlined, and the vendored protomaps-leaflet draws them in a real
headless Chromium with every non-file request blocked.

The PMTiles file is written here: real MVT (``mapbox-vector-tile``) in a real PMTiles v3
archive (``pmtiles.writer``), gzip-compressed as Protomaps' own extracts are.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from routetrace.errors import ExportError
from routetrace.maps.basemap import _tile_range, load_pmtiles, load_tiles
from routetrace.maps.timeline import build_timeline_map
from routetrace.samples.demo_tables import demo_tables

pmtiles_writer = pytest.importorskip("pmtiles.writer", reason="the pmtiles extra is not installed")
mvt = pytest.importorskip("mapbox_vector_tile", reason="mapbox-vector-tile (test extra) is not installed")

_BROWSER = pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("ROUTETRACE_CHROMIUM"),
    reason="Debian's chromium is not installed (.ci/install installs it)")

#: the extent of demo_tables(300) (the Gent - Wetteren - Brussels journey), with a margin
EXTENT = (50.80, 3.50, 51.10, 4.45)
HOSTILE = '<img src=x onerror="window.__xss=1">'


def _tile(z: int, x: int, y: int) -> bytes:
    """One vector tile in the Protomaps basemap schema: land, a highway and a minor road
    crossing it, and a named town."""
    layers = [
        {"name": "earth", "features": [{"geometry": "POLYGON ((0 0, 4096 0, 4096 4096, 0 4096, 0 0))",
                                        "properties": {"kind": "earth"}}]},
        {"name": "water", "features": [{"geometry": "POLYGON ((300 300, 1300 300, 1300 1100, 300 1100, 300 300))",
                                        "properties": {"kind": "water"}}]},
        {"name": "roads", "features": [
            {"geometry": "LINESTRING (0 2048, 4096 2100)", "properties": {"kind": "highway", "name": "E40"}},
            {"geometry": "LINESTRING (2048 0, 2000 4096)", "properties": {"kind": "major_road", "name": "N9"}}]},
        {"name": "places", "features": [{"geometry": "POINT (2600 2600)",
                                         "properties": {"kind": "locality", "name": f"Town {z}-{x}-{y}",
                                                        "min_zoom": 1, "population_rank": 10}}]},
    ]
    data: bytes = mvt.encode(layers, default_options={"y_coord_down": True})
    return data


def write_pmtiles(path: Path, *, zooms: range = range(6, 14), attribution: str = "") -> int:
    """A gzip-compressed vector PMTiles file covering EXTENT at ``zooms``; returns the tile count."""
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    tiles = {}
    for z in zooms:
        x0, x1, y0, y1 = _tile_range(EXTENT, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                tiles[zxy_to_tileid(z, x, y)] = gzip.compress(_tile(z, x, y), mtime=0)
    with pmtiles_writer.write(str(path)) as w:
        for tid in sorted(tiles):
            w.write_tile(tid, tiles[tid])
        w.finalize({"tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
                    "min_zoom": zooms.start, "max_zoom": zooms.stop - 1,
                    "min_lon_e7": int(EXTENT[1] * 1e7), "min_lat_e7": int(EXTENT[0] * 1e7),
                    "max_lon_e7": int(EXTENT[3] * 1e7), "max_lat_e7": int(EXTENT[2] * 1e7),
                    "center_zoom": 10, "center_lon_e7": int(3.9e7), "center_lat_e7": int(50.95e7)},
                   {"attribution": attribution or '<a href="https://protomaps.com">Protomaps</a> &copy; '
                                                  '<a href="https://openstreetmap.org/copyright">OpenStreetMap</a>'})
    return len(tiles)


@pytest.fixture(scope="module")
def pm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("pm") / "case-area.pmtiles"
    write_pmtiles(p)
    return p


def test_load_pmtiles_inlines_the_extent_and_states_the_file(pm_file: Path) -> None:
    before = hashlib.sha256(pm_file.read_bytes()).hexdigest()
    ts = load_tiles(pm_file, (50.90, 3.55, 51.06, 3.76))  # chosen by the file's first bytes
    assert ts.kind == "vector" and (ts.min_zoom, ts.max_zoom) == (6, 13) and ts.left_out == ""
    # only the tiles covering the extent, each a whole (gunzipped) MVT that decodes
    z13 = [k for k in ts.tiles if k.startswith("13/")]
    x0, x1, y0, y1 = _tile_range((50.90, 3.55, 51.06, 3.76), 13)
    assert len(z13) == (x1 - x0 + 1) * (y1 - y0 + 1)
    import base64
    layer_names = set(mvt.decode(base64.b64decode(ts.tiles[z13[0]])))
    assert layer_names == {"earth", "water", "roads", "places"}
    assert ts.attribution == "Protomaps © OpenStreetMap"  # the file's HTML as text
    line = ts.describe()
    assert "case-area.pmtiles" in line and before in line and "Protomaps © OpenStreetMap" in line
    assert "not evidence" in line and "protomaps-leaflet 5.1.0" in line
    assert hashlib.sha256(pm_file.read_bytes()).hexdigest() == before  # only read


def test_pmtiles_budget_leaves_out_high_zooms_or_says_how_to_cut(pm_file: Path) -> None:
    full = load_pmtiles(pm_file, EXTENT)
    per_zoom: dict[int, int] = {}
    for k, v in full.tiles.items():
        per_zoom[int(k.split("/")[0])] = per_zoom.get(int(k.split("/")[0]), 0) + len(v) * 3 // 4
    low = sum(n for z, n in per_zoom.items() if z <= 9)
    part = load_pmtiles(pm_file, EXTENT, max_bytes=low + per_zoom[10] // 2)
    assert (part.min_zoom, part.max_zoom) == (6, 9)
    assert "zoom 10-13 of the file left out" in part.describe()
    with pytest.raises(ExportError, match=r"over the inlining budget.*pmtiles extract"):
        load_pmtiles(pm_file, EXTENT, max_bytes=10)
    with pytest.raises(ExportError, match="no tile covering the exhibit's extent"):
        load_pmtiles(pm_file, (-34.0, 18.0, -33.0, 19.0))


def test_pmtiles_bad_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "x.pmtiles"
    bad.write_bytes(b"PMTiles\x02" + b"\0" * 200)  # version 2
    with pytest.raises(ExportError, match="not a PMTiles version 3 file"):
        load_pmtiles(bad, EXTENT)
    with pytest.raises(ExportError, match="tiles file not found"):
        load_pmtiles(tmp_path / "none.pmtiles", EXTENT)


def _measure_tiles(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => {
      const out = {canvases: 0, painted: 0, colours: new Set()};
      document.querySelectorAll('.folium-map .leaflet-tile-pane canvas.leaflet-tile').forEach(c => {
        out.canvases++;
        if (!c.width) return;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4 * 97) {
          if (d[i + 3] > 0) { n++; out.colours.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]); }
        }
        if (n) out.painted++;
      });
      const layer = window.routetraceVectorLayer;
      // the middle of the data tile under the map's centre, where each tile's two roads cross
      const map = layer ? layer._map : null, c = map ? map.getCenter() : null;
      const dz = map ? Math.min(Math.round(map.getZoom()) - 1, window.routetraceData.tiles.max_zoom) : 0, n = 2 ** dz;
      const tx = c ? Math.floor((c.lng + 180) / 360 * n) : 0;
      const ty = c ? Math.floor((1 - Math.asinh(Math.tan(c.lat * Math.PI / 180)) / Math.PI) / 2 * n) : 0;
      const lng = (tx + 0.5) / n * 360 - 180, lat = Math.atan(Math.sinh(Math.PI * (1 - 2 * (ty + 0.5) / n))) * 180 / Math.PI;
      const q = layer ? layer.queryTileFeaturesDebug(lng, lat) : new Map();
      const names = [];
      for (const feats of q.values()) for (const f of feats) names.push(f.layerName);
      return {canvases: out.canvases, painted: out.painted, colours: out.colours.size, layers: [...new Set(names)].sort()};
    }""")  # type: ignore[no-any-return]


@pytest.mark.browser
@pytest.mark.allow_loopback
@_BROWSER
def test_vector_tiles_are_drawn_offline_and_recorded(pm_file: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.maps.static import open_exhibit
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    d = demo_tables(300)
    ts = load_pmtiles(pm_file, EXTENT)
    html = build_timeline_map(d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"], case_id="C-1",
                              exhibit_no="7", tiles=ts)
    again = build_timeline_map(d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"], case_id="C-1",
                               exhibit_no="7", tiles=load_pmtiles(pm_file, EXTENT))
    assert html == again  # same input, same bytes
    plain = build_timeline_map(d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"], case_id="C-1",
                               exhibit_no="7")
    assert "var protomapsL=" in html and "var protomapsL=" not in plain  # vendored code only where it is used
    p = tmp_path / "vector.html"
    p.write_text(html, encoding="utf-8")
    q = tmp_path / "plain.html"
    q.write_text(plain, encoding="utf-8")
    with open_exhibit(p, viewport={"width": 1280, "height": 800}) as (page, rep):
        drawn = _measure_tiles(page)
        footer = page.locator("#rt-footer").inner_text()
    with open_exhibit(q, viewport={"width": 1280, "height": 800}) as (page, rep_plain):
        none = _measure_tiles(page)
    for r in (rep, rep_plain):
        assert r.blocked == [] and r.console_errors == [] and r.page_errors == []
        assert all(u.startswith(("file:", "data:")) for u in r.requests)  # no request leaves the file
    assert drawn["canvases"] >= 4 and drawn["painted"] == drawn["canvases"]
    assert drawn["colours"] >= 3  # land, water, roads (and label text): not one flat fill
    assert {"earth", "roads"} <= set(drawn["layers"])  # protomaps-leaflet holds the features
    assert none["canvases"] == 0 and none["layers"] == []
    assert "case-area.pmtiles" in footer and ts.sha256 in footer and "Protomaps © OpenStreetMap" in footer
    assert "Background only, not evidence" in footer


@pytest.mark.browser
@pytest.mark.allow_loopback
@_BROWSER
def test_make_exhibit_with_pmtiles_prints_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole exhibit set from a PMTiles path (as ``--tiles`` passes it), with a hostile
    attribution in the file: printed pages draw the tiles too, no request leaves the file, and
    a second run gives the same bytes."""
    from pypdf import PdfReader

    from routetrace.maps.exhibit import make_exhibit
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    pm = tmp_path / "hostile.pmtiles"
    write_pmtiles(pm, zooms=range(6, 12), attribution=HOSTILE + " OSM &lt;b&gt;")
    d = demo_tables(300)
    kw: dict[str, Any] = dict(stops=d["stops"], gaps=d["gaps"], places=d["places"], sources=d["sources"],
                              case_id="C-1", exhibit_no="7", tiles=pm)
    h1 = make_exhibit(d["fixes"], out_dir=tmp_path / "ex", **kw)
    h2 = make_exhibit(d["fixes"], out_dir=tmp_path / "again", **kw)
    assert h1 == h2  # the tiles draw before the PNG and PDF are taken: same bytes (same machine)
    from routetrace.maps.static import open_exhibit
    with open_exhibit(tmp_path / "ex" / "exhibit.html") as (page, rep):
        footer = page.locator("#rt-footer").inner_text()
        bold = page.evaluate("document.querySelectorAll('#rt-footer b img, #rt-footer img').length")
        flag = page.evaluate("window.__xss === undefined ? null : window.__xss")
    assert flag is None and bold == 0 and rep.blocked == [] and rep.page_errors == []
    assert "Attribution stated by the file: OSM <b>." in footer  # the file's markup stays text
    text = "".join(pg.extract_text() for pg in PdfReader(tmp_path / "ex" / "exhibit.pdf").pages)
    assert "hostile.pmtiles" in " ".join(text.split())


def test_pmtiles_reader_follows_leaf_directories_and_runs(tmp_path: Path) -> None:
    """A file big enough for leaf directories (every tile of zoom 0-7, distinct bytes, with
    runs of identical tiles): the tiles read for an extent are exactly the file's own, as the
    ``pmtiles`` package's reference reader returns them tile by tile."""
    import random

    from pmtiles.reader import MmapSource, Reader
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    rng = random.Random(1)
    p = tmp_path / "big.pmtiles"
    with pmtiles_writer.write(str(p)) as w:
        for tid in range(zxy_to_tileid(8, 0, 0)):  # runs of three equal tiles, then tiles of random length
            w.write_tile(tid, b"run" if tid % 7 < 3 else b"tile %d " % tid + b"x" * rng.randrange(200))
        w.finalize({"tile_type": TileType.PNG, "tile_compression": Compression.NONE, "min_zoom": 0,
                    "max_zoom": 7, "min_lon_e7": -1800000000, "min_lat_e7": -850000000,
                    "max_lon_e7": 1800000000, "max_lat_e7": 850000000, "center_zoom": 0,
                    "center_lon_e7": 0, "center_lat_e7": 0}, {})
    import base64
    with p.open("rb") as fh:
        ref = Reader(MmapSource(fh))
        assert ref.header()["leaf_directory_length"] > 0  # the case this test is about
        for bounds in [EXTENT, (-40.0, -75.0, 10.0, -30.0), (60.0, 170.0, 70.0, 179.9)]:
            ts = load_pmtiles(p, bounds)
            assert ts.kind == "raster" and (ts.min_zoom, ts.max_zoom) == (0, 7)
            want = {}
            for z in range(8):
                x0, x1, y0, y1 = _tile_range(bounds, z)
                for x in range(x0, x1 + 1):
                    for y in range(y0, y1 + 1):
                        want[f"{z}/{x}/{y}"] = "data:image/png;base64," + base64.b64encode(ref.get(z, x, y)).decode()
            assert ts.tiles == want


def test_a_file_of_neither_kind_is_named_as_not_a_tiles_file(tmp_path: Path) -> None:
    """A text file given to --tiles was reported as 'not a readable SQLite database'."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ExportError, match="not a tiles file: an MBTiles file is an SQLite database") as ei:
        load_tiles(notes, (50.90, 3.55, 51.06, 3.76))
    assert ei.value.path == str(notes) and "--tiles" in str(ei.value.hint)
