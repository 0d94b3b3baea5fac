"""Geotagged photos (JPEG, HEIC/HEIF, TIFF-based raw) via EXIF, read with exifread.

One image file = one record (locator ``image``). A photo with a usable time yields an event
``kind="photo"`` (``text`` = file name) and, when it has a usable GPS position, a fix
``fix_kind="photo"`` with the same record.

Time, in order of preference (the basis is written in ``sources.time_basis``):

1. ``GPSDateStamp`` + ``GPSTimeStamp``: UTC from the GPS receiver (flag ``time_from_gps``).
2. ``DateTimeOriginal`` (else ``DateTimeDigitized``) with ``OffsetTimeOriginal``
   (else ``OffsetTime``): camera local time with its stated offset.
3. ``DateTimeOriginal`` without offset (or, lacking it, IFD0 ``DateTime``, the last-change
   time) is naive local camera time: it needs ``ctx.tz`` (``--tz``); without it the file is
   a reject whose reason says so (not a guess, and not an exception, so one such file does
   not stop a whole extraction).

Camera clock: when GPS time and ``DateTimeOriginal`` both exist, ``extra`` reports
``camera_minus_gps_s`` (local camera reading minus GPS UTC, e.g. -79,108 s ~ -22 h for the
Nikon DSCN series) and ``camera_minus_local_s``: the camera reading minus the true local time
at the photo (GPS UTC converted with the stated offset, else the zone at the position from
timezonefinder). Flag ``clock_offset`` when ``|camera_minus_local_s| > 120``.

GPS position: ``GPSLatitude``/``GPSLongitude`` (3 rationals) with their Ref. A GPS IFD that
is present but unusable (no values, zero-length or malformed rationals, a 0/0 denominator,
out of range, or 0,0) makes the file a reject with the reason: a photo's contribution to a
route is its position, and a broken one must not become a point. No GPS IFD at all: an
event without position. A photo whose metadata exifread cannot parse at all (a damaged
JPEG/HEIF structure) is a reject naming the parser's error: one photo is one record. ``GPSHPositioningError`` (0x001F) -> ``h_acc_m``, ``GPSAltitude``
(Ref 1 = below sea level) -> ``alt_m``, ``GPSSpeed`` (Ref K/M/N) -> m/s, ``GPSTrack`` ->
``course_deg``. ``GPSMapDatum`` (space-padded, e.g. 'WGS-84   ') kept in ``extra``.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import exifread
import pandas as pd

from .. import timebase
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["load_exif", "sniff_exif"]

CLOCK_TOLERANCE_S = 120.0
_SPEED = {"K": 1 / 3.6, "M": 0.44704, "N": 1852 / 3600}


def sniff_exif(path: Path, head: bytes) -> bool:
    """JPEG (FF D8 FF) or HEIF/HEIC (``ftypheic``/``mif1``/``heix``/``msf1``) images."""
    if head[:3] == b"\xff\xd8\xff":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc")


def _ratios(tag: Any) -> list[float] | None:
    vals = getattr(tag, "values", None)
    if not isinstance(vals, list) or not vals:
        return None
    out = []
    for v in vals:
        num: Any = getattr(v, "num", v)
        den: Any = getattr(v, "den", 1)
        try:
            if den == 0:
                return None
            out.append(float(num) / float(den))
        except (TypeError, ValueError):
            return None
    return out


def _text(tags: dict[str, Any], key: str) -> str | None:
    v = tags.get(key)
    if v is None:
        return None
    s = str(v.values if isinstance(v.values, str) else v).strip().strip("\x00").strip()
    return s or None


def _dms(tags: dict[str, Any], key: str) -> tuple[float | None, str | None]:
    r = _ratios(tags.get(f"GPS {key}"))
    if r is None or len(r) != 3:
        return None, f"{key} missing, zero-length or malformed"
    deg = r[0] + r[1] / 60 + r[2] / 3600
    ref = _text(tags, f"GPS {key}Ref")
    if ref not in ("N", "S", "E", "W"):
        return None, f"{key}Ref {ref!r} is not N/S/E/W"
    return (-deg if ref in ("S", "W") else deg), None


def _gps_time(tags: dict[str, Any]) -> pd.Timestamp | None:
    d = _text(tags, "GPS GPSDate")
    hms = _ratios(tags.get("GPS GPSTimeStamp"))
    if not d or hms is None or len(hms) != 3:
        return None
    try:
        day = dt.datetime.strptime(d.replace("-", ":")[:10], "%Y:%m:%d")
    except ValueError:
        return None
    secs = hms[0] * 3600 + hms[1] * 60 + hms[2]
    try:
        t = pd.Timestamp(day, tz="UTC") + pd.Timedelta(seconds=secs)
    except (ValueError, OverflowError):  # a damaged GPSTimeStamp: inf, NaN or 1e300 seconds
        return None
    return t if timebase.PLAUSIBLE[0] <= t <= timebase.PLAUSIBLE[1] else None


def _local(s: str | None) -> pd.Timestamp | None:
    if not s:
        return None
    try:
        return pd.Timestamp(dt.datetime.strptime(s[:19], "%Y:%m:%d %H:%M:%S"))
    except ValueError:
        return None


def _offset(s: str | None) -> pd.Timedelta | None:
    if not s or len(s) < 6 or s[0] not in "+-":
        return None
    try:
        h, m = int(s[1:3]), int(s[4:6])
    except ValueError:
        return None
    sign = -1 if s[0] == "-" else 1
    return sign * pd.Timedelta(hours=h, minutes=m)


def _zone_offset(lat: float, lon: float, utc: pd.Timestamp) -> pd.Timedelta | None:
    name = timebase.tz_finder().timezone_at(lat=lat, lng=lon)
    if not name:
        return None
    off = utc.tz_convert(timebase.zone(name)).utcoffset()
    return None if off is None else pd.Timedelta(off)


@register(LoaderSpec(
    name="exif",
    description="Geotagged photos (JPEG/HEIC EXIF via exifread): photo fixes and events",
    sniff=sniff_exif,
    produces=("fixes", "events"),
))
def load_exif(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load one photo. ``ctx.tz`` is used only for a local time without offset or GPS time."""
    rec = "image"
    name = Path(ctx.member or ctx.display_path).name
    logging.getLogger("exifread").setLevel(logging.ERROR)
    with open(path, "rb") as fh:
        try:
            tags: dict[str, Any] = exifread.process_file(fh, details=False)
        except (MemoryError, RecursionError):
            raise
        except Exception as exc:  # exifread raises anything on a damaged photo: the one record is a reject
            return ctx.finish(records_read=1, time_basis="none (rejected)", default_subject="camera",
                              rejects=[(rec, f"metadata unreadable: exifread could not parse this "
                                             f"file's EXIF/HEIF structure ({type(exc).__name__}: {exc}); "
                                             "the file is damaged or not a photo")])
    extra: dict[str, Any] = {"file": name, "make": _text(tags, "Image Make"),
                             "model": _text(tags, "Image Model")}
    # --- position
    has_gps_ifd = "Image GPSInfo" in tags or any(k.startswith("GPS ") for k in tags)
    lat = lon = None
    gps_problem = None
    if has_gps_ifd:
        lat, why1 = _dms(tags, "GPSLatitude")
        lon, why2 = _dms(tags, "GPSLongitude")
        gps_problem = why1 or why2
        if gps_problem is None and lat is not None and lon is not None:
            if abs(lat) > 90 or abs(lon) > 180:
                gps_problem = f"GPS position {lat},{lon} out of range"
            elif lat == 0 and lon == 0:
                gps_problem = "GPS position is 0,0 (placeholder)"
        if not any(k.startswith("GPS ") for k in tags):
            gps_problem = "GPS IFD present but holds no values (malformed)"
    if gps_problem:
        return ctx.finish(records_read=1, time_basis="none (rejected)",
                          rejects=[(rec, f"GPS IFD unusable: {gps_problem}")], default_subject="camera")
    # --- time
    gps_t = _gps_time(tags)
    dto_s = _text(tags, "EXIF DateTimeOriginal") or _text(tags, "EXIF DateTimeDigitized")
    tag_used = "DateTimeOriginal"
    if dto_s is None:
        dto_s, tag_used = _text(tags, "Image DateTime"), "DateTime (IFD0, last change)"
    local = _local(dto_s)
    off = _offset(_text(tags, "EXIF OffsetTimeOriginal") or _text(tags, "EXIF OffsetTime"))
    flags: list[str] = []
    cam_utc = None
    if local is not None and off is not None:
        cam_utc = (local - off).tz_localize("UTC")
        extra["utc_offset"] = _text(tags, "EXIF OffsetTimeOriginal") or _text(tags, "EXIF OffsetTime")
    extra["camera_local"] = str(local) if local is not None else None
    extra["time_tag"] = tag_used if local is not None else None
    if gps_t is not None:
        t, basis = gps_t, "GPSDateStamp+GPSTimeStamp (UTC, GPS receiver)"
        flags.append("time_from_gps")
        if local is not None:
            diff = (local.tz_localize("UTC") - gps_t).total_seconds()
            extra["camera_minus_gps_s"] = round(diff, 3)
            loc_off = off if off is not None else (
                _zone_offset(lat, lon, gps_t) if lat is not None and lon is not None else None)
            if loc_off is not None:
                vs_local = diff - loc_off.total_seconds()
                extra["camera_minus_local_s"] = round(vs_local, 3)
                if abs(vs_local) > CLOCK_TOLERANCE_S:
                    flags.append("clock_offset")
    elif cam_utc is not None:
        t, basis = cam_utc, f"{tag_used} with OffsetTimeOriginal (camera clock)"
    elif local is not None and ctx.tz:
        t = timebase.localize(pd.Series([local]), tz=ctx.tz).iloc[0]
        basis = f"{tag_used} as local time in {ctx.tz} (--tz; camera clock)"
        if pd.isna(t):
            return ctx.finish(records_read=1, time_basis=basis, default_subject="camera", rejects=[
                (rec, f"{tag_used} {dto_s} does not exist or is ambiguous in {ctx.tz}")])
    elif local is not None:
        return ctx.finish(records_read=1, time_basis="none (rejected)", default_subject="camera",
                          rejects=[(rec, f"{tag_used} {dto_s} is local camera time with no "
                                         "offset and no GPS time: pass --tz to state its zone")])
    else:
        return ctx.finish(records_read=1, time_basis="none (rejected)", default_subject="camera",
                          rejects=[(rec, "no usable capture time (no GPS time, no DateTime tags)")])
    if not (timebase.PLAUSIBLE[0] <= t <= timebase.PLAUSIBLE[1]):
        return ctx.finish(records_read=1, time_basis=basis, default_subject="camera",
                          rejects=[(rec, f"implausible capture time {t.isoformat()}")])
    extra["map_datum"] = _text(tags, "GPS GPSMapDatum")
    alt = _ratios(tags.get("GPS GPSAltitude"))
    alt_m = alt[0] if alt else None
    if alt_m is not None and _text(tags, "GPS GPSAltitudeRef") == "1":
        alt_m = -alt_m
    hpe = _ratios(tags.get("GPS Tag 0x001F")) or _ratios(tags.get("GPS GPSHPositioningError"))
    spd = _ratios(tags.get("GPS GPSSpeed"))
    sref = _text(tags, "GPS GPSSpeedRef") or "K"
    trk = _ratios(tags.get("GPS GPSTrack"))
    flag_s = "|".join(sorted(flags))
    events = pd.DataFrame([{"record": rec, "t_utc": t, "kind": "photo", "text": name,
                            "lat": lat, "lon": lon, "flags": flag_s, "extra": compact_json(extra)}])
    fixes = None
    if lat is not None and lon is not None:
        fixes = pd.DataFrame([{
            "record": rec, "t_utc": t, "lat": lat, "lon": lon, "alt_m": alt_m,
            "h_acc_m": hpe[0] if hpe else None,
            "speed_mps": spd[0] * _SPEED.get(sref, 1 / 3.6) if spd else None,
            "course_deg": trk[0] if trk else None, "fix_kind": "photo", "flags": flag_s,
            "extra": compact_json(extra)}])
    return ctx.finish(records_read=1, time_basis=basis, fixes=fixes, events=events,
                      default_subject="camera")
