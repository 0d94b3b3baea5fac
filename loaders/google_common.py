"""Helpers shared by the Google location loaders (Takeout, Semantic, on-device Timeline).

Coordinates come in four spellings: integer ``latitudeE7``/``longitudeE7`` (or
``latE7``/``lngE7``; degrees x 1e7), degree-sign strings ``'-27.4127738°, 163.5638958°'``
(Android on-device export), ``geo:lat,lng`` URIs (iOS export) and numbers as strings
(``'0.950000'``, iOS). Times are ISO-8601 with ``Z`` or an offset, or Unix milliseconds as
a string (``timestampMs``, pre-2019 Takeout).

Old Takeout exports contain E7 values that overflowed a signed 32-bit integer (a latitude
``> 900000000``, a longitude ``> 1800000000``): the documented repair, used by every
parser of these files, is to subtract 2**32; such rows get ``{"e7_wrapped": true}`` in
``extra``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .. import timebase

__all__ = [
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
    """True when ``head`` is a JSON object whose first key is ``first_key`` (BOM tolerated)."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return re.match(rb'\{\s*"' + re.escape(first_key.encode()) + rb'"\s*:', text) is not None


def fix_kind(source: object) -> str:
    """Canonical fix kind for a Google ``source`` string (``unknown`` when absent)."""
    if isinstance(source, str):
        return FIX_KIND.get(source.upper(), "unknown")
    return "unknown"


def number(value: object) -> float | None:
    """A finite float from a JSON number or a numeric string; ``None`` otherwise."""
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
    """Degrees from E7 integers: ``(lat, lon, wrapped)`` or a reason string."""
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
    """Degrees from ``'50.05°, 14.34°'``, ``'geo:50.05,14.34'`` or ``{"latLng": ...}``."""
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
    """UTC time from an ISO string with ``Z``/offset, or Unix ms (``unix_ms``); else a reason."""
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
    """Subject id for a Google ``deviceTag``/``deviceId`` (each device its own subject)."""
    if tag is None or isinstance(tag, (bool, dict, list)):
        return None
    return f"google-device-{tag}"


def first(d: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first of ``keys`` present in ``d`` (``None`` if none)."""
    for k in keys:
        if k in d:
            return d[k]
    return None
