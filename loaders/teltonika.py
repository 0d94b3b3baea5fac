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
* **Damaged frames** (option ``keep_damaged``, default ``False``): by default a TCP AVL
  frame that fails its CRC-16 or declared-length check is one reject, whatever it holds.
  With ``keep_damaged=True`` (CLI ``--option keep_damaged=true``) the records that parse
  whole from its data part are produced, as Traccar (which checks neither) keeps them:
  every row they give carries the flag ``damaged_frame`` (their bytes are not verified by
  the CRC), their locator names the frame (``line 54/rec 0``) and each fix's ``extra``
  holds ``frame_error`` (the failed check). Records the frame announced but that do not
  parse whole (a truncated frame) are one reject naming the frame and which records were
  kept. A damaged command frame or a frame with no whole record stays one reject.
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
unit, scale, signedness, event kind, edge events, alarms, identifiers, cell, HDOP).
Options: ``io_map`` (path to a user file of the same layout), ``model`` (the device model
whose IO ids apply to codec 8/8E/16 records: ``FMB`` (default: FMB1xx/FMB9xx/FMC1xx),
``FMB125``, ``FMB640``/``FMC640``/``FMM640`` (the FMx6xx family, whose ids 80-89 are not
the FMB's LV-CAN fuel ids and are left unmapped), or any model of a user map; codec-7
records always use ``GH3000``), ``uere_m`` (metres, default 5; see HDOP below),
``keep_damaged`` (see above),
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

* alarm events (Teltonika's eventual alarm elements), one for **every record** carrying
  the element with an alarm value, ``value`` = the raw code, ``text`` = its meaning from
  Teltonika's FMB AVL ID list: ``crash`` (IO 247, any value; codes 1-6 are the crash
  kinds, code 0 is not in the list and says so), ``unplug`` (IO 252 = 1, external power
  cut), ``towing`` (IO 246 = 1), ``jamming`` (IO 249 = 1, GNSS/GSM jamming start; the
  record with 0 that ends it is in ``teltonika_io``), ``alarm`` (IO 236 = 1).
* identifier events, when first seen for the subject and whenever they change; ``text``
  = the id: ``driver_id`` (IO 78 iButton, 16 hex digits as sent and byte-reversed as
  Traccar shows it; 0 = no iButton), ``vin`` (IO 256, ASCII), ``sim_iccid`` /
  ``sim_iccid_part2`` (IO 11 / IO 14: Teltonika sends the ICCID as two numbers, most and
  least significant part; kept apart because the joining rule is not documented),
  ``ble_beacons`` (IO 385, iBeacon ``uuid:major:minor`` or Eddystone
  ``namespace:instance``), ``ble_tags`` (IO 548, tag ids).
* ``cell_tower``: the serving cell (IO 206 LAC with IO 205 GSM cell id, or IO 636 LTE
  cell id; codec 7: the LAC and cell id of the location block; ``extra``: lac, cell_id,
  radio, operator from IO 241 or the location block) when first seen for the
  subject and whenever it changes. A cell reference an examiner can resolve (e.g. when
  GPS is jammed); the loader never turns it into coordinates (lat/lon of the event are
  the record's own GPS position, missing when it has none).

HDOP: a fix whose record carries HDOP (IO 182; GH3000 IO 20) above 0 gets
``h_acc_m = HDOP x uere_m`` with ``uere_m`` = 5 m by default: an *assumed* user
equivalent range error (1 sigma, single-frequency civil receiver), since the device states
only the dilution, not an accuracy. The rule and the value used are written in the
source's ``time_basis``. HDOP 0 is the device's "no value": no h_acc_m.

Signed values: accelerometer axes (IO 17-19, mG), BLE and EYE temperatures (IO 25-28 and
10800-10803, 0.01 degC) and Dallas temperatures are two's complement, as Traccar reads
them.

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

import contextlib
import gc
import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .. import timebase
from ..errors import ParameterError
from . import teltonika_codec as tc
from . import teltonika_tables as tt
from .base import LoadContext, LoaderSpec, LoadResult, register

__all__ = ["IO_TABLE", "RECORDS_TABLE", "load_io_map", "load_teltonika", "sniff_teltonika"]

#: Name of the extra table holding every IO element of every record.
IO_TABLE = tt.IO_TABLE
#: Name of the extra table holding every record's header (time, position as sent, priority,
#: satellites, event IO, codec, UDP ids), including records that give no fix.
RECORDS_TABLE = tt.RECORDS_TABLE

#: Default user equivalent range error (m) for h_acc_m = HDOP x UERE: an assumed 1-sigma
#: range error of a single-frequency civil GNSS receiver (the device states only HDOP).
UERE_M = 5.0

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
    bytes starting with a TCP frame (plausible codec and length), a login or a UDP header.

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether the capture starts with a well-formed Teltonika message (so CSV or other
        text is never claimed).

    Example
    -------
    >>> from routetrace.loaders.teltonika_codec import Record, encode_login, encode_tcp_frame
    >>> frame = encode_tcp_frame([Record(t_ms=1761512400000, lat=51.0, lon=3.87)])
    >>> sniff_teltonika(Path("log.hex"), b"# server log\\n" + frame.hex().encode() + b"\\n")
    True
    >>> sniff_teltonika(Path("capture.bin"), encode_login("356307042441013") + frame)
    True
    >>> sniff_teltonika(Path("log.csv"), b"time,lat,lon\\n2025-10-26T21:00:00Z,51.0,3.87\\n")
    False
    """
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

    Parameters
    ----------
    path
        A user IO map (JSON, the layout of ``loaders/data/teltonika_io.json``); default
        the built-in map.
    model
        The device model (``FMB``, ``FMB125``, ``FMB640``, ``GH3000``, ...); default the
        map's ``default_model`` (``FMB``).

    Returns
    -------
    dict
        ``model``, ``door`` (input and open value), ``derived`` (thresholds: ``refuel_pct``
        in %, ``refuel_l`` in litres, ``odometer_max_speed_kmh``, ...) and ``io``: IO id
        (int) -> entry (name, unit, scale, kind, edges, alarms, identifier, ...).

    Example
    -------
    >>> fmb = load_io_map()
    >>> fmb["model"], fmb["io"][239]["edges"], fmb["io"][16]["unit"], fmb["door"]["input"]
    ('FMB', {'1': 'ignition_on', '0': 'ignition_off'}, 'm', 2)
    >>> try:
    ...     load_io_map(model="XYZ")
    ... except ParameterError as exc:
    ...     print(exc)
    unknown Teltonika model 'XYZ' in the IO map; known: FM6XX, FMB, FMB125, FMB640, FMC640,
    FMM640, GH3000
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
            if v is None:  # the model does not have the id its parent maps
                prof["io"].pop(int(k), None)
            else:
                prof["io"][int(k)] = dict(v)
    _check_map(name, prof["io"])
    return prof


#: How identifier values are written (see the map's doc).
DECODERS = frozenset({"hex", "le_hex", "decimal", "ascii", "ble_385", "ble_548"})


def _check_map(name: str, io: Mapping[int, Mapping[str, Any]]) -> None:
    """Raise :class:`ParameterError` when two IO ids give one event kind or an entry names
    an unknown decoder."""
    kinds: dict[str, int] = {}
    for iid, e in io.items():
        if e.get("decode") is not None and e["decode"] not in DECODERS:
            raise ParameterError(f"IO map model {name!r}: IO {iid} has unknown decode "
                                 f"{e['decode']!r}; known: {', '.join(sorted(DECODERS))}")
        for k in [e.get("kind"), e.get("identifier"), *(e.get("edges") or {}).values(),
                  *(e.get("alarms") or {}).values()]:
            if k is None:
                continue
            if k in kinds and kinds[k] != iid:
                raise ParameterError(f"IO map model {name!r}: event kind {k!r} used by IO "
                                     f"{kinds[k]} and {iid}")
            kinds[k] = iid


# --- the loader -------------------------------------------------------------------------------


def _profile(ctx: LoadContext, model: str | None) -> dict[str, Any]:
    opts = ctx.options
    prof = load_io_map(opts.get("io_map"), model)
    door = dict(prof["door"])
    if "door_input" in opts:  # an int, or its text from the CLI (--option door_input=2)
        v = opts["door_input"]
        door["input"] = int(v) if isinstance(v, str) and v.strip().isdigit() else v
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


def _bool_option(ctx: LoadContext, key: str, default: bool = False) -> bool:
    """A yes/no option given as a bool or as text (``--option keep_damaged=true``)."""
    v = ctx.options.get(key, default)
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ParameterError(f"option {key} must be true or false, got {v!r}")


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
    options=("door_input", "door_open_value", "fuel_drop_l", "fuel_drop_pct", "io_map",
             "keep_damaged", "model", "odometer_max_speed_kmh", "odometer_rollback_m",
             "odometer_slack_m", "refuel_l", "refuel_pct", "subjects", "uere_m"),
))
def load_teltonika(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a Teltonika capture. Options: see the module docstring.

    Records read = AVL records + rejected messages: every AVL record with a plausible
    time is produced (records and IO tables, a fix when its position is usable, events);
    a message that fails (CRC, length, codec, junk) or a command frame is one reject with
    its locator (``line N`` or ``offset N``); a record at exactly 0,0 gives no fix but is
    produced, flagged ``zero_position``.

    Parameters
    ----------
    path
        The capture: hex text (one message per line) or raw bytes (only read).
    ctx
        The load context built by :func:`routetrace.loaders.load`: subject, and the
        options ``subjects`` (IMEI -> name), ``io_map``, ``model``, ``uere_m`` (metres),
        ``keep_damaged``, ``door_input``, ``door_open_value`` and the derived thresholds.
        ``tz`` is not used: record times are UTC.

    Returns
    -------
    LoadResult
        ``fixes``, ``events``, ``rejects`` and the extra tables ``teltonika_records`` and
        ``teltonika_io``.

    Example
    -------
    A server log: a login, a frame of two records (ignition off, then on), a frame at
    0,0, a frame with a damaged CRC and a command frame:

    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> from routetrace.loaders.teltonika_codec import (IoValue, Record, encode_command_frame,
    ...                                                 encode_login, encode_tcp_frame)
    >>> recs = [Record(t_ms=1761512400000 + 60_000 * k, lat=51.0 + 0.001 * k, lon=3.87, sats=9,
    ...                speed_kmh=36, io=(IoValue(239, on, 1),)) for k, on in enumerate([0, 1])]
    >>> zero = Record(t_ms=1761512520000, lat=0.0, lon=0.0, io=(IoValue(239, 1, 1),))
    >>> lines = ["# server log", encode_login("356307042441013").hex(),
    ...          encode_tcp_frame(recs).hex(), encode_tcp_frame([zero]).hex(),
    ...          encode_tcp_frame(recs).hex()[:-2] + "00", encode_command_frame("getinfo").hex()]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "lorry.hex"
    ...     _ = p.write_text("\\n".join(lines) + "\\n")
    ...     res = load(p, options={"subjects": {"356307042441013": "lorry 1-ABC-123"}})
    >>> res.fixes[["subject_id", "t_utc", "speed_mps", "record"]]
            subject_id                     t_utc  speed_mps        record
    0  lorry 1-ABC-123 2025-10-26 21:00:00+00:00       10.0  line 3/rec 0
    1  lorry 1-ABC-123 2025-10-26 21:01:00+00:00       10.0  line 3/rec 1
    >>> res.events[["kind", "flags", "record"]]
              kind    flags        record
    0     ignition           line 3/rec 0
    1     ignition           line 3/rec 1
    2  ignition_on  derived  line 3/rec 1
    >>> res.extra_tables["teltonika_records"][["record", "has_fix", "flags"]]
             record  has_fix          flags
    0  line 3/rec 0     True
    1  line 3/rec 1     True
    2  line 4/rec 0    False  zero_position
    >>> res.records_read, res.rejects["record"].tolist()
    (5, ['line 5', 'line 6'])
    """
    buf, msgs, bad_lines, _mode = _read_messages(path, ctx)
    d = tc.decode_messages(buf, msgs, keep_damaged=_bool_option(ctx, "keep_damaged"))
    del buf, msgs  # decoded: the file's bytes (and its hex text) are not needed to build the tables
    rejects: list[tuple[str, str]] = list(bad_lines) + list(d.rejects)
    for loc, codec, ctype, text in d.commands:
        kind = {5: "command", 6: "response"}.get(ctype, f"type 0x{ctype:02X}")
        shown = text if len(text) <= 300 else text[:300] + "..."
        rejects.append((loc, f"command frame, no position: codec {tc.CODEC_NAMES[codec]} {kind}: "
                        f"{shown!r}"))
    n_rec = d.n_records
    records_read = n_rec + len(rejects)
    basis = ("Teltonika AVL record time: Unix milliseconds UTC (codec 8/8E/16); codec 7: "
             f"seconds since {timebase.TELTONIKA_GH_EPOCH.isoformat().replace('+00:00', 'Z')} "
             f"UTC (GH3000); h_acc_m = HDOP (IO 182; GH3000 IO 20) x {_uere_m(ctx):g} m, an "
             "assumed user equivalent range error (option uere_m), not stated by the device")
    if n_rec == 0:
        return ctx.finish(records_read=records_read, time_basis=basis, rejects=rejects,
                          default_subject=_default_subject(ctx, d))
    with _system_arrow_pool():
        gc_was = gc.isenabled()
        gc.disable()  # large object arrays: avoid repeated full collections while building
        try:
            tables = _build_tables(d, ctx)
        finally:
            if gc_was:
                gc.enable()
        rejects.extend(tables.pop("_rejects"))
        subject = _default_subject(ctx, d)
        del d  # its header and count matrices (~150 MB at 1e6 records) are in the tables now
        return ctx.finish(records_read=records_read, time_basis=basis,
                          fixes=tables["fixes"], events=tables["events"], rejects=rejects,
                          extra_tables={IO_TABLE: tables[IO_TABLE],
                                        RECORDS_TABLE: tables[RECORDS_TABLE]},
                          default_subject=subject)


@contextlib.contextmanager
def _system_arrow_pool() -> Iterator[None]:
    """Arrow allocates from the system allocator while the tables are built, then the
    previous default pool is restored (each buffer is freed to the pool it came from).

    Building the tables makes many short-lived Arrow string columns (locators, JSON
    extras, event texts); Arrow's default mimalloc pool keeps their freed pages, so they
    add up in the process's memory (measured at 2e5 records: peak 829 -> 710 MB, load
    2.2 -> 1.4 s with the system allocator).

    >>> before = pa.default_memory_pool().backend_name
    >>> with _system_arrow_pool():
    ...     pa.default_memory_pool().backend_name
    'system'
    >>> pa.default_memory_pool().backend_name == before
    True
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _default_subject(ctx: LoadContext, d: tc.Decoded) -> str | None:
    imeis = [i for i in d.msg_imei if i] or [i for _, i in d.logins]
    if not imeis:
        return None
    first = imeis[0]
    subjects = ctx.options.get("subjects") or {}
    return str(subjects.get(first, first))


def _profiles(ctx: LoadContext, rc: tt.RecCols) -> tuple[list[dict[str, Any]], np.ndarray]:
    """IO map profiles and each record's profile index: the ``model`` option (default FMB)
    for codec 8/8E/16, the map's ``codec7_model`` (GH3000) for codec 7 (no door input)."""
    profs = [_profile(ctx, ctx.options.get("model"))]
    prof_of_rec = np.zeros(rc.n, dtype=np.int64)
    if len(rc.gh_idx):
        data = _read_map(ctx.options.get("io_map"))
        profs.append(_profile(ctx, data.get("codec7_model", "GH3000")))
        prof_of_rec[rc.gh_idx] = 1
        profs[1]["door"]["input"] = None
    return profs, prof_of_rec


def _uere_m(ctx: LoadContext) -> float:
    """The option ``uere_m`` (metres, > 0; default :data:`UERE_M`)."""
    v = ctx.options.get("uere_m", UERE_M)
    try:
        out = float(v)
    except (TypeError, ValueError):
        out = float("nan")
    if not out > 0 or out == float("inf"):
        raise ParameterError(f"option uere_m must be a positive number of metres, got {v!r}")
    return out


def _build_tables(d: tc.Decoded, ctx: LoadContext) -> dict[str, Any]:
    return tt.build_tables(d, ctx, lambda rc: _profiles(ctx, rc), uere_m=_uere_m(ctx))
