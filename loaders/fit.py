"""Garmin FIT activity and Locations files, via fitdecode.

Records (the count rule)
------------------------
* ``msg[N]`` — every ``record`` message (N = index of the data message in the stream):
  a fix when it has a position (semicircles → degrees: ``value × 180 / 2³¹``) and a
  plausible timestamp, otherwise a reject saying which is missing (watches record heart
  rate and speed without GPS; the no-GPS vivoactive file has no position at all).
* ``msg[N]`` — every saved Location (undocumented global message 29 in Garmin
  'Locations' files, file type 8: field 0 name, 1/2 latitude/longitude in semicircles,
  253 timestamp, 6 description → ``text``, 4 elevation (scale 5, offset 500 m, as GPSBabel
  reads it; the 'unset' value 0xFFFF → NA) → ``extra.elevation_m``): a place of kind ``saved``.
* ``fault`` — when the stream fails part-way (truncated file, corrupt header, a data
  message whose definition is missing or wrong), everything decoded before the fault is
  kept and the fault itself is one reject naming the byte offset reached and the error.
  Chained FIT files (several headers in one file) are read one after another.

Other messages (file_id, session, lap, device_info, ...) hold no position and are not
records; their number is stated in ``time_basis``. Times are FIT ``date_time``: seconds
since 1989-12-31T00:00:00Z (UTC), decoded by fitdecode.
"""

from __future__ import annotations

import datetime as dt
import struct
import warnings
from pathlib import Path
from typing import Any

import fitdecode
import pandas as pd

from .. import timebase
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["load_fit", "sniff_fit"]

SEMI = 180.0 / 2**31


def sniff_fit(path: Path, head: bytes) -> bool:
    """A FIT header: size byte 12 or 14 and the ``.FIT`` signature at bytes 8-11.

    Parameters
    ----------
    path
        The file (not read: the header is enough).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether ``head`` starts with a FIT file header.

    Example
    -------
    >>> sniff_fit(Path("a.fit"), bytes([14, 0x20, 0x54, 0x08, 0, 0, 0, 0]) + b".FIT")
    True
    >>> sniff_fit(Path("a.fit"), b"<gpx>")
    False
    """
    return len(head) >= 12 and head[0] in (12, 14) and head[8:12] == b".FIT"


def _fields(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in msg.fields:
        out[f.name] = f.value
        out[f"#{f.def_num}"] = f.value
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ts(value: Any) -> pd.Timestamp | None:
    if isinstance(value, dt.datetime):
        t = pd.Timestamp(value)
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    elif isinstance(value, (int, float)):
        t = timebase.FIT_EPOCH + pd.Timedelta(seconds=float(value))
    else:
        return None
    return t if timebase.PLAUSIBLE[0] <= t <= timebase.PLAUSIBLE[1] else None


@register(LoaderSpec(
    name="fit",
    description="Garmin FIT activities (record messages) and Locations files (message 29)",
    sniff=sniff_fit,
    produces=("fixes", "places"),
))
def load_fit(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a FIT file (see module doc for what counts as a record).

    Every ``record`` message and every saved Location (message 29) is a record: a fix or
    place when it has a position and a plausible time, else a reject saying which is
    missing. A stream that fails part-way keeps what was decoded before and adds one
    reject ``fault`` naming the byte offset reached.

    Parameters
    ----------
    path
        The FIT file (only read).
    ctx
        The load context (source identity, subject) built by
        :func:`routetrace.loaders.load`; no options are used, and no ``tz``: FIT times
        are UTC.

    Returns
    -------
    LoadResult
        ``fixes`` (record messages, ``record`` = ``msg[N]``), ``places`` (saved
        Locations, kind ``saved``) and ``rejects``; records read = produced + rejected.

    Example
    -------
    A FIT file of two ``record`` messages (global message 20: timestamp, latitude and
    longitude in semicircles), written with its header and CRCs:

    >>> import struct, tempfile
    >>> from fitdecode.utils import compute_crc
    >>> from routetrace.loaders import load
    >>> body = struct.pack("<BBBHB9B", 0x40, 0, 0, 20, 3, 253, 4, 0x86, 0, 4, 0x85, 1, 4, 0x85)
    >>> for t, lat in [(1130000000, 51.0), (1130000060, 51.001)]:
    ...     body += struct.pack("<BIii", 0, t, round(lat * 2**31 / 180), round(3.87 * 2**31 / 180))
    >>> head = struct.pack("<BBHI4s", 14, 0x20, 2132, len(body), b".FIT")
    >>> data = head + struct.pack("<H", compute_crc(head)) + body
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "run.fit"
    ...     _ = p.write_bytes(data + struct.pack("<H", compute_crc(data)))
    ...     res = load(p)
    >>> res.fixes[["t_utc", "lat", "lon", "record"]]
                          t_utc     lat   lon  record
    0 2025-10-21 16:53:20+00:00  51.000  3.87  msg[0]
    1 2025-10-21 16:54:20+00:00  51.001  3.87  msg[1]
    >>> res.records_read, len(res.rejects)
    (2, 0)
    """
    fixes: list[dict[str, Any]] = []
    places: list[dict[str, Any]] = []
    rejects: list[tuple[str, str]] = []
    n = 0
    other = 0
    idx = -1
    with open(path, "rb") as fh, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader = fitdecode.FitReader(fh, check_crc=fitdecode.CrcCheck.WARN,
                                     error_handling=fitdecode.ErrorHandling.RAISE)
        try:
            for frame in reader:
                if not isinstance(frame, fitdecode.FitDataMessage):
                    continue
                idx += 1
                rec = f"msg[{idx}]"
                if frame.name == "record":
                    n += 1
                    f = _fields(frame)
                    lat, lon = f.get("position_lat"), f.get("position_long")
                    t = _ts(f.get("timestamp"))
                    if lat is None or lon is None:
                        rejects.append((rec, "record message without a position (no GPS fix)"))
                        continue
                    if not (_number(lat) and _number(lon)):  # e.g. a definition made it an array
                        rejects.append((rec, f"record position is not a number (position_lat {lat!r}, "
                                             f"position_long {lon!r}): a damaged field definition"))
                        continue
                    if t is None:
                        rejects.append((rec, f"record message without a plausible timestamp ({f.get('timestamp')!r})"))
                        continue
                    la, lo = float(lat) * SEMI, float(lon) * SEMI
                    if not (-90 <= la <= 90 and -180 <= lo <= 180):
                        rejects.append((rec, f"position out of range ({la:.5f}, {lo:.5f})"))
                        continue
                    alt = f.get("enhanced_altitude", f.get("altitude"))
                    spd = f.get("enhanced_speed", f.get("speed"))
                    fixes.append({"record": rec, "t_utc": t, "lat": la, "lon": lo,
                                  "alt_m": float(alt) if isinstance(alt, (int, float)) else None,
                                  "speed_mps": float(spd) if isinstance(spd, (int, float)) else None,
                                  "fix_kind": "gps"})
                elif frame.global_mesg_num == 29:
                    n += 1
                    f = _fields(frame)
                    lat, lon = f.get("#1"), f.get("#2")
                    name = f.get("#0")
                    if not isinstance(lat, int) or not isinstance(lon, int):
                        rejects.append((rec, "saved location without a position"))
                        continue
                    la, lo = lat * SEMI, lon * SEMI
                    if not (-90 <= la <= 90 and -180 <= lo <= 180):
                        rejects.append((rec, f"saved location out of range ({la:.5f}, {lo:.5f})"))
                        continue
                    t = _ts(f.get("#253"))
                    ele = f.get("#4")  # altitude, scale 5 offset 500 (as GPSBabel); 0xFFFF (unset) is None
                    desc = f.get("#6")
                    places.append({"record": rec, "kind": "saved", "name": str(name) if name is not None else None,
                                   "text": str(desc) if desc is not None else None,
                                   "lat": la, "lon": lo, "t_start": t, "t_end": t,
                                   "t_precision": "instant" if t is not None else "none",
                                   "extra": compact_json({"elevation_m": ele / 5 - 500 if isinstance(ele, int) else None,
                                                          "message_index": f.get("#254"), "raw_3": f.get("#3")})})
                else:
                    other += 1
        except (fitdecode.FitError, ValueError, KeyError, IndexError, EOFError, OSError,
                AssertionError, TypeError, struct.error, OverflowError) as exc:
            # fitdecode raises these on damaged streams; what was decoded is kept
            if n > len(fixes) + len(places) + len(rejects):
                # raised while reading the fields of a message already counted as a record
                rejects.append((f"msg[{idx}]", f"fields unreadable: {type(exc).__name__}: "
                                               f"{str(exc)[:200]}"))
            n += 1
            offset = fh.tell()
            rejects.append(("fault", f"decoding stopped at byte {offset} of {path.stat().st_size} "
                                     f"after {idx + 1} data message(s): {type(exc).__name__}: {str(exc)[:200]}"))
    basis = (f"FIT date_time: seconds since 1989-12-31T00:00:00Z (UTC); {other} other data message(s) "
             "without positions (file_id, session, lap, ...) are not records")
    crc = [str(w.message) for w in caught if "crc" in str(w.message).lower()]
    if crc:
        basis += f"; CRC warnings: {len(crc)} ({crc[0][:80]})"
    return ctx.finish(records_read=n, time_basis=basis, fixes=pd.DataFrame(fixes) if fixes else None,
                      places=pd.DataFrame(places) if places else None, rejects=rejects)
