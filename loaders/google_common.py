"""Helpers shared by the Google location loaders (Takeout, Semantic, on-device Timeline).

Coordinates come in four spellings: integer ``latitudeE7``/``longitudeE7`` (or
``latE7``/``lngE7``; degrees x 1e7), degree-sign strings ``'-27.4127738°, 163.5638958°'``
(Android on-device export), ``geo:lat,lng`` URIs (iOS export) and numbers as strings
(``'0.950000'``, iOS). Times are ISO-8601 with ``Z`` or an offset, or Unix milliseconds as
a string (``timestampMs``, pre-2019 Takeout).

Every JSON loader reads within two limits (:data:`MAX_DEPTH` nesting levels,
:data:`MAX_STRING_BYTES` per string), checked first by a streamed scan (:class:`JsonShape`):
a record (an element of the file's record array) beyond them is a reject naming it, with
its JSON text's length, SHA-256 and first characters; the parser sees ``null`` in its
place. An excess outside any record makes the file unreadable (a file error).

Old Takeout exports contain E7 values that overflowed a signed 32-bit integer (a latitude
``> 900000000``, a longitude ``> 1800000000``): the documented repair, used by every
parser of these files, is to subtract 2**32; such rows get ``{"e7_wrapped": true}`` in
``extra``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pandas as pd

from .. import timebase

__all__ = [
    "MAX_DEPTH",
    "MAX_STRING_BYTES",
    "JsonShape",
    "NulledStream",
    "Oversize",
    "device_subject",
    "e7_pair",
    "fix_kind",
    "latlng",
    "number",
    "parse_time",
    "sniff_json_keys",
]

_WRAP = 2**32

#: Google location ``source`` -> canonical ``fix_kind``.
FIX_KIND: dict[str, str] = {
    "GPS": "gps", "WIFI": "wifi", "CELL": "cell", "UNKNOWN": "unknown",
    "VISIT": "visit", "FUSED": "fused", "NETWORK": "network",
}

_DEG = re.compile(r"^\s*(?:geo:)?\s*([-+]?\d+(?:\.\d+)?)\s*°?\s*[,;]\s*([-+]?\d+(?:\.\d+)?)\s*°?\s*$")
_ISO_ZONE = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


def sniff_json_keys(head: bytes, first_key: str) -> bool:
    """True when ``head`` is a JSON object whose first key is ``first_key`` (BOM tolerated).

    Parameters
    ----------
    head
        The first bytes of the file.
    first_key
        The key the object must open with (e.g. ``"locations"``).

    Returns
    -------
    bool
        Whether ``head`` starts (after a UTF-8 BOM and white space) with ``{"first_key":``.

    Example
    -------
    >>> sniff_json_keys(b'\\xef\\xbb\\xbf{ "locations": [', "locations")
    True
    >>> sniff_json_keys(b'{"timelineObjects": [', "locations")
    False
    """
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return re.match(rb'\{\s*"' + re.escape(first_key.encode()) + rb'"\s*:', text) is not None


def fix_kind(source: object) -> str:
    """Canonical fix kind for a Google ``source`` string (``unknown`` when absent).

    Parameters
    ----------
    source
        The record's ``source`` value (``"GPS"``, ``"WIFI"``, ...; any letter case).

    Returns
    -------
    str
        The ``fix_kind`` from :data:`FIX_KIND`; ``"unknown"`` for anything else.

    Example
    -------
    >>> fix_kind("wifi"), fix_kind("GPS"), fix_kind(None), fix_kind("BEACON")
    ('wifi', 'gps', 'unknown', 'unknown')
    """
    if isinstance(source, str):
        return FIX_KIND.get(source.upper(), "unknown")
    return "unknown"


def number(value: object) -> float | None:
    """A finite float from a JSON number or a numeric string; ``None`` otherwise.

    Parameters
    ----------
    value
        A JSON value. Booleans, ``NaN``/infinity and integers beyond any float are not
        numbers.

    Returns
    -------
    float or None
        The value as a float, ``None`` when it is not a finite number.

    Example
    -------
    >>> number(" 0.950000"), number(12), number(True), number("nan"), number("x")
    (0.95, 12.0, None, None, None)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            f = float(value)
        except OverflowError:  # an integer beyond any float (JSON integers are unbounded)
            return None
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def e7_pair(lat_e7: object, lon_e7: object) -> tuple[float, float, bool] | str:
    """Degrees from E7 integers: ``(lat, lon, wrapped)`` or a reason string.

    Parameters
    ----------
    lat_e7, lon_e7
        Latitude and longitude in degrees x 1e7 (numbers or numeric strings). A value
        that overflowed a signed 32-bit integer is repaired by subtracting 2**32.

    Returns
    -------
    tuple of (float, float, bool) or str
        ``(lat, lon, wrapped)`` in WGS84 degrees, ``wrapped`` True when the repair was
        applied; otherwise the reason the record is rejected.

    Example
    -------
    >>> e7_pair(510000000, 38700000)
    (51.0, 3.87, False)
    >>> e7_pair(4294967296 - 338000000, 1510000000)
    (-33.8, 151.0, True)
    >>> e7_pair(None, 1)
    'no numeric latitudeE7/longitudeE7'
    """
    la, lo = number(lat_e7), number(lon_e7)
    if la is None or lo is None:
        return "no numeric latitudeE7/longitudeE7"
    wrapped = False
    if la > 900_000_000:
        la, wrapped = la - _WRAP, True
    if lo > 1_800_000_000:
        lo, wrapped = lo - _WRAP, True
    lat, lon = la / 1e7, lo / 1e7
    if abs(lat) > 90 or abs(lon) > 180:
        return f"coordinates out of range ({lat}, {lon})"
    return lat, lon, wrapped


def latlng(value: object) -> tuple[float, float] | str:
    """Degrees from ``'50.05°, 14.34°'``, ``'geo:50.05,14.34'`` or ``{"latLng": ...}``.

    Parameters
    ----------
    value
        A coordinate string, or a mapping holding one under ``latLng``/``LatLng``/``point``
        or E7 integers (``latE7``/``lngE7``, ``latitudeE7``/``longitudeE7``).

    Returns
    -------
    tuple of (float, float) or str
        ``(lat, lon)`` in WGS84 degrees, or the reason the record is rejected.

    Example
    -------
    >>> latlng("50.05°, 14.34°"), latlng("geo:50.05,14.34")
    ((50.05, 14.34), (50.05, 14.34))
    >>> latlng({"latLng": "91.0°, 0.0°"})
    'coordinates out of range (91.0, 0.0)'
    """
    if isinstance(value, Mapping):
        for key in ("latLng", "LatLng", "point"):
            if key in value:
                return latlng(value[key])
        if "latE7" in value or "latitudeE7" in value:
            r = e7_pair(value.get("latE7", value.get("latitudeE7")),
                        value.get("lngE7", value.get("longitudeE7")))
            return r if isinstance(r, str) else (r[0], r[1])
        return "location object without coordinates"
    if not isinstance(value, str):
        return f"coordinates are not a string ({type(value).__name__})"
    m = _DEG.match(value)
    if m is None:
        return f"unreadable coordinates {value[:60]!r}"
    lat, lon = float(m.group(1)), float(m.group(2))
    if abs(lat) > 90 or abs(lon) > 180:
        return f"coordinates out of range ({lat}, {lon})"
    return lat, lon


def parse_time(value: object, *, unix_ms: bool = False) -> pd.Timestamp | str:
    """UTC time from an ISO string with ``Z``/offset, or Unix ms (``unix_ms``); else a reason.

    Parameters
    ----------
    value
        The time as written in the record.
    unix_ms
        Read ``value`` as Unix milliseconds (``timestampMs``) instead of ISO-8601.

    Returns
    -------
    pandas.Timestamp or str
        The time in UTC, or the reason the record is rejected: a time without an offset
        (ambiguous local time), an unreadable one, or one outside 1980-2100.

    Example
    -------
    >>> parse_time("2025-10-26T23:00:00+02:00")
    Timestamp('2025-10-26 21:00:00+0000', tz='UTC')
    >>> parse_time("1761512400000", unix_ms=True)
    Timestamp('2025-10-26 21:00:00+0000', tz='UTC')
    >>> parse_time("2025-10-26T23:00:00")
    "time '2025-10-26T23:00:00' has no UTC offset (ambiguous local time)"
    """
    if unix_ms:
        ms = number(value)
        if ms is None:
            return f"timestampMs is not a number ({str(value)[:40]!r})"
        t = timebase.from_epoch([ms], epoch=timebase.UNIX_EPOCH, unit="ms").iloc[0]
        return f"implausible timestampMs {value!r}" if pd.isna(t) else t
    if not isinstance(value, str):
        return f"time is not a string ({type(value).__name__})"
    if _ISO_ZONE.search(value.strip()) is None:
        return f"time {value[:40]!r} has no UTC offset (ambiguous local time)"
    try:
        t = pd.Timestamp(value.strip())
    except (ValueError, OverflowError):
        return f"unreadable time {value[:40]!r}"
    if t.tzinfo is None:  # '2024-01-03-06:00': what looked like an offset was read as the hour
        return f"time {value[:40]!r} has no UTC offset (ambiguous local time)"
    t = t.tz_convert("UTC")
    if not (timebase.PLAUSIBLE[0] <= t <= timebase.PLAUSIBLE[1]):
        return f"implausible time {t.isoformat()} (outside 1980-2100)"
    return t


def utc_offset_min(value: object) -> int | None:
    """The UTC offset in minutes written in an ISO time string, ``None`` when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        off = pd.Timestamp(value.strip()).utcoffset()
    except (ValueError, OverflowError):
        return None
    return None if off is None else int(off.total_seconds() // 60)


def device_subject(tag: object) -> str | None:
    """Subject id for a Google ``deviceTag``/``deviceId`` (each device its own subject).

    Parameters
    ----------
    tag
        The record's ``deviceTag`` (or ``deviceId``) value.

    Returns
    -------
    str or None
        ``google-device-<tag>``; ``None`` when there is no usable tag.

    Example
    -------
    >>> device_subject(-1234567), device_subject(None)
    ('google-device--1234567', None)
    """
    if tag is None or isinstance(tag, (bool, dict, list)):
        return None
    return f"google-device-{tag}"


def first(d: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first of ``keys`` present in ``d`` (``None`` if none)."""
    for k in keys:
        if k in d:
            return d[k]
    return None


# --- bounded JSON: nesting depth and string length -----------------------------------------

#: Deepest nesting read (objects and arrays, the root counted as 1). Google's exports nest
#: about 8 levels; a value deeper than this is hostile or broken, and parsers pay for depth
#: with memory (ijson builds a prefix string per level: 200 KB nested drove it past 15 GB).
MAX_DEPTH = 64
#: Longest JSON string read, in bytes as written (escapes included). Names and addresses
#: are under 1 KiB; a 500 MB string would be copied into every exhibit.
MAX_STRING_BYTES = 65_536
_SCAN_BYTES = 1 << 20


@dataclass
class Oversize:
    """A record whose JSON text is too deep or holds too long a string.

    ``record`` is its locator (``locations[12]``, ``[3]`` for an element of a top-level
    array); ``start``/``end`` its byte range in the file; ``depth`` the deepest nesting
    seen in it, ``longest`` its longest string in bytes (up to where it was cut off).
    """

    record: str
    start: int
    end: int = -1
    depth: int = 0
    longest: int = 0


def _unescaped_quotes(arr: np.ndarray, carried: int) -> tuple[np.ndarray, int]:
    """Offsets in ``arr`` of the quotes that open or close a string (not ``\\"``), and the
    run of backslashes ending ``arr``; ``carried``: the run ending the bytes before it."""
    q = np.flatnonzero(arr == 34)
    bs = arr == 92
    if not bs.any():
        return (q[1:] if carried % 2 and len(q) and q[0] == 0 else q), 0
    idx = np.arange(len(arr))
    last_nb = np.maximum.accumulate(np.where(bs, -1, idx))  # last non-backslash at or before i
    run_end = int(last_nb[-1])
    bs_run = (len(arr) - 1 - run_end) + (carried if run_end < 0 else 0)
    if not len(q):
        return q, bs_run
    prev = q - 1
    before = last_nb[np.maximum(prev, 0)]
    run = np.where(before < 0, prev + 1 + carried, prev - before)
    run = np.where(prev < 0, carried, run)
    return q[run % 2 == 0], bs_run


class JsonShape:
    """Streamed, vectorised scan of a JSON file's nesting depth and string lengths.

    Records are the elements of a top-level array, or of an array that is the value of a
    key of the top-level object (``{"locations": [...]}``). Feed bytes with :meth:`feed`,
    then :meth:`close`; :attr:`oversize` lists the records over ``max_depth`` or
    ``max_string``, :attr:`outside` the first excess outside any record (byte offset and
    what), which makes the file unreadable as a whole. Memory: a few arrays the size of
    one chunk.

    >>> s = JsonShape(max_depth=3)
    >>> s.feed(b'{"a": [1, [[2]], {"k": "v"}]}')
    >>> s.close()
    >>> [(o.record, o.start, o.end, o.depth) for o in s.oversize]
    [('a[1]', 9, 15, 4)]
    """

    def __init__(self, *, max_depth: int = MAX_DEPTH, max_string: int = MAX_STRING_BYTES) -> None:
        self.max_depth, self.max_string = max_depth, max_string
        self.oversize: list[Oversize] = []
        self.outside: tuple[int, str] | None = None
        self._off = 0  # bytes fed before the current chunk
        self._depth = 0
        self._in_str = False
        self._str_start = -1  # file offset of the open string's quote
        self._bs_run = 0  # backslashes ending the last chunk
        self._root = 0  # the first structural byte: ord('{') or ord('[')
        self._key = b""  # the last string at depth 1 (a key of the top-level object)
        self._chunk_keys: list[tuple[int, bytes]] = []  # (end offset in chunk, key) this chunk
        self._key_buf: bytes | None = None  # start of a depth-1 string cut by the chunk end
        self._rec: tuple[str, int] | None = None  # (array name, element depth) inside one
        self._index = 0  # index of the current element of the record array
        self._elem_start = 0
        self._pending: dict[int, Oversize] = {}
        self._long: dict[int, int] = {}

    def feed(self, chunk: bytes) -> None:
        """Scan the next bytes of the file."""
        n = len(chunk)
        if not n:
            return
        arr = np.frombuffer(chunk, dtype=np.uint8)
        uq = self._unescaped_quotes(arr)
        toggles = np.zeros(n, dtype=np.int32)
        toggles[uq] = 1
        inside = ((np.cumsum(toggles, dtype=np.int32) + int(self._in_str)) & 1).astype(bool)
        opens = ((arr == 91) | (arr == 123)) & ~inside
        closes = ((arr == 93) | (arr == 125)) & ~inside
        depth = self._depth + np.cumsum(opens.astype(np.int32) - closes.astype(np.int32))
        long_at = self._strings(chunk, uq, depth)
        a = 0
        for p in [*np.flatnonzero((opens & (depth <= 2)) | (closes & (depth <= 1))).tolist(), n]:
            self._segment(arr, inside, depth, long_at, a, p)
            if p < n:
                self._event(p, int(arr[p]), int(depth[p]))
            a = p + 1
        self._depth = int(depth[-1])
        self._in_str = bool(inside[-1])
        self._off += n
        if self._chunk_keys:
            self._key = self._chunk_keys[-1][1]

    def _unescaped_quotes(self, arr: np.ndarray) -> np.ndarray:
        """Chunk offsets of the quotes that open or close a string (not ``\\"``)."""
        q, self._bs_run = _unescaped_quotes(arr, self._bs_run)
        return q

    def _strings(self, chunk: bytes, uq: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Chunk offsets where a string over the limit ends (or the chunk ends inside it)."""
        if self._in_str:  # the first quote closes the string carried from the last chunk
            opens = np.concatenate([[self._str_start - self._off], uq[1::2]])
            ends = uq[0::2]
        else:
            opens, ends = uq[0::2], uq[1::2]
        pairs = len(ends)
        lengths = ends - opens[:pairs] - 1
        over = lengths > self.max_string
        long_at, long_len = ends[over], lengths[over]
        if len(opens) > pairs:  # a string still open at the end of the chunk
            start = int(opens[-1])
            self._str_start = start + self._off
            if len(chunk) - start - 1 > self.max_string:
                long_at = np.append(long_at, len(chunk) - 1)
                long_len = np.append(long_len, len(chunk) - start - 1)
        self._long = dict(zip(long_at.tolist(), long_len.tolist(), strict=True))
        if self._root != 91:
            self._keys(chunk, opens, ends, depth)
        return long_at

    def _keys(self, chunk: bytes, opens: np.ndarray, ends: np.ndarray, depth: np.ndarray) -> None:
        """Remember the last string at depth 1: the key of the array that may open next."""
        pairs = len(ends)
        self._chunk_keys = []
        if len(opens) and opens[0] < 0 and not pairs:  # the whole chunk inside one string
            if self._key_buf is not None:
                self._key_buf = (self._key_buf + chunk)[:1024]
            return
        o_all = opens[:pairs]
        if pairs and o_all[0] < 0 and self._key_buf is not None:
            self._chunk_keys.append((int(ends[0]), (self._key_buf + chunk[: int(ends[0])])[:1024]))
        at1 = (o_all >= 0) & (depth[np.maximum(o_all, 0)] == 1)
        for o, e in zip(o_all[at1].tolist(), ends[at1].tolist(), strict=True):
            self._chunk_keys.append((e, chunk[o + 1: e][:1024]))
        self._key_buf = None
        if len(opens) > pairs and opens[-1] >= 0 and depth[int(opens[-1])] == 1:
            self._key_buf = chunk[int(opens[-1]) + 1:][:1024]

    def _segment(self, arr: np.ndarray, inside: np.ndarray, depth: np.ndarray,
                 long_at: np.ndarray, a: int, b: int) -> None:
        """Bytes ``a..b`` of the chunk, between two low-depth events: elements and excesses."""
        if a >= b:
            return
        deep = np.flatnonzero(depth[a:b] > self.max_depth) + a
        longs = long_at[(long_at >= a) & (long_at < b)]
        if self._rec is None:
            if (len(deep) or len(longs)) and self.outside is None:
                p = int(deep[0]) if len(deep) else int(longs[0])
                what = (f"nesting deeper than {self.max_depth} levels" if len(deep)
                        else f"a string longer than {self.max_string:,} bytes")
                self.outside = (self._off + p, what)
            return
        seps = np.flatnonzero((arr[a:b] == 44) & ~inside[a:b] & (depth[a:b] == self._rec[1])) + a
        if len(deep):  # the deepest point of each element
            _, first = np.unique(np.searchsorted(seps, deep), return_index=True)
            for p, d in zip(deep[first].tolist(),
                            np.maximum.reduceat(depth[deep], first).tolist(), strict=True):
                self._mark(seps, p, d)
        for p in longs.tolist():
            self._mark(seps, p, int(depth[p]))
        for s in seps.tolist():
            self._end_element(self._off + s)

    def _mark(self, seps: np.ndarray, p: int, depth: int) -> None:
        assert self._rec is not None
        j = int(np.searchsorted(seps, p))
        index = self._index + j
        start = self._elem_start if j == 0 else self._off + int(seps[j - 1]) + 1
        o = self._pending.setdefault(index, Oversize(f"{self._rec[0]}[{index}]", start))
        o.depth = max(o.depth, depth)
        o.longest = max(o.longest, self._long.get(p, 0))

    def _end_element(self, end: int) -> None:
        o = self._pending.pop(self._index, None)
        if o is not None:
            o.end = end
            self.oversize.append(o)
        self._index += 1
        self._elem_start = end + 1

    def _event(self, p: int, byte: int, depth_after: int) -> None:
        """An array or object opened at depth 1-2, or closed back to depth 0-1."""
        if self._root == 0:
            self._root = byte
        if byte in (91, 123) and self._rec is None:
            if depth_after == 1 and byte == 91:
                self._enter("", 1, p)
            elif depth_after == 2 and byte == 91 and self._root == 123:
                key = self._key
                for end, k in self._chunk_keys:
                    if end < p:
                        key = k
                self._enter(key.decode("utf-8", "replace"), 2, p)
        elif byte in (93, 125) and self._rec is not None and depth_after == self._rec[1] - 1:
            if self._off + p > self._elem_start or self._pending:
                self._end_element(self._off + p)
            self._rec = None

    def _enter(self, name: str, elem_depth: int, p: int) -> None:
        self._rec = (name, elem_depth)
        self._index = 0
        self._elem_start = self._off + p + 1
        self._pending = {}

    def close(self) -> None:
        """End of file: a record still open (a truncated file) ends at the end."""
        if self._rec is not None and self._pending:
            self._end_element(self._off)
        self._pending = {}


#: ``bytes.translate`` table marking the bytes the first pass looks at: 1 for ``[``/``{``,
#: 2 for ``]``/``}``, 3 for ``"``, 0 for any other byte.
_MARKS = bytes(1 if b in (91, 123) else 2 if b in (93, 125) else 3 if b == 34 else 0
               for b in range(256))


#: Depth step per byte: +1 for ``[``/``{``, -1 for ``]``/``}``, 0 for any other.
_STEPS = np.zeros(256, dtype=np.int8)
_STEPS[[91, 123]] = 1
_STEPS[[93, 125]] = -1

#: ``bytes.translate`` deletion set: every byte but ``[]{}"``.
_NOT_MARKS = bytes(b for b in range(256) if b not in (34, 91, 93, 123, 125))


class _QuickShape:
    """First pass of :func:`scan_json`: is anything in the file over the limits at all?

    It never misses an excess the full :class:`JsonShape` scan would find (same quote rule,
    same limits); it may, rarely, suspect one the full scan then clears (a long run without
    a quote outside any string), and only says *whether*, not *where*. A chunk without a
    backslash is read with C byte operations: depth is summed over ``[]{}"`` alone (the
    chunk with every other byte deleted; a bracket is inside a string when an odd number of
    quotes precede it), and a string over ``max_string`` must span a whole aligned block of
    ``(max_string + 2) // 2`` bytes without a quote (``bytes.count`` per block; the strings
    that touch the chunk's ends are measured exactly). A chunk with a backslash takes the
    exact path: the unescaped quotes' positions, as the full scan finds them.
    """

    def __init__(self, *, max_depth: int, max_string: int) -> None:
        self.max_depth, self.max_string = max_depth, max_string
        self.over = False
        self._block = max(1, (max_string + 2) // 2)
        self._off = 0
        self._depth = 0
        self._in_str = False
        self._str_start = -1  # file offset of the open string's quote
        self._bs_run = 0

    def feed(self, chunk: bytes) -> None:
        """Scan the next bytes; sets :attr:`over` at the first excess."""
        if self._bs_run or b"\\" in chunk:
            self._feed_exact(chunk)
        else:
            self._feed_plain(chunk)
        self._off += len(chunk)

    def _feed_plain(self, chunk: bytes) -> None:
        n, block = len(chunk), self._block
        first = chunk.find(b'"')
        if self._in_str:  # the string carried from the last chunk, measured exactly
            end = n if first < 0 else first
            self.over |= self._off + end - self._str_start - 1 > self.max_string
        if any(chunk.count(b'"', a, a + block) == 0 for a in range(0, n - block + 1, block)):
            self.over = True  # a whole block without a quote: perhaps inside a long string
        marks = np.frombuffer(chunk.translate(None, _NOT_MARKS), dtype=np.uint8)
        quote = marks == 34
        # quotes so far, odd inside a string: an int8 count wraps, and keeps its parity
        odd = np.cumsum(quote, dtype=np.int8).view(np.uint8) & 1
        if self._in_str:
            odd ^= 1
        steps = _STEPS[marks]  # +1 for [ {, -1 for ] }, 0 for a quote
        steps[odd.view(bool)] = 0
        if len(steps):
            depth = np.cumsum(steps, dtype=np.int32)
            self.over |= bool(int(depth.max()) + self._depth > self.max_depth)
            self._depth += int(depth[-1])
        self._in_str ^= bool(int(np.count_nonzero(quote)) & 1)
        if self._in_str and first >= 0:  # a string opened at the last quote and still open
            start = chunk.rfind(b'"')
            self._str_start = self._off + start
            self.over |= n - start - 1 > self.max_string

    def _feed_exact(self, chunk: bytes) -> None:
        n = len(chunk)
        uq, self._bs_run = _unescaped_quotes(np.frombuffer(chunk, dtype=np.uint8), self._bs_run)
        self._check_strings(n, uq)
        marks = np.frombuffer(chunk.translate(_MARKS), dtype=np.uint8)
        at = np.flatnonzero(marks)
        what = marks[at]
        is_br = what < 3
        br = at[is_br]
        if len(br):
            outside = ((np.searchsorted(uq, br) + int(self._in_str)) & 1) == 0
            steps = np.where(what[is_br][outside] == 1, 1, -1)
            if len(steps):
                depth = self._depth + np.cumsum(steps)
                self.over |= bool(depth.max() > self.max_depth)
                self._depth = int(depth[-1])
        self._in_str ^= bool(len(uq) & 1)

    def _check_strings(self, n: int, uq: np.ndarray) -> None:
        if self._in_str:  # the first quote closes the string carried from the last chunk
            opens = np.concatenate([[self._str_start - self._off], uq[1::2]])
            ends = uq[0::2]
        else:
            opens, ends = uq[0::2], uq[1::2]
        pairs = len(ends)
        if pairs and int((ends - opens[:pairs]).max()) - 1 > self.max_string:
            self.over = True
        if len(opens) > pairs:  # a string still open at the end of the chunk
            start = int(opens[-1])
            self._str_start = start + self._off
            self.over |= n - start - 1 > self.max_string


def scan_json(fh: IO[bytes]) -> JsonShape:
    """Scan ``fh`` from where it stands to its end with :class:`JsonShape`.

    A cheap first pass (:class:`_QuickShape`) reads the file once; only when it finds an
    excess is the file read again by the full scan, which says where (the records and
    offsets). ``fh`` must be seekable.

    Example
    -------
    >>> import io
    >>> scan_json(io.BytesIO(b'{"locations": [{"a": 1}, {"b": "x"}]}')).oversize
    []
    >>> deep = b'{"locations": [{"a": 1}, ' + b"[" * 80 + b"]" * 80 + b"]}"
    >>> [(o.record, o.depth) for o in scan_json(io.BytesIO(deep)).oversize]
    [('locations[1]', 82)]
    """
    start = fh.tell()
    quick = _QuickShape(max_depth=MAX_DEPTH, max_string=MAX_STRING_BYTES)
    while not quick.over and (chunk := fh.read(_SCAN_BYTES)):
        quick.feed(chunk)
    shape = JsonShape()
    if quick.over:
        fh.seek(start)
        while chunk := fh.read(_SCAN_BYTES):
            shape.feed(chunk)
    shape.close()
    return shape


def oversize_reason(o: Oversize, text: Iterable[bytes]) -> str:
    """The reject reason for an oversize record: what exceeded which limit, and its JSON
    text cut to its first characters, with its length and SHA-256 (``text``: its bytes,
    in pieces)."""
    digest, n, head = hashlib.sha256(), 0, b""
    for piece in text:
        digest.update(piece)
        n += len(piece)
        if len(head) < 96:
            head += piece[:96]
    what = []
    if o.depth > MAX_DEPTH:
        what.append(f"nested {o.depth:,} levels deep (limit {MAX_DEPTH})")
    if o.longest > MAX_STRING_BYTES:
        what.append(f"holds a string of {o.longest:,} bytes (limit {MAX_STRING_BYTES:,})")
    cut = head.strip()[:48].decode("utf-8", "replace")
    return (f"{' and '.join(what)}: not read; its JSON text ({n:,} bytes, SHA-256 "
            f"{digest.hexdigest()}) begins {cut!r}")


def file_pieces(fh: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start..end`` of ``fh``, in pieces of at most 1 MiB."""
    fh.seek(start)
    left = end - start
    while left > 0 and (piece := fh.read(min(left, _SCAN_BYTES))):
        left -= len(piece)
        yield piece


def outside_error(shape: JsonShape) -> str | None:
    """The file-level message when an excess lies outside any record, else ``None``."""
    if shape.outside is None:
        return None
    at, what = shape.outside
    return (f"{what} at byte {at:,}, outside any record: not read (a location export "
            "nests a few levels and holds short strings)")


class NulledStream:
    """A binary stream that reads ``fh`` from ``base`` with byte ranges replaced by ``null``.

    Used to hand a parser a file whose oversize records (:class:`JsonShape`) are cut out:
    the parser sees ``null`` in their place and never the deep or long value. ``tell`` is
    the offset in the underlying file.
    """

    def __init__(self, fh: IO[bytes], base: int, ranges: Iterable[tuple[int, int]]) -> None:
        self.fh, self.base = fh, base
        self.ranges = sorted(ranges)
        self.pos = 0
        self.k = 0
        fh.seek(base)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (a ``null`` may make it a few more or fewer)."""
        size = _SCAN_BYTES if size is None or size < 0 else size
        out: list[bytes] = []
        while size > 0:
            if self.k < len(self.ranges) and self.pos >= self.ranges[self.k][0]:
                self.pos = self.ranges[self.k][1]
                self.k += 1
                self.fh.seek(self.base + self.pos)
                out.append(b"null")
                size -= 4
                continue
            limit = self.ranges[self.k][0] - self.pos if self.k < len(self.ranges) else size
            piece = self.fh.read(min(size, limit))
            if not piece:
                break
            self.pos += len(piece)
            size -= len(piece)
            out.append(piece)
        return b"".join(out)

    def tell(self) -> int:
        """Offset in the underlying file."""
        return self.base + self.pos

    def close(self) -> None:
        """Close the underlying file."""
        self.fh.close()
