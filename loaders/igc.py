"""IGC flight logs (FAI gliding flight recorders, paragliding and hang-gliding loggers).

Own line reader (no dependency): the records needed are few and fixed-width, and an
evidence loader must account for every line. Read line by line, so memory does not grow
with the file.

Records and the count rule
--------------------------
* ``line N`` (1-based) — every **B record** (a fix): ``B HHMMSS DDMMmmm N DDDMMmmm E V
  PPPPP GGGGG [extensions]``: UTC time of day, latitude and longitude as degrees and
  thousandths of minutes, validity ``A`` (3-D fix) or ``V`` (2-D fix or no GNSS data),
  pressure altitude and GNSS altitude in metres. A ``V`` fix is kept with flag ``no_fix``
  and without ``alt_m`` (its GNSS altitude is not a measurement); the pressure altitude
  is in ``extra.pressure_alt_m`` for every fix. Extensions declared by the ``I`` record are
  read by this field map: ``FXA`` (estimated position error, m) → ``h_acc_m``, ``SIU``
  (satellites in use) → ``extra.satellites``, ``GSP`` (ground speed, km/h) → ``speed_mps``,
  ``TRT`` (true track, degrees) → ``course_deg``. A B record that is too short, holds
  non-digits, an impossible time or position, 0,0, or comes before any date is a reject
  saying which.
* ``line N`` — a non-empty line that is no IGC record at all (its first letter is not one
  of A-L: noise, a damaged line) is a reject, so a damaged B record is never lost silently.
* The other IGC records (A manufacturer, H headers, I/J extension declarations, C task,
  D differential GPS, E events, F satellites, G security, K extension data, L comments)
  hold no fix and are not records; their number is stated in ``sources.time_basis``.

Time
----
B-record times are UTC by the IGC specification (FAI Technical Specification for IGC-approved
flight recorders, A2.3 and A4.2). The date is the UTC date of the first fix, from the
``HFDTE`` header in either form, ``HFDTEDDMMYY`` (before 2016) or ``HFDTEDATE:DDMMYY,NN``
(NN: the flight of the day); two-digit years 80-99 are 1980-1999, 00-79 2000-2079. A flight
that crosses midnight UTC continues with a smaller time of day: when the time of day falls
back by more than 12 hours the date advances by one day. A smaller step back is not a new
day: that fix keeps the date and is flagged ``inconsistent_value``. The pilot's zone header
(``HFTZN``) is never applied to B times.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["load_igc", "sniff_igc"]

_B = re.compile(r"^B(\d{2})(\d{2})(\d{2})(\d{2})(\d{5})([NS])(\d{3})(\d{5})([EW])([AV])"
                r"([-\d]\d{4})?([-\d]\d{4})?")
_DATE = re.compile(r"^H[FOP]DTE(?:DATE:)?\s*(\d{2})(\d{2})(\d{2})")
_EXT = re.compile(r"(\d{2})(\d{2})([A-Z0-9]{3})")
_HALF_DAY_S = 12 * 3600
_RECORD_LETTERS = frozenset("ABCDEFGHIJKL")

#: extension code -> (canonical column or extra key, conversion of the integer field)
EXTENSIONS: dict[str, tuple[str, Any]] = {
    "FXA": ("h_acc_m", float),
    "SIU": ("satellites", int),
    "GSP": ("speed_mps", lambda v: v / 3.6),
    "TRT": ("course_deg", float),
}


def sniff_igc(path: Path, head: bytes) -> bool:
    """An ``A`` record (manufacturer code) on the first line and an ``HFDTE`` date header
    or a B record in the first 64 KiB.

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether ``head`` looks like an IGC flight log.

    Example
    -------
    >>> sniff_igc(Path("f.igc"), b"AXCSAAA\\r\\nHFDTE150324\\r\\n")
    True
    >>> sniff_igc(Path("f.igc"), b"HFDTE150324\\r\\nAXCS\\r\\n")
    False
    """
    text = head.lstrip(b"\xef\xbb\xbf")
    return re.match(rb"A[A-Z0-9]{3}", text) is not None and \
        re.search(rb"\n(H[FOP]DTE|B\d{13}[NS]\d{8}[EW][AV])", text) is not None


@dataclass
class _Day:
    """The date state: UTC midnight of the current day, and the previous fix's time of day."""

    midnight: pd.Timestamp | None = None
    problem: str = "no HFDTE date header before this B record (IGC times are UTC times of day)"
    last_s: int | None = None


@dataclass
class _Out:
    n: int = 0
    other: int = 0
    fixes: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)
    extensions: list[tuple[int, int, str]] = field(default_factory=list)
    zone_header: str | None = None
    glider: str | None = None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without the line end), read as Latin-1 (IGC is ASCII;
    Latin-1 maps every byte, so a damaged byte is kept, never an exception)."""
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, start=1):
            yield no, raw.rstrip(b"\r\n").decode("latin-1")


def _date(line: str, day: _Day) -> None:
    """An ``HFDTE`` header: set the UTC date (a later header starts a new date)."""
    m = _DATE.match(line)
    day.last_s = None
    if m is None:
        day.midnight, day.problem = None, f"the date header {line[:30]!r} is not DDMMYY"
        return
    dd, mm, yy = (int(g) for g in m.groups())
    year = 1900 + yy if yy >= 80 else 2000 + yy
    try:
        day.midnight = pd.Timestamp(year=year, month=mm, day=dd, tz="UTC")
    except ValueError:
        day.midnight, day.problem = None, f"the date header {line[:30]!r} is not a calendar date"


def _extensions_decl(line: str) -> list[tuple[int, int, str]]:
    """The ``I`` record: (start, end, code) of each B-record extension, 1-based inclusive."""
    try:
        count = int(line[1:3])
    except ValueError:
        return []
    return [(int(a), int(b), code) for a, b, code in _EXT.findall(line[3:3 + 7 * count])]


def _extension_values(line: str, decl: list[tuple[int, int, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for start, end, code in decl:
        if code not in EXTENSIONS:
            continue
        raw = line[start - 1:end].strip()
        if raw.lstrip("-").isdigit():
            key, conv = EXTENSIONS[code]
            out[key] = conv(int(raw))
    return out


def _position(m: re.Match[str]) -> tuple[float, float] | str:
    lat_d, lat_m, ns, lon_d, lon_m, ew = (m.group(i) for i in (4, 5, 6, 7, 8, 9))
    if int(lat_m) >= 60000 or int(lon_m) >= 60000:
        return f"minutes {lat_m[:2]}.{lat_m[2:]} / {lon_m[:2]}.{lon_m[2:]} are not below 60"
    lat = int(lat_d) + int(lat_m) / 60000
    lon = int(lon_d) + int(lon_m) / 60000
    if lat > 90 or lon > 180:
        return f"position {lat:.5f}{ns} {lon:.5f}{ew} out of range"
    if lat == 0 and lon == 0:
        return "position 0,0 (placeholder: the logger had no position)"
    return (-lat if ns == "S" else lat), (-lon if ew == "W" else lon)


def _time(m: re.Match[str], day: _Day) -> tuple[pd.Timestamp | None, str]:
    """UTC time of a B record with the midnight rule; ('inconsistent_value' or '')."""
    hh, mi, ss = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if hh > 23 or mi > 59 or ss > 59:
        return None, f"impossible time of day {m.group(1)}:{m.group(2)}:{m.group(3)}"
    if day.midnight is None:
        return None, day.problem
    secs = hh * 3600 + mi * 60 + ss
    flag = ""
    if day.last_s is not None and secs < day.last_s:
        if day.last_s - secs > _HALF_DAY_S:
            day.midnight += pd.Timedelta(days=1)  # the flight crossed midnight UTC
        else:
            flag = "inconsistent_value"  # time went back a little: same day, flagged
    day.last_s = secs
    return day.midnight + pd.Timedelta(seconds=secs), flag


def _altitude(field_: str | None) -> int | None:
    """A 5-character altitude field in metres ('-0012' is 12 m below the datum)."""
    return int(field_) if field_ and field_.lstrip("-").isdigit() else None


def _b_record(no: int, line: str, day: _Day, out: _Out) -> None:
    out.n += 1
    rec = f"line {no}"
    m = _B.match(line)
    if m is None:
        out.rejects.append((rec, f"B record {line[:40]!r} does not match B HHMMSS DDMMmmmN "
                                 "DDDMMmmmE V PPPPP GGGGG (truncated or damaged)"))
        return
    pos = _position(m)
    if isinstance(pos, str):
        out.rejects.append((rec, pos))
        return
    t, why = _time(m, day)
    if t is None:
        out.rejects.append((rec, why))
        return
    valid = m.group(10) == "A"
    ext = _extension_values(line, out.extensions)
    pressure, gnss = (_altitude(m.group(i)) for i in (11, 12))
    flags = "|".join(sorted(f for f in (why, "" if valid else "no_fix") if f))
    out.fixes.append({
        "record": rec, "t_utc": t, "lat": pos[0], "lon": pos[1],
        "alt_m": gnss if valid else None, "h_acc_m": ext.get("h_acc_m"),
        "speed_mps": ext.get("speed_mps"), "course_deg": ext.get("course_deg"),
        "fix_kind": "gps", "flags": flags,
        "extra": compact_json({"validity": m.group(10), "pressure_alt_m": pressure,
                               "gnss_alt_m": gnss, "satellites": ext.get("satellites")}),
    })


def _line(no: int, line: str, day: _Day, out: _Out) -> None:
    """Dispatch one line by its record letter."""
    kind = line[:1]
    if kind == "B":
        _b_record(no, line, day, out)
        return
    if kind not in _RECORD_LETTERS:
        out.n += 1
        out.rejects.append((f"line {no}", f"not an IGC record (first character {kind!r}): "
                                          "noise or a damaged line"))
        return
    out.other += 1
    if line.startswith(("HFDTE", "HODTE", "HPDTE")):
        _date(line, day)
    elif kind == "I":
        out.extensions = _extensions_decl(line)
    elif line.startswith(("HFTZN", "HOTZN", "HPTZN")):
        out.zone_header = line[5:].strip()[:40]
    elif line.startswith(("HFGID", "HOGID", "HPGID")):  # glider registration: the default subject
        out.glider = line.partition(":")[2].strip()[:40] or None


@register(LoaderSpec(
    name="igc",
    description="IGC flight recorder logs (gliders, paragliders): B-record fixes, UTC by spec",
    sniff=sniff_igc,
    produces=("fixes",),
))
def load_igc(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load an IGC file (see the module doc for records and time). No options; ``ctx.tz``
    is not used: IGC times are UTC.

    Every B record is a record (a fix, or a reject saying what is wrong with it), and so
    is every non-empty line that is no IGC record; headers and other records are counted
    in ``time_basis``, not as records.

    Parameters
    ----------
    path
        The IGC file (only read, line by line).
    ctx
        The load context (source identity, subject) built by
        :func:`routetrace.loaders.load`; the subject defaults to the glider id header.

    Returns
    -------
    LoadResult
        ``fixes`` (``record`` = ``line N``, 1-based) and ``rejects``; records read =
        fixes + rejects.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> lines = ["AXCSAAA", "HFDTEDATE:150324,01", "B1201005206343N00006198WA0058700558",
    ...          "B1201015206350N00006190WA0058800559", "B12010252063", "garbage"]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "flight.igc"
    ...     _ = p.write_text("\\r\\n".join(lines) + "\\r\\n")
    ...     res = load(p)
    >>> res.fixes[["t_utc", "lat", "lon", "alt_m", "record"]]
                          t_utc        lat       lon  alt_m  record
    0 2024-03-15 12:01:00+00:00  52.105717 -0.103300  558.0  line 3
    1 2024-03-15 12:01:01+00:00  52.105833 -0.103167  559.0  line 4
    >>> res.records_read, res.rejects["record"].tolist()
    (4, ['line 5', 'line 6'])
    """
    day, out = _Day(), _Out()
    for no, line in _lines(path):
        if line.strip():
            _line(no, line, day, out)
    basis = ("IGC B-record time: UTC by the FAI IGC specification; date from HFDTE; the date "
             "advances when the time of day falls back by more than 12 h (midnight UTC)")
    if out.zone_header:
        basis += f"; the HFTZN zone header ({out.zone_header}) is not applied"
    basis += f"; {out.other} other IGC records (A, H, I, J, C, D, E, F, G, K, L) hold no fix"
    return ctx.finish(records_read=out.n, time_basis=basis,
                      fixes=pd.DataFrame(out.fixes) if out.fixes else None,
                      rejects=out.rejects, default_subject=out.glider)
