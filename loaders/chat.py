"""Chat exports: WhatsApp ``.txt`` exports and generic message CSVs; shared locations.

What is a record
----------------
One **message** is one record: its header line (date, time, sender) plus the continuation
lines that follow it (multi-line messages). Its locator is ``line:N``, the 1-based line of
the header. Every message becomes one ``events`` row of ``kind="message"`` (time, verbatim
text, sender in ``extra``), so the chronology can show it and the count rule holds
(*messages read = messages kept + messages rejected*). A message that contains map links
or ``geo:`` URIs (WhatsApp's ``location: https://maps.google.com/?q=lat,lon``, pasted
Google/Apple/OpenStreetMap links, Plus Codes are not searched in free text) also becomes
one ``places`` row per readable link, ``kind="shared"``, with the message time, the sender
(``extra.sender``), the link (``extra.link``) and ``place_id = <source>:line:N:<k>``. A link
that cannot be read offline (a short ``maps.app.goo.gl`` link, a search by name) is kept in
the event's ``extra.unresolved`` with the reason; the message is not lost. Text before the
first message header is rejected line by line (``line:N``), as are messages whose date
does not exist (31/02) or whose local time falls in a DST gap or fold.

Time
----
WhatsApp writes the phone's local time without an offset, in the phone's locale:
``24/10/2025, 21:14 - Name: text`` (Android), ``[24/10/2025, 21:14:05] Name: text`` (iOS),
``10/24/25, 9:14 PM - ...`` (US), ``24.10.25, 21:14 - ...``, ``2025-10-24, 21:14 - ...``.

* A zone is required (``tz=``, e.g. ``Europe/Brussels``): without one the file is refused
  with :class:`~routetrace.errors.AmbiguousTime`.
* Day/month order: year-first dates are read as Y-M-D. Otherwise the order is decided
  from the file: a first field above 12 somewhere means D/M/Y, a second field above 12
  means M/D/Y (both: the file is refused as inconsistent). When every date has both fields
  ≤ 12 the order cannot be decided and the file is refused unless
  ``options={"date_order": "DMY"}`` (or ``"MDY"``; CLI ``--date-order``). The decision and
  its evidence (the first line that decided it) are written in ``sources.time_basis``.
* Two-digit years are 20YY. Minute-precision messages get ``t_precision="minute"`` and a
  place window [t, t + 1 min); messages with seconds are instants (``"second"``).

The generic message CSV (``messages-csv``) has a header with a time column (``time``,
``timestamp``, ``datetime``, ``date``, ``sent``), a sender column (``sender``, ``from``,
``author``) and a text column (``text``, ``message``, ``body``), optionally ``lat``/``lon``
(``latitude``/``longitude``). Times are ISO 8601; without an offset they need ``tz=``.
Record = data row, locator ``line:N``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import timebase
from ..errors import AmbiguousTime, CorruptSource, ParameterError
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register
from .geo_links import GeoLinkError, find_links, parse_place

__all__ = ["load_messages_csv", "load_whatsapp", "sniff_messages_csv", "sniff_whatsapp"]

MAX_BYTES = 200 * 1024 * 1024
_DIR_MARKS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_DATE = r"(\d{1,4})[./-](\d{1,2})[./-](\d{2,4})"
_TIME = r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(?:\s*([AaPp])\.?\s?[Mm]\.?)?"
_ANDROID = re.compile(rf"^{_DATE},?\s+{_TIME}\s+[-–]\s+(.*)$", re.S)
_IOS = re.compile(rf"^\[{_DATE},?\s+{_TIME}\]\s+(.*)$", re.S)
_ORDERS = ("DMY", "MDY", "YMD")


def _clean(line: str) -> str:
    return _DIR_MARKS.sub("", line).replace("\u202f", " ").replace("\u00a0", " ")


def _header(line: str) -> re.Match[str] | None:
    s = _clean(line)
    return _IOS.match(s) or _ANDROID.match(s)


def sniff_whatsapp(path: Path, head: bytes) -> bool:
    """The first non-empty line is a WhatsApp message header (``date, time - `` or ``[date, time]``).

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB, UTF-8).

    Returns
    -------
    bool
        Whether the export starts with an Android or iOS message header.

    Example
    -------
    >>> sniff_whatsapp(Path("chat.txt"), b"24/10/2025, 21:14 - Ann: on my way\\n")
    True
    >>> sniff_whatsapp(Path("chat.txt"), b"[24/10/2025, 21:14:05] Ann: on my way\\n")
    True
    >>> sniff_whatsapp(Path("notes.txt"), b"Shopping list\\n")
    False
    """
    text = head.decode("utf-8-sig", errors="replace")
    for line in text.splitlines()[:5]:
        if line.strip():
            return _header(line) is not None
    return False


@dataclass
class _Msg:
    line: int
    a: int
    b: int
    c: int
    a_len: int
    hh: int
    mm: int
    ss: int | None
    ampm: str | None
    rest: str


def _decide_order(msgs: list[_Msg], option: str | None, ctx: LoadContext) -> tuple[str, str]:
    """Return (order, how it was decided) or raise."""
    if option is not None:
        opt = str(option).upper()
        if opt not in _ORDERS:
            raise ParameterError(f"date_order {option!r}: use DMY, MDY or YMD")
    if msgs and all(m.a_len == 4 for m in msgs):
        if option is not None and str(option).upper() != "YMD":
            raise ParameterError(f"date_order {option!r} given but the dates are year-first",
                                 path=ctx.display_path)
        return "YMD", "year-first dates (Y-M-D)"
    first_big = next((m for m in msgs if m.a_len < 4 and m.a > 12), None)
    second_big = next((m for m in msgs if m.a_len < 4 and m.b > 12), None)
    if first_big and second_big:
        raise ctx.error(CorruptSource, f"dates are inconsistent: line {first_big.line} has a "
                        f"first field above 12 (day first) and line {second_big.line} a second "
                        "field above 12 (month first)")
    if option is not None:
        opt = str(option).upper()
        clash = first_big if opt == "MDY" else second_big if opt == "DMY" else None
        if clash is not None:
            raise ParameterError(f"date_order {opt} contradicts line {clash.line} "
                                 f"({clash.a}/{clash.b}/{clash.c})", path=ctx.display_path)
        return opt, f"date order {opt} stated by the user (date_order option)"
    if first_big:
        return "DMY", (f"day/month order decided from the file: line {first_big.line} has "
                       f"{first_big.a} in the first field (> 12, so day first: D/M/Y)")
    if second_big:
        return "MDY", (f"day/month order decided from the file: line {second_big.line} has "
                       f"{second_big.b} in the second field (> 12, so month first: M/D/Y)")
    raise ctx.error(AmbiguousTime, "every date has day and month <= 12, so the day/month order "
                    "cannot be decided from the file: pass --date-order DMY or MDY "
                    "(options={'date_order': 'DMY'}) as the phone's locale writes dates")


def _split_sender(rest: str) -> tuple[str | None, str]:
    head, sep, body = rest.partition(": ")
    if sep and 0 < len(head) <= 100 and "\n" not in head:
        return head, body
    return None, rest  # a system message (no sender)


def _shared(text: str, rec: str, t: pd.Timestamp, prec: str, sender: str | None,
            subject: str | None, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, str]],
                                                       tuple[float, float] | None]:
    places: list[dict[str, Any]] = []
    unresolved: list[dict[str, str]] = []
    first: tuple[float, float] | None = None
    t_end = t + pd.Timedelta(minutes=1) if prec == "minute" else t
    for k, link in enumerate(find_links(text)):
        try:
            g = parse_place(link)
        except GeoLinkError as exc:
            unresolved.append({"link": link, "reason": str(exc)})
            continue
        first = first or (g.lat, g.lon)
        places.append({
            "place_id": f"{prefix}:{rec}:{k}", "record": rec, "subject_id": subject,
            "kind": "shared", "text": text, "lat": g.lat, "lon": g.lon, "radius_m": g.radius_m,
            "t_start": t, "t_end": t_end, "t_precision": prec,
            "extra": compact_json({"sender": sender, "link": link, "place_form": g.form,
                                   "zoom": g.zoom, "radius_basis": g.radius_basis}),
        })
    return places, unresolved, first


def _read(path: Path, ctx: LoadContext) -> str:
    if path.stat().st_size > MAX_BYTES:
        raise ctx.error(CorruptSource, f"larger than {MAX_BYTES // 2**20} MiB")
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "utf-16"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ctx.error(CorruptSource, "not UTF-8/UTF-16 text")


def _tz(ctx: LoadContext, what: str) -> str:
    if ctx.tz is None:
        raise ctx.error(AmbiguousTime, f"{what} times are the phone's local time without a UTC "
                        "offset: pass --tz with the phone's zone (e.g. Europe/Brussels)")
    timebase.zone(ctx.tz)
    return ctx.tz


@register(LoaderSpec(
    name="whatsapp-txt",
    description="WhatsApp chat export (.txt, Android and iOS): messages and shared locations",
    sniff=sniff_whatsapp,
    produces=("events", "places"),
    options=("date_order",),
))
def load_whatsapp(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a WhatsApp chat export. Options: ``date_order`` (``DMY``/``MDY``/``YMD``).

    One message (header line and its continuation lines) is one record, ``line:N``: an
    event ``kind="message"``, plus a place ``kind="shared"`` per readable map link in it.
    Text before the first header and messages whose local time does not exist are
    rejects with the reason.

    Parameters
    ----------
    path
        The ``.txt`` export (only read).
    ctx
        The load context built by :func:`routetrace.loaders.load`; ``tz`` (the phone's
        zone) is required, else :class:`~routetrace.errors.AmbiguousTime`;
        ``options["date_order"]`` settles a file whose day/month order cannot be decided.

    Returns
    -------
    LoadResult
        ``events`` (messages), ``places`` (shared locations) and ``rejects``; messages
        read = messages kept + messages rejected.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> chat = ("24/10/2025, 21:14 - Ann: on my way\\n"
    ...         "24/10/2025, 21:20 - Ann: location: https://maps.google.com/?q=50.86,4.36\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "chat.txt"
    ...     _ = p.write_text(chat)
    ...     res = load(p, tz="Europe/Brussels")
    >>> res.events[["t_utc", "kind", "record"]]
                          t_utc     kind  record
    0 2025-10-24 19:14:00+00:00  message  line:1
    1 2025-10-24 19:20:00+00:00  message  line:2
    >>> res.places[["lat", "lon", "kind", "record"]]
         lat   lon    kind  record
    0  50.86  4.36  shared  line:2
    """
    lines = _read(path, ctx).splitlines()
    msgs: list[_Msg] = []
    rejects: list[tuple[str, str]] = []
    for i, line in enumerate(lines, start=1):
        m = _header(line)
        if m is None:
            if msgs:
                msgs[-1].rest += "\n" + line
            elif line.strip():
                rejects.append((f"line:{i}", "text before the first message header"))
            continue
        g = m.groups()
        msgs.append(_Msg(line=i, a=int(g[0]), b=int(g[1]), c=int(g[2]), a_len=len(g[0]),
                         hh=int(g[3]), mm=int(g[4]), ss=int(g[5]) if g[5] else None,
                         ampm=g[6].upper() if g[6] else None, rest=g[7]))
    n_read = len(msgs) + len(rejects)
    if not msgs:
        raise ctx.error(CorruptSource, "no WhatsApp message header found")
    tz = _tz(ctx, "WhatsApp")
    order, how = _decide_order(msgs, ctx.options.get("date_order"), ctx)

    # assemble local times (vectorised parse of the composed ISO strings)
    n = len(msgs)
    y = np.empty(n, dtype=int)
    mo = np.empty(n, dtype=int)
    d = np.empty(n, dtype=int)
    for j, msg in enumerate(msgs):
        if order == "YMD":
            y[j], mo[j], d[j] = msg.a, msg.b, msg.c
        elif order == "DMY":
            d[j], mo[j], y[j] = msg.a, msg.b, msg.c
        else:
            mo[j], d[j], y[j] = msg.a, msg.b, msg.c
    y = np.where(y < 100, 2000 + y, y)
    implausible = (y < 1980) | (y >= 2100)
    y = np.where(implausible, 2000, y)  # placeholder; those messages are rejected below
    hh = np.array([x.hh for x in msgs])
    pm = np.array([x.ampm == "P" for x in msgs])
    am = np.array([x.ampm == "A" for x in msgs])
    hh = np.where(pm & (hh < 12), hh + 12, np.where(am & (hh == 12), 0, hh))
    ss = np.array([x.ss if x.ss is not None else 0 for x in msgs])
    iso = pd.Series([f"{y[j]:04d}-{mo[j]:02d}-{d[j]:02d}T{hh[j]:02d}:{msgs[j].mm:02d}:{ss[j]:02d}"
                     for j in range(n)])
    naive = pd.to_datetime(iso, format="%Y-%m-%dT%H:%M:%S", errors="coerce")
    bad_date = naive.isna().to_numpy() | implausible
    local = pd.Series(pd.NaT, index=iso.index, dtype="datetime64[ns, UTC]")
    if (~bad_date).any():
        local[~bad_date] = timebase.localize(naive[~bad_date], tz=tz)
    seconds = any(x.ss is not None for x in msgs)
    prefix = ctx.source_id[:16]
    subject = ctx.subject_id
    events: list[dict[str, Any]] = []
    places: list[dict[str, Any]] = []
    for j, msg in enumerate(msgs):
        rec = f"line:{msg.line}"
        if implausible[j]:
            rejects.append((rec, f"year of {msg.a}/{msg.b}/{msg.c} is implausible (outside "
                                 "1980-2100)"))
            continue
        if bad_date[j]:
            rejects.append((rec, f"date/time {iso[j]} does not exist (read as {order})"))
            continue
        t = local.iloc[j]
        if pd.isna(t):
            rejects.append((rec, f"local time {iso[j]} does not exist or is ambiguous in {tz} "
                                 "(DST change); not guessed"))
            continue
        prec = "second" if msg.ss is not None else "minute"
        sender, text = _split_sender(msg.rest)
        pl, unresolved, pos = _shared(text, rec, t, prec, sender, subject, prefix)
        places.extend(pl)
        events.append({
            "record": rec, "t_utc": t, "kind": "message", "text": text,
            "lat": pos[0] if pos else np.nan, "lon": pos[1] if pos else np.nan,
            "extra": compact_json({"sender": sender, "system": sender is None or None,
                                   "t_precision": prec, "n_locations": len(pl) or None,
                                   "unresolved": unresolved or None}),
        })
    basis = (f"WhatsApp local times read in {tz} (user-stated --tz); {how}; "
             f"{'seconds' if seconds else 'minutes'} precision; two-digit years are 20YY")
    ev = pd.DataFrame(events) if events else None
    if ev is not None:
        ev["t_utc"] = ev["t_utc"].astype("datetime64[ns, UTC]")
    pdf = pd.DataFrame(places) if places else None
    if pdf is not None:
        for c in ("t_start", "t_end"):
            pdf[c] = pdf[c].astype("datetime64[ns, UTC]")
    return ctx.finish(records_read=n_read, time_basis=basis, events=ev, places=pdf,
                      rejects=rejects)


# ----------------------------------------------------------------------------- CSV

_TIME_COLS = ("time", "timestamp", "datetime", "date", "sent", "t_utc")
_SENDER_COLS = ("sender", "from", "author")
_TEXT_COLS = ("text", "message", "body")
_LAT_COLS = ("lat", "latitude")
_LON_COLS = ("lon", "lng", "longitude")


def _pick(cols: list[str], names: tuple[str, ...]) -> str | None:
    low = {c.strip().lower(): c for c in cols}
    return next((low[n] for n in names if n in low), None)


def sniff_messages_csv(path: Path, head: bytes) -> bool:
    """A CSV header with a time, a sender and a text column (and no ``statement_id``).

    Parameters
    ----------
    path
        The file (not read: ``head`` is enough).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether the header names a time, a sender and a text column.

    Example
    -------
    >>> sniff_messages_csv(Path("m.csv"), b"time,sender,text\\n2025-10-24T21:14:00Z,Ann,hi\\n")
    True
    >>> sniff_messages_csv(Path("m.csv"), b"time,lat,lon\\n")
    False
    """
    text = head.decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text else ""
    delim = ";" if first.count(";") > first.count(",") else ","
    cols = [c.strip().strip('"') for c in first.split(delim)]
    if "statement_id" in [c.lower() for c in cols]:
        return False
    return all(_pick(cols, names) for names in (_TIME_COLS, _SENDER_COLS, _TEXT_COLS))


def _csv_time(text: str, tz: str | None) -> tuple[pd.Timestamp | None, bool]:
    """(UTC time or None, whether the text was a naive local time)."""
    s = text.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", s):
        return None, False
    try:
        ts = pd.Timestamp(s)
    except (ValueError, OverflowError):
        return None, False
    if not 1980 <= ts.year < 2100:
        return None, False
    if ts.tzinfo is not None:
        return ts.tz_convert("UTC").as_unit("ns"), False
    if tz is None:
        return None, True
    loc = timebase.localize(pd.Series([ts.as_unit("ns")]), tz=tz).iloc[0]
    return (None if pd.isna(loc) else pd.Timestamp(loc)), True


@register(LoaderSpec(
    name="messages-csv",
    description="generic message CSV (time, sender, text[, lat, lon]): messages and shared locations",
    sniff=sniff_messages_csv,
    produces=("events", "places"),
    options=("date_order",),
))
def load_messages_csv(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a message CSV. Times ISO 8601; without an offset they need ``tz=``.

    One data row is one record, ``line:N``: an event ``kind="message"``, plus a place
    ``kind="shared"`` when it has ``lat``/``lon`` or map links; a row whose time cannot
    be read is a reject with the reason.

    Parameters
    ----------
    path
        The CSV file (only read).
    ctx
        The load context (source identity, subject, ``tz`` for times without offset)
        built by :func:`routetrace.loaders.load`.

    Returns
    -------
    LoadResult
        ``events``, ``places`` and ``rejects``; rows read = rows kept + rows rejected.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> rows = ("time,sender,text,lat,lon\\n2025-10-24T21:14:00+02:00,Ann,here,50.86,4.36\\n"
    ...         "2025-10-24T21:99:00+02:00,Bob,ok,,\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "messages.csv"
    ...     _ = p.write_text(rows)
    ...     res = load(p)
    >>> res.events[["t_utc", "text", "record"]]
                          t_utc  text  record
    0 2025-10-24 19:14:00+00:00  here  line:2
    >>> res.places[["lat", "lon", "record"]]
         lat   lon  record
    0  50.86  4.36  line:2
    >>> res.records_read, res.rejects["record"].tolist()
    (2, ['line:3'])
    """
    text = _read(path, ctx)
    first = text.splitlines()[0] if text else ""
    delim = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delim)
    cols = list(reader.fieldnames or [])
    tcol, scol, xcol = (_pick(cols, n) for n in (_TIME_COLS, _SENDER_COLS, _TEXT_COLS))
    if not (tcol and scol and xcol):
        raise ctx.error(CorruptSource, "needs a time, a sender and a text column")
    latc, lonc = _pick(cols, _LAT_COLS), _pick(cols, _LON_COLS)
    rows: list[tuple[str, dict[str, str]]] = []
    start = reader.line_num + 1
    for raw in reader:
        rows.append((f"line:{start}", {k: (v or "") for k, v in raw.items() if k is not None}))
        start = reader.line_num + 1
    tz = ctx.tz
    parsed: list[pd.Timestamp | None] = []
    naive_seen = False
    for _, r in rows:  # one parse per message (chat exports are small)
        t, naive = _csv_time(r[tcol], tz)
        naive_seen |= naive
        parsed.append(t)
    if naive_seen and tz is None:
        _tz(ctx, "message CSV")
    prefix = ctx.source_id[:16]
    events: list[dict[str, Any]] = []
    places: list[dict[str, Any]] = []
    rejects: list[tuple[str, str]] = []
    for j, (rec, r) in enumerate(rows):
        t = parsed[j]
        if t is None:
            rejects.append((rec, f"time {r[tcol][:40]!r} is not ISO 8601, implausible, or a "
                                 "local time in a DST gap/fold"))
            continue
        body, sender = r[xcol], r[scol] or None
        prec = "second"
        pl, unresolved, pos = _shared(body, rec, t, prec, sender, ctx.subject_id, prefix)
        if latc and lonc and r[latc].strip() and r[lonc].strip():
            try:
                g = parse_place(f"{r[latc].strip()},{r[lonc].strip()}")
            except GeoLinkError as exc:
                rejects.append((rec, f"lat/lon: {exc}"))
                continue
            pl.insert(0, {"place_id": f"{prefix}:{rec}:pin", "record": rec,
                          "subject_id": ctx.subject_id, "kind": "shared", "text": body,
                          "lat": g.lat, "lon": g.lon, "t_start": t, "t_end": t,
                          "t_precision": prec,
                          "extra": compact_json({"sender": sender, "place_form": "lat/lon"})})
            pos = (g.lat, g.lon)
        places.extend(pl)
        events.append({"record": rec, "t_utc": t, "kind": "message", "text": body,
                       "lat": pos[0] if pos else np.nan, "lon": pos[1] if pos else np.nan,
                       "extra": compact_json({"sender": sender, "n_locations": len(pl) or None,
                                              "unresolved": unresolved or None})})
    ev = pd.DataFrame(events) if events else None
    if ev is not None:
        ev["t_utc"] = ev["t_utc"].astype("datetime64[ns, UTC]")
    pdf = pd.DataFrame(places) if places else None
    if pdf is not None:
        for c in ("t_start", "t_end"):
            pdf[c] = pdf[c].astype("datetime64[ns, UTC]")
    basis = "message CSV: ISO 8601 times with offset converted to UTC"
    if tz:
        basis += f"; times without offset read in {tz} (user-stated --tz)"
    return ctx.finish(records_read=len(rows), time_basis=basis, events=ev, places=pdf,
                      rejects=rejects)
