"""Local time of a place, always written with its UTC offset.

Exhibits never show the viewer's browser time. Every time label is computed here, in
Python, from the time zone *of the place* (timezonefinder on the position, zoneinfo for the
rules, so summer time is right), and written with the offset: ``2025-10-26 02:30:00 CET
(UTC+01:00)``. The browser only displays the finished strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .timebase import tz_finder

__all__ = ["TZ_CONVENTION", "fmt_clock", "fmt_duration", "fmt_local", "fmt_local_many", "fmt_offset", "tz_at", "tz_names"]

#: The sentence every exhibit footer carries about time.
TZ_CONVENTION = ("Times are shown in the local time of the place (IANA zone from the position, "
                 "summer time applied) with the UTC offset; UTC is given alongside in the exports. "
                 "The viewer's computer time zone is never used.")

@lru_cache(maxsize=65536)
def _tz_rounded(lat3: int, lon3: int) -> str:
    tf = tz_finder()
    name = tf.timezone_at(lat=lat3 / 1000.0, lng=lon3 / 1000.0)
    return str(name) if name else "UTC"


def tz_at(lat: float, lon: float) -> str:
    """IANA time zone at a position (positions rounded to 0.001 degrees, about 100 m).

    Parameters
    ----------
    lat, lon : float
        Position in WGS84 degrees.

    Returns
    -------
    str
        An IANA zone name; ``UTC`` where no zone is found (at sea).

    Example
    -------
    >>> tz_at(51.05, 3.72)
    'Europe/Brussels'
    """
    if not (np.isfinite(lat) and np.isfinite(lon)):
        return "UTC"
    return _tz_rounded(round(lat * 1000), round(lon * 1000))


def tz_names(lat: Iterable[float], lon: Iterable[float]) -> list[str]:
    """Vector form of :func:`tz_at` (looks each distinct rounded position up once).

    Parameters
    ----------
    lat, lon : iterable of float
        Positions in WGS84 degrees, equal length.

    Returns
    -------
    list of str
        One IANA zone name per position.

    Example
    -------
    >>> tz_names([51.05, 50.966], [3.72, 1.883])
    ['Europe/Brussels', 'Europe/Paris']
    """
    la = np.round(np.asarray(list(lat), dtype=float) * 1000)
    lo = np.round(np.asarray(list(lon), dtype=float) * 1000)
    if not len(la):
        return []
    ok = np.isfinite(la) & np.isfinite(lo)
    la[~ok], lo[~ok] = 0, 0
    pairs = np.stack([la, lo], axis=1).astype(np.int64)
    uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
    names = [_tz_rounded(int(a), int(b)) for a, b in uniq]
    out = [names[i] for i in np.asarray(inv).ravel()]
    return [n if good else "UTC" for n, good in zip(out, ok, strict=True)]


def fmt_offset(t: pd.Timestamp, tz: str) -> str:
    """``UTC+02:00`` for ``t`` in ``tz``.

    Parameters
    ----------
    t : pandas.Timestamp
        An aware time.
    tz : str
        IANA zone name.

    Returns
    -------
    str
        ``UTC±HH:MM``, the zone's offset at ``t`` (summer time included).

    Example
    -------
    >>> fmt_offset(pd.Timestamp("2025-10-26T00:30Z"), "Europe/Brussels")
    'UTC+02:00'
    """
    off = t.tz_convert(ZoneInfo(tz)).utcoffset()
    assert off is not None
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def fmt_local(t: pd.Timestamp | None, tz: str, *, seconds: bool = True) -> str:
    """``2025-10-26 02:30:00 CET (UTC+01:00)``: ``t`` (aware) in the zone ``tz``.

    Parameters
    ----------
    t : pandas.Timestamp or None
        An aware time; None or NaT gives ``unknown``.
    tz : str
        IANA zone name of the place.
    seconds : bool, default True
        Show seconds (False gives ``HH:MM``).

    Returns
    -------
    str
        Local date and time, zone abbreviation and UTC offset; ``unknown`` when missing.

    Example
    -------
    >>> fmt_local(pd.Timestamp("2025-10-26T00:30Z"), "Europe/Brussels")
    '2025-10-26 02:30:00 CEST (UTC+02:00)'
    >>> fmt_local(pd.Timestamp("2025-10-26T01:30Z"), "Europe/Brussels")
    '2025-10-26 02:30:00 CET (UTC+01:00)'
    """
    if t is None or pd.isna(t):
        return "unknown"
    loc = t.tz_convert(ZoneInfo(tz))
    body = loc.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{body} {loc.tzname()} ({fmt_offset(t, tz)})"


def fmt_duration(td: pd.Timedelta | None) -> str:
    """A duration in words, the one format every exhibit, export and CLI table uses.

    Minutes from one minute on (rounded to the nearest), hours with two-digit minutes,
    days in front; seconds only below one minute; ``unknown`` when missing.

    Parameters
    ----------
    td : pandas.Timedelta or None
        The duration; None or NaT gives ``unknown``.

    Returns
    -------
    str
        The duration in words as described above.

    Example
    -------
    >>> [fmt_duration(pd.Timedelta(x)) for x in ("45s", "49min", "50min 49s", "65min", "29h 24min")]
    ['45 s', '49 min', '51 min', '1 h 05 min', '1 d 5 h 24 min']
    >>> fmt_duration(None)
    'unknown'
    """
    if td is None or pd.isna(td):
        return "unknown"
    total = round(pd.Timedelta(td).total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    if total < 60:
        return f"{sign}{total} s"
    minutes = (total + 30) // 60
    d, rest = divmod(minutes, 1440)
    h, m = divmod(rest, 60)
    if d:
        return f"{sign}{d} d {h} h {m:02d} min"
    if h:
        return f"{sign}{h} h {m:02d} min"
    return f"{sign}{m} min"


def fmt_clock(t: pd.Timestamp | None, tz: str, *, ref: pd.Timestamp | None = None) -> str:
    """``13:02``: the local time of day of ``t`` in ``tz``, with the date in front
    (``2025-10-24 23:50``) when it falls on another local day than ``ref`` (or when no
    ``ref`` is given); ``unknown`` when missing.

    Parameters
    ----------
    t : pandas.Timestamp or None
        An aware time; None or NaT gives ``unknown``.
    tz : str
        IANA zone name.
    ref : pandas.Timestamp, optional
        A time whose local day needs no date; default None: the date is always shown.

    Returns
    -------
    str
        ``HH:MM`` or ``YYYY-MM-DD HH:MM`` local time; ``unknown`` when missing.

    Example
    -------
    >>> t = pd.Timestamp("2025-10-24T11:02Z")
    >>> fmt_clock(t, "Europe/Brussels", ref=t), fmt_clock(t, "Europe/Brussels")
    ('13:02', '2025-10-24 13:02')
    """
    if t is None or pd.isna(t):
        return "unknown"
    loc = t.tz_convert(ZoneInfo(tz))
    if ref is not None and pd.notna(ref) and ref.tz_convert(ZoneInfo(tz)).date() == loc.date():
        return loc.strftime("%H:%M")
    return loc.strftime("%Y-%m-%d %H:%M")


def fmt_local_many(times: pd.Series, zones: list[str], *, seconds: bool = True) -> list[str]:
    """Vector form of :func:`fmt_local`: ``times`` (UTC) each in its own zone.

    Parameters
    ----------
    times : pandas.Series
        Aware times (NaT gives ``unknown``).
    zones : list of str
        One IANA zone name per time.
    seconds : bool, default True
        Show seconds.

    Returns
    -------
    list of str
        The same strings :func:`fmt_local` gives, one per time.

    Example
    -------
    >>> fmt_local_many(pd.Series(pd.to_datetime(["2025-10-26T01:30Z", None], utc=True)),
    ...                ["Europe/Brussels", "Europe/Brussels"])
    ['2025-10-26 02:30:00 CET (UTC+01:00)', 'unknown']
    """
    out = [""] * len(times)
    if not len(times):
        return out
    t = pd.Series(times.to_numpy(), dtype="datetime64[ns, UTC]")
    z = pd.Series(zones, dtype="object")
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    for zone, idx in z.groupby(z, sort=True).groups.items():
        pos = np.asarray(idx)
        loc = t.iloc[pos].dt.tz_convert(ZoneInfo(str(zone)))
        body = loc.dt.strftime(fmt).tolist()
        abbr = loc.dt.strftime("%Z").tolist()
        off = loc.dt.strftime("%z").tolist()
        na = t.iloc[pos].isna().tolist()
        for k, p in enumerate(pos):
            if na[k]:
                out[p] = "unknown"
            else:
                o = off[k]
                out[p] = f"{body[k]} {abbr[k]} (UTC{o[0]}{o[1:3]}:{o[3:5]})"
    return out
