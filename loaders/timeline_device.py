"""Google Maps on-device Timeline exports (2024+): Android, iOS, and Timeline Edits.

Recognised by content, never by file name (Android names the file after the phone's
language: ``Timeline.json``, ``Zeitachse.json``, ``Cronologia.json``, ...).

Android ``Timeline.json`` (loader ``google-timeline-android``)
    ``{"semanticSegments": [...], "rawSignals": [...], "userLocationProfile": {...}}``.
    Coordinates are strings ``'-27.4127738°, 163.5638958°'``. Times carry the local offset
    of that segment (``2019-04-03T08:00:00.000+02:00``), so each segment is converted with
    its own offset; ``startTimeTimezoneUtcOffsetMinutes`` is used when the ISO text has no
    offset and is checked against it otherwise (flag ``tz_disagreement``).

    ==========================================  ===========================================
    ``semanticSegments[i].visit``               place ``visit`` (topCandidate position,
                                                ``confidence`` = visit probability)
    ``semanticSegments[i].activity``            event ``activity_segment`` (start lat/lon;
                                                end, distance, type in ``extra``)
    ``semanticSegments[i].timelinePath[k]``     fix (``fix_kind="unknown"``)
    ``semanticSegments[i].timelineMemory``      event ``timeline_memory`` (no position)
    ``rawSignals[j].position``                  fix (accuracy, altitude, speed, source)
    ``rawSignals[j].activityRecord``            event ``activity`` (most likely type)
    ``rawSignals[j].wifiScan``                  extra table ``wifi_scans`` (one row per
                                                access point: mac, rssi); not a position
    (an element holding several of these)       each part its row, one record; an unusable
                                                part is named in the others' ``extra``
    ``userLocationProfile.frequentPlaces[k]``   place ``frequent`` (label), flag ``no_time``
    ==========================================  ===========================================

iOS ``location-history.json`` (loader ``google-timeline-ios``)
    A top-level array of ``{startTime, endTime, visit | activity | timelinePath |
    timelineMemory}``; every number is a string, positions are ``geo:lat,lng``. Items
    ``[i].visit``/``[i].activity``/``[i].timelineMemory`` as above; ``[i].timelinePath[k]``
    points carry only ``durationMinutesOffsetFromStartTime``: their time is computed as
    the item's ``startTime`` (converted with its own offset) plus that many minutes, a
    documented computation from the source, flagged ``derived``. Offsets differ between
    items of one file (DST, travel): each item is converted with its own.

Timeline Edits (loader ``google-timeline-edits``)
    ``{"timelineEdits": [{deviceId, rawSignal: {signal: {position: {point: {latE7, lngE7},
    accuracyMm, timestamp}}}}]}``: each position becomes a fix (``accuracyMm`` / 1000 ->
    ``h_acc_m``); ``deviceId`` -> subject ``google-device-<id>`` unless a subject is
    given. Edits of other kinds (place aggregates, ...) are rejected with their keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .. import timebase
from ..errors import CorruptSource
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register
from .google_common import (
    device_subject,
    e7_pair,
    fix_kind,
    latlng,
    number,
    parse_time,
    sniff_json_keys,
    utc_offset_min,
)
from .takeout_semantic import read_json

__all__ = ["load_timeline_android", "load_timeline_edits", "load_timeline_ios",
           "sniff_timeline_android", "sniff_timeline_edits", "sniff_timeline_ios"]

_IOS_FIRST = re.compile(rb'\[\s*\{\s*"(?:endTime|startTime|visit|activity|timelinePath|'
                        rb'timelineMemory)"\s*:')


def sniff_timeline_android(path: Path, head: bytes) -> bool:
    """A JSON object whose first key is semanticSegments, rawSignals or userLocationProfile.

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough; its localised name is not used).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether ``head`` opens an Android on-device Timeline export.

    Example
    -------
    >>> sniff_timeline_android(Path("Zeitachse.json"), b'{\\n  "semanticSegments": [')
    True
    >>> sniff_timeline_android(Path("Timeline.json"), b'{"timelineObjects": [')
    False
    """
    return any(sniff_json_keys(head, k)
               for k in ("semanticSegments", "rawSignals", "userLocationProfile"))


def sniff_timeline_ios(path: Path, head: bytes) -> bool:
    """A JSON array whose first object starts with a Timeline key (startTime, visit, ...).

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether ``head`` opens an iOS ``location-history.json``.

    Example
    -------
    >>> sniff_timeline_ios(Path("location-history.json"),
    ...                    b'[{"endTime": "2025-10-26T22:20:00", "startTime": "2025-10-26"')
    True
    >>> sniff_timeline_ios(Path("a.json"), b'[{"name": "x", "startTime": "y"}]')
    False
    """
    body = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return _IOS_FIRST.match(body) is not None and b'"startTime"' in body


def sniff_timeline_edits(path: Path, head: bytes) -> bool:
    """A JSON object whose first key is ``"timelineEdits"``.

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether ``head`` opens a Timeline Edits file.

    Example
    -------
    >>> sniff_timeline_edits(Path("Timeline Edits.json"), b'{"timelineEdits": [')
    True
    >>> sniff_timeline_edits(Path("Timeline.json"), b'{"semanticSegments": [')
    False
    """
    return sniff_json_keys(head, "timelineEdits")


class _Out:
    def __init__(self) -> None:
        self.fixes: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.places: list[dict[str, Any]] = []
        self.rejects: list[tuple[str, str]] = []
        self.wifi: list[dict[str, Any]] = []
        self.n = 0

    def finish(self, ctx: LoadContext, basis: str, default_subject: str | None = None
               ) -> LoadResult:
        subj = ctx.subject(default_subject)
        places = pd.DataFrame(self.places) if self.places else None
        if places is not None:
            places["subject_id"] = subj
        extra = {"wifi_scans": pd.DataFrame(self.wifi)} if self.wifi else None
        return ctx.finish(
            records_read=self.n, time_basis=basis,
            fixes=pd.DataFrame(self.fixes) if self.fixes else None,
            events=pd.DataFrame(self.events) if self.events else None,
            places=places, rejects=self.rejects, extra_tables=extra,
            default_subject=default_subject,
        )


def _seg_time(value: object, offset_min: object) -> tuple[pd.Timestamp | str, bool]:
    """UTC time of a segment boundary and whether the stated offset disagrees with it."""
    off = number(offset_min)
    t = parse_time(value)
    if isinstance(t, str) and off is not None and isinstance(value, str) and "no UTC offset" in t:
        try:
            naive = pd.Timestamp(value.strip())
            if naive.tzinfo is not None:  # a zone pandas reads but the time rule does not
                return t, False
            local = (naive - pd.Timedelta(minutes=off)).tz_localize("UTC")
        except (ValueError, OverflowError):  # out-of-range times and offsets included
            return t, False
        return local, False
    if isinstance(t, str) or off is None:
        return t, False
    return t, utc_offset_min(value) != int(off)


def _flags(*names: str | None) -> str:
    return "|".join(sorted({n for n in names if n}))


def _visit(v: Mapping[str, Any], rec: str, t0: pd.Timestamp, t1: pd.Timestamp | None,
           flags: str, extra: dict[str, Any], out: _Out) -> None:
    top = v.get("topCandidate") if isinstance(v.get("topCandidate"), Mapping) else {}
    assert isinstance(top, Mapping)
    pos = latlng(top.get("placeLocation"))
    if isinstance(pos, str):
        out.rejects.append((rec, f"visit position: {pos}"))
        return
    prob = number(v.get("probability"))
    out.places.append({
        "record": rec, "kind": "visit", "lat": pos[0], "lon": pos[1], "t_start": t0,
        "t_end": t1, "t_precision": "window", "confidence": prob, "flags": flags,
        "extra": compact_json({**extra, "placeId": top.get("placeId", top.get("placeID")),
                               "semanticType": top.get("semanticType"),
                               "candidate_probability": number(top.get("probability")),
                               "hierarchyLevel": v.get("hierarchyLevel"),
                               "isTimelessVisit": v.get("isTimelessVisit")}),
    })


def _activity(a: Mapping[str, Any], rec: str, t0: pd.Timestamp, t1: pd.Timestamp | None,
              flags: str, extra: dict[str, Any], out: _Out) -> None:
    start = latlng(a.get("start")) if a.get("start") is not None else "no start"
    end = latlng(a.get("end")) if a.get("end") is not None else "no end"
    top = a.get("topCandidate") if isinstance(a.get("topCandidate"), Mapping) else {}
    assert isinstance(top, Mapping)
    dist = number(a.get("distanceMeters"))
    out.events.append({
        "record": rec, "t_utc": t0, "kind": "activity_segment", "value": dist,
        "unit": "m" if dist is not None else None,
        "text": top.get("type") if isinstance(top.get("type"), str) else None,
        "lat": None if isinstance(start, str) else start[0],
        "lon": None if isinstance(start, str) else start[1], "flags": flags,
        "extra": compact_json({**extra, "t_end": None if t1 is None else t1.isoformat(),
                               "end": None if isinstance(end, str) else list(end),
                               "start_unreadable": start if isinstance(start, str) else None,
                               "probability": number(top.get("probability")),
                               "segment_probability": number(a.get("probability"))}),
    })


def _memory(m: object, rec: str, t0: pd.Timestamp, t1: pd.Timestamp | None, flags: str,
            extra: dict[str, Any], out: _Out) -> None:
    out.events.append({"record": rec, "t_utc": t0, "kind": "timeline_memory", "flags": flags,
                       "extra": compact_json({**extra, "t_end": None if t1 is None
                                              else t1.isoformat(), "memory": m})})


def _segment(seg: object, rec: str, out: _Out, *, ios: bool) -> None:
    """One semantic segment (Android) or top-level item (iOS)."""
    if not isinstance(seg, Mapping):
        out.n += 1
        out.rejects.append((rec, f"segment is not an object ({type(seg).__name__})"))
        return
    t0, bad0 = _seg_time(seg.get("startTime"), seg.get("startTimeTimezoneUtcOffsetMinutes"))
    t1, bad1 = _seg_time(seg.get("endTime"), seg.get("endTimeTimezoneUtcOffsetMinutes"))
    flags = "tz_disagreement" if (bad0 or bad1) else ""
    extra = {"start_offset_min": utc_offset_min(seg.get("startTime")),
             "end_offset_min": utc_offset_min(seg.get("endTime")),
             "startTime": seg.get("startTime"), "endTime": seg.get("endTime")}
    t_end = None if isinstance(t1, str) else t1
    parts = [(k, seg[k]) for k in ("visit", "activity", "timelineMemory") if k in seg]
    path = seg.get("timelinePath")
    if not parts and not isinstance(path, list):
        out.n += 1
        keys = sorted(k for k in seg if k not in ("startTime", "endTime"))[:5]
        out.rejects.append((rec, f"segment has no visit, activity, timelinePath or "
                                 f"timelineMemory ({keys})"))
        return
    for key, val in parts:
        out.n += 1
        r = f"{rec}.{key}"
        if isinstance(t0, str):
            out.rejects.append((r, f"segment startTime: {t0}"))
        elif not isinstance(val, Mapping):
            out.rejects.append((r, f"{key} is not an object"))
        elif key == "visit":
            _visit(val, r, t0, t_end, flags, extra, out)
        elif key == "activity":
            _activity(val, r, t0, t_end, flags, extra, out)
        else:
            _memory(val, r, t0, t_end, flags, extra, out)
    if isinstance(path, list):
        for k, p in enumerate(path):
            out.n += 1
            r = f"{rec}.timelinePath[{k}]"
            if not isinstance(p, Mapping):
                out.rejects.append((r, "path point is not an object"))
                continue
            pos = latlng(p.get("point"))
            if isinstance(pos, str):
                out.rejects.append((r, f"path point position: {pos}"))
                continue
            if "time" in p:
                t = parse_time(p["time"])
                ex: dict[str, Any] = {"offset_min": utc_offset_min(p["time"])}
                fl = flags
            elif "durationMinutesOffsetFromStartTime" in p:
                mins = number(p["durationMinutesOffsetFromStartTime"])
                if isinstance(t0, str):
                    t = f"segment startTime: {t0} (needed for the point's minute offset)"
                elif mins is None:
                    t = "durationMinutesOffsetFromStartTime is not a number"
                else:
                    try:
                        t = t0 + pd.Timedelta(minutes=mins)
                    except (ValueError, OverflowError):  # OutOfBoundsTimedelta/-Datetime
                        t = "out of range"
                    if isinstance(t, str) or not timebase.PLAUSIBLE[0] <= t <= timebase.PLAUSIBLE[1]:
                        t = (f"durationMinutesOffsetFromStartTime {mins!r} puts the point outside "
                             "1980-2100")
                fl = _flags(flags or None, "derived")
                ex = {"minutes_after_start": mins, "startTime": seg.get("startTime"),
                      "time_rule": "startTime + durationMinutesOffsetFromStartTime"}
            else:
                t = "path point has no time: none is invented"
                fl, ex = flags, {}
            if isinstance(t, str):
                out.rejects.append((r, t))
                continue
            out.fixes.append({"record": r, "t_utc": t, "lat": pos[0], "lon": pos[1],
                              "fix_kind": "unknown", "flags": fl,
                              "extra": compact_json({**ex, "path": "timelinePath",
                                                     "platform": "ios" if ios else "android"})})


Part = tuple[str, dict[str, Any] | list[dict[str, Any]] | str]


def _raw_position(p: Mapping[str, Any], rec: str) -> dict[str, Any] | str:
    pos = latlng(p.get("LatLng", p.get("latLng", p.get("point"))))
    t = parse_time(p.get("timestamp"))
    if isinstance(pos, str):
        return f"position: {pos}"
    if isinstance(t, str):
        return f"position time: {t}"
    return {"record": rec, "t_utc": t, "lat": pos[0], "lon": pos[1],
            "h_acc_m": number(p.get("accuracyMeters")), "alt_m": number(p.get("altitudeMeters")),
            "speed_mps": number(p.get("speedMetersPerSecond")), "fix_kind": fix_kind(p.get("source")),
            "extra": {"source": p.get("source"), "path": "rawSignals",
                      "offset_min": utc_offset_min(p.get("timestamp"))}}


def _raw_activity(a: Mapping[str, Any], rec: str) -> dict[str, Any] | str:
    t = parse_time(a.get("timestamp"))
    got = a.get("probableActivities")
    acts: list[Any] = got if isinstance(got, list) else []
    types = [[x.get("type"), number(x.get("confidence"))] for x in acts if isinstance(x, Mapping)]
    best = max(types, key=lambda q: q[1] if q[1] is not None else -1, default=[None, None])
    if isinstance(t, str):
        return f"activity record time: {t}"
    return {"record": rec, "t_utc": t, "kind": "activity", "value": best[1], "unit": "probability",
            "text": best[0] if isinstance(best[0], str) else None, "extra": {"activities": types}}


def _raw_wifi(w: Mapping[str, Any], rec: str) -> list[dict[str, Any]] | str:
    t = parse_time(w.get("deliveryTime"))
    got = w.get("devicesRecords")
    devs: list[Any] = got if isinstance(got, list) else []
    rows = [{"record": rec, "t_utc": t, "mac": d.get("mac"), "rssi": number(d.get("rawRssi"))}
            for d in devs if isinstance(d, Mapping)]
    if not rows:
        return f"wifi scan without access points ({sorted(w)[:5]}); nothing to keep"
    if isinstance(t, str):
        return f"wifi scan time: {t}"
    for r in rows:
        mac = r["mac"]
        r["mac"] = (":".join(f"{(mac >> s) & 0xFF:02x}" for s in range(40, -1, -8))
                    if isinstance(mac, int) and 0 <= mac < 2**48 else str(mac))
    return rows


_RAW_PARTS = (("position", _raw_position), ("activityRecord", _raw_activity), ("wifiScan", _raw_wifi))


def _raw_signal(sig: object, rec: str, out: _Out) -> None:
    """One ``rawSignals`` element: each of its parts (``position``, ``activityRecord``,
    ``wifiScan``; an element may hold several) gives its own row, all under the element's
    record. A part that cannot be used is named in the ``extra`` of the rows the others
    gave (``unusable_parts``); the element is a reject only when no part gives a row."""
    out.n += 1
    if not isinstance(sig, Mapping):
        out.rejects.append((rec, "raw signal is not an object"))
        return
    parts: list[Part] = [(key, fn(sig[key], rec)) for key, fn in _RAW_PARTS
                         if isinstance(sig.get(key), Mapping)]
    if not parts:
        out.rejects.append((rec, f"raw signal of unknown kind ({sorted(sig)[:5]})"))
        return
    unusable = {key: got for key, got in parts if isinstance(got, str)}
    if len(unusable) == len(parts):
        out.rejects.append((rec, "; ".join(unusable.values())))
        return
    for key, got in parts:
        if isinstance(got, list):
            out.wifi.extend({**r, "unusable_parts": compact_json(unusable)} if unusable else r
                            for r in got)
        elif isinstance(got, dict):
            got["extra"] = compact_json({**got["extra"], "unusable_parts": unusable or None})
            (out.fixes if key == "position" else out.events).append(got)


@register(LoaderSpec(
    name="google-timeline-android",
    description="Google Maps on-device Timeline export, Android (Timeline.json, any language)",
    sniff=sniff_timeline_android,
    produces=("fixes", "events", "places"),
))
def load_timeline_android(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load an Android on-device Timeline export. Options: none.

    Every ``semanticSegments[i]`` part, ``rawSignals[j]`` element and frequent place is
    one record, named by its JSON path (see the module doc): a place, event or fix, or a
    reject with its reason (unreadable or out-of-range coordinates, a time without a
    usable offset, an unknown kind). Wi-Fi scans go to the extra table ``wifi_scans``.

    Parameters
    ----------
    path
        The ``Timeline.json`` export (any language's name; only read).
    ctx
        The load context (source identity, subject) built by
        :func:`routetrace.loaders.load`; ``tz`` is not used: each segment carries its
        own offset.

    Returns
    -------
    LoadResult
        ``places`` (visits, frequent places), ``events`` (activities, memories),
        ``fixes`` (timeline paths, raw positions) and ``rejects``; records read =
        produced + rejected.

    Example
    -------
    >>> import json, tempfile
    >>> from routetrace.loaders import load
    >>> doc = {"semanticSegments": [
    ...     {"startTime": "2025-10-26T22:00:00.000+01:00",
    ...      "endTime": "2025-10-26T22:10:00.000+01:00",
    ...      "visit": {"probability": 0.9,
    ...                "topCandidate": {"placeLocation": {"latLng": "51.0°, 3.87°"}}}}],
    ...     "rawSignals": [
    ...     {"position": {"LatLng": "51.001°, 3.87°", "accuracyMeters": 10,
    ...                   "timestamp": "2025-10-26T21:11:00.000Z"}},
    ...     {"position": {"LatLng": "91.0°, 3.87°", "timestamp": "2025-10-26T21:12:00Z"}}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "Timeline.json"
    ...     _ = p.write_text(json.dumps(doc))
    ...     res = load(p)
    >>> res.places[["kind", "t_start", "lat", "record"]]
        kind                   t_start   lat                     record
    0  visit 2025-10-26 21:00:00+00:00  51.0  semanticSegments[0].visit
    >>> res.fixes[["t_utc", "lat", "h_acc_m", "record"]]
                          t_utc     lat  h_acc_m         record
    0 2025-10-26 21:11:00+00:00  51.001     10.0  rawSignals[0]
    >>> res.records_read, res.rejects[["record", "reason"]].values.tolist()
    (3, [['rawSignals[1]', 'position: coordinates out of range (91.0, 3.87)']])
    """
    jd = read_json(path, ctx)
    doc = jd.doc
    if not isinstance(doc, dict):
        raise ctx.error(CorruptSource, "top level is not a JSON object: not a Timeline.json")
    out = _Out()
    segs = doc.get("semanticSegments", [])
    if not isinstance(segs, list):
        raise ctx.error(CorruptSource, "'semanticSegments' is not an array")
    for i, seg in enumerate(segs):
        if not jd.take(f"semanticSegments[{i}]", out):
            _segment(seg, f"semanticSegments[{i}]", out, ios=False)
    raw = doc.get("rawSignals", [])
    if not isinstance(raw, list):
        raise ctx.error(CorruptSource, "'rawSignals' is not an array")
    for j, sig in enumerate(raw):
        if not jd.take(f"rawSignals[{j}]", out):
            _raw_signal(sig, f"rawSignals[{j}]", out)
    jd.rest(out)
    prof = doc.get("userLocationProfile")
    freq = prof.get("frequentPlaces") if isinstance(prof, Mapping) else None
    for k, fp in enumerate(freq if isinstance(freq, list) else []):
        out.n += 1
        rec = f"userLocationProfile.frequentPlaces[{k}]"
        pos = latlng(fp.get("placeLocation")) if isinstance(fp, Mapping) else "not an object"
        if isinstance(pos, str):
            out.rejects.append((rec, f"frequent place position: {pos}"))
            continue
        assert isinstance(fp, Mapping)
        out.places.append({"record": rec, "kind": "frequent", "name": fp.get("label"),
                           "lat": pos[0], "lon": pos[1], "t_precision": "none",
                           "flags": "no_time",
                           "extra": compact_json({"placeId": fp.get("placeId"),
                                                  "label": fp.get("label")})})
    return out.finish(ctx, "ISO-8601 times with each segment's own UTC offset (checked against "
                           "*TimezoneUtcOffsetMinutes), converted to UTC")


@register(LoaderSpec(
    name="google-timeline-ios",
    description="Google Maps on-device Timeline export, iOS (location-history.json)",
    sniff=sniff_timeline_ios,
    produces=("fixes", "events", "places"),
))
def load_timeline_ios(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load an iOS on-device Timeline export. Options: none.

    Every item's visit, activity and memory, and every ``timelinePath`` point, is one
    record (``[i].visit``, ``[i].timelinePath[k]``, ...): a place, event or fix, or a
    reject with its reason. A path point's time is the item's ``startTime`` plus its
    ``durationMinutesOffsetFromStartTime`` (flag ``derived``).

    Parameters
    ----------
    path
        The ``location-history.json`` export (only read).
    ctx
        The load context (source identity, subject) built by
        :func:`routetrace.loaders.load`; ``tz`` is not used: each item carries its own
        offset.

    Returns
    -------
    LoadResult
        ``places``, ``events``, ``fixes`` and ``rejects``; records read = produced +
        rejected.

    Example
    -------
    >>> import json, tempfile
    >>> from routetrace.loaders import load
    >>> items = [{"startTime": "2025-10-26T22:00:00.000+01:00",
    ...           "endTime": "2025-10-26T22:20:00.000+01:00",
    ...           "timelinePath": [{"point": "geo:51.0,3.87",
    ...                             "durationMinutesOffsetFromStartTime": "10"}]}]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "location-history.json"
    ...     _ = p.write_text(json.dumps(items))
    ...     res = load(p)
    >>> res.fixes[["t_utc", "lat", "flags", "record"]]
                          t_utc   lat    flags               record
    0 2025-10-26 21:10:00+00:00  51.0  derived  [0].timelinePath[0]
    """
    jd = read_json(path, ctx)
    doc = jd.doc
    if not isinstance(doc, list):
        raise ctx.error(CorruptSource, "top level is not a JSON array: not an iOS "
                        "location-history.json")
    out = _Out()
    for i, item in enumerate(doc):
        if not jd.take(f"[{i}]", out):
            _segment(item, f"[{i}]", out, ios=True)
    jd.rest(out)
    return out.finish(ctx, "ISO-8601 times with each item's own UTC offset, converted to UTC; "
                           "timelinePath point time = item startTime + "
                           "durationMinutesOffsetFromStartTime minutes (flag derived)")


@register(LoaderSpec(
    name="google-timeline-edits",
    description="Google Timeline Edits.json (raw position signals with accuracyMm)",
    sniff=sniff_timeline_edits,
    produces=("fixes",),
))
def load_timeline_edits(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a Timeline Edits file. Options: none.

    Every ``timelineEdits[i]`` is one record: a fix when it holds a raw position signal
    (``accuracyMm`` / 1000 -> ``h_acc_m``), else a reject naming its keys (place
    aggregates and other edits are not location records).

    Parameters
    ----------
    path
        The ``Timeline Edits.json`` file (only read).
    ctx
        The load context built by :func:`routetrace.loaders.load`; without a
        ``subject_id`` each ``deviceId`` is its own subject, ``google-device-<id>``.

    Returns
    -------
    LoadResult
        ``fixes`` and ``rejects``; records read = fixes + rejects.

    Example
    -------
    >>> import json, tempfile
    >>> from routetrace.loaders import load
    >>> signal = {"position": {"point": {"latE7": 510000000, "lngE7": 38700000},
    ...                        "accuracyMm": 12000, "timestamp": "2025-10-26T21:00:00Z"}}
    >>> doc = {"timelineEdits": [{"deviceId": "42", "rawSignal": {"signal": signal}},
    ...                          {"placeAggregates": {}}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "Timeline Edits.json"
    ...     _ = p.write_text(json.dumps(doc))
    ...     res = load(p)
    >>> res.fixes[["subject_id", "t_utc", "h_acc_m", "record"]]
             subject_id                     t_utc  h_acc_m            record
    0  google-device-42 2025-10-26 21:00:00+00:00     12.0  timelineEdits[0]
    >>> res.records_read, res.rejects["record"].tolist()
    (2, ['timelineEdits[1]'])
    """
    jd = read_json(path, ctx)
    doc = jd.doc
    edits = doc.get("timelineEdits") if isinstance(doc, dict) else None
    if not isinstance(edits, list):
        raise ctx.error(CorruptSource, "no 'timelineEdits' array")
    out = _Out()
    for i, e in enumerate(edits):
        rec = f"timelineEdits[{i}]"
        if jd.take(rec, out):
            continue
        out.n += 1
        sig = e.get("rawSignal") if isinstance(e, Mapping) else None
        sig = sig.get("signal") if isinstance(sig, Mapping) else None
        pos = sig.get("position") if isinstance(sig, Mapping) else None
        if not isinstance(pos, Mapping):
            keys = sorted(e)[:5] if isinstance(e, Mapping) else type(e).__name__
            out.rejects.append((rec, f"edit without rawSignal.signal.position ({keys}): not a "
                                     "location record"))
            continue
        pt = pos.get("point")
        xy = (e7_pair(pt.get("latE7"), pt.get("lngE7")) if isinstance(pt, Mapping)
              else "no point")
        t = parse_time(pos.get("timestamp"))
        if isinstance(xy, str):
            out.rejects.append((rec, f"position: {xy}"))
            continue
        if isinstance(t, str):
            out.rejects.append((rec, f"position time: {t}"))
            continue
        mm = number(pos.get("accuracyMm"))
        assert isinstance(e, Mapping)
        out.fixes.append({
            "record": rec, "t_utc": t, "lat": xy[0], "lon": xy[1],
            "h_acc_m": None if mm is None else mm / 1000.0,
            "alt_m": number(pos.get("altitudeMeters")),
            "speed_mps": number(pos.get("speedMetersPerSecond")),
            "fix_kind": fix_kind(pos.get("source")),
            "subject_id": ctx.subject_id or device_subject(e.get("deviceId")),
            "extra": compact_json({"deviceId": e.get("deviceId"), "accuracyMm": mm,
                                   "source": pos.get("source")}),
        })
    jd.rest(out)
    return out.finish(ctx, "ISO-8601 timestamps with Z/offset, UTC")
