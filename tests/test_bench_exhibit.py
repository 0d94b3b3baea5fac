"""bench/exhibit.py: the invented journey, and the check that a page really drew its map."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmods import load_bench

from routetrace.geodesy import haversine_m

E = load_bench("exhibit")
NO_CHROMIUM = shutil.which("chromium") is None and not os.environ.get("ROUTETRACE_CHROMIUM")


def test_journey_is_a_multi_day_drive_between_towns_not_a_dense_loop() -> None:
    d = E.journey_tables(60_000)
    f = d["fixes"]
    assert len(f) == 60_000 and f["subject_id"].nunique() == 1
    assert f["t_utc"].max() - f["t_utc"].min() > np.timedelta64(36, "h")
    assert f["lat"].between(48.5, 52.6).all() and f["lon"].between(1.5, 6.0).all()
    step = haversine_m(f["lat"].to_numpy()[:-1], f["lon"].to_numpy()[:-1], f["lat"].to_numpy()[1:],
                       f["lon"].to_numpy()[1:])
    dt = np.diff(f["t_utc"].to_numpy()).astype("timedelta64[ms]").astype(float) / 1e3
    moving = step[dt == 1.0]
    assert 15 < np.median(moving) < 35  # 1 Hz at road speeds: metres apart, not centimetres
    extent = haversine_m(f["lat"].min(), f["lon"].min(), f["lat"].max(), f["lon"].max())
    assert extent > 100_000
    assert len(d["stops"]) >= 4 and (d["stops"]["dwell"] > np.timedelta64(8, "h")).any()  # a night
    assert E.journey_tables(400_000)["fixes"]["subject_id"].nunique() == 2


def _probe(**kw: Any) -> dict[str, Any]:
    base = {"maps": 1, "polylines": 1, "circle_markers": 2, "marker_icons": 0, "svg_paths": 3, "canvas_px": 0,
            "cluster_members": 0, "route_dist_m": [3.0, 10.0], "stop_dist_m": [0.0, 1.0]}
    return base | kw


def test_drawn_verdict_requires_every_expected_part() -> None:
    expect = E.Expect(samples=[[50.0, 4.0], [50.1, 4.1]], stops=[[50.0, 4.0], [50.1, 4.1]])
    assert E.drawn_verdict(_probe(), expect) == (True, "1 lines, 2/2 stops")
    assert E.drawn_verdict(_probe(maps=0), expect)[0] is False
    assert E.drawn_verdict(_probe(svg_paths=0), expect) == (False, "1 lines, 2/2 stops, nothing painted")
    assert E.drawn_verdict(_probe(route_dist_m=[3.0, -1.0]), expect)[0] is False  # no line near a sample
    assert E.drawn_verdict(_probe(route_dist_m=[3.0, 5000.0]), expect)[0] is False
    assert E.drawn_verdict(_probe(stop_dist_m=[0.0, 80.0]), expect)[0] is False
    cluster = E.Expect(cluster_members=10)
    assert E.drawn_verdict(_probe(cluster_members=10, marker_icons=2), cluster)[0] is True
    assert E.drawn_verdict(_probe(cluster_members=9, marker_icons=2), cluster)[0] is False
    assert E.drawn_verdict(_probe(cluster_members=10, marker_icons=0), cluster)[0] is False


@pytest.fixture(scope="module")
def pw() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.mark.browser
@pytest.mark.allow_loopback
@pytest.mark.skipif(NO_CHROMIUM, reason="Debian's chromium is not installed (.ci/install installs it)")
def test_a_page_whose_script_silently_did_not_run_is_not_drawn(pw: Any, tmp_path: Path) -> None:
    d = E.journey_tables(8_000)
    html = E.folium_simplified_html(d)
    expect = E.expect_for(d, route=True, stops=True, cluster=False)
    good = tmp_path / "good.html"
    good.write_text(html, encoding="utf-8")
    ok = E.load_and_check(pw, good, ready=False, repeat=1, timeout_s=60, expect=expect)
    assert ok.drawn and ok.ms is not None and ok.ms > 0
    # the map's own script does not run and says nothing (as a script past V8's string limit):
    # the page still "loads", but nothing is drawn
    i = html.rindex("<script>")
    broken = tmp_path / "broken.html"
    broken.write_text(html[:i] + '<script type="text/x-never-run">' + html[i + len("<script>"):], encoding="utf-8")
    bad = E.load_and_check(pw, broken, ready=False, repeat=1, timeout_s=60, expect=expect)
    assert (bad.drawn, bad.ms, bad.seen) == (False, None, "no Leaflet map in the page")
    # a map whose route line is built but never added to the map is not drawn either
    j = html.index(".addTo(map_", html.index("var poly_line_"))
    no_route = tmp_path / "no_route.html"
    no_route.write_text(html[:j] + html[html.index(")", j) + 1:], encoding="utf-8")
    nr = E.load_and_check(pw, no_route, ready=False, repeat=1, timeout_s=60, expect=expect)
    assert nr.drawn is False and "route samples off every drawn line" in nr.seen
