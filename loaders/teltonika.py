"""Teltonika AVL tracker data (codec 8, 8E, 16, 7; TCP frames, UDP datagrams): fixes + events.

Input files
-----------
* **hex text**: one message per line as in server logs (TCP frame, UDP datagram or IMEI
  login); ``#`` lines are comments, not records; blank lines are ignored.
* **raw binary captures**: messages concatenated as received (login, then frames).

Both are sniffed (format name ``teltonika``): the first message must be a well-formed
Teltonika message, so CSV or other text is never claimed.

What a record becomes (the count rule: *records read = AVL records + rejected messages*)
------------------------------------------------------------------------------------------
* Each AVL record (codec 8/8E/16/7) with a plausible time is **produced**: one row in the
  extra table ``teltonika_records`` (the whole header as sent: time, position, altitude,
  angle, satellites, speed in km/h, priority, event IO id, codec, generation type, IMEI,
  UDP packet ids), one row per IO element in ``teltonika_io`` (id, name, raw, scaled
  value, unit; variable-length values as hex), a fix when it carries a usable position,
  and events.
* **0,0 rule**: a record at exactly 0,0 (the device's "no position") gives **no fix**;
  it is still produced (records and IO tables, events) and its record row and events
  carry the flag ``zero_position``, its events with lat/lon missing. The same holds for
  coordinates outside [-90, 90] x [-180, 180] (flag ``inconsistent_value``) and codec-7
  records without a location. Satellites = 0 (the position is the last known one)
  gives a fix flagged ``no_fix``.
* A record whose time is outside 1980-2100 is a reject (``.../rec i``).
* A **message** that fails (bad preamble, CRC-16 mismatch, declared length vs bytes,
  N1 != N2, unknown codec, records running past the end, junk bytes) is **one reject**
  with its locator (``line 12`` in hex text, ``offset 1234`` in binary captures) and
  decoding resumes with the next line / the next trustworthy message start (binary:
  next preamble whose CRC verifies, login or consistent UDP header).
* **Command frames** (codec 12/13/14/15: GPRS commands and responses, camera transfers)
  carry no position: each is a reject with reason ``command frame, no position: ...`` and
  the decoded text, so it is reported and never mistaken for a position.
* The IMEI login packet is not a record: it sets the subject of the frames that follow.

Record locators: ``line 12/rec 3`` (hex text) or ``offset 1234/rec 0`` (binary).

Subjects
--------
The subject of a record is, in order: ``options["subjects"][imei]`` (a mapping IMEI ->
name, e.g. ``{"356307042441013": "lorry 1-ABC-123"}``), the ``subject_id`` given by the
user, the IMEI (from the login packet before the frame, or the UDP header), else the file
name. The IMEI is always kept in the fix's ``extra``.

IO map and events
-----------------
``loaders/data/teltonika_io.json`` declares, per device model, what IO ids mean (name,
unit, scale, signedness, event kind, edge events). Options: ``io_map`` (path to a user
file of the same layout), ``model`` (default ``FMB``; codec-7 records use ``GH3000``),
``door_input`` (1-4, the digital input wired to the door sensor; default 2 as in the
FMB profile; 0 disables), ``door_open_value`` (raw value meaning open, default 1) and
any key of the model's ``derived`` thresholds.

Events (all with ``record`` provenance to the AVL record):

* value events (kind from the map, e.g. ``ignition``, ``din2``, ``fuel_level`` in %,
  ``fuel_volume`` in l, ``odometer`` in m, ``external_voltage`` in V, ``speed`` in km/h,
  ``gsm_signal``): emitted when a mapped value is first seen for the subject and whenever
  it changes; entries with a ``step`` (odometer 1000 m, speed 10 km/h, voltage 1 V) only
  when the value moves into another multiple of the step, so a moving lorry does not get
  an event per record (the full series is in ``teltonika_io``). Recorded by the device:
  no flag.
* derived events, flag ``derived``, computed per subject in time order (vectorised):
  ``ignition_on``/``ignition_off`` (IO 239 changes), ``door_open``/``door_close`` (the door
  input changes to/from the open value), ``refuel`` / ``fuel_drop`` (fuel level rises /
  falls by at least ``refuel_pct``/``fuel_drop_pct`` = 5 % of the tank, or 10 l for the
  litre series, between two consecutive readings: normal consumption between readings
  30 s - 1 h apart is far below that, a refuel or a drained tank is above it),
  ``odometer_jump`` (the total odometer advances more than 200 km/h x elapsed time + 1 km,
  or goes back more than 100 m, between consecutive readings; also flagged
  ``inconsistent_value``). An edge is never emitted for a subject's first reading (the
  state before it is unknown). Edge times are the time of the first record showing the
  new state (exact when the record was triggered by that IO: ``extra.triggered``).

Times: codec 8/8E/16 records carry Unix milliseconds UTC; codec 7 seconds since
2007-01-01 UTC (:data:`routetrace.timebase.TELTONIKA_GH_EPOCH`).

Why our own decoder
-------------------
Evaluated: ``codecs-protocol`` 1.0.2 (PyPI, the one published Python package for AVL
decoding): codec 8/8E over TCP only, no CRC check, no UDP, no codec 16/7, skips the
variable-length NX group without reading it (misparses any 8E record with NX values),
reads coordinates as unsigned (wrong west of Greenwich / south of the equator),
truncates times to whole seconds as local-format strings, and parses hex strings with
``int(s, 16)`` inside async functions (slow; see ``bench/ingest_teltonika.py``). GitHub
decoders (e.g. TeltonikaCodec8Decoder, Teltonika-Decoder) are unpublished, codec-8 only
or without CRC and resync. Forensic use needs every byte accounted for (rejects with
offsets, resync after corruption), so :mod:`routetrace.loaders.teltonika_codec` decodes
with precompiled ``struct`` layouts into columns, checks CRCs vectorised across frames
with numpy, and everything after decoding (events, edges, IO table) is vectorised.

Example
-------
>>> from routetrace.loaders import load
>>> res = load("lorry-1.bin", options={"door_input": 2})  # doctest: +SKIP
>>> res.events[res.events["kind"].isin(["door_open", "door_close"])]  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import schema, timebase
from ..errors import ParameterError
from . import teltonika_codec as tc
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["IO_TABLE", "RECORDS_TABLE", "load_io_map", "load_teltonika", "sniff_teltonika"]

#: Name of the extra table holding every IO element of every record.
IO_TABLE = "teltonika_io"
#: Name of the extra table holding every record's header (time, position as sent, priority,
#: satellites, event IO, codec, UDP ids), including records that give no fix.
RECORDS_TABLE = "teltonika_records"

_HEXCHARS = frozenset(b"0123456789abcdefABCDEF \t:-\r")


# --- sniffing -------------------------------------------------------------------------------


def _plausible_message(b: bytes) -> bool:
    if tc._is_login(b, 0, len(b)):
        return True
    if tc._tcp_plausible(b, 0, len(b)):
        return True
    u = tc._udp_header(b, 0, len(b))
    return u is not None and u[4] < len(b) and b[u[4]] in tc.AVL_CODECS


def _hex_head_lines(head: bytes) -> list[bytes] | None:
    """Non-comment lines of a hex-text head, or None if the head is not hex text."""
    lines = head.split(b"\n")
    if len(head) >= 65536 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut by the 64 KiB window
    out = []
    for raw in lines:
        s = raw.strip()
        if not s or s.startswith(b"#"):
            continue
        if not set(s) <= _HEXCHARS:
            return None
        out.append(s)
    return out


def sniff_teltonika(path: Path, head: bytes) -> bool:
    """A Teltonika capture: hex lines whose first message is a Teltonika message, or raw
    bytes starting with a TCP frame (plausible codec and length), a login or a UDP header."""
    lines = _hex_head_lines(head)
    if lines:
        h = lines[0].replace(b" ", b"").replace(b":", b"").replace(b"-", b"").replace(b"\t", b"")
        try:
            b = bytes.fromhex(h.decode("ascii"))
        except ValueError:
            return False
        if len(b) < 17:
            return False
        if tc._is_login(b, 0, len(b)) and len(b) == 17:
            return True
        return _plausible_message(b) and (b[:4] != b"\x00" * 4 or len(b) >= 12)
    if lines is not None:
        return False
    if len(head) < 17:
        return False
    if head[:4] == b"\x00\x00\x00\x00":
        ln = int.from_bytes(head[4:8], "big")
        return 3 <= ln <= tc.MAX_DATA_LEN and head[8] in tc.KNOWN_CODECS and head[9] > 0
    if tc._is_login(head, 0, len(head)):
        rest = head[17:]
        return not rest or rest[:4] == b"\x00\x00\x00\x00" or tc._is_login(rest, 0, len(rest))
    u = tc._udp_header(head, 0, len(head))
    return u is not None and u[0] >= 8 and u[4] + 1 < len(head) and head[u[4]] in tc.AVL_CODECS


# --- IO map ------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _read_map(path: str | None) -> dict[str, Any]:
    if path is None:
        text = resources.files("routetrace.loaders").joinpath("data/teltonika_io.json").read_text("utf-8")
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ParameterError(f"io_map {path!r} cannot be read: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"io_map {path or 'built-in'} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ParameterError(f"io_map {path or 'built-in'}: expected an object with 'models'")
    return data


def load_io_map(path: str | None = None, model: str | None = None) -> dict[str, Any]:
    """The resolved profile of ``model`` (``extends`` applied): door, derived, io by int id.

    Raises :class:`ParameterError` for an unknown model or a map whose event kinds collide.
    """
    data = _read_map(path)
    models = data["models"]
    name = model or data.get("default_model", "FMB")
    if name not in models:
        raise ParameterError(f"unknown Teltonika model {name!r} in the IO map; known: "
                             f"{', '.join(sorted(models))}")
    chain = []
    seen = set()
    cur: str | None = name
    while cur is not None:
        if cur in seen or cur not in models:
            raise ParameterError(f"IO map model {name!r}: bad 'extends' chain at {cur!r}")
        seen.add(cur)
        chain.append(models[cur])
        cur = models[cur].get("extends")
    prof: dict[str, Any] = {"door": {}, "derived": {}, "io": {}, "model": name}
    for m in reversed(chain):
        prof["door"].update(m.get("door", {}))
        prof["derived"].update(m.get("derived", {}))
        for k, v in m.get("io", {}).items():
            prof["io"][int(k)] = dict(v)
    kinds: dict[str, int] = {}
    for iid, e in prof["io"].items():
        for k in [e.get("kind"), *(e.get("edges") or {}).values()]:
            if k is None:
                continue
            if k in kinds and kinds[k] != iid:
                raise ParameterError(f"IO map model {name!r}: event kind {k!r} used by IO "
                                     f"{kinds[k]} and {iid}")
            kinds[k] = iid
    return prof


# --- the loader -------------------------------------------------------------------------------


def _profile(ctx: LoadContext, model: str | None) -> dict[str, Any]:
    opts = ctx.options
    prof = load_io_map(opts.get("io_map"), model)
    door = dict(prof["door"])
    if "door_input" in opts:
        door["input"] = opts["door_input"]
    if "door_open_value" in opts:
        door["open_value"] = opts["door_open_value"]
    if door.get("input") not in (None, 0, 1, 2, 3, 4):
        raise ParameterError(f"door_input must be 1-4 (or 0 for none), got {door.get('input')!r}")
    derived = dict(prof["derived"])
    for k in [*derived, "refuel_pct", "fuel_drop_pct", "refuel_l", "fuel_drop_l",
              "odometer_max_speed_kmh", "odometer_slack_m", "odometer_rollback_m"]:
        if k in opts:
            try:
                derived[k] = float(opts[k])
            except (TypeError, ValueError) as exc:
                raise ParameterError(f"option {k} must be a number, got {opts[k]!r}") from exc
    io = {k: dict(v) for k, v in prof["io"].items()}
    if door.get("input"):
        din = int(door["input"])
        e = io.setdefault(din, {"name": f"din{din}", "kind": f"din{din}", "unit": "", "scale": 1,
                                "emit": "change"})
        ov = int(door.get("open_value", 1))
        e["edges"] = {str(ov): "door_open", str(1 - ov): "door_close"}
        e["door"] = True
    return {"io": io, "door": door, "derived": derived, "model": prof["model"]}


def _read_messages(path: Path, ctx: LoadContext) -> tuple[bytes, list[tuple[str, int, int, str]],
                                                           list[tuple[str, str]], str]:
    raw = path.read_bytes()
    lines = _hex_head_lines(raw[: tc.MAX_DATA_LEN]) if raw[:1] not in (b"\x00",) else None
    if lines:
        buf, msgs, bad = tc.hex_lines(raw.decode("latin-1"))
        return buf, msgs, bad, "hex"
    segs = tc.segment_binary(raw)
    return raw, [(k, s, e, f"offset {s}") for k, s, e in segs], [], "binary"


@register(LoaderSpec(
    name="teltonika",
    description="Teltonika AVL (codec 8, 8E, 16, 7; TCP/UDP) as hex text or raw capture: "
                "fixes, IO events (ignition, doors, fuel, odometer), IO table",
    sniff=sniff_teltonika,
    produces=("fixes", "events"),
))
def load_teltonika(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a Teltonika capture. Options: see the module docstring."""
    buf, msgs, bad_lines, mode = _read_messages(path, ctx)
    d = tc.decode_messages(buf, msgs)
    rejects: list[tuple[str, str]] = list(bad_lines) + list(d.rejects)
    for loc, codec, ctype, text in d.commands:
        kind = {5: "command", 6: "response"}.get(ctype, f"type 0x{ctype:02X}")
        shown = text if len(text) <= 300 else text[:300] + "..."
        rejects.append((loc, f"command frame, no position: codec {tc.CODEC_NAMES[codec]} {kind}: "
                        f"{shown!r}"))
    n_rec = d.n_records
    records_read = n_rec + len(rejects)
    basis = ("Teltonika AVL record time: Unix milliseconds UTC (codec 8/8E/16); codec 7: "
             "seconds since 2007-01-01T00:00:00Z UTC (GH3000)")
    if n_rec == 0:
        return ctx.finish(records_read=records_read, time_basis=basis, rejects=rejects,
                          default_subject=_default_subject(ctx, d))
    gc_was = gc.isenabled()
    gc.disable()  # large object arrays: avoid repeated full collections while building
    try:
        tables = _build_tables(d, ctx, mode)
    finally:
        if gc_was:
            gc.enable()
    rejects.extend(tables.pop("_rejects"))
    return ctx.finish(records_read=records_read, time_basis=basis,
                      fixes=tables["fixes"], events=tables["events"], rejects=rejects,
                      extra_tables={IO_TABLE: tables[IO_TABLE],
                                    RECORDS_TABLE: tables[RECORDS_TABLE]},
                      default_subject=_default_subject(ctx, d))


def _default_subject(ctx: LoadContext, d: tc.Decoded) -> str | None:
    imeis = [i for i in d.msg_imei if i] or [i for _, i in d.logins]
    if not imeis:
        return None
    first = imeis[0]
    subjects = ctx.options.get("subjects") or {}
    return str(subjects.get(first, first))


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


def _build_tables(d: tc.Decoded, ctx: LoadContext, mode: str) -> dict[str, Any]:
    n = d.n_records
    H = np.array(d.hdr, dtype=np.float64).reshape(n, 11)
    d.hdr.clear()  # the columns are built: free the tuples early (memory of 1e6-record files)
    msg = np.asarray(d.rec_msg, dtype=np.int64)
    pos = np.asarray(d.rec_pos, dtype=np.int64)
    codec = np.asarray(d.msg_codec, dtype=np.int64)[msg]
    imei_msg = np.array(d.msg_imei, dtype=object)
    imei = imei_msg[msg]
    subj = _subjects(ctx, imei)
    loc = pd.Series(np.asarray(d.msg_loc, dtype=object)[msg], dtype="string")
    record = (loc + "/rec " + pd.Series(pos).astype("string")).astype("string")

    t_ms = H[:, 0]
    lo = (timebase.PLAUSIBLE[0].value // 1_000_000)
    hi = (timebase.PLAUSIBLE[1].value // 1_000_000)
    t_ok = (t_ms >= lo) & (t_ms <= hi)
    t_ns_all = np.where(t_ok, t_ms, 0).astype(np.int64) * 1_000_000
    t_ns_all[~t_ok] = np.iinfo(np.int64).min  # NaT

    def utc(sel: Any) -> pd.Series:
        """tz-aware UTC times of the records ``sel`` (no per-element objects)."""
        return pd.Series(t_ns_all[sel].view("datetime64[ns]")).dt.tz_localize("UTC")

    lon = H[:, 2] / 1e7
    lat = H[:, 3] / 1e7
    alt = H[:, 4].copy()
    angle = H[:, 5].copy()
    sats = H[:, 6].copy()
    speed_kmh = H[:, 7].copy()
    located = np.ones(n, dtype=bool)
    gh_idx = np.fromiter(d.gh.keys(), dtype=np.int64, count=len(d.gh))
    for r, info in d.gh.items():
        located[r] = bool(info["located"]) and info["lat"] is not None
        lat[r] = np.nan if info["lat"] is None else info["lat"]
        lon[r] = np.nan if info["lon"] is None else info["lon"]
        for arr, key in ((alt, "alt"), (angle, "angle"), (speed_kmh, "speed"), (sats, "sats")):
            v = info.get(key)
            arr[r] = np.nan if v is None else v
    with np.errstate(invalid="ignore"):
        zero = located & (lat == 0) & (lon == 0)
        out_of_range = located & ~zero & ((np.abs(lat) > 90) | (np.abs(lon) > 180) |
                                          ~np.isfinite(lat) | ~np.isfinite(lon))
    has_fix = located & ~zero & ~out_of_range & t_ok

    # --- IO long table: ~10 rows per record, so compact dtypes (int32 row, id and width)
    # and no copies that are not needed (memory of 1e6-record captures)
    counts = np.asarray(d.io_counts, dtype=np.int64).reshape(n, 6)
    d.io_counts.clear()
    rec_parts, id_parts, raw_parts, width_parts = [], [], [], []
    for wi, w in enumerate((1, 2, 4, 8)):
        flat = d.io_flat[w]
        if not flat:
            continue
        arr = np.array(flat, dtype=np.uint64 if w == 8 else np.int64)
        flat.clear()
        rec_parts.append(np.repeat(np.arange(n, dtype=np.int32), counts[:, wi]))
        id_parts.append(arr[0::2].astype(np.int32))
        raw_parts.append(arr[1::2].astype(np.int64))  # 8-byte values: two's complement reinterpretation
        width_parts.append(np.full(len(arr) // 2, w, dtype=np.int32))
        del arr
    io_hex: np.ndarray | None = None
    if d.io_bytes:
        rec_parts.append(np.array([x[0] for x in d.io_bytes], dtype=np.int32))
        id_parts.append(np.array([x[1] for x in d.io_bytes], dtype=np.int32))
        raw_parts.append(np.zeros(len(d.io_bytes), dtype=np.int64))
        width_parts.append(-np.array([len(x[2]) for x in d.io_bytes], dtype=np.int32))  # < 0: bytes
        io_hex = np.full(sum(len(a) for a in rec_parts), None, dtype=object)
        io_hex[-len(d.io_bytes):] = [x[2].hex() for x in d.io_bytes]
    del counts

    def joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        out = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
        parts.clear()
        return out
    io_rec, io_id = joined(rec_parts, np.int32), joined(id_parts, np.int32)
    io_raw, io_w = joined(raw_parts, np.int64), joined(width_parts, np.int32)
    order = np.lexsort((io_id, io_rec))
    io_rec, io_id, io_raw, io_w = (a[order] for a in (io_rec, io_id, io_raw, io_w))
    if io_hex is not None:
        io_hex = io_hex[order]
    del order
    io_is_bytes = io_w < 0

    # --- record outcome
    rej_mask = ~t_ok
    rejects = [(r, "implausible record time (outside 1980-2100): " + str(int(v)) + " ms")
               for r, v in zip(record[rej_mask].tolist(), t_ms[rej_mask].tolist(), strict=True)]
    keep_rec = ~rej_mask

    # --- profiles per record: codec 7 uses the GH3000 model
    base_prof = _profile(ctx, ctx.options.get("model"))
    profs = [base_prof]
    prof_of_rec = np.zeros(n, dtype=np.int64)
    if len(gh_idx):
        data = _read_map(ctx.options.get("io_map"))
        profs.append(_profile(ctx, data.get("codec7_model", "GH3000")))
        prof_of_rec[gh_idx] = 1
        profs[1]["door"]["input"] = None

    # --- vectorised map lookup
    lkey = prof_of_rec[io_rec] * 65536 + io_id
    lut: dict[int, dict[str, Any]] = {}
    for pi, p in enumerate(profs):
        for iid, e in p["io"].items():
            lut[pi * 65536 + iid] = e
    ukeys, inv = np.unique(lkey, return_inverse=True)
    ents = [lut.get(int(k)) for k in ukeys]
    names_u = np.array([e.get("name") if e else None for e in ents], dtype=object)
    units_u = np.array([e.get("unit") if e else None for e in ents], dtype=object)
    scale_u = np.array([float(e.get("scale", 1)) if e else np.nan for e in ents])
    signed_u = np.array([bool(e.get("signed")) if e else False for e in ents])
    step_u = np.array([float(e["step"]) if e and e.get("step") else np.nan for e in ents])
    kind_u = np.array([e.get("kind") if e and e.get("emit", "change") == "change" else None
                       for e in ents], dtype=object)
    def cat(values_u: np.ndarray, codes: np.ndarray) -> pd.Categorical:
        """Categorical of per-entry labels ``values_u`` taken at ``codes`` (no object arrays)."""
        lab, uniq = pd.factorize(pd.Series(values_u, dtype="object"))
        return pd.Categorical.from_codes(lab[codes], categories=pd.Index(uniq, dtype="object"))
    raw_f = io_raw.astype(np.float64)
    sgn = signed_u[inv] & ~io_is_bytes & (io_w < 8)
    if sgn.any():
        nbits = (8 * io_w[sgn]).astype(np.int64)
        sv = io_raw[sgn]
        raw_f[sgn] = np.where(sv >= (1 << (nbits - 1)), sv - (1 << nbits), sv).astype(np.float64)
    del sgn, lkey
    io_value = raw_f
    io_value *= scale_u[inv]
    io_value[io_is_bytes] = np.nan
    del raw_f
    inv = inv.astype(np.int32)
    if not keep_rec.all():  # IO of rejected records is not kept (filter once, in place of all)
        keep_io = keep_rec[io_rec]
        io_rec, io_id, io_raw, io_w, io_is_bytes, io_value, inv = (
            a[keep_io] for a in (io_rec, io_id, io_raw, io_w, io_is_bytes, io_value, inv))
        if io_hex is not None:
            io_hex = io_hex[keep_io]
        del keep_io
    m_io = len(io_rec)

    # categorical columns: the table has one row per IO element (10x the records)
    subj_codes, subj_uniq = pd.factorize(pd.Series(subj, dtype="object"))
    io_table = pd.DataFrame({
        "source_id": pd.Categorical.from_codes(np.zeros(m_io, dtype=np.int8),
                                               categories=[ctx.source_id]),
        "record": pd.Categorical.from_codes(io_rec, categories=pd.Index(record.to_numpy(), dtype="string")),
        "subject_id": pd.Categorical.from_codes(subj_codes[io_rec], categories=subj_uniq.astype(str)),
        "t_utc": utc(io_rec),
        "io_id": pd.array(io_id, dtype="Int64"),
        "name": cat(names_u, inv),
        "width": pd.array(np.abs(io_w), dtype="Int64"),
        "raw": pd.arrays.IntegerArray(np.where(io_is_bytes, 0, io_raw), io_is_bytes.copy()),
        "value": io_value,
        "unit": cat(units_u, inv),
        "hex": pd.array(io_hex if io_hex is not None else pa.nulls(m_io, pa.large_string()),
                        dtype="string"),
    })
    del io_hex, io_w

    # --- fixes
    fsel = has_fix
    codec_name = np.array([tc.CODEC_NAMES.get(int(c), str(c)) for c in range(256)], dtype=object)
    ex = ('{"codec":"' + pd.Series(codec_name[codec[fsel]], dtype="string") + '","event_io":'
          + pd.Series(H[fsel, 8].astype(np.int64)).astype("string"))
    im = pd.Series(imei[fsel], dtype="string")
    ex = ex + (',"imei":"' + im + '"').fillna("")
    ex = ex + ',"priority":' + pd.Series(H[fsel, 1].astype(np.int64)).astype("string")
    sat_s = pd.Series(sats[fsel])
    ex = ex + (',"sats":' + sat_s.astype("Int64").astype("string")).fillna("") + "}"
    ex = ex.to_numpy(dtype=object)
    fix_idx = np.flatnonzero(fsel)
    special = set(d.gen) | set(d.gh)
    for j in [j for j, r in enumerate(fix_idx) if int(r) in special or d.msg_info[msg[r]].get("layout")
              or d.msg_info[msg[r]].get("transport") == "udp"]:
        r = int(fix_idx[j])
        info = d.msg_info[msg[r]]
        extra = json.loads(ex[j])
        if r in d.gen:
            extra["generation"] = d.gen[r]
        if r in d.gh:
            extra.update({k: v for k, v in d.gh[r].items()
                          if k in ("lac", "cell_id", "signal", "operator") and v is not None})
        for k in ("layout", "packet_id", "avl_packet_id"):
            if k in info:
                extra[k] = info[k]
        ex[j] = compact_json(extra)
    flags = pd.Series("", index=range(int(fsel.sum())), dtype="string")
    with np.errstate(invalid="ignore"):
        flags = schema.add_flag(flags, sats[fsel] == 0, "no_fix")
    fixes = pd.DataFrame({
        "record": record[fsel].to_numpy(),
        "subject_id": pd.array(subj[fsel], dtype="string"),
        "t_utc": utc(fsel).array,
        "lat": lat[fsel], "lon": lon[fsel], "alt_m": alt[fsel],
        "speed_mps": speed_kmh[fsel] / 3.6, "course_deg": angle[fsel],
        "fix_kind": "gps", "flags": flags.to_numpy(), "extra": ex,
    })

    # --- events
    rec_lat = np.where(has_fix, lat, np.nan)
    rec_lon = np.where(has_fix, lon, np.nan)
    rec_flag = np.where(zero, "zero_position", np.where(out_of_range, "inconsistent_value", ""))
    ev = _events(
        io_rec=io_rec, io_id=io_id, io_raw=io_raw, io_value=io_value, io_ent=inv,
        kind_u=kind_u, units_u=units_u, names_u=names_u, step_u=step_u, io_bytes=io_is_bytes,
        t_ns=np.where(t_ok, t_ms, 0).astype(np.int64) * 1_000_000, subj=subj,
        record=record.to_numpy(), event_io=H[:, 8].astype(np.int64), prof_of_rec=prof_of_rec,
        profs=profs, rec_lat=rec_lat, rec_lon=rec_lon, rec_flag=rec_flag)
    # --- one row per produced record: the whole header, whatever its position
    k = keep_rec
    rec_flags = pd.Series(rec_flag[k], dtype="string")
    transport = np.array([i.get("transport") for i in d.msg_info], dtype=object)[msg]
    pid = np.array([i.get("packet_id") for i in d.msg_info], dtype=object)[msg]
    apid = np.array([i.get("avl_packet_id") for i in d.msg_info], dtype=object)[msg]
    gen = np.full(n, None, dtype=object)
    for r, g in d.gen.items():
        gen[r] = g
    records = pd.DataFrame({
        "source_id": ctx.source_id,
        "record": record[k].to_numpy(),
        "subject_id": pd.array(subj[k], dtype="string"),
        "imei": pd.array(imei[k], dtype="string"),
        "t_utc": utc(k).array,
        "codec": pd.array(codec_name[codec[k]], dtype="string"),
        "priority": pd.array(H[k, 1].astype(np.int64), dtype="Int64"),
        "lat": lat[k], "lon": lon[k], "alt_m": alt[k], "angle_deg": angle[k],
        "satellites": pd.array(sats[k], dtype="Int64"),
        "speed_kmh": speed_kmh[k],
        "event_io": pd.array(H[k, 8].astype(np.int64), dtype="Int64"),
        "n_io": pd.array(H[k, 9].astype(np.int64), dtype="Int64"),
        "generation": pd.array(gen[k], dtype="Int64"),
        "transport": pd.array(transport[k], dtype="string"),
        "udp_packet_id": pd.array(pid[k], dtype="Int64"),
        "avl_packet_id": pd.array(apid[k], dtype="Int64"),
        "has_fix": has_fix[k],
        "flags": rec_flags.to_numpy(),
    })
    return {"fixes": fixes, "events": ev, IO_TABLE: io_table, RECORDS_TABLE: records,
            "_rejects": rejects}


def _events(*, io_rec: np.ndarray, io_id: np.ndarray, io_raw: np.ndarray, io_value: np.ndarray,
            io_ent: np.ndarray, kind_u: np.ndarray, units_u: np.ndarray, names_u: np.ndarray,
            step_u: np.ndarray, io_bytes: np.ndarray, t_ns: np.ndarray, subj: np.ndarray, record: np.ndarray, event_io: np.ndarray,
            prof_of_rec: np.ndarray, profs: list[dict[str, Any]], rec_lat: np.ndarray,
            rec_lon: np.ndarray, rec_flag: np.ndarray) -> pd.DataFrame:
    """Value events and derived events, per subject in time order (vectorised)."""
    sel = pd.notna(kind_u)[io_ent] & ~io_bytes
    if not sel.any():
        return schema.empty("events")
    subj_codes = pd.factorize(pd.Series(subj, dtype="object"))[0].astype(np.int32)
    # stable sort: subject, io id (within profile), time, record order; one IO row per
    # element (~10 per record), so the columns are reordered one at a time (memory)
    rec = io_rec[sel]
    iid = io_id[sel]
    order = np.lexsort((rec, t_ns[rec], (prof_of_rec[rec] * 65536 + iid).astype(np.int32),
                        subj_codes[rec]))
    rec, iid = rec[order], iid[order]
    raw = io_raw[sel][order]
    val = io_value[sel][order]
    u = io_ent[sel][order]
    del order, sel
    s = subj_codes[rec]
    t = t_ns[rec]
    pk = (prof_of_rec[rec] * 65536 + iid).astype(np.int32)

    def is_kind(k: str) -> np.ndarray:
        out: np.ndarray = np.asarray(kind_u == k, dtype=bool)[u]
        return out

    def before(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``a`` at the row before each row of ``mask`` (rows of one subject and IO: ``same``)."""
        return a[np.flatnonzero(mask) - 1]
    same = np.zeros(len(rec), dtype=bool)
    same[1:] = (s[1:] == s[:-1]) & (pk[1:] == pk[:-1])
    # value events: at the first reading and when the value changes; for entries with a
    # `step`, when the value moves into another multiple of the step (odometer every km...)
    step = step_u[u]
    with np.errstate(invalid="ignore"):
        q = np.where(np.isnan(step), raw.astype(np.float64), np.floor(val / step))
    del step
    changed = ~same
    changed[1:] |= q[1:] != q[:-1]
    del q
    frames: list[pd.DataFrame] = []

    def frame(mask: np.ndarray, kinds: np.ndarray | str, value: np.ndarray, units: np.ndarray | str,
              text: pd.Series, extra: pd.Series, derived: bool,
              more_flag: str | None = None) -> None:
        if not mask.any():
            return
        r = rec[mask]
        fl = pd.Series(rec_flag[r], dtype="string")
        if derived:
            fl = schema.add_flag(fl, np.ones(len(r), bool), "derived")
        if more_flag:
            fl = schema.add_flag(fl, np.ones(len(r), bool), more_flag)
        frames.append(pd.DataFrame({
            "record": record[r], "subject_id": subj[r], "t_utc": t[mask],
            "kind": kinds, "value": value, "unit": units,
            "text": text.to_numpy(dtype=object), "lat": rec_lat[r], "lon": rec_lon[r],
            "flags": fl.to_numpy(), "extra": extra.to_numpy(dtype=object)}))

    def sx(a: Any) -> pd.Series:
        """A string Series with a fresh index (so concatenations align by position)."""
        return pd.Series(np.asarray(a)).astype("string").reset_index(drop=True)

    trig = np.where(event_io[rec] == iid, "true", "false")
    # value events
    m = changed
    frame(m, kind_u[u[m]], val[m], units_u[u[m]],
          ("IO " + sx(iid[m]) + " " + sx(names_u[u[m]]) + " = " + sx(raw[m])),
          ('{"io_id":' + sx(iid[m]) + ',"raw":' + sx(raw[m]) + ',"triggered":' + sx(trig[m]) + "}"),
          derived=False)
    # edges
    edge_names: list[str] = []
    edge_code = np.full(len(rec), -1, dtype=np.int64)
    for pi, p in enumerate(profs):
        for io_num, e in p["io"].items():
            for rv, k in (e.get("edges") or {}).items():
                if k not in edge_names:
                    edge_names.append(k)
                hit = (pk == pi * 65536 + io_num) & (raw == int(rv))
                edge_code[hit] = edge_names.index(k)
    m = same & (edge_code >= 0)
    m[1:] &= raw[1:] != raw[:-1]
    ek = np.asarray([*edge_names, ""], dtype=object)[edge_code[m]]
    frame(m, ek, val[m], "", (sx(ek) + ": IO " + sx(iid[m]) + " "
                              + sx(before(raw, m)) + " -> " + sx(raw[m])),
          ('{"from_record":"' + sx(record[before(rec, m)]) + '","io_id":' + sx(iid[m])
           + ',"triggered":' + sx(trig[m]) + "}"), derived=True)
    # fuel: refuel / drop, per subject from the % series if present, else litres
    th = profs[0]["derived"]
    delta = np.full(len(val), np.nan)  # change from the row before (meaningful where ``same``)
    delta[1:] = val[1:] - val[:-1]
    for fkind, up_k, down_k, funit in (("fuel_level", "refuel_pct", "fuel_drop_pct", "%"),
                                   ("fuel_volume", "refuel_l", "fuel_drop_l", "l")):
        is_f = is_kind(fkind) & (prof_of_rec[rec] == 0)
        if fkind == "fuel_volume":
            has_pct = np.isin(s, np.unique(s[is_kind("fuel_level") & (prof_of_rec[rec] == 0)]))
            is_f &= ~has_pct
        if not is_f.any() or up_k not in th:
            continue
        with np.errstate(invalid="ignore"):
            mu = is_f & same & (delta >= th[up_k])
            md = is_f & same & (delta <= -th[down_k])
        for mm, k, thr in ((mu, "refuel", th[up_k]), (md, "fuel_drop", th[down_k])):
            if mm.any():
                frame(mm, k, delta[mm], funit,
                      (f"{k}: fuel " + sx(np.round(before(val, mm), 3)) + f" {funit} -> "
                       + sx(np.round(val[mm], 3)) + f" {funit} (threshold {thr:g} {funit})"),
                      ('{"from_record":"' + sx(record[before(rec, mm)]) + '","threshold":'
                       + f"{thr:g}" + "}"), derived=True)
    # odometer jumps
    if "odometer_max_speed_kmh" in th:
        is_o = is_kind("odometer") & same & (prof_of_rec[rec] == 0)
        dt_s = np.full(len(rec), np.nan)
        dt_s[is_o] = (t[is_o] - before(t, is_o)) / 1e9
        limit = th["odometer_max_speed_kmh"] / 3.6 * np.maximum(dt_s, 0) + th["odometer_slack_m"]
        with np.errstate(invalid="ignore"):
            mo = is_o & ((delta > limit) | (delta < -th["odometer_rollback_m"]))
        if mo.any():
            frame(mo, "odometer_jump", delta[mo], "m",
                  ("odometer changed by " + sx(delta[mo]) + " m in " + sx(dt_s[mo]) + " s"),
                  ('{"from_record":"' + sx(record[before(rec, mo)]) + '","limit_m":'
                   + sx(np.round(limit[mo], 1)) + "}"),
                  derived=True, more_flag="inconsistent_value")
    if not frames:
        return schema.empty("events")
    out = pd.concat(frames, ignore_index=True)
    out["t_utc"] = pd.to_datetime(out["t_utc"].astype("int64"), unit="ns", utc=True)
    return out
