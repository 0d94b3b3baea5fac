"""Teltonika AVL wire format: CRC-16/IBM, frame segmentation, record decoding, and an encoder.

This module knows bytes, not tables: :func:`decode_messages` turns a buffer holding
Teltonika messages into columnar arrays (:class:`Decoded`); the loader
(:mod:`routetrace.loaders.teltonika`) turns those into the canonical tables. The encoder
(:func:`encode_record`, :func:`encode_tcp_frame`, :func:`encode_udp`, :func:`encode_login`)
writes the same formats for the sample case, the tests and the benchmark.

Wire formats (Teltonika wiki "Codec" and "Teltonika Data Sending Protocols"; traccar
``TeltonikaProtocolDecoder``)
---------------------------------------------------------------------------------------
* **TCP frame**: 4 zero bytes, uint32 data length, then the data part: codec id, record
  count N1, records, record count N2; then a 4-byte field holding CRC-16/IBM (reflected
  polynomial 0xA001, init 0, no final xor; also called CRC-16/ARC) over the data part.
* **IMEI login**: uint16 0x000F then 15 ASCII digits (sent once when a TCP session opens).
* **UDP datagram**: uint16 length (of the rest), uint16 packet id, packet type 0x01, AVL
  packet id, uint16 IMEI length + ASCII IMEI, then codec id, N1, records, N2; no CRC.
* **Codec 8 record**: uint64 Unix milliseconds (UTC), priority, int32 longitude, int32
  latitude (both x 1e-7 deg, longitude first), int16 altitude (m), uint16 angle (deg),
  uint8 satellites, uint16 speed (km/h), event IO id (1 byte), total IO count (1 byte), then
  groups of 1-, 2-, 4- and 8-byte values, each a count and (id, value) pairs (1-byte ids).
  Some FMB firmwares (traccar's ``extended`` option) add a group of 16-byte values; a
  codec-8 frame whose CRC verifies but does not parse without it is parsed with it.
* **Codec 8 Extended (0x8E)**: as codec 8 with 2-byte event id, counts and ids, and a
  final group of variable-length values (NX: id, uint16 length, bytes).
* **Codec 16 (0x10)**: as codec 8 with 2-byte event id and ids, a generation-type byte
  after the event id, 1-byte counts.
* **Codec 7 (GH3000)**: uint32 whose low 30 bits are seconds since 2007-01-01 UTC
  (:data:`routetrace.timebase.TELTONIKA_GH_EPOCH`) and high 2 bits the priority; a global
  mask (bit 0 location present, bits 1-3 the 1-, 2-, 4-byte IO groups); if located, a
  location mask selecting float32 latitude then longitude, uint16 altitude, uint8 angle
  (x 360/256), uint8 speed (km/h), uint8 satellites, LAC+cell id, signal quality, operator.
* **Codec 12/13/14/15**: GPRS command / response frames (ASCII or binary text), not
  positions: type byte, uint32 size, [uint32 time for 13 and 15], [8-byte IMEI for 14 and
  15], payload.

Why not an existing decoder: see the module docstring of the loader.
"""

from __future__ import annotations

import gc
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..timebase import TELTONIKA_GH_EPOCH

__all__ = [
    "AVL_CODECS",
    "COMMAND_CODECS",
    "Decoded",
    "IoValue",
    "Record",
    "crc16_ibm",
    "crc16_ibm_many",
    "decode_messages",
    "encode_command_frame",
    "encode_login",
    "encode_record",
    "encode_tcp_frame",
    "encode_udp",
    "segment_binary",
]

CODEC_7, CODEC_8, CODEC_8E, CODEC_16 = 0x07, 0x08, 0x8E, 0x10
AVL_CODECS = frozenset({CODEC_7, CODEC_8, CODEC_8E, CODEC_16})
COMMAND_CODECS = frozenset({0x0C, 0x0D, 0x0E, 0x0F})
KNOWN_CODECS = AVL_CODECS | COMMAND_CODECS
CODEC_NAMES = {CODEC_7: "7", CODEC_8: "8", CODEC_8E: "8E", CODEC_16: "16",
               0x0C: "12", 0x0D: "13", 0x0E: "14", 0x0F: "15"}
#: Seconds from the Unix epoch to the codec-7 epoch :data:`routetrace.timebase.TELTONIKA_GH_EPOCH`
#: (2007-01-01T00:00:00Z; the one place that date is written).
GH_EPOCH_S = TELTONIKA_GH_EPOCH.value // 1_000_000_000
#: Largest data length accepted as plausible (a frame is at most a few KiB in practice;
#: camera file transfers over codec 12 reach tens of KiB).
MAX_DATA_LEN = 1 << 20

# --- CRC-16/IBM -------------------------------------------------------------------------


def _crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table[i] = c
    return table


_TABLE = _crc_table()
_TABLE_LIST = [int(x) for x in _TABLE]


def crc16_ibm(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/IBM (ARC): reflected polynomial 0xA001, init 0, no final xor.

    Parameters
    ----------
    data
        The bytes (a TCP frame's data part).

    Returns
    -------
    int
        The CRC, 0..0xFFFF.

    Example
    -------
    >>> hex(crc16_ibm(b"123456789"))
    '0xbb3d'
    """
    crc = 0
    t = _TABLE_LIST
    for b in bytes(data):
        crc = (crc >> 8) ^ t[(crc ^ b) & 0xFF]
    return crc


def crc16_ibm_many(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """CRC-16/IBM of many slices ``buf[starts[i]:starts[i]+lengths[i]]`` at once.

    Vectorised across slices: one numpy step per byte column, over the slices still
    running (sorted by length, longest first), so the cost is about the total number of
    bytes times a few nanoseconds plus ~10 µs per column of the longest slice.

    Parameters
    ----------
    buf
        The capture as a ``uint8`` array.
    starts
        Start offset of each slice, bytes.
    lengths
        Length of each slice, bytes.

    Returns
    -------
    numpy.ndarray
        One CRC per slice, in the order given (equal to :func:`crc16_ibm` of each).

    Example
    -------
    >>> buf = np.frombuffer(b"123456789123456789", dtype=np.uint8)
    >>> crc16_ibm_many(buf, np.array([0, 9, 0]), np.array([9, 9, 4])).tolist()
    [47933, 47933, 5306]
    >>> crc16_ibm(b"1234")
    5306
    """
    n = len(starts)
    out = np.zeros(n, dtype=np.uint32)
    if n == 0:
        return out
    order = np.argsort(-lengths, kind="stable")
    st = starts[order].astype(np.int64)
    ln = lengths[order].astype(np.int64)
    crc = np.zeros(n, dtype=np.uint32)
    # active[k] = number of slices longer than k (a prefix, since sorted descending)
    max_len = int(ln[0])
    counts = np.searchsorted(-ln, -np.arange(max_len), side="left") if max_len else np.array([])
    for k in range(max_len):
        m = int(counts[k])
        b = buf[st[:m] + k]
        c = crc[:m]
        crc[:m] = (c >> 8) ^ _TABLE[(c ^ b) & 0xFF]
    out[order] = crc
    return out


# --- decoded columns ------------------------------------------------------------------

#: header tuple of one record, normalised: (t_ms, priority, lon_raw, lat_raw, alt, angle,
#: sats, speed, event_io, total_io, n1)
_H8E = struct.Struct(">QBiihHBHHHH")
_H8 = struct.Struct(">QBiihHBHBBB")
_H16 = struct.Struct(">QBiihHBHHBBB")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_HH = struct.Struct(">HH")

# per codec: (id format, count format, header struct)
_GROUP_FMT = {
    CODEC_8: ("B", "B"),
    CODEC_8E: ("H", "H"),
    CODEC_16: ("H", "B"),
}
_VAL_FMT = (("B", 1), ("H", 2), ("I", 4), ("Q", 8))
_STRUCTS: dict[tuple[int, int, int, bool], struct.Struct] = {}


def _group_struct(codec: int, width_i: int, n: int, with_next: bool) -> struct.Struct:
    key = (codec, width_i, n, with_next)
    s = _STRUCTS.get(key)
    if s is None:
        idf, cntf = _GROUP_FMT[codec]
        fmt = ">" + (idf + _VAL_FMT[width_i][0]) * n + (cntf if with_next else "")
        s = _STRUCTS[key] = struct.Struct(fmt)
    return s


class FrameError(Exception):
    """A message is malformed; the text is the reject reason."""


#: Records staged as Python ints before they are moved into numpy columns (at a message
#: boundary): bounds the memory of the Python objects of a 1e7-record capture to a chunk
#: (and small chunks convert faster: at 1e6 records 8,192 took half the time of 65,536).
FLUSH_RECORDS = 8_192
#: Header values staged per record (see ``_H8E``) and IO group counts per record.
_NH, _NC = 11, 6


@dataclass
class Decoded:
    """Columnar output of :func:`decode_messages`.

    Per record (index r, in decoding order), numpy columns: ``H[r]`` (the header as
    float64: time ms, priority, longitude and latitude x 1e7, altitude m, angle deg,
    satellites, speed km/h, event IO id, total IO count, 1-byte IO count; see ``_H8E``),
    ``counts[r]`` (int64: number of IO elements per group n1, n2, n4, n8, nx, n16),
    ``rec_msg[r]`` (message index), ``rec_pos[r]`` (index within the message). IO values
    per width ``w`` in (1, 2, 4, 8), in wire order: ``io_id[w]`` (int32) and ``io_raw[w]``
    (int64; 8-byte values as two's complement). Per message (index m): ``msg_loc[m]``
    (locator base, e.g. ``line 12`` or ``offset 1234``), ``msg_imei[m]``, ``msg_codec[m]``,
    ``msg_info[m]`` (dict: transport, UDP ids, layout). Variable-length values:
    ``io_bytes`` as (record, id, bytes). Codec-7 records: ``gh[r]`` = dict of floats; codec
    16: ``gen[r]`` = generation type. ``rejects``: (locator, reason); ``commands``:
    (locator, codec, type, text); ``logins``: (locator, IMEI).

    While decoding, records are staged in flat lists of Python ints (``hdr``: 11 header
    values per record, ``io_counts``: 6 counts per record, ``io_flat``, ``staged_msg``,
    ``staged_pos``) and moved into the columns by :meth:`flush` every
    :data:`FLUSH_RECORDS` records (between messages) and at the end.
    """

    hdr: list[int] = field(default_factory=list)
    io_counts: list[int] = field(default_factory=list)
    io_flat: dict[int, list[int]] = field(default_factory=lambda: {1: [], 2: [], 4: [], 8: []})
    staged_msg: list[int] = field(default_factory=list)
    staged_pos: list[int] = field(default_factory=list)
    H: np.ndarray = field(default_factory=lambda: np.zeros((0, 11), dtype=np.float64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 6), dtype=np.int64))
    rec_msg: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rec_pos: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    io_id: dict[int, np.ndarray] = field(default_factory=dict)
    io_raw: dict[int, np.ndarray] = field(default_factory=dict)
    io_bytes: list[tuple[int, int, bytes]] = field(default_factory=list)
    gen: dict[int, int] = field(default_factory=dict)
    gh: dict[int, dict[str, float | None]] = field(default_factory=dict)
    msg_loc: list[str] = field(default_factory=list)
    msg_imei: list[str | None] = field(default_factory=list)
    msg_codec: list[int] = field(default_factory=list)
    msg_info: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)
    commands: list[tuple[str, int, int, str]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    _chunks: list[dict[str, np.ndarray]] = field(default_factory=list, repr=False)
    _n_flushed: int = 0

    @property
    def n_records(self) -> int:
        """Number of AVL records decoded (in the columns and staged)."""
        return self._n_flushed + len(self.hdr) // _NH

    @property
    def n_flushed(self) -> int:
        """Records already moved into numpy chunks (the staged ones follow them)."""
        return self._n_flushed

    def flush(self) -> None:
        """Move the staged records into a chunk of numpy columns (call between messages)."""
        n = len(self.hdr) // _NH
        if not n:
            return
        chunk = {"H": np.array(self.hdr, dtype=np.float64).reshape(n, _NH),
                 "counts": np.array(self.io_counts, dtype=np.int64).reshape(n, _NC),
                 "msg": np.array(self.staged_msg, dtype=np.int64),
                 "pos": np.array(self.staged_pos, dtype=np.int64)}
        for lst in (self.hdr, self.io_counts, self.staged_msg, self.staged_pos):
            lst.clear()
        for w, flat in self.io_flat.items():
            arr = np.array(flat, dtype=np.uint64 if w == 8 else np.int64)
            flat.clear()
            chunk[f"id{w}"] = arr[0::2].astype(np.int32)
            chunk[f"raw{w}"] = arr[1::2].astype(np.int64)  # 8-byte: two's complement
        self._chunks.append(chunk)
        self._n_flushed += n

    def finish(self) -> None:
        """Flush, then join the chunks into the columns (each column once, chunks freed
        as they are joined)."""
        self.flush()
        chunks, self._chunks = self._chunks, []
        if not chunks:
            for w in (1, 2, 4, 8):
                self.io_id[w] = np.zeros(0, dtype=np.int32)
                self.io_raw[w] = np.zeros(0, dtype=np.int64)
            return
        chunks.insert(0, {"H": self.H, "counts": self.counts, "msg": self.rec_msg,
                          "pos": self.rec_pos,
                          **{f"id{w}": self.io_id.get(w, np.zeros(0, dtype=np.int32))
                             for w in (1, 2, 4, 8)},
                          **{f"raw{w}": self.io_raw.get(w, np.zeros(0, dtype=np.int64))
                             for w in (1, 2, 4, 8)}})
        joined = {}
        for key in list(chunks[0]):
            joined[key] = np.concatenate([c.pop(key) for c in chunks])
        self.H, self.counts = joined["H"], joined["counts"]
        self.rec_msg, self.rec_pos = joined["msg"], joined["pos"]
        for w in (1, 2, 4, 8):
            self.io_id[w], self.io_raw[w] = joined[f"id{w}"], joined[f"raw{w}"]


# --- record parsers ---------------------------------------------------------------------


def _std_groups(buf: bytes, pos: int, end: int, codec: int, i: int, n: int, ns: list[int],
                flats: tuple[list[int], ...], ext16: bool) -> tuple[int, int]:
    """The 1-, 2-, 4- and 8-byte IO groups of record ``i`` (``n`` = the 1-byte count);
    fills ``ns[0:4]`` and ``flats``; returns (position, count of the next group)."""
    idsz = 1 if codec == CODEC_8 else 2
    cntsz = 2 if codec == CODEC_8E else 1
    for wi in range(4):
        ns[wi] = n
        width = _VAL_FMT[wi][1]
        last = wi == 3 and not ext16 and codec != CODEC_8E
        need = n * (idsz + width) + (0 if last else cntsz)
        if pos + need > end:
            raise FrameError(f"record {i}: IO group of {n} x {width}-byte values runs past "
                             "the frame end")
        g = _group_struct(codec, wi, n, not last).unpack_from(buf, pos)
        pos += need
        if last:
            flats[wi].extend(g)
            n = 0
        else:
            flats[wi].extend(g[:-1])
            n = g[-1]
    return pos, n


def _std_var_group(buf: bytes, pos: int, end: int, codec: int, i: int, n: int,
                   nx_items: list[tuple[int, int, bytes]], ext16: bool) -> int:
    """The last group of record ``i``: ``n`` 16-byte values (codec 8 with traccar's
    ``extended`` layout) or ``n`` variable-length values (codec 8E); returns the position."""
    if ext16:
        idsz = 1 if codec == CODEC_8 else 2
        if pos + n * (idsz + 16) > end:
            raise FrameError(f"record {i}: 16-byte IO group runs past the frame end")
        for _ in range(n):
            iid = buf[pos] if idsz == 1 else _U16.unpack_from(buf, pos)[0]
            nx_items.append((i, iid, bytes(buf[pos + idsz: pos + idsz + 16])))
            pos += idsz + 16
        return pos
    for _ in range(n):
        if pos + 4 > end:
            raise FrameError(f"record {i}: variable-length IO runs past the frame end")
        iid, ln = _HH.unpack_from(buf, pos)
        pos += 4
        if pos + ln > end:
            raise FrameError(f"record {i}: variable-length IO {iid} of {ln} bytes runs "
                             "past the frame end")
        nx_items.append((i, iid, bytes(buf[pos: pos + ln])))
        pos += ln
    return pos


def _parse_std(buf: bytes, pos: int, end: int, codec: int, count: int, out: Decoded,
               *, ext16: bool = False) -> int:
    """Parse ``count`` codec 8/8E/16 records from ``pos``; return the end position.

    Appends to ``out`` only after the whole run parsed (so a failure leaves no partial
    records): the records are staged locally first.
    """
    hdr: list[int] = []
    counts: list[int] = []
    flats: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    nx_items: list[tuple[int, int, bytes]] = []
    gens: list[int] = []
    hs = _H8E if codec == CODEC_8E else _H8 if codec == CODEC_8 else _H16
    for i in range(count):
        if pos + hs.size > end:
            raise FrameError(f"record {i} truncated (header runs past the frame end)")
        h = hs.unpack_from(buf, pos)
        pos += hs.size
        if codec == CODEC_16:
            gens.append(h[9])
            h = h[:9] + h[10:]
        ns = [0, 0, 0, 0, 0, 0]
        pos, n = _std_groups(buf, pos, end, codec, i, h[10], ns, flats, ext16)
        if ext16 or codec == CODEC_8E:
            ns[5 if ext16 else 4] = n
            pos = _std_var_group(buf, pos, end, codec, i, n, nx_items, ext16)
        total = sum(ns)
        if total != h[9] and not (codec == CODEC_8E and total - ns[4] == h[9]):
            raise FrameError(f"record {i}: total IO count {h[9]} but {total} elements present")
        hdr.extend(h)
        counts.extend(ns)
    base = out.n_records
    out.hdr.extend(hdr)
    out.io_counts.extend(counts)
    for wi, w in enumerate((1, 2, 4, 8)):
        out.io_flat[w].extend(flats[wi])
    out.io_bytes.extend((base + r, iid, b) for r, iid, b in nx_items)
    if codec == CODEC_16:
        for k, gval in enumerate(gens):
            out.gen[base + k] = gval
    return pos


_G8E: tuple[list[Any], ...] = ([], [], [], [])  # per width: unpack_from of n (id, value) pairs + next count


def _g8e(wi: int, n: int) -> Any:
    """Bound ``unpack_from`` reading ``n`` 8E pairs of width index ``wi`` plus the next count."""
    lst = _G8E[wi]
    while len(lst) <= n:
        lst.append(_group_struct(CODEC_8E, wi, len(lst), True).unpack_from)
    return lst[n]


for _wi in range(4):
    _g8e(_wi, 32)


_WHOLE: dict[tuple[int, int, int, int], Any] = {}


def _whole_8e(layout: tuple[int, int, int, int]) -> Any:
    """Bound ``unpack_from`` of a whole 8E record with this (n1, n2, n4, n8) and no NX."""
    f = _WHOLE.get(layout)
    if f is None:
        n1, n2, n4, n8 = layout
        fmt = ">QBiihHBHHHH" + "HB" * n1 + "H" + "HH" * n2 + "H" + "HI" * n4 + "H" + "HQ" * n8 + "H"
        f = _WHOLE[layout] = struct.Struct(fmt).unpack_from
    return f


def _parse_8e_fast(buf: bytes, pos: int, end: int, count: int, out: Decoded) -> int:
    """Codec 8E records without the generic machinery: 5 ``unpack_from`` per record."""
    hdr: list[int] = []
    counts: list[int] = []
    f1: list[int] = []
    f2: list[int] = []
    f4: list[int] = []
    f8: list[int] = []
    nx_items: list[tuple[int, int, bytes]] = []
    G1, G2, G4, G8 = _G8E
    hu = _H8E.unpack_from
    hadd, cadd = hdr.extend, counts.extend
    layout: tuple[int, int, int, int] | None = None
    clayout = (0, 0, 0, 0, 0, 0)
    ltotal = -1
    whole: Any = None
    rsize = i2 = i4 = i8 = ix = 0
    for i in range(count):
        # fast path: the record has the layout of the previous one (usual in a frame):
        # one unpack of the whole record, verified by its own count fields
        if whole is not None and pos + rsize <= end:
            t = whole(buf, pos)
            if (t[10], t[i2], t[i4], t[i8]) == layout and t[ix] == 0 and t[9] == ltotal:
                hadd(t[:11])
                f1.extend(t[11:i2])
                f2.extend(t[i2 + 1:i4])
                f4.extend(t[i4 + 1:i8])
                f8.extend(t[i8 + 1:ix])
                cadd(clayout)
                pos += rsize
                continue
        if pos + 30 > end:
            raise FrameError(f"record {i} truncated (header runs past the frame end)")
        h = hu(buf, pos)
        n1 = h[10]
        p1 = pos + 30
        if p1 + 3 * n1 + 2 > end:
            raise FrameError(f"record {i}: 1-byte IO group runs past the frame end")
        f1.extend((G1[n1] if n1 < len(G1) else _g8e(0, n1))(buf, p1))
        n2 = f1.pop()
        p2 = p1 + 3 * n1 + 2
        if p2 + 4 * n2 + 2 > end:
            raise FrameError(f"record {i}: 2-byte IO group runs past the frame end")
        f2.extend((G2[n2] if n2 < len(G2) else _g8e(1, n2))(buf, p2))
        n4 = f2.pop()
        p4 = p2 + 4 * n2 + 2
        if p4 + 6 * n4 + 2 > end:
            raise FrameError(f"record {i}: 4-byte IO group runs past the frame end")
        f4.extend((G4[n4] if n4 < len(G4) else _g8e(2, n4))(buf, p4))
        n8 = f4.pop()
        p8 = p4 + 6 * n4 + 2
        if p8 + 10 * n8 + 2 > end:
            raise FrameError(f"record {i}: 8-byte IO group runs past the frame end")
        f8.extend((G8[n8] if n8 < len(G8) else _g8e(3, n8))(buf, p8))
        nx = f8.pop()
        pos = p8 + 10 * n8 + 2
        for _ in range(nx):
            if pos + 4 > end:
                raise FrameError(f"record {i}: variable-length IO runs past the frame end")
            iid, ln = _HH.unpack_from(buf, pos)
            pos += 4
            if pos + ln > end:
                raise FrameError(f"record {i}: variable-length IO {iid} of {ln} bytes runs "
                                 "past the frame end")
            nx_items.append((i, iid, bytes(buf[pos: pos + ln])))
            pos += ln
        total = n1 + n2 + n4 + n8
        if total != h[9] and total + nx != h[9]:
            raise FrameError(f"record {i}: total IO count {h[9]} but {total + nx} elements present")
        hadd(h)
        cadd((n1, n2, n4, n8, nx, 0))
        if nx == 0 and (n1, n2, n4, n8) != layout and n1 + n2 + n4 + n8 <= 64:
            layout = (n1, n2, n4, n8)
            clayout = (n1, n2, n4, n8, 0, 0)
            ltotal = n1 + n2 + n4 + n8
            whole = _whole_8e(layout)
            rsize = 30 + 3 * n1 + 2 + 4 * n2 + 2 + 6 * n4 + 2 + 10 * n8 + 2
            i2 = 11 + 2 * n1
            i4 = i2 + 1 + 2 * n2
            i8 = i4 + 1 + 2 * n4
            ix = i8 + 1 + 2 * n8
    base = out.n_records
    out.hdr.extend(hdr)
    out.io_counts.extend(counts)
    out.io_flat[1].extend(f1)
    out.io_flat[2].extend(f2)
    out.io_flat[4].extend(f4)
    out.io_flat[8].extend(f8)
    out.io_bytes.extend((base + r, iid, b) for r, iid, b in nx_items)
    return pos


def _parse_gh3000(buf: bytes, pos: int, end: int, count: int, out: Decoded) -> int:
    """Parse ``count`` codec-7 (GH3000) records (layout per traccar's decoder)."""
    staged: list[tuple[tuple[int, ...], dict[str, float | None], tuple[int, ...], list[list[int]]]] = []

    i = 0

    def need(k: int, what: str) -> None:
        if pos + k > end:
            raise FrameError(f"codec 7 record {i}: {what} runs past the frame end")

    for i in range(count):  # noqa: B007 (read by need())
        need(5, "time and mask")
        raw = _U32.unpack_from(buf, pos)[0]
        gmask = buf[pos + 4]
        pos += 5
        t_ms = (GH_EPOCH_S + (raw & 0x3FFFFFFF)) * 1000
        pri = raw >> 30
        info: dict[str, float | None] = {"located": 0.0, "lat": None, "lon": None, "alt": None,
                                         "angle": None, "speed": None, "sats": None}
        if gmask & 1:
            info["located"] = 1.0
            need(1, "location mask")
            lmask = buf[pos]
            pos += 1
            if lmask & 1:
                need(8, "coordinates")
                lat, lon = struct.unpack_from(">ff", buf, pos)
                info["lat"], info["lon"] = float(lat), float(lon)
                pos += 8
            if lmask & 2:
                need(2, "altitude")
                info["alt"] = float(_U16.unpack_from(buf, pos)[0])
                pos += 2
            if lmask & 4:
                need(1, "angle")
                info["angle"] = buf[pos] * 360.0 / 256
                pos += 1
            if lmask & 8:
                need(1, "speed")
                info["speed"] = float(buf[pos])
                pos += 1
            if lmask & 16:
                need(1, "satellites")
                info["sats"] = float(buf[pos])
                pos += 1
            if lmask & 32:
                need(4, "cell")
                info["lac"], info["cell_id"] = (float(x) for x in _HH.unpack_from(buf, pos))
                pos += 4
            if lmask & 64:
                need(1, "signal")
                info["signal"] = float(buf[pos])
                pos += 1
            if lmask & 128:
                need(4, "operator")
                info["operator"] = float(_U32.unpack_from(buf, pos)[0])
                pos += 4
        flats: list[list[int]] = [[], [], [], []]
        ns = [0, 0, 0, 0, 0, 0]
        for wi, (fmt, width) in enumerate(_VAL_FMT[:3]):
            if gmask & (2 << wi):
                need(1, "IO count")
                n = buf[pos]
                pos += 1
                need(n * (1 + width), f"{width}-byte IO group")
                g = struct.unpack_from(">" + ("B" + fmt) * n, buf, pos)
                pos += n * (1 + width)
                flats[wi].extend(g)
                ns[wi] = n
        hg: tuple[int, ...] = (t_ms, pri, 0, 0, 0, 0, 0, 0, 0, sum(ns), ns[0])
        staged.append((hg, info, tuple(ns), flats))
    for h, info, ns_t, flats in staged:
        r = out.n_records
        out.hdr.extend(h)
        out.gh[r] = info
        out.io_counts.extend(ns_t)
        for wi, w in enumerate((1, 2, 4, 8)):
            out.io_flat[w].extend(flats[wi])
    return pos


def _printable(b: bytes) -> bool:
    return all(32 <= c < 127 or c in (9, 10, 13) for c in b)


def _command_text(codec: int, buf: bytes, pos: int, end: int) -> tuple[int, str]:
    """Decode one codec 12/13/14/15 item from ``pos``; return (type, text)."""
    if pos + 5 > end:
        raise FrameError("command frame truncated before its size field")
    ctype = buf[pos]
    size = _U32.unpack_from(buf, pos + 1)[0]
    pos += 5
    if pos + size > end:
        raise FrameError(f"command payload of {size} bytes runs past the frame end")
    payload = bytes(buf[pos: pos + size])
    prefix = ""
    if codec in (0x0D, 0x0F) and len(payload) >= 4:
        prefix = f"time={_U32.unpack_from(payload, 0)[0]} "
        payload = payload[4:]
    if codec in (0x0E, 0x0F) and len(payload) >= 8:
        prefix += f"imei={payload[:8].hex().lstrip('0')} "
        payload = payload[8:]
    if _printable(payload):
        text = payload.decode("ascii").strip()
    else:
        text = f"<{len(payload)} binary bytes> {payload[:48].hex()}{'...' if len(payload) > 48 else ''}"
    return ctype, prefix + text


def _decode_data(buf: bytes, pos: int, end: int, out: Decoded, loc: str, imei: str | None,
                 info: dict[str, Any]) -> None:
    """Decode a data part ``codec, N1, records, N2`` occupying ``buf[pos:end]`` exactly."""
    if end - pos < 3:
        raise FrameError(f"data part of {end - pos} bytes is too short (codec, N1, N2)")
    codec, n1, n2 = buf[pos], buf[pos + 1], buf[end - 1]
    if codec not in KNOWN_CODECS:
        raise FrameError(f"unknown codec id 0x{codec:02X}")
    if n1 != n2:
        raise FrameError(f"record counts disagree: N1={n1}, N2={n2}")
    if n1 == 0:
        raise FrameError("record count is 0")
    m = len(out.msg_loc)
    if codec in COMMAND_CODECS:
        p = pos + 2
        items = []
        for _ in range(n1):
            ctype, text = _command_text(codec, buf, p, end - 1)
            # the item's end: re-read its size
            p += 5 + _U32.unpack_from(buf, p + 1)[0]
            items.append((ctype, text))
        if p != end - 1:
            raise FrameError(f"command frame: {end - 1 - p} unexplained bytes before N2")
        for ctype, text in items:
            out.commands.append((loc, codec, ctype, text))
        return
    r0 = out.n_records
    try:
        if codec == CODEC_7:
            p = _parse_gh3000(buf, pos + 2, end - 1, n1, out)
        elif codec == CODEC_8E:
            p = _parse_8e_fast(buf, pos + 2, end - 1, n1, out)
        else:
            p = _parse_std(buf, pos + 2, end - 1, codec, n1, out)
        if p != end - 1:
            raise FrameError(f"{end - 1 - p} bytes left over after {n1} records")
    except FrameError as first:
        _truncate(out, r0)
        if codec != CODEC_8:
            raise
        # FMB firmwares with a 16-byte IO group (traccar's `extended`): try that layout
        try:
            p = _parse_std(buf, pos + 2, end - 1, codec, n1, out, ext16=True)
        except FrameError:
            p = -1
        if p != end - 1:
            _truncate(out, r0)
            raise first from None
        info = {**info, "layout": "codec8+16byte-group"}
    n = out.n_records - r0
    out.staged_msg.extend([m] * n)
    out.staged_pos.extend(range(n))
    out.msg_loc.append(loc)
    out.msg_imei.append(imei)
    out.msg_codec.append(codec)
    out.msg_info.append(info)


def _truncate(out: Decoded, r0: int) -> None:
    """Drop records staged from record ``r0`` on (after a failed parse; a message's records
    are all still staged: :meth:`Decoded.flush` runs between messages only)."""
    if out.n_records == r0:
        return
    loc = r0 - out.n_flushed
    counts = out.io_counts[loc * _NC:]
    for wi, w in enumerate((1, 2, 4, 8)):
        k = sum(counts[wi::_NC]) * 2
        if k:
            del out.io_flat[w][-k:]
    del out.hdr[loc * _NH:]
    del out.io_counts[loc * _NC:]
    out.io_bytes[:] = [x for x in out.io_bytes if x[0] < r0]
    for d in (out.gen, out.gh):
        for k2 in [k2 for k2 in d if k2 >= r0]:
            del d[k2]


# --- message classification -------------------------------------------------------------

_LOGIN_RE = re.compile(rb"\x00\x0f[0-9]{15}")


def _is_login(buf: bytes, p: int, end: int) -> bool:
    return end - p >= 17 and buf[p] == 0 and buf[p + 1] == 0x0F and buf[p + 2: p + 17].isdigit()


def _udp_header(buf: bytes, p: int, end: int) -> tuple[int, int, int, str, int] | None:
    """(length, packet id, avl packet id, imei, data start) if a UDP header starts at p."""
    if end - p < 8 or buf[p + 4] != 0x01:
        return None
    ln = _U16.unpack_from(buf, p)[0]
    il = _U16.unpack_from(buf, p + 6)[0]
    if not 1 <= il <= 20 or end - p < 8 + il:
        return None
    imei = buf[p + 8: p + 8 + il]
    if not imei.isdigit():
        return None
    return ln, _U16.unpack_from(buf, p + 2)[0], buf[p + 5], imei.decode("ascii"), p + 8 + il


def _tcp_plausible(buf: bytes, p: int, end: int) -> bool:
    if end - p < 12 or buf[p: p + 4] != b"\x00\x00\x00\x00":
        return False
    ln = _U32.unpack_from(buf, p + 4)[0]
    return 3 <= ln <= MAX_DATA_LEN and buf[p + 8] in KNOWN_CODECS and p + 12 + ln <= end


def _tcp_crc_ok(buf: bytes, p: int) -> bool:
    ln = _U32.unpack_from(buf, p + 4)[0]
    if p + 12 + ln > len(buf):
        return False
    return bool(crc16_ibm(buf[p + 8: p + 8 + ln]) == _U32.unpack_from(buf, p + 8 + ln)[0])


def _start_plausible(buf: bytes, p: int, end: int) -> bool:
    if p >= end:
        return True
    if _tcp_plausible(buf, p, end) or _is_login(buf, p, end):
        return True
    u = _udp_header(buf, p, end)
    return u is not None and p + 2 + u[0] <= end


def _resync(buf: bytes, p: int, end: int) -> int:
    """Offset of the next trustworthy message start after ``p`` (``end`` if none)."""
    q = p
    while q < end:
        z = buf.find(b"\x00\x00\x00\x00", q, end)
        lm = _LOGIN_RE.search(buf, q, end)
        cands = []
        if z >= 0:
            cands.append(z)
        if lm is not None:
            cands.append(lm.start())
            if lm.start() - 6 >= q:
                cands.append(lm.start() - 6)
        if not cands:
            return end
        c = min(cands)
        if _tcp_plausible(buf, c, end) and _tcp_crc_ok(buf, c):
            return c
        if _is_login(buf, c, end):
            return c
        u = _udp_header(buf, c, end)
        if u is not None and c + 2 + u[0] <= end and _start_plausible(buf, c + 2 + u[0], end):
            return c
        q = c + 1
    return end


def segment_binary(buf: bytes) -> list[tuple[str, int, int]]:
    """Split a raw capture into messages: (kind, start, end) with kind in
    ``tcp``, ``login``, ``udp``, ``junk``. A TCP frame whose declared length leads to
    something that is not a message start is treated as junk up to the next trustworthy
    start (a verified CRC, a login, a consistent UDP datagram).

    Parameters
    ----------
    buf
        The raw capture (bytes as received).

    Returns
    -------
    list of (str, int, int)
        ``(kind, start, end)`` byte ranges covering the whole buffer, in order; nothing
        is dropped (``junk`` ranges become rejects in the loader).

    Example
    -------
    >>> rec = Record(t_ms=1761512400000, lat=51.0, lon=3.87)
    >>> capture = encode_login("356307042441013") + encode_tcp_frame([rec]) + b"\\xde\\xad"
    >>> segment_binary(capture)
    [('login', 0, 17), ('tcp', 17, 70), ('junk', 70, 72)]
    """
    out: list[tuple[str, int, int]] = []
    n = len(buf)
    p = 0
    while p < n:
        if buf[p: p + 4] == b"\x00\x00\x00\x00" and n - p >= 12:
            ln = _U32.unpack_from(buf, p + 4)[0]
            e = p + 12 + ln
            if 3 <= ln <= MAX_DATA_LEN and e <= n and (_start_plausible(buf, e, n)
                                                        or _tcp_crc_ok(buf, p)):
                out.append(("tcp", p, e))
                p = e
                continue
        elif _is_login(buf, p, n):
            out.append(("login", p, p + 17))
            p += 17
            continue
        else:
            u = _udp_header(buf, p, n)
            if u is not None and u[0] >= 8 and p + 2 + u[0] <= n and _start_plausible(buf, p + 2 + u[0], n):
                out.append(("udp", p, p + 2 + u[0]))
                p += 2 + u[0]
                continue
        q = _resync(buf, p + 1, n)
        out.append(("junk", p, q))
        p = q
    return out


def _classify_line(b: bytes) -> str:
    if _is_login(b, 0, len(b)) and len(b) == 17:
        return "login"
    if b[:4] == b"\x00\x00\x00\x00":
        return "tcp"
    if _udp_header(b, 0, len(b)) is not None:
        return "udp"
    return "junk"


def decode_messages(buf: bytes, messages: Iterable[tuple[str, int, int, str]], *,
                    keep_damaged: bool = False) -> Decoded:
    """Decode messages ``(kind, start, end, locator)`` of ``buf`` into columns.

    TCP frames are CRC-checked in one vectorised pass first. Every message becomes either
    records, a command, a login, or one reject with a reason. Never raises on bad bytes.

    ``keep_damaged`` (default ``False``: such a frame is one reject): a TCP AVL frame that
    fails its CRC or declared-length check keeps the records that parse whole from its
    data part (as Traccar does, which checks neither); their message carries
    ``msg_info[m]["damaged"]`` = the failed check, and records the frame announced but
    that do not parse are one reject naming the frame (see :func:`_salvage`).

    Parameters
    ----------
    buf
        The capture (raw bytes, or the bytes of hex lines).
    messages
        ``(kind, start, end, locator)`` per message (kinds of :func:`segment_binary`).
    keep_damaged
        Keep the whole records of a frame that fails its CRC or length check.

    Returns
    -------
    Decoded
        Records in columns, with each message's locator, IMEI and codec, and the
        rejects, commands and logins met.

    Example
    -------
    >>> rec = Record(t_ms=1761512400000, lat=51.0, lon=3.87, speed_kmh=50)
    >>> capture = encode_login("356307042441013") + encode_tcp_frame([rec, rec])
    >>> msgs = [(k, s, e, f"offset {s}") for k, s, e in segment_binary(capture)]
    >>> d = decode_messages(capture, msgs)
    >>> d.n_records, d.msg_loc, d.msg_imei, d.rejects
    (2, ['offset 17'], ['356307042441013'], [])
    >>> frame = bytearray(encode_tcp_frame([rec]))
    >>> frame[20] ^= 0xFF  # one damaged byte: the frame is one reject
    >>> decode_messages(bytes(frame), [("tcp", 0, len(frame), "offset 0")]).rejects
    [('offset 0', 'CRC mismatch: stored 0x...')]
    """
    gc_was = gc.isenabled()
    gc.disable()  # millions of small tuples: the cyclic GC would rescan them again and again
    try:
        return _decode_messages(buf, list(messages), keep_damaged=keep_damaged)
    finally:
        if gc_was:
            gc.enable()


def _envelope_problems(buf: bytes, msgs: list[tuple[str, int, int, str]]) -> dict[int, str | None]:
    """Per TCP message index: None when envelope and CRC are sound, else the reason."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    problems: dict[int, str | None] = {}
    good_starts, good_lens, good_i, stored = [], [], [], []
    for i in [i for i, m in enumerate(msgs) if m[0] == "tcp"]:
        _, s, e, _loc = msgs[i]
        if e - s < 12:
            problems[i] = f"frame of {e - s} bytes is shorter than the 12-byte envelope"
            continue
        if buf[s: s + 4] != b"\x00\x00\x00\x00":
            problems[i] = f"bad preamble {buf[s:s + 4].hex()} (expected 00000000)"
            continue
        ln = _U32.unpack_from(buf, s + 4)[0]
        if s + 12 + ln != e:
            problems[i] = (f"declared data length {ln} but the frame holds {e - s - 12} data "
                           "bytes (truncated or padded)")
            continue
        if ln < 3:
            problems[i] = f"declared data length {ln} is too short"
            continue
        good_starts.append(s + 8)
        good_lens.append(ln)
        good_i.append(i)
        stored.append(_U32.unpack_from(buf, e - 4)[0])
    if good_i:
        small = np.asarray(good_lens) <= 4096
        st_a, ln_a = np.asarray(good_starts, dtype=np.int64), np.asarray(good_lens, dtype=np.int64)
        crcs = np.zeros(len(good_i), dtype=np.int64)
        crcs[small] = crc16_ibm_many(arr, st_a[small], ln_a[small])
        for big in np.flatnonzero(~small).tolist():
            crcs[big] = crc16_ibm(buf[good_starts[big]: good_starts[big] + good_lens[big]])
        for k, i in enumerate(good_i):
            problems[i] = None if int(crcs[k]) == stored[k] else (
                f"CRC mismatch: stored 0x{stored[k]:08X}, computed 0x{int(crcs[k]):04X}")
    return problems


def _salvage(buf: bytes, s: int, e: int, out: Decoded, loc: str, imei: str | None,
             why: str) -> None:
    """Keep the whole records of a damaged TCP AVL frame ``buf[s:e]`` (``why``: the failed
    check). Records are parsed one by one from the data part (which ends 4 bytes before
    ``e`` when the declared length is right, else at ``e``) until one does not parse or
    the announced count is reached. None whole: :class:`FrameError` (the frame is one
    reject). Fewer than announced: the kept records are produced and the rest is one
    reject naming the frame."""
    if e - s < 14 or buf[s: s + 4] != b"\x00\x00\x00\x00" or buf[s + 8] not in AVL_CODECS:
        raise FrameError(why)
    info: dict[str, Any] = {"transport": "tcp", "damaged": why}
    try:  # the length is right and only the CRC failed: the frame may parse whole
        if why.startswith("CRC mismatch"):
            _decode_data(buf, s + 8, e - 4, out, loc, imei, info)
            return
    except FrameError:
        pass
    codec, n1 = buf[s + 8], buf[s + 9]
    end = e - 4 if why.startswith("CRC mismatch") else e
    pos, r0, err = s + 10, out.n_records, "all announced records are whole"
    for k in range(n1):
        try:
            if codec == CODEC_7:
                pos = _parse_gh3000(buf, pos, end, 1, out)
            else:
                pos = _parse_std(buf, pos, end, codec, 1, out)
        except FrameError as exc:
            err = f"record {k}: {str(exc).removeprefix('record 0: ').removeprefix('codec 7 record 0: ')}"
            break
    n = out.n_records - r0
    if n == 0:
        raise FrameError(f"{why}; no whole record to keep ({err})")
    out.staged_msg.extend([len(out.msg_loc)] * n)
    out.staged_pos.extend(range(n))
    out.msg_loc.append(loc)
    out.msg_imei.append(imei)
    out.msg_codec.append(codec)
    out.msg_info.append(info)
    if n < n1:
        out.rejects.append((loc, f"{why}; records 0-{n - 1} of {n1} kept (flag damaged_frame), "
                                 f"records {n}-{n1 - 1} lost: {err}"))


def _decode_one(buf: bytes, kind: str, s: int, e: int, loc: str, imei: str | None,
                why: str | None, out: Decoded, keep_damaged: bool) -> None:
    """Decode message ``buf[s:e]`` of ``kind`` into ``out``; raise :class:`FrameError`."""
    if kind == "tcp":
        if why is not None:
            if not keep_damaged:
                raise FrameError(why)
            _salvage(buf, s, e, out, loc, imei, why)
            return
        _decode_data(buf, s + 8, e - 4, out, loc, imei, {"transport": "tcp"})
    elif kind == "udp":
        u = _udp_header(buf, s, e)
        if u is None:
            raise FrameError("not a UDP datagram header")
        ln, pid, avl_id, u_imei, ds = u
        if ln != e - s - 2:
            raise FrameError(f"UDP length field {ln} but the datagram has {e - s - 2} bytes "
                             "after it")
        _decode_data(buf, ds, e, out, loc, u_imei,
                     {"transport": "udp", "packet_id": pid, "avl_packet_id": avl_id})
    else:
        raise FrameError(f"{e - s} bytes are not a Teltonika message (no preamble, login "
                         "or UDP header); skipped to the next message")


def _decode_messages(buf: bytes, msgs: list[tuple[str, int, int, str]], *,
                     keep_damaged: bool = False) -> Decoded:
    out = Decoded()
    problems = _envelope_problems(buf, msgs)
    imei: str | None = None
    for i, (kind, s, e, loc) in enumerate(msgs):
        if kind == "login":
            imei = buf[s + 2: s + 17].decode("ascii")
            out.logins.append((loc, imei))
            continue
        try:
            _decode_one(buf, kind, s, e, loc, imei, problems.get(i), out, keep_damaged)
        except FrameError as exc:
            out.rejects.append((loc, str(exc)))
        except (struct.error, IndexError, ValueError) as exc:  # defensive: bounds are checked
            out.rejects.append((loc, f"malformed message: {exc}"))
        if len(out.hdr) >= FLUSH_RECORDS * _NH:
            out.flush()
    out.finish()
    return out


def hex_lines(text: str) -> tuple[bytes, list[tuple[str, int, int, str]], list[tuple[str, str]]]:
    """Parse hex text (one message per line, '#' comments, blank lines ignored).

    Returns (buffer of all lines' bytes, messages, rejects for lines that are not hex).
    Whitespace, ':' and '-' inside a line are ignored; an optional ``0x`` prefix is allowed.
    """
    chunks: list[bytes] = []
    msgs: list[tuple[str, int, int, str]] = []
    bad: list[tuple[str, str]] = []
    pos = 0
    for ln, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        h = re.sub(r"[\s:\-]", "", s)
        if h[:2].lower() == "0x":
            h = h[2:]
        try:
            b = bytes.fromhex(h)
        except ValueError:
            bad.append((f"line {ln}", "line is not hexadecimal text (odd length or non-hex "
                        "characters)"))
            continue
        if not b:
            continue
        msgs.append((_classify_line(b), pos, pos + len(b), f"line {ln}"))
        chunks.append(b)
        pos += len(b)
    return b"".join(chunks), msgs, bad


# --- encoder ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IoValue:
    """One IO element for the encoder: ``width`` 1, 2, 4, 8 or 0 for variable length."""

    io_id: int
    value: int | bytes
    width: int


@dataclass(frozen=True)
class Record:
    """One AVL record for the encoder (codec 8/8E/16)."""

    t_ms: int
    lat: float
    lon: float
    alt_m: int = 0
    angle: int = 0
    sats: int = 0
    speed_kmh: int = 0
    priority: int = 0
    event_io: int = 0
    io: Sequence[IoValue] = ()
    generation: int = 0


def encode_record(rec: Record, codec: int = CODEC_8E) -> bytes:
    """Encode one record in codec 8, 8E or 16.

    Parameters
    ----------
    rec
        The record (time in Unix ms, position in degrees, altitude m, speed km/h, IO).
    codec
        ``0x08``, ``0x8E`` (default) or ``0x10``; variable-length IO needs 8E
        (``ValueError`` otherwise).

    Returns
    -------
    bytes
        The record as it appears in a data part.

    Example
    -------
    >>> rec = Record(t_ms=1761512400000, lat=51.0, lon=3.87, alt_m=12, speed_kmh=50,
    ...              event_io=239, io=(IoValue(239, 1, 1),))
    >>> encode_record(rec, 0x08).hex()
    '0000019a2252248000024e83e01e65fb80000c0000000032ef0101ef01000000'
    >>> len(encode_record(rec))  # codec 8E: 2-byte ids and counts
    41
    """
    idf, cntf = _GROUP_FMT[codec]
    parts = [struct.pack(">QBiihHBH", rec.t_ms, rec.priority, round(rec.lon * 1e7),
                         round(rec.lat * 1e7), rec.alt_m, rec.angle, rec.sats, rec.speed_kmh)]
    if codec == CODEC_16:
        parts.append(struct.pack(">HBB", rec.event_io, rec.generation, len(rec.io)))
    else:
        parts.append(struct.pack(">" + idf * 2, rec.event_io, len(rec.io)))
    for fmt, width in _VAL_FMT:
        items = [x for x in rec.io if x.width == width]
        parts.append(struct.pack(">" + cntf, len(items)))
        for x in items:
            parts.append(struct.pack(">" + idf + fmt, x.io_id, x.value))
    if codec == CODEC_8E:
        items = [x for x in rec.io if x.width == 0]
        parts.append(struct.pack(">H", len(items)))
        for x in items:
            v = bytes(x.value) if isinstance(x.value, (bytes, bytearray)) else b""
            parts.append(struct.pack(">HH", x.io_id, len(v)) + v)
    elif any(x.width == 0 for x in rec.io):
        raise ValueError("variable-length IO needs codec 8E")
    return b"".join(parts)


def _data_part(codec: int, records: Sequence[Record]) -> bytes:
    return bytes([codec, len(records)]) + b"".join(encode_record(r, codec) for r in records) + \
        bytes([len(records)])


def encode_tcp_frame(records: Sequence[Record], codec: int = CODEC_8E) -> bytes:
    """A TCP frame: preamble, length, data part, CRC-16/IBM.

    Parameters
    ----------
    records
        The records of the frame.
    codec
        ``0x08``, ``0x8E`` (default) or ``0x10``.

    Returns
    -------
    bytes
        4 zero bytes, uint32 data length, the data part, the CRC in 4 bytes.

    Example
    -------
    >>> frame = encode_tcp_frame([Record(t_ms=1761512400000, lat=51.0, lon=3.87)])
    >>> frame[:8].hex(), crc16_ibm(frame[8:-4]) == int.from_bytes(frame[-4:], "big")
    ('0000000000000029', True)
    """
    data = _data_part(codec, records)
    return b"\x00\x00\x00\x00" + struct.pack(">I", len(data)) + data + struct.pack(">I", crc16_ibm(data))


def encode_udp(records: Sequence[Record], imei: str, *, codec: int = CODEC_8E,
               packet_id: int = 0xCAFE, avl_packet_id: int = 0) -> bytes:
    """A UDP datagram carrying ``records`` (no CRC).

    Parameters
    ----------
    records
        The records of the datagram.
    imei
        The device's IMEI (15 digits), written in the header.
    codec
        ``0x08``, ``0x8E`` (default) or ``0x10``.
    packet_id, avl_packet_id
        The UDP header's packet ids.

    Returns
    -------
    bytes
        uint16 length, packet id, type 0x01, AVL packet id, IMEI, data part.

    Example
    -------
    >>> udp = encode_udp([Record(t_ms=1761512400000, lat=51.0, lon=3.87)], "356307042441013")
    >>> int.from_bytes(udp[:2], "big") == len(udp) - 2, udp[8:23]
    (True, b'356307042441013')
    """
    body = struct.pack(">HBBH", packet_id, 0x01, avl_packet_id, len(imei)) + imei.encode("ascii") + \
        _data_part(codec, records)
    return struct.pack(">H", len(body)) + body


def encode_login(imei: str) -> bytes:
    """The IMEI login packet a device sends when its TCP session opens.

    Parameters
    ----------
    imei
        15 digits (else ``ValueError``).

    Returns
    -------
    bytes
        ``0x000F`` then the IMEI in ASCII.

    Example
    -------
    >>> encode_login("356307042441013")
    b'\\x00\\x0f356307042441013'
    """
    if len(imei) != 15 or not imei.isdigit():
        raise ValueError("an IMEI is 15 digits")
    return b"\x00\x0f" + imei.encode("ascii")


def encode_command_frame(text: str, *, codec: int = 0x0C, ctype: int = 0x05) -> bytes:
    """A codec 12 command (type 5) or response (type 6) frame carrying ASCII ``text``.

    Parameters
    ----------
    text
        The command or response text (ASCII).
    codec
        The command codec (default ``0x0C``, codec 12).
    ctype
        ``0x05`` command (default) or ``0x06`` response.

    Returns
    -------
    bytes
        A TCP frame (preamble, length, data, CRC-16/IBM).

    Example
    -------
    >>> encode_command_frame("getinfo").hex()
    '000000000000000f0c010500000007676574696e666f0100004312'
    """
    payload = text.encode("ascii")
    data = bytes([codec, 1, ctype]) + struct.pack(">I", len(payload)) + payload + b"\x01"
    return b"\x00\x00\x00\x00" + struct.pack(">I", len(data)) + data + struct.pack(">I", crc16_ibm(data))
