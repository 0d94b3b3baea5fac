"""Google Takeout ``Records.json`` / ``Location History.json``: raw location history, streamed.

File shape: ``{"locations": [{latitudeE7, longitudeE7, accuracy, source, deviceTag,
timestamp | timestampMs, altitude, velocity, heading, verticalAccuracy,
activity[]{timestamp | timestampMs, activity[]{type, confidence}}}, ...]}``.

Field map (source -> canonical, unit conversion):

=====================  ===============  ==================================================
source                 column           conversion
=====================  ===============  ==================================================
``latitudeE7``         ``lat``          / 1e7 (32-bit overflow repaired, see google_common)
``longitudeE7``        ``lon``          / 1e7
``timestamp``          ``t_utc``        ISO-8601 with Z/offset -> UTC (newer exports)
``timestampMs``        ``t_utc``        Unix milliseconds as a string (pre-2019 exports)
``accuracy``           ``h_acc_m``      metres
``verticalAccuracy``   ``v_acc_m``      metres
``altitude``           ``alt_m``        metres
``velocity``           ``speed_mps``    m/s
``heading``            ``course_deg``   degrees
``source``             ``fix_kind``     GPS/WIFI/CELL/UNKNOWN -> gps/wifi/cell/unknown
``deviceTag``          ``subject_id``   ``google-device-<tag>`` (each device its own subject)
other keys             ``extra``        verbatim (platformType, serverTimestamp, ...)
``activity[j]``        events           kind ``activity``: text = most likely type,
                                        value = its confidence (%), extra = all of them
=====================  ===============  ==================================================

A location without a ``deviceTag`` belongs to the user's ``subject_id`` or the file stem;
a ``subject_id`` given by the user merges all devices into that subject.

One record = one element of ``locations`` (locator ``locations[i]``). It yields a fix
and its activity events; it is rejected (with a reason) only when it yields nothing.
A location whose position or time is unusable but which carries valid activities
produces the events and says why its position was dropped in their ``extra``.

Streaming: the file is read in blocks of bytes (:data:`_BLOCK_BYTES`), each cut after a
location and decoded by msgspec in C into small structs of the known keys (dicts where a
block holds other keys or non-objects), and regrouped into chunks of :data:`CHUNK_ROWS`
locations converted to numpy columns, so the parser's memory does not grow with the file.
ijson's dict per location cost 1.2 s of CPU per 1e6 locations, msgspec's structs 0.4 s
(measured on the 191 MB file of ``bench/ingest_takeout.py``). Wherever the fast reader
cannot vouch that it reads what ijson reads (a file that does not open with
``{"locations": [``, damage, a key after the array, an integer beyond 64 bits, which
yajl refuses and msgspec reads), ijson (C backend ``yajl2_c`` when installed) reads the
file from the first location not yet handed on: results, rejects and error texts are
ijson's (a test holds the two readers equal on such files). :func:`stream_records` yields
canonical tables chunk by chunk (for writing to a case store); :func:`load_records` (the
registered loader) concatenates them. A file that is cut off or corrupt mid-way keeps every
location read before the fault; the fault itself is one reject naming the byte offset.
Before either parser sees the file, a streamed scan
(:func:`~routetrace.loaders.google_common.scan_json`: a cheap first pass, and the per-byte
:class:`~routetrace.loaders.google_common.JsonShape` only when it finds an excess; figures
in ``bench/results/ingest_takeout.txt``) finds any location nested deeper than
``MAX_DEPTH`` levels or holding a string longer than ``MAX_STRING_BYTES``: the parsers
read ``null`` in its place and the location is a reject with
its JSON text's length, SHA-256 and first characters (a 200 KB nest drove ijson past 15 GB).
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import ijson
import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from msgspec import UNSET
from msgspec.structs import astuple

from .. import schema, timebase
from ..errors import CorruptSource
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register
from .google_common import (
    FIX_KIND,
    NulledStream,
    _unescaped_quotes,
    device_subject,
    file_pieces,
    outside_error,
    oversize_reason,
    scan_json,
    sniff_json_keys,
)

__all__ = ["CHUNK_ROWS", "RecordsChunk", "load_records", "sniff_records", "stream_records"]

#: Locations converted per chunk (bounds the parser's working memory). Each chunk costs a
#: fixed few ms of pandas/Arrow calls: 65,536 rather than 16,384 took the streamed 1e6-location
#: bench file from 2.78 to 2.39 s of CPU, its peak from 232 to 318 MiB (ijson's plain read: 510).
CHUNK_ROWS = 65_536

try:
    _IJSON: Any = ijson.get_backend("yajl2_c")
except Exception:  # pragma: no cover - pure-Python fallback when the C backend is absent
    _IJSON = ijson

_KNOWN = frozenset({"latitudeE7", "longitudeE7", "accuracy", "source", "deviceTag", "timestamp",
                    "timestampMs", "altitude", "velocity", "heading", "verticalAccuracy",
                    "activity"})
_NUMERIC = ("accuracy", "verticalAccuracy", "altitude", "velocity", "heading")
_SCALAR_KEYS = ("latitudeE7", "longitudeE7", "timestamp", "timestampMs", "source", "deviceTag",
                *_NUMERIC)
_COL = {"accuracy": "h_acc_m", "verticalAccuracy": "v_acc_m", "altitude": "alt_m",
        "velocity": "speed_mps", "heading": "course_deg"}
_KIND_CODES = np.array(["unknown", *sorted(set(FIX_KIND.values()) - {"unknown"})], dtype=object)
_KIND_INDEX = {k: i for i, k in enumerate(_KIND_CODES)}
_KIND_ARROW = pa.array(_KIND_CODES.tolist(), type=pa.string())
_SRC_CODE = {s: _KIND_INDEX[k] for s, k in FIX_KIND.items()}
_WRAP = 2**32
_SECOND = itemgetter(1)


def sniff_records(path: Path, head: bytes) -> bool:
    """A JSON object whose first key is ``"locations"`` (an array of E7 locations).

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough; its name is not used).
    head
        Its first bytes (64 KiB; a UTF-8 BOM is tolerated).

    Returns
    -------
    bool
        Whether ``head`` opens a Records.json / Location History.json.

    Example
    -------
    >>> sniff_records(Path("Records.json"), b'{\\n  "locations": [{\\n    "latitudeE7": 510000000,')
    True
    >>> sniff_records(Path("Records.json"), b'{"timelineObjects": [')
    False
    """
    if not sniff_json_keys(head, "locations"):
        return False
    body = head.lstrip(b"\xef\xbb\xbf").lstrip()
    rest = body[body.index(b":") + 1:].lstrip()
    if not rest.startswith(b"["):
        return False
    inner = rest[1:].lstrip()
    return inner == b"" or inner.startswith(b"]") or b"latitudeE7" in body or b"timestampMs" in body


@dataclass
class RecordsChunk:
    """One streamed chunk: canonical-shaped fixes and events, rejects, records read."""

    fixes: pd.DataFrame
    events: pd.DataFrame | None
    rejects: list[tuple[str, str]] = field(default_factory=list)
    records_read: int = 0


def _floats(values: list[Any]) -> np.ndarray:
    nones = values.count(None)
    if nones == len(values):
        return np.full(len(values), np.nan)
    if nones * 2 > len(values):  # mostly absent (altitude, velocity): Arrow reads it faster
        try:
            return pa.array(values, type=pa.float64()).fill_null(np.nan).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            pass  # a bool, a string, an integer beyond 64 bits: numpy's reading, as before
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        out = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[i] = v
            elif isinstance(v, str):
                try:
                    out[i] = float(v)
                except ValueError:
                    pass
        return out


def _str(values: pa.Array | np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A canonical ``string`` column (Arrow-backed, as :mod:`schema` declares it) built in C:
    no Python string per row, and nothing left for ``schema.coerce`` to convert."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
    return pd.array(arr, dtype="string")


#: The usual Takeout ``timestamp``: UTC with ``Z``, 0-9 decimals (Arrow and pandas agree).
_PLAIN_ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$"


def _iso_utc(strs: pa.Array) -> np.ndarray:
    """ISO-8601 texts with a zone -> naive UTC ``datetime64[ns]``, NaT where unreadable.

    A chunk whose texts all have the usual shape is parsed by Arrow's cast (C, no Python
    string per row); any other chunk, or one Arrow refuses (a 30 February, a 24:00), by
    pandas, which reads each unreadable text as NaT.
    """
    if pc.all(pc.match_substring_regex(strs, _PLAIN_ISO)).as_py():
        try:
            return strs.cast(pa.timestamp("ns", tz="UTC")).to_numpy(
                zero_copy_only=False).astype("datetime64[ns]")
        except pa.ArrowInvalid:
            pass
    parsed = pd.to_datetime(strs.to_numpy(zero_copy_only=False), format="ISO8601", utc=True,
                            errors="coerce")
    return timebase.as_ns_utc(parsed).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _times(iso: list[Any], ms: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """UTC ns (NaT where unusable) and a per-row reason code (0 ok, 1 none, 2 no zone, 3 bad)."""
    n = len(iso)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    why = np.ones(n, dtype=np.int8)
    arr: pa.Array | None
    try:  # fast path: all strings or nulls, checked in C
        arr = pa.array(iso, type=pa.string())
        kind = np.where(arr.is_null().to_numpy(zero_copy_only=False), 0, 1).astype(np.int8)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = None
        kind = np.fromiter((0 if x is None else 1 if type(x) is str else 2 for x in iso),
                           dtype=np.int8, count=n)
    has_iso = kind != 0
    if has_iso.any():
        idx = np.flatnonzero(kind == 1)
        why[kind == 2] = 3
        if len(idx):
            strs = (arr if arr is not None and len(idx) == n else
                    pa.array([iso[i] for i in idx.tolist()], type=pa.string()))
            zoned = pc.ends_with(strs, "Z").to_numpy(zero_copy_only=False)
            if not zoned.all():
                off = pc.match_substring_regex(strs, r"[+-]\d\d:?\d\d$")
                zoned = zoned | off.to_numpy(zero_copy_only=False)
            why[idx[~zoned]] = 2
            why[idx[zoned]] = 0
            if zoned.any():
                sel = strs if zoned.all() else strs.filter(pa.array(zoned))
                vals = _iso_utc(sel)
                out[idx[zoned]] = vals
                why[idx[zoned][np.isnat(vals)]] = 3
    use_ms = ~has_iso
    if use_ms.any():
        m = pd.Series(ms, dtype=object)[use_ms]
        have = m.notna().to_numpy()
        idx = np.flatnonzero(use_ms)
        if have.any():
            num = pd.to_numeric(m[have], errors="coerce")
            t = timebase.from_epoch(num.to_numpy(), epoch=timebase.UNIX_EPOCH, unit="ms")
            vals = t.to_numpy(dtype="datetime64[ns]")
            out[idx[have]] = vals
            why[idx[have]] = np.where(np.isnat(vals), 3, 0)
    lo, hi = (np.datetime64(t.tz_localize(None)) for t in timebase.PLAUSIBLE)
    bad = ~np.isnat(out) & ((out < lo) | (out > hi))
    out[bad] = np.datetime64("NaT")
    why[bad] = 3
    return out, why


_TIME_WHY = {1: "location has no timestamp/timestampMs: a fix needs a time, none is invented",
             2: "timestamp has no UTC offset (ambiguous local time)",
             3: "unreadable or implausible timestamp (outside 1980-2100)"}


class _Cols:
    """Column lists of one chunk, pulled from the parsed location dicts at C level.

    A key every location of the chunk has is read with one ``map(itemgetter)`` pass. A
    location with more keys than those ("wide": altitude, activity, unknown keys) is the
    only one that can hold any other key, so the other keys, the activities and ``extra``
    are looked up on the wide locations only (typically a tenth of them).
    """

    def __init__(self, buf: list[Any]) -> None:
        self.not_obj = ([] if set(map(type, buf)) == {dict} else
                        [k for k, d in enumerate(buf) if type(d) is not dict])
        if self.not_obj:
            buf = [d if type(d) is dict else {} for d in buf]
        self._n = len(buf)
        self._full: dict[str, list[Any]] = {}
        for key in _SCALAR_KEYS:
            try:  # C-level pass when every location has the key (the usual case)
                self._full[key] = list(map(itemgetter(key), buf))
            except KeyError:
                pass
        lens = np.fromiter(map(len, buf), dtype=np.int64, count=self._n)
        self._wide = np.flatnonzero(lens > len(self._full)).tolist()
        self._rest = [buf[k] for k in self._wide]
        present: set[str] = set().union(*self._rest)  # keys beyond the common ones
        self.lat = self._col("latitudeE7", present)
        self.lon = self._col("longitudeE7", present)
        self.ts = self._col("timestamp", present)
        self.tms = self._col("timestampMs", present)
        self.src = self._col("source", present)
        self.dev = self._col("deviceTag", present)
        self.num = {k: self._col(k, present) for k in _NUMERIC}
        self.acts = ([(k, d["activity"]) for k, d in zip(self._wide, self._rest, strict=True)
                      if "activity" in d] if "activity" in present else [])
        self.extra: dict[int, dict[str, Any]] = {}
        if not present <= _KNOWN:
            self.extra = {k: {x: v for x, v in d.items() if x not in _KNOWN}
                          for k, d in zip(self._wide, self._rest, strict=True)
                          if not d.keys() <= _KNOWN}

    @classmethod
    def of_locs(cls, buf: list[Any]) -> _Cols:
        """The columns of a chunk read by the fast reader (:class:`_Loc` structs, or dicts
        where a block held something else): one C-level transpose for structs."""
        if set(map(type, buf)) != {_Loc}:
            return cls([_as_dict(x) for x in buf])
        self = cls.__new__(cls)
        self._n = len(buf)
        self.not_obj = []
        self.extra = {}
        cols = dict(zip(_LOC_FIELDS, zip(*map(astuple, buf), strict=True), strict=True)) if buf \
            else dict.fromkeys(_LOC_FIELDS, ())
        self.lat, self.lon = list(cols["latitudeE7"]), list(cols["longitudeE7"])
        self.ts, self.tms = list(cols["timestamp"]), list(cols["timestampMs"])
        self.src, self.dev = list(cols["source"]), list(cols["deviceTag"])
        self.num = {k: list(cols[k]) for k in _NUMERIC}
        self.acts = [(k, a) for k, a in enumerate(cols["activity"]) if a is not UNSET]
        return self

    def _col(self, key: str, present: set[str]) -> list[Any]:
        if key in self._full:
            return self._full[key]
        out: list[Any] = [None] * self._n
        if key in present:
            for k, v in zip(self._wide, map(dict.get, self._rest, repeat(key)), strict=True):
                out[k] = v
        return out


class _Loc(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One location as the fast reader decodes it: the known keys only (a location with any
    other key makes its block decode as dicts). ``None`` is a key absent or ``null`` (the
    same to every column); ``activity`` keeps the difference (``null`` is a reject reason)."""

    latitudeE7: Any = None
    longitudeE7: Any = None
    timestamp: Any = None
    timestampMs: Any = None
    source: Any = None
    deviceTag: Any = None
    accuracy: Any = None
    verticalAccuracy: Any = None
    altitude: Any = None
    velocity: Any = None
    heading: Any = None
    activity: Any = UNSET


_LOC_FIELDS = _Loc.__struct_fields__
_LOCS = msgspec.json.Decoder(list[_Loc])
_ANY = msgspec.json.Decoder()


def _as_dict(x: Any) -> Any:
    """A :class:`_Loc` as the dict ijson would have built (keys that are ``None`` left out:
    no column tells absent from ``null`` apart, except ``activity``, kept when given)."""
    if type(x) is not _Loc:
        return x
    return {k: v for k, v in zip(_LOC_FIELDS, astuple(x), strict=True)
            if v is not UNSET and (v is not None or k == "activity")}


class _Fallback(Exception):
    """The fast reader cannot vouch for what follows: ijson reads the file instead."""


#: The file's opening as every Takeout export writes it (after a BOM): ``{"locations": [``.
_HEAD = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"locations"[ \t\n\r]*:[ \t\n\r]*\[')
_JSON_WS = b" \t\n\r"
#: ``bytes.translate`` table: digits to ``1``, anything else to ``0``.
_DIGIT_MAP = bytes(49 if 48 <= b <= 57 else 48 for b in range(256))
#: 19 digits in a row: perhaps an integer beyond 64 bits, which ijson refuses and msgspec reads.
_LONG_DIGITS = b"1" * 19
#: Bytes read per block by the fast reader, and the most it carries without a complete
#: location (a longer one is left to ijson).
_BLOCK_BYTES = 1 << 20
_MAX_CARRY = 64 << 20
#: Candidate cuts tried (each a decode of the block) before the per-byte scan finds one.
_TRIES = 4
#: What msgspec raises for text it cannot read (invalid UTF-8 is a ``UnicodeDecodeError``).
_UNREADABLE = (msgspec.DecodeError, ValueError)


def _decode(text: bytes, structs: bool) -> tuple[list[Any], bool]:
    """The locations in ``text`` (elements of the array, without brackets): structs while
    every location has only known keys, dicts from the first block that does not."""
    if _LONG_DIGITS in text.translate(_DIGIT_MAP):
        raise _Fallback("19 digits in a row")
    body = b"[" + text + b"]"
    if structs:
        try:
            return _LOCS.decode(body), True
        except msgspec.ValidationError:
            pass
    return _ANY.decode(body), False


def _candidate(data: bytes, stop: int) -> tuple[int, int] | None:
    """The last ``}`` before ``stop`` followed by a ``,`` (white space between): where a
    location may end, and where the next one then begins."""
    j = stop
    while (j := data.rfind(b"}", 0, j)) >= 0:
        k = j + 1
        while k < len(data) and data[k] in _JSON_WS:
            k += 1
        if k < len(data) and data[k] == 44:
            return j + 1, k + 1
    return None


def _exact_cut(data: bytes) -> tuple[int, int] | None:
    """The last ``,`` between two elements of the array (outside strings, at the array's
    own depth): a per-byte scan, for when the quick candidates did not decode."""
    arr = np.frombuffer(data, dtype=np.uint8)
    uq, _ = _unescaped_quotes(arr, 0)
    toggles = np.zeros(len(arr), dtype=np.int8)
    toggles[uq] = 1
    inside = (np.cumsum(toggles, dtype=np.int64) & 1).astype(bool)
    steps = (((arr == 91) | (arr == 123)).astype(np.int64)
             - ((arr == 93) | (arr == 125)).astype(np.int64))
    steps[inside] = 0
    depth = np.cumsum(steps)
    below = np.flatnonzero(depth < 0)
    end = int(below[0]) if len(below) else len(arr)  # the array's own end, if in the data
    seps = np.flatnonzero((arr[:end] == 44) & ~inside[:end] & (depth[:end] == 0))
    return None if not len(seps) else (int(seps[-1]), int(seps[-1]) + 1)


_FIRST_KEY = re.compile(rb'[ \t\n\r]*"[A-Za-z0-9_]{1,40}"')


def _signature(data: bytes, cut: tuple[int, int]) -> bytes | None:
    """The bytes between two locations at a proven cut: from the line break before the
    ``}`` (or the ``}``) to the end of the next location's first key. Objects nested
    deeper are indented further (Google pretty-prints) or start with another key
    (``{"type"``), so the last place these bytes occur is, nearly always, the next cut.
    ``None`` when the next location's opening is not in ``data``."""
    start = cut[0] - 1
    while start > 0 and data[start - 1] in _JSON_WS:
        start -= 1
    line = data.rfind(b"\n", start - 1, cut[0])
    k = cut[1]
    while k < len(data) and data[k] in _JSON_WS:
        k += 1
    if k >= len(data) or data[k] != 123:
        return None
    key = _FIRST_KEY.match(data, k + 1)
    return data[line if line >= 0 else cut[0] - 1:key.end() if key else k + 1]


def _take(data: bytes, structs: bool, sig: bytes | None,
          ) -> tuple[list[Any], bool, int, bytes | None] | None:
    """Decode the complete locations at the front of ``data``: (locations, structs, where
    the rest begins, the separator :func:`_signature` learnt), or ``None`` when ``data``
    holds no complete location yet.

    A cut at a ``}`` that does not end a location leaves an unclosed string, object or
    array, which no JSON parser accepts: so a candidate that decodes is a location's end.
    The first candidate is the last place ``sig`` occurs, then the last ``}`` followed by
    a ``,``, and so on; after a few, a per-byte scan finds the cut.
    """
    cuts: list[tuple[int, int] | None] = []
    if sig is not None and (j := data.rfind(sig)) >= 0:
        end = j + sig.index(b"}") + 1
        cuts.append((end, data.index(b",", end) + 1))
    stop = len(data)
    for tries in range(_TRIES + len(cuts)):
        cut = cuts[tries] if tries < len(cuts) else _candidate(data, stop)
        if cut is None:
            break
        try:
            return (*_decode(data[:cut[0]], structs), cut[1], _signature(data, cut))
        except _UNREADABLE:
            if tries >= len(cuts):
                stop = cut[0] - 1
    cut = _exact_cut(data)
    if cut is None:
        return None
    try:
        return (*_decode(data[:cut[0]], structs), cut[1], _signature(data, cut))
    except _UNREADABLE as exc:
        raise _Fallback(str(exc)) from exc


def _tail(data: bytes, after_comma: bool, structs: bool) -> list[Any]:
    """The last locations, then ``]`` and ``}`` and nothing but white space."""
    rest = data.rstrip(_JSON_WS)
    if not rest.endswith(b"}"):
        raise _Fallback("no '}' at the end")
    rest = rest[:-1].rstrip(_JSON_WS)
    if not rest.endswith(b"]"):
        raise _Fallback("no ']' at the end")
    rest = rest[:-1]
    if not rest.strip(_JSON_WS):
        if after_comma:
            raise _Fallback("a ',' before ']'")
        return []
    try:
        return _decode(rest, structs)[0]
    except _UNREADABLE as exc:
        raise _Fallback(str(exc)) from exc


def _fast_blocks(fh: IO[bytes] | NulledStream) -> Iterator[list[Any]]:
    """The locations of a file of the usual shape, block by block, decoded by msgspec.

    Raises :class:`_Fallback` (before yielding the block concerned) at anything it cannot
    vouch reads as ijson reads it: another shape, damage, an integer beyond 64 bits.
    """
    data = fh.read(_BLOCK_BYTES)
    m = _HEAD.match(data)
    if m is None:
        raise _Fallback("not the usual opening")
    data = data[m.end():]
    structs, after_comma = True, False
    sig: bytes | None = None
    while more := fh.read(_BLOCK_BYTES):
        data += more
        got = _take(data, structs, sig)
        if got is None:
            if len(data) > _MAX_CARRY:
                raise _Fallback("a location longer than the carry")
            continue
        locs, structs, nxt, sig = got
        data = data[nxt:]
        after_comma = True
        yield locs
    yield _tail(data, after_comma, structs)


def _fast_chunks(fh: IO[bytes] | NulledStream, chunk_rows: int) -> Iterator[list[Any]]:
    """:func:`_fast_blocks` regrouped into chunks of ``chunk_rows`` locations (the last
    may be shorter; none is empty)."""
    buf: list[Any] = []
    for locs in _fast_blocks(fh):
        buf.extend(locs)
        while len(buf) >= chunk_rows:
            out, buf = buf[:chunk_rows], buf[chunk_rows:]
            yield out
    if buf:
        yield buf


def _open(path: Path) -> IO[bytes]:
    fh = open(path, "rb")
    if fh.read(3) != b"\xef\xbb\xbf":
        fh.seek(0)
    return fh


def _best(types: list[list[Any]]) -> list[Any]:
    """The ``[type, confidence]`` pair with the highest confidence (``[None, None]`` if none)."""
    best: list[Any] = [None, None]
    try:
        if types:
            best = max(types, key=_SECOND)
    except TypeError:  # a confidence that is not a number: compare the numbers only
        for p in types:
            c = p[1]
            if (isinstance(c, (int, float)) and not isinstance(c, bool)
                    and (best[1] is None or c > best[1])):
                best = p
    return best


def _types(inner: Any) -> list[list[Any]]:
    """The ``[type, confidence]`` pairs of one activity record's ``activity`` list."""
    if type(inner) is not list:
        return []
    try:  # the usual shape, read without per-item checks
        return [[x["type"], x["confidence"]] for x in inner]
    except (KeyError, TypeError):
        return [[x.get("type"), x.get("confidence")] for x in inner if isinstance(x, dict)]


def _activity_events(
    cols: _Cols, i0: int, lat: np.ndarray, lon: np.ndarray, subj: np.ndarray,
    loc_why: dict[int, str],
) -> tuple[pd.DataFrame | None, dict[int, list[str]], set[int]]:
    """The activity events of a chunk, the problems of those dropped (by location), and
    the locations (chunk positions) that gave at least one event."""
    dropped: dict[int, list[str]] = {}
    ks: list[int] = []
    js: list[int] = []
    found: list[dict[str, Any]] = []
    for k, acts in cols.acts:
        if not isinstance(acts, list):
            dropped.setdefault(k, []).append("activity is not a list")
            continue
        for j, a in enumerate(acts):
            if not isinstance(a, dict):
                dropped.setdefault(k, []).append(f"activity[{j}] is not an object")
                continue
            ks.append(k)
            js.append(j)
            found.append(a)
    if not ks:
        return None, dropped, set()
    t, why = _times([a.get("timestamp") for a in found], [a.get("timestampMs") for a in found])
    for e in np.flatnonzero(why).tolist():
        dropped.setdefault(ks[e], []).append(f"activity[{js[e]}]: {_TIME_WHY[int(why[e])]}")
    ok = np.flatnonzero(why == 0)
    if not len(ok):
        return None, dropped, set()
    kk = np.asarray(ks)[ok]
    tops: list[Any] = []
    confs: list[Any] = []
    extras: list[str] = []
    for e, k in zip(ok.tolist(), kk.tolist(), strict=True):
        types = _types(found[e].get("activity"))
        best = _best(types)
        tops.append(best[0] if isinstance(best[0], str) else None)
        confs.append(best[1] if isinstance(best[1], (int, float)) else None)
        ex: dict[str, Any] = {"activities": types}
        if k in loc_why:
            ex["location_rejected"] = loc_why[k]
        extras.append(_DUMPS(ex))
    index = pa.array(kk + i0).cast(pa.string())
    jj = pa.array(np.asarray(js)[ok]).cast(pa.string())
    # the record is the location (the count rule's unit); the part names the activity, as
    # a location may hold several (each event's derived id is then its own)
    df = pd.DataFrame({
        "record": _str(pc.binary_join_element_wise("locations[", index, "]", "")),
        "part": _str(pc.binary_join_element_wise("activity[", jj, "]", "")), "subject_id": subj[kk],
        "t_utc": pd.DatetimeIndex(t[ok]).tz_localize("UTC"),
        "kind": "activity", "value": _floats(confs), "unit": "%",
        "text": np.asarray(tops, dtype=object), "lat": lat[kk], "lon": lon[kk],
        "extra": np.asarray(extras, dtype=object),
    })
    return df, dropped, set(kk.tolist())


_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _convert(cols: _Cols, i0: int, n: int, subject_id: str | None, default_subject: str,
             cut: Mapping[int, str] | None = None) -> RecordsChunk:
    lat_e7, lon_e7 = _floats(cols.lat), _floats(cols.lon)
    wrapped = (lat_e7 > 900_000_000) | (lon_e7 > 1_800_000_000)
    if wrapped.any():
        lat_e7 = np.where(lat_e7 > 900_000_000, lat_e7 - _WRAP, lat_e7)
        lon_e7 = np.where(lon_e7 > 1_800_000_000, lon_e7 - _WRAP, lon_e7)
        for k in np.flatnonzero(wrapped).tolist():
            cols.extra.setdefault(k, {})["e7_wrapped"] = True
    lat, lon = lat_e7 / 1e7, lon_e7 / 1e7
    t, twhy = _times(cols.ts, cols.tms)
    with np.errstate(invalid="ignore"):
        pos_ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    ok = pos_ok & (twhy == 0)
    for k in cols.not_obj:
        ok[k] = False
    if subject_id is not None:
        names, who = np.array([subject_id], dtype=object), np.zeros(n, dtype=np.intp)
        subj = names[who]
    else:
        dev = pd.Series(cols.dev, dtype=object)
        try:
            codes, uniq = pd.factorize(dev, use_na_sentinel=True)
        except TypeError:  # a deviceTag of the wrong type (object/array): no device subject
            dev = pd.Series([d if isinstance(d, (int, str)) else None for d in cols.dev],
                            dtype=object)
            codes, uniq = pd.factorize(dev, use_na_sentinel=True)
        names = np.array([device_subject(d) or default_subject for d in uniq] + [default_subject],
                         dtype=object)
        who = np.where(codes < 0, len(names) - 1, codes)  # no deviceTag: the default (last)
        subj = names[who]
    loc_why: dict[int, str] = {}
    for k in np.flatnonzero(~ok).tolist():
        if cut and i0 + k in cut:
            loc_why[k] = cut[i0 + k]
        elif k in cols.not_obj:
            loc_why[k] = "location is not a JSON object"
        elif not pos_ok[k]:
            loc_why[k] = ("no usable latitudeE7/longitudeE7 (missing, not a number or out of "
                          "range)")
        else:
            loc_why[k] = _TIME_WHY[int(twhy[k])]
    events, dropped, with_events = _activity_events(cols, i0, np.where(pos_ok, lat, np.nan),
                                                    np.where(pos_ok, lon, np.nan), subj, loc_why)
    rejects = [(f"locations[{i0 + k}]", why) for k, why in sorted(loc_why.items())
               if k not in with_events]
    for k, msgs in dropped.items():
        if ok[k]:
            cols.extra.setdefault(k, {})["activity_rejected"] = msgs
    sel = np.flatnonzero(ok)
    try:
        scodes, suniq = pd.factorize(pd.Series(cols.src, dtype=object), use_na_sentinel=True)
    except TypeError:  # a source of the wrong type (object/array)
        scodes, suniq = pd.factorize(pd.Series([x if isinstance(x, str) else repr(x)
                                                for x in cols.src], dtype=object))
    lut = np.array([_SRC_CODE.get(u, -1) if isinstance(u, str) else -1 for u in suniq] + [0],
                   dtype=np.int64)
    codes = lut[scodes]
    for k in np.flatnonzero(codes < 0).tolist():
        cols.extra.setdefault(k, {})["source"] = cols.src[k]
    codes[codes < 0] = 0
    num = {_COL[k]: _floats(v) for k, v in cols.num.items()}
    h_acc = num["h_acc_m"]
    with np.errstate(invalid="ignore"):
        low = h_acc > 1000
    zero = (lat == 0) & (lon == 0)
    flags = np.full(n, "", dtype=object)
    if low.any() or zero.any():
        flags[low] = "low_accuracy"
        flags[zero] = "zero_position"
        flags[low & zero] = "low_accuracy|zero_position"
    extra = np.full(n, None, dtype=object)
    for k, d in cols.extra.items():  # most chunks have none: the column is then all NA
        extra[k] = compact_json(d)
    index = pa.array(np.arange(i0, i0 + n)[sel]).cast(pa.string())
    fixes = pd.DataFrame({
        "record": _str(pc.binary_join_element_wise("locations[", index, "]", "")),
        "subject_id": _str(pa.array(names, type=pa.string()).take(who[sel])),
        "t_utc": pd.DatetimeIndex(t[sel]).tz_localize("UTC"),
        "lat": lat[sel], "lon": lon[sel],
        **{c: v[sel] for c, v in num.items()},
        "fix_kind": _str(_KIND_ARROW.take(codes[sel])),
        "flags": _str(flags[sel]),
        "extra": _str(extra[sel]) if cols.extra else _str(pa.nulls(len(sel), pa.string())),
    }, copy=False)  # every column is a fresh array of this chunk: no second copy
    return RecordsChunk(fixes=fixes, events=events, rejects=rejects, records_read=n)


@dataclass
class _Opened:
    """The file as the parsers read it: oversize locations cut out (``null`` in their place),
    their reject reasons by index, and how to read it again from the start."""

    fh: IO[bytes]
    base: int
    ranges: list[tuple[int, int]]
    cut: dict[int, str]

    def stream(self) -> IO[bytes] | NulledStream:
        """The file from its start (after a BOM), oversize locations read as ``null``."""
        if self.ranges:
            return NulledStream(self.fh, self.base, self.ranges)
        self.fh.seek(self.base)
        return self.fh


def _bounded(path: Path, shown: str) -> _Opened:
    """Open the file with oversize locations cut out. Raises CorruptSource for an excess
    outside them."""
    fh = _open(path)
    base = fh.tell()
    try:
        shape = scan_json(fh)
        if (err := outside_error(shape)) is not None:
            raise CorruptSource(err, path=shown)
        fh.seek(base)
        cut = {int(o.record[10:-1]): oversize_reason(o, file_pieces(fh, base + o.start, base + o.end))
               for o in shape.oversize if o.record.startswith("locations[")}
        return _Opened(fh, base, [(o.start, o.end) for o in shape.oversize], cut)
    except BaseException:
        fh.close()
        raise


@dataclass
class _Convert:
    """What :func:`_convert` needs besides a chunk's columns."""

    subject_id: str | None
    default_subject: str
    cut: dict[int, str]

    def __call__(self, cols: _Cols, i0: int) -> RecordsChunk:
        return _convert(cols, i0, cols._n, self.subject_id, self.default_subject, self.cut)


def _iter_raw(path: Path, *, subject_id: str | None, default_subject: str,
              chunk_rows: int, shown: str) -> Iterator[RecordsChunk]:
    """Chunks of a Records.json: by the fast reader (msgspec, blocks of bytes) where it can
    vouch for them, else (from the first chunk it cannot) by ijson, as before."""
    opened = _bounded(path, shown)
    conv = _Convert(subject_id, default_subject, opened.cut)
    # The parsers make millions of small objects without reference cycles: the cyclic GC
    # would only re-scan them, so it is paused while parsing and converting (not while the
    # caller holds a chunk) and restored on exit.
    gc_was = gc.isenabled()
    gc.disable()
    i0 = 0
    try:
        try:
            for locs in _fast_chunks(opened.stream(), chunk_rows):
                ch = conv(_Cols.of_locs(locs), i0)
                i0 += len(locs)
                if gc_was:
                    gc.enable()
                yield ch
                gc.disable()
            return
        except _Fallback:
            pass
        yield from _iter_ijson(opened.stream(), conv, i0, chunk_rows, shown, gc_was)
    finally:
        opened.fh.close()
        if gc_was:
            gc.enable()


def _iter_ijson(fh: IO[bytes] | NulledStream, conv: _Convert, skip: int, chunk_rows: int,
                shown: str, gc_was: bool) -> Iterator[RecordsChunk]:
    """ijson's reading of the file, after the first ``skip`` locations (already read)."""
    buf: list[Any] = []
    i0 = skip
    items = islice(_IJSON.items(fh, "locations.item", use_float=True, buf_size=256 * 1024),
                   skip, None)
    try:
        for it in items:
            buf.append(it)
            if len(buf) == chunk_rows:
                ch = conv(_Cols(buf), i0)
                i0 += len(buf)
                buf = []
                if gc_was:
                    gc.enable()
                yield ch
                gc.disable()
    except (ijson.JSONError, ijson.IncompleteJSONError, ValueError, UnicodeDecodeError) as exc:
        if gc_was:
            gc.enable()
        if buf:
            ch = conv(_Cols(buf), i0)
            i0 += len(buf)
            buf = []
            yield ch
        if i0 == 0:
            raise CorruptSource(f"not readable as Takeout Records JSON: {exc}",
                                path=shown) from exc
        where = fh.tell()
        yield RecordsChunk(
            fixes=pd.DataFrame(), events=None, records_read=1,
            rejects=[(f"locations[{i0}:]", f"JSON breaks off after {i0} locations (parser "
                      f"stopped near byte {where}: {str(exc)[:120]}); nothing after that "
                      "point could be read")])
        return
    if buf:
        yield conv(_Cols(buf), i0)


def stream_records(
    path: str | Path, *, subject_id: str | None = None, chunk_rows: int = CHUNK_ROWS,
    source_id: str | None = None,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """Yield ``(fixes, events, rejects)`` canonical tables, one chunk at a time.

    Memory is bounded by ``chunk_rows``, not by the file: use this to write a large
    Records.json straight into a store. Each chunk is coerced to the schema and carries
    ``source_id`` (the SHA-256 of the file unless ``source_id`` is given) and ids.

    Parameters
    ----------
    path
        The Records.json file (only read, streamed).
    subject_id
        The subject of every row; default each location's ``google-device-<deviceTag>``,
        else the file stem.
    chunk_rows
        Locations per chunk (default :data:`CHUNK_ROWS`): bounds the memory used.
    source_id
        The ``source_id`` the rows carry; default the file's SHA-256.

    Returns
    -------
    Iterator of (pandas.DataFrame, pandas.DataFrame, pandas.DataFrame)
        ``(fixes, events, rejects)`` per chunk; over all chunks, locations read = distinct
        records in fixes and events + rejects (a location is rejected only when it yields
        no row).

    Example
    -------
    >>> import json, tempfile
    >>> doc = {"locations": [
    ...     {"latitudeE7": 510000000, "longitudeE7": 38700000, "timestamp": "2025-10-26T21:00:00Z"},
    ...     {"latitudeE7": 510010000, "longitudeE7": 38700000, "timestampMs": "1761512460000"},
    ...     {"latitudeE7": 510020000, "longitudeE7": 38700000, "timestamp": "2025-10-26T21:02:00"}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "Records.json"
    ...     _ = p.write_text(json.dumps(doc))
    ...     for fixes, events, rejects in stream_records(p, subject_id="phone-A", chunk_rows=2):
    ...         print(fixes["record"].tolist(), rejects["record"].tolist())
    ['locations[0]', 'locations[1]'] []
    [] ['locations[2]']
    """
    from ..evidence import sha256_file

    p = Path(path)
    sid = source_id or sha256_file(p)
    no_events, no_rejects = schema.empty("events"), schema.empty("rejects")
    for ch in _iter_raw(p, subject_id=subject_id, default_subject=p.stem,
                        chunk_rows=chunk_rows, shown=str(path)):
        fx = ch.fixes
        if len(fx):
            fx = fx.assign(source_id=sid)
            fx = schema.coerce(fx, "fixes")
        else:
            fx = schema.empty("fixes")
        ev = no_events if ch.events is None else schema.coerce(
            ch.events.assign(source_id=sid), "events")
        rj = no_rejects if not ch.rejects else schema.coerce(pd.DataFrame({
            "source_id": sid, "record": [r for r, _ in ch.rejects],
            "reason": [w for _, w in ch.rejects]}), "rejects")
        yield fx, ev, rj


@register(LoaderSpec(
    name="google-takeout-records",
    description="Google Takeout Records.json / Location History.json (raw locations, streamed)",
    sniff=sniff_records,
    produces=("fixes", "events"),
    options=("chunk_rows",),
))
def load_records(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a Records.json. Options: ``chunk_rows`` (int, default :data:`CHUNK_ROWS`).

    One element of ``locations`` is one record, ``locations[i]``: a fix and its activity
    events, or a reject with the reason when it yields nothing (unusable position or
    time, a time without an offset, over the size limits). A file cut off mid-way keeps
    every location read before the fault and adds one reject naming the byte offset.

    Parameters
    ----------
    path
        The Records.json / Location History.json file (only read, streamed).
    ctx
        The load context (source identity, subject, ``options["chunk_rows"]``) built by
        :func:`routetrace.loaders.load`; ``tz`` is not used.

    Returns
    -------
    LoadResult
        ``fixes``, ``events`` (``kind="activity"``) and ``rejects``; locations read =
        produced + rejected.

    Example
    -------
    >>> import json, tempfile
    >>> from routetrace.loaders import load
    >>> doc = {"locations": [
    ...     {"latitudeE7": 510000000, "longitudeE7": 38700000, "accuracy": 12, "source": "WIFI",
    ...      "timestamp": "2025-10-26T21:00:00Z"},
    ...     {"latitudeE7": 510010000, "longitudeE7": 38700000, "timestamp": "2025-10-26T21:02:00"}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "Records.json"
    ...     _ = p.write_text(json.dumps(doc))
    ...     res = load(p)
    >>> res.fixes[["t_utc", "lat", "h_acc_m", "fix_kind", "record"]]
                          t_utc   lat  h_acc_m fix_kind        record
    0 2025-10-26 21:00:00+00:00  51.0     12.0     wifi  locations[0]
    >>> res.records_read, res.rejects[["record", "reason"]].values.tolist()
    (2, [['locations[1]', 'timestamp has no UTC offset (ambiguous local time)']])
    """
    chunk_rows = int(ctx.options.get("chunk_rows", CHUNK_ROWS))
    default = Path(ctx.member or ctx.display_path).stem
    fixes, events, rejects = [], [], []
    n = 0
    for ch in _iter_raw(path, subject_id=ctx.subject_id, default_subject=default,
                        chunk_rows=chunk_rows, shown=ctx.display_path):
        n += ch.records_read
        if len(ch.fixes):
            fixes.append(ch.fixes)
        if ch.events is not None:
            events.append(ch.events)
        rejects.extend(ch.rejects)
    if n == 0:
        _check_shape(path, ctx)
    basis = ("Records.json 'timestamp' (ISO-8601 with Z/offset) or 'timestampMs' (Unix ms), "
             "both UTC")
    return ctx.finish(records_read=n, time_basis=basis, fixes=_concat(fixes),
                      events=_concat(events), rejects=rejects, default_subject=default)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame | None:
    """One table from the chunks' tables; ``parts`` is emptied, so that the chunks' numeric
    columns are freed before the loader's ``finish`` adds its columns (peak memory)."""
    if not parts:
        return None
    out = pd.concat(parts, ignore_index=True)
    parts.clear()
    return out


def _check_shape(path: Path, ctx: LoadContext) -> None:
    """No location was read: say whether the array is empty or not an array at all."""
    with _open(path) as fh:
        try:
            for prefix, event, _value in _IJSON.parse(fh):
                if prefix == "locations":
                    if event == "start_array":
                        return
                    raise ctx.error(CorruptSource, f"'locations' is a JSON {event}, not an "
                                    "array of locations")
        except (ijson.JSONError, ijson.IncompleteJSONError, json.JSONDecodeError) as exc:
            raise ctx.error(CorruptSource, f"not readable as Takeout Records JSON: {exc}") from exc
    raise ctx.error(CorruptSource, "no 'locations' array in this file")
