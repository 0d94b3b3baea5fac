"""The timeline map: one self-contained, offline, deterministic HTML exhibit (folium + Leaflet).

What the court sees
-------------------
* Route lines per subject, coloured by time (one colour ramp for the whole exhibit, legend
  with the first and last time), outlined in the subject's colour.
* Numbered stop markers (numbers match the chronology table) with arrival, departure and
  observed dwell in the local time of the place, with its UTC offset; the stop radius is
  drawn as a circle at true scale.
* Places: indicated places (statements) ``◆``, safehouses ``⌂``, others ``■``, with their
  stated radius at true scale.
* Evidence points (non-GPS fixes: photos, visits, cell/Wi-Fi positions) at their exact
  positions with their stated accuracy at true scale, one layer per source file; every GPS
  fix of a small journey in a layer of its own, off when the page opens (it would cover the
  route's time colours); thinning above :data:`EVIDENCE_POINT_LIMIT` is stated.
* Unobserved intervals (the ``gaps`` given, else :func:`derive_gaps`, the chronology's rule)
  drawn as dashed straight lines and labelled with their duration.
* Groups of stops whose markers collide at the overview scale
  (:func:`routetrace.maps.layout.find_marker_groups`) framed and lettered, with a "Zoom to"
  control; stop numbers, letters and labels placed without overlap, set aside with a leader
  line where stops crowd (``timeline.js``); a click on a chronology row zooms to its stop.
* A collapsed layer control per subject and per source, a legend with an entry for every
  symbol drawn, scale bar, north arrow, a footer (case, exhibit, sources with SHA-256,
  parameters, tool version, time convention) and the chronology table.
* Printed (``routetracePrint``, called by :func:`routetrace.maps.static.render_static`):
  the overview page, one detail page per group, the chronology, then the footer.
* A time slider: the labels are strings routetrace wrote in the local time of the place
  where the subjects were at that moment; the browser never formats a time.

Large journeys
--------------
Route lines are simplified per zoom with Douglas-Peucker (shapely) in metres on a local
azimuthal equidistant projection; levels are kept from coarse to fine while they fit a
point budget (so 1,000,000 fixes give an HTML well under 10 MB). Stops, places and evidence
points are never simplified.

Determinism: folium's random element ids are replaced by a counter and no wall-clock time
is written, so the same inputs (and ``SOURCE_DATE_EPOCH``) give byte-identical HTML.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import folium
import markupsafe
import numpy as np
import pandas as pd
import pyproj
import shapely
from branca.element import Element, MacroElement
from jinja2 import Template

from .. import schema
from ..display import visible
from ..errors import ExportError
from ..localtime import fmt_duration, fmt_local, fmt_local_many, tz_names
from .basemap import BASEMAP_ATTRIBUTION, TileSet, countries_geojson, roads_json
from .chronology import build_chronology
from .footer import ExhibitMeta, flatten_params, render_chronology, render_footer, render_title
from .layout import find_marker_groups, fit_zoom, metres_per_pixel

__all__ = ["LEVEL_TOLS_M", "POINT_BUDGET", "build_timeline_map", "derive_gaps", "prepare_fixes",
           "simplify_keep"]

#: Douglas-Peucker tolerances (metres) of the route levels, coarse to fine; 0 = every fix.
LEVEL_TOLS_M: tuple[float, ...] = (1000.0, 250.0, 60.0, 15.0, 4.0, 0.0)
#: Route vertices (all subjects, all levels) an exhibit may carry: about 12 bytes each.
POINT_BUDGET = 450_000
#: Most evidence points drawn individually (the rest are in the exports; the footer says so).
EVIDENCE_POINT_LIMIT = 20_000
#: Below this many fixes in all, every fix is drawn as an evidence point.
SMALL_JOURNEY = 5_000
#: Time-slider positions (plus every stop arrival/departure and gap start/end).
N_TICKS = 400
#: Colour bins of the time ramp.
N_BINS = 16
#: Map area of a printed page (CSS px; A4 landscape less margins, header and side legend).
PRINT_MAP_PX = (790, 640)
#: Free margin kept around what a printed map fits (CSS px).
PRINT_PAD_PX = 36
SUBJECT_COLOURS = ("#e41a1c", "#377eb8", "#ff7f00", "#984ea3", "#4daf4a", "#a65628", "#f781bf",
                   "#17becf", "#999999", "#bcbd22")
_NON_EVIDENCE_KINDS = ("gps", "fused")
_SAFEHOUSE = re.compile(r"safe\s*-?\s*house", re.IGNORECASE)


def _static(name: str) -> str:
    return resources.files("routetrace.maps").joinpath(f"static/{name}").read_text("utf-8")


def _leaflet_css() -> str:
    css = _static("leaflet.css")
    png = resources.files("routetrace.maps").joinpath("static/layers.png").read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    css = css.replace("url(images/layers.png)", f"url({uri})").replace("url(images/layers-2x.png)", f"url({uri})")
    css = css.replace("url(images/marker-icon.png)", "none")
    if re.search(r"url\((?!data:|#)", css):
        raise ExportError("leaflet.css still refers to an external file")
    return css


class _Raw(Element):
    """Finished text placed in the page as it is.

    branca's MacroElement wraps each rendered macro in ``Element(text)``, which makes the
    text a Jinja template that is rendered *again*: evidence such as ``{{7*7}}`` would be
    evaluated (template injection). This element returns its text untouched.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: Any) -> str:
        return self._text


class _SafeMacro(MacroElement):
    """A MacroElement whose rendered macros are placed verbatim (see :class:`_Raw`)."""

    def render(self, **kwargs: Any) -> str:
        figure: Any = self.get_root()
        module = self._template.module.__dict__
        for part, target in (("header", figure.header), ("html", figure.html), ("script", figure.script)):
            macro = module.get(part)
            if macro is not None:
                target.add_child(_Raw(str(macro(self, kwargs))), name=self.get_name())
        for child in self._children.values():
            child.render(**kwargs)
        return ""


class _InlineAssets(_SafeMacro):
    """Leaflet, the exhibit CSS and timeline.js inlined into <head> (no CDN, no files)."""

    _template = Template("""
{% macro header(this, kwargs) %}
<style>{{ this.css }}</style>
<script>{{ this.js }}</script>
{% endmacro %}
""")

    def __init__(self, *, vector_tiles: bool = False) -> None:
        super().__init__()
        self._name = "InlineAssets"
        self.css = _leaflet_css() + "\n" + _static("exhibit.css")
        # protomaps-leaflet (vendored, see static/README.md) only where vector tiles are drawn
        vector = "\n" + _static("protomaps-leaflet.js") if vector_tiles else ""
        js = _static("leaflet.js") + vector + "\n" + _static("timeline.js")
        # never let vendored text close the <script> element early
        self.js = js.replace("</script", "<\\/script")


class _ExhibitLayer(_SafeMacro):
    """Title, footer and chronology (escaped HTML) and the data (through ``|tojson``)."""

    _template = Template("""
{% macro html(this, kwargs) %}
{{ this.body_html }}
{% endmacro %}
{% macro script(this, kwargs) %}
routetraceExhibit({{ this._parent.get_name() }}, {{ this.data|tojson }});
{% endmacro %}
""")

    def __init__(self, data: dict[str, Any], body_html: str) -> None:
        super().__init__()
        self._name = "RoutetraceExhibit"
        # evidence text reaches the page only here: hidden characters shown as [U+XXXX]
        # (display.visible); the body's own line breaks between tags are kept
        self.data = _shown(data)
        self.body_html = visible(body_html, keep="\t\n\r")


def _shown(v: Any) -> Any:
    """``v`` (the page's data: dicts, lists, strings, numbers) with every string passed
    through :func:`routetrace.display.visible`; timeline.js puts strings in the page as text."""
    if isinstance(v, str):
        return visible(v)
    if isinstance(v, dict):
        return {k: _shown(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_shown(x) for x in v] if any(isinstance(x, (str, dict, list, tuple)) for x in v) else v
    return v


def _deterministic_ids(root: Element) -> None:
    counter = iter(range(1, 1 << 30))

    def walk(el: Element) -> None:
        el._id = f"{next(counter):08d}"
        for child in list(el._children.values()):
            walk(child)

    walk(root)


# --- inputs ------------------------------------------------------------------------------

def prepare_fixes(fixes: pd.DataFrame) -> pd.DataFrame:
    """Plottable fixes sorted by subject and time (no position, 0,0 placeholders and
    fixes without a time are left out: they are in the exports, not on the map).

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table; the 0,0 placeholders and fixes without a time left out are the
        rows flagged ``zero_position`` or ``no_time`` (as :func:`routetrace.routes.clean.clean_fixes`
        and the loaders flag them).

    Returns
    -------
    pandas.DataFrame
        The plottable rows, sorted, with a new index.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id="s", t_utc=["2025-01-01T10:02Z", "2025-01-01T10:00Z", "2025-01-01T10:01Z"],
    ...                lat=[51.0, 0.0, 51.001], lon=[3.7, 0.0, 3.7], flags=["", "zero_position", ""])
    >>> prepare_fixes(f)["record"].tolist()
    ['2', '0']
    """
    schema.validate(fixes, "fixes")
    f = fixes
    ok = f["lat"].notna() & f["lon"].notna()
    if len(f):
        flags = f["flags"].astype("string").fillna("")
        ok &= ~schema.has_flag(flags, "zero_position") & ~schema.has_flag(flags, "no_time")
    f = f[ok]
    return f.sort_values(["subject_id", "t_utc"], kind="mergesort").reset_index(drop=True)


def derive_gaps(fixes: pd.DataFrame, *, max_gap: pd.Timedelta = pd.Timedelta("30min"),
                events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Unobserved intervals for an exhibit built without a ``gaps`` table.

    The chronology's own rule, :func:`routetrace.routes.stops.detect_gaps` (a silence longer
    than ``max_gap``; with ``events``, a silence the vehicle spent parked with its ignition
    off is not unobserved), so the map never draws other gaps than the chronology states.
    The rows carry the ``derived`` flag: they were computed for the exhibit, not given.

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table.
    max_gap : pandas.Timedelta, default 30 min
        The chronology's default (see :func:`routetrace.routes.stops.detect_gaps`).
    events : pandas.DataFrame, optional
        An ``events`` table with ignition events; default None.

    Returns
    -------
    pandas.DataFrame
        A ``gaps`` table whose rows are flagged ``derived``.

    Examples
    --------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id="s", t_utc=["2025-01-01T10:00Z", "2025-01-01T11:00Z"], lat=51.0, lon=3.7)
    >>> g = derive_gaps(f)
    >>> str(g["duration"].iloc[0]), g["flags"].iloc[0]
    ('0 days 01:00:00', 'derived')
    """
    from ..routes.stops import detect_gaps

    g = detect_gaps(prepare_fixes(fixes), max_gap=max_gap, events=events)
    flags = g["flags"].astype("string").fillna("")
    g["flags"] = (flags + np.where(flags == "", "", "|") + "derived").astype(g["flags"].dtype) if len(g) \
        else g["flags"]
    return g


def _bounds(*frames: tuple[np.ndarray, np.ndarray]) -> tuple[float, float, float, float]:
    lats = np.concatenate([np.asarray(a, float) for a, _ in frames])
    lons = np.concatenate([np.asarray(b, float) for _, b in frames])
    ok = np.isfinite(lats) & np.isfinite(lons)
    if not ok.any():
        raise ExportError("nothing to map: no fixes, stops or places with a position")
    s, n = float(lats[ok].min()), float(lats[ok].max())
    w, e = float(lons[ok].min()), float(lons[ok].max())
    if n - s < 0.002:
        s, n = s - 0.001, n + 0.001
    if e - w < 0.002:
        w, e = w - 0.001, e + 0.001
    return s, w, n, e


def _ns(series: pd.Series) -> np.ndarray:
    """UTC times as int64 nanoseconds since 1970."""
    return np.asarray(pd.DatetimeIndex(series).as_unit("ns").asi8, dtype=np.int64)


def _enc(values: np.ndarray) -> list[int]:
    v = np.asarray(values, dtype=np.int64)
    return np.diff(v, prepend=np.int64(0)).tolist() if len(v) else []


def _route_levels(f: pd.DataFrame, gaps: pd.DataFrame, t0_ns: int, proj: pyproj.Transformer,
                  subjects: list[str], *, budget: int = POINT_BUDGET,
                  ) -> tuple[dict[str, list[dict[str, Any]]], list[float]]:
    """Per subject, the route simplified at each tolerance, encoded for the page."""
    per_level: dict[str, list[tuple[float, np.ndarray, list[int]]]] = {}
    counts = np.zeros(len(LEVEL_TOLS_M), dtype=np.int64)
    data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for s in subjects:
        fs = f[f["subject_id"] == s]
        lat, lon = fs["lat"].to_numpy(float), fs["lon"].to_numpy(float)
        t = _ns(fs["t_utc"])
        data[s] = (lat, lon, t)
        n = len(fs)
        brk = np.zeros(n, dtype=bool)  # brk[i]: a new part starts at i
        if n:
            brk[0] = True
        gs = gaps[gaps["subject_id"] == s] if len(gaps) else gaps
        if len(gs) and n:
            gstart = _ns(gs["t_start"])
            i = np.searchsorted(t, gstart, side="right")
            i = i[(i > 0) & (i < n)]
            brk[i] = True
        part_id = np.cumsum(brk) - 1
        sizes = np.bincount(part_id, minlength=int(part_id.max()) + 1 if n else 0)
        multi = sizes[part_id] >= 2 if n else np.zeros(0, bool)
        x, y = proj.transform(lon, lat)
        idx = np.arange(n, dtype=float)
        levels = []
        for k, tol in enumerate(LEVEL_TOLS_M):
            if not multi.any():
                keep = np.zeros(0, dtype=np.int64)
                parts: list[int] = []
            elif tol == 0:
                keep = np.flatnonzero(multi)
                parts = sizes[sizes >= 2].tolist()
            else:
                dense = np.unique(part_id[multi], return_inverse=True)[1].ravel()
                lines = shapely.linestrings(np.c_[x[multi], y[multi], idx[multi]], indices=dense)
                lines = lines[~shapely.is_missing(lines)]
                simp = shapely.simplify(lines, tol, preserve_topology=False)
                keep = shapely.get_coordinates(simp, include_z=True)[:, 2].round().astype(np.int64)
                parts = shapely.get_num_coordinates(simp).tolist()
            counts[k] += len(keep)
            levels.append((tol, keep, parts))
        per_level[s] = levels
    # keep levels coarse -> fine while the whole exhibit fits the point budget
    cum = np.cumsum(counts)
    n_levels = max(1, int(np.searchsorted(cum, budget, side="right")))
    out: dict[str, list[dict[str, Any]]] = {}
    for s in subjects:
        lat, lon, t = data[s]
        out[s] = []
        for tol, keep, parts in per_level[s][:n_levels]:
            out[s].append({"tol": tol, "enc": {
                "lat": _enc(np.round(lat[keep] * 1e5)), "lon": _enc(np.round(lon[keep] * 1e5)),
                "t": _enc(np.round((t[keep] - t0_ns) / 1e9)), "parts": parts}})
        # the finest kept level is also used for the smallest zooms' fallback
    return out, [float(v) for v in LEVEL_TOLS_M[:n_levels]]


def _ticks(f: pd.DataFrame, stops: pd.DataFrame, gaps: pd.DataFrame, t0_ns: int, t1_ns: int,
           subjects: list[str]) -> dict[str, list[Any]]:
    grid = np.linspace(t0_ns, t1_ns, N_TICKS).astype(np.int64)
    extra = []
    for frame, cols in ((stops, ("t_arrival", "t_departure")), (gaps, ("t_start", "t_end"))):
        for c in cols:
            if len(frame):
                extra.append(_ns(frame[c]))
    allt = np.unique(np.concatenate([grid, *extra]) // 1_000_000_000 * 1_000_000_000)
    allt = allt[(allt >= t0_ns // 10**9 * 10**9) & (allt <= t1_ns)]
    zones_per_tick: list[list[str]] = [[] for _ in allt]
    for s in subjects:
        fs = f[f["subject_id"] == s]
        if not len(fs):
            continue
        t = _ns(fs["t_utc"])
        i = np.clip(np.searchsorted(t, allt, side="right") - 1, 0, len(fs) - 1)
        zs = tz_names(fs["lat"].to_numpy(float)[i], fs["lon"].to_numpy(float)[i])
        for k, z in enumerate(zs):
            if z not in zones_per_tick[k]:
                zones_per_tick[k].append(z)
    labels = []
    for k, tn in enumerate(allt):
        ts = pd.Timestamp(int(tn), unit="ns", tz="UTC")
        zs = zones_per_tick[k] or ["UTC"]
        labels.append(" | ".join(f"{fmt_local(ts, z)}, {z}" for z in zs))
    return {"t": ((allt - t0_ns) / 1e9).round().tolist(), "label": labels}


def _source_labels(sources: pd.DataFrame | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if sources is not None and len(sources):
        for sid, path in zip(sources["source_id"].astype(str), sources["path"].astype(str), strict=True):
            out[sid] = f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]} ({sid[:12]})"
    return out


def _subject_colours(f: pd.DataFrame, stops: pd.DataFrame) -> dict[str, str]:
    subjects = sorted(set(f["subject_id"].astype(str)) | set(stops["subject_id"].astype(str)))
    return {s: SUBJECT_COLOURS[i % len(SUBJECT_COLOURS)] for i, s in enumerate(subjects)}


def _time_range(f: pd.DataFrame, stops: pd.DataFrame, gaps: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last time of anything on the map."""
    times = [f["t_utc"]] + [stops[c] for c in ("t_arrival", "t_departure")] + \
        [gaps[c] for c in ("t_start", "t_end")]
    present = [t for t in times if len(t)]
    if not present:
        t = pd.Timestamp("1970-01-01T00:00Z")
        return t, t
    tall = pd.concat(present, ignore_index=True)
    return tall.min(), tall.max()


class _Rel:
    """Seconds since the exhibit's first time, rounded (what the page's slider counts)."""

    def __init__(self, t0_ns: int) -> None:
        self.t0_ns = t0_ns

    def __call__(self, series: pd.Series) -> list[float]:
        return ((_ns(series) - self.t0_ns) / 1e9).round().tolist()


def _local_proj(clat: float, clon: float) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={clat:.4f} +lon_0={clon:.4f} +datum=WGS84 +units=m",
        always_xy=True)


def _stop_data(stops: pd.DataFrame, chrono: pd.DataFrame, colour: dict[str, str], rel: _Rel) -> list[dict[str, Any]]:
    """The numbered stops as the page draws them (numbers from the chronology)."""
    st = chrono[chrono["row_kind"] == "stop"].reset_index(drop=True)
    if not len(st):
        return []
    arrival = stops.set_index("stop_id")["t_arrival"]
    t_rel = rel(pd.Series(arrival.loc[st["id"]].to_numpy()))
    out = []
    for k, r in enumerate(st.itertuples(index=False)):
        out.append({
            "no": int(r.no), "subject_id": str(r.subject_id), "lat": round(float(r.lat), 7),
            "lon": round(float(r.lon), 7), "radius_m": float(np.nan_to_num(r.radius_m)),
            "arrival": r.start_local, "departure": r.end_local, "dwell": r.dwell, "tz": r.tz,
            "n_fixes": int(r.n_fixes), "observed": f"{100 * float(r.observed_fraction):.0f} % of the span",
            "near_place": r.near_place, "sources": r.sources, "flags": r.flags,
            "t_arrival": t_rel[k], "colour": colour.get(str(r.subject_id), "#333"), "group": "",
        })
    return out


def _gap_data(gaps: pd.DataFrame, rel: _Rel) -> list[dict[str, Any]]:
    """The unobserved intervals with a position at both ends (dashed straight lines)."""
    gp = gaps[gaps["lat_start"].notna() & gaps["lon_start"].notna() & gaps["lat_end"].notna()
              & gaps["lon_end"].notna()].sort_values(["t_start", "subject_id", "gap_id"], kind="mergesort")
    if not len(gp):
        return []
    gz = tz_names(gp["lat_start"], gp["lon_start"])
    starts = fmt_local_many(gp["t_start"], gz)
    ends = fmt_local_many(gp["t_end"], gz)
    trel = rel(gp["t_start"])
    out = []
    for k, r in enumerate(gp.itertuples(index=False)):
        dur = fmt_duration(r.duration)
        out.append({
            "subject_id": str(r.subject_id), "lat0": float(r.lat_start), "lon0": float(r.lon_start),
            "lat1": float(r.lat_end), "lon1": float(r.lon_end), "label": f"unobserved {dur}",
            "start": starts[k], "end": ends[k], "duration": dur,
            "distance": "" if pd.isna(r.distance_m) else f"{float(r.distance_m) / 1000:.1f} km (straight line)",
            "t_start": trel[k]})
    return out


def _text(v: object) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def _verdicts(corroboration: pd.DataFrame | None) -> dict[str, tuple[str, str, str]]:
    """``place_id -> (verdicts, worst, time text)`` from the corroboration layer."""
    if corroboration is None or not len(corroboration) or "place_id" not in corroboration.columns:
        return {}
    return {_text(r.get("place_id")): (_text(r.get("verdicts")), _text(r.get("worst")), _text(r.get("time_text")))
            for r in corroboration.to_dict("records")}


def _place_symbol(r: Mapping[str, Any]) -> str:
    text = " ".join(str(r.get(c) or "") for c in ("kind", "name", "text", "extra") if pd.notna(r.get(c)))
    return "safehouse" if _SAFEHOUSE.search(text) else ("indicated" if r["kind"] == "indicated" else "other")


def _place_data(places: pd.DataFrame, verdicts: dict[str, tuple[str, str, str]],
                src_label: dict[str, str]) -> list[dict[str, Any]]:
    """Places with a position, sorted by id: symbol, popup text, verdict."""
    pl = places[places["lat"].notna() & places["lon"].notna()].sort_values("place_id", kind="mergesort")
    if not len(pl):
        return []
    pz = tz_names(pl["lat"], pl["lon"])
    ps = fmt_local_many(pl["t_start"], pz)
    pe = fmt_local_many(pl["t_end"], pz)
    out = []
    for k, r in enumerate(pl.to_dict("records")):
        symbol = _place_symbol(r)
        when = "" if ps[k] == "unknown" else (ps[k] + ("" if pe[k] == "unknown" else f" to {pe[k]}"))
        v = verdicts.get(str(r["place_id"]))
        out.append({
            "symbol": symbol, "kind": _text(r["kind"]), "name": _text(r.get("name")),
            "address": _text(r.get("address")), "text": _text(r.get("text")),
            "lat": float(r["lat"]), "lon": float(r["lon"]),
            "radius_m": float(np.nan_to_num(r.get("radius_m") or 0.0)),
            "label": {"safehouse": "Safehouse", "indicated": "Indicated place"}.get(symbol, "Place")
            + f" ({_text(r['kind'])})",
            "time": when or (v[2] if v else ""),
            "verdict": v[0] if v else _text(r.get("verdict")),
            "worst": (v[1] if v else "").replace(" ", "-"),
            "source": src_label.get(str(r["source_id"]), str(r["source_id"])[:12]),
        })
    return out


def _evidence_fixes(f: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The fixes drawn as evidence points, and the legend's note when they are thinned.

    Non-GPS fixes (photos, visits, cell/Wi-Fi positions), and every fix of a small journey.
    Above :data:`EVIDENCE_POINT_LIMIT`, one in every k (in time) is drawn, evenly over the
    whole journey, and the legend and layer names say so.
    """
    ev = f if len(f) <= SMALL_JOURNEY else f[~f["fix_kind"].astype(str).isin(_NON_EVIDENCE_KINDS)]
    if len(ev) <= EVIDENCE_POINT_LIMIT:
        return ev, ""
    step = int(np.ceil(len(ev) / EVIDENCE_POINT_LIMIT))
    kept = ev.sort_values("t_utc", kind="mergesort").iloc[::step]
    return kept, (f"evidence points thinned: 1 in every {step} in time is drawn ({len(kept):,} of "
                  f"{len(ev):,}); all are in the exports")


def _point_data(f: pd.DataFrame, rel: _Rel, src_label: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    """Evidence points per source; GPS fixes in their own layer, off when the page opens.

    Every fix of a small journey is an evidence point; drawn by default, one colour, they
    would cover the route's time colours, so a source's GPS/fused fixes are a separate layer
    the reader turns on ("every fix"), while photos, visits and cell positions show at once.
    """
    ev, thinned = _evidence_fixes(f)
    if not len(ev):
        return [], thinned
    ez = tz_names(ev["lat"], ev["lon"])
    etime = np.asarray(fmt_local_many(ev["t_utc"], ez), dtype=object)
    erel = np.asarray(rel(ev["t_utc"]))
    gps = ev["fix_kind"].astype(str).isin(_NON_EVIDENCE_KINDS).to_numpy()
    out = []
    for sid, idx in ev.groupby(ev["source_id"].astype(str), sort=True).indices.items():
        for is_gps in (False, True):
            part = idx[gps[idx] == is_gps]
            if not len(part):
                continue
            sub = ev.iloc[part]
            label = src_label.get(sid, sid[:12]) + (" \u00b7 every GPS fix" if is_gps else "")
            out.append({
                "label": label + (" (thinned)" if thinned else ""), "on": not is_gps, "gps": bool(is_gps),
                "lat": np.round(sub["lat"].to_numpy(float), 7).tolist(),
                "lon": np.round(sub["lon"].to_numpy(float), 7).tolist(),
                "acc": np.round(np.nan_to_num(sub["h_acc_m"].to_numpy(float)), 1).tolist(),
                "kind": sub["fix_kind"].astype(str).tolist(), "time": etime[part].tolist(),
                "t": erel[part].tolist()})
    return out, thinned


def _groups(stop_data: list[dict[str, Any]], place_data: list[dict[str, Any]],
            bounds: tuple[float, float, float, float]) -> list[dict[str, Any]]:
    """Groups of colliding markers at the printed overview's scale (see :mod:`.layout`);
    each stop learns its group's letter."""
    markers = pd.DataFrame({
        "lat": [s["lat"] for s in stop_data] + [p["lat"] for p in place_data],
        "lon": [s["lon"] for s in stop_data] + [p["lon"] for p in place_data],
        "stop_no": pd.array([s["no"] for s in stop_data] + [None] * len(place_data), dtype="Int64")})
    w, h = PRINT_MAP_PX
    zoom = fit_zoom(bounds, width_px=w, height_px=h, padding_px=PRINT_PAD_PX)
    mpp = metres_per_pixel((bounds[0] + bounds[2]) / 2, zoom)
    groups = find_marker_groups(markers, metres_per_px=mpp)
    by_no = {s["no"]: s for s in stop_data}
    out = []
    for g in groups:
        for no in g.stop_nos:
            by_no[no]["group"] = g.letter
        out.append({"letter": g.letter, "title": g.title, "stops": g.stop_nos, "bounds": list(g.bounds)})
    return out


def _town_data(bounds: tuple[float, float, float, float]) -> tuple[list[dict[str, Any]], str]:
    """Town and village names for the background, and their attribution for the footer.

    Drawn only when :mod:`routetrace.maps.basemap` offers ``town_labels(bounds)`` (rows with
    ``name``, ``lat``, ``lon`` and optionally ``population``; a DataFrame or mappings); the
    biggest towns are placed first, and a name that would cover a stop label is left out.
    """
    from . import basemap

    fn = getattr(basemap, "town_labels", None)
    if fn is None:
        return [], ""
    towns = fn(bounds)
    rows = towns.to_dict("records") if isinstance(towns, pd.DataFrame) else [dict(r) for r in towns]
    out: list[dict[str, Any]] = []
    for r in rows:
        lat, lon = float(r.get("lat", np.nan)), float(r.get("lon", np.nan))
        if np.isfinite(lat) and np.isfinite(lon) and _text(r.get("name")):
            pop = float(np.nan_to_num(float(r.get("population") or 0.0)))
            out.append({"name": _text(r.get("name")), "lat": round(lat, 5), "lon": round(lon, 5), "pop": pop})
    out.sort(key=lambda t: (-float(t["pop"]), str(t["name"]), float(t["lat"]), float(t["lon"])))
    attribution = str(getattr(basemap, "TOWNS_ATTRIBUTION", "Town names from GeoNames (CC BY 4.0), "
                                                                 "background only, not evidence."))
    return out, attribution if out else ""


def _footer_meta(*, case_id: str, exhibit_no: str, title: str, stops: pd.DataFrame, gaps: pd.DataFrame,
                 params: Mapping[str, Any] | None, tols: list[float], tiles: TileSet | None, roads: Any,
                 sources: pd.DataFrame | None, notes: list[str], towns: str = "") -> ExhibitMeta:
    all_params: dict[str, Any] = {}
    for name, frame in (("stops", stops), ("gaps", gaps)):
        if frame.attrs.get("params"):
            all_params[name] = frame.attrs["params"]
    all_params.update(dict(params or {}))
    all_params["map.route_simplification_m"] = ", ".join(f"{t:g}" for t in tols) + \
        " (Douglas-Peucker per zoom; stops, places and evidence points exact)"
    basemap = [BASEMAP_ATTRIBUTION]
    if roads is not None:
        basemap.append("Road lines supplied with the case.")
    if towns:
        basemap.append(towns)
    basemap.append(tiles.describe() if tiles is not None else "No tile server and no tiles were used.")
    srcs = []
    if sources is not None:
        for r in sources.sort_values("path", kind="mergesort").to_dict("records"):
            srcs.append({"path": str(r["path"]), "source_id": str(r["source_id"]), "format": str(r["format"]),
                         "time_basis": str(r["time_basis"])})
    return ExhibitMeta(case_id=case_id, exhibit_no=exhibit_no, title=title, params=flatten_params(all_params),
                       sources=srcs, basemap=basemap, notes=notes)


def _render_page(data: dict[str, Any], body: str, *, centre: tuple[float, float], case_id: str,
                 exhibit_no: str, vector_tiles: bool = False) -> str:
    """The folium page: inlined assets, the exhibit's data and text, deterministic ids."""
    m = folium.Map(location=list(centre), zoom_start=9, tiles=None, control_scale=False,
                   prefer_canvas=True, attribution_control=False, zoom_snap=0.25)
    m.default_js = []
    m.default_css = []
    root: Any = m.get_root()
    root.header.add_child(Element('<meta name="generator" content="routetrace">'), name="generator")
    root.title = str(markupsafe.escape(visible(f"Exhibit {exhibit_no} · Case {case_id}")))
    m.add_child(_InlineAssets(vector_tiles=vector_tiles))
    m.add_child(_ExhibitLayer(data, body))
    _deterministic_ids(root)
    html: str = root.render()
    return html


def _resolve_gaps(f: pd.DataFrame, gaps: pd.DataFrame | None, notes: list[str]) -> pd.DataFrame:
    """The gaps given (the chronology's), or derived by its rule; the footer says which."""
    out = derive_gaps(f) if gaps is None else schema.validate(gaps, "gaps")
    if len(out) and schema.has_flag(out["flags"].astype("string").fillna(""), "derived").any():
        notes.append("No gaps table was given: the unobserved intervals were computed for this exhibit by "
                     "the chronology's rule (silences longer than 30 min; flag 'derived').")
    return out


def build_timeline_map(
    fixes: pd.DataFrame,
    stops: pd.DataFrame | None = None,
    gaps: pd.DataFrame | None = None,
    places: pd.DataFrame | None = None,
    sources: pd.DataFrame | None = None,
    *,
    case_id: str,
    exhibit_no: str,
    title: str = "Timeline map",
    params: Mapping[str, Any] | None = None,
    tiles: TileSet | None = None,
    roads: Any = None,
    corroboration: pd.DataFrame | None = None,
) -> str:
    """Render the timeline map exhibit and return the HTML text (one self-contained page).

    Parameters
    ----------
    fixes, stops, gaps, places, sources
        Canonical tables (:mod:`routetrace.schema`). ``stops``/``gaps``/``places``/``sources``
        may be ``None``. Pass the ``gaps`` the chronology computed: the map draws exactly
        those; without them they are computed by the chronology's rule (:func:`derive_gaps`).
    case_id, exhibit_no
        Shown in the title, on every printed page and in the footer.
    params
        Parameters to state in the footer (e.g. the stop definition); ``stops.attrs["params"]``
        and ``gaps.attrs["params"]`` are added automatically.
    tiles
        Offline tiles (:func:`routetrace.maps.basemap.load_tiles`: MBTiles raster, PMTiles vector or
        raster); recorded in the footer. Vector tiles are drawn by the vendored protomaps-leaflet.
    roads
        Background road lines (``{name: [(lat, lon), ...]}`` or a GeoDataFrame of lines).
    corroboration
        The corroboration layer (:func:`routetrace.routes.corroborate.statement_layer` with a
        result): its ``verdicts`` are shown in the popups of the matching places
        (``place_id``) and its ``worst`` verdict colours their markers.

    Returns
    -------
    str
        The HTML page. Groups of markers that collide at the overview scale
        (:func:`routetrace.maps.layout.find_marker_groups`) are framed and lettered, with a
        "zoom to" control; the printed exhibit gives each its own page.

    Raises
    ------
    ExportError
        When there is nothing with a position to map.
    SchemaError
        When a table does not follow the schema.

    Examples
    --------
    >>> from routetrace.samples.demo_tables import demo_tables
    >>> d = demo_tables(100)
    >>> html = build_timeline_map(d["fixes"], d["stops"], d["gaps"], case_id="C-1", exhibit_no="7")
    >>> html.startswith("<!DOCTYPE html>"), "cdn" in html.lower()
    (True, False)
    """
    f = prepare_fixes(fixes)
    stops = schema.empty("stops") if stops is None else schema.validate(stops, "stops")
    notes: list[str] = []
    gaps = _resolve_gaps(f, gaps, notes)
    places = schema.empty("places") if places is None else schema.validate(places, "places")
    src_label = _source_labels(sources)

    colour = _subject_colours(f, stops)
    subjects = list(colour)
    bounds = _bounds((f["lat"].to_numpy(), f["lon"].to_numpy()), (stops["lat"].to_numpy(), stops["lon"].to_numpy()),
                     (places["lat"].to_numpy(), places["lon"].to_numpy()))
    t0, t1 = _time_range(f, stops, gaps)
    rel = _Rel(int(t0.value))
    clat, clon = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    # inlined tiles share the 10 MB page budget with the route (about 12 bytes a vertex)
    tile_bytes = sum(len(v) for v in tiles.tiles.values()) if tiles is not None else 0
    levels, tols = _route_levels(f, gaps, int(t0.value), _local_proj(clat, clon), subjects,
                                 budget=max(20_000, POINT_BUDGET - tile_bytes // 12))
    n_fix = f.groupby("subject_id").size().to_dict() if len(f) else {}
    chrono = build_chronology(stops, gaps, places, sources)
    stop_data = _stop_data(stops, chrono, colour, rel)
    place_data = _place_data(places, _verdicts(corroboration), src_label)
    point_data, thinned = _point_data(f, rel, src_label)
    if thinned:
        notes.append(thinned[0].upper() + thinned[1:] + ".")
    first_zone = tz_names([clat], [clon])[0]
    towns, towns_attribution = _town_data(bounds)
    data = {
        "bounds": list(bounds), "t_span": (t1.value - t0.value) / 1e9,
        "n_bins": N_BINS, "stops": stop_data, "gaps": _gap_data(gaps, rel),
        "subjects": [{"id": s, "colour": colour[s], "n_fixes": int(n_fix.get(s, 0)), "levels": levels[s]}
                     for s in subjects],
        "places": place_data, "points": point_data, "thinned": thinned,
        "groups": _groups(stop_data, place_data, bounds),
        "ticks": _ticks(f, stops, gaps, int(t0.value), int(t1.value), subjects),
        "t_first_label": fmt_local(t0, first_zone, seconds=False),
        "t_last_label": fmt_local(t1, first_zone, seconds=False),
        "countries": countries_geojson(bounds), "roads": roads_json(roads), "towns": towns,
        "tiles": None if tiles is None else {"tiles": dict(sorted(tiles.tiles.items())), "kind": tiles.kind,
                                             "min_zoom": tiles.min_zoom, "max_zoom": tiles.max_zoom},
        "collapsed_layers": True, "has_verdicts": any(p["worst"] for p in place_data),
        "header": {"case_id": case_id, "exhibit_no": exhibit_no, "title": title},
        "print": {"map_w": PRINT_MAP_PX[0], "map_h": PRINT_MAP_PX[1], "pad": PRINT_PAD_PX},
    }
    meta = _footer_meta(case_id=case_id, exhibit_no=exhibit_no, title=title, stops=stops, gaps=gaps,
                        params=params, tols=tols, tiles=tiles, roads=roads, sources=sources, notes=notes,
                        towns=towns_attribution)
    body = render_title(meta) + render_footer(meta) + render_chronology(meta, chrono)
    return _render_page(data, body, centre=(clat, clon), case_id=case_id, exhibit_no=exhibit_no,
                        vector_tiles=tiles is not None and tiles.kind == "vector")


def simplify_keep(fixes: pd.DataFrame, *, tol_m: float) -> np.ndarray:
    """Boolean mask over ``fixes`` (as sorted by :func:`prepare_fixes`): the fixes that
    Douglas-Peucker keeps at ``tol_m`` metres, per subject (every subject's first and last
    fix are kept; single-fix subjects too).

    Parameters
    ----------
    fixes : pandas.DataFrame
        Fixes as returned by :func:`prepare_fixes`.
    tol_m : float
        Douglas-Peucker tolerance in metres (no default: it follows the map's scale).

    Returns
    -------
    numpy.ndarray
        Booleans, one per row of ``fixes``.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id="s", t_utc=pd.date_range("2025-01-01T10:00Z", periods=5, freq="1min"),
    ...                lat=[51.0, 51.001, 51.002, 51.003, 51.004], lon=[3.7, 3.7001, 3.7, 3.7, 3.7])
    >>> simplify_keep(prepare_fixes(f), tol_m=50.0).tolist()  # a straight line: its two ends
    [True, False, False, False, True]
    """
    f = fixes
    n = len(f)
    keep = np.zeros(n, dtype=bool)
    if not n:
        return keep
    lat, lon = f["lat"].to_numpy(float), f["lon"].to_numpy(float)
    clat, clon = float(np.nanmean(lat)), float(np.nanmean(lon))
    proj = pyproj.Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={clat:.4f} +lon_0={clon:.4f} +datum=WGS84 +units=m",
        always_xy=True)
    x, y = proj.transform(lon, lat)
    subj = f["subject_id"].astype(str).to_numpy()
    codes = np.unique(subj, return_inverse=True)[1].ravel()
    sizes = np.bincount(codes)
    multi = sizes[codes] >= 2
    keep[~multi] = True
    if multi.any():
        lines = shapely.linestrings(np.c_[x[multi], y[multi], np.arange(n)[multi].astype(float)],
                                    indices=np.unique(codes[multi], return_inverse=True)[1].ravel())
        lines = lines[~shapely.is_missing(lines)]
        simp = shapely.simplify(lines, tol_m, preserve_topology=False)
        keep[shapely.get_coordinates(simp, include_z=True)[:, 2].round().astype(np.int64)] = True
    return keep
