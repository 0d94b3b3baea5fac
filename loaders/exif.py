"""Geotagged photos (JPEG, HEIC/HEIF, TIFF-based raw) via EXIF, read with exifread.

Recognised by their first bytes: JPEG ``FF D8 FF``, HEIF ``ftyp`` brands, and the TIFF
header (``II*\\0`` or ``MM\\0*``) that TIFF, DNG and NEF (and CR2, ARW, PEF) files share,
whatever their extension.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import exifread
import pandas as pd

from .. import timebase
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["load_exif", "sniff_exif"]

CLOCK_TOLERANCE_S = 120.0
_SPEED = {"K": 1 / 3.6, "M": 0.44704, "N": 1852 / 3600}


#: TIFF byte-order marks with the magic number 42: TIFF, and the raw formats built on it
#: (Adobe DNG, Nikon NEF, Canon CR2, Sony ARW, Pentax PEF, ...).
#: Recognised by these bytes, not by the extension (.tif, .tiff, .dng, .nef, ...): a renamed
#: file is still read, and a file named .tif that is no TIFF is not.
TIFF_MAGIC = (b"II*\x00", b"MM\x00*")


def sniff_exif(path: Path, head: bytes) -> bool:
    """JPEG (FF D8 FF), HEIF/HEIC (``ftypheic``/``mif1``/``heix``/``msf1``) or TIFF-based
    (``II*\\0`` little-endian, ``MM\\0*`` big-endian: TIFF, DNG, NEF, ...) images.

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough; the extension is ignored).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether ``head`` starts like a JPEG, HEIF or TIFF-based image.

    Example
    -------
    >>> sniff_exif(Path("a.jpg"), bytes.fromhex("ffd8ffe1")), sniff_exif(Path("a.dng"), b"II*\\0")
    (True, True)
    >>> sniff_exif(Path("a.jpg"), b"<html>")
    False
    """
    if head[:3] == b"\xff\xd8\xff" or head[:4] in TIFF_MAGIC:
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


@dataclass
class _Photo:
    """What one photo's tags say, built step by step by :func:`load_exif`."""

    tags: dict[str, Any]
    extra: dict[str, Any]
    lat: float | None = None
    lon: float | None = None
    flags: list[str] = field(default_factory=list)


class _Reject(Exception):
    """The photo (one record) is a reject: ``reason``, and the time basis reached so far."""

    def __init__(self, reason: str, basis: str = "none (rejected)") -> None:
        super().__init__(reason)
        self.reason, self.basis = reason, basis


def _read_tags(path: Path) -> dict[str, Any]:
    """Step 1: the EXIF tags, or a reject naming the parser's error."""
    logging.getLogger("exifread").setLevel(logging.ERROR)
    with open(path, "rb") as fh:
        try:
            return dict(exifread.process_file(fh, details=False))
        except (MemoryError, RecursionError):
            raise
        except Exception as exc:  # exifread raises anything on a damaged photo: the one record is a reject
            raise _Reject(f"metadata unreadable: exifread could not parse this file's EXIF/HEIF "
                          f"structure ({type(exc).__name__}: {exc}); the file is damaged or not "
                          "a photo") from exc


def _position(photo: _Photo) -> None:
    """Step 2: the GPS position (or none when there is no GPS IFD); a reject when the GPS
    IFD is present but unusable."""
    tags = photo.tags
    if not ("Image GPSInfo" in tags or any(k.startswith("GPS ") for k in tags)):
        return
    lat, why1 = _dms(tags, "GPSLatitude")
    lon, why2 = _dms(tags, "GPSLongitude")
    problem = why1 or why2
    if problem is None and lat is not None and lon is not None:
        if abs(lat) > 90 or abs(lon) > 180:
            problem = f"GPS position {lat},{lon} out of range"
        elif lat == 0 and lon == 0:
            problem = "GPS position is 0,0 (placeholder)"
    if not any(k.startswith("GPS ") for k in tags):
        problem = "GPS IFD present but holds no values (malformed)"
    if problem:
        raise _Reject(f"GPS IFD unusable: {problem}")
    photo.lat, photo.lon = lat, lon


def _clock_check(photo: _Photo, local: pd.Timestamp, off: pd.Timedelta | None,
                 gps_t: pd.Timestamp) -> None:
    """The camera clock against GPS UTC and against the local time at the photo."""
    diff = (local.tz_localize("UTC") - gps_t).total_seconds()
    photo.extra["camera_minus_gps_s"] = round(diff, 3)
    loc_off = off if off is not None else (
        _zone_offset(photo.lat, photo.lon, gps_t)
        if photo.lat is not None and photo.lon is not None else None)
    if loc_off is not None:
        vs_local = diff - loc_off.total_seconds()
        photo.extra["camera_minus_local_s"] = round(vs_local, 3)
        if abs(vs_local) > CLOCK_TOLERANCE_S:
            photo.flags.append("clock_offset")


def _capture_time(photo: _Photo, tz: str | None) -> tuple[pd.Timestamp, str]:
    """Step 3: (UTC capture time, time basis) in the order of preference of the module doc."""
    tags = photo.tags
    gps_t = _gps_time(tags)
    dto_s = _text(tags, "EXIF DateTimeOriginal") or _text(tags, "EXIF DateTimeDigitized")
    tag_used = "DateTimeOriginal"
    if dto_s is None:
        dto_s, tag_used = _text(tags, "Image DateTime"), "DateTime (IFD0, last change)"
    local = _local(dto_s)
    off_s = _text(tags, "EXIF OffsetTimeOriginal") or _text(tags, "EXIF OffsetTime")
    off = _offset(off_s)
    if local is not None and off is not None:
        photo.extra["utc_offset"] = off_s
    photo.extra["camera_local"] = str(local) if local is not None else None
    photo.extra["time_tag"] = tag_used if local is not None else None
    if gps_t is not None:
        photo.flags.append("time_from_gps")
        if local is not None:
            _clock_check(photo, local, off, gps_t)
        return gps_t, "GPSDateStamp+GPSTimeStamp (UTC, GPS receiver)"
    if local is not None and off is not None:
        return (local - off).tz_localize("UTC"), f"{tag_used} with OffsetTimeOriginal (camera clock)"
    if local is not None and tz:
        t = timebase.localize(pd.Series([local]), tz=tz).iloc[0]
        basis = f"{tag_used} as local time in {tz} (--tz; camera clock)"
        if pd.isna(t):
            raise _Reject(f"{tag_used} {dto_s} does not exist or is ambiguous in {tz}", basis)
        return t, basis
    if local is not None:
        raise _Reject(f"{tag_used} {dto_s} is local camera time with no offset and no GPS "
                      "time: pass --tz to state its zone")
    raise _Reject("no usable capture time (no GPS time, no DateTime tags)")


def _fix_row(photo: _Photo, rec: str, t: pd.Timestamp, flag_s: str) -> dict[str, Any]:
    """Step 4: the photo fix: altitude, accuracy, speed and course from the GPS IFD."""
    tags = photo.tags
    alt = _ratios(tags.get("GPS GPSAltitude"))
    alt_m = alt[0] if alt else None
    if alt_m is not None and _text(tags, "GPS GPSAltitudeRef") == "1":
        alt_m = -alt_m
    hpe = _ratios(tags.get("GPS Tag 0x001F")) or _ratios(tags.get("GPS GPSHPositioningError"))
    spd = _ratios(tags.get("GPS GPSSpeed"))
    sref = _text(tags, "GPS GPSSpeedRef") or "K"
    trk = _ratios(tags.get("GPS GPSTrack"))
    return {"record": rec, "t_utc": t, "lat": photo.lat, "lon": photo.lon, "alt_m": alt_m,
            "h_acc_m": hpe[0] if hpe else None,
            "speed_mps": spd[0] * _SPEED.get(sref, 1 / 3.6) if spd else None,
            "course_deg": trk[0] if trk else None, "fix_kind": "photo", "flags": flag_s,
            "extra": compact_json(photo.extra)}


@register(LoaderSpec(
    name="exif",
    description="Geotagged photos (JPEG/HEIC/TIFF/DNG/NEF EXIF via exifread): photo fixes and events",
    sniff=sniff_exif,
    produces=("fixes", "events"),
))
def load_exif(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load one photo. ``ctx.tz`` is used only for a local time without offset or GPS time.

    The steps: read the tags, the GPS position, the capture time, then the rows; a step
    that finds the photo unusable makes its one record a reject with the reason.

    Parameters
    ----------
    path
        The photo (only read).
    ctx
        The load context (source identity, subject, ``tz`` for a camera time without
        offset) built by :func:`routetrace.loaders.load`.

    Returns
    -------
    LoadResult
        One record (``image``): an event ``kind="photo"`` and, with a usable GPS
        position, a fix ``fix_kind="photo"``; or one reject with the reason. Records
        read = 1.

    Example
    -------
    A JPEG taken at 12:00 local time (+02:00) at 33°30' S, 70°36' W:

    >>> import io, tempfile
    >>> from PIL import Image
    >>> from routetrace.loaders import load
    >>> ex = Image.Exif()
    >>> ex.get_ifd(0x8769).update({0x9003: "2025:10:24 12:00:00", 0x9011: "+02:00"})
    >>> ex.get_ifd(0x8825).update({1: "S", 2: (33.0, 30.0, 0.0), 3: "W", 4: (70.0, 36.0, 0.0)})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "photo.jpg"
    ...     Image.new("RGB", (8, 8)).save(p, "JPEG", exif=ex.tobytes())
    ...     res = load(p)
    >>> res.fixes[["t_utc", "lat", "lon", "fix_kind", "record"]]
                          t_utc   lat   lon fix_kind record
    0 2025-10-24 10:00:00+00:00 -33.5 -70.6    photo  image
    >>> res.events["kind"].tolist(), res.records_read
    (['photo'], 1)
    """
    rec = "image"
    name = Path(ctx.member or ctx.display_path).name
    try:
        tags = _read_tags(path)
        photo = _Photo(tags=tags, extra={"file": name, "make": _text(tags, "Image Make"),
                                         "model": _text(tags, "Image Model")})
        _position(photo)
        t, basis = _capture_time(photo, ctx.tz)
        if not (timebase.PLAUSIBLE[0] <= t <= timebase.PLAUSIBLE[1]):
            raise _Reject(f"implausible capture time {t.isoformat()}", basis)
    except _Reject as rej:
        return ctx.finish(records_read=1, time_basis=rej.basis, default_subject="camera",
                          rejects=[(rec, rej.reason)])
    photo.extra["map_datum"] = _text(tags, "GPS GPSMapDatum")
    flag_s = "|".join(sorted(photo.flags))
    events = pd.DataFrame([{"record": rec, "t_utc": t, "kind": "photo", "text": name,
                            "lat": photo.lat, "lon": photo.lon, "flags": flag_s,
                            "extra": compact_json(photo.extra)}])
    fixes = None
    if photo.lat is not None and photo.lon is not None:
        fixes = pd.DataFrame([_fix_row(photo, rec, t, flag_s)])
    return ctx.finish(records_read=1, time_basis=basis, fixes=fixes, events=events,
                      default_subject="camera")
