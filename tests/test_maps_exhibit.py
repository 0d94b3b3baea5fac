"""Exhibit HTML and exports without a browser: determinism, offline, escaping, local time,
simplification budget, GPX, GeoPackage, manifest (KML: test_exports_kml.py)."""

from __future__ import annotations

import json
import re
import sqlite3
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from lxml import etree
from PIL import Image

from routetrace import schema
from routetrace.errors import ExportError
from routetrace.evidence import sha256_file
from routetrace.localtime import fmt_local, tz_at
from routetrace.maps.basemap import load_mbtiles
from routetrace.maps.chronology import build_chronology
from routetrace.maps.exhibit import make_exhibit
from routetrace.maps.exports import write_gpx
from routetrace.maps.timeline import POINT_BUDGET, build_timeline_map, derive_gaps
from routetrace.samples.demo_tables import SRC_A, SRC_B, SRC_S, demo_tables
from routetrace.testing import hash_tree, make_fixes

HOSTILE = '"><script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def _html(d: dict[str, pd.DataFrame], **kw: object) -> str:
    return build_timeline_map(d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"],
                              case_id=str(kw.pop("case_id", "C-1")), exhibit_no="EX-7", **kw)  # type: ignore[arg-type]


def _data(html: str) -> dict[str, object]:
    m = re.search(r"routetraceExhibit\(map_\d+, (\{.*\})\);", html)
    assert m, "exhibit data call not found"
    return json.loads(m.group(1))


def test_html_is_byte_identical_and_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    d = demo_tables(600)
    a, b = _html(d), _html(demo_tables(600))
    assert a == b
    # nothing refers to an external resource: no src/href attributes, no CSS url() but data:
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)\s*=", a, re.IGNORECASE)
    assert not re.search(r"url\((?!data:|#)", a)
    for host in ("cdn.jsdelivr", "cdnjs", "unpkg", "openstreetmap", "bootstrapcdn", "code.jquery"):
        assert host not in a
    assert "2025-10-20 22:40:00 UTC" in a  # SOURCE_DATE_EPOCH, not the wall clock
    # the ids folium would randomise are counters
    assert re.search(r"map_0000000\d", a)


def test_footer_states_case_sources_params_version_and_time_convention() -> None:
    d = demo_tables(300)
    html = _html(d)
    for sha in (SRC_A, SRC_B, SRC_S):
        assert sha in html
    assert "EX-7" in html and "C-1" in html
    assert "routetrace 0.1.0" in html
    assert "stops: radius 100 m" in html and "stops: minimum dwell 5 min" in html
    assert "0 days" not in html  # parameters in words with units, never pandas text (#17)
    assert "never used" in html  # the viewer's time zone is never used
    assert "Natural Earth" in html and "No tile server" in html


def test_evidence_strings_are_escaped() -> None:
    d = demo_tables(300, hostile=HOSTILE)
    html = _html(d, case_id=HOSTILE)
    # the raw payload appears nowhere: in HTML it is entity-escaped, in the JSON \u003c-escaped
    assert HOSTILE not in html
    assert "<script>window.__xss" not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    data = _data(html)
    assert any(HOSTILE in p["name"] for p in data["places"])  # type: ignore[index,union-attr]


def test_evidence_is_never_rendered_as_a_template() -> None:
    # branca re-renders macro output as Jinja; evidence must not be evaluated (SSTI)
    payload = "{{7*7}}{% if true %}IF{% endif %}{{ cycler.__init__.__globals__.os }}"
    d = demo_tables(200, hostile=payload)
    html = _html(d, case_id=payload)
    assert html.count("{{7*7}}") >= 5 and "{{ cycler.__init__.__globals__.os }}" in html
    assert "<module 'os'" not in html and "Case 49" not in html


def test_slider_labels_are_local_time_of_the_place_across_dst() -> None:
    d = demo_tables(600)
    data = _data(_html(d))
    labels = data["ticks"]["label"]  # type: ignore[index]
    assert any("CEST (UTC+02:00), Europe/Brussels" in x for x in labels)
    assert any("CET (UTC+01:00), Europe/Brussels" in x for x in labels)
    t = data["ticks"]["t"]  # type: ignore[index]
    assert t == sorted(t) and len(t) == len(labels)
    # first tick is the first time of the exhibit, in Brussels time
    t0 = min(d["fixes"]["t_utc"].min(), d["stops"]["t_arrival"].min())
    assert labels[0] == f"{fmt_local(t0, 'Europe/Brussels')}, Europe/Brussels"


def test_stop_popups_carry_local_times_and_numbers_match_chronology() -> None:
    d = demo_tables(600)
    data = _data(_html(d))
    chrono = build_chronology(d["stops"], d["gaps"], d["places"], d["sources"])
    stops = chrono[chrono["row_kind"] == "stop"]
    assert [s["no"] for s in data["stops"]] == stops["no"].tolist() == [1, 2, 3]  # type: ignore[union-attr]
    s1 = data["stops"][0]  # type: ignore[index]
    raw = d["stops"].sort_values("t_arrival").iloc[0]
    assert s1["arrival"] == fmt_local(raw["t_arrival"], "Europe/Brussels")
    assert (s1["lat"], s1["lon"]) == (raw["lat"], raw["lon"])  # exact, not simplified
    assert s1["near_place"].startswith("Car park")
    # the safehouse and the indicated place get their own symbols
    assert sorted(p["symbol"] for p in data["places"]) == ["indicated", "safehouse"]  # type: ignore[union-attr]


def test_fmt_local_and_tz() -> None:
    assert tz_at(51.05, 3.72) == "Europe/Brussels"
    assert tz_at(40.71, -74.0) == "America/New_York"
    assert fmt_local(pd.Timestamp("2025-10-26T00:59:59Z"), "Europe/Brussels") == "2025-10-26 02:59:59 CEST (UTC+02:00)"
    assert fmt_local(pd.Timestamp("2025-10-26T01:00:00Z"), "Europe/Brussels") == "2025-10-26 02:00:00 CET (UTC+01:00)"


def test_gaps_break_the_route_and_are_derived_when_missing() -> None:
    f = make_fixes(subject_id="s", t_utc=["2025-01-01T10:00Z", "2025-01-01T10:01Z", "2025-01-01T13:00Z",
                                          "2025-01-01T13:01Z"], lat=[51.0, 51.001, 51.1, 51.101], lon=3.7)
    g = derive_gaps(f)
    assert len(g) == 1 and g["duration"].iloc[0] == pd.Timedelta("2h59min") and "derived" in g["flags"].iloc[0]
    data = _data(build_timeline_map(f, case_id="c", exhibit_no="1"))
    finest = data["subjects"][0]["levels"][-1]["enc"]  # type: ignore[index]
    assert finest["parts"] == [2, 2]  # no solid line across the silence
    assert data["gaps"][0]["label"] == "unobserved 2 h 59 min"  # type: ignore[index]


def test_large_journey_is_simplified_within_budget() -> None:
    d = demo_tables(200_000)
    html = _html(d)
    assert len(html.encode()) < 10_000_000
    data = _data(html)
    subj = {s["id"]: s for s in data["subjects"]}  # type: ignore[union-attr]
    phone = subj["phone-A"]
    n_levels = [len(lv["enc"]["lat"]) for lv in phone["levels"]]
    assert n_levels == sorted(n_levels) and n_levels[0] < 2000  # coarse levels are small
    assert sum(len(lv["enc"]["lat"]) for s in subj.values() for lv in s["levels"]) <= POINT_BUDGET
    # coordinates decode back onto real fixes (vertices are a subset of the fixes)
    enc = phone["levels"][1]["enc"]
    lat = np.cumsum(enc["lat"]) / 1e5
    fx = d["fixes"][d["fixes"]["subject_id"] == "phone-A"]
    assert np.abs(np.subtract.outer(lat[:50], fx["lat"].to_numpy()[:: max(1, len(fx) // 5000)])).min(axis=1).max() < 0.05
    # stops stay exact
    assert {(s["lat"], s["lon"]) for s in data["stops"]} == set(zip(d["stops"]["lat"], d["stops"]["lon"], strict=True))  # type: ignore[union-attr]


def test_nothing_to_map_is_an_error() -> None:
    with pytest.raises(ExportError):
        build_timeline_map(schema.empty("fixes"), case_id="c", exhibit_no="1")


# KML structure, schema validity and escaping: tests/test_exports_kml.py


def test_gpx_segments_split_at_gaps(tmp_path: Path) -> None:
    d = demo_tables(300)
    p = write_gpx(tmp_path / "x.gpx", d["fixes"], d["stops"], d["gaps"], d["places"])
    root = etree.fromstring(p.read_bytes())
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    assert len(root.findall(".//g:trkpt", ns)) == len(d["fixes"])
    segs = {t.findtext("g:name", namespaces=ns): len(t.findall("g:trkseg", ns)) for t in root.findall("g:trk", ns)}
    assert segs == {"lorry-1": 1, "phone-A": 2}
    assert len(root.findall("g:wpt", ns)) == len(d["stops"]) + len(d["places"])
    # GPX 1.1 order: wpt before trk
    kinds = [etree.QName(c).localname for c in root]
    assert kinds == sorted(kinds, key=["metadata", "wpt", "rte", "trk"].index)


def _mbtiles(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE metadata (name text, value text)")
    con.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob)")
    con.executemany("INSERT INTO metadata VALUES (?, ?)", [("format", "png"), ("attribution", "test tiles")])
    for z in (8, 9, 10):
        for x in range(2**z):
            lon0 = x / 2**z * 360 - 180
            if not (lon0 <= 3.75 and lon0 + 360 / 2**z >= 3.5):
                continue
            for ty in range(2**z):
                buf = BytesIO()
                Image.new("RGB", (8, 8), (200, 220, 200)).save(buf, "PNG")
                con.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, ty, buf.getvalue()))
    con.commit()
    con.close()


def test_make_exhibit_exports_and_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    d = demo_tables(400)
    trips = schema.from_records([{
        "subject_id": "lorry-1", "trip_id": "L:t1", "t_start": d["fixes"]["t_utc"].min(),
        "t_end": d["stops"]["t_arrival"].max(), "duration": pd.Timedelta("1h"), "distance_m": 1.0,
        "n_fixes": 10, "n_gaps": 0, "flags": ""}], "trips")
    tiles = tmp_path / "tiles.mbtiles"
    _mbtiles(tiles)
    before = hash_tree(tiles)
    out1, out2 = tmp_path / "a", tmp_path / "b"
    kw = dict(stops=d["stops"], trips=trips, gaps=d["gaps"], places=d["places"], sources=d["sources"],
              case_id="C-1", exhibit_no="7", static=False, tiles=tiles)
    h1 = make_exhibit(d["fixes"], out_dir=out1, **kw)  # type: ignore[arg-type]
    h2 = make_exhibit(d["fixes"], out_dir=out2, **kw)  # type: ignore[arg-type]
    assert h1 == h2  # every export deterministic
    assert hash_tree(tiles) == before  # the tiles file was only read
    assert set(h1) == {"exhibit.html", "exhibit.kml", "exhibit.kmz", "exhibit.gpkg", "exhibit.geojson",
                       "exhibit.gpx", "chronology.csv"}
    man = json.loads((out1 / "manifest.json").read_text())
    for name, meta in man["outputs"].items():
        assert sha256_file(out1 / name) == meta["sha256"] == h1[name]
    assert man["tiles"]["sha256"] == sha256_file(tiles)
    html = (out1 / "exhibit.html").read_text()
    assert "data:image/png;base64," in html and sha256_file(tiles) in html and "tiles.mbtiles" in html
    layers = dict(pyogrio.list_layers(out1 / "exhibit.gpkg").tolist())
    assert set(layers) == {"fixes", "stops", "trips", "places", "gaps"}
    fx = pyogrio.read_dataframe(out1 / "exhibit.gpkg", layer="fixes")
    assert len(fx) == len(d["fixes"])
    tr = pyogrio.read_dataframe(out1 / "exhibit.gpkg", layer="trips")
    assert tr.geometry.iloc[0].geom_type == "LineString" and len(tr.geometry.iloc[0].coords) >= 10
    gj = json.loads((out1 / "exhibit.geojson").read_text())
    layers_gj = pd.Series([f["properties"]["layer"] for f in gj["features"]]).value_counts().to_dict()
    assert layers_gj == {"route": 3, "stop": 3, "place": 2, "unobserved": 1}
    with zipfile.ZipFile(out1 / "exhibit.kmz") as z:
        assert z.read("doc.kml") == (out1 / "exhibit.kml").read_bytes()
    csv = pd.read_csv(out1 / "chronology.csv")
    assert csv["row_kind"].tolist().count("unobserved") == 1 and csv["no"].dropna().tolist() == [1, 2, 3]
    assert csv["start_local"].str.contains(r"\(UTC\+0[12]:00\)").all()


def test_mbtiles_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError):
        load_mbtiles(tmp_path / "missing.mbtiles", (50, 3, 51, 4))
    with pytest.raises(ExportError, match="URL"):
        make_exhibit(demo_tables(100)["fixes"], case_id="c", exhibit_no="1", out_dir=tmp_path,
                     tiles="https://tile.example/{z}/{x}/{y}.png", static=False)


def test_roads_from_a_geopackage_are_drawn(tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    from routetrace.maps.basemap import roads_json
    p = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame({"name": ["N9", "<b>E40</b>"]}, geometry=[
        shapely.LineString([(3.6, 50.9), (3.7, 51.0)]),
        shapely.LineString([(3.5, 51.0), (3.8, 51.05), (3.9, 51.1)])], crs="EPSG:4326").to_file(p)
    roads = roads_json(p)
    assert [r["name"] for r in roads] == ["N9", "<b>E40</b>"] and roads[1]["lat"] == [51.0, 51.05, 51.1]
    html = _html(demo_tables(200), roads=p)
    assert "<b>E40</b>" not in html and _data(html)["roads"] == roads


def test_exhibit_from_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.app.verify import verify_case
    from routetrace.case import open_case
    from routetrace.maps.exhibit import exhibit_from_case

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    d = demo_tables(300)
    case = open_case(tmp_path / "case", create=True, case_id="CASE-9")
    for name in ("fixes", "stops", "places", "sources"):
        case.write_table(name, d[name])
    case.set_parameters("stops", {"radius_m": 75.0})
    hashes = exhibit_from_case(tmp_path / "case", out_dir=tmp_path / "ex", exhibit_no="E-1", static=False)
    html = (tmp_path / "ex" / "exhibit.html").read_text()
    assert "CASE-9" in html and "stops: radius 75 m" in html
    assert "unobserved" in html  # no gaps table in the case: derived, flagged
    monkeypatch.chdir(tmp_path)
    rep = verify_case(tmp_path / "case", exhibit_dirs=[tmp_path / "ex"])
    exhibit_rows = [r for r in rep.rows if r[0] == "exhibit output"]
    assert len(exhibit_rows) == len(hashes) and all(r[2] == "ok" for r in exhibit_rows)


def test_corroboration_verdicts_reach_the_place_popups() -> None:
    d = demo_tables(200)
    layer = pd.DataFrame({"place_id": ["st:1"], "verdicts": ["phone-A: supported"], "worst": ["supported"],
                          "time_text": ["<b>night</b>"]})
    data = _data(_html(d, corroboration=layer))
    by_id = {p["name"]: p for p in data["places"]}  # type: ignore[union-attr]
    car = by_id["Car park (statement W1)"]
    assert car["verdict"] == "phone-A: supported" and car["worst"] == "supported"
    assert by_id["the safehouse"]["verdict"] == "" and data["has_verdicts"] is True
    assert _data(_html(d))["has_verdicts"] is False
