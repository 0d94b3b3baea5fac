"""Google Takeout Semantic Location History: monthly ``YYYY_MONTH.json`` files.

File shape: ``{"timelineObjects": [{"placeVisit": {...}} | {"activitySegment": {...}}]}``
(a UTF-8 BOM is tolerated). Monthly files are a few MB, read whole, after a scan that
cuts out any ``timelineObjects[i]`` nested deeper or holding a longer string than the
limits in :mod:`~routetrace.loaders.google_common` (a reject with its length and SHA-256).

What becomes what (record locators are JSON paths, each one record):

==========================================  ===============================================
source                                      canonical row
==========================================  ===============================================
``timelineObjects[i].placeVisit``           place ``kind="visit"``: ``location`` lat/lon
                                            (else ``centerLatE7``), name and address kept
                                            verbatim (hostile text), ``t_start``/``t_end``
                                            from ``duration``, ``confidence`` =
                                            ``visitConfidence`` / 100; ``extra``: placeId,
                                            placeConfidence, semanticType,
                                            locationConfidence, n_candidates, candidates
``...placeVisit.childVisits[k]``            the same, nested
``timelineObjects[i].activitySegment``      event ``kind="activity_segment"`` at the start
                                            time: ``text`` = activityType, ``value`` =
                                            distance (m); start lat/lon when the start
                                            location has them (an empty ``startLocation
                                            {}`` gives NA, never 0); end, probability,
                                            confidence, addresses in ``extra``
``...simplifiedRawPath.points[k]``          fix (``latE7``/``lngE7``, ``accuracyMeters``,
                                            ``timestamp``/``timestampMs``)
``...waypointPath.waypoints[k]``            place ``kind="waypoint"`` with flag ``no_time``:
                                            the source gives these points no time and none
                                            is invented (``t_start``/``t_end`` NA,
                                            ``t_precision="none"``); the segment's window
                                            is in ``extra`` (``segment_start``/``_end``)
``...transitPath.transitStops[k]``          place ``kind="transit_stop"``, ``no_time``
``...activitySegment.parkingEvent``         place ``kind="parking"`` at its ``timestamp``
                                            (``location.accuracyMetres`` -> ``radius_m``)
==========================================  ===============================================

Older files use ``startTimestampMs``/``endTimestampMs``/``timestampMs`` (Unix ms strings)
instead of ISO times; both are read. A timeline object of another kind, a visit without
coordinates, or a point with unusable position/time is rejected with a reason.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from ..errors import CorruptSource
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register
from .google_common import (
    JsonShape,
    e7_pair,
    first,
    fix_kind,
    number,
    outside_error,
    oversize_reason,
    parse_time,
    sniff_json_keys,
)

__all__ = ["load_semantic", "sniff_semantic"]


def sniff_semantic(path: Path, head: bytes) -> bool:
    """A JSON object whose first key is ``"timelineObjects"``.

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough; its name is not used).
    head
        Its first bytes (64 KiB; a UTF-8 BOM is tolerated).

    Returns
    -------
    bool
        Whether ``head`` opens a Semantic Location History month.

    Example
    -------
    >>> sniff_semantic(Path("2025_OCTOBER.json"), b'{"timelineObjects": [')
    True
    >>> sniff_semantic(Path("Records.json"), b'{"locations": [')
    False
    """
    return sniff_json_keys(head, "timelineObjects")


class JsonDoc(NamedTuple):
    """A parsed JSON file and the records cut out of it (locator -> reject reason)."""

    doc: Any
    cut: dict[str, str]

    def take(self, rec: str, out: Any) -> bool:
        """Count and reject ``rec`` when it was cut (``out`` has ``n`` and ``rejects``)."""
        why = self.cut.pop(rec, None)
        if why is None:
            return False
        out.n += 1
        out.rejects.append((rec, why))
        return True

    def rest(self, out: Any) -> None:
        """Reject the cut records no loop met (elements of arrays the loader does not read)."""
        for rec, why in sorted(self.cut.items()):
            out.n += 1
            out.rejects.append((rec, why))
        self.cut.clear()


def _cut_oversize(raw: bytes, base: int, ctx: LoadContext) -> tuple[bytes, dict[str, str]]:
    """Scan ``raw`` (from ``base``, after a BOM) for records beyond the JSON limits; return
    the bytes with each one replaced by ``null`` and the reject reasons by locator."""
    shape = JsonShape()
    for k in range(base, len(raw), 1 << 20):
        shape.feed(raw[k:k + (1 << 20)])
    shape.close()
    if (err := outside_error(shape)) is not None:
        raise ctx.error(CorruptSource, err)
    if not shape.oversize:
        return raw, {}
    parts, prev, cut = [raw[:base]], base, {}
    for o in shape.oversize:
        cut[o.record] = oversize_reason(o, [raw[base + o.start: base + o.end]])
        parts += [raw[prev: base + o.start], b"null"]
        prev = base + o.end
    return b"".join([*parts, raw[prev:]]), cut


def read_json(path: Path, ctx: LoadContext) -> JsonDoc:
    """Parse a whole JSON file (UTF-8, BOM tolerated) or raise CorruptSource naming the spot.

    Records beyond :data:`~routetrace.loaders.google_common.MAX_DEPTH` or
    :data:`~routetrace.loaders.google_common.MAX_STRING_BYTES` are cut out first (parsed
    as ``null``) and returned in ``cut`` with their reject reasons.
    """
    raw = path.read_bytes()
    raw, cut = _cut_oversize(raw, 3 if raw.startswith(b"\xef\xbb\xbf") else 0, ctx)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ctx.error(CorruptSource, f"not UTF-8 text (byte {exc.start})") from exc
    try:
        return JsonDoc(json.loads(text), cut)
    except json.JSONDecodeError as exc:
        raise ctx.error(CorruptSource, f"malformed JSON at line {exc.lineno} column {exc.colno}: "
                        f"{exc.msg} (truncated file?)") from exc
    except RecursionError as exc:  # e.g. 100,000 nested '[': no location export nests so deep
        raise ctx.error(CorruptSource, "JSON nested deeper than the parser's recursion limit "
                        f"({sys.getrecursionlimit()} levels): not a location export") from exc


def _duration(obj: Mapping[str, Any], which: str) -> pd.Timestamp | str:
    d = obj.get("duration")
    if not isinstance(d, Mapping):
        return "no duration"
    if f"{which}Timestamp" in d:
        return parse_time(d[f"{which}Timestamp"])
    if f"{which}TimestampMs" in d:
        return parse_time(d[f"{which}TimestampMs"], unix_ms=True)
    return f"no duration.{which}Timestamp"


def _point_time(p: Mapping[str, Any]) -> pd.Timestamp | str:
    if "timestamp" in p:
        return parse_time(p["timestamp"])
    if "timestampMs" in p:
        return parse_time(p["timestampMs"], unix_ms=True)
    return "point has no timestamp: a fix needs a time, none is invented"


def _loc(d: object) -> tuple[float, float] | None:
    if not isinstance(d, Mapping) or ("latitudeE7" not in d and "latE7" not in d):
        return None
    r = e7_pair(first(d, "latitudeE7", "latE7"), first(d, "longitudeE7", "lngE7"))
    return None if isinstance(r, str) else (r[0], r[1])


class _Out:
    def __init__(self) -> None:
        self.fixes: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.places: list[dict[str, Any]] = []
        self.rejects: list[tuple[str, str]] = []
        self.n = 0


def _visit(v: Mapping[str, Any], rec: str, out: _Out) -> None:
    out.n += 1
    loc = v.get("location") if isinstance(v.get("location"), Mapping) else {}
    assert isinstance(loc, Mapping)
    pos = _loc(loc)
    centre = None
    if "centerLatE7" in v:
        r = e7_pair(v.get("centerLatE7"), v.get("centerLngE7"))
        centre = None if isinstance(r, str) else (r[0], r[1])
    t0, t1 = _duration(v, "start"), _duration(v, "end")
    if pos is None and centre is None:
        out.rejects.append((rec, "placeVisit without coordinates (location and centre lack "
                                 "latitudeE7)"))
    elif isinstance(t0, str):
        out.rejects.append((rec, f"placeVisit start time: {t0}"))
    else:
        lat, lon = pos if pos is not None else centre  # type: ignore[misc]
        cands = v.get("otherCandidateLocations")
        cands = cands if isinstance(cands, list) else []
        conf = number(v.get("visitConfidence"))
        out.places.append({
            "record": rec, "kind": "visit", "name": loc.get("name"),
            "address": loc.get("address"), "lat": lat, "lon": lon,
            "t_start": t0, "t_end": None if isinstance(t1, str) else t1,
            "t_precision": "window", "confidence": None if conf is None else conf / 100.0,
            "extra": compact_json({
                "placeId": loc.get("placeId"), "semanticType": loc.get("semanticType"),
                "locationConfidence": loc.get("locationConfidence"),
                "placeConfidence": v.get("placeConfidence"),
                "visitConfidence": v.get("visitConfidence"),
                "placeVisitType": v.get("placeVisitType"),
                "placeVisitImportance": v.get("placeVisitImportance"),
                "position_from": "location" if pos is not None else "centerLatE7",
                "center": list(centre) if centre is not None else None,
                "editConfirmationStatus": v.get("editConfirmationStatus"),
                "n_candidates": len(cands),
                "candidates": [{k: c.get(k) for k in ("placeId", "name", "address",
                                                      "semanticType", "locationConfidence",
                                                      "latitudeE7", "longitudeE7") if k in c}
                               for c in cands if isinstance(c, Mapping)],
                "end_time_rejected": t1 if isinstance(t1, str) else None,
            }),
        })
    _raw_path(v, rec, out)
    kids = v.get("childVisits")
    if isinstance(kids, list):
        for k, c in enumerate(kids):
            if isinstance(c, Mapping):
                _visit(c, f"{rec}.childVisits[{k}]", out)
            else:
                out.n += 1
                out.rejects.append((f"{rec}.childVisits[{k}]", "child visit is not an object"))


def _raw_path(obj: Mapping[str, Any], rec: str, out: _Out) -> None:
    srp = obj.get("simplifiedRawPath")
    pts = srp.get("points") if isinstance(srp, Mapping) else None
    if not isinstance(pts, list):
        return
    for k, p in enumerate(pts):
        out.n += 1
        r = f"{rec}.simplifiedRawPath.points[{k}]"
        if not isinstance(p, Mapping):
            out.rejects.append((r, "raw path point is not an object"))
            continue
        pos = _loc(p)
        t = _point_time(p)
        if pos is None:
            out.rejects.append((r, "raw path point without usable latE7/lngE7"))
        elif isinstance(t, str):
            out.rejects.append((r, t))
        else:
            out.fixes.append({"record": r, "t_utc": t, "lat": pos[0], "lon": pos[1],
                              "h_acc_m": number(p.get("accuracyMeters")),
                              "fix_kind": fix_kind(p.get("source")),
                              "extra": compact_json({"path": "simplifiedRawPath",
                                                     "source": p.get("source")})})


def _timeless(points: object, rec: str, kind: str, out: _Out, window: dict[str, Any],
              label: str) -> None:
    if not isinstance(points, list):
        return
    for k, w in enumerate(points):
        out.n += 1
        r = f"{rec}[{k}]"
        pos = _loc(w)
        if pos is None:
            out.rejects.append((r, f"{label} without usable latE7/lngE7"))
            continue
        assert isinstance(w, Mapping)
        out.places.append({
            "record": r, "kind": kind, "name": w.get("name"), "lat": pos[0], "lon": pos[1],
            "t_start": None, "t_end": None, "t_precision": "none", "flags": "no_time",
            "extra": compact_json({**window, "placeId": w.get("placeId"), "index": k}),
        })


def _segment(a: Mapping[str, Any], rec: str, out: _Out) -> None:
    out.n += 1
    t0, t1 = _duration(a, "start"), _duration(a, "end")
    start, end = a.get("startLocation"), a.get("endLocation")
    sp, ep = _loc(start), _loc(end)
    acts = a.get("activities") if isinstance(a.get("activities"), list) else []
    window = {"segment": rec,
              "segment_start": None if isinstance(t0, str) else t0.isoformat(),
              "segment_end": None if isinstance(t1, str) else t1.isoformat()}
    if isinstance(t0, str):
        out.rejects.append((rec, f"activitySegment start time: {t0}"))
    else:
        act = a.get("activityType")
        if act is None and acts and isinstance(acts[0], Mapping):
            act = acts[0].get("activityType")
        wp = a.get("waypointPath") if isinstance(a.get("waypointPath"), Mapping) else {}
        assert isinstance(wp, Mapping)
        out.events.append({
            "record": rec, "t_utc": t0, "kind": "activity_segment",
            "value": number(a.get("distance")), "unit": "m" if "distance" in a else None,
            "text": act if isinstance(act, str) else None,
            "lat": sp[0] if sp else None, "lon": sp[1] if sp else None,
            "extra": compact_json({
                "t_end": None if isinstance(t1, str) else t1.isoformat(),
                "end_time_rejected": t1 if isinstance(t1, str) else None,
                "end": list(ep) if ep else None,
                "start_location": start if isinstance(start, Mapping) and start else None,
                "end_location": end if isinstance(end, Mapping) and end else None,
                "start_location_empty": isinstance(start, Mapping) and not start,
                "confidence": a.get("confidence"), "activities": acts,
                "editConfirmationStatus": a.get("editConfirmationStatus"),
                "waypoint_source": wp.get("source"), "travelMode": wp.get("travelMode"),
                "waypoint_distance_m": wp.get("distanceMeters"),
            }),
        })
    wp = a.get("waypointPath")
    if isinstance(wp, Mapping):
        _timeless(wp.get("waypoints"), f"{rec}.waypointPath.waypoints", "waypoint", out,
                  {**window, "travelMode": wp.get("travelMode")}, "waypoint")
    tp = a.get("transitPath")
    if isinstance(tp, Mapping):
        _timeless(tp.get("transitStops"), f"{rec}.transitPath.transitStops", "transit_stop",
                  out, window, "transit stop")
    _parking(a.get("parkingEvent"), f"{rec}.parkingEvent", out)
    _raw_path(a, rec, out)


def _parking(p: object, rec: str, out: _Out) -> None:
    """``activitySegment.parkingEvent``: where the car was left, and when (newer files)."""
    if p is None:
        return
    out.n += 1
    loc = p.get("location") if isinstance(p, Mapping) else None
    pos = _loc(loc)
    t = _point_time(p) if isinstance(p, Mapping) else "parking event is not an object"
    if pos is None:
        out.rejects.append((rec, "parking event without usable latitudeE7/longitudeE7"))
    elif isinstance(t, str):
        out.rejects.append((rec, f"parking event time: {t}"))
    else:
        assert isinstance(p, Mapping) and isinstance(loc, Mapping)
        out.places.append({
            "record": rec, "kind": "parking", "lat": pos[0], "lon": pos[1],
            "radius_m": number(loc.get("accuracyMetres", loc.get("accuracyMeters"))),
            "t_start": t, "t_end": None, "t_precision": "instant",
            "extra": compact_json({"method": p.get("method"), "source": p.get("source")}),
        })


@register(LoaderSpec(
    name="google-takeout-semantic",
    description="Google Takeout Semantic Location History month (visits, trips, raw path)",
    sniff=sniff_semantic,
    produces=("fixes", "events", "places"),
))
def load_semantic(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load one Semantic Location History month. Options: none.

    Every timeline object and every point, waypoint, transit stop and parking event in it
    is one record, named by its JSON path (see the module doc): a place, event or fix, or
    a reject with its reason (a visit without coordinates, an unusable time, another
    kind of object, a record over the size limits).

    Parameters
    ----------
    path
        The ``YYYY_MONTH.json`` file (only read).
    ctx
        The load context (source identity, subject) built by
        :func:`routetrace.loaders.load`; ``tz`` is not used: every time has an offset or
        is Unix milliseconds.

    Returns
    -------
    LoadResult
        ``places`` (visits, waypoints, transit stops, parking), ``events`` (activity
        segments), ``fixes`` (raw path) and ``rejects``; records read = produced +
        rejected.

    Example
    -------
    >>> import json, tempfile
    >>> from routetrace.loaders import load
    >>> when = {"startTimestamp": "2025-10-26T21:00:00Z", "endTimestamp": "2025-10-26T21:10:00Z"}
    >>> month = {"timelineObjects": [
    ...     {"placeVisit": {"location": {"latitudeE7": 510000000, "longitudeE7": 38700000,
    ...                                  "name": "Car park"}, "duration": when}},
    ...     {"placeVisit": {"duration": when}}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "2025_OCTOBER.json"
    ...     _ = p.write_text(json.dumps(month))
    ...     res = load(p)
    >>> res.places[["kind", "name", "t_start", "lat", "lon"]]
        kind      name                   t_start   lat   lon
    0  visit  Car park 2025-10-26 21:00:00+00:00  51.0  3.87
    >>> res.records_read, res.rejects[["record", "reason"]].values.tolist()
    (2, [['timelineObjects[1].placeVisit',
          'placeVisit without coordinates (location and centre lack latitudeE7)']])
    """
    jd = read_json(path, ctx)
    doc = jd.doc
    objs = doc.get("timelineObjects") if isinstance(doc, dict) else None
    if not isinstance(objs, list):
        raise ctx.error(CorruptSource, "no 'timelineObjects' array: not a Semantic Location "
                        "History file")
    out = _Out()
    for i, o in enumerate(objs):
        rec = f"timelineObjects[{i}]"
        if jd.take(rec, out):
            continue
        if isinstance(o, Mapping) and isinstance(o.get("placeVisit"), Mapping):
            _visit(o["placeVisit"], f"{rec}.placeVisit", out)
        elif isinstance(o, Mapping) and isinstance(o.get("activitySegment"), Mapping):
            _segment(o["activitySegment"], f"{rec}.activitySegment", out)
        else:
            out.n += 1
            keys = sorted(o)[:5] if isinstance(o, Mapping) else type(o).__name__
            out.rejects.append((rec, f"timeline object is neither placeVisit nor "
                                     f"activitySegment ({keys})"))
    jd.rest(out)
    places = pd.DataFrame(out.places) if out.places else None
    if places is not None:
        places["subject_id"] = ctx.subject(Path(ctx.member or ctx.display_path).stem)
    return ctx.finish(
        records_read=out.n,
        time_basis="ISO-8601 timestamps with Z (or Unix ms '...TimestampMs'), UTC",
        fixes=pd.DataFrame(out.fixes) if out.fixes else None,
        events=pd.DataFrame(out.events) if out.events else None,
        places=places, rejects=out.rejects,
    )
