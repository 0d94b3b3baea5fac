"""GPX 1.0 and 1.1 (and namespace-less GPX): track points, route points, waypoints.

Streamed with :func:`lxml.etree.iterparse` hardened as the TCX loader's parser
(:mod:`.xmlsafe`: no entity resolution, no network, no DTD loading; a document with a DTD is
refused outright). Each point is read into column arrays and freed at once, so the tree
never holds more than one point; times and numbers are then converted in one vectorised
pass (the rare value the fast path cannot read is looked at on its own, with the reason).
Track and route points become fixes; waypoints become places (``kind="waypoint"``) with
their time when they have one.

What is read, as gpxpy 1.6 reads it (the loader's reference until #21): elements in the
root's namespace or none; ``trk`` / ``rte`` / ``wpt`` directly under the root, ``trkseg``
directly under ``trk``, points directly under their segment or route; a point's first
``ele``, ``time``, ``name``, ``src``, ``sat``, ``hdop`` child (``speed`` and ``course`` for
GPX 1.0 track points; the track's or route's ``type`` for GPX 1.1); a file without
``version="1.1"`` is read as GPX 1.0. Other elements are not location evidence and are
not read.

Quirks handled (see ``../shared/realdata/SOURCES.md``): UTF-8 BOM; ``<time>`` with ``Z`` or
an offset and 0-7 fraction digits (kept to the microsecond); points without ``<time>``
(rejected: a fix needs a time, none is invented); bogus times such as 1901-12-13 (32-bit
``time_t`` minimum, rejected as implausible); empty ``<trkseg/>``; GPSLogger ``<src>``
(network/gps) kept as ``fix_kind``; a naive ``<time>`` (no ``Z``, no offset) needs ``tz``,
else it is rejected; a point whose ``lat``/``lon`` are missing, unreadable, not finite or
outside WGS84 degrees (projected metres such as ``lat="5651234.5"``, written by converters
that ignore the CRS), or whose ``ele``/``speed``/``course``/``sat``/``hdop`` is unreadable
or not finite, is a reject naming it, and the rest of the file is kept.

Record locators: ``trk[i]/seg[j]/pt[k]``, ``rte[i]/pt[k]``, ``wpt[i]`` (0-based).

Streamed into a case (``routetrace ingest``: a sink takes the rows), the points are given
in parts of ``PART_ROWS`` as they are read, so memory holds one part, not the file; the
rows are the same. One difference, in files that break GPX 1.1's element order: a track's
``<type>`` written after its segments (the schema puts it before them) reaches only the
points read after it in a part already given.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from .. import timebase
from ..errors import CorruptSource
from . import xmlsafe
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["load_gpx", "sniff_gpx"]

#: points read between two conversions of the collected text into Arrow arrays
_CHUNK = 65_536
_TAGS = ["{*}trkpt", "{*}trkseg", "{*}trk", "{*}rtept", "{*}rte", "{*}wpt"]
#: point children read, per kind of point and GPX version (as gpxpy's field lists)
_FIELDS_10_TRK = ("ele", "time", "name", "src", "sat", "hdop", "speed", "course")
_FIELDS_OTHER = ("ele", "time", "name", "src", "sat", "hdop")
_FLOATS = ("ele", "hdop", "speed", "course")
_DECIMAL = r"^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?$"
_INTEGER = r"^-?\d{1,18}$"
#: the times the vectorised path reads; anything else goes to :func:`_parse_time`
_STRICT_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)?$"
#: gpxpy 1.6 ``gpxfield.RE_TIMESTAMP`` verbatim (its offset class is a range ``+``..``−``)
_GPXPY_TIME = re.compile(
    r'^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})[T ]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})'
    r'(\.[0-9]{1,15})?(Z|[+-−][0-9]{2}:?(?:[0-9]{2})?)?$')
_NO_TIME = "point has no <time>: a fix needs a time and none is invented"
_KINDS = ("gps", "network", "wifi", "cell")
_NAIVE_NO_TZ = "<time> has no UTC offset and no --tz was given (ambiguous local time)"


def sniff_gpx(path: Path, head: bytes) -> bool:
    """A GPX file has a ``<gpx`` root element near the start (any encoding prefix).

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether a ``<gpx`` root element opens the document.

    Example
    -------
    >>> sniff_gpx(Path("t.gpx"), b'<?xml version="1.0"?>\\n<gpx version="1.1" creator="x">')
    True
    >>> sniff_gpx(Path("t.kml"), b'<kml xmlns="http://www.opengis.net/kml/2.2">')
    False
    """
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()[:4096].lower()
    return text.startswith(b"<") and b"<gpx" in text


# ---------------------------------------------------------------- one value, on its own


def _parse_time(text: str) -> dt.datetime | None:
    """A ``<time>`` read as gpxpy 1.6 reads it (``gpxfield.parse_time``): None when unreadable."""
    m = _GPXPY_TIME.match(text)
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or ".")[1:7]
    off = m.group(8)
    tzinfo = None
    if off:
        minutes = 0
        if len(off) >= 2:
            sign = -1 if off[0] in "-−" else 1
            s = off[1:] if off[0] in "+-−" else off
            hour = int(s[:2]) if s[:2].isdigit() else 0
            minute = (int(s[-2:]) if s[-2:].isdigit() else 0) if len(s) >= 4 else 0
            minutes = sign * (hour * 60 + minute)
        tzinfo = dt.timezone(dt.timedelta(minutes=minutes))
    try:
        return dt.datetime(y, mo, d, h, mi, sec, int(frac.ljust(6, "0")) if frac else 0,
                           tzinfo=tzinfo)
    except (ValueError, OverflowError):
        return None


def _time(text: str | None, tz: str | None) -> tuple[pd.Timestamp | None, str | None]:
    """One ``<time>`` text: (UTC time, None) or (None, reason)."""
    if not text:
        return None, _NO_TIME
    t = _parse_time(text)
    if t is None:
        return None, f"unreadable <time> {text[:40]!r} (not an ISO-8601 date and time)"
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        if tz is None:
            return None, _NAIVE_NO_TZ
        day = pd.Timedelta("1D")  # no zone is more than a day off UTC
        if not (timebase.PLAUSIBLE[0].tz_localize(None) - day <= ts
                <= timebase.PLAUSIBLE[1].tz_localize(None) + day):
            return None, f"implausible time {ts.isoformat()} (local; outside 1980-2100)"
        local = timebase.localize(pd.Series([ts]), tz=tz).iloc[0]
        if pd.isna(local):
            return None, f"local time {ts} does not exist or is ambiguous in {tz}"
        ts = local
    ts = ts.tz_convert("UTC")
    if not (timebase.PLAUSIBLE[0] <= ts <= timebase.PLAUSIBLE[1]):
        return None, f"implausible time {ts.isoformat()} (outside 1980-2100)"
    return ts, None


def _number(text: str, name: str, *, integer: bool = False) -> float | int | str | None:
    """One number as gpxpy reads it (``float``/``int`` of the stripped text): the value,
    None when blank, or the reason it is unusable (a ``str``)."""
    s = text.strip()
    if not s:
        return None
    try:
        value: float | int = int(s) if integer else float(s)
    except ValueError:
        return f"unreadable <{name}> {text[:40]!r}"
    if not math.isfinite(value):
        return f"<{name}> {text[:40]!r} is not a finite number"
    return value


def _position_problem(lat_text: str | None, lon_text: str | None) -> str | None:
    """Why a point's ``lat``/``lon`` attributes are not WGS84 degrees, or None when they are."""
    if lat_text is None or lon_text is None:
        return "point without a lat or lon attribute"
    try:
        lat, lon = float(lat_text.strip()), float(lon_text.strip())
    except ValueError:
        return f"unreadable position lat={lat_text[:40]!r}, lon={lon_text[:40]!r}"
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return f"position {lat}, {lon} is not a number"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return (f"position lat={lat}, lon={lon} is outside WGS84 degrees "
                "(projected metres or another CRS?): not a point on Earth as GPX states it")
    return None


# ---------------------------------------------------------------- the stream


@dataclass
class _Points:
    """One kind of point (track or route): the text of the current chunk as read, and the
    chunks already converted.

    ``lat``/``lon`` are dense; each child field is sparse (ordinal of the point, text). Every
    ``_CHUNK`` points the text is converted (:func:`_convert`) and dropped, so memory holds
    the numbers of the points read so far plus the text of one chunk, not of the file.
    When a sink takes the rows (streaming), the converted chunks are given as a part every
    ``ctx.part_rows`` points and dropped (:func:`_emit`): ``emitted`` points are gone,
    ``held`` are converted and kept.
    """

    fields: tuple[str, ...]
    tz: str | None = None
    by_tag: dict[str, str] = field(default_factory=dict)  # child tag -> field name
    n: int = 0
    emitted: int = 0
    chunk: int = _CHUNK  # points read between conversions (fewer when parts are smaller)
    lat: list[str | None] = field(default_factory=list)
    lon: list[str | None] = field(default_factory=list)
    idx: dict[str, list[int]] = field(default_factory=dict)
    txt: dict[str, list[str | None]] = field(default_factory=dict)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    groups: list[tuple[int, int, int]] = field(default_factory=list)  # (i, j, first ordinal)
    kinds: dict[int, str | None] = field(default_factory=dict)  # i -> the trk/rte <type>

    def __post_init__(self) -> None:
        for f in self.fields:
            self.idx[f], self.txt[f] = [], []

    def add(self, el: Any) -> None:
        """Read one point element: its ``lat``/``lon`` and the children named in ``by_tag``."""
        n = self.n
        self.lat.append(el.get("lat"))
        self.lon.append(el.get("lon"))
        by_tag, idx, txt = self.by_tag, self.idx, self.txt
        for child in el:
            name = by_tag.get(child.tag)
            if name is not None:
                idx[name].append(n)
                txt[name].append(child.text)
        self.n = n + 1
        if len(self.lat) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Convert the chunk read since the last flush, then drop its text."""
        m = len(self.lat)
        if not m:
            return
        start = self.n - m
        cols = {"lat": pa.array(self.lat, pa.string()), "lon": pa.array(self.lon, pa.string())}
        for f in self.fields:
            idx = np.asarray(self.idx[f], dtype=np.int64) - start
            where, first = np.unique(idx, return_index=True)  # gpxpy reads a point's first child
            pos = np.full(m, -1, dtype=np.int64)
            pos[where] = first
            cols[f] = pa.array(self.txt[f], pa.string()).take(pa.array(pos, mask=pos < 0))
            self.idx[f], self.txt[f] = [], []
        self.lat, self.lon = [], []
        self.chunks.append(_convert(cols, m, self.tz))

    @property
    def held(self) -> int:
        """Points converted and not given in a part yet."""
        return self.n - len(self.lat) - self.emitted

    def column(self, name: str, *, fixes_only: bool = False) -> Any:
        """One converted column over all chunks (numpy, pandas or Arrow as converted); with
        ``fixes_only`` only the points without a reason (filtered chunk by chunk)."""
        parts = [c[name] for c in self.chunks]
        if fixes_only:
            oks = [c["ok"] for c in self.chunks]
            parts = [p.filter(pa.array(ok)) if isinstance(p, pa.Array) else p[ok]
                     for p, ok in zip(parts, oks, strict=True)]
        if isinstance(parts[0], pa.Array):
            return pa.concat_arrays(parts)
        if isinstance(parts[0], pd.Series):
            return pd.concat(parts, ignore_index=True)
        return np.concatenate(parts)


@dataclass
class _Walk:
    """Where the stream is (the locator indices) and what it has read."""

    root: Any = None
    version11: bool = False
    prefixes: tuple[str, ...] = ("",)
    names: frozenset[str] = frozenset()
    trkpt_tags: frozenset[str] = frozenset()
    trk: _Points = field(default_factory=lambda: _Points(_FIELDS_10_TRK))
    rte: _Points = field(default_factory=lambda: _Points(_FIELDS_OTHER))
    wpts: list[dict[str, str | None]] = field(default_factory=list)
    n_trk: int = 0
    n_seg: int = 0
    n_rte: int = 0
    cur_trk: Any = None
    cur_seg: Any = None
    cur_rte: Any = None

    def start(self, root: Any, ctx: LoadContext) -> None:
        """The root is known: check it, learn the version and the namespace that counts."""
        self.root = root
        self.trk.tz = self.rte.tz = ctx.tz
        if root.getroottree().docinfo.doctype:
            raise ctx.error(CorruptSource, _DTD_REFUSED)
        tag = root.tag if isinstance(root.tag, str) else ""
        ns, _, local = tag.rpartition("}")
        if local != "gpx":
            raise ctx.error(CorruptSource, f"not a GPX document: the root element is <{local}>, "
                            "not <gpx>")
        self.version11 = root.get("version") == "1.1"
        self.prefixes = ("", ns + "}") if ns else ("",)
        self.names = frozenset(p + t for p in self.prefixes
                               for t in ("trkpt", "trkseg", "trk", "rtept", "rte", "wpt"))
        self.trkpt_tags = frozenset(p + "trkpt" for p in self.prefixes)
        if self.version11:
            self.trk = _Points(_FIELDS_OTHER, tz=ctx.tz)
        for pts in (self.trk, self.rte):
            pts.by_tag = {p + f: f for p in self.prefixes for f in pts.fields}

    def is_(self, el: Any, local: str) -> bool:
        """Whether ``el`` is the GPX element ``local`` (in the namespace that counts)."""
        return el is not None and el.tag in self.names and el.tag.rpartition("}")[2] == local

    def child_text(self, el: Any, local: str) -> str | None:
        """The text of ``el``'s first child ``local`` (None when absent or empty)."""
        tags = {p + local for p in self.prefixes}
        for c in el:
            if c.tag in tags:
                return c.text  # type: ignore[no-any-return,unused-ignore]
        return None


_DTD_REFUSED = ("refused XML construct (DOCTYPE): DTDs and entities are not allowed in "
                "evidence GPX (entity expansion or external entity attack)")


def _free(el: Any) -> None:
    """Clear a finished element and the finished siblings before it."""
    el.clear(keep_tail=True)
    parent = el.getparent()
    while parent is not None and el.getprevious() is not None:
        del parent[0]


def _enter_trk(trk: Any, w: _Walk) -> None:
    w.cur_trk, w.n_trk, w.n_seg = trk, w.n_trk + 1, 0


def _seg_ok(seg: Any, w: _Walk) -> bool:
    """Whether ``seg`` is a trkseg where gpxpy reads points: in a trk directly under the root."""
    trk = seg.getparent()
    return w.is_(seg, "trkseg") and w.is_(trk, "trk") and trk.getparent() is w.root


def _enter_seg(seg: Any, w: _Walk) -> None:
    """A trkseg seen for the first time (at its first point or at its end): count it."""
    w.cur_seg = seg
    trk = seg.getparent()
    if trk is not w.cur_trk:
        _enter_trk(trk, w)
    w.n_seg += 1
    w.trk.groups.append((w.n_trk - 1, w.n_seg - 1, w.trk.n))


def _enter_rte(rte: Any, w: _Walk) -> None:
    w.cur_rte = rte
    w.n_rte += 1
    w.rte.groups.append((w.n_rte - 1, 0, w.rte.n))
    # read now: freeing each route point frees what precedes it, the route's <type> too
    w.rte.kinds[w.n_rte - 1] = w.child_text(rte, "type") if w.version11 else None


def _on_trkpt(el: Any, w: _Walk) -> None:
    seg = el.getparent()
    if seg is not w.cur_seg:
        if not _seg_ok(seg, w):
            return  # nested elsewhere (e.g. in <extensions>): not a record, as for gpxpy
        _enter_seg(seg, w)
    w.trk.add(el)
    _free(el)


def _on_end(el: Any, w: _Walk) -> None:
    """Every other element of interest: route points, segments, tracks, routes, waypoints."""
    if el.tag not in w.names:
        return  # same name in another namespace: not GPX, not read, not freed
    local = el.tag.rpartition("}")[2]
    parent = el.getparent()
    at_root = parent is w.root
    if local == "rtept":
        if parent is not w.cur_rte:
            if not (w.is_(parent, "rte") and parent.getparent() is w.root):
                return  # nested elsewhere: not a record
            _enter_rte(parent, w)
        w.rte.add(el)
    elif local == "trkseg":
        if el is not w.cur_seg and _seg_ok(el, w):
            _enter_seg(el, w)  # an empty segment still counts in the locators
        el.clear(keep_tail=True)  # its shell stays: the track's own children are read at its end
        return
    elif local == "trk" and at_root:
        if el is not w.cur_trk:
            _enter_trk(el, w)
        w.trk.kinds[w.n_trk - 1] = w.child_text(el, "type") if w.version11 else None
    elif local == "rte" and at_root:
        if el is not w.cur_rte:
            _enter_rte(el, w)
        if w.version11 and w.rte.kinds.get(w.n_rte - 1) is None:  # a <type> after the points
            w.rte.kinds[w.n_rte - 1] = w.child_text(el, "type")
    elif local == "wpt" and at_root:
        w.wpts.append({"lat": el.get("lat"), "lon": el.get("lon"),
                       **{k: w.child_text(el, k) for k in ("time", "name", "desc", "cmt", "type", "sym")}})
    else:
        return  # nested elsewhere: not read, not freed
    _free(el)


def _stream(path: Path, ctx: LoadContext) -> _Walk:
    """Walk the document once, reading every point; malformed XML is one clear error."""
    w = _Walk()
    with open(path, "rb") as fh:
        if xmlsafe.declares_dtd(fh.read(65536)):
            raise ctx.error(CorruptSource, _DTD_REFUSED)
        fh.seek(0)
        it = xmlsafe.iterparse(fh, events=("end",), tag=_TAGS)
        try:
            limit = ctx.part_rows if ctx.streaming else None
            for _, el in it:
                if w.root is None:
                    w.start(el.getroottree().getroot(), ctx)
                    if limit is not None:
                        w.trk.chunk = w.rte.chunk = min(_CHUNK, limit)
                if el.tag in w.trkpt_tags:
                    _on_trkpt(el, w)
                    if limit is not None and w.trk.held >= limit:
                        _emit(w, "trk", ctx)
                else:
                    _on_end(el, w)
                    if limit is not None and w.rte.held >= limit:
                        _emit(w, "rte", ctx)
            if w.root is None:
                w.start(it.root, ctx)  # type: ignore[attr-defined]
        except etree.XMLSyntaxError as exc:
            raise ctx.error(CorruptSource, f"malformed XML: {exc}") from exc
    return w


def _emit(w: _Walk, kind: str, ctx: LoadContext) -> None:
    """Give the converted points of ``kind`` held so far to the sink as one part, and drop
    them. A track still open gives the ``<type>`` read so far (GPX 1.1 puts it before the
    segments; a ``<type>`` after them reaches only the points read after it)."""
    pts = w.trk if kind == "trk" else w.rte
    open_kind = None
    if kind == "trk" and w.version11 and w.cur_trk is not None and (w.n_trk - 1) not in pts.kinds:
        open_kind = (w.n_trk - 1, w.child_text(w.cur_trk, "type"))
    m = pts.n - pts.emitted
    fixes, rejects = _fixes(pts, kind, open_kind=open_kind)
    ctx.emit(records_read=m, fixes=fixes, rejects=rejects if len(rejects) else None)
    pts.emitted, pts.chunks = pts.n, []


# ---------------------------------------------------------------- vectorised conversion


def _np(arr: pa.Array) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def _matches(texts: pa.Array, pattern: str) -> np.ndarray:
    return _np(pc.fill_null(pc.match_substring_regex(texts, pattern), False)).astype(bool)


def _note(reasons: np.ndarray, i: int, why: str) -> None:
    """Keep the first reason a point has (position, then numbers, then time)."""
    if reasons[i] is None:
        reasons[i] = why


def _floats(texts: pa.Array, name: str, reasons: np.ndarray) -> np.ndarray:
    """One numeric child: values (NaN where absent); an unusable value is the point's reason."""
    plain = _matches(texts, _DECIMAL)
    values = _np(pc.cast(pc.if_else(pa.array(plain), texts, pa.scalar(None, pa.string())),
                         pa.float64())).astype(np.float64)
    for i in np.flatnonzero(_np(pc.is_valid(texts)).astype(bool) & ~plain):
        v = _number(str(texts[i].as_py()), name)
        if isinstance(v, str):
            _note(reasons, int(i), v)
        elif v is not None:
            values[i] = v
    for i in np.flatnonzero(plain & ~np.isfinite(values)):  # 1e999
        _note(reasons, int(i), f"<{name}> {texts[i].as_py()[:40]!r} is not a finite number")
    return values


def _ints(texts: pa.Array, name: str, reasons: np.ndarray) -> pd.Series:
    """One integer child (``sat``) as ``Int64``; an unusable value is the point's reason."""
    plain = _matches(texts, _INTEGER)
    values = pd.Series(pc.cast(pc.if_else(pa.array(plain), texts, pa.scalar(None, pa.string())),
                               pa.int64()).to_pandas(), dtype="Int64")
    for i in np.flatnonzero(_np(pc.is_valid(texts)).astype(bool) & ~plain):
        v = _number(str(texts[i].as_py()), name, integer=True)
        if isinstance(v, str):
            _note(reasons, int(i), v)
        elif v is not None:
            values.iloc[i] = v
    return values


def _positions(lat_t: pa.Array, lon_t: pa.Array, reasons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``lat``/``lon`` in degrees; a point without a usable position gets the reason."""
    plain = _matches(lat_t, _DECIMAL) & _matches(lon_t, _DECIMAL)
    none = pa.scalar(None, pa.string())
    mask = pa.array(plain)
    lat = _np(pc.cast(pc.if_else(mask, lat_t, none), pa.float64())).astype(np.float64)
    lon = _np(pc.cast(pc.if_else(mask, lon_t, none), pa.float64())).astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = plain & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    for i in np.flatnonzero(~ok):
        la, lo = lat_t[i].as_py(), lon_t[i].as_py()
        why = _position_problem(la, lo)
        if why is None:  # read by Python's float, not by the fast path (" 51.0", "+3.8")
            lat[i], lon[i] = float(str(la).strip()), float(str(lo).strip())
        else:
            _note(reasons, int(i), why)
    return lat, lon


def _times(texts: pa.Array, tz: str | None, reasons: np.ndarray) -> np.ndarray:
    """UTC times (int64 ns; NaT where unusable, with the point's reason), to the microsecond."""
    n = len(texts)
    ns = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)  # NaT
    strict = _matches(texts, _STRICT_TIME)
    aware = strict & _matches(texts, r"(?:Z|[+-]\d\d:\d\d)$")
    if aware.any():
        ns[aware] = _cast_times(texts.filter(pa.array(aware)), utc=True)
    naive = strict & ~aware
    if naive.any() and tz is None:  # a whole file of local times without --tz: no slow path
        for i in np.flatnonzero(naive):
            _note(reasons, int(i), _NAIVE_NO_TZ)
    elif naive.any() and tz is not None:
        local = _cast_times(texts.filter(pa.array(naive)), utc=False)
        utc = timebase.localize(pd.Series(local.view("datetime64[ns]")), tz=tz)
        ns[naive] = utc.array.as_unit("ns").asi8
    nat = ns == np.iinfo(np.int64).min
    ns[~nat] -= ns[~nat] % 1000  # gpxpy keeps 6 fraction digits (truncated)
    lo, hi = (int(t.value) for t in timebase.PLAUSIBLE)
    implausible = ~nat & ((ns < lo) | (ns > hi))
    for i in np.flatnonzero(implausible):
        t = pd.Timestamp(int(ns[i]), tz="UTC")
        _note(reasons, int(i), f"implausible time {t.isoformat()} (outside 1980-2100)")
    if tz is None:
        nat &= ~naive
    for i in np.flatnonzero(nat):  # what the fast path did not read: as gpxpy, one by one
        t, why = _time(texts[i].as_py(), tz)
        if t is None:
            _note(reasons, int(i), str(why))
        else:
            ns[i] = t.as_unit("ns").value
    ns[implausible] = np.iinfo(np.int64).min
    return ns


def _cast_times(texts: pa.Array, *, utc: bool) -> np.ndarray:
    """ISO-8601 texts to int64 ns (NaT where a date does not exist, e.g. 30 February)."""
    try:
        arr = pc.cast(texts, pa.timestamp("ns", tz="UTC" if utc else None))
        return _np(arr.cast(pa.int64())).astype(np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = pd.to_datetime(pd.Series(texts.to_pylist(), dtype=object), utc=utc,
                                format="ISO8601", errors="coerce")
        if utc:  # out of the nanosecond range: NaT (rejected as implausible), never wrapped
            return np.asarray(timebase.as_ns_utc(parsed).array.asi8)
        lo, hi = pd.Timestamp.min, pd.Timestamp.max
        parsed = parsed.where(parsed.notna() & (parsed >= lo) & (parsed <= hi))
        return np.asarray(parsed.array.as_unit("ns").asi8)  # naive: local; NaT: int64 min


def _convert(cols: dict[str, pa.Array], m: int, tz: str | None) -> dict[str, Any]:
    """Convert one chunk's text columns: numbers, times, and each point's reason (None for a
    fix): position first, then the numbers, then the time."""
    reasons = np.full(m, None, dtype=object)
    lat, lon = _positions(cols["lat"], cols["lon"], reasons)
    out: dict[str, Any] = {"lat": lat, "lon": lon}
    for f in _FLOATS:
        out[f] = _floats(cols[f], f, reasons) if f in cols else np.full(m, np.nan)
    out["sat"] = _ints(cols["sat"], "sat", reasons)
    out["t_ns"] = _times(cols["time"], tz, reasons)
    out["name"], out["src"], out["reasons"] = cols["name"], cols["src"], reasons
    out["ok"] = np.asarray(pd.isna(reasons), dtype=bool)  # no reason: a fix
    return out


def _json_objects(columns: dict[str, Any]) -> pa.Array:
    """``compact_json`` of each row of ``columns`` (sorted keys, NA dropped), vectorised:
    each distinct value is serialised once. Columns are Arrow string arrays or numpy/pandas
    arrays."""
    frags = []
    for key in sorted(columns):
        col = columns[key]
        if isinstance(col, pa.Array):
            enc = col.dictionary_encode()
            codes = _np(pc.fill_null(enc.indices, -1)).astype(np.int64)
            uniques: list[Any] = enc.dictionary.to_pylist()
        else:
            codes, uniq = pd.factorize(col, use_na_sentinel=True)
            uniques = [int(v) if isinstance(v, np.integer) else v for v in uniq.tolist()]
        texts = [f',"{key}":' + json.dumps(u, ensure_ascii=False, default=str) for u in uniques]
        codes = np.where(codes < 0, len(texts), codes)
        frags.append(pa.array([*texts, ""], pa.string()).take(pa.array(codes)))
    body = pc.binary_join_element_wise(*frags, "") if len(frags) > 1 else frags[0]
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(body, 1), "}", "")


def _locate(pts: _Points, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, k) of the points at ordinals ``rows``: their trk/rte, segment, place in it."""
    starts = np.array([g[2] for g in pts.groups], dtype=np.int64)
    group = np.searchsorted(starts, rows, side="right") - 1
    i = np.array([g[0] for g in pts.groups], dtype=np.int64)[group]
    j = np.array([g[1] for g in pts.groups], dtype=np.int64)[group]
    return i, j, rows - starts[group]


def _records(pts: _Points, kind: str, rows: np.ndarray) -> pa.Array:
    """The locators ``trk[i]/seg[j]/pt[k]`` / ``rte[i]/pt[k]`` of ``rows``, built in Arrow."""
    i, j, k = _locate(pts, rows)

    def s(a: np.ndarray) -> pa.Array:
        return pc.cast(pa.array(a), pa.string())

    if kind == "trk":
        return pc.binary_join_element_wise("trk[", s(i), "]/seg[", s(j), "]/pt[", s(k), "]", "")
    return pc.binary_join_element_wise("rte[", s(i), "]/pt[", s(k), "]", "")


def _strings(arr: pa.Array) -> pd.Series:
    return pd.Series(pd.StringDtype("pyarrow").__from_arrow__(arr))


def _fixes(pts: _Points, kind: str, *, open_kind: tuple[int, str | None] | None = None,
           ) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The points held (not given in a part yet) of a kind, track or route: (fixes,
    rejects), both in document order. ``open_kind``: (track, its ``<type>`` so far) for a
    track whose end is not read yet."""
    pts.flush()
    if pts.held == 0:
        return None, pd.DataFrame({"record": [], "reason": []})
    ok = pts.column("ok")
    bad = np.flatnonzero(~ok)
    rejects = pd.DataFrame({"record": _records(pts, kind, bad + pts.emitted).to_pylist(),
                            "reason": pts.column("reasons")[bad].tolist()})
    if not ok.any():
        return None, rejects
    rows = np.flatnonzero(ok) + pts.emitted  # ordinals in the file
    del ok, bad
    src = pts.column("src", fixes_only=True)
    trk_of = _locate(pts, rows)[0]
    known = dict(pts.kinds) if open_kind is None else {**pts.kinds, open_kind[0]: open_kind[1]}
    kinds = np.array([known.get(i) for i in range(int(trk_of.max()) + 1)], dtype=object)[trk_of]
    fix_kind = pc.if_else(pc.is_null(src), "gps",
                          pc.if_else(pc.is_in(src, value_set=pa.array(_KINDS)), src, "unknown"))
    extra = _json_objects({"name": pts.column("name", fixes_only=True), "src": src,
                           "sat": pts.column("sat", fixes_only=True),
                           "hdop": pts.column("hdop", fixes_only=True), "type": kinds})
    del src, kinds, trk_of
    t_ns = pts.column("t_ns", fixes_only=True)
    fixes = pd.DataFrame({
        "record": _strings(_records(pts, kind, rows)),
        "t_utc": pd.Series(t_ns.view("datetime64[ns]")).dt.tz_localize("UTC"),
        "lat": pts.column("lat", fixes_only=True), "lon": pts.column("lon", fixes_only=True),
        "alt_m": pts.column("ele", fixes_only=True),
        "speed_mps": pts.column("speed", fixes_only=True),
        "course_deg": pts.column("course", fixes_only=True),
        "fix_kind": _strings(fix_kind), "extra": _strings(extra),
    })
    return fixes, rejects


def _places(wpts: list[dict[str, str | None]], tz: str | None) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Waypoints: places (with their time when usable) or rejects, one by one."""
    places: list[dict[str, Any]] = []
    rejects: list[tuple[str, str]] = []
    for i, w in enumerate(wpts):
        rec = f"wpt[{i}]"
        bad_pos = _position_problem(w["lat"], w["lon"])
        if bad_pos is not None:
            rejects.append((rec, bad_pos))
            continue
        t, why = _time(w["time"], tz) if w["time"] else (None, None)
        if why is not None and "offset" in why:
            rejects.append((rec, why))
            continue
        places.append({
            "record": rec, "kind": "waypoint", "name": w["name"],
            "text": w["desc"] or w["cmt"], "lat": float(str(w["lat"]).strip()),
            "lon": float(str(w["lon"]).strip()),
            "t_start": t, "t_end": t, "t_precision": "instant" if t is not None else "none",
            "extra": compact_json({"type": w["type"], "sym": w["sym"], "time_rejected": why}),
        })
    return places, rejects


@register(LoaderSpec(
    name="gpx",
    description="GPX 1.0/1.1 tracks and routes (fixes) and waypoints (places), streamed",
    sniff=sniff_gpx,
    produces=("fixes", "places"),
))
def load_gpx(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a GPX file (see the module doc). ``ctx.tz`` is used only for times without offset.

    Every track point, route point and waypoint is a record: a fix (timed track point), a
    place (waypoint, route point) or a reject with its reason.

    Parameters
    ----------
    path
        The GPX file (only read, streamed).
    ctx
        The load context (source identity, subject, ``tz``) built by
        :func:`routetrace.loaders.load`.

    Returns
    -------
    LoadResult
        ``fixes`` (``record`` = ``trk[i]/seg[j]/pt[k]``), ``places`` and ``rejects``;
        records read = produced + rejected.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> from routetrace.testing import example_gpx
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = load(example_gpx(Path(tmp) / "track.gpx", [51.0, 51.001]))
    >>> res.fixes[["t_utc", "lat", "record"]]
                          t_utc     lat               record
    0 2025-10-26 21:00:00+00:00  51.000  trk[0]/seg[0]/pt[0]
    1 2025-10-26 21:01:00+00:00  51.001  trk[0]/seg[0]/pt[1]
    >>> res.records_read, len(res.rejects)
    (2, 0)
    """
    w = _stream(path, ctx)
    trk_fixes, trk_rej = _fixes(w.trk, "trk")
    rte_fixes, rte_rej = _fixes(w.rte, "rte")
    places, wpt_rej = _places(w.wpts, ctx.tz)
    n = w.trk.n + w.rte.n + len(w.wpts)
    del w  # the converted chunks: freed before the canonical tables are built
    parts = [f for f in (trk_fixes, rte_fixes) if f is not None]
    fixes = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts[0] if parts else None)
    rejects = pd.concat([trk_rej, rte_rej, pd.DataFrame(wpt_rej, columns=["record", "reason"])],
                        ignore_index=True)
    basis = "GPX <time>: ISO-8601 with Z or offset, converted to UTC"
    if ctx.tz:
        basis += f"; times without offset read as {ctx.tz} (user-stated)"
    return ctx.finish(
        records_read=n, time_basis=basis, fixes=fixes,
        places=pd.DataFrame(places) if places else None,
        rejects=rejects if len(rejects) else None,
    )
