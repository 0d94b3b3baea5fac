"""Garmin Training Center XML (TCX): activities (fixes) and courses (planned routes, places).

Streamed with :func:`lxml.etree.iterparse` hardened by :mod:`.xmlsafe` (no entity
resolution, no network, no DTD loading, no huge trees); a document that declares entities
is refused outright. Each Trackpoint is cleared once read, so memory stays bounded by one
point, not by the file.

Records (locators, 0-based)
---------------------------
* ``Activity[a]/Lap[l]/Track[t]/Trackpoint[p]`` — a point an activity recorded: a fix
  (``fix_kind="gps"``) with ``Time``, ``Position/LatitudeDegrees`` and
  ``LongitudeDegrees``, ``AltitudeMeters`` (``alt_m``) and the ActivityExtension ``Speed``
  (m/s, ``speed_mps``); ``DistanceMeters`` (cumulative) and the activity's ``Sport`` are in
  ``extra``. Heart rate, cadence and power are not location evidence and are not read. A
  Trackpoint without ``Position`` (watches log heart rate while GPS is off or paused), with
  an unreadable or out-of-range position, 0,0, or without a usable time is a reject saying
  which.
* ``Course[c]/Track[t]/Trackpoint[p]`` — a point of a **course**: a route planned in
  advance and loaded onto the device to follow, not a record of where it was; its times
  are the virtual partner's schedule. So it is a place ``kind="course"`` without time
  (``t_precision="none"``, the planned time verbatim in ``extra.planned_time``), never a
  fix. ``Course[c]/CoursePoint[q]`` (named turns, water points) are places
  ``kind="course_point"`` the same way, with ``PointType`` in ``extra``.
* ``fault`` — when the XML breaks off or turns malformed part-way (a truncated copy),
  everything read before is kept and the fault is one reject naming the line and the
  Trackpoint it interrupted.

Time: TCX ``Time`` is ``xsd:dateTime``; Garmin writes UTC with ``Z``. An offset is
converted to UTC; a time without either needs ``tz`` (``--tz``), else the point is a
reject; times outside 1980-2100 are rejected as implausible.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from lxml import etree

from .. import timebase
from ..errors import CorruptSource
from . import xmlsafe
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["load_tcx", "sniff_tcx"]

_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_ENTITY_REFUSED = ("refused XML construct: entity declarations are not allowed in evidence "
                   "TCX (entity expansion or external entity attack)")


_ROOT = re.compile(rb"(?:\s|<\?.*?\?>|<!--.*?-->)*<(?:[\w.-]+:)?TrainingCenterDatabase[\s/>]", re.S)


def sniff_tcx(path: Path, head: bytes) -> bool:
    """The first element is ``<TrainingCenterDatabase`` (after the XML declaration and
    comments); a GPX that merely names the TCX schema (Garmin's TrackPointExtension) is not
    claimed.

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether the document's root element is ``TrainingCenterDatabase``.

    Example
    -------
    >>> sniff_tcx(Path("a.tcx"), b'<?xml version="1.0"?>\\n<TrainingCenterDatabase xmlns="x">')
    True
    >>> sniff_tcx(Path("a.gpx"), b'<gpx xmlns:tpx="http://www.garmin.com/TrainingCenterDatabase">')
    False
    """
    return _ROOT.match(head.lstrip(b"\xef\xbb\xbf")[:4096]) is not None


def _local(el: Any) -> str:
    """The element's name without its namespace (``{ns}Time`` -> ``Time``)."""
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _child(el: Any, name: str) -> Any:
    for c in el:
        if _local(c) == name:
            return c
    return None


def _text(el: Any) -> str | None:
    return None if el is None or el.text is None else (el.text.strip() or None)


def _number(el: Any, name: str) -> float | None:
    """A decimal child's value; None when absent; ValueError naming it when unreadable."""
    txt = _text(_child(el, name)) if el is not None else None
    if txt is None:
        return None
    try:
        value = float(txt)
    except ValueError:
        raise ValueError(f"unreadable <{name}> {txt[:40]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"<{name}> {txt[:40]!r} is not a finite number")
    return value


def _speed(tp: Any) -> float | None:
    """The ActivityExtension ``Speed`` (m/s) under ``Extensions``, if any."""
    ext = _child(tp, "Extensions")
    if ext is None:
        return None
    for el in ext.iter():
        if _local(el) == "Speed":
            try:
                v = float(el.text or "")
            except ValueError:
                return None
            return v if math.isfinite(v) and v >= 0 else None
    return None


@dataclass
class _Walk:
    """Where the stream is (the indices of the locator) and what it has produced."""

    activity: int = -1
    course: int = -1
    lap: int = -1
    track: int = -1
    point: int = -1
    course_point: int = -1
    in_course: bool = False
    sport: str | None = None
    course_name: str | None = None
    open_point: str | None = None
    n: int = 0
    points: list[dict[str, Any]] = field(default_factory=list)
    places: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)

    def point_record(self) -> str:
        if self.in_course:
            return f"Course[{self.course}]/Track[{self.track}]/Trackpoint[{self.point}]"
        return f"Activity[{self.activity}]/Lap[{self.lap}]/Track[{self.track}]/Trackpoint[{self.point}]"


def _on_start(el: Any, w: _Walk) -> None:
    """Advance the locator indices when a container opens."""
    tag = _local(el)
    if tag == "Activity":
        w.activity, w.lap, w.in_course, w.sport = w.activity + 1, -1, False, el.get("Sport")
    elif tag == "Course":
        w.course, w.track, w.course_point, w.in_course = w.course + 1, -1, -1, True
        w.course_name = None
    elif tag == "Lap" and not w.in_course:
        w.lap, w.track = w.lap + 1, -1
    elif tag == "Track":
        w.track, w.point = w.track + 1, -1
    elif tag == "Trackpoint":
        w.point += 1
        w.open_point = w.point_record()


def _position(tp: Any) -> tuple[float, float] | str:
    """(lat, lon) of a Trackpoint or CoursePoint, or why there is none."""
    pos = _child(tp, "Position")
    if pos is None:
        return "no <Position> (a point logged without a GPS fix: heart rate, distance or pause only)"
    try:
        lat, lon = _number(pos, "LatitudeDegrees"), _number(pos, "LongitudeDegrees")
    except ValueError as exc:
        return str(exc)
    if lat is None or lon is None:
        return "<Position> without LatitudeDegrees or LongitudeDegrees"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return f"position {lat}, {lon} out of range"
    if lat == 0 and lon == 0:
        return "position 0,0 (placeholder for no fix)"
    return lat, lon


def _trackpoint(tp: Any, w: _Walk) -> None:
    """One Trackpoint: a point row (time parsed later, all at once), a course place or a reject."""
    w.n += 1
    rec = w.point_record()
    pos = _position(tp)
    if isinstance(pos, str):
        w.rejects.append((rec, pos))
        return
    try:
        alt = _number(tp, "AltitudeMeters")
        dist = _number(tp, "DistanceMeters")
    except ValueError as exc:
        w.rejects.append((rec, str(exc)))
        return
    time_s = _text(_child(tp, "Time"))
    if w.in_course:
        w.places.append({"record": rec, "kind": "course", "name": w.course_name, "lat": pos[0],
                         "lon": pos[1], "t_precision": "none",
                         "extra": compact_json({"planned_time": time_s, "alt_m": alt,
                                                "distance_m": dist})})
        return
    w.points.append({"record": rec, "time": time_s, "lat": pos[0], "lon": pos[1], "alt_m": alt,
                     "speed_mps": _speed(tp), "fix_kind": "gps",
                     "extra": compact_json({"sport": w.sport, "distance_m": dist})})


def _course_point(cp: Any, w: _Walk) -> None:
    """A CoursePoint: a place of the planned route, or a reject."""
    w.course_point += 1
    w.n += 1
    rec = f"Course[{w.course}]/CoursePoint[{w.course_point}]"
    pos = _position(cp)
    if isinstance(pos, str):
        w.rejects.append((rec, pos))
        return
    w.places.append({"record": rec, "kind": "course_point", "name": _text(_child(cp, "Name")),
                     "text": _text(_child(cp, "Notes")), "lat": pos[0], "lon": pos[1],
                     "t_precision": "none",
                     "extra": compact_json({"course": w.course_name,
                                            "point_type": _text(_child(cp, "PointType")),
                                            "planned_time": _text(_child(cp, "Time"))})})


def _on_end(el: Any, w: _Walk) -> None:
    """Read a finished element, then free it (and the finished siblings before it)."""
    tag = _local(el)
    if tag == "Trackpoint":
        _trackpoint(el, w)
        w.open_point = None
    elif tag == "CoursePoint":
        _course_point(el, w)
    elif tag == "Name" and w.in_course and el.getparent() is not None \
            and _local(el.getparent()) == "Course":
        w.course_name = _text(el)
        return
    elif tag not in ("Track", "Lap", "Activity", "Course"):
        return
    el.clear(keep_tail=True)
    parent = el.getparent()
    while parent is not None and el.getprevious() is not None:
        del parent[0]


def _check_root(root: Any, ctx: LoadContext) -> None:
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise ctx.error(CorruptSource, _ENTITY_REFUSED)
    if _local(root) != "TrainingCenterDatabase":
        raise ctx.error(CorruptSource, f"not a TCX document: the root element is <{_local(root)}>, "
                        "not <TrainingCenterDatabase>")


def _fault(exc: etree.XMLSyntaxError, w: _Walk) -> None:
    """The XML broke off or turned malformed after the root: one reject, the rest kept."""
    where = f"; the Trackpoint it interrupted ({w.open_point}) is part of this reject" \
        if w.open_point else ""
    w.n += 1
    w.rejects.append(("fault", f"the XML breaks off or is malformed at line {exc.lineno}: "
                               f"{exc.msg}; the records before it are kept{where}"))


def _stream(path: Path, ctx: LoadContext) -> _Walk:
    """Walk the document once; a fault after the root is one reject, the rest is kept."""
    head = _head(path)
    if xmlsafe.declares_entities(head):
        raise ctx.error(CorruptSource, _ENTITY_REFUSED)
    w = _Walk()
    seen_root = False
    with open(path, "rb") as fh:
        try:
            for event, el in xmlsafe.iterparse(fh, events=("start", "end")):
                if not seen_root:
                    _check_root(el, ctx)
                    seen_root = True
                if event == "start":
                    _on_start(el, w)
                else:
                    _on_end(el, w)
        except etree.XMLSyntaxError as exc:
            if not seen_root:
                raise ctx.error(CorruptSource, f"malformed XML: {exc}") from exc
            _fault(exc, w)
    return w


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(65536)


def _time_problem(value: object, tz: str | None) -> tuple[pd.Timestamp | None, str]:
    """For a time that :func:`timebase.parse_iso` did not read: a local reading with ``tz``,
    or the reason it is rejected."""
    if not isinstance(value, str) or not value:
        return None, "Trackpoint without <Time>: a fix needs a time and none is invented"
    if _NAIVE.match(value):
        if tz is None:
            return None, f"<Time> {value!r} has no UTC offset and no --tz was given"
        loc = timebase.localize(pd.Series([value]), tz=tz).iloc[0]
        if pd.isna(loc):
            return None, f"local time {value!r} does not exist or is ambiguous in {tz}"
        return loc, ""
    parsed = pd.to_datetime(pd.Series([value]), utc=True, errors="coerce", format="ISO8601").iloc[0]
    if pd.notna(parsed):
        return None, f"implausible time {parsed.isoformat()} (outside 1980-2100)"
    return None, f"unreadable <Time> {value[:40]!r}"


def _fixes(points: list[dict[str, Any]], tz: str | None,
           rejects: list[tuple[str, str]]) -> pd.DataFrame | None:
    """The activity points with their times read in one vectorised pass; a point whose time
    is unusable moves to ``rejects``."""
    if not points:
        return None
    df = pd.DataFrame(points)
    df["t_utc"] = timebase.parse_iso(df["time"].tolist()).to_numpy()
    for i in df.index[df["t_utc"].isna()]:
        t, why = _time_problem(df.at[i, "time"], tz)
        if t is None:
            rejects.append((df.at[i, "record"], why))
        else:
            df.at[i, "t_utc"] = t
    df = df[df["t_utc"].notna()].drop(columns="time")
    return df if len(df) else None


@register(LoaderSpec(
    name="tcx",
    description="Garmin Training Center XML: activity Trackpoints (fixes), courses (places)",
    sniff=sniff_tcx,
    produces=("fixes", "places"),
))
def load_tcx(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a TCX file (see the module doc for what is a record). ``ctx.tz`` is used only
    for times without ``Z`` or an offset.

    Every Trackpoint of an activity is a record (a fix, or a reject saying what is
    missing: position, time); course points are places without time; a file that breaks
    off part-way keeps what was read and adds one ``fault`` reject.

    Parameters
    ----------
    path
        The TCX file (only read, streamed).
    ctx
        The load context (source identity, subject, ``tz``) built by
        :func:`routetrace.loaders.load`.

    Returns
    -------
    LoadResult
        ``fixes``, ``places`` (courses) and ``rejects``; records read = produced +
        rejected.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> pt = "<Trackpoint><Time>2025-10-26T21:0{}:00Z</Time>{}</Trackpoint>"
    >>> pos = ("<Position><LatitudeDegrees>51.0</LatitudeDegrees>"
    ...        "<LongitudeDegrees>3.87</LongitudeDegrees></Position>")
    >>> doc = ('<TrainingCenterDatabase '
    ...        'xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">'
    ...        '<Activities><Activity Sport="Running"><Lap><Track>'
    ...        + pt.format(0, pos) + pt.format(1, "") +
    ...        '</Track></Lap></Activity></Activities></TrainingCenterDatabase>')
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "run.tcx"
    ...     _ = p.write_text(doc)
    ...     res = load(p)
    >>> res.fixes[["t_utc", "lat", "lon"]]
                          t_utc   lat   lon
    0 2025-10-26 21:00:00+00:00  51.0  3.87
    >>> res.records_read, res.rejects["record"].tolist()
    (2, ['Activity[0]/Lap[0]/Track[0]/Trackpoint[1]'])
    >>> res.rejects["reason"].iloc[0]
    'no <Position> (a point logged without a GPS fix: heart rate, distance or pause only)'
    """
    w = _stream(path, ctx)
    rejects = list(w.rejects)
    fixes = _fixes(w.points, ctx.tz, rejects)
    basis = "TCX <Time>: xsd:dateTime with Z or offset, converted to UTC"
    if ctx.tz:
        basis += f"; times without offset read as {ctx.tz} (user-stated)"
    if w.places:
        basis += "; course times are a planned schedule, kept in extra, not used"
    return ctx.finish(records_read=w.n, time_basis=basis, fixes=fixes,
                      places=pd.DataFrame(w.places) if w.places else None, rejects=rejects)
