"""Exhibit layout (#17): groups of colliding markers, overview + detail pages, labels placed
without overlap, what is visible when the exhibit opens, and the gaps the map draws.

The browser checks measure the page as the court sees it: the bounding box of every
numbered stop label in headless Chromium at 1280x800 (initial view and each group's view),
and the words of the PDF pages with ``pdftotext -bbox-layout``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from routetrace import schema
from routetrace.maps.layout import find_marker_groups, fit_zoom, group_letter, metres_per_pixel
from routetrace.maps.timeline import PRINT_MAP_PX, build_timeline_map, derive_gaps
from routetrace.routes.stops import detect_gaps
from routetrace.samples.demo_tables import demo_tables
from routetrace.testing import make_fixes

_BROWSER = pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("ROUTETRACE_CHROMIUM"),
    reason="Debian's chromium is not installed (.ci/install installs it)")
_PDFTOTEXT = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                reason="pdftotext (poppler-utils) is not installed")


def _data(html: str) -> dict[str, Any]:
    m = re.search(r"routetraceExhibit\(map_\d+, (\{.*\})\);", html)
    assert m is not None
    return json.loads(m.group(1))  # type: ignore[no-any-return]


# --- the pure layout functions -------------------------------------------------------------

def _markers(lat: list[float], lon: list[float], nos: list[int | None]) -> pd.DataFrame:
    return pd.DataFrame({"lat": lat, "lon": lon, "stop_no": pd.array(nos, dtype="Int64")})


def test_groups_are_the_stops_whose_markers_collide() -> None:
    # 100 m per pixel: markers 24 px wide collide within 2.4 km
    m = _markers([51.0, 51.001, 51.002, 51.3, 51.5, 51.5005, 51.0005],
                 [3.0, 3.0, 3.0, 3.0, 4.0, 4.0, 3.001], [3, 1, 2, 4, 6, 5, None])
    groups = find_marker_groups(m, metres_per_px=100.0)
    assert [g.letter for g in groups] == ["A", "B"]
    assert groups[0].stop_nos == [1, 2, 3] and groups[0].place_rows == [6]
    assert groups[0].title == "A: stops 1\u20133 and 1 place"
    assert groups[1].stop_nos == [5, 6] and groups[1].place_rows == []
    assert groups[0].bounds == (51.0, 3.0, 51.002, 3.0)  # its stops, not its places
    # at 1 m per pixel nothing collides
    assert find_marker_groups(m, metres_per_px=1.0) == []


def test_places_do_not_chain_stops_and_wide_groups_are_split() -> None:
    # two stops 10 km apart joined only by a row of places every 1 km: no group
    lat = [51.0, 51.09] + [51.0 + 0.009 * k for k in range(1, 10)]
    m = _markers(lat, [3.0] * len(lat), [1, 2] + [None] * 9)
    assert find_marker_groups(m, metres_per_px=100.0) == []
    # a chain of 40 stops 1.5 km apart (60 km) collides link by link at 100 m/px, but a
    # group as wide as the map helps nobody: it is split at half the distance (none left)
    lat = [51.0 + 0.0135 * k for k in range(40)]
    chain = _markers(lat, [3.0] * 40, list(range(1, 41)))
    groups = find_marker_groups(chain, metres_per_px=100.0, max_extent_px=240.0)
    assert all(max(g.stop_nos) - min(g.stop_nos) < 40 for g in groups)
    for g in groups:
        extent_m = (g.bounds[2] - g.bounds[0]) * 111_195
        assert extent_m <= 240 * 100.0


def test_group_letters_and_fit_zoom() -> None:
    assert [group_letter(k) for k in (0, 1, 25, 26, 51, 52)] == ["A", "B", "Z", "AA", "AZ", "BA"]
    z = fit_zoom((50.8, 3.0, 51.2, 4.5), width_px=800, height_px=600, padding_px=0)
    assert z == 9.5
    assert fit_zoom((50.8, 3.0, 51.2, 4.5), width_px=800, height_px=600, padding_px=200) < z
    assert metres_per_pixel(51.0, z) == pytest.approx(156543.03 * np.cos(np.radians(51.0)) / 2 ** 9.5, rel=1e-6)


# --- gaps: the map draws the chronology's -------------------------------------------------

def _ignition(subject: str, off: str, on: str) -> pd.DataFrame:
    return schema.from_records([
        {"subject_id": subject, "t_utc": pd.Timestamp(t), "kind": kind,
         "source_id": "e" * 64, "record": str(k), "flags": ""}
        for k, (t, kind) in enumerate(((off, "ignition_off"), (on, "ignition_on")))], "events")


def test_derive_gaps_is_the_chronologys_rule() -> None:
    t = ["2025-01-01T10:00Z", "2025-01-01T10:01Z", "2025-01-01T13:00Z", "2025-01-01T13:01Z",
         "2025-01-01T15:00Z"]
    f = make_fixes(subject_id="van", t_utc=t, lat=[51.0, 51.0, 51.0, 51.0, 51.2], lon=3.7)
    mine = derive_gaps(f)
    ref = detect_gaps(f)
    assert len(mine) == len(ref) == 2 and set(mine["flags"]) == {"derived"}
    pd.testing.assert_frame_equal(mine.drop(columns="flags"), ref.drop(columns="flags"))
    # with the ignition events the vehicle was parked 10:00:30-13:00:30: not unobserved (the
    # map's old rule drew it anyway)
    ev = _ignition("van", "2025-01-01T10:00:30Z", "2025-01-01T13:00:30Z")
    parked = derive_gaps(f, events=ev)
    assert len(parked) == 1 and parked["t_start"].iloc[0] == pd.Timestamp("2025-01-01T13:01Z")


def test_the_map_draws_the_gaps_it_is_given() -> None:
    d = demo_tables(300)
    # the chronology's table has one gap; the fixes alone would give the same one, and an
    # empty gaps table means "none": the map draws exactly what it is given
    assert len(_data(build_timeline_map(d["fixes"], d["stops"], d["gaps"], case_id="c", exhibit_no="1"))["gaps"]) == 1
    none = schema.empty("gaps")
    assert _data(build_timeline_map(d["fixes"], d["stops"], none, case_id="c", exhibit_no="1"))["gaps"] == []
    derived = _data(build_timeline_map(d["fixes"], d["stops"], None, case_id="c", exhibit_no="1"))
    assert len(derived["gaps"]) == len(detect_gaps(d["fixes"]))


def test_make_exhibit_derives_gaps_with_the_ignition_rule(tmp_path: Path) -> None:
    from routetrace.maps.exhibit import make_exhibit
    t = ["2025-01-01T10:00Z", "2025-01-01T10:01Z", "2025-01-01T13:00Z", "2025-01-01T13:01Z"]
    f = make_fixes(subject_id="van", t_utc=t, lat=[51.0, 51.0, 51.0, 51.05], lon=3.7)
    ev = _ignition("van", "2025-01-01T10:00:30Z", "2025-01-01T13:00:30Z")
    make_exhibit(f, case_id="c", exhibit_no="1", out_dir=tmp_path / "a", static=False)
    make_exhibit(f, case_id="c", exhibit_no="1", out_dir=tmp_path / "b", static=False, events=ev)
    silent = _data((tmp_path / "a" / "exhibit.html").read_text(encoding="utf-8"))
    parked = _data((tmp_path / "b" / "exhibit.html").read_text(encoding="utf-8"))
    assert len(silent["gaps"]) == 1 and parked["gaps"] == []  # parked with the engine off: not unobserved
    assert "computed for this exhibit by" in (tmp_path / "a" / "exhibit.html").read_text(encoding="utf-8")


# --- what is visible when the exhibit opens --------------------------------------------------

def test_per_fix_gps_points_are_a_layer_off_at_first_and_thinning_is_stated(monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.maps import timeline
    d = demo_tables(600)
    data = _data(build_timeline_map(d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"],
                                    case_id="c", exhibit_no="1"))
    pts = data["points"]
    assert {(p["gps"], p["on"]) for p in pts} == {(True, False), (False, True)}
    assert all("every GPS fix" in p["label"] for p in pts if p["gps"])
    assert all(set(p["kind"]) == {"gps"} for p in pts if p["gps"])
    assert data["thinned"] == "" and data["collapsed_layers"] is True
    # over the limit: thinned evenly over the whole journey, and said so
    monkeypatch.setattr(timeline, "EVIDENCE_POINT_LIMIT", 100)
    data = _data(build_timeline_map(d["fixes"], d["stops"], d["gaps"], case_id="c", exhibit_no="1"))
    n_drawn = sum(len(p["t"]) for p in data["points"])
    assert n_drawn <= 100 and "thinned: 1 in every" in data["thinned"]
    t_all = sorted(t for p in data["points"] for t in p["t"])
    assert t_all[-1] > 0.9 * data["t_span"]  # the end of the journey is drawn too, not only the start
    assert all(p["label"].endswith("(thinned)") for p in data["points"])


def test_town_labels_are_drawn_when_the_basemap_offers_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.maps import basemap
    seen: list[tuple[float, ...]] = []

    def town_labels(bounds: tuple[float, float, float, float]) -> pd.DataFrame:
        seen.append(bounds)
        return pd.DataFrame({"name": ["Gent", "<b>Wetteren</b>"], "lat": [51.05, 51.0], "lon": [3.72, 3.88],
                             "population": [260_000, 25_000]})

    monkeypatch.setattr(basemap, "town_labels", town_labels, raising=False)
    d = demo_tables(300)
    html = build_timeline_map(d["fixes"], d["stops"], d["gaps"], case_id="c", exhibit_no="1")
    data = _data(html)
    assert seen and [t["name"] for t in data["towns"]] == ["Gent", "<b>Wetteren</b>"]
    assert "<b>Wetteren</b>" not in html.split("routetraceExhibit(")[0]  # only as JSON data
    assert "GeoNames" in html


# --- the hard case: 30 stops within 2 km, 5 stops 100 km away, two subjects ---------------------

def hard_case(seed: int = 3) -> dict[str, pd.DataFrame]:
    """30 stops within 2 km (near Ghent) and 5 stops about 100 km away (near Liege), two
    subjects, built with the test builders; no gaps table (the exhibit derives it)."""
    rng = np.random.default_rng(seed)
    near = np.c_[51.05 + rng.uniform(-0.009, 0.009, 30), 3.72 + rng.uniform(-0.014, 0.014, 30)]
    far = np.c_[50.63 + rng.uniform(-0.03, 0.03, 5), 5.0 + rng.uniform(-0.05, 0.05, 5)]
    spots = np.r_[near, far]
    t0 = pd.Timestamp("2025-03-03T07:00Z")
    frames, stops = [], []
    for subj, order in (("van-1", [*range(20), 30, 31, 32]), ("phone-2", [*range(20, 30), 33, 34])):
        t, lat, lon = [], [], []
        now = t0
        for k in order:
            for _ in range(8):  # 8 fixes over 7 min at the stop
                t.append(now)
                lat.append(spots[k, 0] + rng.normal(0, 5e-6))
                lon.append(spots[k, 1] + rng.normal(0, 5e-6))
                now += pd.Timedelta("1min")
            stops.append({"subject_id": subj, "stop_id": f"{subj}:{k}", "t_arrival": t[-8], "t_departure": t[-1],
                          "dwell": t[-1] - t[-8], "lat": spots[k, 0], "lon": spots[k, 1], "radius_m": 20.0,
                          "n_fixes": 8, "sources": ("1" if subj == "van-1" else "2") * 64,
                          "observed_fraction": 1.0, "flags": ""})
            now += pd.Timedelta("6min")
        frames.append(make_fixes(subject_id=subj, t_utc=t, lat=lat, lon=lon, h_acc_m=8.0,
                                 source_id=("1" if subj == "van-1" else "2") * 64))
    fixes = schema.coerce(pd.concat(frames, ignore_index=True), "fixes")
    return {"fixes": fixes, "stops": schema.from_records(stops, "stops"), "gaps": None,  # type: ignore[dict-item]
            "places": schema.empty("places"), "sources": None}  # type: ignore[dict-item]


def test_hard_case_groups() -> None:
    d = hard_case()
    data = _data(build_timeline_map(d["fixes"], d["stops"], None, case_id="H", exhibit_no="H-1"))
    assert len(data["stops"]) == 35
    in_group = {no for g in data["groups"] for no in g["stops"]}
    near = {s["no"] for s in data["stops"] if s["lon"] < 4.0}
    assert near <= in_group  # the 30 close stops are in groups, with a detail view each
    assert data["print"]["map_w"] == PRINT_MAP_PX[0]


# --- in the browser: every stop label legible, nothing on top of it -----------------------------

_MEASURE = """() => {
  const map = document.querySelector('.folium-map').getBoundingClientRect();
  const box = r => ({x: r.left, y: r.top, w: r.width, h: r.height});
  const labels = [...document.querySelectorAll('.folium-map .rt-stop')]
    .filter(e => getComputedStyle(e).display !== 'none')
    .map(e => ({no: parseInt(e.textContent, 10), ...box(e.getBoundingClientRect())}));
  const panels = {};
  for (const [name, sel] of [['legend', '#rt-legend'], ['layers', '.leaflet-control-layers'],
                             ['scale', '.leaflet-control-scale'], ['slider', '.rt-slider'],
                             ['zoomto', '#rt-zoomto'], ['north', '.rt-north'], ['zoom', '.leaflet-control-zoom']]) {
    document.querySelectorAll('.folium-map ' + sel).forEach((e, k) => { panels[name + k] = box(e.getBoundingClientRect()); });
  }
  return {map: box(map), labels, panels, views: [...document.querySelectorAll('#rt-zoomto button')].map(b => b.dataset.view)};
}"""


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


def _check_view(m: dict[str, Any], where: str) -> set[int]:
    labels, mp = m["labels"], m["map"]
    for k, a in enumerate(labels):
        assert a["w"] >= 20 and a["h"] >= 20, (where, a)  # legible: a whole marker
        assert mp["x"] <= a["x"] and a["x"] + a["w"] <= mp["x"] + mp["w"], (where, a)
        assert mp["y"] <= a["y"] and a["y"] + a["h"] <= mp["y"] + mp["h"], (where, a)
        for b in labels[k + 1:]:
            assert not _overlap(a, b), (where, a, b)
        for name, p in m["panels"].items():
            assert not _overlap(a, p), (where, name, a, p)
    return {a["no"] for a in labels}


def _check_expanded_layers(page: Any, where: str, popup: dict[str, float] | None = None) -> None:
    """Open the layer control as a hover does and measure it: the open list covers no stop
    label, the legend, any other panel or the open popup, and leaves the panels where they were."""
    before = page.evaluate(_MEASURE)
    page.hover(".folium-map .leaflet-control-layers")
    page.wait_for_timeout(100)
    m = page.evaluate(_MEASURE)
    opened = page.evaluate("(() => { const e = document.querySelector('.folium-map .leaflet-control-layers');"
                           " const r = e.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height,"
                           " expanded: e.classList.contains('leaflet-control-layers-expanded'),"
                           " rows: e.querySelectorAll('.leaflet-control-layers-overlays label').length}; })()")
    page.mouse.move(2, 2)  # leave it: it closes again
    page.wait_for_timeout(50)
    closed = page.evaluate("document.querySelector('.folium-map .leaflet-control-layers')"
                           ".classList.contains('leaflet-control-layers-expanded')")
    assert opened["expanded"] and opened["rows"] > 5 and opened["h"] > 100 and not closed, (where, opened)
    mp = m["map"]
    assert mp["x"] <= opened["x"] and opened["x"] + opened["w"] <= mp["x"] + mp["w"], (where, opened)
    assert mp["y"] <= opened["y"] and opened["y"] + opened["h"] <= mp["y"] + mp["h"], (where, opened)
    for a in m["labels"]:
        assert not _overlap(a, opened), (where, "stop label under the open layer control", a, opened)
    for name, p in m["panels"].items():
        if name.startswith("layers"):
            continue
        assert p == before["panels"][name], (where, "a panel moved when the layer control opened", name)
        if not name.startswith("zoomto"):  # the zoom-to buttons may lie under it while it is open
            assert not _overlap(p, opened), (where, name, p, opened)
    if popup is not None:
        assert not _overlap(popup, opened), (where, "popup under the open layer control", popup, opened)


def _check_html(html: Path, n_stops: int) -> dict[str, int]:
    from routetrace.maps.static import open_exhibit
    seen: set[int] = set()
    per_view: dict[str, int] = {}
    with open_exhibit(html, viewport={"width": 1280, "height": 800}) as (page, rep):
        m = page.evaluate(_MEASURE)
        per_view["overview"] = len(_check_view(m, "initial view"))
        seen |= _check_view(m, "initial view")
        _check_expanded_layers(page, "initial view")
        for v in m["views"]:
            page.evaluate("v => window.routetraceView(v)", v)
            mv = page.evaluate(_MEASURE)
            got = _check_view(mv, f"view {v}")
            _check_expanded_layers(page, f"view {v}")
            per_view[v] = len(got)
            seen |= got
        # a click on a chronology row zooms to its stop and opens its popup, clear of the panels
        page.evaluate("window.routetraceView('overview')")
        page.locator("#rt-chronology tr.rt-row-stop").nth(n_stops - 1).click()
        page.wait_for_timeout(700)
        popup = page.evaluate("(() => { const p = document.querySelector('.leaflet-popup-content-wrapper');"
                              " if (!p) return null; const r = p.getBoundingClientRect();"
                              " return {x: r.left, y: r.top, w: r.width, h: r.height, text: p.innerText}; })()")
        panels = page.evaluate(_MEASURE)["panels"]
        if popup is not None:
            _check_expanded_layers(page, "stop popup open", popup)
    assert rep.console_errors == [] and rep.page_errors == [] and rep.blocked == []
    assert seen == set(range(1, n_stops + 1)), sorted(set(range(1, n_stops + 1)) - seen)
    assert popup is not None and f"Stop {n_stops}:" in popup["text"]
    for name, p in panels.items():
        assert not _overlap(popup, p), (name, popup, p)
    return per_view


def _pdf_words(pdf: Path) -> list[dict[str, Any]]:
    """Pages of a PDF: their text and the numbers standing alone (a stop label's box)."""
    xml = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], check=True, capture_output=True,
                         text=True).stdout
    xml = re.sub(r"<!DOCTYPE[^>]*>", "", xml)
    root = ET.fromstring(re.sub(r'\sxmlns="[^"]+"', "", xml, count=1))
    pages = []
    for pg in root.iter("page"):
        words = [w.text or "" for w in pg.iter("word")]
        numbers, lines = [], []
        for line in pg.iter("line"):
            ws = list(line.iter("word"))
            lines.append((" ".join(w.text or "" for w in ws), float(line.get("yMax", 0)) - float(line.get("yMin", 0))))
            # a line with a lower-case word is text ("unobserved 1 h 00 min", "30 km"); stop
            # numbers may share a line with a place symbol or a group letter
            if any(re.search(r"[a-z]", w.text or "") for w in ws):
                continue
            numbers += [{k: float(w.get(k, 0)) for k in ("xMin", "yMin", "xMax", "yMax")} | {"text": w.text or ""}
                        for w in ws if (w.text or "").isdigit()]
        pages.append({"text": " ".join(words), "numbers": numbers, "lines": lines})
    return pages


def _check_pdf(pdf: Path, n_stops: int, n_groups: int) -> list[int]:
    pages = _pdf_words(pdf)
    m = len(pages)
    for k, p in enumerate(pages, start=1):
        # legible: the header and footer lines at least 6 pt high
        assert any(f"page {k} of {m}" in text and h >= 6 for text, h in p["lines"]), (k, p["lines"][-3:])
        assert any(text.startswith("Exhibit ") and h >= 6 for text, h in p["lines"]), (k, p["lines"][:3])
    map_pages = [p for p in pages if p["text"].startswith(("Overview", "Detail")) or
                 re.search(r"(Overview: the whole journey|Detail [A-Z]+: )", p["text"])]
    assert len(map_pages) == 1 + n_groups
    # the map is the page's left part: 8 mm margin + PRINT_MAP_PX[0] CSS px at 0.75 pt each
    left, right = 8 / 25.4 * 72, 8 / 25.4 * 72 + PRINT_MAP_PX[0] * 0.75 + 2
    seen: set[int] = set()
    per_page = []
    for p in map_pages:
        assert "km" in p["text"] or " m " in f" {p['text']} "  # scale bar
        assert re.search(r"(^| )N( |$)", p["text"])  # north arrow
        nums = [w for w in p["numbers"] if left < w["xMin"] and w["xMax"] < right]
        for i, a in enumerate(nums):
            assert a["yMax"] - a["yMin"] >= 7, a  # legible: at least 7 pt high
            for b in nums[i + 1:]:
                assert not (a["xMin"] < b["xMax"] and b["xMin"] < a["xMax"] and a["yMin"] < b["yMax"]
                            and b["yMin"] < a["yMax"]), (a, b)
        got = {int(w["text"]) for w in nums}
        assert got <= set(range(1, n_stops + 1)), got
        seen |= got
        per_page.append(len(got))
    assert seen == set(range(1, n_stops + 1)), sorted(set(range(1, n_stops + 1)) - seen)
    assert "Chronology" in " ".join(p["text"] for p in pages[len(map_pages):])
    return per_page


@pytest.fixture(scope="module")
def sample_exhibit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sample case's exhibit exactly as ``routetrace demo`` writes it."""
    from routetrace.app.demo import run_demo
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "1761000000"
    try:
        out = tmp_path_factory.mktemp("demo")
        run_demo(out)
        yield out / "exhibit"
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


@pytest.mark.browser
@pytest.mark.allow_loopback
@_BROWSER
@_PDFTOTEXT
def test_sample_exhibit_every_stop_label_legible(sample_exhibit: Path) -> None:
    data = _data((sample_exhibit / "exhibit.html").read_text(encoding="utf-8"))
    n = len(data["stops"])
    assert n >= 10 and data["groups"]
    per_view = _check_html(sample_exhibit / "exhibit.html", n)
    assert per_view["overview"] == n  # the sample's 16 numbers all fit the first view
    _check_pdf(sample_exhibit / "exhibit.pdf", n, len(data["groups"]))


@pytest.mark.browser
@pytest.mark.allow_loopback
@_BROWSER
@_PDFTOTEXT
def test_hard_case_every_stop_label_legible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.maps.exhibit import make_exhibit
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    d = hard_case()
    make_exhibit(d["fixes"], stops=d["stops"], case_id="H-2025", exhibit_no="H-1", out_dir=tmp_path,
                 title="Hard case")
    data = _data((tmp_path / "exhibit.html").read_text(encoding="utf-8"))
    _check_html(tmp_path / "exhibit.html", 35)
    _check_pdf(tmp_path / "exhibit.pdf", 35, len(data["groups"]))


@pytest.mark.browser
@pytest.mark.allow_loopback
@_BROWSER
def test_every_symbol_drawn_has_a_legend_entry(sample_exhibit: Path) -> None:
    from routetrace.maps.static import open_exhibit
    with open_exhibit(sample_exhibit / "exhibit.html", viewport={"width": 1280, "height": 800}) as (page, rep):
        drawn = page.evaluate("""() => ({
            other: document.querySelectorAll('.folium-map .rt-place-other').length,
            indicated: document.querySelectorAll('.folium-map .rt-place-indicated').length,
            letters: document.querySelectorAll('.folium-map .rt-group-letter').length,
            layers_collapsed: !document.querySelector('.leaflet-control-layers').classList.contains('leaflet-control-layers-expanded'),
            points_on: document.querySelectorAll('.folium-map canvas.rt-points').length })""")
        legend = page.locator("#rt-legend").inner_text()
        layers = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    assert rep.console_errors == [] and rep.page_errors == []
    assert drawn["other"] > 10 and "other place" in legend  # the grey squares
    assert drawn["indicated"] and "indicated in a statement" in legend
    assert drawn["letters"] and "frame" in legend
    assert "evidence point" in legend and "unobserved" in legend and "true scale" in legend
    assert drawn["layers_collapsed"]
    # the per-fix GPS layers exist but are off: the route's time colours are not covered
    gps_layers = [x for x in layers if "every GPS fix" in x]
    assert gps_layers
    n_sources = len([x for x in layers if x.strip().startswith("Source:")])
    assert drawn["points_on"] == n_sources - len(gps_layers)


@pytest.mark.browser
@pytest.mark.allow_loopback
@_BROWSER
@_PDFTOTEXT
def test_hostile_header_and_town_names_stay_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.maps import basemap
    from routetrace.maps.static import open_exhibit, render_static
    hostile = '<img src=x onerror="window.__xss=1">{{7*7}}'

    def town_labels(bounds: tuple[float, float, float, float]) -> list[dict[str, object]]:
        return [{"name": hostile, "lat": 51.0, "lon": 3.7005}, {"name": "Gent", "lat": 51.05, "lon": 3.72},
                {"name": "Wetteren", "lat": 51.0, "lon": 3.88}]

    monkeypatch.setattr(basemap, "town_labels", town_labels, raising=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    d = demo_tables(300)
    html = build_timeline_map(d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"], case_id=hostile,
                              exhibit_no=hostile, title=hostile)
    p = tmp_path / "x.html"
    p.write_text(html, encoding="utf-8")
    render_static(p, None, tmp_path / "x.pdf")
    with open_exhibit(p, viewport={"width": 1280, "height": 800}) as (page, rep):
        towns = page.evaluate("""() => [...document.querySelectorAll('.folium-map .rt-town')]
            .filter(e => getComputedStyle(e).display !== 'none')
            .map(e => { const r = e.getBoundingClientRect(); return {text: e.textContent, x: r.left, y: r.top, w: r.width, h: r.height}; })""")
        stops = page.evaluate(_MEASURE)["labels"]
        flag = page.evaluate("window.__xss === undefined ? null : window.__xss")
    assert flag is None and rep.page_errors == [] and rep.console_errors == [] and rep.blocked == []
    assert {"Gent", "Wetteren"} <= {t["text"] for t in towns}
    for t in towns:
        for s in stops:
            assert not _overlap(t, s), (t, s)
    pages = _pdf_words(tmp_path / "x.pdf")
    head = [text for text, _h in pages[0]["lines"] if text.startswith("Exhibit")]
    assert head and hostile.replace(" ", "") in head[0].replace(" ", "")  # printed as text, not markup
