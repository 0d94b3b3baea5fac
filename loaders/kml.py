"""KML and KMZ: placemarks, timestamps and tracks (Google Earth, My Maps, trackers).

Parsed with lxml hardened against hostile XML (no entity resolution, no network, no DTD
loading, no huge trees); a document that declares entities is refused outright. A KMZ is
a zip: its first ``.kml`` member is read in memory with the same size and ratio limits as
every archive (:class:`routetrace.evidence.ArchiveLimits`), so no file is written and no
path can escape; zips written in streaming mode (data descriptors) read normally.

Records (locators)
------------------
* ``Placemark[i]`` — the i-th Placemark of the document (0-based), for points, lines and
  polygons. A Point whose ``TimeStamp`` is a full date-time is a **fix**; a Point with a
  reduced-precision time ('1997', '1997-07', '1997-07-16') or a ``TimeSpan`` is a
  **place** whose ``t_start``/``t_end`` cover that year, month, day or span
  (``t_precision`` says which; flag ``time_precision_reduced``) — never a fake instant.
  Placemarks without any time (My Maps exports) are places; lines and polygons (timed or
  not) are places at their first vertex with the vertex count and bounding box in
  ``extra``; a ``MultiGeometry`` is one record, placed at its first part (the number of
  parts in ``extra``). Description (``places.text``) and ExtendedData ``Data``/``SimpleData``
  (``extra.data``) are kept verbatim (hostile text: escaped on output).
* ``Placemark[i]/Track[k]/when[j]`` — each ``when``/``coord`` pair of a ``gx:Track`` or
  KML 2.3 ``Track`` (also inside ``gx:MultiTrack``) is a record: a fix, or a reject when its
  coordinate is empty (a pause in OpenTracks exports), missing or invalid, or when its
  time has less than full precision.
* ``Placemark[i]/Track[k]/coord[j]`` — a ``coord`` without a ``when`` (Google Timeline
  exports write tracks of bare ``gx:coord``): when the Placemark has a ``TimeSpan``, a place
  ``kind="track_point"`` whose ``t_start``/``t_end`` are the span's begin and end, stated
  bounds and not the point's own time (``t_precision="window"``, flag ``no_time``,
  ``extra.time_bounds="Placemark TimeSpan"``; no time is interpolated); without a usable
  span, a reject ("no time").
* A track without any ``when`` or ``coord`` (an empty ``gx:Track`` beside a Timeline
  visit's Point) is no track: the Placemark is read by its other geometry as
  ``Placemark[i]``, or rejected as having none.
* A ``TimeSpan`` (or, on a line or polygon, a ``TimeStamp``) that cannot be read costs the
  place its time, not the place: it is kept with the usable bound, or none (flag
  ``no_time``), and the problem in ``extra.time_rejected``. A Point whose ``TimeStamp``
  cannot be read is a reject (it would have been a fix).

Streamed into a case (``routetrace ingest``: a sink takes the rows), the rows of the
Placemarks read so far are given as a part whenever they reach ``PART_ROWS``, so memory
holds about one part (and the Placemark being read), not the document; the rows are the
same.

Times with ``Z`` or an offset are converted to UTC; a full date-time without either needs
``tz`` (else the record is rejected with that reason). Times outside 1980-2100 (e.g. the
1970 placeholders of receivers without a time fix) are rejected as implausible.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from .. import timebase
from ..errors import CorruptSource, UnsafeArchive
from ..evidence import ArchiveLimits
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["load_kml", "load_kmz", "sniff_kml", "sniff_kmz"]

_PARSER_ARGS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                    remove_comments=True)
_PARTIAL = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
#: track points converted together (and the text buffered before it becomes Arrow)
_CHUNK = 65_536
_DEC = r"-?(?:\d{1,18}(?:\.\d{0,18})?|\.\d{1,18})"
#: the ``coord`` texts the vectorised path reads (two or three plain decimals); anything
#: else is read one by one as before (:func:`_pair`)
_FAST_COORD = rf"^\s*(?P<lon>{_DEC})\s+(?P<lat>{_DEC})(?:\s+(?P<alt>{_DEC}))?\s*$"
#: the ``when`` texts the vectorised path reads (a full time with ``Z`` or an offset)
_FAST_TIME = (r"^\s*(?P<t>\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?"
              r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d))\s*$")
_EMPTY_COORD = "empty or missing <coord> for this <when> (a pause or no fix)"


def sniff_kml(path: Path, head: bytes) -> bool:
    """A ``<kml`` root element near the start of an XML text.

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether a ``<kml`` root element opens the document.

    Example
    -------
    >>> sniff_kml(Path("a.kml"), b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2">')
    True
    >>> sniff_kml(Path("a.gpx"), b'<gpx version="1.1">')
    False
    """
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()[:2048].lower()
    return text.startswith(b"<") and b"<kml" in text


def sniff_kmz(path: Path, head: bytes) -> bool:
    """A zip archive whose members include a ``.kml`` file.

    Parameters
    ----------
    path
        The file; its zip directory is read.
    head
        Its first bytes (a zip starts with ``PK``).

    Returns
    -------
    bool
        Whether ``path`` is a zip holding a ``.kml`` member.

    Example
    -------
    >>> import tempfile, zipfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "a.kmz"
    ...     with zipfile.ZipFile(p, "w") as z:
    ...         z.writestr("doc.kml", "<kml/>")
    ...     print(sniff_kmz(p, p.read_bytes()[:64]))
    True
    """
    if head[:4] != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.lower().endswith(".kml") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _local(el: Any) -> str:
    tag = el.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child(el: Any, name: str) -> Any:
    for c in el:
        if _local(c) == name:
            return c
    return None


def _text(el: Any) -> str | None:
    return None if el is None or el.text is None else el.text.strip()


def _parse_time(value: str | None, tz: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None, str, str | None]:
    """(start, end, precision, problem) for a KML time string."""
    if not value:
        return None, None, "none", "empty <when>"
    v = value.strip()
    if _PARTIAL.match(v):
        if not 1 <= int(v[:4]) <= 9999 or (len(v) >= 7 and not 1 <= int(v[5:7]) <= 12):
            return None, None, "none", f"impossible date {v!r}"
        try:
            return _partial(v)
        except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
            return None, None, "none", f"impossible date {v!r}"
    return _full(v, tz)


def _partial(v: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None, str, str | None]:
    """A reduced-precision date ('1997', '1997-07', '1997-07-16') as the window it covers."""
    if len(v) == 4:
        start = pd.Timestamp(f"{v}-01-01", tz="UTC")
        end, prec = start + pd.DateOffset(years=1), "year"
    elif len(v) == 7:
        start = pd.Timestamp(f"{v}-01", tz="UTC")
        end, prec = start + pd.DateOffset(months=1), "month"
    else:
        start = pd.Timestamp(v, tz="UTC")
        end, prec = start + pd.Timedelta(days=1), "day"
    return start, end - pd.Timedelta(1, "ns"), prec, None


def _full(v: str, tz: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None, str, str | None]:
    try:
        t = timebase.parse_iso([v]).iloc[0]
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return None, None, "none", f"unreadable time {v[:40]!r}"
    if pd.isna(t):
        if re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$", v):
            if tz is None:
                return None, None, "none", f"time {v!r} has no UTC offset and no --tz was given"
            try:
                loc = timebase.localize(pd.Series([v]), tz=tz).iloc[0]
            except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
                return None, None, "none", f"unreadable time {v[:40]!r}"
            if pd.isna(loc):
                return None, None, "none", f"local time {v!r} does not exist or is ambiguous in {tz}"
            return loc, loc, "instant", None
        try:
            parsed = pd.to_datetime(v, utc=True, errors="coerce", format="ISO8601")
        except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
            parsed = pd.NaT
        if pd.notna(parsed):
            return None, None, "none", f"implausible time {parsed.isoformat()} (outside 1980-2100)"
        return None, None, "none", f"unreadable time {v[:40]!r}"
    return t, t, "instant", None


def _coords(text: str | None) -> list[tuple[float, float, float | None]]:
    """KML ``lon,lat[,alt]`` tuples separated by white space."""
    out = []
    for tup in (text or "").split():
        vals = [float(x) for x in tup.split(",") if x != ""]
        if len(vals) < 2:
            raise ValueError(f"coordinate {tup!r} has fewer than 2 numbers")
        out.append((vals[0], vals[1], vals[2] if len(vals) > 2 else None))
    return out


def _valid(lon: float, lat: float) -> bool:
    return -180 <= lon <= 180 and -90 <= lat <= 90 and not (lat == 0 and lon == 0)


@dataclass
class _Out:
    """The rows being built for one document, and the records read so far."""

    tz: str | None
    fixes: list[dict[str, Any]] = field(default_factory=list)
    places: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)
    n: int = 0
    parts: list[pd.DataFrame] = field(default_factory=list)  # fixes so far, in document order
    given: int = 0  # records given to a sink already (:func:`_emit`)

    def held(self) -> int:
        """Rows built and not given yet."""
        return len(self.fixes) + sum(len(p) for p in self.parts) + len(self.places)

    def add_fixes(self, df: pd.DataFrame) -> None:
        """Append converted track fixes after the row-by-row fixes read before them."""
        self.flush()
        self.parts.append(df)

    def flush(self) -> None:
        """The row-by-row fixes read so far as one frame (records and extra as Arrow strings)."""
        if self.fixes:
            df = pd.DataFrame(self.fixes)
            for col in ("record", "extra"):
                df[col] = df[col].astype(pd.StringDtype("pyarrow"))
            df["alt_m"] = pd.to_numeric(df["alt_m"]).astype("float64")
            self.parts.append(df)
            self.fixes = []

    def all_fixes(self) -> pd.DataFrame | None:
        """Every fix, in document order (None when there is none)."""
        self.flush()
        if not self.parts:
            return None
        return pd.concat(self.parts, ignore_index=True) if len(self.parts) > 1 else self.parts[0]


@dataclass
class _TrackText:
    """The ``when`` and ``coord`` texts of one track, as read (Arrow chunks plus the text
    read since the last chunk): the elements themselves are freed as they end."""

    whens: list[str | None] = field(default_factory=list)
    coords: list[str | None] = field(default_factory=list)
    when_chunks: list[pa.Array] = field(default_factory=list)
    coord_chunks: list[pa.Array] = field(default_factory=list)

    def add(self, is_when: bool, text: str | None) -> None:
        buf = self.whens if is_when else self.coords
        buf.append(text)
        if len(buf) >= _CHUNK:
            (self.when_chunks if is_when else self.coord_chunks).append(pa.array(buf, pa.string()))
            buf.clear()

    def __bool__(self) -> bool:  # a track with any when or coord
        return bool(self.whens or self.coords or self.when_chunks or self.coord_chunks)

    def arrays(self) -> tuple[pa.Array, pa.Array]:
        """(whens, coords) as Arrow strings (null: an element without text)."""
        w = pa.concat_arrays([*self.when_chunks, pa.array(self.whens, pa.string())])
        c = pa.concat_arrays([*self.coord_chunks, pa.array(self.coords, pa.string())])
        return w, c


@dataclass(frozen=True)
class _Span:
    """A Placemark's ``TimeSpan`` as bounds (None: open or unusable) and what was unusable."""

    begin: pd.Timestamp | None
    end: pd.Timestamp | None
    problem: str | None


@dataclass(frozen=True)
class _Meta:
    """What a Placemark says about itself: name, description (verbatim), ExtendedData."""

    name: str | None
    desc: str | None
    data: dict[str, str | None]


def _extended_data(ext: Any) -> dict[str, str | None]:
    """``<ExtendedData>``: ``Data``/``value`` and ``SimpleData`` pairs by name, verbatim."""
    out: dict[str, str | None] = {}
    if ext is None:
        return out
    for d in ext.iter():
        if _local(d) == "Data" and d.get("name"):
            out[d.get("name")] = _text(_child(d, "value"))
        elif _local(d) == "SimpleData" and d.get("name"):
            out[d.get("name")] = d.text
    return out


def _meta(pm: Any) -> _Meta:
    desc_el = _child(pm, "description")
    return _Meta(name=_text(_child(pm, "name")),
                 desc=desc_el.text if desc_el is not None else None,  # verbatim (hostile text, escaped on output)
                 data=_extended_data(_child(pm, "ExtendedData")))


def _coord_value(txt: str) -> tuple[tuple[float, float, float | None] | None, str | None]:
    """A track ``coord`` (``lon lat [alt]``, space-separated): (position, None) or (None, reason)."""
    parts = txt.split()
    try:
        lon, lat = float(parts[0]), float(parts[1])
        alt = float(parts[2]) if len(parts) > 2 else None
    except (ValueError, IndexError):
        return None, f"unreadable <coord> {txt[:40]!r}"
    if not _valid(lon, lat):
        return None, f"invalid coordinate {lon}, {lat}"
    return (lon, lat, alt), None


def _pair(when: str | None, coord: str | None, tz: str | None
          ) -> tuple[tuple[float, float, float | None, pd.Timestamp] | None, str | None]:
    """One ``when``/``coord`` pair of a track (stripped texts, None when absent or empty):
    ((lon, lat, alt, UTC time), None) for a fix, or (None, the reason it is rejected)."""
    if not coord:
        return None, _EMPTY_COORD
    pos, why = _coord_value(coord)
    if pos is None:
        return None, why
    t0, _t1, prec, why = _parse_time(when, tz)
    if why or t0 is None:
        return None, why or "no time"
    if prec != "instant":  # a track point dated '1997-07' is not an instant
        return None, f"track <when> {when!r} has {prec} precision only"
    return (*pos, t0), None


def _untimed_coord(rec: str, txt: str | None, span: _Span, meta: _Meta, out: _Out) -> None:
    """A track ``coord`` (its stripped text) without its ``when``: a place bounded by the
    Placemark's TimeSpan (``t_precision="window"``, flag ``no_time``: the point's own time
    is unknown and none is invented), or a reject when the Placemark states no usable span."""
    if span.begin is None and span.end is None:
        why = f"; the Placemark's TimeSpan is unusable ({span.problem})" if span.problem else ""
        out.rejects.append((rec, f"<coord> without a matching <when> (no time){why}"))
        return
    if not txt:
        out.rejects.append((rec, "empty <coord> without a <when> (a pause or no fix)"))
        return
    pos, bad = _coord_value(txt)
    if pos is None:
        out.rejects.append((rec, str(bad)))
        return
    lon, lat, alt = pos
    out.places.append({"record": rec, "kind": "track_point", "name": meta.name, "lat": lat,
                       "lon": lon, "t_start": span.begin, "t_end": span.end,
                       "t_precision": "window", "flags": "no_time",
                       "extra": compact_json({"time_bounds": "Placemark TimeSpan", "alt_m": alt,
                                              "time_rejected": span.problem,
                                              "data": meta.data or None})})


def _np(arr: Any) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _fast_coords(c: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lon, lat, alt, read) of ``coord`` texts of the plain shape; ``read`` False elsewhere."""
    st = pc.extract_regex(c, _FAST_COORD)
    read = _np(pc.is_valid(st)).astype(bool)

    def num(name: str) -> np.ndarray:
        f = pc.struct_field(st, name)
        f = pc.if_else(pc.equal(f, ""), pa.scalar(None, pa.string()), f)
        return _np(pc.cast(f, pa.float64())).astype(np.float64)

    lon, lat, alt = num("lon"), num("lat"), num("alt")
    with np.errstate(invalid="ignore"):
        read &= (np.abs(lon) <= 180) & (np.abs(lat) <= 90) & ~((lat == 0) & (lon == 0))
    return lon, lat, alt, read


def _fast_times(w: pa.Array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(UTC ns, read) of ``when`` texts with ``Z`` or an offset inside 1980-2100 at ``rows``;
    ``read`` False elsewhere (read one by one: partial dates, local times, the rest)."""
    st = pc.extract_regex(w, _FAST_TIME)
    read = _np(pc.is_valid(st)).astype(bool) & rows
    ns = np.zeros(len(w), dtype=np.int64)
    if read.any():
        texts = pc.struct_field(st, "t").filter(pa.array(read))
        try:
            ns[read] = _np(pc.cast(texts, pa.timestamp("ns", tz="UTC")).cast(pa.int64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. 30 February: as parse_iso
            parsed = timebase.as_ns_utc(pd.to_datetime(pd.Series(texts.to_pylist(), dtype=object),
                                                       utc=True, errors="coerce", format="ISO8601"))
            ns[read] = np.asarray(parsed.array.asi8)  # NaT: int64 min, outside the range below
        lo, hi = (int(t.value) for t in timebase.PLAUSIBLE)
        read &= (ns >= lo) & (ns <= hi)
    return ns, read


def _pairs(w: pa.Array, c: pa.Array, rec: str, j0: int, extra: str, out: _Out) -> None:
    """The ``when``/``coord`` pairs ``j0 ..`` of a track (``c`` null where the coord is
    missing): the plain ones converted in one vectorised pass, the others by :func:`_pair`;
    fixes and rejects in pair order."""
    m = len(w)
    lon, lat, alt, read = _fast_coords(c)
    ns, timed = _fast_times(w, read)
    empty = _np(pc.fill_null(pc.match_substring_regex(c, r"^\s*$"), True)).astype(bool)
    reasons = np.full(m, None, dtype=object)
    reasons[empty & ~read] = _EMPTY_COORD
    for j in np.flatnonzero(~timed & ~empty):  # what the fast path did not read: one by one
        wt, ct = w[j].as_py(), c[j].as_py()
        got, why = _pair(wt.strip() or None if wt else None, ct.strip() or None if ct else None,
                         out.tz)
        if got is None:
            reasons[j] = why
        else:
            lon[j], lat[j] = got[0], got[1]
            alt[j] = np.nan if got[2] is None else got[2]
            ns[j] = got[3].as_unit("ns").value
    ok = np.asarray(pd.isna(reasons), dtype=bool)
    for j in np.flatnonzero(~ok):
        out.rejects.append((f"{rec}{j0 + int(j)}]", str(reasons[j])))
    if not ok.any():
        return
    rows = np.flatnonzero(ok)
    records = pc.binary_join_element_wise(rec, pc.cast(pa.array(rows + j0), pa.string()), "]", "")
    out.add_fixes(pd.DataFrame({
        "record": pd.Series(pd.StringDtype("pyarrow").__from_arrow__(records)),
        "t_utc": pd.Series(ns[rows].view("datetime64[ns]")).dt.tz_localize("UTC"),
        "lat": lat[rows], "lon": lon[rows], "alt_m": alt[rows], "fix_kind": "unknown",
        "extra": pd.Series(extra, index=range(len(rows)), dtype=pd.StringDtype("pyarrow")),
    }))


def _track(text: _TrackText, i: int, k: int, meta: _Meta, span: _Span, out: _Out) -> None:
    """A ``gx:Track``/``Track``: each ``when``/``coord`` pair is a record (converted
    :data:`_CHUNK` pairs at a time); a ``coord`` without a ``when`` is a record of its own
    (see :func:`_untimed_coord`)."""
    whens, coords = text.arrays()
    nw, nc = len(whens), len(coords)
    extra = compact_json({"name": meta.name, "data": meta.data or None})
    rec = f"Placemark[{i}]/Track[{k}]/when["
    for a in range(0, nw, _CHUNK):
        b = min(a + _CHUNK, nw)
        c = coords.slice(a, max(0, min(b, nc) - a))
        if len(c) < b - a:  # whens without their coord
            c = pa.concat_arrays([c, pa.nulls(b - a - len(c), pa.string())])
        _pairs(whens.slice(a, b - a), c, rec, a, extra, out)
    out.n += nw
    for j in range(nw, nc):
        out.n += 1
        txt = coords[j].as_py()
        _untimed_coord(f"Placemark[{i}]/Track[{k}]/coord[{j}]", txt.strip() if txt else None,
                       span, meta, out)


def _geometry_extra(pm: Any, geom: Any, pts: list[tuple[float, float, float | None]],
                    meta: _Meta) -> dict[str, Any]:
    extra: dict[str, Any] = {"geometry": _local(geom), "vertices": len(pts), "name": meta.name,
                             "data": meta.data or None}
    multi = _child(pm, "MultiGeometry")
    if multi is not None:
        extra["multigeometry_parts"] = sum(1 for el in multi.iter()
                                           if _local(el) in ("Point", "LineString", "Polygon"))
    if len(pts) > 1:
        extra["bbox"] = [min(p[0] for p in pts), min(p[1] for p in pts),
                         max(p[0] for p in pts), max(p[1] for p in pts)]
    return extra


def _first_vertex(pm: Any, rec: str, out: _Out, *, empty_track: bool = False
                  ) -> tuple[Any, list[tuple[float, float, float | None]]] | None:
    """The Placemark's geometry and its vertices, or None after rejecting the record."""
    geom = next((el for el in pm.iter() if _local(el) in ("Point", "LineString", "LinearRing", "Polygon")), None)
    if geom is None:
        out.rejects.append((rec, "Placemark without a geometry" +
                            (" (its gx:Track holds no <when> and no <coord>)" if empty_track else "")))
        return None
    coord_el = next((el for el in geom.iter() if _local(el) == "coordinates"), None)
    try:
        pts = _coords(_text(coord_el))
    except ValueError as exc:
        out.rejects.append((rec, f"invalid <coordinates>: {exc}"))
        return None
    if not pts:
        out.rejects.append((rec, "empty <coordinates>"))
        return None
    lon, lat, _alt = pts[0]
    if not _valid(lon, lat):
        out.rejects.append((rec, f"invalid coordinate {lon}, {lat}"))
        return None
    return geom, pts


def _timestamp(ts: Any, rec: str, geom: Any, pt: tuple[float, float, float | None], meta: _Meta,
               extra: dict[str, Any], out: _Out) -> None:
    """A Placemark with a ``TimeStamp``: a fix (full time on a Point) or a place (window)."""
    lon, lat, alt = pt
    t0, t1, prec, why = _parse_time(_text(_child(ts, "when")), out.tz)
    if why and _local(geom) == "Point":  # would have been a fix: the record is rejected
        out.rejects.append((rec, why))
        return
    if why:  # a line or polygon is a place with or without its time: keep it, say why not timed
        out.places.append({"record": rec, "kind": "placemark", "name": meta.name, "text": meta.desc,
                           "lat": lat, "lon": lon, "t_start": None, "t_end": None,
                           "t_precision": "none", "flags": "no_time",
                           "extra": compact_json({**extra, "time_rejected": why})})
        return
    if prec == "instant" and _local(geom) == "Point":
        out.fixes.append({"record": rec, "t_utc": t0, "lat": lat, "lon": lon, "alt_m": alt,
                          "fix_kind": "unknown",
                          "extra": compact_json({"name": meta.name, "description": meta.desc,
                                                 "data": meta.data or None})})
        return
    out.places.append({"record": rec, "kind": "placemark", "name": meta.name, "text": meta.desc,
                       "lat": lat, "lon": lon, "t_start": t0, "t_end": t1, "t_precision": prec,
                       "flags": "time_precision_reduced" if prec != "instant" else "",
                       "extra": compact_json(extra)})


def _span_bounds(span: Any, tz: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None, str | None]:
    """(begin, end, problem) of a ``TimeSpan``: each side that is present and readable is a
    bound; a side that is present but unusable is named in ``problem`` (an absent side is an
    open bound, as KML defines it)."""
    problems = []
    bounds: list[pd.Timestamp | None] = []
    for side, pick in (("begin", 0), ("end", 1)):
        value = _text(_child(span, side))
        parsed = _parse_time(value, tz)
        bounds.append(parsed[pick])
        if value and parsed[3]:
            problems.append(f"<{side}>: {parsed[3]}")
    return bounds[0], bounds[1], "; ".join(problems) or None


def _timespan(span: Any, rec: str, pt: tuple[float, float, float | None], meta: _Meta,
              extra: dict[str, Any], out: _Out) -> None:
    """A Placemark with a ``TimeSpan`` (or with no time at all): a place.

    A TimeSpan that cannot be read does not cost the place: it is kept without that time
    (flag ``no_time`` when neither bound is usable) and the problem is in
    ``extra.time_rejected``.
    """
    lon, lat, _alt = pt
    t0 = t1 = None
    prec, flags = "none", ""
    if span is not None:
        t0, t1, problem = _span_bounds(span, out.tz)
        prec = "window" if t0 is not None or t1 is not None else "none"
        if problem or prec == "none":
            extra = {**extra, "time_rejected": problem or "TimeSpan without a begin or an end"}
        flags = "no_time" if prec == "none" else ""
    out.places.append({"record": rec, "kind": "placemark", "name": meta.name, "text": meta.desc,
                       "lat": lat, "lon": lon, "t_start": t0, "t_end": t1, "t_precision": prec,
                       "flags": flags, "extra": compact_json(extra)})


def _shape(pm: Any, i: int, meta: _Meta, out: _Out, *, empty_track: bool = False) -> None:
    """A Placemark without a track: one record ``Placemark[i]`` (Point, line or polygon)."""
    out.n += 1
    rec = f"Placemark[{i}]"
    found = _first_vertex(pm, rec, out, empty_track=empty_track)
    if found is None:
        return
    geom, pts = found
    extra = _geometry_extra(pm, geom, pts, meta)
    ts = next((el for el in pm.iter() if _local(el) == "TimeStamp"), None)
    if ts is not None:
        _timestamp(ts, rec, geom, pts[0], meta, extra, out)
        return
    _timespan(next((el for el in pm.iter() if _local(el) == "TimeSpan"), None), rec, pts[0],
              meta, extra, out)


def _placemark(pm: Any, i: int, out: _Out, texts: dict[Any, _TrackText]) -> None:
    """One ``<Placemark>``: its tracks' points (``texts``: each track's ``when``/``coord``
    texts, read as the stream went), else its geometry.

    A track without any ``when`` or ``coord`` (Google Timeline exports write an empty
    ``gx:Track`` beside the Point of a visit) is no track: the Placemark is read by its
    other geometry, or rejected as having none, so it is never lost uncounted.
    """
    meta = _meta(pm)
    tracks = [el for el in pm.iter() if _local(el) == "Track"]
    full = [(k, texts[tr]) for k, tr in enumerate(tracks) if texts.get(tr)]
    if full:
        span_el = next((el for el in pm.iter() if _local(el) == "TimeSpan"), None)
        span = _Span(*_span_bounds(span_el, out.tz)) if span_el is not None else _Span(None, None, None)
        for k, text in full:
            _track(text, i, k, meta, span, out)
        return
    _shape(pm, i, meta, out, empty_track=bool(tracks))


_ENTITIES_REFUSED = ("refused XML construct: entity declarations are not allowed in evidence "
                     "KML (entity expansion attack)")


def _refuse_entities(tree: Any, ctx: LoadContext) -> None:
    """Refuse a document whose DTD declares entities (any encoding: the byte check before
    parsing sees UTF-8 only)."""
    dtd = tree.docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise ctx.error(CorruptSource, _ENTITIES_REFUSED)


class _Points:
    """What happens to a finished ``when``/``coord``: a track's is kept as text
    (:class:`_TrackText`) and the element freed; tags are looked at once per distinct tag."""

    def __init__(self) -> None:
        self.texts: dict[Any, _TrackText] = {}
        self.local: dict[Any, str] = {}

    def local_of(self, tag: Any) -> str:
        name = self.local.get(tag)
        if name is None:
            name = self.local[tag] = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        return name

    def end(self, el: Any, local: str) -> None:
        """A ``when`` or ``coord`` ended (``local`` says which)."""
        parent = el.getparent()
        text = self.texts.get(parent)
        if text is None:
            if parent is None or self.local_of(parent.tag) != "Track":
                return  # a TimeStamp's when: read with its Placemark
            text = self.texts[parent] = _TrackText()
        text.add(local == "when", el.text)
        if len(el) == 0:  # (an element inside it stays: it may be a Placemark)
            el.clear(keep_tail=True)
            prev = el.getprevious()
            if prev is not None and len(prev) == 0 and self.local_of(prev.tag) in ("when", "coord"):
                parent.remove(prev)


def _free(el: Any) -> None:
    """Clear a finished Placemark and the finished siblings before it."""
    el.clear(keep_tail=True)
    parent = el.getparent()
    while parent is not None and el.getprevious() is not None:
        del parent[0]


def _stream(fh: IO[bytes], ctx: LoadContext, out: _Out) -> None:
    """Walk the document once: every outermost Placemark is read when it ends (with the
    Placemarks nested in it, in document order) and freed; a track's ``when``/``coord``
    elements are kept as text and freed as they end, so the tree never holds more than
    one Placemark without its track points."""
    points = _Points()
    i = 0
    limit = ctx.part_rows if ctx.streaming else None
    it = etree.iterparse(fh, events=("end",), tag=("{*}Placemark", "{*}when", "{*}coord"),
                         **_PARSER_ARGS)
    checked = False
    try:
        for _, el in it:
            if not checked:
                _refuse_entities(el.getroottree(), ctx)
                checked = True
            local = points.local_of(el.tag)
            if local != "Placemark":
                points.end(el, local)
                continue
            if next(el.iterancestors("{*}Placemark"), None) is not None:
                continue  # nested: read with the outermost Placemark, in document order
            for pm in el.iter("{*}Placemark"):
                _placemark(pm, i, out, points.texts)
                i += 1
            for tr in el.iter("{*}Track"):
                points.texts.pop(tr, None)
            _free(el)
            if limit is not None and out.held() >= limit:
                _emit(out, ctx)
        if not checked:
            _refuse_entities(it.root.getroottree(), ctx)
    except etree.XMLSyntaxError as exc:
        raise ctx.error(CorruptSource, f"malformed XML: {exc}") from exc


def _emit(out: _Out, ctx: LoadContext) -> None:
    """Give the rows of the Placemarks read so far to the sink as one part (streaming into
    a case), and drop them: memory holds a part of the document, not all of it."""
    ctx.emit(records_read=out.n - out.given, fixes=out.all_fixes(),
             places=pd.DataFrame(out.places) if out.places else None, rejects=out.rejects or None)
    out.given, out.parts, out.places, out.rejects = out.n, [], [], []


def _read(fh: IO[bytes], ctx: LoadContext) -> LoadResult:
    head = fh.read(65536)
    if b"<!ENTITY" in head or b"<!entity" in head:
        raise ctx.error(CorruptSource, _ENTITIES_REFUSED)
    fh.seek(0)
    out = _Out(tz=ctx.tz)
    _stream(fh, ctx, out)
    basis = "KML <when>: ISO-8601 with Z or offset converted to UTC; reduced-precision dates kept as windows"
    if ctx.tz:
        basis += f"; times without offset read as {ctx.tz} (user-stated)"
    return ctx.finish(records_read=out.n, time_basis=basis, fixes=out.all_fixes(),
                      places=pd.DataFrame(out.places) if out.places else None, rejects=out.rejects)


@register(LoaderSpec(
    name="kml",
    description="KML: placemarks (timed points are fixes, others places), gx:Track/Track pairs",
    sniff=sniff_kml,
    produces=("fixes", "places"),
))
def load_kml(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a KML document.

    Every Placemark is a record (``Placemark[i]``), and so is every ``when``/``coord``
    pair of a track (``Placemark[i]/Track[k]/when[j]``): a fix, a place or a reject with
    its reason (see the module doc). A document that declares entities is refused.

    Parameters
    ----------
    path
        The KML file (only read).
    ctx
        The load context (source identity, subject, ``tz`` for full date-times without
        an offset) built by :func:`routetrace.loaders.load`.

    Returns
    -------
    LoadResult
        ``fixes`` (timed points), ``places`` (untimed or reduced-precision placemarks,
        lines, polygons) and ``rejects``; records read = produced + rejected.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> doc = ('<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
    ...        '<Placemark><TimeStamp><when>2025-10-26T21:00:00Z</when></TimeStamp>'
    ...        '<Point><coordinates>3.87,51.0</coordinates></Point></Placemark>'
    ...        '<Placemark><name>Depot</name><Point><coordinates>3.9,51.1</coordinates>'
    ...        '</Point></Placemark></Document></kml>')
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "a.kml"
    ...     _ = p.write_text(doc)
    ...     res = load(p)
    >>> res.fixes[["t_utc", "lat", "lon", "record"]]
                          t_utc   lat   lon        record
    0 2025-10-26 21:00:00+00:00  51.0  3.87  Placemark[0]
    >>> res.places[["name", "lat", "record"]]
        name   lat        record
    0  Depot  51.1  Placemark[1]
    """
    with open(path, "rb") as fh:
        return _read(fh, ctx)


@register(LoaderSpec(
    name="kmz",
    description="KMZ (zipped KML): the first .kml member, read in memory with archive limits",
    sniff=sniff_kmz,
    produces=("fixes", "places"),
))
def load_kmz(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load the first ``.kml`` member of a KMZ archive (size and ratio limits apply).

    The member is read in memory (nothing is extracted to disk) and its records are
    those of :func:`load_kml`, their locators the same.

    Parameters
    ----------
    path
        The KMZ (zip) file (only read).
    ctx
        The load context (source identity, subject, ``tz``) built by
        :func:`routetrace.loaders.load`.

    Returns
    -------
    LoadResult
        As :func:`load_kml` for the member; records read = produced + rejected.

    Example
    -------
    >>> import tempfile, zipfile
    >>> from routetrace.loaders import load
    >>> doc = ('<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><TimeStamp>'
    ...        '<when>2025-10-26T21:00:00Z</when></TimeStamp>'
    ...        '<Point><coordinates>3.87,51.0</coordinates></Point></Placemark></kml>')
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "a.kmz"
    ...     with zipfile.ZipFile(p, "w") as z:
    ...         z.writestr("doc.kml", doc)
    ...     res = load(p)
    >>> res.source["format"].iloc[0], res.fixes["record"].tolist(), res.records_read
    ('kmz', ['Placemark[0]'], 1)
    """
    lim = ArchiveLimits()
    try:
        with zipfile.ZipFile(path) as zf:
            kmls = sorted((i for i in zf.infolist() if i.filename.lower().endswith(".kml")),
                          key=lambda i: (i.filename.lower() != "doc.kml", i.filename))
            if not kmls:
                raise ctx.error(CorruptSource, "KMZ without a .kml member")
            info = kmls[0]
            if ".." in info.filename.replace("\\", "/").split("/") or info.filename.startswith("/"):
                raise ctx.error(UnsafeArchive, f"unsafe member path {info.filename!r}")
            if info.file_size > min(lim.max_member_bytes, 1 << 30) or \
                    info.file_size / max(info.compress_size, 1) > lim.max_ratio:
                raise ctx.error(UnsafeArchive, f"member {info.filename!r} exceeds the size or "
                                "compression-ratio limit (zip bomb?)")
            with zf.open(info) as fh:
                data = fh.read(info.file_size + 1)
            if len(data) > info.file_size:
                raise ctx.error(UnsafeArchive, f"member {info.filename!r} is larger than declared")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            UnicodeDecodeError, OSError) as exc:
        raise ctx.error(CorruptSource, f"damaged KMZ (zip): {type(exc).__name__}: {exc}") from exc
    return _read(io.BytesIO(data), ctx)
