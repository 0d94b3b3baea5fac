"""Epochs and time conversions used by evidence formats, with their sources.

Every epoch constant lives here, once, with where it is documented. Conversions return
``datetime64[ns, UTC]`` Series; values outside :data:`PLAUSIBLE` are returned as NaT so the
caller can reject the record with a reason (never silently clamp).

Sources
-------
* Apple Core Data / Cocoa (``NSDate``): seconds since 2001-01-01T00:00:00Z, as REAL or
  INTEGER ("Apple Developer: NSDate timeIntervalSinceReferenceDate"; iLEAPP, APOLLO).
* Unix: seconds since 1970-01-01T00:00:00Z (POSIX.1).
* Teltonika codec 7 (GH3000): low 30 bits are seconds since 2007-01-01T00:00:00Z
  (Teltonika wiki, "Codec 7"; traccar TeltonikaProtocolDecoder).
* FIT: seconds since 1989-12-31T00:00:00Z (Garmin FIT SDK, "date_time").
* GPS: seconds since 1980-01-06T00:00:00Z; week numbers roll over every 1024 weeks
  (IS-GPS-200, 20.3.3.3.1.1: a 10-bit week number). A receiver whose firmware resolves
  the rollover wrongly reports dates exactly :data:`GPS_WEEK_ROLLOVER` (7168 days) early,
  e.g. 1999-10-16 for 2019-06-01 (US Coast Guard NAVCEN, "GPS Week Number Roll Over",
  2019). NMEA and EXIF carry UTC already.
* Satellite systems named by NMEA talker ids, first satellite launched
  (:data:`GNSS_FIRST_LAUNCH`): Galileo GIOVE-A 2005-12-28 (ESA), BeiDou-1A 2000-10-31
  (CSNO), QZS-1 2010-09-11 (JAXA), IRNSS-1A 2013-07-01 (ISRO). A receiver cannot report
  a fix from a system before its first satellite was in orbit.
* Windows FILETIME: 100 ns ticks since 1601-01-01T00:00:00Z.
"""

from __future__ import annotations

import functools
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from .errors import ParameterError

__all__ = [
    "APPLE_EPOCH",
    "FIT_EPOCH",
    "GNSS_FIRST_LAUNCH",
    "GPS_EPOCH",
    "GPS_WEEK_ROLLOVER",
    "PLAUSIBLE",
    "TELTONIKA_GH_EPOCH",
    "UNIX_EPOCH",
    "as_ns_utc",
    "from_epoch",
    "localize",
    "parse_iso",
    "zone",
]

UNIX_EPOCH = pd.Timestamp("1970-01-01T00:00:00Z")
APPLE_EPOCH = pd.Timestamp("2001-01-01T00:00:00Z")
TELTONIKA_GH_EPOCH = pd.Timestamp("2007-01-01T00:00:00Z")
FIT_EPOCH = pd.Timestamp("1989-12-31T00:00:00Z")
GPS_EPOCH = pd.Timestamp("1980-01-06T00:00:00Z")
FILETIME_EPOCH = pd.Timestamp("1601-01-01T00:00:00Z")

#: The GPS week-number rollover period: 1024 weeks = 7168 days (IS-GPS-200).
GPS_WEEK_ROLLOVER = pd.Timedelta(weeks=1024)

#: NMEA talker id -> UTC date of the first satellite of that system (see the module notes).
GNSS_FIRST_LAUNCH: dict[str, pd.Timestamp] = {
    "GA": pd.Timestamp("2005-12-28T00:00:00Z"),  # Galileo (GIOVE-A)
    "GB": pd.Timestamp("2000-10-31T00:00:00Z"),  # BeiDou (BeiDou-1A)
    "BD": pd.Timestamp("2000-10-31T00:00:00Z"),  # BeiDou, older talker id
    "GQ": pd.Timestamp("2010-09-11T00:00:00Z"),  # QZSS (QZS-1)
    "GI": pd.Timestamp("2013-07-01T00:00:00Z"),  # NavIC (IRNSS-1A)
}

#: Times outside this window are treated as bogus by loaders (rejected with a reason).
PLAUSIBLE = (pd.Timestamp("1980-01-01T00:00:00Z"), pd.Timestamp("2100-01-01T00:00:00Z"))

_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def from_epoch(values: object, *, epoch: pd.Timestamp, unit: str = "s") -> pd.Series:
    """Convert numbers counted from ``epoch`` in ``unit`` to UTC times.

    Implausible values (outside :data:`PLAUSIBLE`, NaN, inf, overflow) become NaT.

    Parameters
    ----------
    values : array-like
        Numbers (or numeric text; anything else becomes NaT).
    epoch : pandas.Timestamp
        The zero of the count, aware (e.g. :data:`APPLE_EPOCH`).
    unit : str, default "s"
        ``s``, ``ms``, ``us`` or ``ns``; seconds is what most sources count.

    Returns
    -------
    pandas.Series
        ``datetime64[ns, UTC]``, one per value, NaT where implausible.

    Example
    -------
    >>> from_epoch([0.5, 123456789012345], epoch=APPLE_EPOCH).tolist()[0]
    Timestamp('2001-01-01 00:00:00.500000+0000', tz='UTC')
    """
    arr = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype="float64")
    scale = _UNIT_NS[unit]
    lo = (PLAUSIBLE[0] - epoch).value / scale
    hi = (PLAUSIBLE[1] - epoch).value / scale
    ok = np.isfinite(arr) & (arr >= lo) & (arr <= hi)
    ns = np.zeros(arr.shape, dtype="int64")
    # split whole and fractional units to keep nanosecond precision for large epochs
    whole = np.floor(arr[ok])
    ns[ok] = whole.astype("int64") * scale + np.round((arr[ok] - whole) * scale).astype("int64")
    ns[ok] += epoch.value
    out = pd.Series(pd.to_datetime(ns, unit="ns", utc=True))
    out[~ok] = pd.NaT
    return out.astype("datetime64[ns, UTC]")


@functools.lru_cache(maxsize=1)
def tz_finder() -> Any:
    """The one timezonefinder of the process (offline polygons, held in memory: no files
    left open at exit). ``tz_finder().timezone_at(lat=..., lng=...)`` gives an IANA name
    or ``None`` at sea."""
    from timezonefinder import TimezoneFinder

    return TimezoneFinder(in_memory=True)


def zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise :class:`ParameterError` naming it.

    Parameters
    ----------
    name : str
        An IANA zone name such as ``Europe/Brussels``.

    Returns
    -------
    zoneinfo.ZoneInfo
        The zone.

    Raises
    ------
    ParameterError
        For a name that is not an IANA zone.

    Example
    -------
    >>> zone("Europe/Brussels")
    zoneinfo.ZoneInfo(key='Europe/Brussels')
    >>> zone("CEST")
    Traceback (most recent call last):
    ...
    routetrace.errors.ParameterError: unknown time zone 'CEST'; ...
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ParameterError(f"unknown time zone {name!r}; use an IANA name such as "
                             "'Europe/Brussels' or 'UTC'") from exc


def localize(naive: pd.Series, *, tz: str) -> pd.Series:
    """Interpret naive local times in zone ``tz`` and return UTC.

    Times that do not exist (spring-forward) or are ambiguous (fall-back hour) become NaT
    so the loader rejects them with a reason instead of guessing.

    Parameters
    ----------
    naive : pandas.Series
        Naive local times (datetime64 or text pandas can parse).
    tz : str
        The stated IANA zone of the source.

    Returns
    -------
    pandas.Series
        ``datetime64[ns, UTC]``; NaT for nonexistent and ambiguous local times.

    Raises
    ------
    ParameterError
        For a ``tz`` that is not an IANA zone.

    Example
    -------
    >>> s = pd.Series(["2025-10-26 01:30", "2025-10-26 02:30", "2025-10-26 03:30"])
    >>> [str(t) for t in localize(s, tz="Europe/Brussels")]  # 02:30 happened twice that night
    ['2025-10-25 23:30:00+00:00', 'NaT', '2025-10-26 02:30:00+00:00']
    """
    zone(tz)
    s = pd.to_datetime(naive)
    local = s.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return as_ns_utc(local)  # a time past 2262 becomes NaT, never a wrapped-around one


def as_ns_utc(parsed: pd.Series | pd.DatetimeIndex) -> pd.Series:
    """Aware times of any resolution (pandas parses text to seconds or microseconds) as
    ``datetime64[ns, UTC]``, NaT where a time lies outside what nanoseconds can hold
    (1677-09-21 .. 2262-04-11).

    numpy's cast of such a time to nanoseconds wraps around without an error (2600-01-01
    became 2015-06-13, a plausible time); pandas' own cast raises. Either way one such value
    must not be kept nor end the file: it becomes NaT, and the caller rejects it as an
    unreadable or implausible time.

    Parameters
    ----------
    parsed : pandas.Series or pandas.DatetimeIndex
        Times with a zone, any resolution.

    Returns
    -------
    pandas.Series
        ``datetime64[ns, UTC]``, NaT where out of range or missing.

    Example
    -------
    >>> t = pd.to_datetime(["2600-01-01T00:00:00Z", "2025-10-26T21:00:00Z"], utc=True,
    ...                    format="ISO8601")
    >>> [str(x) for x in as_ns_utc(t)]
    ['NaT', '2025-10-26 21:00:00+00:00']
    """
    s = pd.Series(parsed)
    if s.dt.tz is None:
        raise ValueError("as_ns_utc needs times with a zone")
    lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    ok = s.notna() & (s >= lo) & (s <= hi)
    return s.where(ok).dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def parse_iso(values: object) -> pd.Series:
    """Parse ISO-8601 strings that carry ``Z`` or an offset; others become NaT.

    Mixed offsets in one column are respected (each converted to UTC).

    Parameters
    ----------
    values : array-like
        Text values.

    Returns
    -------
    pandas.Series
        ``datetime64[ns, UTC]``; NaT for text without a zone, unparsable text, or a time
        outside :data:`PLAUSIBLE`.

    Example
    -------
    >>> [str(t) for t in parse_iso(["2025-10-26T21:00:00Z", "2025-10-26T23:00:00+02:00",
    ...                             "2025-10-26 21:00"])]
    ['2025-10-26 21:00:00+00:00', '2025-10-26 21:00:00+00:00', 'NaT']
    """
    s = pd.Series(values, dtype="object")
    text = s.astype("string").str.strip()
    has_zone = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    if has_zone.any():
        parsed = pd.to_datetime(text[has_zone], utc=True, errors="coerce", format="ISO8601")
        out[has_zone] = as_ns_utc(parsed)
    bad = (out < PLAUSIBLE[0]) | (out > PLAUSIBLE[1])
    out[bad] = pd.NaT
    return out
