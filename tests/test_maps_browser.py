"""Exhibits in a real headless Chromium (Debian's), every non-file request aborted.

The browser's own time zone is America/New_York: every time the page shows must still be
the local time of the place (Europe/Brussels in these journeys).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader

from routetrace import schema
from routetrace.maps.static import open_exhibit, render_static
from routetrace.maps.timeline import build_timeline_map
from routetrace.samples.demo_tables import SRC_A, SRC_B, SRC_S, demo_tables
from routetrace.testing import make_fixes

pytestmark = [
    pytest.mark.browser, pytest.mark.allow_loopback,
    pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("ROUTETRACE_CHROMIUM"),
                       reason="Debian's chromium is not installed (.ci/install installs it)"),
]

GOLDEN = Path(__file__).parent / "golden" / "exhibit_demo.png"
NY = "America/New_York"

XSS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=2">',
    '"><svg onload="window.__xss=3">',
    "javascript:window.__xss=4",
    "</script><script>window.__xss=5</script>",
    "' onmouseover='window.__xss=6' x='",
    '<iframe srcdoc="<script>parent.__xss=7</script>"></iframe>',
    "{{7*7}}${7*7}<%= 7*7 %>",
    "\u2028\u2029<!--",
]


def _write(tmp: Path, name: str, d: dict[str, pd.DataFrame], **kw: object) -> Path:
    html = build_timeline_map(d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"],
                              case_id=str(kw.pop("case_id", "C-1")), exhibit_no=str(kw.pop("exhibit_no", "EX-7")),
                              **kw)  # type: ignore[arg-type]
    p = tmp / name
    p.write_text(html, encoding="utf-8")
    return p


def _sample_tables() -> tuple[dict[str, pd.DataFrame], dict[str, list[tuple[float, float]]]]:
    """The sample case's observed tracks as canonical tables (stops from detect_stops when
    routes/ has it, else the scenario's observed truth stops)."""
    from routetrace.samples.scenario import build_scenario
    sc = build_scenario(seed=7)
    frames = []
    for k, (subj, tr) in enumerate(sorted(sc.tracks.items())):
        sid = f"{k + 1:x}" * 64
        frames.append(make_fixes(subject_id=subj, t_utc=tr["t_utc"], lat=tr["lat"], lon=tr["lon"],
                                 h_acc_m=tr["h_acc_m"], fix_kind=list(tr["fix_kind"].astype(str)), source_id=sid))
    fixes = schema.coerce(pd.concat(frames, ignore_index=True), "fixes")
    try:
        from routetrace.routes.stops import detect_stops  # type: ignore[import-not-found]
        _, stops = detect_stops(fixes)
    except ImportError:
        ts = sc.truth_stops[sc.truth_stops["observed"] != "no"].reset_index(drop=True)
        stops = schema.from_records([{
            "subject_id": r.subject_id, "stop_id": f"{r.subject_id}:{i}", "t_arrival": r.t_arrival,
            "t_departure": r.t_departure, "dwell": r.t_departure - r.t_arrival, "lat": r.lat, "lon": r.lon,
            "radius_m": 60.0, "n_fixes": 1, "sources": "", "observed_fraction": 1.0, "flags": ""}
            for i, r in enumerate(ts.itertuples())], "stops")
    places = schema.from_records([{
        "place_id": f"pl:{name}", "kind": "indicated", "name": name.replace("_", " "),
        "text": "safehouse" if "hotel" in name else "", "lat": ll[0], "lon": ll[1], "radius_m": 100.0,
        "source_id": "f" * 64, "record": name, "flags": ""} for name, ll in sorted(sc.places.items())], "places")
    sources = schema.from_records([{
        "source_id": f"{k + 1:x}" * 64, "path": f"sample/{subj}.dat", "size_bytes": 1, "format": "sample",
        "loader_version": "1", "time_basis": "UTC", "records_read": 1, "n_fixes": 1, "n_events": 0,
        "n_places": 0, "n_rejects": 0} for k, subj in enumerate(sorted(sc.tracks))], "sources")
    return {"fixes": fixes, "stops": stops, "gaps": None, "places": places, "sources": sources}, sc.roads  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "1761000000"
    try:
        tmp = tmp_path_factory.mktemp("exhibits")
        tables, roads = _sample_tables()
        sample = _write(tmp, "sample.html", tables, roads=roads, exhibit_no="S-1")
        demo = _write(tmp, "demo.html", demo_tables(600))
        hostile = " ".join(XSS)
        xss = _write(tmp, "xss.html", demo_tables(300, hostile=hostile), case_id=hostile, exhibit_no=hostile)
        render_static(demo, tmp / "demo.png", tmp / "demo.pdf", timezone_id=NY)
        render_static(demo, tmp / "demo2.png", None, timezone_id=NY)
        yield {"sample": sample, "demo": demo, "xss": xss, "png": tmp / "demo.png", "png2": tmp / "demo2.png",
               "pdf": tmp / "demo.pdf", "n_sample_stops": len(tables["stops"])}  # type: ignore[dict-item]
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def test_sample_exhibit_loads_offline_without_errors(built: dict[str, Path]) -> None:
    with open_exhibit(built["sample"], timezone_id=NY) as (page, rep):
        assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == NY
        n_stops = page.locator(".rt-stop").count()
        n_places = page.locator(".rt-place").count()
        layers = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        canvases = page.locator("canvas").count()
        transforms = page.evaluate("[...document.querySelectorAll('canvas')].map(c => c.style.transform)")
        legend = page.locator("#rt-legend").inner_text()
        footer = page.locator("#rt-footer").inner_text()
        slider = page.locator("#rt-time-slider").count()
        label = page.locator("#rt-time-label").inner_text()
    assert rep.blocked == [] and all(u.startswith("file:") for u in rep.requests), rep.requests
    assert rep.console_errors == [] and rep.page_errors == []
    assert n_stops == built["n_sample_stops"] > 5  # type: ignore[operator]
    assert n_places == 8
    assert canvases >= 1  # route lines are drawn
    # every canvas on whole pixels: a sub-pixel offset is printed snapped or not, by chance,
    # and the same exhibit then gave two different PDFs
    assert len(transforms) == canvases and all(
        re.fullmatch(r"translate3d\(-?\d+px, -?\d+px, 0px\)( scale\(1\))?", t) for t in transforms), transforms
    assert any(x.strip() == "Route: phone-A" for x in layers) and any("Stops: lorry-1" in x for x in layers)
    assert any("Source: phone-A.dat" in x for x in layers)
    assert "unobserved" in legend and "true scale" in legend
    assert "1" * 64 in footer and "S-1" in footer
    assert slider == 1 and "Europe/Brussels" in label


def test_slider_labels_are_the_places_local_time_not_the_browsers(built: dict[str, Path]) -> None:
    import json
    import re
    html = built["demo"].read_text()
    data = json.loads(re.search(r"routetraceExhibit\(map_\d+, (\{.*\})\);", html).group(1))  # type: ignore[union-attr]
    labels = data["ticks"]["label"]
    k_summer = next(i for i, x in enumerate(labels) if "CEST" in x)
    k_winter = len(labels) - 1
    with open_exhibit(built["demo"], timezone_id=NY) as (page, rep):
        def at(k: int) -> tuple[str, int]:
            page.evaluate("k => { const s = document.getElementById('rt-time-slider'); s.value = String(k);"
                          " s.dispatchEvent(new Event('input')); }", k)
            return page.locator("#rt-time-label").inner_text(), page.locator(".rt-stop").count()
        summer, stops0 = at(k_summer)
        winter, stops_end = at(k_winter)
        first, stops_first = at(0)
    assert rep.console_errors == [] and rep.page_errors == [] and rep.blocked == []
    assert summer == labels[k_summer] and "CEST (UTC+02:00)" in summer
    assert winter == labels[k_winter] and "CET (UTC+01:00)" in winter
    for text in (summer, winter, first):
        assert not re.search(r"\b(EDT|EST)\b", text) and "UTC-0" not in text
    assert stops_first == 0 and stops_end == 3 and stops0 <= stops_end  # stops appear on arrival


def test_xss_corpus_does_not_execute(built: dict[str, Path]) -> None:
    with open_exhibit(built["xss"], timezone_id=NY) as (page, rep):
        # open every popup and tooltip the evidence strings reach
        popup = page.evaluate("""() => {
            const map = window[Object.keys(window).find(k => /^map_\\d+$/.test(k))];
            const texts = [];
            map.eachLayer(l => {
                if (l.getTooltip && l.getTooltip()) { l.openTooltip(); }
                if (l.getPopup && l.getPopup()) { l.openPopup(); texts.push(l.getPopup().getElement().innerText); }
            });
            return texts; }""")
        layers = " ".join(page.locator(".leaflet-control-layers-overlays label").all_inner_texts())
        title = page.locator("#rt-title").inner_text()
        injected = page.evaluate("document.querySelectorAll('[onerror],[onload],[onmouseover],iframe,svg[onload]').length")
        flag = page.evaluate("window.__xss === undefined ? null : window.__xss")
        page_title = page.title()
    assert flag is None and rep.dialogs == []
    assert injected == 0
    assert rep.page_errors == [] and rep.console_errors == []
    assert rep.blocked == [] and all(u.startswith("file:") for u in rep.requests)  # no img src=x fetched
    # the hostile text is shown literally, as text
    assert XSS[0] in title and XSS[1] in layers and any(XSS[2] in p for p in popup)
    assert XSS[0] in page_title


def _small(p: Path) -> Image.Image:
    im = Image.open(p).convert("RGB")
    return im.resize((im.width // 4, im.height // 4), Image.Resampling.BOX)


def test_png_is_deterministic_non_blank_and_matches_golden(built: dict[str, Path]) -> None:
    a, b = Image.open(built["png"]).convert("RGB"), Image.open(built["png2"]).convert("RGB")
    assert a.size == b.size and ImageChops.difference(a, b).getbbox() is None  # identical pixels
    arr = np.asarray(a)
    assert arr.std() > 10 and len(np.unique(arr.reshape(-1, 3), axis=0)) > 100  # not blank
    if os.environ.get("ROUTETRACE_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        _small(built["png"]).save(GOLDEN, optimize=True)
    gold = Image.open(GOLDEN).convert("RGB")
    cur = _small(built["png"])
    assert cur.size == gold.size
    diff = np.abs(np.asarray(cur, dtype=int) - np.asarray(gold, dtype=int))
    assert diff.mean() < 3.0 and (diff.max(axis=2) > 48).mean() < 0.02, (diff.mean(), (diff.max(axis=2) > 48).mean())


def test_pdf_pages_exhibit_number_and_hashes(built: dict[str, Path]) -> None:
    reader = PdfReader(built["pdf"])
    assert len(reader.pages) >= 2
    box = reader.pages[0].mediabox
    assert abs(float(box.width) - 842) < 2 and abs(float(box.height) - 595) < 2  # A4 landscape
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(built["pdf"]), "-"], check=True,
                              capture_output=True, text=True).stdout
    else:
        text = "\n".join(p.extract_text() for p in reader.pages)
    text = " ".join(text.split())
    assert "Exhibit EX-7" in text and "Chronology" in text
    for sha in (SRC_A, SRC_B, SRC_S):
        assert sha in text
    assert "CEST (UTC+02:00)" in text and "CET (UTC+01:00)" in text
    assert "2025-10-20 22:40:00 UTC" in text
    assert reader.metadata is not None and str(reader.metadata.get("/CreationDate", "")).startswith("D:20251020")


@pytest.mark.realdata
def test_real_gpx_exhibit_shows_croatian_local_time(realdata_dir: Path, tmp_path: Path) -> None:
    from routetrace.loaders import load
    from routetrace.testing import hash_tree
    src = realdata_dir / "gpx" / "gpxpy_around-visnjan-with-car.gpx"
    before = hash_tree(src)
    res = load(src, subject_id="car")
    html = build_timeline_map(res.fixes, sources=res.source, case_id="R", exhibit_no="R-1")
    p = tmp_path / "real.html"
    p.write_text(html, encoding="utf-8")
    with open_exhibit(p, timezone_id=NY) as (page, rep):
        label = page.locator("#rt-time-label").inner_text()
        footer = page.locator("#rt-footer").inner_text()
    assert rep.blocked == [] and rep.console_errors == [] and rep.page_errors == []
    assert label.endswith("CET (UTC+01:00), Europe/Zagreb") and label.startswith("2020-12-18")
    assert res.source["source_id"].iloc[0] in footer
    assert hash_tree(src) == before


def test_offline_tiles_are_inlined_and_drawn(tmp_path: Path) -> None:
    import sqlite3
    from io import BytesIO

    from routetrace.maps.basemap import load_mbtiles
    mb = tmp_path / "t.mbtiles"
    con = sqlite3.connect(mb)
    con.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob)")
    buf = BytesIO()
    Image.new("RGB", (256, 256), (180, 210, 180)).save(buf, "PNG")
    for z in range(8, 13):
        x0, x1 = int((3.5 + 180) / 360 * 2**z), int((3.8 + 180) / 360 * 2**z)
        for x in range(x0, x1 + 1):
            for ty in range(int(2**z * 0.65), int(2**z * 0.68) + 1):  # TMS rows count from the south
                con.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, ty, buf.getvalue()))
    con.commit()
    con.close()
    d = demo_tables(300)
    tiles = load_mbtiles(mb, (50.9, 3.55, 51.06, 3.76))
    p = _write(tmp_path, "tiles.html", d, tiles=tiles)
    with open_exhibit(p, timezone_id=NY) as (page, rep):
        srcs = page.evaluate("[...document.querySelectorAll('.leaflet-tile-pane img')].map(i => i.src.slice(0, 22))")
    assert rep.blocked == [] and rep.console_errors == [] and rep.page_errors == []
    assert srcs and set(srcs) <= {"data:image/png;base64,", ""} and "data:image/png;base64," in srcs


def test_make_exhibit_full_set_with_static_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.maps.exhibit import EXHIBIT_FILES, make_exhibit
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    d = demo_tables(300)
    kw = dict(stops=d["stops"], gaps=d["gaps"], places=d["places"], sources=d["sources"], case_id="C-1",
              exhibit_no="7", timezone_id=NY)
    h1 = make_exhibit(d["fixes"], out_dir=tmp_path / "a", **kw)  # type: ignore[arg-type]
    h2 = make_exhibit(d["fixes"], out_dir=tmp_path / "b", **kw)  # type: ignore[arg-type]
    assert set(h1) == set(EXHIBIT_FILES)
    assert h1 == h2  # PNGs and PDF included: same inputs, same bytes (same machine)
    chrono = np.asarray(Image.open(tmp_path / "a" / "chronology.png").convert("L"))
    assert chrono.shape[0] > 100 and chrono.std() > 20
