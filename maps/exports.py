"""Exhibit exports: KML/KMZ with time, GeoPackage layers, GeoJSON, GPX, chronology CSV.

All writers are deterministic (sorted rows, no wall-clock times; KMZ members and GeoPackage
timestamps take ``SOURCE_DATE_EPOCH`` or 1980-01-01) and write only to the output folder.
Times are written in UTC (``...Z``) in the machine formats; local times with offsets are in
the chronology CSV beside them.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lxml import etree

from .. import __version__, schema
from .chronology import build_chronology, number_stops
from .localtime import TZ_CONVENTION, fmt_duration, fmt_local, tz_names

__all__ = ["KML_FIX_LIMIT", "KML_NS", "write_chronology_csv", "write_geojson", "write_geopackage",
           "write_gpx", "write_kml", "write_kmz"]

KML_NS = "http://www.opengis.net/kml/2.2"
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


def _kml_tree(fixes: pd.DataFrame, stops: pd.DataFrame, gaps: pd.DataFrame, places: pd.DataFrame,
              sources: pd.DataFrame | None, *, case_id: str, exhibit_no: str) -> etree._ElementTree:
    from .timeline import prepare_fixes
    f = prepare_fixes(fixes)
    f, note = _fix_subset(f)
    root = etree.Element(f"{{{KML_NS}}}kml", nsmap={None: KML_NS})
    doc = _sub(root, "Document")
    _sub(doc, "name", f"Exhibit {exhibit_no} · Case {case_id}")
    src_lines = [] if sources is None else [
        f"{r.path}: SHA-256 {r.source_id}" for r in sources.sort_values("path").itertuples()]
    _sub(doc, "description", "\n".join([f"routetrace {__version__}. {TZ_CONVENTION} KML times are UTC.",
                                        *([note] if note else []), "Sources:", *src_lines]))
    for sid, colour, scale in (("fix", "ff2166ac", "0.5"), ("stop", "ff111111", "1.1"),
                               ("place", "ff2b18b2", "1.0")):
        st = _sub(doc, "Style")
        st.set("id", sid)
        ic = _sub(st, "IconStyle")
        _sub(ic, "color", colour)
        _sub(ic, "scale", scale)
    st = _sub(doc, "Style")
    st.set("id", "gap")
    ls = _sub(st, "LineStyle")
    _sub(ls, "color", "ff555555")
    _sub(ls, "width", "2")
    st = _sub(doc, "Style")
    st.set("id", "route")
    ls = _sub(st, "LineStyle")
    _sub(ls, "color", "ff1c1ae4")
    _sub(ls, "width", "3")

    numbered = number_stops(stops)
    stz = tz_names(numbered["lat"], numbered["lon"])
    subjects = sorted(set(f["subject_id"].astype(str)) | set(numbered["subject_id"].astype(str))
                      | set(gaps["subject_id"].astype(str)))
    times = _iso_ms(f["t_utc"]) if len(f) else []
    ftz = tz_names(f["lat"], f["lon"]) if len(f) else []
    for s in subjects:
        folder = _sub(doc, "Folder")
        _sub(folder, "name", s)
        idx = np.flatnonzero(f["subject_id"].astype(str).to_numpy() == s)
        if len(idx):
            ff = _sub(folder, "Folder")
            _sub(ff, "name", "Fixes")
            lat, lon = f["lat"].to_numpy(float), f["lon"].to_numpy(float)
            kinds, recs = f["fix_kind"].astype(str).to_numpy(), f["record"].astype(str).to_numpy()
            srcs, acc = f["source_id"].astype(str).to_numpy(), f["h_acc_m"].to_numpy(float)
            tvals = f["t_utc"]
            for i in idx:
                pm = _sub(ff, "Placemark")
                _sub(pm, "name", fmt_local(tvals.iat[i], ftz[i]))
                a = "" if np.isnan(acc[i]) else f", accuracy {acc[i]:.0f} m"
                _sub(pm, "description", f"{kinds[i]}{a}; source {srcs[i][:16]} record {recs[i]}")
                ts = _sub(pm, "TimeStamp")
                _sub(ts, "when", times[i])
                _sub(pm, "styleUrl", "#fix")
                pt = _sub(pm, "Point")
                _sub(pt, "coordinates", f"{lon[i]:.7f},{lat[i]:.7f}")
        sst = numbered[numbered["subject_id"].astype(str) == s]
        if len(sst):
            sf = _sub(folder, "Folder")
            _sub(sf, "name", "Stops")
            for k, r in zip(sst.index, sst.itertuples(index=False), strict=True):
                pm = _sub(sf, "Placemark")
                _sub(pm, "name", f"Stop {r.no}")
                _sub(pm, "description", f"arrival {fmt_local(r.t_arrival, stz[k])}; departure "
                     f"{fmt_local(r.t_departure, stz[k])}; dwell {fmt_duration(r.dwell)}; radius "
                     f"{float(r.radius_m):.0f} m; {int(r.n_fixes)} fixes; stop id {r.stop_id}")
                ts = _sub(pm, "TimeSpan")
                _sub(ts, "begin", _iso(r.t_arrival))
                _sub(ts, "end", _iso(r.t_departure))
                _sub(pm, "styleUrl", "#stop")
                pt = _sub(pm, "Point")
                _sub(pt, "coordinates", f"{float(r.lon):.7f},{float(r.lat):.7f}")
        sg = gaps[(gaps["subject_id"].astype(str) == s) & gaps["lat_start"].notna() & gaps["lat_end"].notna()]
        if len(sg):
            gf = _sub(folder, "Folder")
            _sub(gf, "name", "Unobserved intervals")
            for r in sg.sort_values("t_start", kind="mergesort").itertuples(index=False):
                pm = _sub(gf, "Placemark")
                _sub(pm, "name", f"unobserved {fmt_duration(r.duration)}")
                _sub(pm, "description", "No fixes in this interval; the straight line is not the route.")
                ts = _sub(pm, "TimeSpan")
                _sub(ts, "begin", _iso(r.t_start))
                _sub(ts, "end", _iso(r.t_end))
                _sub(pm, "styleUrl", "#gap")
                ln = _sub(pm, "LineString")
                _sub(ln, "tessellate", "1")
                _sub(ln, "coordinates", f"{r.lon_start:.7f},{r.lat_start:.7f} {r.lon_end:.7f},{r.lat_end:.7f}")
    pl = places[places["lat"].notna() & places["lon"].notna()].sort_values("place_id", kind="mergesort")
    if len(pl):
        pf = _sub(doc, "Folder")
        _sub(pf, "name", "Places")
        for r in pl.to_dict("records"):
            pm = _sub(pf, "Placemark")
            _sub(pm, "name", str(r.get("name")) if pd.notna(r.get("name")) else str(r["kind"]))
            desc = "; ".join(f"{c}: {r[c]}" for c in ("kind", "address", "text", "radius_m")
                             if c in r and pd.notna(r[c]))
            _sub(pm, "description", desc)
            if pd.notna(r.get("t_start")):
                ts = _sub(pm, "TimeSpan")
                _sub(ts, "begin", _iso(r["t_start"]))
                if pd.notna(r.get("t_end")):
                    _sub(ts, "end", _iso(r["t_end"]))
            _sub(pm, "styleUrl", "#place")
            pt = _sub(pm, "Point")
            _sub(pt, "coordinates", f"{float(r['lon']):.7f},{float(r['lat']):.7f}")
    return etree.ElementTree(root)


def write_kml(path: str | Path, fixes: pd.DataFrame, stops: pd.DataFrame, gaps: pd.DataFrame,
              places: pd.DataFrame, sources: pd.DataFrame | None = None, *, case_id: str,
              exhibit_no: str) -> Path:
    """KML 2.2: per subject, fixes (``TimeStamp``), stops (``TimeSpan``), unobserved intervals;
    then places. Google Earth's time slider animates the journey."""
    p = Path(path)
    tree = _kml_tree(fixes, stops, gaps, places, sources, case_id=case_id, exhibit_no=exhibit_no)
    p.write_bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    return p


def write_kmz(path: str | Path, kml_path: str | Path) -> Path:
    """KMZ: the KML as ``doc.kml`` in a zip with fixed member time."""
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
    """The chronology (numbered stops and unobserved intervals) as CSV, local and UTC times."""
    p = Path(path)
    build_chronology(stops, gaps, places, sources).to_csv(p, index=False, lineterminator="\n")
    return p


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
    unobserved intervals. Coordinates rounded to 1e-7 degrees."""
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
    unbroken part (a new segment after each unobserved interval)."""
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


def write_geopackage(path: str | Path, fixes: pd.DataFrame, stops: pd.DataFrame, trips: pd.DataFrame | None,
                     gaps: pd.DataFrame, places: pd.DataFrame) -> Path:
    """GeoPackage with layers ``fixes, stops, trips, places, gaps`` (EPSG:4326).

    Durations are written as seconds (``*_s``); times as UTC. Trip lines are built from the
    subject's fixes between the trip's start and end.
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
    f = prepare_fixes(fixes)

    def plain(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        for c in list(out.columns):
            if pd.api.types.is_timedelta64_dtype(out[c].dtype):
                out[c + "_s"] = out[c].dt.total_seconds()
                out = out.drop(columns=[c])
            elif isinstance(out[c].dtype, pd.DatetimeTZDtype):
                out[c] = out[c].dt.tz_convert("UTC")
            elif pd.api.types.is_string_dtype(out[c].dtype):
                out[c] = out[c].astype(object)
        return out

    layers: list[tuple[str, gpd.GeoDataFrame]] = []
    layers.append(("fixes", gpd.GeoDataFrame(plain(f), geometry=gpd.points_from_xy(f["lon"], f["lat"]),
                                             crs="EPSG:4326")))
    st = number_stops(stops)
    layers.append(("stops", gpd.GeoDataFrame(plain(st), geometry=gpd.points_from_xy(st["lon"], st["lat"]),
                                             crs="EPSG:4326")))
    if trips is not None and len(trips):
        tr = trips.sort_values(["subject_id", "t_start", "trip_id"], kind="mergesort").reset_index(drop=True)
        geoms = []
        for r in tr.itertuples(index=False):
            sel = f[(f["subject_id"] == r.subject_id) & (f["t_utc"] >= r.t_start) & (f["t_utc"] <= r.t_end)]
            geoms.append(shapely.linestrings(np.c_[sel["lon"], sel["lat"]]) if len(sel) >= 2 else None)
        layers.append(("trips", gpd.GeoDataFrame(plain(tr), geometry=geoms, crs="EPSG:4326")))
    pl = places[places["lat"].notna() & places["lon"].notna()].sort_values("place_id", kind="mergesort")
    layers.append(("places", gpd.GeoDataFrame(plain(pl), geometry=gpd.points_from_xy(pl["lon"], pl["lat"]),
                                              crs="EPSG:4326")))
    g = gaps.sort_values(["subject_id", "t_start", "gap_id"], kind="mergesort").reset_index(drop=True)
    ggeom = [shapely.linestrings([[a, b], [c, d]]) if not np.isnan([a, b, c, d]).any() else None
             for a, b, c, d in zip(g["lon_start"].to_numpy(float), g["lat_start"].to_numpy(float),
                                   g["lon_end"].to_numpy(float), g["lat_end"].to_numpy(float), strict=True)]
    layers.append(("gaps", gpd.GeoDataFrame(plain(g), geometry=ggeom, crs="EPSG:4326")))
    for name, gdf in layers:
        gdf.to_file(p, layer=name, driver="GPKG", engine="pyogrio")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    return p


def empty_if_none(df: pd.DataFrame | None, kind: str) -> pd.DataFrame:
    """``df`` validated, or an empty table of ``kind``."""
    return schema.empty(kind) if df is None else schema.validate(df, kind)
