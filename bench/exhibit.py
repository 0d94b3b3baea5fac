"""Exhibit benchmark: HTML size and Chromium time-to-load, routetrace vs naive folium.

For each size (default 1e5 and 1e6 fixes of an invented journey with 5 m GPS noise):

* routetrace: :func:`routetrace.maps.timeline.build_timeline_map` (per-zoom Douglas-Peucker
  lines, exact stops and evidence points, slider, footer, chronology);
* naive A: folium, one ``PolyLine`` of every fix plus a ``CircleMarker`` per stop and per
  evidence point (the same markers routetrace draws);
* naive B: folium, ``PolyLine`` + a ``CircleMarker`` for every fix (what "plot the fixes"
  gives); built by folium up to ``--naive-b-max`` fixes (default 1e5); above that folium
  needs many minutes, so the page is "stamped": folium's markup for one marker repeated
  for every fix (same bytes folium would write, apart from element ids).

Both naive pages get Leaflet inlined (folium's CDN links would fail offline), so all pages
load from a file with every network request aborted. Time-to-load: from navigation to the
page's first frame after its map is built (``load`` + two animation frames; routetrace:
after ``routetraceReady``), in Debian's headless Chromium, one warm-up run discarded and
the median of ``--repeat`` runs reported.

    .venv/bin/python bench/exhibit.py [--sizes 100000 1000000] [--repeat 3]

Writes bench/results/exhibit.txt.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import folium
import numpy as np

from routetrace.maps.static import CHROMIUM_ARGS, chromium_path
from routetrace.maps.timeline import _deterministic_ids, _InlineAssets, build_timeline_map
from routetrace.samples.demo_tables import demo_tables

RESULTS = Path(__file__).parent / "results" / "exhibit.txt"
#: The code these figures measure (written on the results' provenance line).
MEASURES = ("bench/exhibit.py", "maps/")


def naive_html(d: dict, *, per_fix: bool) -> str:
    f = d["fixes"].sort_values(["subject_id", "t_utc"])
    m = folium.Map(location=[51.0, 3.7], zoom_start=10, tiles=None)
    m.default_js, m.default_css = [], []
    for _, g in f.groupby("subject_id"):
        folium.PolyLine(np.c_[g["lat"], g["lon"]].tolist(), weight=3).add_to(m)
    if per_fix:
        pts = f
    else:
        pts = f[f["fix_kind"] != "gps"]
        for r in d["stops"].itertuples():
            folium.CircleMarker([r.lat, r.lon], radius=8, tooltip=f"stop {r.stop_id}").add_to(m)
    for la, lo, t in zip(pts["lat"].to_numpy(), pts["lon"].to_numpy(), pts["t_utc"].astype(str), strict=True):
        folium.CircleMarker([la, lo], radius=3, tooltip=t).add_to(m)
    m.add_child(_InlineAssets())
    _deterministic_ids(m.get_root())
    return m.get_root().render()


def naive_b_stamped(d: dict) -> str:
    """Naive B at sizes where folium itself is impractical: the page folium writes for
    PolyLine + one CircleMarker, with that marker's markup repeated for every fix (own id,
    position and tooltip): the bytes folium would write, built in seconds instead of minutes."""
    f = d["fixes"].sort_values(["subject_id", "t_utc"])
    m = folium.Map(location=[51.0, 3.7], zoom_start=10, tiles=None)
    m.default_js, m.default_css = [], []
    for _, g in f.groupby("subject_id"):
        folium.PolyLine(np.c_[g["lat"], g["lon"]].tolist(), weight=3).add_to(m)
    folium.CircleMarker([11.111111, 22.222222], radius=3, tooltip="@@T@@").add_to(m)
    m.add_child(_InlineAssets())
    _deterministic_ids(m.get_root())
    html = m.get_root().render()
    a = html.index("            var circle_marker_")
    b = html.index("</script>", a)
    one = html[a:b]
    name = one.split("var ", 1)[1].split(" ", 1)[0]
    parts = [html[:a]]
    for k, (la, lo, t) in enumerate(zip(f["lat"].to_numpy(), f["lon"].to_numpy(), f["t_utc"].astype(str), strict=True)):
        parts.append(one.replace(name, f"circle_marker_{k:08x}").replace("11.111111", repr(float(la)))
                     .replace("22.222222", repr(float(lo))).replace("@@T@@", t))
    parts.append(html[b:])
    return "".join(parts)


def load_ms(pw, path: Path, *, ready: bool, repeat: int, timeout_s: float) -> float | None:
    """Median ms to a drawn page (None: did not finish within ``timeout_s`` or had errors)."""
    browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    times = []
    errors: list[str] = []
    try:
        for k in range(repeat + 1):
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)[:80]))
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
            t = time.perf_counter()
            try:
                page.goto(path.as_uri(), wait_until="load", timeout=timeout_s * 1000)
                if ready:
                    page.wait_for_function("window.routetraceReady === true", timeout=timeout_s * 1000)
                page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            except Exception as exc:  # a timeout is a result here, not a crash
                print(f"    {path.name}: {type(exc).__name__}", file=sys.stderr)
                ctx.close()
                return None
            ms = (time.perf_counter() - t) * 1000
            if k:  # first run is a warm-up
                times.append(ms)
            ctx.close()
    finally:
        browser.close()
    if errors:
        print(f"    {path.name}: page errors {errors[:2]}", file=sys.stderr)
        return None
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive-b-max", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per page load")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        for n in args.sizes:
            d = demo_tables(round((n - 200) / 0.9), noise_m=5.0)  # the demo drops 10 % (a gap)
            nf = len(d["fixes"])
            variants = []
            t = time.perf_counter()
            html = build_timeline_map(d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"],
                                      case_id="BENCH", exhibit_no="1")
            variants.append(("routetrace", html, time.perf_counter() - t, True))
            t = time.perf_counter()
            variants.append(("naive A: PolyLine + stop/evidence markers", naive_html(d, per_fix=False),
                             time.perf_counter() - t, False))
            t = time.perf_counter()
            if n <= args.naive_b_max:
                variants.append(("naive B: PolyLine + marker per fix", naive_html(d, per_fix=True),
                                 time.perf_counter() - t, False))
            else:
                variants.append(("naive B: PolyLine + marker per fix (stamped)", naive_b_stamped(d),
                                 time.perf_counter() - t, False))
            for name, text, build_s, ready in variants:
                p = Path(tmp) / f"{n}-{name.split(':')[0].replace(' ', '_')}.html"
                p.write_text(text, encoding="utf-8")
                del text
                ms = load_ms(pw, p, ready=ready, repeat=args.repeat, timeout_s=args.timeout)
                rows.append((n, nf, name, p.stat().st_size / 1e6, build_s, ms))
                print(f"{n:>9,} {name:<44} {rows[-1][3]:8.2f} MB  build {build_s:6.1f} s  load "
                      f"{'timeout' if ms is None else f'{ms:8.0f} ms'}", flush=True)
    sys.path.insert(0, str(Path(__file__).parent))
    from _provenance import command_line, provenance_line

    lines = ["# exhibit benchmark (bench/exhibit.py)",
             provenance_line(command=command_line(), measures=MEASURES), "",
             "Invented journey, 5 m GPS noise; Debian headless Chromium, network aborted, offline file;",
             f"load = navigation to first frame after the map is built, median of {args.repeat} after a warm-up.",
             "", "| fixes | page | HTML MB | build s | load ms | load vs routetrace |",
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for n, nf, name, mb, bs, ms in rows:
        base = next(r[5] for r in rows if r[0] == n and r[2] == "routetrace")
        ratio = "" if name == "routetrace" or ms is None or not base else f"{ms / base:.1f}x slower"
        load = f"> {args.timeout * 1000:.0f}" if ms is None else f"{ms:.0f}"
        lines.append(f"| {nf:,} | {name} | {mb:.2f} | {bs:.1f} | {load} | {ratio} |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
