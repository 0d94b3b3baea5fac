"""Teltonika loader, step by step: decoded columns -> the loader's tables.

:func:`build_tables` turns :class:`~routetrace.loaders.teltonika_codec.Decoded` into the
``fixes``, ``events``, ``teltonika_io`` and ``teltonika_records`` tables in named steps,
each a function of arrays (no per-record Python loops over the bulk of the data):

1. :func:`record_columns`: one row per AVL record (time, position, masks: has a fix,
   0,0, out of range, from a damaged frame).
2. :func:`io_columns`: the long IO table (record, id, raw, width, bytes as hex), sorted.
3. :func:`map_columns`: the IO map entry of every element (per record profile: codec 7
   uses the GH3000 model), and the scaled, signed values (:func:`io_values`).
4. :func:`io_table`, :func:`fixes_table`, :func:`records_table`: the output tables;
   events come from :mod:`routetrace.loaders.teltonika_events`.

The rules a court reads (what a record becomes, the 0,0 rule, flags) are in the module
docstring of :mod:`routetrace.loaders.teltonika`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema, timebase
from ..memory import release_freed_memory
from . import teltonika_codec as tc
from . import teltonika_events as te
from .base import LoadContext, compact_json

__all__ = ["IoCols", "MapCols", "RecCols", "build_tables", "io_columns", "map_columns",
           "record_columns"]

#: Name of the extra table holding every IO element of every record.
IO_TABLE = "teltonika_io"
#: Name of the extra table holding every record's header.
RECORDS_TABLE = "teltonika_records"

_CODEC_NAME = np.array([tc.CODEC_NAMES.get(c, str(c)) for c in range(256)], dtype=object)


def arrow_strings(values: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """A pandas ``string`` array over Arrow strings (no Python string per element)."""
    out: pd.api.extensions.ExtensionArray = pd.StringDtype().__from_arrow__(values)
    return out


def record_locators(msg_loc: list[str], msg: np.ndarray, pos: np.ndarray) -> pd.Series:
    """``<message locator>/rec <i>`` of every record, joined in Arrow (a 1e6-record capture
    would otherwise build 1e6 Python strings twice)."""
    loc = pa.array(msg_loc, type=pa.large_string()).take(pa.array(msg))
    joined = pc.binary_join_element_wise(loc, pa.array(pos).cast(pa.large_string()),
                                          pa.scalar("/rec ", pa.large_string()))
    return pd.Series(arrow_strings(joined), dtype="string")


def shared_rows(values: pd.api.extensions.ExtensionArray,
                sel: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``values[sel]``, or ``values`` itself when ``sel`` selects every row: an Arrow-backed
    column is immutable (setting a value makes a new array), so the tables can share its
    buffers (the 1e6 record locators are then held once by ``rc.record``, the ``fixes``
    and the record dictionary, not three times).

    >>> a = pd.array(["a", "b"], dtype="string")
    >>> shared_rows(a, np.array([True, True])) is a, shared_rows(a, np.array([False, True])).tolist()
    (True, ['b'])
    """
    return values if bool(sel.all()) else values[sel]


def few_dictionary(values: np.ndarray) -> pd.Categorical:
    """A dictionary-encoded text column (categories of ``string`` dtype in lexical order,
    as :func:`routetrace.schema.as_dictionary` makes them) of an object array holding few
    distinct values (``None`` = missing): each distinct value is converted once; no text
    per row.

    Example
    -------
    >>> c = few_dictionary(np.array(["tcp", None, "udp", "tcp"], dtype=object))
    >>> c.tolist(), c.categories.tolist()
    (['tcp', <NA>, 'udp', 'tcp'], ['tcp', 'udp'])
    >>> few_dictionary(np.array([None], dtype=object)).tolist()
    [<NA>]
    """
    codes, uniq = pd.factorize(pd.Series(values, dtype="object"))
    order = np.argsort(np.asarray(uniq, dtype=str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    cats = pd.Index(np.asarray(uniq, dtype=object)[order], dtype="string")
    ranked = rank[np.maximum(codes, 0)] if len(rank) else np.zeros(len(codes), dtype=np.int64)
    return pd.Categorical.from_codes(np.where(codes >= 0, ranked, -1), dtype=pd.CategoricalDtype(cats))


@dataclass
class RecCols:
    """Per-record columns (index = record number in decoding order)."""

    n: int
    msg: np.ndarray
    codec: np.ndarray
    imei: np.ndarray
    subj: np.ndarray
    record: pd.Series
    t_ms: np.ndarray
    t_ok: np.ndarray
    t_ns: np.ndarray  # int64 ns, int64 min (NaT) where the time is not plausible
    lat: np.ndarray
    lon: np.ndarray
    alt: np.ndarray
    angle: np.ndarray
    sats: np.ndarray
    speed_kmh: np.ndarray
    priority: np.ndarray  # uint8
    event_io: np.ndarray  # uint16: the IO id that triggered the record (0: periodic)
    n_io: np.ndarray  # uint16: number of IO elements the header states
    gh_idx: np.ndarray
    zero: np.ndarray
    out_of_range: np.ndarray
    has_fix: np.ndarray
    damaged: np.ndarray
    flags: np.ndarray | None = None  # record_flags(self), computed once

    def utc(self, sel: Any) -> pd.Series:
        """tz-aware UTC times of the records ``sel`` (no per-element objects)."""
        return pd.Series(self.t_ns[sel].view("datetime64[ns]")).dt.tz_localize("UTC")

    @property
    def keep(self) -> np.ndarray:
        """Records that are produced (the others are rejects: implausible time)."""
        return self.t_ok


@dataclass
class IoCols:
    """The long IO table: one row per IO element, sorted by (record, id)."""

    rec: np.ndarray
    iid: np.ndarray  # uint16
    raw: np.ndarray
    w: np.ndarray  # width in bytes; < 0: variable-length value of -w bytes
    hexv: np.ndarray | None  # hex of variable-length values (None elsewhere)
    value: np.ndarray | None = None  # scaled value (NaN for bytes, unmapped: raw)
    ent: np.ndarray | None = None  # index into MapCols arrays (int16)

    @property
    def is_bytes(self) -> np.ndarray:
        """Rows holding variable-length (byte string) values."""
        out: np.ndarray = self.w < 0
        return out


@dataclass
class MapCols:
    """IO map entries of the distinct (profile, id) keys present, as parallel arrays."""

    ents: list[dict[str, Any] | None]
    names: np.ndarray
    units: np.ndarray
    scale: np.ndarray
    signed: np.ndarray
    step: np.ndarray
    kind: np.ndarray


# --- 1. records -------------------------------------------------------------------------------


def _subjects(ctx: LoadContext, imei: np.ndarray) -> np.ndarray:
    """Subject per record from IMEI (object array, None where unknown)."""
    mapping: Mapping[str, str] = ctx.options.get("subjects") or {}
    fallback = ctx.subject(None)
    out = np.empty(len(imei), dtype=object)
    for val in pd.unique(imei):
        sel = imei == val
        if val is not None and val in mapping:
            out[sel] = str(mapping[val])
        elif ctx.subject_id:
            out[sel] = ctx.subject_id
        elif val is not None:
            out[sel] = val
        else:
            out[sel] = fallback
    return out


def _apply_gh3000(d: tc.Decoded, cols: dict[str, np.ndarray], located: np.ndarray) -> None:
    """Codec-7 records: position fields from the decoded dicts (location is optional)."""
    for r, info in d.gh.items():
        located[r] = bool(info["located"]) and info["lat"] is not None
        cols["lat"][r] = np.nan if info["lat"] is None else info["lat"]
        cols["lon"][r] = np.nan if info["lon"] is None else info["lon"]
        for key, src in (("alt", "alt"), ("angle", "angle"), ("speed_kmh", "speed"),
                         ("sats", "sats")):
            v = info.get(src)
            cols[key][r] = np.nan if v is None else v


def record_columns(d: tc.Decoded, ctx: LoadContext) -> RecCols:
    """Step 1: per-record columns and masks (time plausible, fix, 0,0, out of range).

    Parameters
    ----------
    d
        The decoded capture. Its header matrix ``d.H`` (float64, 88 MB at 1e6 records) and
        ``d.rec_pos`` are taken over: each column is kept at its own width and both are
        emptied.
    ctx
        The load context (subjects: ``options["subjects"]``, ``subject_id``, the IMEI).

    Returns
    -------
    RecCols
        One entry per AVL record: locator, subject, time (ms and ns, ``t_ok`` = plausible),
        position, altitude (m), angle (deg), satellites, speed (km/h) and the masks
        ``zero``, ``out_of_range``, ``has_fix``, ``damaged``.

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> rc = record_columns(d, ctx)
    >>> rc.n, rc.record.tolist(), rc.subj.tolist(), rc.has_fix.tolist()
    (3, ['line 1/rec 0', 'line 1/rec 1', 'line 1/rec 2'], ['lorry', 'lorry', 'lorry'],
     [True, True, True])
    """
    n = d.n_records
    H = d.H
    msg = d.rec_msg
    pos = d.rec_pos
    imei = np.array(d.msg_imei, dtype=object)[msg]
    record = record_locators(d.msg_loc, msg, pos)
    t_ms = H[:, 0].copy()  # a copy: a view would keep the whole matrix alive
    lo = timebase.PLAUSIBLE[0].value // 1_000_000
    hi = timebase.PLAUSIBLE[1].value // 1_000_000
    t_ok = (t_ms >= lo) & (t_ms <= hi)
    t_ns = np.where(t_ok, t_ms, 0).astype(np.int64) * 1_000_000
    t_ns[~t_ok] = np.iinfo(np.int64).min  # NaT
    cols = {"lon": H[:, 2] / 1e7, "lat": H[:, 3] / 1e7, "alt": H[:, 4].copy(),
            "angle": H[:, 5].copy(), "sats": H[:, 6].copy(), "speed_kmh": H[:, 7].copy()}
    located = np.ones(n, dtype=bool)
    _apply_gh3000(d, cols, located)
    lat, lon = cols["lat"], cols["lon"]
    with np.errstate(invalid="ignore"):
        zero = located & (lat == 0) & (lon == 0)
        out_of_range = located & ~zero & ((np.abs(lat) > 90) | (np.abs(lon) > 180) |
                                          ~np.isfinite(lat) | ~np.isfinite(lon))
    damaged_msg = np.array([bool(i.get("damaged")) for i in d.msg_info], dtype=bool)
    priority, event_io, n_io = H[:, 1].astype(np.uint8), H[:, 8].astype(np.uint16), H[:, 9].astype(np.uint16)
    d.H, d.rec_pos = H[:0].copy(), pos[:0].copy()  # taken over (see above)
    del H, pos
    return RecCols(
        n=n, msg=msg, codec=np.asarray(d.msg_codec, dtype=np.int64)[msg], imei=imei,
        subj=_subjects(ctx, imei), record=record, t_ms=t_ms, t_ok=t_ok, t_ns=t_ns,
        lat=lat, lon=lon, alt=cols["alt"], angle=cols["angle"], sats=cols["sats"],
        speed_kmh=cols["speed_kmh"], priority=priority, event_io=event_io, n_io=n_io,
        gh_idx=np.fromiter(d.gh.keys(), dtype=np.int64, count=len(d.gh)),
        zero=zero, out_of_range=out_of_range, has_fix=located & ~zero & ~out_of_range & t_ok,
        damaged=damaged_msg[msg] if len(damaged_msg) else np.zeros(n, dtype=bool))


def time_rejects(rc: RecCols) -> list[tuple[str, str]]:
    """Records with an implausible time: (locator, reason)."""
    bad = ~rc.t_ok
    return [(r, "implausible record time (outside 1980-2100): " + str(int(v)) + " ms")
            for r, v in zip(rc.record[bad].tolist(), rc.t_ms[bad].tolist(), strict=True)]


def record_flags(rc: RecCols) -> np.ndarray:
    """Flags every row of a record carries: 0,0 / out of range position, damaged frame
    (computed once per :class:`RecCols`)."""
    if rc.flags is not None:
        return rc.flags
    rc.flags = _record_flags(rc)
    return rc.flags


def _record_flags(rc: RecCols) -> np.ndarray:
    """Object array of each record's flags: the label of each of the 6 possible masks
    combinations is built once and taken (no text built per record)."""
    code = rc.zero.astype(np.int8) + 2 * rc.out_of_range.astype(np.int8) + 4 * rc.damaged.astype(np.int8)
    combos = np.arange(8)
    base = pd.Series(np.where(combos & 1, "zero_position",
                              np.where(combos & 2, "inconsistent_value", "")), dtype="string")
    labels = schema.add_flag(base, (combos & 4) > 0, "damaged_frame").to_numpy(dtype=object)
    out: np.ndarray = labels[code]
    return out


# --- 2. IO elements ---------------------------------------------------------------------------


def _joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    out = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    parts.clear()
    return out


def _uniform_io(d: tc.Decoded, n: int, counts: np.ndarray) -> IoCols | None:
    """:func:`io_columns` when every record carries the same IO ids in the same wire order
    (the usual periodic capture; no byte-string values), else None: the sorted table is
    then a fixed permutation of each record's elements, written column by column (no
    concatenation, no sort of the ~10 rows per record).

    >>> from routetrace.testing import example_teltonika  # 3 records of one layout
    >>> d, _ = example_teltonika()
    >>> io = _uniform_io(d, d.n_records, d.counts)
    >>> io.rec[:6].tolist(), io.iid[:6].tolist()
    ([0, 0, 0, 0, 0, 1], [78, 182, 205, 206, 239, 78])
    """
    if d.io_bytes or n == 0 or not (counts == counts[0]).all():
        return None
    cols: list[tuple[int, int]] = []  # (width, column within its group), in wire order
    first: list[int] = []
    for wi, w in enumerate((1, 2, 4, 8)):
        k = int(counts[0, wi])
        if not k:
            continue
        ids = d.io_id[w].reshape(n, k)
        if not (ids == ids[0]).all():
            return None
        cols += [(w, c) for c in range(k)]
        first += ids[0].tolist()
    # within a record: by id, ties in wire order of the groups (what the stable sort gives)
    perm = np.argsort(np.array(first, dtype=np.int64), kind="stable")
    m = len(cols)
    raw = np.empty((n, m), dtype=np.int64)
    for j, c in enumerate(perm.tolist()):
        w, col = cols[c]
        raw[:, j] = d.io_raw[w].reshape(n, -1)[:, col]
    widths = np.array([cols[c][0] for c in perm.tolist()], dtype=np.int32)
    d.io_id.clear()
    d.io_raw.clear()
    return IoCols(rec=np.repeat(np.arange(n, dtype=np.int32), m),
                  iid=np.tile(np.array(first, dtype=np.uint16)[perm], n),
                  raw=raw.reshape(-1), w=np.tile(widths, n), hexv=None)


def io_columns(d: tc.Decoded, n: int) -> IoCols:
    """Step 2: the long IO table, ~10 rows per record: compact dtypes (int32 row and width,
    uint16 id, the dtype ``teltonika_io.io_id`` shares) and no copies that are not needed
    (memory of 1e6-record captures).

    Parameters
    ----------
    d
        The decoded capture (after :func:`record_columns`); its IO columns and counts are
        taken over (removed from ``d``).
    n
        Number of AVL records.

    Returns
    -------
    IoCols
        One row per IO element, sorted by (record, id): ``rec``, ``iid``, ``raw``, ``w``
        (width in bytes, negative for a byte string) and ``hexv``.

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> rc = record_columns(d, ctx)
    >>> io = io_columns(d, rc.n)
    >>> len(io.rec), io.iid[:5].tolist(), io.raw[:5].tolist(), io.w[:5].tolist()
    (15, [78, 182, 205, 206, 239], [0, 12, 1234, 3001, 0], [8, 2, 4, 2, 1])
    """
    counts = d.counts
    d.counts = counts[:0].copy()  # taken over (48 MB at 1e6 records): freed when done here
    uniform = _uniform_io(d, n, counts)
    if uniform is not None:
        return uniform
    rec_parts, id_parts, raw_parts, width_parts = [], [], [], []
    for wi, w in enumerate((1, 2, 4, 8)):
        ids = d.io_id.pop(w, None)
        if ids is None or not len(ids):
            continue
        rec_parts.append(np.repeat(np.arange(n, dtype=np.int32), counts[:, wi]))
        id_parts.append(ids.astype(np.uint16))  # ids are 1 or 2 bytes on the wire
        raw_parts.append(d.io_raw.pop(w))
        width_parts.append(np.full(len(ids), w, dtype=np.int32))
        del ids
    io_hex: np.ndarray | None = None
    if d.io_bytes:
        rec_parts.append(np.array([x[0] for x in d.io_bytes], dtype=np.int32))
        id_parts.append(np.array([x[1] for x in d.io_bytes], dtype=np.uint16))
        raw_parts.append(np.zeros(len(d.io_bytes), dtype=np.int64))
        width_parts.append(-np.array([len(x[2]) for x in d.io_bytes], dtype=np.int32))  # < 0: bytes
        io_hex = np.full(sum(len(a) for a in rec_parts), None, dtype=object)
        io_hex[-len(d.io_bytes):] = [x[2].hex() for x in d.io_bytes]
    del counts
    io_rec, io_id = _joined(rec_parts, np.int32), _joined(id_parts, np.uint16)
    io_raw, io_w = _joined(raw_parts, np.int64), _joined(width_parts, np.int32)
    # sorted by (record, id) in one stable sort of one int64 key (the width groups are
    # runs already sorted by record: less work than a lexsort of two keys)
    key = io_rec.astype(np.int64)
    key <<= 16
    key += io_id
    order = np.argsort(key, kind="stable")
    del key
    io_rec, io_id, io_raw, io_w = (a[order] for a in (io_rec, io_id, io_raw, io_w))
    if io_hex is not None:
        io_hex = io_hex[order]
    return IoCols(rec=io_rec, iid=io_id, raw=io_raw, w=io_w, hexv=io_hex)


# --- 3. IO map ----------------------------------------------------------------------------------


def _distinct_small(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for small non-negative integer keys, by a
    lookup table (linear time; the sort of 1e7 IO rows took seconds)."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int16)
    present = np.bincount(keys) > 0
    ukeys = np.flatnonzero(present)
    small = np.int16 if len(ukeys) < 32_768 else np.int32  # an IO map has a few hundred ids
    lut = np.zeros(len(present), dtype=small)
    lut[ukeys] = np.arange(len(ukeys), dtype=small)
    return ukeys, lut[keys]


def map_columns(profs: list[dict[str, Any]], prof_of_rec: np.ndarray, io: IoCols) -> MapCols:
    """Step 3a: the map entry of every element (vectorised: one lookup per distinct key);
    sets ``io.ent``.

    Parameters
    ----------
    profs
        The IO map profiles in use (:func:`routetrace.loaders.teltonika.load_io_map`).
    prof_of_rec
        The profile index of each record (codec 7 records use the GH3000 profile).
    io
        The long IO table (:func:`io_columns`); ``io.ent`` is set.

    Returns
    -------
    MapCols
        Per distinct (profile, id) key: the map entry, name, unit, scale, signedness,
        event step and event kind (``None`` where the map does not know the id).

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> rc = record_columns(d, ctx)
    >>> io = io_columns(d, rc.n)
    >>> mp = map_columns([load_io_map()], np.zeros(rc.n, dtype=np.int64), io)
    >>> mp.names.tolist(), mp.scale.tolist(), io.ent[:5].tolist()
    (['ibutton_id', 'gnss_hdop', 'gsm_cell_id', 'gsm_area_code', 'ignition'],
     [1.0, 0.1, 1.0, 1.0, 1.0], [0, 1, 2, 3, 4])
    """
    if len(prof_of_rec) and (prof_of_rec == prof_of_rec[0]).all():  # one profile: no gather
        lkey = io.iid if prof_of_rec[0] == 0 else io.iid.astype(np.int64) + int(prof_of_rec[0]) * 65536
    else:
        lkey = prof_of_rec[io.rec] * 65536 + io.iid
    lut: dict[int, dict[str, Any]] = {}
    for pi, p in enumerate(profs):
        for iid, e in p["io"].items():
            lut[pi * 65536 + iid] = e
    ukeys, io.ent = _distinct_small(lkey)
    ents = [lut.get(int(k)) for k in ukeys]
    return MapCols(
        ents=ents,
        names=np.array([e.get("name") if e else None for e in ents], dtype=object),
        units=np.array([e.get("unit") if e else None for e in ents], dtype=object),
        scale=np.array([float(e.get("scale", 1)) if e else np.nan for e in ents]),
        signed=np.array([bool(e.get("signed")) if e else False for e in ents]),
        step=np.array([float(e["step"]) if e and e.get("step") else np.nan for e in ents]),
        kind=np.array([e.get("kind") if e and e.get("emit", "change") == "change" else None
                       for e in ents], dtype=object))


def signed_raw(raw: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Two's complement of unsigned ``raw`` values at ``width`` bytes (1, 2 or 4), as float.

    >>> signed_raw(np.array([65509, 29]), np.array([2, 2])).tolist()
    [-27.0, 29.0]
    """
    nbits = (8 * width).astype(np.int64)
    out: np.ndarray = np.where(raw >= (1 << (nbits - 1)), raw - (1 << nbits), raw).astype(np.float64)
    return out


def io_values(io: IoCols, mp: MapCols) -> None:
    """Step 3b: ``io.value`` = raw (two's complement where the map says signed) x scale;
    NaN for byte strings and for ids the map does not know."""
    assert io.ent is not None
    value = io.raw.astype(np.float64)
    is_bytes = io.is_bytes
    sgn = mp.signed[io.ent] & ~is_bytes & (io.w < 8)
    if sgn.any():
        value[sgn] = signed_raw(io.raw[sgn], io.w[sgn])
    _scale(value, mp.scale, io.ent)
    value[is_bytes] = np.nan
    io.value = value


def _scale(value: np.ndarray, scale: np.ndarray, ent: np.ndarray) -> None:
    """``value *= scale[ent]`` in place; when few entries have a scale other than 1 (NaN:
    an id the map does not know), only their rows are multiplied (x 1 changes nothing), with
    no full-length array of scales.

    >>> v = np.array([1.0, 2.0, 3.0])
    >>> _scale(v, np.array([1.0, 0.1, np.nan]), np.array([0, 1, 2]))
    >>> v.tolist()
    [1.0, 0.2, nan]
    """
    special = np.flatnonzero(scale != 1.0)
    if len(special) > 8:
        value *= scale[ent]
        return
    for e in special.tolist():
        rows = np.flatnonzero(ent == e)
        value[rows] *= scale[e]


def keep_io(io: IoCols, keep_rec: np.ndarray) -> IoCols:
    """IO of rejected records is not kept (filter once, in place of all)."""
    if keep_rec.all():
        return io
    k = keep_rec[io.rec]
    return IoCols(rec=io.rec[k], iid=io.iid[k], raw=io.raw[k], w=io.w[k],
                  hexv=None if io.hexv is None else io.hexv[k],
                  value=None if io.value is None else io.value[k],
                  ent=None if io.ent is None else io.ent[k])


# --- 4. tables ----------------------------------------------------------------------------------


def _cat(values_u: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    """Categorical of per-entry labels ``values_u`` taken at ``codes`` (no object arrays;
    int16 codes: an IO map has far fewer than 32,768 distinct labels)."""
    lab, uniq = pd.factorize(pd.Series(values_u, dtype="object"))
    small = lab.astype(np.int16 if len(uniq) < 32_000 else np.int32)
    return pd.Categorical.from_codes(small[codes], categories=pd.Index(uniq, dtype="object"))


def record_ordinals(rec: np.ndarray, keep_rec: np.ndarray) -> np.ndarray:
    """Row of each record in ``teltonika_records`` (which holds the kept records only, in
    decoding order), as int32, for records numbered in decoding order.

    >>> record_ordinals(np.array([0, 2, 2, 3]), np.array([True, False, True, True])).tolist()
    [0, 1, 1, 2]
    """
    if keep_rec.all():
        return rec.astype(np.int32, copy=False)
    ordinal = np.cumsum(keep_rec, dtype=np.int32) - 1
    out: np.ndarray = ordinal[rec]
    return out


def record_dictionary(rc: RecCols) -> pd.CategoricalDtype:
    """The locators of the produced records, in decoding order, as one dictionary shared by
    the ``record`` columns of ``teltonika_records`` and ``teltonika_io`` (held once; the
    count rule counts their codes instead of hashing 1e7 texts).

    pandas checks that categories are unique with a hash table of Python strings, which it
    then keeps on the categories (~115 MB at 1e6 records). The locators are unique by
    construction and nothing looks one up in that table (codes are built by position), so
    it is dropped; if pandas ever stops caching it there, nothing changes but the memory.

    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> rd = record_dictionary(record_columns(d, ctx))
    >>> rd.categories.tolist(), "_engine" in getattr(rd.categories, "_cache", {})
    (['line 1/rec 0', 'line 1/rec 1', 'line 1/rec 2'], False)
    """
    dtype = pd.CategoricalDtype(pd.Index(shared_rows(rc.record.array, rc.keep)))
    getattr(dtype.categories, "_cache", {}).pop("_engine", None)
    return dtype


def io_table(io: IoCols, mp: MapCols, rc: RecCols, source_id: str,
             records: pd.CategoricalDtype) -> pd.DataFrame:
    """``teltonika_io``: one row per IO element of a produced record, lean (the table has
    ~10x the rows of the records): ``record`` is a categorical whose categories are the
    locators of ``teltonika_records`` in its row order (``records``, see
    :func:`record_dictionary`), so its int32 code is the row of the record there (time,
    subject, IMEI, position: join through it; no time or subject per IO row);
    ``source_id``, ``name``, ``unit``, ``hex`` dictionary-encoded; ``io_id`` and ``width``
    uint16; ``raw`` Int64 (missing for byte strings, whose bytes are in ``hex``)."""
    assert io.ent is not None and io.value is not None
    m_io = len(io.rec)
    is_bytes = io.is_bytes
    return pd.DataFrame({
        "source_id": pd.Categorical.from_codes(np.zeros(m_io, dtype=np.int8), categories=[source_id]),
        "record": pd.Categorical.from_codes(record_ordinals(io.rec, rc.keep),
                                            dtype=records),
        "io_id": io.iid,
        "name": _cat(mp.names, io.ent),
        "width": np.abs(io.w).astype(np.uint16),
        "raw": pd.arrays.IntegerArray(np.where(is_bytes, 0, io.raw) if is_bytes.any() else io.raw,
                                      is_bytes),
        "value": io.value,
        "unit": _cat(mp.units, io.ent),
        "hex": _hex_column(io.hexv, m_io),
    }, copy=False)  # no consolidation copy of the ~1e7-row columns


def _hex_column(hexv: np.ndarray | None, m_io: int) -> pd.Categorical:
    """The ``hex`` column, dictionary-encoded: byte-string values are few and mostly
    repeated (beacon ids), the other rows missing (1 byte per row, not an offset each).

    >>> _hex_column(None, 2).isna().tolist(), _hex_column(np.array([None, "ab"]), 2).tolist()
    ([True, True], [nan, 'ab'])
    """
    if hexv is None:
        return pd.Categorical.from_codes(np.full(m_io, -1, dtype=np.int8),
                                         categories=pd.Index([], dtype="object"))
    return pd.Categorical(hexv)


def _special_fixes(d: tc.Decoded, rc: RecCols, fix_idx: np.ndarray, special: set[int]) -> np.ndarray:
    """Positions (into ``fix_idx``) of the fixes whose ``extra`` holds more than the common
    keys: records in ``special`` or of a message with a layout or sent over UDP."""
    by_msg = np.array([bool(i.get("layout") or i.get("transport") == "udp") for i in d.msg_info],
                      dtype=bool)
    out = by_msg[rc.msg[fix_idx]] if len(by_msg) else np.zeros(len(fix_idx), dtype=bool)
    if special:
        out |= np.isin(fix_idx, np.fromiter(special, dtype=np.int64, count=len(special)))
    return np.flatnonzero(out)


def distinct_rows(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct rows of parallel columns (missing values are a value) and the
    first row of each code: per-row text that depends only on these columns is built once
    per distinct row and taken (a capture has few distinct headers, not 1e6).

    Parameters
    ----------
    cols
        Parallel columns (numeric or object arrays of one length).

    Returns
    -------
    tuple of numpy.ndarray
        The code of each row (numbered in order of first appearance) and the index of
        each code's first row.

    Example
    -------
    >>> codes, first = distinct_rows([np.array([8, 8, 7, 8]), np.array([1.0, np.nan, 1.0, 1.0])])
    >>> codes.tolist(), first.tolist()
    ([0, 1, 2, 0], [0, 1, 2])
    """
    n = len(cols[0]) if cols else 0
    codes = np.zeros(n, dtype=np.int64)
    for c in cols:  # combined column by column, refactorized: codes stay below n * n
        cc, uniq = pd.factorize(c, use_na_sentinel=False)
        codes = codes * max(len(uniq), 1) + cc
        codes, _ = pd.factorize(codes)
    # codes are numbered in order of first appearance: a row is a first one where its code
    # exceeds every code before it
    new_code = np.ones(n, dtype=bool)
    new_code[1:] = codes[1:] > np.maximum.accumulate(codes)[:-1]
    return codes.astype(np.int64), np.flatnonzero(new_code)


def _extra_common(rc: RecCols, fsel: np.ndarray) -> pd.Series:
    """The common ``extra`` JSON of the fixes ``fsel`` (codec, event IO, IMEI, priority,
    satellites): built per distinct header, then taken in Arrow."""
    fix_idx = np.flatnonzero(fsel)
    codes, first = distinct_rows([rc.codec[fix_idx], rc.event_io[fix_idx], rc.priority[fix_idx], rc.sats[fix_idx],
                                  rc.imei[fix_idx]])
    rep = fix_idx[first]
    ex = ('{"codec":"' + pd.Series(_CODEC_NAME[rc.codec[rep]], dtype="string") + '","event_io":'
          + pd.Series(rc.event_io[rep].astype(np.int64)).astype("string"))
    im = pd.Series(rc.imei[rep], dtype="string")
    ex = ex + (',"imei":"' + im + '"').fillna("")
    ex = ex + ',"priority":' + pd.Series(rc.priority[rep].astype(np.int64)).astype("string")
    sat_s = pd.Series(rc.sats[rep])
    ex = ex + (',"sats":' + sat_s.astype("Int64").astype("string")).fillna("") + "}"
    taken = pa.array(ex.array, type=pa.large_string()).take(pa.array(codes))
    return pd.Series(arrow_strings(taken), dtype="string")


def _fix_extra(d: tc.Decoded, rc: RecCols, fsel: np.ndarray,
               more: Mapping[int, dict[str, Any]] | None = None) -> pd.api.extensions.ExtensionArray:
    """The ``extra`` JSON of each fix: codec, event IO, IMEI, priority, satellites, and for
    special records (codec 16 generation, codec 7 cell, layout, UDP ids, ``more``) the rest.
    Arrow strings: a Python string is built only for the special records."""
    ex = _extra_common(rc, fsel)
    fix_idx = np.flatnonzero(fsel)
    more = more or {}
    special = _special_fixes(d, rc, fix_idx, set(d.gen) | set(d.gh) | set(more))
    if not len(special):
        return ex.array
    out = ex.iloc[special].to_numpy(dtype=object)
    for jj, j in enumerate(special.tolist()):
        r = int(fix_idx[j])
        info = d.msg_info[rc.msg[r]]
        extra_more = more.get(r, {})
        extra = json.loads(out[jj])
        if r in d.gen:
            extra["generation"] = d.gen[r]
        if r in d.gh:
            extra.update({k: v for k, v in d.gh[r].items()
                          if k in ("lac", "cell_id", "signal", "operator") and v is not None})
        for k in ("layout", "packet_id", "avl_packet_id"):
            if k in info:
                extra[k] = info[k]
        extra.update(extra_more)
        out[jj] = compact_json(extra)
    ex.iloc[special] = out
    return ex.array


def fixes_table(d: tc.Decoded, rc: RecCols, *, h_acc_m: np.ndarray | None = None,
                more: Mapping[int, dict[str, Any]] | None = None) -> pd.DataFrame:
    """``fixes``: records with a usable position (satellites = 0: flag ``no_fix``); the
    dictionary columns (subject, fix kind, flags) built in their dictionary form."""
    fsel = rc.has_fix
    flags = pd.Series(record_flags(rc)[fsel], dtype="string")  # never 0,0 / out of range
    with np.errstate(invalid="ignore"):
        flags = schema.add_flag(flags, rc.sats[fsel] == 0, "no_fix")
    out = pd.DataFrame({
        "record": shared_rows(rc.record.array, fsel),
        "subject_id": few_dictionary(rc.subj[fsel]),
        "t_utc": rc.utc(fsel).array,
        "lat": rc.lat[fsel], "lon": rc.lon[fsel], "alt_m": rc.alt[fsel],
        "speed_mps": rc.speed_kmh[fsel] / 3.6, "course_deg": rc.angle[fsel],
        "fix_kind": te.dictionary("gps", int(fsel.sum())),
        "flags": te.dictionary(flags.array, len(flags)), "extra": _fix_extra(d, rc, fsel, more),
    }, copy=False)
    if h_acc_m is not None:
        out.insert(6, "h_acc_m", h_acc_m[fsel])
    return out


def records_table(d: tc.Decoded, rc: RecCols, source_id: str,
                  records: pd.CategoricalDtype) -> pd.DataFrame:
    """``teltonika_records``: one row per produced record, the whole header as sent.
    ``record`` is the dictionary ``records`` (:func:`record_dictionary`) in its order; the
    repetitive texts (subject, IMEI, codec, transport, flags) are dictionary-encoded; the
    header's integers have the width the protocol gives them (priority, satellites,
    generation and AVL packet id one byte; event IO, IO count and UDP packet id two)."""
    k = rc.keep
    n = rc.n
    info = d.msg_info
    every = bool(k.all())

    def at(a: np.ndarray) -> np.ndarray:
        """``a`` at the produced records: ``rc``'s own array when that is all of them (no
        copy: :func:`build_tables` drops ``rc`` once this table is built)."""
        return a if every else a[k]

    def per_msg(key: str, dtype: str) -> pd.api.extensions.ExtensionArray:
        """A per-message value at each produced record (converted per message, then taken)."""
        out: pd.api.extensions.ExtensionArray = pd.array(
            [i.get(key) for i in info], dtype=dtype).take(rc.msg[k])
        return out
    gen = np.zeros(n, dtype=np.int64)
    gen_missing = np.ones(n, dtype=bool)
    if d.gen:
        rows = np.fromiter(d.gen.keys(), dtype=np.int64, count=len(d.gen))
        gen[rows] = np.fromiter(d.gen.values(), dtype=np.int64, count=len(d.gen))
        gen_missing[rows] = False
    return pd.DataFrame({
        "source_id": pd.Categorical.from_codes(np.zeros(int(k.sum()), dtype=np.int8),
                                               categories=[source_id]),
        "record": pd.Categorical.from_codes(np.arange(len(records.categories), dtype=np.int32),
                                            dtype=records),
        "subject_id": few_dictionary(rc.subj[k]),
        "imei": few_dictionary(rc.imei[k]),
        "t_utc": rc.utc(k).array,
        "codec": few_dictionary(_CODEC_NAME[rc.codec[k]]),
        "priority": pd.array(rc.priority[k], dtype="UInt8"),
        "lat": at(rc.lat), "lon": at(rc.lon), "alt_m": at(rc.alt), "angle_deg": at(rc.angle),
        "satellites": pd.array(rc.sats[k], dtype="UInt8"),
        "speed_kmh": at(rc.speed_kmh),
        "event_io": pd.array(rc.event_io[k], dtype="UInt16"),
        "n_io": pd.array(rc.n_io[k], dtype="UInt16"),
        "generation": pd.arrays.IntegerArray(gen[k].astype(np.uint8), gen_missing[k]),
        "transport": few_dictionary(np.array([i.get("transport") for i in info], dtype=object)[rc.msg[k]]),
        "udp_packet_id": per_msg("packet_id", "UInt16"),
        "avl_packet_id": per_msg("avl_packet_id", "UInt8"),
        "has_fix": rc.has_fix[k],
        "flags": few_dictionary(record_flags(rc)[k]),
    }, copy=False)


def _codec7_cells(d: tc.Decoded, keep: np.ndarray) -> dict[str, np.ndarray]:
    """LAC, cell id and operator from the location block of produced (``keep``) codec-7
    records (0 where absent), for :func:`~.teltonika_events.cell_events`."""
    out = {k: np.zeros(len(keep), dtype=np.int64) for k in ("lac", "cell_id", "operator")}
    for r, info in d.gh.items():
        if keep[r] and info.get("lac") is not None:
            out["lac"][r], out["cell_id"][r] = int(info["lac"] or 0), int(info["cell_id"] or 0)
            out["operator"][r] = int(info.get("operator") or 0)
    return out


def _more_events(d: tc.Decoded, io: IoCols, mp: MapCols, keep: np.ndarray,
                 ri: te.RecInfo) -> list[pd.DataFrame]:
    """Alarm, identifier and serving-cell events (see :mod:`.teltonika_events`; ``t_utc``
    as int64 ns)."""
    frames = [te.alarm_events(io, mp.ents, ri), te.identifier_events(io, mp.ents, ri),
              te.cell_events(io, mp.ents, ri, _codec7_cells(d, keep) if d.gh else None)]
    return [f for f in frames if f is not None and len(f)]


def build_tables(d: tc.Decoded, ctx: LoadContext,
                 profiles: Callable[[RecCols], tuple[list[dict[str, Any]], np.ndarray]], *,
                 uere_m: float = 5.0) -> dict[str, Any]:
    """All tables of a decoded capture (steps 1-4); ``profiles(rc)`` gives the IO map
    profiles and the profile index of each record; ``uere_m`` turns HDOP into h_acc_m.

    Parameters
    ----------
    d
        The decoded capture (consumed: its lists are emptied as columns are built).
    ctx
        The load context (source identity, subjects).
    profiles
        ``profiles(rc) -> (profiles, profile index per record)``.
    uere_m
        Assumed user equivalent range error, metres: ``h_acc_m = HDOP x uere_m``.

    Returns
    -------
    dict
        ``fixes``, ``events``, ``teltonika_io``, ``teltonika_records`` (DataFrames) and
        ``_rejects``: ``(locator, reason)`` of records with an implausible time.

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> def profiles(rc):  # one profile (FMB) for every record
    ...     return [load_io_map()], np.zeros(rc.n, dtype=np.int64)
    >>> tables = build_tables(d, ctx, profiles)
    >>> tables["fixes"][["record", "t_utc", "h_acc_m"]]
             record                     t_utc  h_acc_m
    0  line 1/rec 0 2025-10-26 21:00:00+00:00      6.0
    1  line 1/rec 1 2025-10-26 21:01:00+00:00      6.0
    2  line 1/rec 2 2025-10-26 21:02:00+00:00      6.0
    >>> tables["events"][["record", "kind"]]
             record         kind
    0  line 1/rec 0     ignition
    1  line 1/rec 1     ignition
    2  line 1/rec 1  ignition_on
    3  line 1/rec 1    driver_id
    4  line 1/rec 2    driver_id
    5  line 1/rec 0   cell_tower
    6  line 1/rec 2   cell_tower
    >>> len(tables["teltonika_io"]), len(tables["teltonika_records"]), tables["_rejects"]
    (15, 3, [])
    """
    rc = record_columns(d, ctx)
    io = io_columns(d, rc.n)
    rejects = time_rejects(rc)
    profs, prof_of_rec = profiles(rc)
    mp = map_columns(profs, prof_of_rec, io)
    io_values(io, mp)
    io = keep_io(io, rc.keep)
    n_io = len(io.rec)  # the build's size: below routetrace.memory.MIN_ROWS no release
    records = record_dictionary(rc)
    tables: dict[str, Any] = {IO_TABLE: io_table(io, mp, rc, ctx.source_id, records)}
    h_acc_m = te.hdop_h_acc(io, mp.ents, rc.n, uere_m=uere_m)
    # the events first, while the other tables are not yet built (the peak of the load is
    # the events' rows and texts on top of the tables held at that moment)
    ri = te.RecInfo(t_ns=np.where(rc.t_ok, rc.t_ms, 0).astype(np.int64) * 1_000_000,
                    subj=rc.subj, record=rc.record.array, event_io=rc.event_io,
                    lat=np.where(rc.has_fix, rc.lat, np.nan), lon=np.where(rc.has_fix, rc.lon, np.nan),
                    flag=record_flags(rc))
    assert io.value is not None and io.ent is not None
    frames = te.io_event_frames(
        io_rec=io.rec, io_id=io.iid, io_raw=io.raw, io_value=io.value, io_ent=io.ent,
        kind_u=mp.kind, units_u=mp.units, names_u=mp.names, step_u=mp.step,
        io_bytes=io.is_bytes, t_ns=ri.t_ns, subj=ri.subj, record=ri.record,
        event_io=ri.event_io, prof_of_rec=prof_of_rec, profs=profs, rec_lat=ri.lat,
        rec_lon=ri.lon, rec_flag=ri.flag)
    frames += _more_events(d, io, mp, rc.keep, ri)
    del io, ri  # the long IO columns the IO table does not hold (~200 MB at 1e6 records)
    release_freed_memory(rows=n_io)  # and the events' intermediates: ~200 MB of freed pages
    ev = te.concat_events(frames) if frames else schema.empty("events")
    del frames
    release_freed_memory(rows=n_io)
    damaged = {int(r): {"frame_error": d.msg_info[rc.msg[r]]["damaged"]}
               for r in np.flatnonzero(rc.damaged)}
    tables["fixes"] = fixes_table(d, rc, more=damaged, h_acc_m=h_acc_m)
    tables[RECORDS_TABLE] = records_table(d, rc, ctx.source_id, records)
    del rc, h_acc_m  # the per-record columns (~100 MB at 1e6 records): the tables hold them
    release_freed_memory(rows=n_io)
    # no fix_id / event_id: derived from source_id and record on demand (schema.DERIVED_IDS)
    tables["events"] = ev
    tables["_rejects"] = rejects
    return tables
