"""Generic delimited text (CSV, TSV, ``;``- and ``|``-separated) position logs.

What is sniffed from the first 64 KiB
-------------------------------------
* **Delimiter**: the one of ``,`` ``;`` tab ``|`` that splits the header and the data lines
  into the most consistent number (>= 2) of fields.
* **Header**: ``#`` comment lines and free-text preamble lines are skipped; the header is
  the first line whose field count matches the data lines below it and that names a
  latitude (or WKT geometry) column. A ``#`` line just above the header with the same
  number of fields is read as a **units line** (Garmin G1000: ``ft msl``, ``kt``).
* **Decimal comma**: with a non-comma delimiter, numbers written ``52,5200`` are read as
  ``52.5200``.
* **Padding**: NUL bytes (Columbus V-900 pads fixed-width fields with NULs) are removed,
  CRLF and LF both work, spaces around fields are trimmed, a trailing delimiter is fine.

Column mapping
--------------
Columns are recognised by name, case, spaces and punctuation ignored (see
:data:`SYNONYMS`): ``lat/latitude/Latitude/LATITUDE N/S``, ``lon/lng/longitude``,
``time/timestamp/datetime`` or ``date`` + ``time`` (``Lcl Date`` + ``Lcl Time``), a UTC
offset column (``UTCOfst``), ``accuracy``, ``altitude/elevation/height``, ``speed``,
``course/track/heading``, a validity column (``VALID``: ``No fix`` rows are rejects), and
a WKT ``POINT (lon lat)`` geometry column. Hemisphere letters are read from suffixes
(``49.0733336N``, ``125.7648551W``) or from separate ``N/S`` and ``E/W`` columns.
Units are taken from the header (``Snelheid (km/h)``), from a units line, or from the
values themselves (``98.470 m``, ``0.000 km/h``) and converted to metres and m/s
(``ft``, ``km``, ``km/h``, ``kt``/``knots``, ``mph``, ``m/s``).

An explicit mapping overrides the detection: ``options={"columns": {...}}`` maps a role
to the column name as written in the file. Roles: ``lat``, ``lon``, ``ns``, ``ew``,
``geometry``, ``datetime``, ``date``, ``time``, ``utc_offset``, ``epoch``, ``accuracy``,
``altitude``, ``speed``, ``course``, ``valid``, ``subject``. Other options:

``units``       ``{"speed": "knots", "altitude": "ft", "accuracy": "m"}`` (role -> unit)
``date_order``  ``"DMY"`` or ``"MDY"`` for dates like ``03/04/2024`` when the file itself
                does not settle it (a day above 12 settles it)
``time_basis``  ``"utc"``: times without offset are UTC (the user states so)
``fix_kind``    value of ``fix_kind`` (default ``gps`` for the logger presets, else
                ``unknown``)
``chunk_rows``  rows per chunk (default 200,000; memory is bounded by the chunk)
``delimiter``   force the separator; ``decimal``: ``","`` forces decimal commas

On the command line: ``--option columns=lat:Breite,lon:Laenge,datetime:Zeitpunkt``
(or a JSON object), ``--option units=speed:km/h``, ``--option date_order=DMY``.

Example: ``load("export.csv", format="csv", tz="Europe/Brussels",
options={"columns": {"lat": "Breite", "lon": "Laenge", "datetime": "Zeitpunkt"},
"units": {"speed": "km/h"}})``.

Time
----
* ISO-8601 with ``Z`` or an offset (also ``2025-06-01 13:02:03.000000 +00:00``): UTC.
* Unix epoch seconds or milliseconds (all-digit ``timestamp``/``tst``): UTC.
* Local date/time plus an explicit UTC-offset column (Garmin G1000 ``Lcl Date, Lcl Time,
  UTCOfst``): UTC = local - offset.
* Columbus V-900 family (``INDEX,TAG,DATE,TIME,LATITUDE N/S,...``): ``DATE`` is YYMMDD in
  the year 2000 base and ``TIME`` hhmmss, **UTC**: GPSBabel's ``v900.cc`` reader, written
  from the Columbus documentation, reads them as "base year is 2000, default time zone is
  UTC", and ``SPEED`` in km/h (``KPH_TO_MPS``), ``HEIGHT`` in metres.
* MTK logger CSV as written by GPSBabel/BT747 (``INDEX,RCR,DATE,TIME,VALID,LATITUDE,N/S``):
  UTC, the logger's GPS time.
* Any other time without an offset is local time: it needs ``tz`` (``--tz``) or
  ``options={"time_basis": "utc"}``. Without one, a file whose times are all local
  raises :class:`~routetrace.errors.AmbiguousTime` naming the file and saying ``--tz``
  (nothing can be placed in time, so nothing is guessed). In a mixed file the rows that
  carry an offset load and the local ones are rejected with the reason "local time
  without UTC offset ... pass --tz". Non-existent/ambiguous local times (DST changes)
  are rejected, never guessed. Times outside 1980-2100 are rejected.

Records and rejects
-------------------
A record is one data row after the header; its locator is ``row N`` (1-based data row).
Rows without a usable position (``No fix``, empty or out-of-range coordinates, ``0,0``
placeholders) or time are rejects with a reason. A row with values beyond the header's
columns (an unquoted delimiter in a free-text field shifts every later column) is a reject,
not read (the parser gets as many column names as the widest line, found by a quick scan,
so no row is cut to the header's width). In UTF-16 files (not scanned) a row with more than
8 extra fields cannot be split at all and is a reject located by its file line (``line N``). Reading is chunked
(``pandas.read_csv(chunksize=...)``) so memory stays bounded by the chunk size.

Reading fast
------------
A simple file (UTF-8, no quotes or NUL bytes, no space opening a field, every data line as
wide as the others: what loggers and spreadsheets write) is read by Arrow's CSV reader,
cut into the same chunks as pandas' would give, so the tables are the same either way; any
other file by pandas' reader. Per chunk, the checks are vectorised and a reject's reason is
a code until the few rejected rows get their text; the ``row N`` locators are built once,
in Arrow. :func:`stream_csv` yields the canonical tables chunk by chunk (memory bounded by
the chunk, whatever the file's size).
"""

from __future__ import annotations

import codecs
import io
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .. import schema, timebase
from ..errors import AmbiguousTime, CorruptSource, ParameterError
from .base import SNIFF_BYTES, LoadContext, LoaderSpec, LoadResult, register

__all__ = [
    "NO_TZ_REASON",
    "SYNONYMS",
    "Dialect",
    "Table",
    "auto_columns",
    "iter_chunks",
    "load_csv",
    "norm",
    "parse_times",
    "raise_if_all_local",
    "sniff_csv",
    "sniff_dialect",
    "stream_csv",
]

DELIMITERS = (",", ";", "\t", "|")
#: reject reason of a local time when no time zone was stated (shared with ``portal``).
NO_TZ_REASON = ("local time without UTC offset and no time zone given: "
                "pass --tz ZONE (e.g. Europe/Brussels)")
DEFAULT_CHUNK = 200_000

#: role -> normalised column names (lower case, alphanumerics only), in preference order.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "lat": ("latitude", "lat", "latitudens", "latitudedeg", "latdeg", "breedtegraad",
            "breitengrad", "breite", "latitud", "positionlatitude", "y"),
    "lon": ("longitude", "lon", "lng", "long", "longitudeew", "longitudedeg", "londeg",
            "lengtegraad", "längengrad", "laengengrad", "länge", "laenge", "longitud",
            "positionlongitude", "x"),
    "ns": ("ns",),
    "ew": ("ew",),
    "geometry": ("geom", "geometry", "wkt", "thegeom", "wktgeometry"),
    "datetime": ("timestamp", "datetime", "datetimeutc", "utctime", "gpstime", "fixtime",
                 "positionfixtime", "isotime", "recordedat", "createdat", "zeitpunkt",
                 "tijdstip", "horodatage", "time"),
    "epoch": ("tst", "unixtime", "epoch", "timestampms", "timestampmillis"),
    "date": ("date", "lcldate", "utcdate", "datum", "fecha", "dag"),
    "time": ("time", "lcltime", "tijd", "zeit", "heure", "hora", "uhrzeit"),
    "utc_offset": ("utcofst", "utcoffset", "tzoffset", "offset", "utcoffs"),
    "accuracy": ("accuracy", "accuracymeters", "accuracym", "hacc", "horizontalaccuracy",
                 "acc", "nauwkeurigheid", "genauigkeit"),
    "altitude": ("altitude", "alt", "elevation", "ele", "height", "altmsl", "altgps",
                 "altitudem", "hoogte", "höhe", "hoehe", "altitud"),
    "speed": ("speed", "gndspd", "groundspeed", "spd", "velocity", "snelheid",
              "geschwindigkeit", "vitesse", "velocidad", "speedkmh", "speedmps"),
    "course": ("course", "trk", "track", "cog", "bearing", "koers", "heading", "hdg",
               "direction", "richting", "kurs", "cap"),
    "valid": ("valid", "fix", "gpsfix", "fixmode", "fixstatus"),
    "subject": (),
}

#: logger families recognised by their header, with their documented time basis and units.
PRESETS: tuple[dict[str, Any], ...] = (
    {"name": "Columbus V-900", "requires": ("index", "tag", "date", "time", "latitudens"),
     "time_basis": "utc", "units": {"speed": "km/h", "altitude": "m"}, "fix_kind": "gps",
     "date_format": "YYMMDD",
     "basis": "Columbus V-900 DATE YYMMDD + TIME hhmmss, UTC (GPSBabel v900.cc: "
              "'base year is 2000, default time zone is UTC')"},
    {"name": "MTK logger", "requires": ("index", "rcr", "date", "time", "valid", "ns", "ew"),
     "time_basis": "utc", "units": {}, "fix_kind": "gps",
     "basis": "MTK logger CSV (GPSBabel/BT747): DATE + TIME in UTC (GPS time)"},
    {"name": "Garmin G1000", "requires": ("lcldate", "lcltime", "utcofst"),
     "time_basis": None, "units": {}, "fix_kind": "gps",
     "basis": "Garmin G1000 'Lcl Date'+'Lcl Time' minus the 'UTCOfst' column"},
)

_UNIT_FACTORS: dict[str, dict[str, float]] = {
    "length": {"m": 1.0, "meter": 1.0, "meters": 1.0, "metres": 1.0, "ft": 0.3048,
               "feet": 0.3048, "km": 1000.0, "mi": 1609.344},
    "speed": {"m/s": 1.0, "mps": 1.0, "ms": 1.0, "km/h": 1 / 3.6, "kmh": 1 / 3.6,
              "kph": 1 / 3.6, "kmu": 1 / 3.6, "kt": 1852 / 3600, "kts": 1852 / 3600,
              "kn": 1852 / 3600, "knot": 1852 / 3600, "knots": 1852 / 3600,
              "mph": 1609.344 / 3600, "mi/h": 1609.344 / 3600},
    "angle": {"deg": 1.0, "°": 1.0, "degrees": 1.0},
}
_ROLE_DIM = {"altitude": "length", "accuracy": "length", "speed": "speed", "course": "angle"}

_NUM_RE = r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z/°]*)\s*$"
_NO_FIX_RE = r"(?i)^\s*(?:no\s*fix|nofix|invalid|void|v|0|false|none|no)\s*$"


def _series(arr: Any, index: pd.Index) -> pd.Series:
    """An Arrow string array as a ``string`` Series on ``index`` (positional, no alignment)."""
    v = arr.to_pandas(types_mapper=pd.ArrowDtype)
    v.index = index  # positional: set, never aligned
    return v.astype("string")


_GROUP = re.compile(r"(?<!\\)\((?!\?)")


def extract(s: pd.Series, pattern: str) -> pd.DataFrame:
    """``Series.str.extract`` done by pyarrow's RE2 in C++ (pandas loops in Python).

    Returns one ``string`` column per capture group (0, 1, ...), NA where the pattern does
    not match or the group is empty or did not take part.
    """
    counter = iter(range(1000))
    named = _GROUP.sub(lambda _m: f"(?P<g{next(counter)}>", pattern)
    k = len(re.findall(r"\(\?P<g\d+>", named))
    arr = pa.array(s.astype("string[pyarrow]"))
    if k == 0 or len(arr) == 0:
        return pd.DataFrame({i: pd.Series(pd.NA, index=s.index, dtype="string") for i in range(k)})
    st = pc.extract_regex(arr, named)
    out = {}
    for i in range(k):
        col = pc.struct_field(st, [i])
        v = _series(col, s.index)
        out[i] = v.mask(v == "")  # like pandas: an empty or absent group is NA
    return pd.DataFrame(out, index=s.index)


def sub(s: pd.Series, pattern: str, repl: str) -> pd.Series:
    """Regex replace (RE2, ``\\1`` back-references) done by pyarrow in C++."""
    arr = pa.array(s.astype("string[pyarrow]"))
    out = pc.replace_substring_regex(arr, pattern=pattern, replacement=repl)
    return _series(out, s.index)


def norm(name: str) -> str:
    """Normalise a column name for matching: lower case, letters and digits only.

    A unit in brackets (``Speed (km/h)``, ``Alt [ft]``) is dropped first, unless nothing
    else would remain.

    Parameters
    ----------
    name
        The column name as written in the file.

    Returns
    -------
    str
        The key compared with :data:`SYNONYMS`.

    Example
    -------
    >>> norm("Speed (km/h)"), norm("LATITUDE N/S"), norm("Lcl Date")
    ('speed', 'latitudens', 'lcldate')
    """
    base = re.sub(r"\([^)]*\)|\[[^]]*\]", "", str(name))
    key = "".join(ch for ch in base.lower() if ch.isalnum())
    return key or "".join(ch for ch in str(name).lower() if ch.isalnum())


def _unit_in_name(name: str) -> str | None:
    m = re.search(r"[(\[]\s*([^)\]]+?)\s*[)\]]", str(name))
    return m.group(1).strip().lower() if m else None


@dataclass
class Dialect:
    """How a delimited file is written, as sniffed (or stated)."""

    delimiter: str
    header_line: int  # 0-based physical line of the header
    header: list[str]
    units: list[str] | None = None  # from a units line, aligned with header
    decimal_comma: bool = False
    encoding: str = "utf-8"


def _decode(raw: bytes) -> tuple[str, str]:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace"), "utf-16"
    raw = raw.replace(b"\x00", b"")
    try:
        return raw.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        if exc.start > len(raw) - 4:  # a multi-byte character cut by the head's end
            return raw[:exc.start].decode("utf-8-sig"), "utf-8-sig"
        return raw.decode("cp1252", errors="replace"), "cp1252"


def _split(line: str, delim: str) -> list[str]:
    # a quick split that respects simple double quotes (enough for sniffing)
    if '"' not in line:
        return line.split(delim)
    import csv as _pycsv

    return next(_pycsv.reader([line], delimiter=delim))


def sniff_dialect(head: bytes, *, delimiter: str | None = None,
                  need: Sequence[str] = ("lat",),
                  accept: Callable[[list[str]], bool] | None = None) -> Dialect | None:
    """Find delimiter, header line, units line and decimal comma in the file's head.

    ``need`` lists roles (or literal normalised names) the header must contain; the
    default accepts a header with a latitude or WKT geometry column. ``accept`` (when
    given) replaces that test: a function of the header's cells.

    Parameters
    ----------
    head
        The file's first bytes (64 KiB; UTF-8, cp1252 or UTF-16 with a byte-order mark;
        NUL padding is removed).
    delimiter
        Force the separator instead of choosing among ``,`` ``;`` tab ``|``.
    need
        Roles (or normalised names) the header must contain.
    accept
        A test of the header's cells replacing ``need``.

    Returns
    -------
    Dialect or None
        Delimiter, 0-based header line, header cells, units line, decimal comma and
        encoding; ``None`` when no line qualifies as the header.

    Example
    -------
    >>> head = (b"# exported by a logger\\n"
    ...         b"time;lat;lon;speed (km/h)\\n2025-10-26T21:00:00Z;51,0;3,87;50\\n"
    ...         b"2025-10-26T21:01:00Z;51,001;3,87;52\\n")
    >>> d = sniff_dialect(head)
    >>> d.delimiter, d.header_line, d.header, d.decimal_comma
    (';', 1, ['time', 'lat', 'lon', 'speed (km/h)'], True)
    >>> sniff_dialect(b"just some text\\nwithout columns\\n") is None
    True
    """
    text, enc = _decode(head)
    lines = text.splitlines()
    if len(lines) > 1 and not head.endswith((b"\n", b"\r")):
        lines = lines[:-1]  # the head may cut the last line
    lines = lines[:400]
    best: Dialect | None = None
    best_score = -1.0
    for delim in ([delimiter] if delimiter else DELIMITERS):
        for i, line in enumerate(lines[:60]):
            if not line.strip() or line.lstrip().startswith("#") or delim not in line:
                continue
            header = [h.strip().strip('"').strip() for h in _split(line, delim)]
            while header and header[-1] == "":
                header.pop()
            if len(header) < 2:
                continue
            if not (accept(header) if accept is not None else _header_ok(header, need)):
                continue
            data = [ln for ln in lines[i + 1:i + 41] if ln.strip() and not ln.lstrip().startswith("#")]
            if not data:
                continue
            counts = [len([f for f in _split(ln, delim)]) for ln in data]
            n = len(header)
            consistent = sum(1 for c in counts if n <= c <= n + 1) / len(counts)
            if consistent < 0.8:
                continue
            score = consistent * 10 + n / 100
            if score > best_score:
                units = None
                if i > 0 and lines[i - 1].lstrip().startswith("#"):
                    u = [x.strip() for x in _split(lines[i - 1].lstrip()[1:], delim)]
                    if len(u) >= n:
                        units = u[:n]
                dec = False
                if delim != ",":
                    sample = [f.strip() for ln in data for f in _split(ln, delim)]
                    dec = any(re.fullmatch(r"-?\d+,\d+", f) for f in sample) and not any(
                        re.fullmatch(r"-?\d+\.\d+", f) for f in sample)
                best = Dialect(delimiter=delim, header_line=i, header=header, units=units,
                               decimal_comma=dec, encoding=enc)
                best_score = score
            break  # first matching header line for this delimiter
    return best


def _header_ok(header: Sequence[str], need: Sequence[str]) -> bool:
    keys = {norm(h) for h in header}
    for role in need:
        if role == "lat":
            if not (keys & set(SYNONYMS["lat"]) or keys & set(SYNONYMS["geometry"])):
                return False
        elif role in SYNONYMS:
            if not keys & set(SYNONYMS[role]):
                return False
        elif role not in keys:
            return False
    return True


def match_roles(header: Sequence[str], synonyms: Mapping[str, Sequence[str]],
                explicit: Mapping[str, str] | None = None, *,
                option: str = "options['columns']") -> dict[str, str]:
    """Map column roles to header names: the one role matcher of the tabular loaders.

    The ``explicit`` mapping (role -> column, from the user) is taken first; then each
    remaining role, in the order of ``synonyms``, takes the first header whose normalised
    name (:func:`norm`) is one of its synonyms and that no other role took.

    Parameters
    ----------
    header
        The file's column names, as written.
    synonyms
        Role -> normalised names, in order of preference (:data:`SYNONYMS` for generic CSV,
        ``portal.ROLES`` for fleet-portal reports).
    explicit
        Role -> column name given by the user.
    option
        How the user gave ``explicit``, for error messages.

    Returns
    -------
    dict
        Role -> header name, for every role found.

    Raises
    ------
    ParameterError
        When an explicit role is unknown or names a column the header lacks.

    Example
    -------
    >>> match_roles(["Time", "Lat", "Lng"], {"lat": ("lat",), "lon": ("lon", "lng")})
    {'lat': 'Lat', 'lon': 'Lng'}
    """
    out: dict[str, str] = {}
    for role, col in dict(explicit or {}).items():
        if role not in synonyms:
            raise ParameterError(f"unknown column role {role!r} in {option}; "
                                 f"known: {', '.join(sorted(synonyms))}")
        if col not in header:
            raise ParameterError(f"column {col!r} (for {role}) is not in the header "
                                 f"{list(header)!r}")
        out[role] = col
    by_key: dict[str, str] = {}
    for h in header:
        if h:
            by_key.setdefault(norm(h), h)
    taken = set(out.values())
    for role, names in synonyms.items():
        if role in out:
            continue
        hit = next((by_key[k] for k in names if k in by_key and by_key[k] not in taken), None)
        if hit is not None:
            out[role] = hit
            taken.add(hit)
    return out


def auto_columns(header: Sequence[str], explicit: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map roles to header names: the explicit mapping first, then :data:`SYNONYMS`
    (:func:`match_roles`), then the date/time pairing rules of loggers.

    Parameters
    ----------
    header
        The column names as written.
    explicit
        Role -> column name, as the user gives it (``options={"columns": {...}}``); wins
        over detection.

    Returns
    -------
    dict of str to str
        Role (``lat``, ``lon``, ``datetime``, ``date``, ``time``, ``speed``, ...) -> the
        column name as written; roles not found are absent.

    Example
    -------
    >>> auto_columns(["Lcl Date", "Lcl Time", "UTCOfst", "Latitude", "Longitude", "GndSpd"])
    {'lat': 'Latitude', 'lon': 'Longitude', 'date': 'Lcl Date', 'time': 'Lcl Time',
     'utc_offset': 'UTCOfst', 'speed': 'GndSpd'}
    >>> auto_columns(["when", "Breite", "Laenge"], {"datetime": "when"})
    {'datetime': 'when', 'lat': 'Breite', 'lon': 'Laenge'}
    """
    out = match_roles(header, SYNONYMS, explicit)
    # "time" alone is a full timestamp unless a date column sits beside it
    if "date" in out and "datetime" in out and "time" not in out and norm(out["datetime"]) == "time":
        out["time"] = out.pop("datetime")
    elif "datetime" in out and "time" in out and "date" not in out:
        out.pop("time")
    if "date" not in out and "time" in out and "datetime" not in out:
        out["datetime"] = out.pop("time")
    if "date" in out and "datetime" in out and "time" not in out:
        pass  # datetime column is complete by itself; date kept for information only
    return out


class _NulStripped(io.RawIOBase):
    """A read-only byte stream with NUL bytes removed (V-900 padding)."""

    def __init__(self, fh: io.BufferedReader) -> None:
        self._fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while True:
            chunk = self._fh.read(len(b))
            if not chunk:
                return 0
            chunk = chunk.replace(b"\x00", b"")
            if chunk:
                b[:len(chunk)] = chunk
                return len(chunk)


_SKIPPED = re.compile(r"Skipping line (\d+): (.+)")


def _bad_lines(caught: list[warnings.WarningMessage], path: Path) -> list[tuple[str, str]]:
    """The parser's skipped lines as ``(locator, reason)``; other warnings are re-issued.

    A parser warning that is not about one line (data lost without a line to name) stops
    the load with a clear error rather than pass silently.
    """
    bad: list[tuple[str, str]] = []
    for w in caught:
        if not issubclass(w.category, pd.errors.ParserWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        lines = [m for m in (_SKIPPED.match(x.strip()) for x in str(w.message).splitlines()) if m]
        if not lines:
            raise CorruptSource(f"the CSV parser would lose data: {str(w.message).strip()}", path=str(path))
        bad += [(f"line {m.group(1)}", f"malformed row, not read: {m.group(2).strip()} "
                 "(more fields than the header and 8 spare columns)") for m in lines]
    return bad


@dataclass
class _Scan:
    """What one pass over a delimited file's bytes found (see :func:`_scan`)."""

    max_fields: int  # an upper bound on the fields in any line (0: not scanned)
    arrow_fields: int = 0  # > 0: the fields of every data line, and Arrow may read them
    data_offset: int = 0  # byte offset of the first data line (after the header line)


def _data_offset(path: Path, dialect: Dialect) -> int:
    """Byte offset of the line after the header, or -1 when the lines before it are not
    plain ``\\n``-ended UTF-8 lines as both the sniffer and pandas count them."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    pos = -1
    for _ in range(dialect.header_line + 1):
        pos = head.find(b"\n", pos + 1)
        if pos < 0:
            return -1
    try:
        text = head[:pos + 1].decode("utf-8")
    except UnicodeDecodeError:
        return -1
    return pos + 1 if len(text.splitlines()) == dialect.header_line + 1 else -1


def _scan(path: Path, dialect: Dialect, *, block_bytes: int = 1 << 20) -> _Scan:
    """One vectorised pass over the bytes: the most fields in any line (delimiters per line
    + 1, quotes ignored), and whether the file is simple enough for Arrow's CSV reader to
    give exactly what pandas' reader gives (``arrow_fields`` > 0).

    Simple means: UTF-8 without NUL bytes or double quotes, lines ended by ``\\n`` or
    ``\\r\\n``, no space or tab opening a field (pandas' ``skipinitialspace``), and every data
    line with the same number of fields, at least the header's (so no blank line, no row
    too wide or too short). Anything else is read by pandas (the general path).
    0 fields for UTF-16 files (not scanned).
    """
    if dialect.encoding == "utf-16" or len(dialect.delimiter.encode()) != 1:
        return _Scan(max_fields=0)
    sep = dialect.delimiter.encode()[0]
    start = _data_offset(path, dialect) if dialect.encoding.startswith("utf-8") else -1
    simple = start >= 0
    utf8 = codecs.getincrementaldecoder("utf-8")()
    best = 0
    lo, hi = 1 << 62, -1  # fewest and most delimiters in a data line
    carry = 0  # delimiters in the unfinished last line of the previous block
    tail = 0  # bytes in the unfinished last line
    offset = 0  # file offset of the block
    prev = 10  # the byte before the block (a line start)
    with open(path, "rb") as fh:
        while block := fh.read(block_bytes):
            a = np.frombuffer(block, dtype=np.uint8)
            nl = np.flatnonzero(a == 10)
            dpos = np.flatnonzero(a == sep)
            if len(nl):
                per_line = np.diff(np.searchsorted(dpos, nl), prepend=0)
                per_line[0] += carry
                best = max(best, int(per_line.max()))
                carry = len(dpos) - int(np.searchsorted(dpos, nl[-1]))
                tail = len(a) - 1 - int(nl[-1])
                data = per_line[offset + nl >= start]
                if simple and len(data):
                    lo, hi = min(lo, int(data.min())), max(hi, int(data.max()))
            else:
                carry += len(dpos)
                tail += len(a)
            if simple:
                simple = _simple_bytes(a, block, prev=prev, sep=sep, utf8=utf8)
            prev = int(a[-1])
            offset += len(a)
    if simple and tail:  # a last line without its newline
        lo, hi = min(lo, carry), max(hi, carry)
    if simple:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            simple = False
    n = len(dialect.header)
    arrow = hi + 1 if simple and prev != 13 and lo == hi and hi + 1 >= n else 0
    return _Scan(max_fields=max(best, carry) + 1, arrow_fields=arrow, data_offset=max(start, 0))


def _simple_bytes(a: np.ndarray, block: bytes, *, prev: int, sep: int, utf8: Any) -> bool:
    """The checks of :func:`_scan` on one block of bytes (``prev``: the byte before it)."""
    if (a == 0).any() or (a == 34).any():  # NUL padding, quotes: pandas' path
        return False
    before = np.empty_like(a)
    before[0] = prev
    before[1:] = a[:-1]
    cr = np.flatnonzero(before == 13)  # the byte after each '\r' must be '\n'
    if len(cr) and not (a[cr] == 10).all():
        return False
    space = (a == 32) if sep == 9 else ((a == 32) | (a == 9))
    if (space & ((before == sep) | (before == 10))).any():
        return False
    try:
        utf8.decode(block)
    except UnicodeDecodeError:
        return False
    return True


def _max_fields(path: Path, dialect: Dialect, *, block_bytes: int = 1 << 22) -> int:
    """An upper bound on the fields in any line (delimiters per line + 1, quotes ignored).

    The parser is given at least this many column names, so no row is ever cut to the
    header's width (pandas drops the extra values of rows wider than the names once the
    first data row is wider): every value beyond the header is seen, and its row rejected.
    One vectorised pass over the bytes (:func:`_scan`); 0 for UTF-16 files (not scanned).
    """
    return _scan(path, dialect, block_bytes=block_bytes).max_fields


def iter_chunks(path: Path, dialect: Dialect, *, chunk_rows: int = DEFAULT_CHUNK) -> Iterator[pd.DataFrame]:
    """Yield the data rows as all-string DataFrames (header names as columns), chunk by chunk.

    Each chunk has a ``__row__`` column with the 1-based data row number. A line with more
    fields than the header plus 8 spare columns cannot be read into columns: it is skipped
    and listed in the next chunk's ``attrs["bad_lines"]`` as ``("line N", reason)`` (N is the
    file's line number), for the caller to count as a read record and a reject. Bad lines
    after the last data row come in a final chunk without rows. A quote that is opened and
    never closed makes the rest of the file one field: the rows before it are yielded, and
    the rest is one reject (``"row N to the end of the file"``) in the last chunk.

    Parameters
    ----------
    path
        The delimited file (only read).
    dialect
        How it is written (from :func:`sniff_dialect`).
    chunk_rows
        Data rows per chunk (default :data:`DEFAULT_CHUNK`): bounds the memory used.

    Returns
    -------
    Iterator of pandas.DataFrame
        All-string chunks with the header's columns and ``__row__``; lines that could
        not be split are in ``attrs["bad_lines"]``.

    Example
    -------
    >>> import tempfile
    >>> head = b"time,lat,lon\\n2025-10-26T21:00:00Z,51.0,3.87\\n2025-10-26T21:01:00Z,51.001,3.8\\n"
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "log.csv"
    ...     _ = p.write_bytes(head)
    ...     chunks = list(iter_chunks(p, sniff_dialect(head), chunk_rows=1))
    >>> len(chunks), chunks[1][["lat", "__row__"]].values.tolist(), chunks[1].attrs["bad_lines"]
    (2, [['51.001', 2]], [])
    """
    repeated = sorted(h for h, k in Counter(dialect.header).items() if k > 1)
    if repeated:
        raise CorruptSource(f"the header (line {dialect.header_line + 1}) names column(s) "
                            f"{', '.join(map(repr, repeated[:5]))} more than once: which values "
                            "belong to which cannot be told", path=str(path))
    scan = _scan(path, dialect)
    if scan.arrow_fields:
        yield from _arrow_chunks(path, dialect, scan, chunk_rows=chunk_rows)
        return
    n_spare = max(8, scan.max_fields - len(dialect.header))
    names = list(dialect.header) + [f"__spare{i}__" for i in range(n_spare)]

    def reader(raw: io.BufferedReader, **kw: Any) -> Any:
        stream: Any
        if dialect.encoding == "utf-16":
            stream = io.TextIOWrapper(raw, encoding="utf-16", errors="replace", newline="")
        else:
            stream = io.TextIOWrapper(io.BufferedReader(_NulStripped(raw)),
                                      encoding=dialect.encoding, errors="replace", newline="")
        return pd.read_csv(
            stream, sep=dialect.delimiter, header=None, names=names, skiprows=dialect.header_line + 1,
            dtype=str, keep_default_na=False, na_filter=False, skipinitialspace=True,
            engine="c", index_col=False, comment=None, skip_blank_lines=True, quotechar='"',
            encoding_errors="replace", on_bad_lines="warn", **kw)

    def line_no(b: tuple[str, str]) -> int:  # ("line 12", why) -> 12; ("row 3", why) -> 0
        return int(b[0].split()[1]) if b[0].startswith("line ") else 0

    start = 1  # data row number of the next row yielded
    n_parsed = 0  # rows the parser gave so far (comment rows included)
    last_line = 0  # the last file line reported as a bad line
    with open(path, "rb") as raw:
        rows: Iterator[pd.DataFrame] | None = None
        while True:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", pd.errors.ParserWarning)
                    if rows is None:  # the reader reads ahead when made: it can fail or warn here too
                        rows = iter(reader(raw, chunksize=chunk_rows))
                    chunk = next(rows, None)
                bad = _bad_lines(caught, path)
            except pd.errors.ParserError as exc:
                if "EOF inside string" not in str(exc):
                    raise
                chunk, bad, open_quote = _before_open_quote(
                    path, lambda m: _read_head(reader, path, m), n_parsed, chunk_rows, exc)
                if chunk is None:  # the quote opens in the first row not yet read
                    chunk = pd.DataFrame({c: pd.Series(dtype=object) for c in names})
                out, n = _shape(chunk, start, dialect, [b for b in bad if line_no(b) > last_line])
                out.attrs["bad_lines"].append((f"row {start + n} to the end of the file", open_quote))
                yield out
                return
            if chunk is None:
                if bad:
                    tail = pd.DataFrame({c: pd.Series(dtype=object) for c in dialect.header})
                    tail["__row__"] = np.zeros(0, dtype=np.int64)
                    tail.attrs["bad_lines"] = bad
                    yield tail
                return
            n_parsed += len(chunk)
            last_line = max([last_line, *map(line_no, bad)])
            out, n = _shape(chunk, start, dialect, bad)
            start += n
            yield out


def _arrow_chunks(path: Path, dialect: Dialect, scan: _Scan, *, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """:func:`iter_chunks` for a file :func:`_scan` found simple: Arrow's CSV reader (C++,
    strings built once in Arrow, ~5x faster than pandas' reader with ``dtype=str``) instead
    of pandas', cut into the same ``chunk_rows``-row chunks, so every chunk, and all that
    follows from it, is what pandas' reader gives (the tests compare both readers)."""
    names = list(dialect.header) + [f"__spare{i}__" for i in range(scan.arrow_fields - len(dialect.header))]
    start = 1  # data row number of the next row yielded
    pending: list[pa.RecordBatch] = []
    n_pending = 0
    with open(path, "rb") as fh:
        fh.seek(scan.data_offset)
        reader = pacsv.open_csv(
            fh, read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 20),
            parse_options=pacsv.ParseOptions(delimiter=dialect.delimiter, quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=False))
        for batch in reader:
            pending.append(batch)
            n_pending += batch.num_rows
            while n_pending >= chunk_rows:
                table = pa.Table.from_batches(pending)
                out, n = _shape(table.slice(0, chunk_rows).to_pandas(), start, dialect, [])
                pending = table.slice(chunk_rows).to_batches()
                n_pending -= chunk_rows
                del table
                start += n
                yield out
    if n_pending:
        out, _n = _shape(pa.Table.from_batches(pending).to_pandas(), start, dialect, [])
        yield out


def _read_head(reader: Callable[..., Any], path: Path,
               m: int) -> tuple[pd.DataFrame, list[warnings.WarningMessage]]:
    """The first ``m`` rows the parser gives, and its warnings (ParserError if it cannot)."""
    with open(path, "rb") as raw, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        return reader(raw, nrows=m), caught


def _before_open_quote(path: Path, head: Callable[[int], tuple[pd.DataFrame, list[warnings.WarningMessage]]],
                       n_parsed: int, chunk_rows: int,
                       exc: Exception) -> tuple[pd.DataFrame | None, list[tuple[str, str]], str]:
    """After "EOF inside string": the rows after the first ``n_parsed`` up to the row that
    opens the unclosed quote (the most rows the parser can give, found by halving; None when
    there are none), their bad lines, and the reject reason for the rest of the file. Reads
    the file's head again, about log2(``chunk_rows``) times."""
    good, fails = n_parsed, n_parsed + chunk_rows + 1
    best: tuple[pd.DataFrame, list[warnings.WarningMessage]] | None = None
    while fails - good > 1:
        mid = (good + fails) // 2
        try:
            best, good = head(mid), mid
        except pd.errors.ParserError:
            fails = mid
    reason = ("a quote opened in this row is never closed, so the parser reads the rest of the "
              f"file as one field ({exc}): the rest is not read; how many records it held is unknown")
    if best is None:
        return None, [], reason
    frame, caught = best
    return frame.iloc[n_parsed:], _bad_lines(caught, path), reason


def _shape(chunk: pd.DataFrame, start: int, dialect: Dialect,
           bad: list[tuple[str, str]]) -> tuple[pd.DataFrame, int]:
    """One parsed chunk as the data rows :func:`iter_chunks` yields, numbered from ``start``,
    and how many data row numbers it used (rows too wide to read included)."""
    spare = [c for c in chunk.columns if str(c).startswith("__spare")]
    first = chunk.columns[0]
    # '#' comment lines inside the data are not records
    keep = ~chunk[first].astype(str).str.lstrip().str.startswith("#")
    chunk = chunk.copy(deep=False) if keep.all() else chunk[keep].copy()  # usually no comment rows
    chunk["__row__"] = np.arange(start, start + len(chunk))
    n_numbered = len(chunk)
    # values beyond the header's columns (empty trailing fields are fine): the row's
    # columns may be shifted (an unquoted delimiter), so it is a reject, not read
    n_extra = np.zeros(len(chunk), dtype=np.int64)
    for c in spare:
        vals = chunk[c].fillna("")
        if (vals != "").any():  # usually none: strip only columns holding something
            n_extra += (vals.str.strip() != "").to_numpy(dtype=bool)
    bad = list(bad)
    if n_extra.any():
        wide = n_extra > 0
        bad += [(f"row {r}", f"{k} value(s) beyond the header's {len(dialect.header)} columns "
                 "(an unquoted delimiter would shift the columns): not read")
                for r, k in zip(chunk["__row__"][wide].tolist(), n_extra[wide].tolist(), strict=True)]
        chunk = chunk[~wide]
    out = chunk.drop(columns=spare).reset_index(drop=True)
    out.attrs["bad_lines"] = bad
    return out, n_numbered


_PURE_NUM = r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$"


def _numbers(s: pd.Series, decimal_comma: bool) -> tuple[pd.Series, pd.Series | None]:
    """Split text like ``98.470 m`` / ``49.07N`` into (float, lower-case suffix), vectorised.

    Plain numbers are cast by pyarrow directly; only the others go through the regex. The
    suffix is None when no value has one (plain numbers and empty values only).
    """
    arr = pc.utf8_trim_whitespace(pa.array(s.astype("string[pyarrow]")))
    if decimal_comma:
        arr = pc.replace_substring(arr, ",", ".")
    pure = pc.fill_null(pc.match_substring_regex(arr, _PURE_NUM), False)
    num_arr = pc.cast(pc.if_else(pure, arr, pa.scalar(None, arr.type)), pa.float64())
    num = pd.Series(num_arr.to_numpy(zero_copy_only=False), index=s.index, dtype="float64")
    # neither a plain number nor empty (an empty value is NaN without a suffix either way)
    other_arr = pc.and_(pc.invert(pure), pc.fill_null(pc.not_equal(arr, ""), True))
    if not pc.any(other_arr).as_py():
        return num, None
    suffix = pd.Series("", index=s.index, dtype="string")
    other = pd.Series(other_arr.to_numpy(zero_copy_only=False), index=s.index)
    if other.any():
        text = _series(arr, s.index)[other]
        parts = extract(text, _NUM_RE)
        num[other] = pd.to_numeric(parts[0], errors="coerce").astype("float64")
        suffix[other] = parts[1].fillna("").str.lower()
    return num, suffix


def _convert(num: pd.Series, suffix: pd.Series | None, role: str, unit: str | None) -> pd.Series:
    dim = _ROLE_DIM.get(role)
    if dim is None:
        return num
    table = _UNIT_FACTORS[dim]
    base = 1.0
    if unit:
        u = unit.lower().replace(" ", "").replace("msl", "").replace("wgs", "").replace("baro", "")
        if u not in table and u:
            raise ParameterError(f"unknown {role} unit {unit!r}; known: {', '.join(sorted(table))}")
        base = table.get(u, 1.0)
    if suffix is None:
        return num * base
    fac = suffix.map(table).astype("float64").where(suffix != "", base)
    return num * fac


def _offset_minutes(s: pd.Series) -> pd.Series:
    m = extract(s.astype("string").str.strip(), r"^([+-]?)(\d{1,2}):?(\d{2})?$")
    sign = np.where((m[0] == "-").fillna(False).to_numpy(dtype=bool), -1.0, 1.0)
    hh = pd.to_numeric(m[1], errors="coerce")
    mm = pd.to_numeric(m[2], errors="coerce").fillna(0)
    return pd.Series(sign * (hh * 60 + mm), index=s.index, dtype="float64")


def _settle_order(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray) -> str:
    """``DMY`` when a first number is above 12 and no second one is, ``MDY`` the other way
    round, else ``?`` (nothing settles it)."""
    if (a > 12).any() and not (b > 12).any():
        return "DMY"
    if (b > 12).any() and not (a > 12).any():
        return "MDY"
    return "?"


def _fixed_dmy(d: pd.Series, order: str | None) -> tuple[pd.Series, str] | None:
    """Fast path of :func:`_date_iso` for a chunk whose dates are all ``dd/mm/yyyy`` with
    two-digit day and month (separators ``-/.``): the same ``YYYY-MM-DD`` text, sliced in
    Arrow instead of two regex extractions. None when any value has another shape (or
    nothing settles D/M order: the general path says so)."""
    arr = pa.array(d.astype("string[pyarrow]"))
    if len(arr) == 0 or arr.null_count:
        return None
    if not pc.all(pc.match_substring_regex(arr, r"^\d{2}[-/.]\d{2}[-/.]\d{4}$")).as_py():
        return None
    first, second = pc.utf8_slice_codeunits(arr, 0, 2), pc.utf8_slice_codeunits(arr, 3, 5)
    if order is None:
        order = _settle_order(pc.cast(first, pa.int64()).to_numpy(),
                              pc.cast(second, pa.int64()).to_numpy())
        if order == "?":
            return None
    day, mon = (first, second) if order.upper() == "DMY" else (second, first)
    iso = pc.binary_join_element_wise(pc.utf8_slice_codeunits(arr, 6, 10), mon, day,
                                      pa.scalar("-", arr.type))
    return _series(iso, d.index), order


def _date_iso(d: pd.Series, *, yymmdd: bool, order: str | None) -> tuple[pd.Series, str | None]:
    """Normalise dates to ``YYYY-MM-DD``; returns (dates, order used for D/M/Y dates)."""
    d = d.astype("string").str.strip()
    if yymmdd or d.str.fullmatch(r"\d{6}").fillna(False).all():
        return "20" + d.str[0:2] + "-" + d.str[2:4] + "-" + d.str[4:6], None
    fixed = _fixed_dmy(d, order)
    if fixed is not None:
        return fixed
    ymd = extract(d, r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
    dmy = extract(d, r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
    out = ymd[0] + "-" + ymd[1].str.zfill(2) + "-" + ymd[2].str.zfill(2)
    has_dmy = dmy[0].notna()
    if has_dmy.any():
        if order is None:  # the numbers are needed only to settle the order
            order = _settle_order(pd.to_numeric(dmy[0], errors="coerce"),
                                  pd.to_numeric(dmy[1], errors="coerce"))
            if order == "?":
                return out, "?"
        day, mon = (dmy[0], dmy[1]) if order.upper() == "DMY" else (dmy[1], dmy[0])
        alt = dmy[2] + "-" + mon.str.zfill(2) + "-" + day.str.zfill(2)
        out = out.where(~has_dmy, alt)
    return out, order


def _time_iso(t: pd.Series) -> pd.Series:
    t = t.astype("string").str.strip()
    compact = t.str.fullmatch(r"\d{6}(?:\.\d+)?").fillna(False)
    if compact.any():  # hhmmss: the rewritten text is built only when some value needs it
        t = t.where(~compact, t.str[0:2] + ":" + t.str[2:4] + ":" + t.str[4:])
    return t


@dataclass
class TimeResult:
    """Parsed times and the per-row reason when a time could not be read."""

    t_utc: pd.Series
    reason: pd.Series
    basis: str
    order: str | None = None


def _all_plain_local(local: pd.Series) -> bool:
    """True when every value is ``YYYY-MM-DD hh:mm:ss`` (what the date + time columns give):
    no value then carries a zone or a ``/`` date, so :func:`parse_times` skips the four
    regex passes that look for them (one pass here instead)."""
    arr = pa.array(local.astype("string[pyarrow]"))
    if len(arr) == 0 or arr.null_count:
        return False
    return bool(pc.all(pc.match_substring_regex(arr, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")).as_py())


def parse_times(df: pd.DataFrame, cols: Mapping[str, str], *, tz: str | None,
                time_basis: str | None, date_format: str | None = None,
                date_order: str | None = None, time_format: str | None = None,
                what: str = "file") -> TimeResult:
    """Vectorised time parsing for a chunk (see the module docstring for the rules).

    Parameters
    ----------
    df
        The chunk (all-string columns).
    cols
        Role -> column name (:func:`auto_columns`): ``datetime``, or ``date`` + ``time``,
        ``epoch``, ``utc_offset``.
    tz
        IANA zone for local times without an offset (``--tz``); ``None``: such rows are
        rejected with :data:`NO_TZ_REASON`.
    time_basis
        ``"utc"`` when the user (or a logger preset) states the times are UTC.
    date_format
        ``"YYMMDD"`` for the Columbus V-900 date column; default ISO-8601 / sniffed.
    date_order
        ``"DMY"`` or ``"MDY"`` for dates like ``03/04/2024`` the file does not settle.
    time_format
        A strptime format for the time values.
    what
        How to name the file in an :class:`~routetrace.errors.AmbiguousTime`.

    Returns
    -------
    TimeResult
        ``t_utc`` (UTC, NaT where unusable), ``reason`` (NA where read, else why the row
        is rejected), the ``basis`` text for ``sources.time_basis`` and the date order.

    Example
    -------
    >>> df = pd.DataFrame({"ts": ["2025-10-24T21:00:00Z", "2025-10-24 23:01:00", "x"]})
    >>> tr = parse_times(df, {"datetime": "ts"}, tz="Europe/Brussels", time_basis=None)
    >>> tr.t_utc.tolist()
    [Timestamp('2025-10-24 21:00:00+0000', tz='UTC'),
     Timestamp('2025-10-24 21:01:00+0000', tz='UTC'), NaT]
    >>> tr.reason.tolist()
    [<NA>, <NA>, 'time missing or unreadable']
    >>> parse_times(df, {"datetime": "ts"}, tz=None, time_basis=None).reason.iloc[1] == NO_TZ_REASON
    True
    """
    idx = df.index
    reason = pd.Series(pd.NA, index=idx, dtype="string")
    order = date_order
    basis_parts: list[str] = []
    if "epoch" in cols and "datetime" not in cols and "date" not in cols:
        v = pd.to_numeric(df[cols["epoch"]].astype("string").str.strip(), errors="coerce")
        unit = "ms" if (v.dropna() > 1e11).any() else "s"
        t = timebase.from_epoch(v.to_numpy(dtype="float64"), epoch=pd.Timestamp("1970-01-01T00:00:00Z"),
                                unit=unit)
        t = pd.Series(t.to_numpy(), index=idx, dtype="datetime64[ns, UTC]")
        reason = reason.where(t.notna(), "time missing, not a Unix epoch or outside 1980-2100")
        return TimeResult(t, reason, f"Unix epoch {unit} (UTC)", order)
    if "datetime" in cols:
        text = df[cols["datetime"]].astype("string").str.strip()
        if time_format is None and text.str.fullmatch(r"\d{9,13}(?:\.\d+)?").fillna(False).all() and len(text):
            v = pd.to_numeric(text, errors="coerce")
            unit = "ms" if (v > 1e11).any() else "s"
            t = timebase.from_epoch(v.to_numpy(dtype="float64"),
                                    epoch=pd.Timestamp("1970-01-01T00:00:00Z"), unit=unit)
            t = pd.Series(t.to_numpy(), index=idx, dtype="datetime64[ns, UTC]")
            reason = reason.where(t.notna(), "time outside 1980-2100")
            return TimeResult(t, reason, f"Unix epoch {unit} (UTC)", order)
        if time_format is None:  # 'dd/mm/yyyy hh:mm[:ss]' in one column: settle D/M order
            # (browsers print '24/03/2024, 23:10': a comma may follow the date)
            dmy = extract(text, r"^(\d{1,2}[-/.]\d{1,2}[-/.]\d{4}),?(?:[ T]+(.*))?$")
            has = dmy[0].notna()
            if has.any():
                dates, order = _date_iso(dmy[0][has], yymmdd=False, order=date_order)
                if order == "?":
                    raise AmbiguousTime(
                        f"dates like {dmy[0][has].iloc[0]!r} can be day/month or month/day and "
                        "no day above 12 settles it; pass options={'date_order': 'DMY'} or 'MDY'",
                        path=what)
                text = text.where(~has, dates + " " + dmy[1][has].fillna("00:00:00"))
        local = text
    else:
        if "date" not in cols:
            return TimeResult(pd.Series(pd.NaT, index=idx, dtype="datetime64[ns, UTC]"),
                              pd.Series("no time column", index=idx, dtype="string"), "none", order)
        dates, order = _date_iso(df[cols["date"]], yymmdd=date_format == "YYMMDD", order=date_order)
        if order == "?":
            raise AmbiguousTime(
                f"dates like {df[cols['date']].iloc[0]!r} can be day/month or month/day and "
                f"no day above 12 settles it; pass options={{'date_order': 'DMY'}} or 'MDY'",
                path=what)
        times = _time_iso(df[cols["time"]]) if "time" in cols else pd.Series("00:00:00", index=idx)
        local = dates + " " + times
    # zone-bearing values
    overflow = pd.Series(False, index=idx)
    plain = _all_plain_local(local)  # then no value has a zone and none needs rewriting
    if plain:
        has_zone = pd.Series(False, index=idx)
    else:
        norm_text = sub(local, r"\s+(Z|[+-]\d\d:?\d\d)$", r"\1")
        has_zone = norm_text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False) & \
            norm_text.str.contains(r"\d[T ]\d", regex=True, na=False)
    out = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns, UTC]")
    if has_zone.any():
        parsed, over = _to_ns(norm_text[has_zone], utc=True, format="ISO8601")
        overflow[over.index] = over
        out[has_zone] = parsed
        basis_parts.append("ISO-8601 with offset -> UTC")
    naive_mask = ~has_zone & local.notna() & (local.str.len() > 0)
    if naive_mask.any():
        txt = local[naive_mask]
        if time_format:
            naive, over = _to_ns(txt, format=time_format)
        else:
            if not plain:
                txt = sub(txt, r"^(\d{4})/(\d{1,2})/(\d{1,2})", r"\1-\2-\3")
            naive, over = _plain_to_ns(txt) if plain else _to_ns(txt, format="ISO8601")
            if naive.isna().all() and len(txt):
                with warnings.catch_warnings():  # dateutil fallback warns per odd value
                    warnings.simplefilter("ignore", UserWarning)
                    naive, over = _to_ns(txt, dayfirst=(order or "").upper() == "DMY")
        overflow[over.index] = over
        if naive.dt.tz is not None:  # a format with %z
            out[naive_mask] = naive.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        elif "utc_offset" in cols:
            off = _offset_minutes(df.loc[naive_mask, cols["utc_offset"]])
            utc = (naive - pd.to_timedelta(off, unit="min")).dt.tz_localize("UTC")
            out[naive_mask] = utc.astype("datetime64[ns, UTC]")
            reason[naive_mask & off.reindex(idx).isna()] = \
                f"UTC offset {cols['utc_offset']!r} missing or unreadable"
            basis_parts.append(f"local time minus the {cols['utc_offset']!r} offset column")
        elif time_basis == "utc":
            out[naive_mask] = naive.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
            basis_parts.append("times without offset are UTC")
        elif tz:
            loc = timebase.localize(naive, tz=tz)
            out[naive_mask] = loc
            bad_local = naive_mask & out.isna() & naive.reindex(idx).notna()
            reason[bad_local] = f"local time does not exist or is ambiguous in {tz} (DST change)"
            basis_parts.append(f"local times read as {tz} (user-stated)")
        else:
            reason[naive_mask] = NO_TZ_REASON
            basis_parts.append("local times without offset: rejected (no --tz)")
    bad = out.notna() & ((out < timebase.PLAUSIBLE[0]) | (out > timebase.PLAUSIBLE[1]))
    reason[(bad | overflow) & reason.isna()] = "implausible time (outside 1980-2100)"
    out[bad] = pd.NaT
    reason[out.isna() & reason.isna()] = "time missing or unreadable"
    return TimeResult(out, reason, "; ".join(dict.fromkeys(basis_parts)) or "none", order)


_NS_RANGE = (pd.Timestamp.min.ceil("s"), pd.Timestamp.max.floor("s"))


def _to_ns(txt: pd.Series, **kwargs: Any) -> tuple[pd.Series, pd.Series]:
    """``pd.to_datetime(txt, errors="coerce", **kwargs)`` in nanoseconds, value by value safe.

    Returns ``(times, overflow)``: times outside what nanoseconds can hold (before 1677,
    after 2262: e.g. year 2408 from a damaged record) are NaT with ``overflow`` True, to be
    rejected as implausible; a chunk mixing offsets in values read as naive is parsed value
    by value (those with an offset become NaT) instead of failing the whole file.
    """
    try:
        t = pd.to_datetime(txt, errors="coerce", **kwargs)
    except (ValueError, OverflowError):
        def one(x: object) -> Any:
            try:
                v = pd.to_datetime(x, errors="coerce", **{k: a for k, a in kwargs.items() if k != "format"})
            except (ValueError, OverflowError):
                return pd.NaT
            return pd.NaT if v is pd.NaT or (v.tzinfo is not None and not kwargs.get("utc")) else v
        t = pd.to_datetime(txt.map(one), errors="coerce", utc=bool(kwargs.get("utc")))
    tz = "UTC" if isinstance(t.dtype, pd.DatetimeTZDtype) else None
    lo, hi = (b.tz_localize(tz) if tz else b for b in _NS_RANGE)
    over = t.notna() & ((t < lo) | (t > hi))
    t = t.mask(over)
    return t.astype("datetime64[ns, UTC]" if tz else "datetime64[ns]"), over


_ARROW_SAFE = (pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01"))


def _plain_to_ns(txt: pd.Series) -> tuple[pd.Series, pd.Series]:
    """:func:`_to_ns` of ``YYYY-MM-DD hh:mm:ss`` texts, parsed by Arrow's ISO-8601 cast (C++,
    no Python string per value) when every value is a valid time between 1900 and 2200;
    otherwise (Arrow refuses the whole chunk if one value is invalid: month 13, 30 February,
    24:00:00) by :func:`_to_ns`, so the result is always pandas' own."""
    try:
        secs = pc.cast(pa.array(txt.astype("string[pyarrow]")), pa.timestamp("s"))
    except pa.ArrowInvalid:
        return _to_ns(txt, format="ISO8601")
    v = secs.to_numpy(zero_copy_only=False)
    if not len(v) or secs.null_count or v.min() < _ARROW_SAFE[0] or v.max() > _ARROW_SAFE[1]:
        return _to_ns(txt, format="ISO8601")
    return (pd.Series(v.astype("datetime64[ns]"), index=txt.index),
            pd.Series(False, index=txt.index))


@dataclass
class Table:
    """Everything needed to turn chunks of a delimited file into fixes."""

    dialect: Dialect
    cols: dict[str, str]
    units: dict[str, str] = field(default_factory=dict)
    time_basis: str | None = None
    date_format: str | None = None
    basis_note: str = ""
    fix_kind: str = "unknown"
    preset: str | None = None


def _units_for(header: Sequence[str], dialect: Dialect, cols: Mapping[str, str],
               stated: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for role in _ROLE_DIM:
        if role not in cols:
            continue
        if role in stated:
            out[role] = stated[role]
            continue
        u = _unit_in_name(cols[role])
        if u is None and dialect.units:
            u = dialect.units[list(header).index(cols[role])].lower() or None
        if u is not None:
            key = u.lower().split()[0] if u.split() else u
            if key in _UNIT_FACTORS[_ROLE_DIM[role]]:
                out[role] = key
    return out


def option_map(value: Any, name: str) -> dict[str, str]:
    """A mapping option as a dict; from the CLI (``--option columns=...``) as JSON
    (``{"lat": "Breite"}``) or ``role:column`` pairs separated by commas
    (``lat:Breite,lon:Laenge``)."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    text = str(value).strip()
    if text.startswith("{"):
        import json

        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ParameterError(f"option {name}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ParameterError(f"option {name}: expected a JSON object")
        return {str(k): str(v) for k, v in data.items()}
    out: dict[str, str] = {}
    for part in text.split(","):
        role, sep, col = part.partition(":")
        if not sep:
            raise ParameterError(f"option {name}: expected role:column pairs, got {part!r}")
        out[role.strip()] = col.strip()
    return out


def plan(dialect: Dialect, options: Mapping[str, Any]) -> Table:
    """Decide the column mapping, units, time basis and preset for a sniffed file."""
    cols = auto_columns(dialect.header, option_map(options.get("columns"), "columns"))
    keys = {norm(h) for h in dialect.header}
    preset: dict[str, Any] | None = None
    for p in PRESETS:
        if set(p["requires"]) <= keys:
            preset = p
            break
    stated = {**(preset["units"] if preset else {}), **option_map(options.get("units"), "units")}
    units = _units_for(dialect.header, dialect, cols, stated)
    basis = options.get("time_basis", preset["time_basis"] if preset else None)
    return Table(dialect=dialect, cols=cols, units=units, time_basis=basis,
                 date_format=preset.get("date_format") if preset else None,
                 basis_note=preset["basis"] if preset else "",
                 fix_kind=str(options.get("fix_kind", preset["fix_kind"] if preset else "unknown")),
                 preset=preset["name"] if preset else None)


#: position reject reasons by code (0: none), first one found wins; code 2 is built per row
_POSITION_REASONS = ("", "unreadable hemisphere or unit on a coordinate", "no position fix",
                     "position missing or unreadable", "coordinates out of range",
                     "0,0 placeholder position (no fix)")


def _flag(codes: np.ndarray, mask: Any, code: int) -> None:
    """Give ``code`` to the rows in ``mask`` that have no reason yet (the first one wins)."""
    m = np.asarray(mask, dtype=bool)
    if m.any():
        codes[m & (codes == 0)] = code


def _positions(chunk: pd.DataFrame, tb: Table, codes: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Latitude and longitude of a chunk (hemispheres applied); position reasons into ``codes``."""
    cols = tb.cols
    dec = tb.dialect.decimal_comma
    if "geometry" in cols and ("lat" not in cols or "lon" not in cols):
        g = extract(chunk[cols["geometry"]].astype("string"),
            r"(?i)POINT\s*Z?M?\s*\(\s*([-+0-9.eE]+)[\s,]+([-+0-9.eE]+)")
        lon = pd.to_numeric(g[0], errors="coerce").astype("float64")
        lat = pd.to_numeric(g[1], errors="coerce").astype("float64")
    else:
        lat, lat_sfx = _numbers(chunk[cols["lat"]], dec)
        lon, lon_sfx = _numbers(chunk[cols["lon"]], dec)
        if lat_sfx is not None or lon_sfx is not None or "ns" in cols or "ew" in cols:
            lat_h = _hemisphere(chunk, cols.get("ns"), lat_sfx)
            lon_h = _hemisphere(chunk, cols.get("ew"), lon_sfx)
            lat = lat.where(lat_h != "S", -lat)
            lon = lon.where(lon_h != "W", -lon)
            _flag(codes, ~lat_h.isin(["", "N", "S", "DEG", "°"]) | ~lon_h.isin(["", "E", "W", "DEG", "°"]), 1)
    if "valid" in cols:
        _flag(codes, chunk[cols["valid"]].astype("string").str.fullmatch(_NO_FIX_RE).fillna(False), 2)
    la, lo = lat.to_numpy(), lon.to_numpy()
    with np.errstate(invalid="ignore"):
        _flag(codes, np.isnan(la) | np.isnan(lo), 3)
        _flag(codes, (np.abs(la) > 90) | (np.abs(lo) > 180), 4)
        _flag(codes, (la == 0) & (lo == 0), 5)
    return lat, lon


def _hemisphere(chunk: pd.DataFrame, col: str | None, sfx: pd.Series | None) -> pd.Series:
    """Upper-case hemisphere letters: a value's own suffix, else the ``N/S``/``E/W`` column."""
    h = sfx.str.upper() if sfx is not None else pd.Series("", index=chunk.index, dtype="string")
    if col is not None:
        h = h.where(h != "", chunk[col].astype("string").str.strip().str.upper())
    return h


def _reasons(chunk: pd.DataFrame, tb: Table, codes: np.ndarray, time_reason: pd.Series,
             rows: np.ndarray) -> pd.Series:
    """The reject reasons of the rows at positions ``rows``: the position reason, else the
    time reason (built only for the rejected rows)."""
    why = time_reason.iloc[rows].astype("string")
    c = codes[rows]
    for code in np.unique(c[c > 0]).tolist():
        at = c == code
        if code == 2:
            v = chunk[tb.cols["valid"]].iloc[rows[at]].astype("string")
            why[at] = ("no position fix (" + tb.cols["valid"] + "=" + v.str.strip() + ")").to_numpy()
        else:
            why[at] = _POSITION_REASONS[code]
    return why


def _chunk_fixes(chunk: pd.DataFrame, tb: Table, *, tz: str | None, date_order: str | None,
                 what: str, time_format: str | None = None,
                 ) -> tuple[pd.DataFrame, np.ndarray, pd.Series, TimeResult]:
    """One chunk as (fixes with ``__row__`` instead of ``record`` and without ``fix_kind``,
    positions of the rejected rows, their reasons, time result), vectorised: reasons are
    codes until the few rejected rows get their text."""
    cols = tb.cols
    codes = np.zeros(len(chunk), dtype=np.int8)
    lat, lon = _positions(chunk, tb, codes)
    tr = parse_times(chunk, cols, tz=tz, time_basis=tb.time_basis, date_format=tb.date_format,
                     date_order=date_order, time_format=time_format, what=what)
    ok = (codes == 0) & tr.reason.isna().to_numpy(dtype=bool)
    out = pd.DataFrame({"__row__": chunk["__row__"], "t_utc": tr.t_utc, "lat": lat, "lon": lon})
    for role, col_name in (("altitude", "alt_m"), ("accuracy", "h_acc_m"), ("speed", "speed_mps"),
                           ("course", "course_deg")):
        if role in cols:
            num, sfx = _numbers(chunk[cols[role]], tb.dialect.decimal_comma)
            out[col_name] = _convert(num, sfx, role, tb.units.get(role))
    if "subject" in cols:
        out["subject_id"] = chunk[cols["subject"]].astype("string").str.strip().replace("", pd.NA)
    bad = np.flatnonzero(~ok)
    return (out if ok.all() else out[ok]), bad, _reasons(chunk, tb, codes, tr.reason, bad), tr


def chunk_to_fixes(chunk: pd.DataFrame, tb: Table, *, tz: str | None,
                   date_order: str | None, what: str, time_format: str | None = None,
                   record_prefix: str = "row ") -> tuple[pd.DataFrame, pd.DataFrame, TimeResult]:
    """Turn one chunk into (fixes, rejects[record, reason], time result), vectorised."""
    f, bad, why, tr = _chunk_fixes(chunk, tb, tz=tz, date_order=date_order, what=what,
                                   time_format=time_format)
    out = f.drop(columns="__row__")
    out.insert(0, "record", record_prefix + f["__row__"].astype(str))
    out["fix_kind"] = tb.fix_kind
    rec = record_prefix + chunk["__row__"].iloc[bad].astype(str)
    rejects = pd.DataFrame({"record": rec, "reason": why.to_numpy()}, index=rec.index)
    return out, rejects, tr


def _records(rows: pd.Series | np.ndarray, prefix: str = "row ") -> pd.Series:
    """Locators ``row N`` built in Arrow (no Python string per row), as a ``string`` column."""
    text = pc.binary_join_element_wise(prefix, pc.cast(pa.array(rows), pa.string()), "")
    return pd.Series(pd.arrays.ArrowStringArray(text), dtype="string")


def settle_date_order(path: Path, dialect: Dialect, tb: Table, *, chunk_rows: int = DEFAULT_CHUNK,
                      what: str = "file") -> str:
    """Scan the file's date column for a value that settles day/month order.

    Returns ``"DMY"`` or ``"MDY"``; raises :class:`AmbiguousTime` when no date in the
    whole file has a day above 12 (or when both orders occur).
    """
    col = tb.cols.get("date") or tb.cols.get("datetime")
    dmy_first = dmy_second = False
    example = ""
    if col is not None:
        for chunk in iter_chunks(path, dialect, chunk_rows=chunk_rows):
            m = extract(chunk[col].astype("string").str.strip(),
                r"^(\d{1,2})[-/.](\d{1,2})[-/.]\d{4}")
            a = pd.to_numeric(m[0], errors="coerce")
            b = pd.to_numeric(m[1], errors="coerce")
            dmy_first |= bool((a > 12).any())
            dmy_second |= bool((b > 12).any())
            if not example and m[0].notna().any():
                example = str(chunk[col][m[0].notna()].iloc[0])
    if dmy_first != dmy_second:
        return "DMY" if dmy_first else "MDY"
    raise AmbiguousTime(
        f"dates like {example!r} can be day/month or month/day and no date in the file "
        "settles it; pass options={'date_order': 'DMY'} or 'MDY'", path=what)


def raise_if_all_local(rejects: pd.DataFrame | None, ctx: LoadContext) -> None:
    """Nothing loaded and rows were refused for local time without ``--tz``: say so.

    Raises :class:`AmbiguousTime` naming the file, the first such row and ``--tz``.

    Parameters
    ----------
    rejects
        The rejects of the load so far (``record``, ``reason``), or ``None``.
    ctx
        The load context (names the file in the error).

    Example
    -------
    >>> from routetrace.loaders.base import REGISTRY, LoadContext
    >>> ctx = LoadContext(path=Path("fleet.csv"), display_path="fleet.csv", source_id="0" * 64,
    ...                   size_bytes=0, spec=REGISTRY["csv"][0])
    >>> raise_if_all_local(None, ctx)  # nothing refused: returns
    >>> rejects = pd.DataFrame({"record": ["row 1", "row 2"], "reason": NO_TZ_REASON})
    >>> try:
    ...     raise_if_all_local(rejects, ctx)
    ... except AmbiguousTime as exc:
    ...     print(exc)
    fleet.csv [row 1]: 2 row(s) give local times without a UTC offset and no time zone was
    stated; pass --tz ZONE (e.g. --tz Europe/Brussels), or --option time_basis=utc if they are UTC
    """
    if rejects is None or not len(rejects):
        return
    local = rejects["reason"] == NO_TZ_REASON
    if not bool(local.any()):
        return
    first = str(rejects.loc[local, "record"].iloc[0])
    raise ctx.error(AmbiguousTime, f"{int(local.sum())} row(s) give local times without a UTC "
                    "offset and no time zone was stated; pass --tz ZONE (e.g. --tz "
                    "Europe/Brussels), or --option time_basis=utc if they are UTC",
                    record=first)


def _assemble(chunks: list[pd.DataFrame], fix_kind: str) -> pd.DataFrame:
    """The chunks' fixes as one table for :meth:`LoadContext.finish`; the repetitive and
    empty columns (``record`` from ``__row__``, ``fix_kind``, ``flags``, ``extra``,
    ``also_seen_in``) are built once here, in Arrow, not per chunk or from Python lists.
    Empties ``chunks`` (one copy of the rows in memory, not two)."""
    out = pd.concat(chunks, ignore_index=True)
    chunks.clear()
    n = len(out)
    out.insert(0, "record", _records(out.pop("__row__").to_numpy()))
    out["fix_kind"] = _constant(fix_kind, n)
    out["flags"] = _constant("", n)
    for name in ("extra", "also_seen_in"):
        out[name] = pd.Series(pd.arrays.ArrowStringArray(pa.nulls(n, pa.string())), dtype="string")
    return out


def _constant(text: str, n: int) -> pd.Series:
    """``n`` times ``text`` as a ``string`` column (one Arrow repeat, no Python list)."""
    return pd.Series(pd.arrays.ArrowStringArray(pa.repeat(pa.scalar(text, pa.string()), n)), dtype="string")


def _spec_sniff(path: Path, head: bytes) -> bool:
    return sniff_csv(path, head)


def sniff_csv(path: Path, head: bytes) -> bool:
    """A delimited text file whose header names latitude+longitude (or WKT) and a time.

    Yields to the fleet-portal loader when its header is a portal export
    (:func:`routetrace.loaders.portal.portal_kind`).

    Parameters
    ----------
    path
        The file (read only by the message and statement CSV sniffers it defers to).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether the header names a position and a time and no more specific delimited
        format (portal report, message CSV, statements CSV) claims it.

    Example
    -------
    >>> sniff_csv(Path("log.csv"), b"timestamp;latitude;longitude\\n2025-10-26 22:00;51,0;3,87\\n")
    True
    >>> sniff_csv(Path("stops.csv"), b"Device,Start Time,End Time,Duration,Address,Latitude,"
    ...           b"Longitude\\nlorry,2024-03-24 23:10,2024-03-25 01:40,2 h,E40,51.1,3.0\\n")
    False
    """
    if b"\x00" in head[:8] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    if head.lstrip()[:1] in (b"<", b"{", b"["):
        return False
    d = sniff_dialect(head)
    if d is None:
        return False
    from .portal import portal_kind  # shared helper: the portal sniffer wins on its headers

    if portal_kind(d.header) is not None:
        return False
    cols = auto_columns(d.header)
    has_pos = ("lat" in cols and "lon" in cols) or "geometry" in cols
    has_time = bool({"datetime", "date", "epoch"} & set(cols))
    if not (has_pos and has_time):
        return False
    # the more specific delimited formats win on their own headers
    from .chat import sniff_messages_csv
    from .statements import sniff_statements_csv

    return not (sniff_messages_csv(path, head) or sniff_statements_csv(path, head))


def read_table(path: Path, ctx: LoadContext, *, need: Sequence[str] = ("lat",),
               delimiter: str | None = None,
               accept: Callable[[list[str]], bool] | None = None) -> Dialect:
    """Sniff the dialect or raise :class:`CorruptSource` naming what is missing."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    d = sniff_dialect(head, delimiter=delimiter, need=need, accept=accept)
    if d is None:
        what = "the mapped columns" if accept is not None else ", ".join(need)
        raise ctx.error(CorruptSource, f"no header line with {what} found in the first "
                        "64 KiB; pass options={'columns': {...}} naming the columns as written")
    return d


@register(LoaderSpec(
    name="csv",
    description="Generic CSV/TSV position logs (delimiter, decimal comma, units, WKT, "
                "V-900/MTK/G1000 presets; local times need --tz)",
    sniff=_spec_sniff,
    produces=("fixes",),
    options=("chunk_rows", "columns", "date_order", "decimal", "delimiter", "fix_kind",
             "time_basis", "units"),
))
def load_csv(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a delimited position log. Options: see the module docstring.

    One data row is one record, ``row N`` (1-based): a fix, or a reject with the reason
    (no fix, empty, out-of-range or 0,0 position, unusable time, a local time without
    ``tz``, values beyond the header's columns). A file whose times are all local and no
    zone stated raises :class:`~routetrace.errors.AmbiguousTime`.

    Parameters
    ----------
    path
        The CSV/TSV file (only read, in chunks).
    ctx
        The load context built by :func:`routetrace.loaders.load`: ``tz`` for local
        times, and the options (``columns``, ``units``, ``date_order``, ``time_basis``,
        ``fix_kind``, ``chunk_rows``, ``delimiter``, ``decimal``).

    Returns
    -------
    LoadResult
        ``fixes`` (speeds in m/s, lengths in metres) and ``rejects``; rows read = fixes +
        rejects.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> rows = ("timestamp,latitude,longitude,speed (km/h)\\n2025-10-24 22:00:00,51.0,3.87,36\\n"
    ...         "2025-10-24 22:01:00,0,0,0\\n2025-10-24 22:02:00,51.002,3.87,\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "fleet.csv"
    ...     _ = p.write_text(rows)
    ...     res = load(p, tz="Europe/Brussels")
    >>> res.fixes[["t_utc", "lat", "speed_mps", "record"]]
                          t_utc     lat  speed_mps record
    0 2025-10-24 20:00:00+00:00  51.000       10.0  row 1
    1 2025-10-24 20:02:00+00:00  51.002        NaN  row 3
    >>> res.records_read, res.rejects[["record", "reason"]].values.tolist()
    (3, [['row 2', '0,0 placeholder position (no fix)']])
    """
    rd = _Reader.open(path, ctx)
    fixes: list[pd.DataFrame] = []
    rejects: list[pd.DataFrame] = []
    for f, r in rd.parts():
        if f is not None:
            fixes.append(f)
        if r is not None:
            rejects.append(r)
    all_fixes = _assemble(fixes, rd.tb.fix_kind) if fixes else None
    all_rejects = pd.concat(rejects, ignore_index=True) if rejects else None
    rejects.clear()
    if all_fixes is None:
        raise_if_all_local(all_rejects, ctx)
    return ctx.finish(records_read=rd.n, time_basis=rd.basis(), fixes=all_fixes, rejects=all_rejects)


@dataclass
class _Reader:
    """One delimited file being read chunk by chunk: its plan, and the records read so far."""

    path: Path
    ctx: LoadContext
    dialect: Dialect
    tb: Table
    n: int = 0
    bases: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, ctx: LoadContext) -> _Reader:
        """Sniff and plan (column mapping, units, time basis) or raise naming what is missing."""
        opts = dict(ctx.options)
        explicit = option_map(opts.get("columns"), "columns")
        wanted = set(explicit.values())
        try:
            d = read_table(path, ctx, delimiter=opts.get("delimiter"),
                           accept=(lambda h: wanted <= set(h)) if wanted else None)
        except CorruptSource:
            if not wanted:
                raise
            # let the mapping check below name the column that is not there
            d = read_table(path, ctx, delimiter=opts.get("delimiter"), accept=lambda h: len(h) >= 2)
        if opts.get("decimal") == ",":
            d.decimal_comma = True
        tb = plan(d, opts)
        if not (("lat" in tb.cols and "lon" in tb.cols) or "geometry" in tb.cols):
            raise ctx.error(CorruptSource, f"no latitude/longitude or WKT column in header "
                            f"{d.header!r}; pass options={{'columns': {{'lat': ..., 'lon': ...}}}}")
        if not ({"datetime", "date", "epoch"} & set(tb.cols)):
            raise ctx.error(CorruptSource, f"no time column in header {d.header!r}; pass "
                            "options={'columns': {'datetime': ...}} (or 'date' and 'time')")
        return cls(path=path, ctx=ctx, dialect=d, tb=tb)

    def parts(self) -> Iterator[tuple[pd.DataFrame | None, pd.DataFrame | None]]:
        """Per chunk: (fixes with ``__row__``, rejects[record, reason]), None when empty;
        counts the records read in ``n``."""
        ctx, d, tb = self.ctx, self.dialect, self.tb
        order = ctx.options.get("date_order")
        chunk_rows = int(ctx.options.get("chunk_rows", DEFAULT_CHUNK))
        for chunk in iter_chunks(self.path, d, chunk_rows=chunk_rows):
            bad = chunk.attrs.get("bad_lines", [])
            self.n += len(bad) + len(chunk)
            lines = pd.DataFrame(bad, columns=["record", "reason"]) if bad else None
            if not len(chunk):
                yield None, lines
                continue
            try:
                f, bad_rows, why, tr = _chunk_fixes(chunk, tb, tz=ctx.tz, date_order=order,
                                                    what=ctx.display_path)
            except AmbiguousTime:
                if order is not None:
                    raise
                # this chunk cannot tell D/M/Y from M/D/Y: let the whole file decide
                order = settle_date_order(self.path, d, tb, chunk_rows=chunk_rows, what=ctx.display_path)
                f, bad_rows, why, tr = _chunk_fixes(chunk, tb, tz=ctx.tz, date_order=order,
                                                    what=ctx.display_path)
            order = tr.order or order
            self.bases.append(tr.basis)
            rows = pd.DataFrame({"record": _records(chunk["__row__"].to_numpy()[bad_rows]),
                                 "reason": why.to_numpy()}) if len(bad_rows) else None
            rej = pd.concat([lines, rows], ignore_index=True) if lines is not None and rows is not None \
                else (rows if rows is not None else lines)
            yield (f if len(f) else None), rej

    def basis(self) -> str:
        """``sources.time_basis``: the rules the times were read by, and the dialect."""
        tb, d, tz = self.tb, self.dialect, self.ctx.tz
        basis = tb.basis_note or "; ".join(dict.fromkeys(b for b in self.bases if b != "none")) or "none"
        if tz and "user-stated" not in basis and not tb.basis_note:
            basis += f"; --tz {tz} given"
        units = ", ".join(f"{k}={v}" for k, v in sorted(tb.units.items()))
        return f"{basis} [csv delimiter={d.delimiter!r}" + (", decimal comma" if d.decimal_comma else "") + \
            (f", units {units}" if units else "") + "]"


def stream_csv(
    path: str | Path, *, tz: str | None = None, subject_id: str | None = None,
    options: Mapping[str, Any] | None = None, source_id: str | None = None,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Yield ``(fixes, rejects)`` canonical tables of a delimited position log, chunk by chunk.

    Memory is bounded by ``options["chunk_rows"]`` (default :data:`DEFAULT_CHUNK`), not by
    the file: use this to write a large CSV straight into a store. The rows, reasons and
    rules are :func:`load_csv`'s; each chunk is coerced to the schema and carries
    ``source_id`` (the file's SHA-256 unless given), ``subject_id`` and ``fix_id``.

    Parameters
    ----------
    path
        The CSV/TSV file (only read, in chunks).
    tz
        IANA zone of local times without an offset (``--tz``).
    subject_id
        The subject of the rows without a subject column; default the file stem.
    options
        As for :func:`load_csv` (``columns``, ``units``, ``date_order``, ``chunk_rows``, ...).
    source_id
        The ``source_id`` the rows carry; default the file's SHA-256.

    Returns
    -------
    Iterator of (pandas.DataFrame, pandas.DataFrame)
        ``(fixes, rejects)`` per chunk; over all chunks, rows read = fixes + rejects.

    Raises
    ------
    AmbiguousTime
        When no row gave a fix and rows were refused for a local time without ``tz``.

    Example
    -------
    >>> import tempfile
    >>> rows = ("timestamp,latitude,longitude\\n2025-10-24 22:00:00,51.0,3.87\\n"
    ...         "2025-10-24 22:01:00,0,0\\n2025-10-24 22:02:00,51.002,3.87\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "fleet.csv"
    ...     _ = p.write_text(rows)
    ...     for fixes, rejects in stream_csv(p, tz="Europe/Brussels", options={"chunk_rows": 2}):
    ...         print(fixes["record"].tolist(), rejects["reason"].tolist())
    ['row 1'] ['0,0 placeholder position (no fix)']
    ['row 3'] []
    """
    from ..evidence import sha256_file
    from .base import REGISTRY

    p = Path(path)
    sid = source_id or sha256_file(p)
    ctx = LoadContext(path=p, display_path=str(path), source_id=sid, size_bytes=p.stat().st_size,
                      spec=REGISTRY["csv"][0], subject_id=subject_id, tz=tz, options=dict(options or {}))
    rd = _Reader.open(p, ctx)
    local: list[pd.DataFrame] | None = []  # rejects kept only while no fix has been made
    for f, r in rd.parts():
        rej = schema.empty("rejects") if r is None else schema.coerce(r.assign(source_id=sid), "rejects")
        if f is None:
            if local is not None and r is not None:
                local.append(r)
            yield schema.empty("fixes"), rej
            continue
        local = None
        fx = _assemble([f], rd.tb.fix_kind)
        fx["source_id"] = sid
        if "subject_id" in fx.columns:
            fx["subject_id"] = fx["subject_id"].astype("string").fillna(ctx.subject())
        else:
            fx["subject_id"] = _constant(ctx.subject(), len(fx))
        yield schema.validate(schema.coerce(fx, "fixes"), "fixes"), rej
    if local is not None:
        raise_if_all_local(pd.concat(local, ignore_index=True) if local else None, ctx)
