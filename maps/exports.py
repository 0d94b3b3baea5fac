"""Exhibit exports: KML/KMZ with time, GeoPackage layers, GeoJSON, GPX, chronology CSV.

All writers are deterministic (sorted rows, no wall-clock times; KMZ members and GeoPackage
timestamps take ``SOURCE_DATE_EPOCH`` or 1980-01-01) and write only to the output folder.
Times are written in UTC (``...Z``) in the machine formats; local times with offsets are in
the chronology CSV beside them. docs/exports.md describes the KML (gx:Track per subject and
trip, how open time spans are written, how device text stays text), the GeoPackage (typed
times, rows without a position) and the CSV rules.
"""

from __future__ import annotations

import colorsys
import html
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from lxml import etree

from .. import __version__, schema
from ..csvout import iso_utc, write_csv
from ..display import visible
from ..localtime import TZ_CONVENTION, fmt_duration, fmt_local, tz_at, tz_names
from .chronology import build_chronology, number_stops
from .timeline import SUBJECT_COLOURS

__all__ = ["GX_NS", "KML_FIX_LIMIT", "KML_NS", "KML_TIME_NOTE", "gpkg_frame", "write_chronology_csv",
           "write_geojson", "write_geopackage", "write_gpkg_table", "write_gpx", "write_kml", "write_kmz"]

KML_NS = "http://www.opengis.net/kml/2.2"
GX_NS = "http://www.google.com/kml/ext/2.2"
GPX_NS = "http://www.topografix.com/GPX/1/1"
#: Above this many fixes the KML carries the Douglas-Peucker vertices of the route (the
#: smallest of 4, 15, 60, 250, 1000 m that fits), each still an exact fix with its own
#: TimeStamp; every fix is in the GeoPackage/GeoJSON.
KML_FIX_LIMIT = 100_000


def _iso(t: Any) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ") if pd.notna(t) else ""


def _iso_ms(series: pd.Series) -> list[str]:
    s = pd.Series(series.to_numpy(), dtype="datetime64[ns, UTC]")
    whole = (pd.DatetimeIndex(s).as_unit("ns").asi8 % 1_000_000_000) == 0
    a = s.dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    b = s.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").tolist()
    return [x if w else y[:-4] + "Z" for x, y, w in zip(a, b, whole, strict=True)]


def _epoch() -> int:
    sde = os.environ.get("SOURCE_DATE_EPOCH", "")
    return max(int(sde), 315532800) if sde.strip().isdigit() else 315532800  # >= 1980-01-01


def _sub(parent: etree._Element, tag: str, text: str | None = None, ns: str = KML_NS) -> etree._Element:
    e = etree.SubElement(parent, f"{{{ns}}}{tag}")
    if text is not None:
        e.text = text
    return e


def _fix_subset(fixes: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if len(fixes) <= KML_FIX_LIMIT:
        return fixes, ""
    from .timeline import simplify_keep
    for tol in (4.0, 15.0, 60.0, 250.0, 1000.0):
        keep = simplify_keep(fixes, tol_m=tol)
        if keep.sum() <= KML_FIX_LIMIT:
            break
    note = (f"{len(fixes)} fixes: this KML carries the {int(keep.sum())} fixes kept by Douglas-Peucker "
            f"at {tol:g} m (each an exact fix with its own time); every fix is in the GeoPackage and GeoJSON.")
    return fixes[keep], note


# --- KML --------------------------------------------------------------------------------

def _visible(s: object) -> str:
    """``s`` as text that XML 1.0 can carry, with control, bidi and invisible characters shown
    as ``[U+XXXX]`` (:func:`routetrace.display.visible`); tab and line breaks kept."""
    return visible(s, keep="\t\n\r")


def _label(s: object) -> str:
    """A ``<name>``: plain text that no viewer can read a tag in (``<`` ``>`` shown as ``‹``
    ``›``; the exact text is in the escaped description), control/bidi characters visible."""
    return _visible(s).replace("<", "\u2039").replace(">", "\u203a")


def _describe(parent: etree._Element, lines: list[str]) -> None:
    """A ``<description>`` Google Earth can render as HTML without running device text.

    Google Earth shows descriptions as HTML, so every line is HTML-escaped (``<`` becomes
    ``&lt;``, quotes too) and the whole is put in CDATA: after the XML parser the balloon
    sees ``&lt;script&gt;`` (text), never ``<script>``. The only markup is our ``<br>``
    between lines. ``]]>`` in device text cannot end the CDATA: its ``>`` is escaped.
    """
    body = "<br>".join(html.escape(_visible(x), quote=True).replace("\n", "<br>") for x in lines)
    _sub(parent, "description").text = etree.CDATA(body)


def _kml_colour(hex_rgb: str) -> str:
    """``#e41a1c`` -> KML ``ff1c1ae4`` (aabbggrr)."""
    r, g, b = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    return f"ff{b}{g}{r}".lower()


def _subject_colours(subjects: list[str]) -> dict[str, str]:
    """A distinct KML colour per subject: the exhibit map's colours first (same subject, same
    colour), then further hues by the golden angle."""
    out: dict[str, str] = {}
    for i, s in enumerate(subjects):
        if i < len(SUBJECT_COLOURS):
            out[s] = _kml_colour(SUBJECT_COLOURS[i])
            continue
        k = i - len(SUBJECT_COLOURS)
        while True:
            r, g, b = colorsys.hsv_to_rgb((k * 0.618033988749895) % 1.0, 0.85, 0.8)
            c = _kml_colour(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
            if c not in out.values():
                break
            k += 1
        out[s] = c
    return out


def _style(doc: etree._Element, sid: str, *, icon: str | None = None, label_scale: float | None = None,
           line: tuple[str, int] | None = None) -> None:
    """A shared ``<Style>``: children in KML 2.2 order, and a balloon that shows only the
    (escaped) description, so no feature's name is put into the balloon HTML."""
    st = _sub(doc, "Style")
    st.set("id", sid)
    if icon is not None:
        ic = _sub(st, "IconStyle")
        _sub(ic, "color", icon)
        _sub(ic, "scale", "1.0")
    if label_scale is not None:
        lb = _sub(st, "LabelStyle")
        _sub(lb, "scale", f"{label_scale:g}")
    if line is not None:
        ls = _sub(st, "LineStyle")
        _sub(ls, "color", line[0])
        _sub(ls, "width", str(line[1]))
    bs = _sub(st, "BalloonStyle")
    _sub(bs, "text", "$[description]")


def _span_name(t0: pd.Timestamp, t1: pd.Timestamp, tz: str) -> str:
    """``2025-10-24 14:05–14:50`` (local time of the place; both dates when they differ)."""
    a, b = t0.tz_convert(ZoneInfo(tz)), t1.tz_convert(ZoneInfo(tz))
    if a.date() == b.date():
        return f"{a:%Y-%m-%d %H:%M}–{b:%H:%M}"
    return f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M}"


def _span_kind(begin: Any, end: Any) -> str:
    """How a time span is bounded: ``closed``, ``open end``, ``open start`` or ``none``."""
    return {(True, True): "closed", (True, False): "open end", (False, True): "open start",
            (False, False): "none"}[(bool(pd.notna(begin)), bool(pd.notna(end)))]


def _time_span(pm: etree._Element, begin: Any, end: Any) -> None:
    """A ``TimeSpan``: ``begin`` and ``end`` when known; a missing one is left out, which
    KML 2.2 defines as unbounded on that side (an empty ``TimeSpan``: no time at all)."""
    ts = _sub(pm, "TimeSpan")
    if pd.notna(begin):
        _sub(ts, "begin", _iso(begin))
    if pd.notna(end):
        _sub(ts, "end", _iso(end))


def _placemark(parent: etree._Element, name: str, lines: list[str]) -> etree._Element:
    pm = _sub(parent, "Placemark")
    _sub(pm, "name", _label(name))
    _describe(pm, [name, *lines])
    return pm


def _segments(f: pd.DataFrame, trips: pd.DataFrame, gaps: pd.DataFrame,
              stops: pd.DataFrame) -> list[tuple[str, str, np.ndarray]]:
    """(subject, label, fix positions) for every track: each subject's fixes cut at every
    unobserved interval and at every trip's ends, so each fix is in exactly one track and no
    silence is drawn as a route. Labels: ``Trip k`` (k-th trip of the subject, ``, part j``
    when a silence cuts it), ``At stop n`` (fixes during numbered stop n) or ``Route``."""
    out: list[tuple[str, str, np.ndarray]] = []
    if not len(f):
        return out
    for s, idx in f.groupby(f["subject_id"].astype(str), sort=True).indices.items():
        idx = np.asarray(idx)
        t = pd.DatetimeIndex(f["t_utc"].iloc[idx]).as_unit("ns").asi8
        ts = trips[trips["subject_id"].astype(str) == s].sort_values("t_start", kind="mergesort")
        b = pd.DatetimeIndex(ts["t_start"]).as_unit("ns").asi8
        e = pd.DatetimeIndex(ts["t_end"]).as_unit("ns").asi8
        j = np.searchsorted(b, t, side="right") - 1
        trip_no = np.where((j >= 0) & (t <= e[np.clip(j, 0, None)] if len(e) else False), j, -1)
        brk = np.zeros(len(idx), dtype=bool)
        brk[1:] = trip_no[1:] != trip_no[:-1]
        gs = gaps[gaps["subject_id"].astype(str) == s]
        if len(gs):
            k = np.searchsorted(t, pd.DatetimeIndex(gs["t_start"]).as_unit("ns").asi8, side="right")
            brk[k[(k > 0) & (k < len(idx))]] = True
        ss = stops[stops["subject_id"].astype(str) == s]
        parts: dict[int, int] = {}
        for run in np.split(np.arange(len(idx)), np.flatnonzero(brk)):
            n = int(trip_no[run[0]])
            if n >= 0:
                parts[n] = parts.get(n, 0) + 1
                label = f"Trip {n + 1}" + (f", part {parts[n]}" if parts[n] > 1 else "")
            else:
                label = _stop_label(ss, t[run[0]], t[run[-1]])
            out.append((s, label, idx[run]))
    return out


def _stop_label(stops: pd.DataFrame, t0: int, t1: int) -> str:
    """``At stop n`` when at least half of the run ``t0..t1`` (ns) lies in numbered stop
    ``n`` of the subject (the stop it overlaps most), else ``Route``."""
    if len(stops):
        a = pd.DatetimeIndex(stops["t_arrival"]).as_unit("ns").asi8
        d = pd.DatetimeIndex(stops["t_departure"]).as_unit("ns").asi8
        overlap = np.minimum(d, t1) - np.maximum(a, t0)
        best = int(np.argmax(overlap))
        if overlap[best] >= 0 and 2 * overlap[best] >= t1 - t0:
            return f"At stop {int(stops['no'].iloc[best])}"
    return "Route"


def _track(parent: etree._Element, f: pd.DataFrame, pos: np.ndarray, times: list[str],
           tz: str, label: str, style: str, note: str) -> None:
    """One ``gx:Track`` Placemark (KML 2.2 + gx): TimeSpan, every fix as ``when``/``gx:coord``
    and its accuracy as ``gx:SimpleArrayData``."""
    t = f["t_utc"]
    t0, t1 = t.iat[int(pos[0])], t.iat[int(pos[-1])]
    srcs = sorted({str(x)[:16] for x in f["source_id"].iloc[pos]})
    pm = _placemark(parent, f"{label} — {_span_name(t0, t1, tz)}", [
        f"subject: {f['subject_id'].iat[int(pos[0])]}", f"from {fmt_local(t0, tz)}", f"to {fmt_local(t1, tz)}",
        f"{len(pos)} fixes (UTC {times[int(pos[0])]} to {times[int(pos[-1])]}) from source(s) "
        f"{', '.join(srcs)}; each fix with its source file and record is in exhibit.gpkg (layer fixes)",
        *([note] if note else [])])
    _time_span(pm, t0, t1)
    _sub(pm, "styleUrl", f"#{style}")
    tr = _sub(pm, "Track", ns=GX_NS)
    _sub(tr, "altitudeMode", "clampToGround")
    for i in pos:
        _sub(tr, "when", times[i])
    lat, lon = f["lat"].to_numpy(float), f["lon"].to_numpy(float)
    for i in pos:
        _sub(tr, "coord", f"{lon[i]:.7f} {lat[i]:.7f} 0", ns=GX_NS)
    sd = _sub(_sub(tr, "ExtendedData"), "SchemaData")
    sd.set("schemaUrl", "#fix_data")
    arr = _sub(sd, "SimpleArrayData", ns=GX_NS)
    arr.set("name", "h_acc_m")
    acc = f["h_acc_m"].to_numpy(float)
    for i in pos:
        _sub(arr, "value", "" if np.isnan(acc[i]) else f"{acc[i]:.1f}", ns=GX_NS)


def _stop_placemarks(parent: etree._Element, st: pd.DataFrame, tzs: list[str], style: str) -> None:
    for k, r in zip(st.index, st.itertuples(index=False), strict=True):
        pm = _placemark(parent, f"Stop {r.no} — {_span_name(r.t_arrival, r.t_departure, tzs[k])}", [
            f"subject: {r.subject_id}", f"arrival {fmt_local(r.t_arrival, tzs[k])}",
            f"departure {fmt_local(r.t_departure, tzs[k])}", f"dwell {fmt_duration(r.dwell)}",
            f"radius {float(r.radius_m):.0f} m; {int(r.n_fixes)} fixes", f"stop id {r.stop_id}",
            *([f"flags: {r.flags}"] if str(r.flags) else [])])
        _time_span(pm, r.t_arrival, r.t_departure)
        _sub(pm, "styleUrl", f"#{style}")
        _sub(_sub(pm, "Point"), "coordinates", f"{float(r.lon):.7f},{float(r.lat):.7f}")


def _gap_placemarks(parent: etree._Element, sg: pd.DataFrame) -> None:
    for r in sg.sort_values("t_start", kind="mergesort").itertuples(index=False):
        tz = tz_at(float(r.lat_start), float(r.lon_start))
        pm = _placemark(parent, f"Unobserved {fmt_duration(r.duration)}", [
            f"from {fmt_local(r.t_start, tz)} to {fmt_local(r.t_end, tz)}",
            "No fixes in this interval; the straight line is not the route.",
            *([f"flags: {r.flags}"] if str(r.flags) else [])])
        _time_span(pm, r.t_start, r.t_end)
        _sub(pm, "styleUrl", "#gap")
        ln = _sub(pm, "LineString")
        _sub(ln, "tessellate", "1")
        _sub(ln, "coordinates", f"{r.lon_start:.7f},{r.lat_start:.7f} {r.lon_end:.7f},{r.lat_end:.7f}")


_SPAN_WORDS = {"closed": "", "open end": "end: not in the evidence (open-ended)",
               "open start": "start: not in the evidence (open-ended)",
               "none": "time: none in the evidence (shown at every time)"}


def _place_name(r: dict[str, Any], n: int, tz: str) -> str:
    """The place's own name; else its kind in words with its time (``Visit 2025-10-24
    14:00–19:00``, ``Visit from 2025-10-24 14:00``) or its number (``Waypoint 3``)."""
    name = r.get("name")
    if isinstance(name, str) and name.strip():
        return name
    kind = str(r.get("kind") or "place").replace("_", " ").capitalize()
    b, e = r.get("t_start"), r.get("t_end")
    if pd.notna(b) and pd.notna(e):
        return f"{kind} {_span_name(b, e, tz)}"
    if pd.notna(b) or pd.notna(e):
        word, t = ("from", b) if pd.notna(b) else ("until", e)
        return f"{kind} {word} {pd.Timestamp(t).tz_convert(ZoneInfo(tz)):%Y-%m-%d %H:%M}"
    return f"{kind} {n}"


def _place_placemarks(parent: etree._Element, pl: pd.DataFrame) -> None:
    tzs = tz_names(pl["lat"], pl["lon"])
    seen: dict[str, int] = {}
    for k, r in enumerate(pl.to_dict("records")):
        kind = str(r.get("kind") or "place")
        seen[kind] = seen.get(kind, 0) + 1
        lines = [f"{c}: {r[c]}" for c in ("kind", "subject_id", "address", "text", "radius_m")
                 if c in r and r[c] is not None and not (not isinstance(r[c], str) and pd.isna(r[c]))]
        times = [f"{w} {fmt_local(r[c], tzs[k])}" for w, c in (("from", "t_start"), ("to", "t_end"))
                 if pd.notna(r.get(c))]
        name = _place_name(r, seen[kind], tzs[k])
        span = _span_kind(r.get("t_start"), r.get("t_end"))
        pm = _placemark(parent, name, [*lines, *times, *([_SPAN_WORDS[span]] if _SPAN_WORDS[span] else []),
                                       f"source {str(r.get('source_id'))[:16]} record {r.get('record')}"])
        _time_span(pm, r.get("t_start"), r.get("t_end"))
        _sub(pm, "styleUrl", "#place")
        dt = _sub(_sub(pm, "ExtendedData"), "Data")
        dt.set("name", "time_span")
        _sub(dt, "value", span)
        _sub(_sub(pm, "Point"), "coordinates", f"{float(r['lon']):.7f},{float(r['lat']):.7f}")


#: How the KML writes time, stated in the document's description.
KML_TIME_NOTE = ("Every placemark has a TimeSpan. begin and end present: closed. A side that the "
                 "evidence does not give is left out, which KML 2.2 reads as unbounded on that side "
                 "(open-ended); an empty TimeSpan means the evidence gives no time and the place is "
                 "shown at every time. A place's ExtendedData 'time_span' says which: closed, open end, "
                 "open start or none.")


def _doc_head(doc: etree._Element, title: str, lines: list[str], subjects: list[str],
              colours: dict[str, str]) -> dict[str, str]:
    """Document name, description, shared styles (one per subject) and the fix-data schema;
    returns the style id of each subject."""
    _sub(doc, "name", _label(title))
    _sub(doc, "open", "1")
    _describe(doc, [title, *lines])
    _sub(doc, "styleUrl", "#balloon")
    _style(doc, "balloon")
    style_of = {s: f"subject-{i + 1}" for i, s in enumerate(subjects)}
    for s in subjects:
        _style(doc, style_of[s], icon=colours[s], label_scale=1.0, line=(colours[s], 4))
    _style(doc, "gap", line=("ff555555", 2))
    _style(doc, "place", icon="ff2b18b2", label_scale=0.9)
    sch = _sub(doc, "Schema")
    sch.set("name", "fix_data")
    sch.set("id", "fix_data")
    fld = _sub(sch, "SimpleArrayField", ns=GX_NS)
    fld.set("name", "h_acc_m")
    fld.set("type", "float")
    _sub(fld, "displayName", "horizontal accuracy (m)")
    return style_of


def _folder(parent: etree._Element, name: str) -> etree._Element:
    fo = _sub(parent, "Folder")
    _sub(fo, "name", _label(name))
    _sub(fo, "styleUrl", "#balloon")
    return fo


def _kml_tree(fixes: pd.DataFrame, stops: pd.DataFrame, gaps: pd.DataFrame, places: pd.DataFrame,
              sources: pd.DataFrame | None, trips: pd.DataFrame, *, case_id: str,
              exhibit_no: str, notes: Sequence[str] = ()) -> etree._ElementTree:
    from .timeline import prepare_fixes
    f, note = _fix_subset(prepare_fixes(fixes))
    numbered = number_stops(stops)
    root = etree.Element(f"{{{KML_NS}}}kml", nsmap={None: KML_NS, "gx": GX_NS})
    doc = _sub(root, "Document")
    src_lines = [] if sources is None else [
        f"{r.path}: SHA-256 {r.source_id}" for r in sources.sort_values("path").itertuples()]
    mapped = sorted(set(f["subject_id"].astype(str)) | set(numbered["subject_id"].astype(str)))
    subjects = mapped + sorted(set(gaps["subject_id"].astype(str)) - set(mapped))
    style_of = _doc_head(doc, f"Exhibit {exhibit_no} · Case {case_id}", [
        *notes, f"routetrace {__version__}. {TZ_CONVENTION} KML times are UTC.", KML_TIME_NOTE,
        *([note] if note else []), "Sources:", *src_lines], subjects, _subject_colours(subjects))
    times = _iso_ms(f["t_utc"]) if len(f) else []
    segs = _segments(f, trips, gaps, numbered)
    stz = tz_names(numbered["lat"], numbered["lon"])
    for s in subjects:
        folder = _folder(doc, s)
        mine = [(label, pos) for subj, label, pos in segs if subj == s]
        if mine:
            rf = _folder(folder, "Route")
            for label, pos in mine:
                tz = tz_at(float(f["lat"].iat[int(pos[0])]), float(f["lon"].iat[int(pos[0])]))
                _track(rf, f, pos, times, tz, label, style_of[s], note)
        sst = numbered[numbered["subject_id"].astype(str) == s]
        if len(sst):
            _stop_placemarks(_folder(folder, "Stops"), sst, stz, style_of[s])
        sg = gaps[(gaps["subject_id"].astype(str) == s) & gaps["lat_start"].notna() & gaps["lat_end"].notna()]
        if len(sg):
            _gap_placemarks(_folder(folder, "Unobserved intervals"), sg)
    pl = places[places["lat"].notna() & places["lon"].notna()].sort_values("place_id", kind="mergesort")
    if len(pl):
        _place_placemarks(_folder(doc, "Places"), pl.reset_index(drop=True))
    return etree.ElementTree(root)


def write_kml(path: str | Path, fixes: pd.DataFrame, stops: pd.DataFrame, gaps: pd.DataFrame,
              places: pd.DataFrame, sources: pd.DataFrame | None = None, *, case_id: str,
              exhibit_no: str, trips: pd.DataFrame | None = None, notes: Sequence[str] = ()) -> Path:
    """Write KML 2.2 with Google's ``gx`` extension, for Google Earth's time slider.

    Per subject (one shared ``Style`` each, a distinct colour, used by its tracks and stops):
    a ``Route`` folder of ``gx:Track`` placemarks, one per trip (``Trip 2 — 2025-10-24
    14:05–14:50``; ``At stop n`` / ``Route`` for fixes outside every trip), cut at every
    unobserved interval, each fix a ``when``/``gx:coord`` with its accuracy; the numbered
    stops (``Stop 3 — 2025-10-24 14:05–14:50``); the unobserved intervals. Then the places,
    by name (or kind and time when they have none). No fix is a labelled placemark.

    Every placemark has a ``TimeSpan`` (see :data:`KML_TIME_NOTE` for how open spans are
    written). Descriptions are HTML-escaped text in CDATA (Google Earth renders them as
    HTML, so device text must stay text); names are plain text, kept out of the balloon by
    a ``BalloonStyle`` that shows only the description.

    Parameters
    ----------
    path
        The ``.kml`` file to write.
    fixes, stops, gaps, places, sources, trips
        Canonical tables; ``trips`` names the tracks (without it a subject's tracks are its
        route parts between unobserved intervals).
    case_id, exhibit_no
        Shown in the document's name.
    notes
        Lines opening the document's description (e.g. which subjects and period an
        exhibit shows).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> from routetrace.samples.demo_tables import demo_tables
    >>> import tempfile
    >>> d = demo_tables(200)
    >>> p = write_kml(Path(tempfile.mkdtemp()) / "x.kml", d["fixes"], d["stops"], d["gaps"],
    ...               d["places"], case_id="C-1", exhibit_no="7")
    >>> b"<gx:Track>" in p.read_bytes()
    True
    """
    p = Path(path)
    trips_t = schema.empty("trips") if trips is None else schema.validate(trips, "trips")
    tree = _kml_tree(fixes, stops, gaps, places, sources, trips_t, case_id=case_id, exhibit_no=exhibit_no,
                     notes=notes)
    p.write_bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    return p


def write_kmz(path: str | Path, kml_path: str | Path) -> Path:
    """KMZ: the KML as ``doc.kml`` in a zip with fixed member time.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.kmz`` file to write.
    kml_path : str or pathlib.Path
        The KML written by :func:`write_kml`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.samples.demo_tables import demo_tables
    >>> d = demo_tables(200)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> import zipfile
    >>> k = write_kml(Path(tmp.name) / "x.kml", d["fixes"], d["stops"], d["gaps"], d["places"],
    ...               case_id="C-1", exhibit_no="7")
    >>> zipfile.ZipFile(write_kmz(Path(tmp.name) / "x.kmz", k)).namelist()
    ['doc.kml']
    >>> tmp.cleanup()
    """
    p = Path(path)
    stamp = pd.Timestamp(_epoch(), unit="s", tz="UTC")
    info = zipfile.ZipInfo("doc.kml", date_time=(stamp.year, stamp.month, stamp.day, stamp.hour,
                                                 stamp.minute, stamp.second))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zipfile.ZipFile(p, "w") as z:
        z.writestr(info, Path(kml_path).read_bytes())
    return p


def write_chronology_csv(path: str | Path, stops: pd.DataFrame, gaps: pd.DataFrame,
                         places: pd.DataFrame, sources: pd.DataFrame | None = None) -> Path:
    """The chronology (numbered stops and unobserved intervals) as CSV, local and UTC times,
    through the one formula-safe writer (:func:`routetrace.csvout.write_csv`).

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.csv`` file to write.
    stops, gaps, places : pandas.DataFrame
        Canonical tables, as for :func:`routetrace.maps.chronology.build_chronology`.
    sources : pandas.DataFrame, optional
        The ``sources`` table, cited per row; default None.

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.samples.demo_tables import demo_tables
    >>> d = demo_tables(200)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = write_chronology_csv(Path(tmp.name) / "c.csv", d["stops"], d["gaps"], d["places"])
    >>> p.read_text().splitlines()[0].split(",")[:4], len(pd.read_csv(p))  # 3 stops, 1 gap
    (['no', 'row_kind', 'subject_id', 'id'], 4)
    >>> tmp.cleanup()
    """
    return write_csv(build_chronology(stops, gaps, places, sources), path)


def _route_parts(f: pd.DataFrame, gaps: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """(subject, fix positions in ``f``) per unbroken part of each subject's route."""
    out = []
    for s, idx in f.groupby(f["subject_id"].astype(str), sort=True).indices.items():
        t = pd.DatetimeIndex(f["t_utc"].iloc[idx]).as_unit("ns").asi8
        brk = np.zeros(len(idx), dtype=bool)
        gs = gaps[gaps["subject_id"].astype(str) == s]
        if len(gs):
            i = np.searchsorted(t, pd.DatetimeIndex(gs["t_start"]).as_unit("ns").asi8, side="right")
            brk[i[(i > 0) & (i < len(idx))]] = True
        for part in np.split(np.asarray(idx), np.flatnonzero(brk)):
            if len(part) >= 2:
                out.append((s, part))
    return out


def write_geojson(path: str | Path, fixes: pd.DataFrame, stops: pd.DataFrame, gaps: pd.DataFrame,
                  places: pd.DataFrame) -> Path:
    """One FeatureCollection: route parts (every fix, with its time list), stops, places,
    unobserved intervals. Coordinates rounded to 1e-7 degrees.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.geojson`` file to write.
    fixes, stops, gaps, places : pandas.DataFrame
        Canonical tables (:mod:`routetrace.schema`).

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.samples.demo_tables import demo_tables
    >>> d = demo_tables(200)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> import json
    >>> p = write_geojson(Path(tmp.name) / "x.geojson", d["fixes"], d["stops"], d["gaps"], d["places"])
    >>> sorted({f["properties"]["layer"] for f in json.loads(p.read_text())["features"]})
    ['place', 'route', 'stop', 'unobserved']
    >>> tmp.cleanup()
    """
    from .timeline import prepare_fixes
    f = prepare_fixes(fixes)
    feats: list[dict[str, Any]] = []
    lat, lon = np.round(f["lat"].to_numpy(float), 7), np.round(f["lon"].to_numpy(float), 7)
    times = np.asarray(_iso_ms(f["t_utc"]) if len(f) else [], dtype=object)
    for k, (s, part) in enumerate(_route_parts(f, gaps)):
        feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": np.c_[
            lon[part], lat[part]].tolist()}, "properties": {
            "layer": "route", "subject_id": s, "part": k, "t_start": times[part[0]],
            "t_end": times[part[-1]], "times": times[part].tolist()}})
    for r in number_stops(stops).itertuples(index=False):
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [
            round(float(r.lon), 7), round(float(r.lat), 7)]}, "properties": {
            "layer": "stop", "no": int(r.no), "stop_id": r.stop_id, "subject_id": r.subject_id,
            "t_arrival": _iso(r.t_arrival), "t_departure": _iso(r.t_departure),
            "dwell_s": float(r.dwell.total_seconds()), "radius_m": float(r.radius_m),
            "n_fixes": int(r.n_fixes), "sources": r.sources, "flags": r.flags}})
    for r in places.sort_values("place_id", kind="mergesort").to_dict("records"):
        if pd.isna(r["lat"]) or pd.isna(r["lon"]):
            continue
        props: dict[str, Any] = {"layer": "place"}
        for c in ("place_id", "subject_id", "kind", "name", "address", "text", "radius_m",
                  "t_start", "t_end", "source_id", "record", "flags"):
            v = r.get(c)
            props[c] = None if v is None or (not isinstance(v, str) and pd.isna(v)) else (
                _iso(v) if c.startswith("t_") else v)
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [
            round(float(r["lon"]), 7), round(float(r["lat"]), 7)]}, "properties": props})
    for r in gaps.sort_values(["t_start", "gap_id"], kind="mergesort").itertuples(index=False):
        geom = None if pd.isna(r.lat_start) or pd.isna(r.lat_end) else {"type": "LineString", "coordinates": [
            [round(float(r.lon_start), 7), round(float(r.lat_start), 7)],
            [round(float(r.lon_end), 7), round(float(r.lat_end), 7)]]}
        feats.append({"type": "Feature", "geometry": geom, "properties": {
            "layer": "unobserved", "gap_id": r.gap_id, "subject_id": r.subject_id,
            "t_start": _iso(r.t_start), "t_end": _iso(r.t_end),
            "duration_s": float(r.duration.total_seconds()), "flags": r.flags}})
    p = Path(path)
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False,
                            separators=(",", ":"), allow_nan=False, default=str), encoding="utf-8")
    return p


def write_gpx(path: str | Path, fixes: pd.DataFrame, stops: pd.DataFrame, gaps: pd.DataFrame,
              places: pd.DataFrame) -> Path:
    """GPX 1.1: stops and places as waypoints, one track per subject, one segment per
    unbroken part (a new segment after each unobserved interval).

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.gpx`` file to write.
    fixes, stops, gaps, places : pandas.DataFrame
        Canonical tables (:mod:`routetrace.schema`).

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.samples.demo_tables import demo_tables
    >>> d = demo_tables(200)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> b = write_gpx(Path(tmp.name) / "x.gpx", d["fixes"], d["stops"], d["gaps"], d["places"]).read_bytes()
    >>> b.count(b"<wpt"), b.count(b"<trk>"), b.count(b"<trkseg")
    (5, 2, 3)
    >>> tmp.cleanup()
    """
    from .timeline import prepare_fixes
    f = prepare_fixes(fixes)
    root = etree.Element(f"{{{GPX_NS}}}gpx", nsmap={None: GPX_NS})
    root.set("version", "1.1")
    root.set("creator", f"routetrace {__version__}")
    for r in number_stops(stops).itertuples(index=False):
        w = _sub(root, "wpt", ns=GPX_NS)
        w.set("lat", f"{float(r.lat):.7f}")
        w.set("lon", f"{float(r.lon):.7f}")
        _sub(w, "time", _iso(r.t_arrival), ns=GPX_NS)
        _sub(w, "name", f"Stop {r.no}", ns=GPX_NS)
        _sub(w, "desc", f"{r.subject_id}: {_iso(r.t_arrival)} to {_iso(r.t_departure)}, dwell "
             f"{fmt_duration(r.dwell)}", ns=GPX_NS)
    for r in places.sort_values("place_id", kind="mergesort").to_dict("records"):
        if pd.isna(r["lat"]) or pd.isna(r["lon"]):
            continue
        w = _sub(root, "wpt", ns=GPX_NS)
        w.set("lat", f"{float(r['lat']):.7f}")
        w.set("lon", f"{float(r['lon']):.7f}")
        if pd.notna(r.get("t_start")):
            _sub(w, "time", _iso(r["t_start"]), ns=GPX_NS)
        _sub(w, "name", str(r["name"]) if pd.notna(r.get("name")) else str(r["kind"]), ns=GPX_NS)
        _sub(w, "type", str(r["kind"]), ns=GPX_NS)
    lat, lon = f["lat"].to_numpy(float), f["lon"].to_numpy(float)
    times = _iso_ms(f["t_utc"]) if len(f) else []
    current = None
    trk = None
    for s, part in _route_parts(f, gaps):
        if s != current:
            trk = _sub(root, "trk", ns=GPX_NS)
            _sub(trk, "name", s, ns=GPX_NS)
            current = s
        assert trk is not None
        seg = _sub(trk, "trkseg", ns=GPX_NS)
        for i in part:
            pt = _sub(seg, "trkpt", ns=GPX_NS)
            pt.set("lat", f"{lat[i]:.7f}")
            pt.set("lon", f"{lon[i]:.7f}")
            _sub(pt, "time", times[i], ns=GPX_NS)
    p = Path(path)
    p.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    return p


def gpkg_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df``'s columns as a GeoPackage stores them, typed.

    Times (``datetime64`` with a zone) stay typed and are stored as GeoPackage ``DATETIME``
    in UTC, which keeps milliseconds; a column holding finer times also gets ``NAME_iso``,
    ISO 8601 text with every digit, so nothing is rounded away. Durations become seconds in
    ``NAME_s``. Text stays text, numbers numbers.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table; not modified.

    Returns
    -------
    pandas.DataFrame
        A new table with the columns typed as described.

    Examples
    --------
    >>> t = pd.DataFrame({"t": pd.to_datetime(["2025-01-01T00:00:00.000000500Z"]),
    ...                   "dwell": pd.to_timedelta([90], unit="s")})
    >>> list(gpkg_frame(t).columns)
    ['t', 't_iso', 'dwell_s']
    """
    cols: dict[str, Any] = {}
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_timedelta64_dtype(col.dtype):
            cols[f"{c}_s"] = col.dt.total_seconds()
        elif isinstance(col.dtype, pd.DatetimeTZDtype):
            utc = col.dt.tz_convert("UTC")
            cols[c] = utc
            ns = pd.DatetimeIndex(utc).as_unit("ns").asi8[utc.notna().to_numpy()]
            if (ns % 1_000_000 != 0).any():
                cols[f"{c}_iso"] = iso_utc(col)
        elif pd.api.types.is_string_dtype(col.dtype) or pd.api.types.is_object_dtype(col.dtype):
            cols[c] = col.astype(object).where(col.notna(), None)
        else:
            cols[c] = col
    return pd.DataFrame(cols, index=df.index)


def write_gpkg_table(path: str | Path, layer: str, df: pd.DataFrame) -> list[str]:
    """Write ``df`` into the GeoPackage ``path`` (added to it) and return the layers written.

    A table with ``lat``/``lon`` becomes the point layer ``layer`` (EPSG:4326) for its rows
    with a position and, when some rows have none (an ignition event, a chat message), the
    attribute table ``LAYER_no_position`` for those: no row is left out. A table without
    positions is an attribute table ``layer``. Columns as :func:`gpkg_frame` types them.

    Parameters
    ----------
    path : str or pathlib.Path
        The GeoPackage (created, or added to).
    layer : str
        The layer name.
    df : pandas.DataFrame
        The table.

    Returns
    -------
    list of str
        The layers written (one or two).

    Examples
    --------
    >>> import tempfile, pyogrio
    >>> ev = pd.DataFrame({"kind": ["door", "message"], "lat": [51.0, None], "lon": [3.7, None],
    ...                    "t_utc": pd.to_datetime(["2025-01-01T10:00Z", "2025-01-01T11:00Z"])})
    >>> p = Path(tempfile.mkdtemp()) / "x.gpkg"
    >>> write_gpkg_table(p, "events", ev)
    ['events', 'events_no_position']
    >>> str(pyogrio.read_dataframe(p, layer="events_no_position")["t_utc"].dtype)
    'datetime64[ms, UTC]'
    """
    import geopandas as gpd
    import pyogrio

    p = Path(path)
    if not {"lat", "lon"} <= set(df.columns):
        pyogrio.write_dataframe(gpkg_frame(df).reset_index(drop=True), p, layer=layer, driver="GPKG")
        return [layer]
    has = (df["lat"].notna() & df["lon"].notna()).to_numpy()
    placed = df[has].reset_index(drop=True)
    gdf = gpd.GeoDataFrame(gpkg_frame(placed), geometry=gpd.points_from_xy(
        placed["lon"].to_numpy(float), placed["lat"].to_numpy(float)), crs="EPSG:4326")
    pyogrio.write_dataframe(gdf, p, layer=layer, driver="GPKG")
    if has.all():
        return [layer]
    rest = f"{layer}_no_position"
    pyogrio.write_dataframe(gpkg_frame(df[~has].reset_index(drop=True)), p, layer=rest, driver="GPKG")
    return [layer, rest]


def write_geopackage(path: str | Path, fixes: pd.DataFrame, stops: pd.DataFrame, trips: pd.DataFrame | None,
                     gaps: pd.DataFrame, places: pd.DataFrame) -> Path:
    """GeoPackage with layers ``fixes, stops, trips, places, gaps`` (EPSG:4326).

    Times are typed ``DATETIME`` (UTC), durations seconds (``*_s``), see :func:`gpkg_frame`.
    Every fix and place is written: rows without a position go to ``fixes_no_position`` /
    ``places_no_position``. Trip lines are built from the subject's fixes between the
    trip's start and end; a gap without both ends has no geometry.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.gpkg`` file to write.
    fixes, stops, gaps, places : pandas.DataFrame
        Canonical tables.
    trips : pandas.DataFrame or None
        A ``trips`` table; None writes no ``trips`` layer.

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.samples.demo_tables import demo_tables
    >>> d = demo_tables(200)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> import pyogrio
    >>> p = write_geopackage(Path(tmp.name) / "x.gpkg", d["fixes"], d["stops"], None, d["gaps"], d["places"])
    >>> sorted(name for name, _ in pyogrio.list_layers(p))
    ['fixes', 'gaps', 'places', 'stops']
    >>> tmp.cleanup()
    """
    import geopandas as gpd
    import pyogrio
    import shapely

    from .timeline import prepare_fixes
    p = Path(path)
    if p.exists():
        p.unlink()
    stamp = pd.Timestamp(_epoch(), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": stamp})
    try:
        schema.validate(fixes, "fixes")
        write_gpkg_table(p, "fixes", schema.with_ids(fixes, "fixes").sort_values(["subject_id", "t_utc"],
                                                                              kind="mergesort"))
        write_gpkg_table(p, "stops", number_stops(stops))
        f = prepare_fixes(fixes)
        if trips is not None and len(trips):
            tr = trips.sort_values(["subject_id", "t_start", "trip_id"], kind="mergesort").reset_index(drop=True)
            geoms = []
            for r in tr.itertuples(index=False):
                sel = f[(f["subject_id"] == r.subject_id) & (f["t_utc"] >= r.t_start) & (f["t_utc"] <= r.t_end)]
                geoms.append(shapely.linestrings(np.c_[sel["lon"], sel["lat"]]) if len(sel) >= 2 else None)
            pyogrio.write_dataframe(gpd.GeoDataFrame(gpkg_frame(tr), geometry=geoms, crs="EPSG:4326"), p,
                                    layer="trips", driver="GPKG")
        write_gpkg_table(p, "places", places.sort_values("place_id", kind="mergesort"))
        g = gaps.sort_values(["subject_id", "t_start", "gap_id"], kind="mergesort").reset_index(drop=True)
        ggeom = [shapely.linestrings([[a, b], [c, d]]) if not np.isnan([a, b, c, d]).any() else None
                 for a, b, c, d in zip(g["lon_start"].to_numpy(float), g["lat_start"].to_numpy(float),
                                       g["lon_end"].to_numpy(float), g["lat_end"].to_numpy(float), strict=True)]
        pyogrio.write_dataframe(gpd.GeoDataFrame(gpkg_frame(g), geometry=ggeom, crs="EPSG:4326"), p,
                                layer="gaps", driver="GPKG")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    return p


def empty_if_none(df: pd.DataFrame | None, kind: str) -> pd.DataFrame:
    """``df`` validated, or an empty table of ``kind``."""
    return schema.empty(kind) if df is None else schema.validate(df, kind)
