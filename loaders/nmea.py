"""NMEA 0183 logs: RMC, GGA, GNS, GLL, ZDA from any talker (GP, GN, GL, GA, GB, ...) and
Magellan ``$PMGNTRK`` track points.

Own parser (no dependency): the sentences needed are few and simple, and an evidence
loader must account for every line, which general NMEA libraries do not do (they skip
or raise on what they cannot parse).

Records and the count rule
--------------------------
Every sentence is a record (locator ``line N``, 1-based; ``line N.k`` when one line holds
several), and so is every non-empty line without a sentence; except that the position
sentences of one receiver epoch (the same time of day, with no position sentence of another
time between them, each talker and type once) form *one* record (``line 12+13``), which
gives one fix: position from the first, altitude, satellites and HDOP from GGA/GNS, speed
and course from RMC. Talkers count as one receiver: a GPGGA and a GLGGA (or GNGGA) of the
same epoch are one fix, not two; the first one's position is kept and each later talker's
sentence of a type already seen is listed in ``extra.other_talkers`` (talker, type,
lat, lon), its line in the record locator. A line becomes a reject with its reason when it
is not an NMEA sentence (free text, binary noise such as interleaved u-blox UBX), has a
missing or wrong checksum (also a truncated last line), reports no fix (RMC status V, GGA
quality 0, GNS mode N for every system, GLL status V, PMGNTRK status V, empty position), or
is a valid sentence without a position (GSA, GSV, VTG, TXT, other proprietary ``$P...``;
ZDA, whose date and time are used to date later sentences). Nothing is dropped silently.

``$PMGNTRK`` (Magellan track log download: ``lat,N,lon,W,alt,M|F,hhmmss.ss,A,name,ddmmyy``)
gives a fix like RMC: its own date when it has one (two-digit years as for RMC), altitude
converted from feet when the unit is ``F``, the track name in ``extra.track``.

Time
----
NMEA times are UTC (NMEA 0183). Dates come from RMC (``ddmmyy``), PMGNTRK (``ddmmyy``) or
ZDA (``dd,mm,yyyy``) and carry forward to GGA/GNS/GLL; when the time of day falls back by
more than 12 hours the date advances (midnight). Two-digit years 80-99 are 1980-1999 and
00-79 are 2000-2079 (the GPS era began in 1980). GGA/GNS/GLL epochs logged before the first
RMC/ZDA (a receiver's first second) take that first date when they lie less than 12 hours
before it (the previous day when the time of day is later than the dating sentence's:
midnight between them); the fix says so in ``extra.date_from``. A file with GGA/GNS/GLL
only has no date at all: pass ``options={"date": "YYYY-MM-DD"}`` (the UTC date of the first
sentence); without it those sentences are rejects that say so. When the sentences of one
epoch disagree by more than 1 km the fix keeps GGA's or GNS's position (the fix-data
sentences; else the first one) and is flagged ``inconsistent_value`` (the other position is
in ``extra``).

GPS week rollover
-----------------
A receiver that resolves the 10-bit GPS week number wrongly logs dates exactly 1024 weeks
(7168 days, :data:`routetrace.timebase.GPS_WEEK_ROLLOVER`) early: 1999 where 2019 is meant.
Such a date is never corrected; the fix is flagged ``gps_week_rollover_suspect`` with
``extra.rollover_rule`` (which rule fired) and ``extra.date_plus_1024_weeks`` (what the
time would be), when

* ``jump``: the log holds a fix dated at least 1024 weeks (less one day) later than this
  one (no receiver logs for 19.6 years; a mid-log rollover or a second clock shows it);
* ``talker``: a valid sentence of the log (a ``$GAGSV`` as well as a position) comes from a
  satellite system whose first satellite was launched after the fix's date (Galileo ``GA``,
  BeiDou ``GB``/``BD``, QZSS ``GQ``, NavIC ``GI``; :data:`routetrace.timebase.GNSS_FIRST_LAUNCH`):
  the receiver is younger than the date it logs;
* ``not_before``: the fix is dated before ``options={"not_before": "YYYY-MM-DD"}``, the
  earliest date the examiner knows the log can have (e.g. the device's manufacture).

A log from a GPS-only receiver with no second date and no ``not_before`` cannot be told
apart from a genuine old log and is not flagged.

Streaming
---------
The file is read line by line (a line longer than :data:`MAX_PIECE_CHARS` in pieces, with
the text after its last ``$`` carried into the next piece), and fixes and rejects are
gathered in column chunks of :data:`CHUNK_ROWS` rows, so the parser's memory is bounded by
the chunk, not by the file; only the output tables grow with it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import pandas as pd

from .. import schema, timebase
from ..errors import ParameterError
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["CHUNK_ROWS", "MAX_PIECE_CHARS", "load_nmea", "sniff_nmea"]

_SENTENCE = re.compile(rb"\$[A-Z][A-Z0-9]{2,5},")
KNOTS_TO_MPS = 1852.0 / 3600.0
FEET_TO_M = 0.3048

#: Fixes (and rejects) gathered per column chunk before they become a DataFrame.
CHUNK_ROWS = 65_536
#: Characters read at once from one line; a longer line is scanned in pieces.
MAX_PIECE_CHARS = 1 << 20
#: Text after the last ``$`` of a piece carried into the next (an NMEA sentence is at most
#: 82 characters; a longer one split across pieces is not recognised).
_CARRY_CHARS = 4096
_HALF_DAY_S = 12 * 3600
_DAY0 = dt.date(2000, 1, 1)
_PLAUSIBLE = tuple(t.tz_localize(None).to_pydatetime() for t in timebase.PLAUSIBLE)


def sniff_nmea(path: Path, head: bytes) -> bool:
    """At least three NMEA sentences with a valid checksum in the first 64 KiB.

    (Or one valid among three that look like sentences: a log with a few damaged lines
    is still NMEA.)

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB; latin-1, or UTF-16 with a byte-order mark).

    Returns
    -------
    bool
        Whether ``head`` holds enough checksummed NMEA 0183 sentences.

    Example
    -------
    >>> log = (b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\\r\\n"
    ...        b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\\r\\n"
    ...        b"$GPRMC,123520,A,4807.040,N,01131.002,E,022.4,084.4,230394,003.1,W*6D\\r\\n")
    >>> sniff_nmea(Path("log.nmea"), log)
    True
    >>> sniff_nmea(Path("log.nmea"), log.splitlines()[0])  # one sentence is not a log
    False
    """
    text = (head.decode("utf-16", errors="replace") if head.startswith((b"\xff\xfe", b"\xfe\xff"))
            else head.decode("latin-1"))  # the head may end mid-character: never raise
    valid = like = 0
    for line in text.splitlines()[:400]:
        for m in _FULL.finditer(line):
            like += 1
            valid += bool(_checksum_ok(m.group(0)))
    return valid >= 3 or (valid >= 1 and like >= 3)


def _checksum_ok(s: str) -> bool | None:
    """True/False for a sentence with a checksum; None when it has none (truncated)."""
    star = s.rfind("*")
    if star < 0 or len(s) < star + 3:
        return None
    body, given = s[1:star], s[star + 1: star + 3]
    calc = 0
    for ch in body.encode("latin-1", errors="replace"):
        calc ^= ch
    try:
        return calc == int(given, 16)
    except ValueError:
        return False


def _coord(value: str, hemi: str, deg_digits: int) -> float | None:
    if not value or not hemi:
        return None
    try:
        deg = int(value[:deg_digits])
        minutes = float(value[deg_digits:])
    except ValueError:
        return None
    if minutes >= 60:
        return None
    x = deg + minutes / 60.0
    if hemi in ("S", "W"):
        x = -x
    elif hemi not in ("N", "E"):
        return None
    return x


def _tod(value: str) -> dt.time | None:
    """hhmmss[.s...] -> time of day, or None."""
    value = value.strip()
    if len(value) < 6:
        return None
    try:
        h, m = int(value[0:2]), int(value[2:4])
        frac = value[6:]
        sec = float(value[4:6]) + (float("0" + frac) if frac.startswith(".") and len(frac) > 1 else 0.0)
    except ValueError:
        return None
    if h > 23 or m > 59 or sec >= 61:
        return None
    whole = int(sec)
    return dt.time(h, m, min(whole, 59), round((sec - whole) * 1_000_000) % 1_000_000)


def _float(v: str) -> float | None:
    try:
        return float(v) if v else None
    except ValueError:
        return None


def _seconds_between(earlier: dt.time, later: dt.time) -> float:
    """``later - earlier`` in seconds, both read as times of the same day."""
    return (dt.datetime.combine(_DAY0, later) - dt.datetime.combine(_DAY0, earlier)).total_seconds()


_FULL = re.compile(r"\$[A-Z][A-Z0-9]{1,6},[^$*\r\n]*\*[0-9A-Fa-f]{2}")
_NOSUM = re.compile(r"^\$[A-Z][A-Z0-9]{1,6},[ -)+-~]*$")  # printable, no '*': a sentence without checksum
_NOSUM_HEAD = re.compile(r"\$[A-Z][A-Z0-9]{1,6},")
_NOSUM_BODY = re.compile(r"[ -)+-~]*")


# --- reading: lines -> records -------------------------------------------------------------

class _Line(NamedTuple):
    """What one non-empty line holds: its sentences, and what it looks like without one."""

    found: list[str]
    no_checksum: bool  # a printable sentence start without '*'
    has_dollar: bool


def _open_text(path: Path) -> IO[str]:
    """The log as text: UTF-16 when it starts with a BOM, else Latin-1 (every byte a char)."""
    raw = open(path, "rb")
    enc = "utf-16" if raw.read(2) in (b"\xff\xfe", b"\xfe\xff") else "latin-1"
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding=enc, errors="replace", newline="\n")


def _rest_of_line(first: str, fh: IO[str]) -> Iterator[str]:
    yield first
    while piece := fh.readline(MAX_PIECE_CHARS):
        yield piece
        if piece.endswith("\n"):
            return


def _long_line(first: str, fh: IO[str]) -> _Line | None:
    """Scan a line longer than :data:`MAX_PIECE_CHARS` piece by piece (bounded memory)."""
    found: list[str] = []
    carry = ""
    started = no_checksum = has_dollar = False
    for piece in _rest_of_line(first, fh):
        if not started:
            piece = piece.lstrip().lstrip("\ufeff")
            if not piece:
                continue
            started, no_checksum = True, _NOSUM_HEAD.match(piece) is not None
        no_checksum = no_checksum and _NOSUM_BODY.fullmatch(piece.rstrip()) is not None
        has_dollar = has_dollar or "$" in piece
        text = carry + piece
        end = 0
        for m in _FULL.finditer(text):
            found.append(m.group(0))
            end = m.end()
        tail = text[end:]
        k = tail.rfind("$")
        carry = tail[k:] if k >= 0 and len(tail) - k <= _CARRY_CHARS else ""
    return _Line(found, no_checksum, has_dollar) if started else None


def _lines(fh: IO[str]) -> Iterator[tuple[int, _Line]]:
    """``(line number, what it holds)`` for every non-empty line, read one at a time."""
    lineno = 0
    while piece := fh.readline(MAX_PIECE_CHARS):
        lineno += 1
        if piece.endswith("\n") or len(piece) < MAX_PIECE_CHARS:
            text = piece.strip().lstrip("\ufeff")
            if text:
                yield lineno, _Line([m.group(0) for m in _FULL.finditer(text)],
                                    _NOSUM.match(text) is not None, "$" in text)
            continue
        line = _long_line(piece, fh)
        if line is not None:
            yield lineno, line


def _line_records(lineno: int, line: _Line, *, last: bool) -> Iterator[tuple[str, str, str | None]]:
    """The records of one line: each sentence with its problem, or the line's own problem."""
    if not line.found:
        if line.no_checksum:
            why = ("sentence without a checksum (cut off at the end of the log)" if last
                   else "sentence without a checksum: it cannot be verified")
        elif line.has_dollar:
            why = ("damaged sentence: unreadable header or no checksum"
                   + (" (truncated last line)" if last else ""))
        else:
            why = "not an NMEA sentence (text or binary data)"
        yield f"line {lineno}", "", why
        return
    for k, sent in enumerate(line.found):
        loc = f"line {lineno}" if len(line.found) == 1 else f"line {lineno}.{k + 1}"
        if not _checksum_ok(sent):
            yield loc, sent, "checksum does not match: the sentence is damaged"
        else:
            yield loc, sent, None


def _records(fh: IO[str]) -> Iterator[tuple[str, str, str | None]]:
    """Yield ``(locator, sentence, problem)`` for every record of the log, streamed.

    A line may hold several sentences (binary noise between them is ignored when a
    sentence is found); a line with none is one record with its problem. One line of
    look-ahead tells whether a line is the last one (a truncated last sentence).
    """
    pending: tuple[int, _Line] | None = None
    for item in _lines(fh):
        if pending is not None:
            yield from _line_records(*pending, last=False)
        pending = item
    if pending is not None:
        yield from _line_records(*pending, last=True)


# --- position sentences: fields -> a position dict or a reason -----------------------------

Position = dict[str, Any]


def _parse_rmc(f: list[str]) -> Position | str | None:
    if len(f) < 10:
        return None
    sp, co = _float(f[7]), _float(f[8])
    pos: Position = {"tod": _tod(f[1]), "lat": _coord(f[3], f[4], 2), "lon": _coord(f[5], f[6], 3),
                     "speed": sp * KNOTS_TO_MPS if sp is not None else None, "course": co,
                     "ds": f[9], "dating": True}
    if f[2] != "A":
        return "RMC status V: the receiver reports no valid fix"
    return pos


def _parse_fix_data(f: list[str], kind: str) -> Position | str | None:
    """GGA and GNS: position with fix quality, satellites, HDOP and altitude."""
    if len(f) < 10:
        return None
    if kind == "GGA" and f[6] in ("", "0"):
        return "GGA fix quality 0: no position"
    if kind == "GNS" and not f[6].strip("N"):
        return "GNS mode N: no fix from any satellite system"
    return {"tod": _tod(f[1]), "lat": _coord(f[2], f[3], 2), "lon": _coord(f[4], f[5], 3),
            "quality": f[6], "sats": f[7], "hdop": _float(f[8]), "alt": _float(f[9])}


def _parse_gll(f: list[str]) -> Position | str | None:
    if len(f) < 6:
        return None
    if len(f) >= 7 and f[6] == "V":
        return "GLL status V: no valid position"
    return {"lat": _coord(f[1], f[2], 2), "lon": _coord(f[3], f[4], 3), "tod": _tod(f[5])}


def _parse_pmgntrk(f: list[str]) -> Position | str | None:
    """Magellan track point: ``lat,N,lon,W,alt,M|F,hhmmss.ss,A,name,ddmmyy``."""
    if len(f) < 9:
        return None
    if f[8] != "A":
        return "PMGNTRK status V: the receiver marks the track point invalid"
    alt = _float(f[5])
    if alt is not None and f[6] not in ("M", "F"):
        alt = None
    elif alt is not None and f[6] == "F":
        alt *= FEET_TO_M
    ds = f[10] if len(f) >= 11 else ""
    return {"tod": _tod(f[7]), "lat": _coord(f[1], f[2], 2), "lon": _coord(f[3], f[4], 3),
            "alt": alt, "track": f[9] or None, "ds": ds,
            "dating": len(ds) == 6 and ds.isdigit()}


_PARSERS: dict[str, Callable[[list[str]], Position | str | None]] = {
    "RMC": _parse_rmc,
    "GGA": lambda f: _parse_fix_data(f, "GGA"),
    "GNS": lambda f: _parse_fix_data(f, "GNS"),
    "GLL": _parse_gll,
    "PMGNTRK": _parse_pmgntrk,
}
_MERGED = ("alt", "sats", "hdop", "quality", "speed", "course")
_EXTRA = ("talker", "sats", "hdop", "quality", "other_position", "other_talkers", "date_from",
          "track")


def _two_digit_year_date(ds: str) -> dt.date:
    """``ddmmyy`` with years 80-99 = 19xx, 00-79 = 20xx (raises ValueError when impossible)."""
    yy = int(ds[4:6])
    return dt.date(1900 + yy if yy >= 80 else 2000 + yy, int(ds[2:4]), int(ds[0:2]))


# --- output: rows gathered in column chunks ------------------------------------------------

class _Rows:
    """Fixes and rejects in column lists, turned into DataFrames every ``chunk_rows`` rows."""

    _FLOATS = ("lat", "lon", "alt_m", "speed_mps", "course_deg")

    def __init__(self, chunk_rows: int) -> None:
        self.chunk_rows = chunk_rows
        self.fix: dict[str, list[Any]] = {}
        self.fix_frames: list[pd.DataFrame] = []
        self.rej: tuple[list[int], list[str], list[str]] = ([], [], [])
        self.rej_frames: list[pd.DataFrame] = []
        self._reasons: dict[str, str] = {}  # one string object per distinct reason
        self._clear_fixes()

    def _clear_fixes(self) -> None:
        self.fix = {k: [] for k in ("_seq", "record", "t_utc", *self._FLOATS, "flags", "extra")}

    def add_fix(self, **row: Any) -> None:
        for k, v in row.items():
            self.fix[k].append(v)
        if len(self.fix["_seq"]) >= self.chunk_rows:
            self._fix_frame()

    def add_reject(self, seq: int, loc: str, why: str) -> None:
        seqs, locs, whys = self.rej
        seqs.append(seq)
        locs.append(loc)
        whys.append(self._reasons.setdefault(why, why))
        if len(seqs) >= self.chunk_rows:
            self._reject_frame()

    def _fix_frame(self) -> None:
        c = self.fix
        if not c["_seq"]:
            return
        df = pd.DataFrame({
            "_seq": np.array(c["_seq"], dtype=np.int64),
            "record": pd.array(c["record"], dtype="string"),
            "t_utc": pd.DatetimeIndex(np.array(c["t_utc"], dtype="datetime64[ns]")).tz_localize("UTC"),
            **{k: np.array(c[k], dtype=np.float64) for k in self._FLOATS},
            "fix_kind": "gps",
            "flags": pd.array(c["flags"], dtype="string"),
            "extra": pd.array(c["extra"], dtype="string"),
        })
        self.fix_frames.append(df)
        self._clear_fixes()

    def _reject_frame(self) -> None:
        seqs, locs, whys = self.rej
        if seqs:
            self.rej_frames.append(pd.DataFrame({
                "_seq": np.array(seqs, dtype=np.int64), "record": pd.array(locs, dtype="string"),
                "reason": pd.array(whys, dtype="string")}))
        self.rej = ([], [], [])

    def fixes(self) -> pd.DataFrame | None:
        """All fixes in the order of their records in the log."""
        self._fix_frame()
        if not self.fix_frames:
            return None
        df = pd.concat(self.fix_frames, ignore_index=True)
        self.fix_frames = []
        return df.sort_values("_seq", kind="stable").drop(columns="_seq").reset_index(drop=True)

    def rejects(self) -> pd.DataFrame | None:
        """All rejects in the order of their records in the log."""
        self._reject_frame()
        if not self.rej_frames:
            return None
        df = pd.concat(self.rej_frames, ignore_index=True)
        self.rej_frames = []
        return df.sort_values("_seq", kind="stable").drop(columns="_seq").reset_index(drop=True)


# --- the log's state while its records stream past -----------------------------------------

class _Log:
    """Dates, the open epoch and the epochs waiting for a date, fed one record at a time."""

    def __init__(self, given_date: dt.date | None, chunk_rows: int) -> None:
        self.given_date = given_date
        self.date_ctx: dt.date | None = given_date
        self.last_tod: dt.time | None = None
        self.held: Position | None = None  # the fix of the current epoch, still open
        self.anchor: tuple[dt.date, dt.time, str] | None = None  # first (date, time, locator) from RMC/ZDA
        self.undated: list[Position] = []  # epochs before the first RMC/ZDA, dated from it later
        self.seq = 0  # output order = order of the records in the log
        self.n_records = 0
        self.talkers: set[str] = set()  # of every valid sentence (GAGSV too): the receiver's systems
        self.rows = _Rows(chunk_rows)

    def reject(self, loc: str, why: str, at: int | None = None) -> None:
        self.rows.add_reject(self.seq if at is None else at, loc, why)

    def read(self, loc: str, sentence: str, problem: str | None) -> None:
        """Account for one record: a reject, a date, or a position for the open epoch."""
        self.n_records += 1
        self.seq += 1
        if problem is not None:
            self.reject(loc, problem)
            return
        f = sentence[1: sentence.rfind("*")].split(",")
        tag = f[0]
        kind = tag if tag.startswith("P") else tag[-3:]
        self.talkers.add(tag[:2])
        if kind == "ZDA" and len(f) >= 5:
            self._zda(f, loc)
            return
        parse = _PARSERS.get(kind)
        if parse is None:
            self.reject(loc, f"valid {tag} sentence, carries no position")
            return
        pos = parse(f)
        if pos is None or isinstance(pos, str):
            self.reject(loc, pos or f"{tag} with too few fields")
            return
        pos["type"], pos["talker"] = kind, "P" if tag.startswith("P") else tag[:2]
        if pos.get("dating") and not self._take_date(pos, loc):
            return
        if pos.get("tod") is None or pos.get("lat") is None or pos.get("lon") is None:
            self.reject(loc, f"{tag} without a usable time or position")
            return
        self._epoch(pos, loc)

    def _zda(self, f: list[str], loc: str) -> None:
        tod = _tod(f[1])
        try:
            self.date_ctx = dt.date(int(f[4]), int(f[3]), int(f[2]))
        except (ValueError, OverflowError):  # not a number / a year of 30 digits
            self.reject(loc, "ZDA with an impossible date")
            return
        if tod is not None:
            self.last_tod = tod
            self.anchor = self.anchor or (self.date_ctx, tod, loc)
        self.reject(loc, "ZDA: date and time only, no position (used to date the sentences "
                         "that follow)")

    def _take_date(self, pos: Position, loc: str) -> bool:
        """Date context from an RMC/PMGNTRK ``ddmmyy``; False when the date is impossible."""
        ds = pos["ds"]
        if not (len(ds) == 6 and ds.isdigit()):
            return True
        try:
            self.date_ctx = _two_digit_year_date(ds)
        except ValueError:
            self.flush()
            self.reject(loc, f"{pos['type']} with an impossible date {ds!r}")
            return False
        self.last_tod = pos["tod"]
        if pos["tod"] is not None:
            self.anchor = self.anchor or (self.date_ctx, pos["tod"], loc)
        return True

    def _epoch(self, pos: Position, loc: str) -> None:
        """Merge ``pos`` into the open epoch (same time, a talker/type not yet in it) or open one."""
        held, key = self.held, (pos["talker"], pos["type"])
        if held is not None and held["tod"] == pos["tod"] and key not in held["keys"]:
            self.n_records -= 1
            _merge(held, pos, loc)
            if held["date"] is None and self.date_ctx is not None:
                held["date"] = self.date_ctx
            return
        self.flush()
        if not pos.get("dating"):
            self._advance(pos["tod"])
        pos.update(date=self.date_ctx, lines=[loc], types={pos["type"]}, keys={key}, seq=self.seq)
        self.held = pos

    def _advance(self, tod: dt.time) -> None:
        if self.date_ctx is not None and self.last_tod is not None:
            if _seconds_between(tod, self.last_tod) > _HALF_DAY_S:  # midnight passed
                self.date_ctx = self.date_ctx + dt.timedelta(days=1)
        self.last_tod = tod

    def flush(self) -> None:
        """Close the open epoch: emit it, or keep it until the first date comes."""
        held, self.held = self.held, None
        if held is None:
            return
        if held["date"] is None and self.given_date is None:
            self.undated.append(held)
        else:
            self._emit(held)

    def _back_date(self, h: Position) -> None:
        """Date an epoch logged before the first RMC/ZDA from that sentence, or reject it."""
        if self.anchor is not None:
            a_date, a_tod, a_loc = self.anchor
            before = _seconds_between(h["tod"], a_tod)
            if -1e-6 <= before < _HALF_DAY_S or -86400 <= before < -_HALF_DAY_S:
                h["date"] = a_date if before >= -1e-6 else a_date - dt.timedelta(days=1)
                h["date_from"] = f"{a_loc} (the first dated sentence, after this one)"
        self._emit(h)

    def _emit(self, h: Position) -> None:
        rec = "+".join(h["lines"])
        if h["date"] is None:
            self.reject(rec, f"{h['type']} carries only the time of day and no RMC/ZDA "
                             "dates it: pass options date=YYYY-MM-DD", h["seq"])
            return
        t = dt.datetime.combine(h["date"], h["tod"])
        if not (_PLAUSIBLE[0] <= t <= _PLAUSIBLE[1]):
            self.reject(rec, f"implausible time {pd.Timestamp(t, tz='UTC').isoformat()}", h["seq"])
            return
        self.rows.add_fix(_seq=h["seq"], record=rec, t_utc=t, lat=h["lat"], lon=h["lon"],
                          alt_m=h.get("alt"), speed_mps=h.get("speed"), course_deg=h.get("course"),
                          flags="inconsistent_value" if h.get("inconsistent") else "",
                          extra=compact_json({k: h.get(k) for k in _EXTRA}))

    def finish(self) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        """Close the last epoch, date the early ones; fixes and rejects in log order."""
        self.flush()
        for h in self.undated:
            self._back_date(h)
        return self.rows.fixes(), self.rows.rejects()


def _merge(held: Position, pos: Position, loc: str) -> None:
    """Add a sentence of the same epoch to its fix (see the module notes for who wins)."""
    held["lines"].append(loc.removeprefix("line "))
    if pos["type"] in held["types"]:  # the same sentence type from another talker
        held.setdefault("other_talkers", []).append([pos["talker"], pos["type"], pos["lat"], pos["lon"]])
    held["types"].add(pos["type"])
    held["keys"].add((pos["talker"], pos["type"]))
    if abs(held["lat"] - pos["lat"]) > 0.01 or abs(held["lon"] - pos["lon"]) > 0.015:
        held["inconsistent"] = True
        if pos["type"] in ("GGA", "GNS") and held["type"] not in ("GGA", "GNS"):
            # GGA/GNS are the fix-data sentences: their position is kept
            held["other_position"] = [held["lat"], held["lon"], held["type"]]
            held["lat"], held["lon"], held["type"] = pos["lat"], pos["lon"], pos["type"]
        else:
            held["other_position"] = [pos["lat"], pos["lon"], pos["type"]]
    for k in _MERGED:
        if held.get(k) is None and pos.get(k) is not None:
            held[k] = pos[k]


# --- GPS week rollover ---------------------------------------------------------------------

def _rollover_rules(fixes: pd.DataFrame, talkers: set[str], not_before: dt.date | None) -> pd.Series:
    """Per fix, the rollover rule that fires (``""`` when none; the last listed wins when
    several do): see the module notes."""
    t = fixes["t_utc"]
    rule = pd.Series("", index=fixes.index, dtype="string")
    margin = timebase.GPS_WEEK_ROLLOVER - pd.Timedelta(days=1)
    if not_before is not None:
        rule[(t < pd.Timestamp(not_before, tz="UTC")).to_numpy()] = "not_before"
    for talker, launched in timebase.GNSS_FIRST_LAUNCH.items():
        if talker in talkers:
            rule[(t < launched).to_numpy()] = (f"talker {talker} in the log: no such satellite "
                                               f"before {launched.date().isoformat()}")
    rule[(t.max() - t >= margin).to_numpy()] = "jump: the log holds a fix 1024 weeks later"
    return rule


def _flag_rollover(fixes: pd.DataFrame, talkers: set[str], not_before: dt.date | None
                   ) -> tuple[pd.DataFrame, int]:
    """Flag fixes whose date may be 1024 weeks early; the dates are kept as logged."""
    rule = _rollover_rules(fixes, talkers, not_before)
    hit = (rule != "").to_numpy()
    if not hit.any():
        return fixes, 0
    fixes["flags"] = schema.add_flag(fixes["flags"], hit, "gps_week_rollover_suspect")
    later = (fixes.loc[hit, "t_utc"] + timebase.GPS_WEEK_ROLLOVER).map(pd.Timestamp.isoformat)
    fixes.loc[hit, "extra"] = [
        compact_json({**json.loads(ex), "rollover_rule": r, "date_plus_1024_weeks": d})
        for ex, r, d in zip(fixes.loc[hit, "extra"], rule[hit], later, strict=True)]
    return fixes, int(hit.sum())


def _date_option(ctx: LoadContext, name: str) -> dt.date | None:
    if not ctx.options.get(name):
        return None
    try:
        return dt.date.fromisoformat(str(ctx.options[name]))
    except ValueError as exc:
        raise ParameterError(f"option {name}={ctx.options[name]!r}: expected YYYY-MM-DD") from exc


def _time_basis(given_date: dt.date | None, back_dated: bool, n_rollover: int) -> str:
    basis = ("NMEA 0183 times are UTC; dates from RMC (two-digit years 80-99 = 19xx, 00-79 = 20xx) "
             "or ZDA, carried forward with midnight rollover")
    if given_date is not None:
        basis += f"; first date stated by the user: {given_date.isoformat()}"
    if back_dated:
        basis += "; epochs before the first RMC/ZDA dated from it (extra.date_from)"
    if n_rollover:
        basis += (f"; {n_rollover} fixes flagged gps_week_rollover_suspect (dates kept as logged; "
                  "extra.rollover_rule, extra.date_plus_1024_weeks)")
    return basis


@register(LoaderSpec(
    name="nmea",
    description="NMEA 0183 logs: RMC/GGA/GNS/GLL/ZDA from any talker, Magellan PMGNTRK, streamed",
    sniff=sniff_nmea,
    produces=("fixes",),
    options=("chunk_rows", "date", "not_before"),
))
def load_nmea(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load an NMEA log, streamed line by line.

    Parameters
    ----------
    path
        The log (ASCII/Latin-1, or UTF-16 with a BOM).
    ctx
        Options: ``date`` (YYYY-MM-DD), the UTC date of the first sentence for logs without
        RMC/ZDA; ``not_before`` (YYYY-MM-DD), the earliest date the log can have (fixes
        dated before it are flagged ``gps_week_rollover_suspect``); ``chunk_rows`` (int,
        default :data:`CHUNK_ROWS`).

    Returns
    -------
    LoadResult
        One fix per receiver epoch; every other record a reject with its reason.

    Example
    -------
    A GGA and an RMC of one epoch (one record, ``line 1+2``), a second RMC, and a damaged
    sentence:

    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> log = ("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\\r\\n"
    ...        "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\\r\\n"
    ...        "$GPRMC,123520,A,4807.040,N,01131.002,E,022.4,084.4,230394,003.1,W*6D\\r\\n"
    ...        "$GPRMC,123521,A,4807.0*00\\r\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "drive.nmea"
    ...     _ = p.write_text(log)
    ...     res = load(p)
    ...     late = load(p, options={"not_before": "2018-01-01"})
    >>> res.fixes[["t_utc", "lat", "speed_mps", "record"]]
                          t_utc        lat  speed_mps    record
    0 1994-03-23 12:35:19+00:00  48.117300  11.523556  line 1+2
    1 1994-03-23 12:35:20+00:00  48.117333  11.523556    line 3
    >>> res.records_read, res.rejects[["record", "reason"]].values.tolist()
    (3, [['line 4', 'checksum does not match: the sentence is damaged']])
    >>> late.fixes["flags"].tolist()  # dated before not_before: a GPS week rollover?
    ['gps_week_rollover_suspect', 'gps_week_rollover_suspect']
    """
    given_date = _date_option(ctx, "date")
    log = _Log(given_date, int(ctx.options.get("chunk_rows", CHUNK_ROWS)))
    with _open_text(path) as fh:
        for loc, sentence, problem in _records(fh):
            log.read(loc, sentence, problem)
    fixes, rejects = log.finish()
    n_rollover = 0
    if fixes is not None:
        fixes, n_rollover = _flag_rollover(fixes, log.talkers, _date_option(ctx, "not_before"))
    basis = _time_basis(given_date, any(h.get("date_from") for h in log.undated), n_rollover)
    return ctx.finish(records_read=log.n_records, time_basis=basis, fixes=fixes, rejects=rejects)
