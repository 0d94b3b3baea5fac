"""Exhibit benchmark: HTML size, build, write and Chromium load-until-drawn, routetrace vs folium.

The journey (:func:`journey_tables`): vehicles driving between towns of Belgium, France and
the Netherlands (Paris, Lille, Brussels, Antwerp, Rotterdam, Amsterdam, ...) on curved
road-like legs, 1 Hz while driving at 8-33 m/s (slower near towns), one fix every 5 min
while parked, breaks of 15 min to 2 h and nights of 9-11 h, about 10 h of driving a day,
a 1-2 h silence (device off) every few days, 5 m GPS noise. One vehicle per 300,000 fixes:
1e5 fixes is one vehicle over about three days, 1e6 four vehicles over about nine days.

Pages, each built from the same tables:

* routetrace: :func:`routetrace.maps.timeline.build_timeline_map` (per-zoom Douglas-Peucker
  lines, exact stops, slider, footer, chronology);
* folium, simplified: what a competent user writes: the fixes projected to ETRS89-LAEA
  (EPSG:3035), ``shapely.simplify`` at routetrace's finest Douglas-Peucker tolerance
  (the smallest non-zero ``LEVEL_TOLS_M``, 4 m), one ``PolyLine`` per vehicle and a
  ``CircleMarker`` per stop;
* folium, every fix: one ``PolyLine`` of every fix per vehicle and a ``CircleMarker`` per stop;
* folium, FastMarkerCluster: ``folium.plugins.FastMarkerCluster`` of every fix.

Leaflet (and Leaflet.markercluster 1.1.0, the version folium 0.20 links) are inlined, so
every page loads from a file with every network request aborted. Leaflet.markercluster is
not vendored in the project; get it once with
``mkdir -p /tmp/peers-js && cd /tmp/peers-js && npm pack leaflet.markercluster@1.1.0 &&
tar xzf leaflet.markercluster-1.1.0.tgz`` (``--markercluster DIR``); without it that row
says so.

Timed, the same steps for every tool: build (tables to HTML text), write (to a file), load
(navigation to the first frame after the map is built: ``load`` + two animation frames;
routetrace: after ``routetraceReady``; in Debian's headless Chromium, one warm-up run
discarded, the median of ``--repeat`` runs). After every load the page is checked for a
drawn map (:data:`PROBE_JS`, :func:`drawn_verdict`): a Leaflet map exists; every route
sample (40 fixes per vehicle, evenly spread) lies within 1.5 km of a polyline Leaflet has
projected into the view (routetrace's coarsest level is 1 km); every stop has a circle
marker or marker within 50 m; the canvas or SVG has painted pixels; a marker cluster holds
every fix and shows cluster icons. A page that is not drawn (a script that silently did not
run, e.g. past V8's ~537 M character string limit) is reported "drawn: no" and not timed.

    .venv/bin/python bench/exhibit.py [--sizes 100000 1000000] [--repeat 3]

Writes bench/results/exhibit.txt.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import folium
import numpy as np
import pandas as pd
import pyproj
import shapely
from branca.element import Element, MacroElement
from folium.plugins import FastMarkerCluster
from jinja2 import Template

from routetrace import schema
from routetrace.maps.static import CHROMIUM_ARGS, chromium_path
from routetrace.maps.timeline import (
    LEVEL_TOLS_M,
    _deterministic_ids,
    _InlineAssets,
    build_timeline_map,
    derive_gaps,
)
from routetrace.testing import make_fixes

RESULTS = Path(__file__).parent / "results" / "exhibit.txt"
#: The code these figures measure (written on the results' provenance line).
MEASURES = ("bench/exhibit.py", "maps/")
#: routetrace's finest non-zero Douglas-Peucker tolerance: the folium peer simplifies at it.
FINEST_TOL_M = min(t for t in LEVEL_TOLS_M if t > 0)
MARKERCLUSTER_DIR = Path("/tmp/peers-js/package/dist")
#: A route sample counts as drawn within this distance of a rendered polyline.
ROUTE_TOL_M = 1500.0
#: A stop counts as drawn with a circle marker or marker within this distance.
STOP_TOL_M = 50.0
FIXES_PER_VEHICLE = 300_000

TOWNS: tuple[tuple[str, float, float], ...] = (
    ("Paris", 48.857, 2.352), ("Reims", 49.258, 4.032), ("Amiens", 49.894, 2.296),
    ("Lille", 50.629, 3.057), ("Calais", 50.951, 1.858), ("Brugge", 51.209, 3.225),
    ("Gent", 51.054, 3.717), ("Brussel", 50.850, 4.352), ("Antwerpen", 51.219, 4.402),
    ("Liège", 50.633, 5.567), ("Namur", 50.467, 4.867), ("Charleroi", 50.411, 4.444),
    ("Eindhoven", 51.441, 5.470), ("Breda", 51.589, 4.776), ("Rotterdam", 51.924, 4.478),
    ("Den Haag", 52.070, 4.300), ("Utrecht", 52.091, 5.122), ("Amsterdam", 52.370, 4.895),
)
_LAEA = pyproj.Transformer.from_crs(4326, 3035, always_xy=True)


# ---------------------------------------------------------------- the journey

def _leg_xy(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A curved road-like path from ``a`` to ``b`` (metres), one vertex about every 20 m."""
    d = b - a
    length = float(np.hypot(*d))
    n = max(50, int(length / 20))
    u = np.linspace(0.0, 1.0, n)
    normal = np.array([-d[1], d[0]]) / length
    off = np.zeros(n)
    for j in range(1, 5):  # large bends, zero at both ends
        off += rng.normal(0, 0.05 * length / j) * np.sin(j * np.pi * u)
    k = max(2, int(length / 3000))  # small bends every few km
    off += rng.normal(0, 120.0) * np.sin(k * np.pi * u + rng.uniform(0, np.pi)) * np.sin(np.pi * u)
    return a + u[:, None] * d + off[:, None] * normal


def _drive(xy: np.ndarray, t0: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """1 Hz times and positions along ``xy``: cruise 24-33 m/s, slower within 3 km of a town."""
    seg = np.hypot(*np.diff(xy, axis=0).T)
    s = np.r_[0.0, np.cumsum(seg)]
    total = s[-1]
    cruise = rng.uniform(24, 33)
    v = cruise * np.clip(np.minimum(s, total - s) / 3000.0, 8.0 / cruise, 1.0)
    tt = np.r_[0.0, np.cumsum(seg / np.maximum(0.5 * (v[1:] + v[:-1]), 1.0))]
    t = np.arange(0.0, tt[-1], 1.0)
    at = np.interp(t, tt, s)
    return t0 + t, np.c_[np.interp(at, s, xy[:, 0]), np.interp(at, s, xy[:, 1])]


def _next_town(here: int, xy: np.ndarray, rng: np.random.Generator) -> int:
    dist = np.hypot(*(xy - xy[here]).T)
    near = np.flatnonzero((dist > 30_000) & (dist < 320_000))
    return int(rng.choice(near))


@dataclass
class _Track:
    t: list[np.ndarray] = field(default_factory=list)
    xy: list[np.ndarray] = field(default_factory=list)
    stops: list[tuple[float, float, float, float, int]] = field(default_factory=list)
    count: int = 0

    def add(self, t: np.ndarray, xy: np.ndarray) -> None:
        self.t.append(t)
        self.xy.append(xy)
        self.count += len(t)


def _vehicle(target: int, rng: np.random.Generator, t_start: float) -> _Track:
    """One vehicle's days: drive town to town, breaks by day, nights parked."""
    town_xy = np.c_[_LAEA.transform([t[2] for t in TOWNS], [t[1] for t in TOWNS])]
    here = int(rng.integers(len(TOWNS)))
    pos = town_xy[here] + rng.normal(0, 500, 2)
    now, day_end = t_start, t_start + 10 * 3600
    tr = _Track()
    while tr.count < target:
        there = _next_town(here, town_xy, rng)
        dest = town_xy[there] + rng.normal(0, 1500, 2)
        t, xy = _drive(_leg_xy(pos, dest, rng), now, rng)
        tr.add(t, xy)
        now, pos, here = float(t[-1]) + 1.0, xy[-1], there
        if now > day_end:  # the night: parked until 05:00-06:30 UTC, at least 8 h
            morning = (np.floor(now / 86400) + 1) * 86400 + 5 * 3600 + rng.uniform(0, 5400)
            dep = max(morning, now + 8 * 3600)
            day_end = dep + rng.uniform(9, 10.5) * 3600
        else:
            dep = now + rng.uniform(15 * 60, 2 * 3600)
        tp = np.arange(now, dep, 300.0)
        tr.add(tp, np.broadcast_to(pos, (len(tp), 2)).copy())
        tr.stops.append((now, float(tp[-1]), pos[0], pos[1], len(tp)))
        now = dep
    return tr


def _silences(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep-mask: a 1-2 h silence (device off) about every three days."""
    keep = np.ones(len(t), dtype=bool)
    for _ in range(max(1, int((t[-1] - t[0]) / (3 * 86400)))):
        a = rng.uniform(t[0], t[-1])
        keep &= ~((t >= a) & (t < a + rng.uniform(3600, 7200)))
    return keep


def _utc(t_s: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(np.round(t_s * 1e3).astype("int64"), unit="ms", utc=True)


def journey_tables(n_fixes: int, *, seed: int = 1, noise_m: float = 5.0) -> dict[str, pd.DataFrame]:
    """Canonical ``fixes, stops, gaps, places, sources`` of an invented multi-day journey.

    Example
    -------
    >>> d = journey_tables(20_000)
    >>> len(d["fixes"]), d["fixes"]["subject_id"].nunique()
    (20000, 1)
    """
    rng = np.random.default_rng(seed)
    n_veh = max(1, int(np.ceil(n_fixes / FIXES_PER_VEHICLE)))
    targets = np.full(n_veh, n_fixes // n_veh)
    targets[: n_fixes - targets.sum()] += 1
    t0 = pd.Timestamp("2025-10-20T05:00Z").value / 1e9
    fixes, stops, sources = [], [], []
    for v, target in enumerate(targets.tolist()):
        name, src = f"vehicle-{v + 1}", f"{v + 1:x}".rjust(64, "e")
        tr = _vehicle(int(target * 1.1) + 8000, rng, t0 + rng.uniform(0, 3600))
        t, xy = np.concatenate(tr.t), np.concatenate(tr.xy)
        keep = _silences(t, rng)
        t, xy = t[keep][:target], xy[keep][:target] + rng.normal(0, noise_m, (target, 2))
        lon, lat = _LAEA.transform(xy[:, 0], xy[:, 1], direction="INVERSE")
        f = make_fixes(subject_id=name, t_utc=_utc(t), lat=lat, lon=lon, h_acc_m=noise_m, source_id=src)
        fixes.append(f)
        for k, (ta, td, x, y, nf) in enumerate(tr.stops):
            if ta >= t[-1]:
                break
            slon, slat = _LAEA.transform(x, y, direction="INVERSE")
            a, d = _utc(np.array([ta, min(td, t[-1])]))
            stops.append({"subject_id": name, "stop_id": f"V{v + 1}:{k + 1}", "t_arrival": a, "t_departure": d,
                          "dwell": d - a, "lat": slat, "lon": slon, "radius_m": 25.0, "n_fixes": nf,
                          "sources": src, "observed_fraction": 1.0, "flags": ""})
        sources.append({"source_id": src, "path": f"evidence/{name}/track.csv", "size_bytes": 1000,
                        "format": "fleet-csv", "loader_version": "1", "time_basis": "GPS time, UTC",
                        "records_read": len(f), "n_fixes": len(f), "n_events": 0, "n_places": 0,
                        "n_rejects": 0})
    fx = schema.coerce(pd.concat(fixes, ignore_index=True), "fixes")
    st = schema.from_records(stops, "stops")
    st.attrs["params"] = {"radius_m": 100.0, "min_dwell": "5min", "max_gap": "30min"}
    return {"fixes": fx, "stops": st, "gaps": derive_gaps(fx), "places": schema.empty("places"),
            "sources": schema.from_records(sources, "sources")}


# ---------------------------------------------------------------- the pages

class _ClusterAssets(MacroElement):
    """Leaflet.markercluster (JS and CSS) inlined into <head>, after Leaflet."""

    _template = Template("""
{% macro header(this, kwargs) %}
<style>{{ this.css }}</style>
<script>{{ this.js }}</script>
{% endmacro %}
""")

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self._name = "ClusterAssets"
        self.css = "\n".join((folder / n).read_text(encoding="utf-8")
                             for n in ("MarkerCluster.css", "MarkerCluster.Default.css"))
        self.js = (folder / "leaflet.markercluster.js").read_text(encoding="utf-8").replace("</script", "<\\/script")


def _folium_map(f: pd.DataFrame) -> folium.Map:
    m = folium.Map(location=[float(f["lat"].mean()), float(f["lon"].mean())], zoom_start=7, tiles=None)
    m.default_js, m.default_css = [], []  # Leaflet is inlined (no CDN offline)
    m.options["max_zoom"] = 19  # what OpenStreetMap tiles would set (the map has no tiles offline)
    m.fit_bounds([[float(f["lat"].min()), float(f["lon"].min())], [float(f["lat"].max()), float(f["lon"].max())]])
    return m


def _render(m: folium.Map, extra: Sequence[Element] = ()) -> str:
    m.add_child(_InlineAssets())
    for e in extra:
        m.add_child(e)
    _deterministic_ids(m.get_root())
    return m.get_root().render()


def _stop_markers(m: folium.Map, stops: pd.DataFrame) -> None:
    for r in stops.itertuples():
        folium.CircleMarker([r.lat, r.lon], radius=6, tooltip=f"stop {r.stop_id}").add_to(m)


def folium_simplified_html(d: dict[str, pd.DataFrame]) -> str:
    """folium: per vehicle a PolyLine simplified at :data:`FINEST_TOL_M` in EPSG:3035; stop markers."""
    f = d["fixes"].sort_values(["subject_id", "t_utc"])
    m = _folium_map(f)
    for _, g in f.groupby("subject_id"):
        x, y = _LAEA.transform(g["lon"].to_numpy(float), g["lat"].to_numpy(float))
        line = shapely.simplify(shapely.linestrings(np.c_[x, y]), FINEST_TOL_M, preserve_topology=False)
        cx, cy = shapely.get_coordinates(line).T
        lon, lat = _LAEA.transform(cx, cy, direction="INVERSE")
        folium.PolyLine(np.c_[lat, lon].tolist(), weight=3).add_to(m)
    _stop_markers(m, d["stops"])
    return _render(m)


def folium_every_fix_html(d: dict[str, pd.DataFrame]) -> str:
    """folium: per vehicle a PolyLine of every fix; stop markers."""
    f = d["fixes"].sort_values(["subject_id", "t_utc"])
    m = _folium_map(f)
    for _, g in f.groupby("subject_id"):
        folium.PolyLine(np.c_[g["lat"], g["lon"]].tolist(), weight=3).add_to(m)
    _stop_markers(m, d["stops"])
    return _render(m)


_PLAIN_MARKER = """function (row) { return L.marker(new L.LatLng(row[0], row[1])); }"""


def folium_cluster_html(d: dict[str, pd.DataFrame], *, markercluster: Path) -> str:
    """folium: ``FastMarkerCluster`` of every fix (Leaflet.markercluster inlined from ``markercluster``)."""
    f = d["fixes"].sort_values(["subject_id", "t_utc"])
    m = _folium_map(f)
    # folium's default callback draws L.AwesomeMarkers icons (a CDN plugin); Leaflet's own marker instead
    fmc = FastMarkerCluster(np.c_[f["lat"], f["lon"]].tolist(), callback=_PLAIN_MARKER)
    fmc.default_js, fmc.default_css = [], []
    fmc.add_to(m)
    return _render(m, [_ClusterAssets(markercluster)])


def routetrace_html(d: dict[str, pd.DataFrame]) -> str:
    return build_timeline_map(d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"],
                              case_id="BENCH", exhibit_no="1")


# ---------------------------------------------------------------- was it drawn?

#: Runs in the page after load: what Leaflet drew. ``arg``: {samples: [[lat, lon]...],
#: stops: [[lat, lon]...]}. Distances in metres (equirectangular: fine at these scales).
PROBE_JS = """(arg) => {
  const out = {maps: 0, polylines: 0, circle_markers: 0, marker_icons: 0, svg_paths: 0,
               canvas_px: 0, cluster_members: 0, route_dist_m: [], stop_dist_m: []};
  out.marker_icons = document.querySelectorAll('.leaflet-marker-icon').length;
  out.svg_paths = Array.from(document.querySelectorAll('.leaflet-container svg path'))
    .filter(p => (p.getAttribute('d') || '').length > 4).length;
  for (const c of document.querySelectorAll('.leaflet-container canvas')) {
    if (!c.width || !c.height) continue;
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i]) out.canvas_px++;
  }
  if (!window.L || !L.Map) return out;
  const lines = [], points = [];
  for (const k of Object.keys(window)) {
    let v; try { v = window[k]; } catch (e) { continue; }
    if (!(v instanceof L.Map)) continue;
    out.maps++;
    v.eachLayer(l => {
      if (L.MarkerClusterGroup && l instanceof L.MarkerClusterGroup) { out.cluster_members += l.getLayers().length; }
      else if (l instanceof L.CircleMarker) { if (!(l instanceof L.Circle) && l._map && l._point) { out.circle_markers++; points.push(l.getLatLng()); } }
      else if (l instanceof L.Marker) { if (l._icon) points.push(l.getLatLng()); }
      else if (l instanceof L.Polyline && !(l instanceof L.Polygon)) {
        if (l._parts && l._parts.length) { out.polylines++; let ll = l.getLatLngs(); if (!L.LineUtil.isFlat(ll)) ll = ll.flat(); lines.push(ll); }
      }
    });
  }
  const M = 111320;
  const dist = (p, a, b) => {
    const c = Math.cos(p[0] * Math.PI / 180);
    const ax = (a.lng - p[1]) * c * M, ay = (a.lat - p[0]) * M, bx = (b.lng - p[1]) * c * M, by = (b.lat - p[0]) * M;
    const dx = bx - ax, dy = by - ay, L2 = dx * dx + dy * dy;
    const t = L2 ? Math.max(0, Math.min(1, -(ax * dx + ay * dy) / L2)) : 0;
    return Math.hypot(ax + t * dx, ay + t * dy);
  };
  for (const p of arg.samples) {
    let best = Infinity;
    for (const ll of lines) for (let i = 0; i + 1 < ll.length; i++) { const d = dist(p, ll[i], ll[i + 1]); if (d < best) best = d; }
    out.route_dist_m.push(best === Infinity ? -1 : best);
  }
  for (const p of arg.stops) {
    let best = Infinity;
    for (const q of points) { const d = dist(p, q, q); if (d < best) best = d; }
    out.stop_dist_m.push(best === Infinity ? -1 : best);
  }
  return out;
}"""


@dataclass(frozen=True)
class Expect:
    """What a drawn page shows: route samples ([lat, lon]), stop positions, cluster size."""

    samples: list[list[float]] = field(default_factory=list)
    stops: list[list[float]] = field(default_factory=list)
    cluster_members: int | None = None


def expect_for(d: dict[str, pd.DataFrame], *, route: bool, stops: bool, cluster: bool,
               n_samples: int = 40) -> Expect:
    """The :class:`Expect` of a page drawing ``d``'s route, stops and/or a cluster of every fix."""
    samples: list[list[float]] = []
    if route:
        for _, g in d["fixes"].sort_values(["subject_id", "t_utc"]).groupby("subject_id"):
            i = np.unique(np.linspace(0, len(g) - 1, n_samples).round().astype(int))
            samples += np.c_[g["lat"].to_numpy()[i], g["lon"].to_numpy()[i]].tolist()
    st = np.c_[d["stops"]["lat"], d["stops"]["lon"]].tolist() if stops else []
    return Expect(samples=samples, stops=st, cluster_members=len(d["fixes"]) if cluster else None)


def drawn_verdict(probe: dict[str, Any] | None, expect: Expect) -> tuple[bool, str]:
    """(drawn?, what was seen) from :data:`PROBE_JS`'s answer and what the page should show.

    Example
    -------
    >>> drawn_verdict({"maps": 0, "canvas_px": 0, "svg_paths": 0, "marker_icons": 0}, Expect())
    (False, 'no Leaflet map in the page')
    """
    if not probe or not probe.get("maps"):
        return False, "no Leaflet map in the page"
    bad: list[str] = []
    seen = [f"{probe['polylines']} lines"]
    if probe["canvas_px"] + probe["svg_paths"] + probe["marker_icons"] == 0:
        bad.append("nothing painted")
    rd = probe["route_dist_m"]
    off = sum(1 for v in rd if v < 0 or v > ROUTE_TOL_M)
    if expect.samples and (off or len(rd) != len(expect.samples)):
        bad.append(f"{off} of {len(expect.samples)} route samples off every drawn line")
    sd = probe["stop_dist_m"]
    ok = sum(1 for v in sd if 0 <= v <= STOP_TOL_M)
    if expect.stops:
        seen.append(f"{ok}/{len(expect.stops)} stops")
        if ok != len(expect.stops):
            bad.append(f"{len(expect.stops) - ok} stops not drawn")
    if expect.cluster_members is not None:
        seen.append(f"cluster of {probe['cluster_members']:,}, {probe['marker_icons']} icons")
        if probe["cluster_members"] != expect.cluster_members or not probe["marker_icons"]:
            bad.append(f"cluster holds {probe['cluster_members']:,} of {expect.cluster_members:,} fixes")
    return not bad, ", ".join(seen + bad)


@dataclass
class Load:
    """One page's load: median ms (None when not drawn or failed), drawn, what was seen."""

    ms: float | None
    drawn: bool
    seen: str


def _abort_network(route: Any) -> None:
    if route.request.url.startswith(("file:", "data:")):
        route.continue_()
    else:
        route.abort()


def _one_load(browser: Any, path: Path, *, ready: bool, timeout_s: float, expect: Expect,
              errors: list[str]) -> tuple[float, bool, str]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)[:120]))
        page.route("**/*", _abort_network)
        t = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load", timeout=timeout_s * 1000)
        if ready:
            page.wait_for_function("window.routetraceReady === true", timeout=timeout_s * 1000)
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        ms = (time.perf_counter() - t) * 1000
        drawn, seen = drawn_verdict(page.evaluate(PROBE_JS, {"samples": expect.samples, "stops": expect.stops}),
                                    expect)
        return ms, drawn, seen
    finally:
        ctx.close()


def load_and_check(pw: Any, path: Path, *, ready: bool, repeat: int, timeout_s: float, expect: Expect) -> Load:
    """Load ``path`` ``repeat`` + 1 times (first a warm-up); median ms of drawn loads.

    Any page error, timeout or undrawn load makes the page "not drawn" (``ms`` None).
    """
    browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    times: list[float] = []
    errors: list[str] = []
    seen = ""
    try:
        for k in range(repeat + 1):
            try:
                ms, drawn, seen = _one_load(browser, path, ready=ready, timeout_s=timeout_s, expect=expect,
                                            errors=errors)
            except Exception as exc:  # a timeout or a crashed page is a result here
                return Load(None, False, f"failed: {type(exc).__name__}")
            if not drawn:
                return Load(None, False, seen)
            if k:  # the first run is a warm-up
                times.append(ms)
    finally:
        browser.close()
    if errors:
        return Load(None, False, f"page errors: {errors[:2]}")
    return Load(statistics.median(times), True, seen)


# ---------------------------------------------------------------- the run

@dataclass
class Row:
    n: int
    tool: str
    mb: float
    build_s: float
    write_s: float
    load: Load


Variant = tuple[str, Callable[[dict[str, pd.DataFrame]], str], bool, dict[str, bool]]


def _variants(markercluster: Path) -> list[Variant]:
    out: list[Variant] = [
        ("routetrace", routetrace_html, True, {"route": True, "stops": True, "cluster": False}),
        (f"folium PolyLine simplified ({FINEST_TOL_M:g} m) + stop markers", folium_simplified_html, False,
         {"route": True, "stops": True, "cluster": False}),
        ("folium PolyLine of every fix + stop markers", folium_every_fix_html, False,
         {"route": True, "stops": True, "cluster": False}),
    ]
    if (markercluster / "leaflet.markercluster.js").is_file():
        out.append(("folium FastMarkerCluster of every fix",
                    lambda d: folium_cluster_html(d, markercluster=markercluster), False,
                    {"route": False, "stops": False, "cluster": True}))
    return out


def run_size(pw: Any, n: int, tmp: Path, args: argparse.Namespace) -> list[Row]:
    d = journey_tables(n)
    rows = []
    for name, build, ready, what in _variants(args.markercluster):
        t = time.perf_counter()
        text = build(d)
        build_s = time.perf_counter() - t
        p = tmp / f"{n}-{len(rows)}.html"
        t = time.perf_counter()
        p.write_text(text, encoding="utf-8")
        write_s = time.perf_counter() - t
        del text
        load = load_and_check(pw, p, ready=ready, repeat=args.repeat, timeout_s=args.timeout,
                              expect=expect_for(d, **what))
        rows.append(Row(len(d["fixes"]), name, p.stat().st_size / 1e6, build_s, write_s, load))
        p.unlink()
        print(f"{n:>9,} {name:<52} {rows[-1].mb:8.2f} MB build {build_s:6.1f} s write {write_s:5.2f} s load "
              f"{'not drawn' if load.ms is None else f'{load.ms:8.0f} ms'}  [{load.seen}]", flush=True)
    return rows


def warm_up(markercluster: Path) -> dict[str, float]:
    """Build every page once on a small journey (imports, one-time tables); seconds of each."""
    d = journey_tables(5_000)
    out = {}
    for name, build, _, _ in _variants(markercluster):
        t = time.perf_counter()
        build(d)
        out[name] = time.perf_counter() - t
    return out


def table(rows: Sequence[Row], *, missing_cluster: bool) -> list[str]:
    """The results table: a page not drawn is marked failed and not timed."""
    out = ["| fixes | page | HTML MB | build s | write s | load ms | total s | drawn | seen in the page | "
           "total ÷ routetrace total |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |"]
    for r in rows:
        base = next((b for b in rows if b.n == r.n and b.tool == "routetrace"), None)
        if r.load.ms is None:
            out.append(f"| {r.n:,} | {r.tool} | {r.mb:.2f} | {r.build_s:.1f} | {r.write_s:.2f} | failed | failed | "
                       f"no | {r.load.seen} | |")
            continue
        total = r.build_s + r.write_s + r.load.ms / 1000
        ratio = ""
        if base is not None and base is not r and base.load.ms is not None:
            ratio = f"{total / (base.build_s + base.write_s + base.load.ms / 1000):.1f}x"
        out.append(f"| {r.n:,} | {r.tool} | {r.mb:.2f} | {r.build_s:.1f} | {r.write_s:.2f} | {r.load.ms:.0f} | "
                   f"{total:.1f} | yes | {r.load.seen} | {ratio} |")
    if missing_cluster:
        out.append("")
        out.append("folium FastMarkerCluster: not run (Leaflet.markercluster 1.1.0 not found; see the script's doc).")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per page load")
    ap.add_argument("--markercluster", type=Path, default=MARKERCLUSTER_DIR,
                    help="folder with leaflet.markercluster.js and its CSS (npm pack leaflet.markercluster@1.1.0)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).parent))
    from _provenance import command_line, provenance_line

    prov = provenance_line(command=command_line(), measures=MEASURES)
    cold = warm_up(args.markercluster)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        for n in args.sizes:
            rows += run_size(pw, n, Path(tmp), args)
    missing = not (args.markercluster / "leaflet.markercluster.js").is_file()
    lines = ["# exhibit benchmark (bench/exhibit.py)", prov, "",
             "Invented multi-day journey across Belgium, France and the Netherlands (1 Hz driving, 5 min parked,",
             "5 m GPS noise; one vehicle per 300,000 fixes); Debian headless Chromium, network aborted, offline file.",
             "total = build + write + load; load = navigation to the first frame after the map is built, median of",
             f"{args.repeat} after a warm-up; every load checked for a drawn map (route samples within "
             f"{ROUTE_TOL_M:g} m of a rendered line,",
             f"every stop marked within {STOP_TOL_M:g} m, painted pixels, cluster holding every fix); "
             "a page not drawn is failed, not timed.",
             "Build times follow one warm-up build of every page in the process (a 5,000-fix journey: imports, "
             "routetrace's gazetteer and time-zone tables); that first build took "
             + ", ".join(f"{k} {v:.1f} s" for k, v in cold.items()) + ".",
             "", *table(rows, missing_cluster=missing)]
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
