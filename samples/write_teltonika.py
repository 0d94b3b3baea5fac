"""The lorries' Teltonika FMB125 trackers as raw codec-8E binary captures (TCP stream).

Each capture is the IMEI login packet followed by TCP frames of up to 20 records, as a
server would store the device's byte stream. Records: every observed track fix (30 s
moving, hourly parked) plus an event-triggered record at each ignition and door change
of the scenario. IO elements: 239 ignition, 240 movement, 1 DIN1, 2 DIN2 (the rear door
sensor: 1 = open), 21 GSM signal, 24 speed, 66 external voltage (mV), 89 fuel level (%),
16 total odometer (m). Ingest with ``options={"door_input": 2}`` (the FMB profile's
default) to get door_open/door_close events; lorry-1's door opens at the Wetteren car
park at night.

The captures are written by this module's own small encoder (:func:`encode_capture`), not
by the reader's codec (:mod:`routetrace.loaders.teltonika_codec`), so that a codec error
shows up as a sample that does not read back instead of being mirrored on both sides.
Written from Teltonika's "Codec" wiki page (codec 8 Extended, TCP framing, IMEI login)
with a bitwise CRC-16/IBM (polynomial 0xA001 reflected, init 0).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .generate import SampleFile
from .scenario import Scenario

# --- a codec 8 Extended encoder of its own ---------------------------------------------------


@dataclass(frozen=True)
class AvlRecord:
    """One AVL record: time (Unix ms), position (deg), header fields, IO as (id, value,
    width in bytes: 1, 2, 4 or 8)."""

    t_ms: int
    lat: float
    lon: float
    alt_m: int
    angle: int
    sats: int
    speed_kmh: int
    priority: int
    event_io: int
    io: Sequence[tuple[int, int, int]]


def crc16_ibm(data: bytes) -> int:
    """CRC-16/IBM, bit by bit (the reader's codec is table-driven).

    Parameters
    ----------
    data : bytes
        The bytes to check (a frame's data part).

    Returns
    -------
    int
        The CRC (polynomial 0xA001 reflected, initial value 0), 0..0xFFFF.

    Example
    -------
    >>> hex(crc16_ibm(b"123456789"))
    '0xbb3d'
    """
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def encode_8e(rec: AvlRecord) -> bytes:
    """One codec 8 Extended record: header, then the 1-, 2-, 4-, 8-byte groups (2-byte
    count, 2-byte ids) and an empty variable-length group.

    Parameters
    ----------
    rec : AvlRecord
        The record.

    Returns
    -------
    bytes
        Its encoding: time (ms, 8 bytes), priority, longitude and latitude (1e-7 degrees,
        signed), altitude, angle, satellites, speed, event IO id, IO count, the groups.

    Example
    -------
    >>> rec = AvlRecord(t_ms=1_761_500_000_000, lat=51.0, lon=4.0, alt_m=0, angle=0, sats=9,
    ...                 speed_kmh=0, priority=0, event_io=0, io=[(239, 1, 1)])
    >>> b = encode_8e(rec)
    >>> len(b), struct.unpack(">QBii", b[:17])
    (41, (1761500000000, 0, 40000000, 510000000))
    """
    out = bytearray(struct.pack(">QBiihHBH", rec.t_ms, rec.priority, round(rec.lon * 1e7),
                                round(rec.lat * 1e7), rec.alt_m, rec.angle, rec.sats,
                                rec.speed_kmh))
    out += struct.pack(">HH", rec.event_io, len(rec.io))
    for width, fmt in ((1, "B"), (2, "H"), (4, "I"), (8, "Q")):
        group = [(i, v) for i, v, w in rec.io if w == width]
        out += struct.pack(">H", len(group))
        for i, v in group:
            out += struct.pack(">H" + fmt, i, v)
    out += struct.pack(">H", 0)
    return bytes(out)


def encode_capture(imei: str, records: Sequence[AvlRecord], *, per_frame: int = 20) -> bytes:
    """A raw TCP capture as a server stores a device's byte stream.

    Parameters
    ----------
    imei
        The device's 15-digit IMEI (sent first, in the login packet).
    records
        The AVL records, in order.
    per_frame
        Records per TCP frame (a device sends up to a few tens per frame).

    Returns
    -------
    bytes
        The login packet, then TCP frames (4 zero bytes, data length, codec 0x8E, N1,
        records, N2, 4-byte CRC-16/IBM of the data part).

    Examples
    --------
    >>> rec = AvlRecord(t_ms=1_761_500_000_000, lat=51.0, lon=4.0, alt_m=0, angle=0, sats=9,
    ...                 speed_kmh=0, priority=0, event_io=0, io=[(239, 1, 1)])
    >>> blob = encode_capture("356307042441013", [rec])
    >>> blob[:2], blob[17:21], blob[25]
    (b'\\x00\\x0f', b'\\x00\\x00\\x00\\x00', 142)
    """
    out = bytearray(b"\x00\x0f" + imei.encode("ascii"))
    for a in range(0, len(records), per_frame):
        chunk = records[a: a + per_frame]
        data = bytes([0x8E, len(chunk)]) + b"".join(encode_8e(r) for r in chunk) + bytes([len(chunk)])
        out += b"\x00" * 4 + struct.pack(">I", len(data)) + data + struct.pack(">I", crc16_ibm(data))
    return bytes(out)


# --- the scenario's captures -------------------------------------------------------------------


def _capture(sc: Scenario, subject: str) -> bytes:
    tr = sc.tracks[subject]
    ev = sc.events[sc.events["subject_id"] == subject]
    t_tr = tr["t_utc"].astype("int64").to_numpy() // 1_000_000
    t_ev = ev["t_utc"].astype("int64").to_numpy() // 1_000_000
    times = np.unique(np.concatenate([t_tr, t_ev]))
    # state of each input at each record time: the last event at or before it
    states = {}
    for on, off in (("ignition_on", "ignition_off"), ("door_open", "door_close")):
        e = ev[ev["kind"].isin([on, off])].sort_values("t_utc")
        et = e["t_utc"].astype("int64").to_numpy() // 1_000_000
        val = (e["kind"] == on).to_numpy().astype(int)
        idx = np.searchsorted(et, times, side="right") - 1
        states[on] = np.where(idx >= 0, val[np.clip(idx, 0, None)], 0) if len(val) else \
            np.zeros(len(times), dtype=int)
    trig = {int(t) for t in t_ev}
    # position, speed, fuel and odometer from the last track fix at or before the time
    j = np.clip(np.searchsorted(t_tr, times, side="right") - 1, 0, len(tr) - 1)
    lat, lon = tr["lat"].to_numpy()[j], tr["lon"].to_numpy()[j]
    alt = tr["alt_m"].to_numpy()[j]
    spd = np.where(np.isin(times, t_tr), tr["speed_mps"].to_numpy()[j] * 3.6, 0.0)
    course = np.nan_to_num(tr["course_deg"].to_numpy()[j])
    fuel = tr["fuel_pct"].to_numpy()[j]
    odo = tr["odometer_m"].to_numpy()[j]
    records = []
    for k, t in enumerate(times):
        ign, door = int(states["ignition_on"][k]), int(states["door_open"][k])
        event_io = 0
        if int(t) in trig:
            event_io = 2 if k and door != int(states["door_open"][k - 1]) else 239
        records.append(AvlRecord(
            t_ms=int(t), lat=float(lat[k]), lon=float(lon[k]), alt_m=round(float(alt[k])),
            angle=round(float(course[k])) % 360, sats=11, speed_kmh=round(float(spd[k])),
            priority=1 if event_io else 0, event_io=event_io,
            io=[(239, ign, 1), (240, int(spd[k] > 0), 1), (1, ign, 1), (2, door, 1),
                (21, 4, 1), (24, round(float(spd[k])), 2), (66, 27_800 if ign else 25_100, 2),
                (89, round(float(fuel[k])), 1), (16, int(odo[k]), 4)]))
    return encode_capture(str(sc.subjects[subject]["imei"]), records)


def write(sc: Scenario, out: Path) -> list[SampleFile]:
    """Write ``evidence/<lorry>/<lorry>_fmb125.bin`` for each lorry with a Teltonika tracker.

    Parameters
    ----------
    sc : Scenario
        The sample scenario (:func:`routetrace.samples.scenario.build_scenario`).
    out : pathlib.Path
        The sample case's output folder.

    Returns
    -------
    list of SampleFile
        One capture per lorry, with its subject.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.samples.scenario import build_scenario
    >>> tmp = tempfile.TemporaryDirectory()
    >>> files = write(build_scenario(7), Path(tmp.name))
    >>> [(f.path, f.subject_id) for f in files]
    [('evidence/lorry-1/lorry-1_fmb125.bin', 'lorry-1'), ('evidence/lorry-2/lorry-2_fmb125.bin', 'lorry-2')]
    >>> (Path(tmp.name) / files[0].path).read_bytes()[:17]  # the IMEI login packet
    b'\\x00\\x0f356307042441013'
    >>> tmp.cleanup()
    """
    files = []
    for subject, info in sorted(sc.subjects.items()):
        if "Teltonika" not in str(info.get("tracker", "")) or subject not in sc.tracks:
            continue
        folder = out / "evidence" / subject
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{subject}_fmb125.bin"
        path.write_bytes(_capture(sc, subject))
        files.append(SampleFile(
            path=path.relative_to(out).as_posix(), subject_id=subject, format=None,
            description=f"{subject} Teltonika FMB125 tracker, raw codec-8E TCP capture (IMEI "
                        f"{info['imei']}); door sensor on DIN2"))
    return files


__all__ = ["AvlRecord", "crc16_ibm", "encode_8e", "encode_capture", "write"]

