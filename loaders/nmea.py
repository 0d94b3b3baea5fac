"""NMEA 0183 logs: RMC, GGA, GNS, GLL and ZDA sentences from any talker (GP, GN, GL, GA, GB, ...).

Own parser (no dependency): the sentences needed are few and simple, and an evidence
loader must account for every line, which general NMEA libraries do not do (they skip
or raise on what they cannot parse).

Records and the count rule
--------------------------
Every sentence is a record (locator ``line N``, 1-based; ``line N.k`` when one line holds
several), and so is every non-empty line without a sentence; except that the RMC, GGA, GNS
and GLL sentences of one epoch (the same time of day, with no position sentence of another
time between them, each type once) form *one* record (``line 12+13``), which gives one fix: position
from the first, altitude, satellites and HDOP from GGA/GNS, speed and course from RMC. A
line becomes a reject with its reason when it is not an NMEA sentence (free text, binary
noise such as interleaved u-blox UBX), has a missing or wrong checksum (also a truncated
last line), reports no fix (RMC status V, GGA quality 0, GNS mode N for every system, GLL
status V, empty position), or is a valid sentence without a position (GSA, GSV, VTG, TXT,
proprietary ``$P...``; ZDA, whose date and time are used to date later sentences).
Nothing is dropped silently.

Time
----
NMEA times are UTC (NMEA 0183). Dates come from RMC (``ddmmyy``) or ZDA (``dd,mm,yyyy``)
and carry forward to GGA/GNS/GLL; when the time of day falls back by more than 12 hours
the date advances (midnight). Two-digit RMC years 80-99 are 1980-1999 and 00-79 are 2000-2079 (the
GPS era began in 1980). GGA/GNS/GLL epochs logged before the first RMC/ZDA (a receiver's first
second) take that first date when they lie less than 12 hours before it (the previous day
when the time of day is later than the dating sentence's: midnight between them); the fix
says so in ``extra.date_from``. A file with GGA/GNS/GLL only has no date at all: pass
``options={"date": "YYYY-MM-DD"}`` (the UTC date of the first sentence); without it those
sentences are rejects that say so. When the sentences of one epoch disagree by more
than 1 km the fix keeps GGA's or GNS's position (the fix-data sentences; else the first
one) and is flagged ``inconsistent_value`` (the other position is in ``extra``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .. import timebase
from ..errors import ParameterError
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register

__all__ = ["load_nmea", "sniff_nmea"]

_SENTENCE = re.compile(rb"\$[A-Z][A-Z0-9]{2,5},")
KNOTS_TO_MPS = 1852.0 / 3600.0


def sniff_nmea(path: Path, head: bytes) -> bool:
    """At least three NMEA sentences with a valid checksum in the first 64 KiB."""
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


_FULL = re.compile(r"\$[A-Z][A-Z0-9]{1,6},[^$*\r\n]*\*[0-9A-Fa-f]{2}")
_NOSUM = re.compile(r"^\$[A-Z][A-Z0-9]{1,6},[ -)+-~]*$")  # printable, no '*': a sentence without checksum


def _sentences(lines: list[str]) -> Any:
    """Yield (line number, locator, sentence, problem) for every record of the log.

    A line may hold several sentences (binary noise between them is ignored when a
    sentence is found); a line with none is one record with its problem.
    """
    last = max((i for i, ln in enumerate(lines, start=1) if ln.strip().lstrip("\ufeff")), default=0)
    for lineno, line in enumerate(lines, start=1):
        text = line.strip().lstrip("\ufeff")
        if not text:
            continue
        found = list(_FULL.finditer(text))
        if not found:
            if _NOSUM.match(text):
                why = ("sentence without a checksum (cut off at the end of the log)" if lineno == last
                       else "sentence without a checksum: it cannot be verified")
                yield lineno, f"line {lineno}", "", why
            elif "$" in text:
                yield lineno, f"line {lineno}", "", ("damaged sentence: unreadable header or no checksum"
                                                     + (" (truncated last line)" if lineno == last else ""))
            else:
                yield lineno, f"line {lineno}", "", "not an NMEA sentence (text or binary data)"
            continue
        for k, m in enumerate(found):
            loc = f"line {lineno}" if len(found) == 1 else f"line {lineno}.{k + 1}"
            sent = m.group(0)
            if not _checksum_ok(sent):
                yield lineno, loc, sent, "checksum does not match: the sentence is damaged"
            else:
                yield lineno, loc, sent, None


def _float(v: str) -> float | None:
    try:
        return float(v) if v else None
    except ValueError:
        return None


def _decode(raw: bytes) -> list[str]:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
    else:
        text = raw.decode("latin-1")
    return text.split("\n")


@register(LoaderSpec(
    name="nmea",
    description="NMEA 0183 logs: RMC/GGA/GNS/GLL/ZDA from any talker, checksums verified",
    sniff=sniff_nmea,
    produces=("fixes",),
))
def load_nmea(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load an NMEA log. Option ``date`` (YYYY-MM-DD): UTC date for files without RMC/ZDA."""
    given_date: dt.date | None = None
    if ctx.options.get("date"):
        try:
            given_date = dt.date.fromisoformat(str(ctx.options["date"]))
        except ValueError as exc:
            raise ParameterError(f"option date={ctx.options['date']!r}: expected YYYY-MM-DD") from exc
    lines = _decode(path.read_bytes())
    rejects: list[tuple[int, str, str]] = []
    fixes: list[dict[str, Any]] = []
    n_records = 0
    date_ctx: dt.date | None = given_date
    last_tod: dt.time | None = None
    held: dict[str, Any] | None = None  # the fix of the current epoch, still open
    anchor: tuple[dt.date, dt.time, str] | None = None  # first (date, time, locator) from RMC/ZDA
    undated: list[dict[str, Any]] = []  # epochs before the first RMC/ZDA, dated from it later
    seq = 0  # output order = order of the records in the log

    def reject(loc: str, why: str, at: int | None = None) -> None:
        rejects.append((seq if at is None else at, loc, why))

    def flush() -> None:
        nonlocal held
        if held is None:
            return
        if held["date"] is None and given_date is None:
            undated.append(held)
        else:
            emit(held)
        held = None

    def back_date(h: dict[str, Any]) -> None:
        """Date an epoch logged before the first RMC/ZDA from that sentence, or reject it."""
        if anchor is not None:
            a_date, a_tod, a_loc = anchor
            before = (dt.datetime.combine(dt.date(2000, 1, 1), a_tod)
                      - dt.datetime.combine(dt.date(2000, 1, 1), h["tod"])).total_seconds()
            if -1e-6 <= before < 12 * 3600 or -86400 <= before < -12 * 3600:
                h["date"] = a_date if before >= -1e-6 else a_date - dt.timedelta(days=1)
                h["date_from"] = f"{a_loc} (the first dated sentence, after this one)"
        emit(h)

    def emit(held_: dict[str, Any]) -> None:
        rec = "+".join(held_["lines"])
        if held_["date"] is None:
            reject(rec, f"{held_['type']} carries only the time of day and no RMC/ZDA "
                                 "dates it: pass options date=YYYY-MM-DD", held_["seq"])
        else:
            t = pd.Timestamp(dt.datetime.combine(held_["date"], held_["tod"]), tz="UTC")
            if not (timebase.PLAUSIBLE[0] <= t <= timebase.PLAUSIBLE[1]):
                reject(rec, f"implausible time {t.isoformat()}", held_["seq"])
            else:
                fixes.append({"record": rec, "t_utc": t, "lat": held_["lat"], "lon": held_["lon"],
                              "alt_m": held_.get("alt"), "speed_mps": held_.get("speed"),
                              "course_deg": held_.get("course"), "fix_kind": "gps",
                              "flags": "inconsistent_value" if held_.get("inconsistent") else "",
                              "_seq": held_["seq"],
                              "extra": compact_json({k: held_.get(k) for k in
                                                     ("talker", "sats", "hdop", "quality", "other_position",
                                                      "date_from")})})

    def advance(tod: dt.time) -> None:
        nonlocal date_ctx, last_tod
        if date_ctx is not None and last_tod is not None:
            back = (dt.datetime.combine(dt.date(2000, 1, 1), last_tod)
                    - dt.datetime.combine(dt.date(2000, 1, 1), tod)).total_seconds()
            if back > 12 * 3600:  # midnight passed
                date_ctx = date_ctx + dt.timedelta(days=1)
        last_tod = tod

    for _lineno, loc, s, problem in _sentences(lines):
        n_records += 1
        seq += 1
        if problem is not None:
            reject(loc, problem)
            continue
        f = s[1: s.rfind("*")].split(",")
        tag = f[0]
        kind = tag[-3:] if not tag.startswith("P") else tag
        talker = tag[:2] if not tag.startswith("P") else "P"
        if kind == "ZDA" and len(f) >= 5:
            tod = _tod(f[1])
            try:
                date_ctx = dt.date(int(f[4]), int(f[3]), int(f[2]))
            except (ValueError, OverflowError):  # not a number / a year of 30 digits
                reject(loc, "ZDA with an impossible date")
                continue
            if tod is not None:
                last_tod = tod
                anchor = anchor or (date_ctx, tod, loc)
            reject(loc, "ZDA: date and time only, no position (used to date "
                                              "the sentences that follow)")
            continue
        if kind not in ("RMC", "GGA", "GNS", "GLL"):
            reject(loc, f"valid {tag} sentence, carries no position")
            continue
        pos: dict[str, Any] = {"type": kind, "talker": talker}
        if kind == "RMC" and len(f) >= 10:
            pos["tod"], status = _tod(f[1]), f[2]
            pos["lat"], pos["lon"] = _coord(f[3], f[4], 2), _coord(f[5], f[6], 3)
            sp, co = _float(f[7]), _float(f[8])
            pos["speed"] = sp * KNOTS_TO_MPS if sp is not None else None
            pos["course"] = co
            if status != "A":
                reject(loc, "RMC status V: the receiver reports no valid fix")
                continue
            ds = f[9]
            if len(ds) == 6 and ds.isdigit():
                yy = int(ds[4:6])
                try:
                    date_ctx = dt.date(1900 + yy if yy >= 80 else 2000 + yy, int(ds[2:4]), int(ds[0:2]))
                except ValueError:
                    flush()
                    reject(loc, f"RMC with an impossible date {ds!r}")
                    continue
                last_tod = pos["tod"]
                if pos["tod"] is not None:
                    anchor = anchor or (date_ctx, pos["tod"], loc)
        elif kind == "GGA" and len(f) >= 10:
            pos["tod"] = _tod(f[1])
            pos["lat"], pos["lon"] = _coord(f[2], f[3], 2), _coord(f[4], f[5], 3)
            pos["quality"], pos["sats"], pos["hdop"] = f[6], f[7], _float(f[8])
            pos["alt"] = _float(f[9])
            if f[6] in ("", "0"):
                reject(loc, "GGA fix quality 0: no position")
                continue
        elif kind == "GNS" and len(f) >= 10:
            pos["tod"] = _tod(f[1])
            pos["lat"], pos["lon"] = _coord(f[2], f[3], 2), _coord(f[4], f[5], 3)
            pos["quality"], pos["sats"], pos["hdop"] = f[6], f[7], _float(f[8])
            pos["alt"] = _float(f[9])
            if not f[6].strip("N"):
                reject(loc, "GNS mode N: no fix from any satellite system")
                continue
        elif kind == "GLL" and len(f) >= 6:
            pos["lat"], pos["lon"] = _coord(f[1], f[2], 2), _coord(f[3], f[4], 3)
            pos["tod"] = _tod(f[5])
            if len(f) >= 7 and f[6] == "V":
                reject(loc, "GLL status V: no valid position")
                continue
        else:
            reject(loc, f"{tag} with too few fields")
            continue
        if pos.get("tod") is None or pos.get("lat") is None or pos.get("lon") is None:
            reject(loc, f"{tag} without a usable time or position")
            continue
        if held is not None and held["tod"] == pos["tod"] and kind not in held["types"]:
            # same epoch: merge into one fix
            n_records -= 1
            held["lines"].append(loc.removeprefix("line "))
            held["types"].add(kind)
            d_lat, d_lon = abs(held["lat"] - pos["lat"]), abs(held["lon"] - pos["lon"])
            if d_lat > 0.01 or d_lon > 0.015:
                held["inconsistent"] = True
                if kind in ("GGA", "GNS") and held["type"] not in ("GGA", "GNS"):
                    # GGA/GNS are the fix-data sentences: their position is kept
                    held["other_position"] = [held["lat"], held["lon"], held["type"]]
                    held["lat"], held["lon"], held["type"] = pos["lat"], pos["lon"], kind
                else:
                    held["other_position"] = [pos["lat"], pos["lon"], kind]
            for k in ("alt", "sats", "hdop", "quality", "speed", "course"):
                if held.get(k) is None and pos.get(k) is not None:
                    held[k] = pos[k]
            if held["date"] is None and date_ctx is not None:
                held["date"] = date_ctx
            continue
        flush()
        if kind != "RMC":
            advance(pos["tod"])
        pos["date"] = date_ctx
        pos["lines"] = [loc]
        pos["types"] = {kind}
        pos["seq"] = seq
        held = pos
    flush()
    for h in undated:
        back_date(h)
    fixes.sort(key=lambda r: int(r.pop("_seq")))
    rejects.sort(key=lambda r: r[0])
    basis = ("NMEA 0183 times are UTC; dates from RMC (two-digit years 80-99 = 19xx, 00-79 = 20xx) "
             "or ZDA, carried forward with midnight rollover")
    if given_date is not None:
        basis += f"; first date stated by the user: {given_date.isoformat()}"
    if any(h.get("date_from") for h in undated):
        basis += "; epochs before the first RMC/ZDA dated from it (extra.date_from)"
    return ctx.finish(records_read=n_records, time_basis=basis,
                      fixes=pd.DataFrame(fixes) if fixes else None,
                      rejects=[(loc, why) for _, loc, why in rejects])
