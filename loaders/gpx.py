"""GPX 1.0 and 1.1 (and namespace-less GPX): track points, route points, waypoints.

Read with gpxpy after a defusedxml pass that refuses DTDs and entity declarations
(billion-laughs, external entities). Track and route points become fixes; waypoints
become places (``kind="waypoint"``) with their time when they have one.

Quirks handled (see ``../shared/realdata/SOURCES.md``): UTF-8 BOM; ``<time>`` with ``Z`` or
an offset and 0-7 fraction digits; points without ``<time>`` (rejected: a fix needs a
time, none is invented); bogus times such as 1901-12-13 (32-bit ``time_t`` minimum,
rejected as implausible); empty ``<trkseg/>``; GPSLogger ``<src>`` (network/gps) kept as
``fix_kind``; a naive ``<time>`` (no ``Z``, no offset) needs ``tz``, else it is rejected;
a point whose ``lat``/``lon`` lie outside WGS84 degrees (projected metres such as
``lat="5651234.5"``, written by converters that ignore the CRS) or are not finite is a
reject naming it, and the rest of the file is kept.

Record locators: ``trk[i]/seg[j]/pt[k]``, ``rte[i]/pt[k]``, ``wpt[i]`` (0-based).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET
import gpxpy
import gpxpy.gpx
import pandas as pd
from defusedxml import DefusedXmlException

from .. import timebase
from ..errors import CorruptSource
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["load_gpx", "sniff_gpx"]


def sniff_gpx(path: Path, head: bytes) -> bool:
    """A GPX file has a ``<gpx`` root element near the start (any encoding prefix)."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()[:4096].lower()
    return text.startswith(b"<") and b"<gpx" in text


def _decode(raw: bytes, ctx: LoadContext) -> str:
    for enc in ("utf-8-sig", "utf-16"):
        try:
            text = raw.decode(enc)
            if "<gpx" in text[:4096].lower():
                return text
        except UnicodeDecodeError:
            continue
    raise ctx.error(CorruptSource, "not UTF-8/UTF-16 GPX text")


def _time(t: dt.datetime | None, tz: str | None) -> tuple[pd.Timestamp | None, str | None]:
    """Return (UTC time, None) or (None, reason)."""
    if t is None:
        return None, "point has no <time>: a fix needs a time and none is invented"
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        if tz is None:
            return None, "<time> has no UTC offset and no --tz was given (ambiguous local time)"
        local = timebase.localize(pd.Series([ts]), tz=tz).iloc[0]
        if pd.isna(local):
            return None, f"local time {ts} does not exist or is ambiguous in {tz}"
        ts = local
    ts = ts.tz_convert("UTC")
    if not (timebase.PLAUSIBLE[0] <= ts <= timebase.PLAUSIBLE[1]):
        return None, f"implausible time {ts.isoformat()} (outside 1980-2100)"
    return ts, None


def _position_problem(p: Any) -> str | None:
    """Why a point's ``lat``/``lon`` are not WGS84 degrees, or None when they are."""
    lat, lon = p.latitude, p.longitude
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return f"position {lat}, {lon} is not a number"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return (f"position lat={lat}, lon={lon} is outside WGS84 degrees "
                "(projected metres or another CRS?): not a point on Earth as GPX states it")
    return None


def _point(p: Any, rec: str, kind: str | None, tz: str | None,
           fixes: list[dict[str, Any]], rejects: list[tuple[str, str]]) -> None:
    """One track or route point: a fix, or a reject naming why (position first, then time)."""
    why = _position_problem(p)
    t = None
    if why is None:
        t, why = _time(p.time, tz)
    if t is None:
        rejects.append((rec, str(why)))
    else:
        fixes.append(_point_row(p, rec, t, kind))


def _point_row(p: Any, record: str, t: pd.Timestamp, kind: str | None) -> dict[str, Any]:
    src = getattr(p, "source", None)
    extra = {"name": p.name, "src": src, "sat": getattr(p, "satellites", None),
             "hdop": getattr(p, "horizontal_dilution", None), "type": kind}
    return {
        "record": record, "t_utc": t, "lat": p.latitude, "lon": p.longitude,
        "alt_m": p.elevation, "speed_mps": getattr(p, "speed", None),
        "course_deg": getattr(p, "course", None),
        "fix_kind": (src or "gps") if src in (None, "gps", "network", "wifi", "cell") else "unknown",
        "extra": compact_json(extra),
    }


@register(LoaderSpec(
    name="gpx",
    description="GPX 1.0/1.1 tracks and routes (fixes) and waypoints (places), via gpxpy",
    sniff=sniff_gpx,
    produces=("fixes", "places"),
))
def load_gpx(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a GPX file. Options: none; ``ctx.tz`` is used only for times without offset."""
    text = _decode(path.read_bytes(), ctx)
    try:
        DET.fromstring(text.encode("utf-8"), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ctx.error(CorruptSource, f"refused XML construct ({type(exc).__name__}): "
                        "DTDs and entities are not allowed in evidence GPX") from exc
    except (DET.ParseError, LookupError) as exc:  # LookupError: unknown declared encoding
        raise ctx.error(CorruptSource, f"malformed XML: {exc}") from exc
    try:
        doc = gpxpy.parse(text)
    except (gpxpy.gpx.GPXException, ValueError) as exc:  # ValueError: lxml namespace checks
        raise ctx.error(CorruptSource, f"not valid GPX: {exc}") from exc

    fixes: list[dict[str, Any]] = []
    places: list[dict[str, Any]] = []
    rejects: list[tuple[str, str]] = []
    n = 0
    for i, trk in enumerate(doc.tracks):
        for j, seg in enumerate(trk.segments):
            for k, p in enumerate(seg.points):
                n += 1
                _point(p, f"trk[{i}]/seg[{j}]/pt[{k}]", trk.type, ctx.tz, fixes, rejects)
    for i, rte in enumerate(doc.routes):
        for k, rp in enumerate(rte.points):
            n += 1
            _point(rp, f"rte[{i}]/pt[{k}]", rte.type, ctx.tz, fixes, rejects)
    for i, w in enumerate(doc.waypoints):
        n += 1
        bad_pos = _position_problem(w)
        if bad_pos is not None:
            rejects.append((f"wpt[{i}]", bad_pos))
            continue
        t, why = _time(w.time, ctx.tz) if w.time is not None else (None, None)
        if why is not None and w.time is not None and t is None and "offset" in why:
            rejects.append((f"wpt[{i}]", why))
            continue
        places.append({
            "record": f"wpt[{i}]", "kind": "waypoint", "name": w.name,
            "text": w.description or w.comment, "lat": w.latitude, "lon": w.longitude,
            "t_start": t, "t_end": t, "t_precision": "instant" if t is not None else "none",
            "extra": compact_json({"type": w.type, "sym": w.symbol,
                                   "time_rejected": why}),
        })
    basis = "GPX <time>: ISO-8601 with Z or offset, converted to UTC"
    if ctx.tz:
        basis += f"; times without offset read as {ctx.tz} (user-stated)"
    return ctx.finish(
        records_read=n, time_basis=basis,
        fixes=pd.DataFrame(fixes) if fixes else None,
        places=pd.DataFrame(places) if places else None,
        rejects=rejects,
    )
