"""Fleet-portal report exports (CSV and XLSX): positions, stops, trips, events.

Investigators download these from the tracker company's web portal. One loader, format
``portal``, reads:

* **Traccar presets**, recognised by their header. Column names are Traccar's own: the
  REST/report fields of ``org.traccar.reports`` (``ReportStops``: ``deviceName, startTime,
  endTime, duration, address, lat, lon, engineHours, spentFuel, startOdometer``; trips add
  ``startAddress, endAddress, startLat, startLon, endLat, endLon, distance, averageSpeed,
  maxSpeed, driverName``; positions ``fixTime, deviceTime, serverTime, latitude, longitude,
  altitude, speed, course, address, valid``; events ``type, eventTime``) and the English labels
  traccar-web puts on its report tables and exports (``web/src/reports/*ReportPage.jsx``
  ``columnsArray`` with ``l10n/en.json``: ``reportStartTime`` "Start Time",
  ``reportEndTime`` "End Time", ``reportDuration`` "Duration", ``reportStartOdometer``
  "Odometer Start", ``reportEndOdometer`` "Odometer End", ``reportStartAddress`` "Start
  Address", ``reportEndAddress`` "End Address", ``sharedDistance`` "Distance",
  ``reportAverageSpeed`` "Average Speed", ``reportMaximumSpeed`` "Max Speed",
  ``reportEngineHours`` "Engine Hours", ``reportSpentFuel`` "Spent Fuel", ``sharedDriver``
  "Driver", ``positionFixTime`` "Fix Time", ``sharedType`` "Type", ``sharedDevice`` "Device",
  ``positionOdometer`` "Odometer", ``positionAddress`` "Address"). traccar-web's stops
  page (``StopReportPage.jsx``) selects by default only Start Time, End Time, Odometer and
  Address; its spreadsheet export (``common/util/exportExcel.js``) writes one sheet per
  device, **named after the device**, a title row ("Stops"), then the header row, and the
  values as the page prints them: times in the browser's locale to the minute
  (``03/24/2024, 11:10 PM``, ``24/03/2024, 23:10``), durations ``2 h 30 m``
  (``formatNumericHours``), distances ``12345.60 km``, and, without a geocoder, the
  address as coordinates in the user's format (``formatAddress``: ``51.17600°, 3.07300°``,
  or degrees-minutes(-seconds) with N/S/E/W), all of which are read here.
  Which report a file is comes from :func:`portal_kind` (the shared helper the generic CSV
  sniffer defers to).
* **Any other portal** through a mapping file, ``options={"mapping": "acme.yaml"}``
  (with ``format="portal"``)::

      kind: stops              # positions | stops | trips | events
      sheet: Stops             # XLSX: sheet name (default: the first with the header)
      delimiter: ";"           # CSV: default sniffed
      decimal: ","             # default sniffed
      columns:                 # role -> column name as written in the export
        start: Begin           # stops/trips: start and end times
        end: Einde
        duration: Duur         # stops: duration as '1:23:45', '2 h 5 min' or a number
        lat: Lat
        lon: Lon
        address: Adres
        subject: Kenteken      # vehicle plate / device name -> subject_id
        # positions: datetime (or date + time), lat, lon, speed, course, altitude, accuracy
        # events: datetime, type, text, lat, lon
      time_format: "%d-%m-%Y %H:%M:%S"   # strptime; default ISO-8601 / sniffed
      tz: Europe/Brussels      # the portal's documented zone; 'utc'; omit -> --tz needed
      speed_unit: km/h         # km/h | knots | mph | m/s
      duration_unit: s         # unit of bare numbers in the duration column
      events:                  # portal text -> routetrace event kind
        Contact aan: ignition_on
        Contact uit: ignition_off

Time. Portals print times in the account's local zone without an offset. Such times
need ``tz`` (``--tz``), the mapping's ``tz``, or ``options={"time_basis": "utc"}`` (the
user states they are UTC); without any, an export whose times are
all local raises :class:`~routetrace.errors.AmbiguousTime` naming the file and ``--tz``
(in a mixed export, values that carry an offset or ``Z`` load as UTC and the local ones
are rejected with the reason "... pass --tz"). Traccar
has no documented fixed zone for exports (it is the user's preference), so its presets
need ``--tz``.

Units. Speeds are converted to m/s: from the header (``Speed (km/h)``), from the values
(``45 km/h``, ``20 kn``), from ``speed_unit``, else the Traccar default, **knots** (Traccar
stores and serves speed in knots).

Output.
* positions -> ``fixes`` (``fix_kind="gps"``);
* stops -> ``places`` of ``kind="portal_stop"`` with the ``portal_stop`` flag, ``t_start``,
  ``t_end``, the address, and in ``extra`` the portal's duration (``duration_s`` and the
  text as printed), odometer, engine hours, fuel and the export's ``device`` name: kept as the portal computed them, so
  the chronology can compare them with routetrace's own stops. A stop without a position
  (no lat/lon and an address that is not ``lat, lon``) is a reject;
* trips -> two ``events`` per trip, ``trip_start`` and ``trip_end``, at the trip's start
  and end (positions when given; distance, speeds, duration in ``extra``);
* events -> ``events``: Traccar types ``ignitionOn``/``Ignition on`` -> ``ignition_on``,
  ``ignitionOff`` -> ``ignition_off``, ``deviceStopped`` -> ``device_stopped``,
  ``deviceMoving`` -> ``device_moving``, ``deviceOverspeed`` -> ``overspeed``,
  ``deviceFuelDrop`` -> ``fuel_drop``, ``deviceFuelIncrease`` -> ``refuel``,
  ``geofenceEnter``/``Exit`` -> ``geofence_enter``/``geofence_exit``, ``alarm`` ->
  ``alarm`` (alarm text kept), others in snake case.

Subject: the user's ``subject_id``; else the export's device/vehicle column per row
(e.g. ``lorry 1-ABC-123``); else a ``Device:`` preamble line; else, in a spreadsheet, the
sheet's name when it is not a generic one (traccar-web's ``exportExcel`` writes one sheet
per device, named after the device, with a title row above the header); else the file
name. The export's own device name (e.g. the plate) stays in ``extra`` as ``device`` on
stops, trips and events, also when the case names the subject (``--subject lorry-1``).
Records: ``row N`` (CSV data row) or ``<sheet>!row N`` (spreadsheet row number).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CorruptSource, ParameterError
from ..extras import require
from .base import SNIFF_BYTES, LoadContext, LoaderSpec, LoadResult, compact_json, register
from .csv import (
    DEFAULT_CHUNK,
    Dialect,
    Table,
    _numbers,
    chunk_to_fixes,
    extract,
    iter_chunks,
    match_roles,
    norm,
    parse_times,
    raise_if_all_local,
    sniff_dialect,
)

__all__ = ["EVENT_KINDS", "ROLES", "load_portal", "portal_kind", "sniff_portal"]

KINDS = ("positions", "stops", "trips", "events")

#: role -> normalised column names (Traccar API fields and traccar-web English labels).
ROLES: dict[str, tuple[str, ...]] = {
    "subject": ("devicename", "device", "vehicle", "plate", "name", "voertuig", "kenteken",
                "fahrzeug", "kennzeichen", "vehicule"),
    "start": ("starttime", "start", "startdate", "begin", "from"),
    "end": ("endtime", "end", "enddate", "einde", "to"),
    "duration": ("duration", "duur", "dauer", "duree"),
    "address": ("address", "adres", "adresse"),
    "start_address": ("startaddress",),
    "end_address": ("endaddress",),
    "lat": ("latitude", "lat"),
    "lon": ("longitude", "lon", "lng"),
    "start_lat": ("startlat", "startlatitude"),
    "start_lon": ("startlon", "startlongitude"),
    "end_lat": ("endlat", "endlatitude"),
    "end_lon": ("endlon", "endlongitude"),
    "distance": ("distance",),
    "odometer": ("odometer", "startodometer", "odometerstart"),
    "end_odometer": ("endodometer", "odometerend"),
    "average_speed": ("averagespeed",),
    "max_speed": ("maxspeed", "maximumspeed"),
    "engine_hours": ("enginehours",),
    "spent_fuel": ("spentfuel",),
    "driver": ("driver", "drivername"),
    "datetime": ("fixtime", "eventtime", "devicetime", "servertime", "time"),
    "type": ("type", "eventtype"),
    "text": ("alarm", "geofence", "data", "attributes", "maintenance"),
    "speed": ("speed",),
    "course": ("course",),
    "altitude": ("altitude",),
    "accuracy": ("accuracy",),
    "valid": ("valid",),
}

#: normalised portal event text -> routetrace event kind (Traccar ``Event.TYPE_*`` and labels).
EVENT_KINDS: dict[str, str] = {
    "ignitionon": "ignition_on", "ignitionoff": "ignition_off",
    "devicestopped": "device_stopped", "devicemoving": "device_moving",
    "deviceoverspeed": "overspeed", "overspeed": "overspeed", "speedlimitexceeded": "overspeed",
    "devicefueldrop": "fuel_drop", "fueldrop": "fuel_drop",
    "devicefuelincrease": "refuel", "fuelincrease": "refuel",
    "geofenceenter": "geofence_enter", "geofenceentered": "geofence_enter",
    "geofenceexit": "geofence_exit", "geofenceexited": "geofence_exit",
    "alarm": "alarm", "alarms": "alarm", "textmessage": "message",
    "deviceonline": "device_online", "deviceoffline": "device_offline",
    "deviceunknown": "device_unknown", "deviceinactive": "device_inactive",
    "maintenance": "maintenance", "driverchanged": "driver_changed",
    "commandresult": "command_result", "media": "media",
}

_SPEED_UNITS = {"kmh": "km/h", "km/h": "km/h", "kph": "km/h", "knots": "kt", "knot": "kt",
                "kn": "kt", "kt": "kt", "mph": "mph", "m/s": "m/s", "mps": "m/s"}


def _keys(header: Sequence[str]) -> set[str]:
    return {norm(h) for h in header}


def portal_kind(header: Sequence[str]) -> str | None:
    """Which Traccar report a header is (``positions``/``stops``/``trips``/``events``), or None.

    The shared helper of the sniffers: the generic ``csv`` loader yields to ``portal``
    whenever this returns a kind, so exactly one of them claims a file.

    Parameters
    ----------
    header
        The column names as written (Traccar REST field names or traccar-web's English
        labels; letter case and spacing do not matter).

    Returns
    -------
    str or None
        ``"positions"``, ``"stops"``, ``"trips"`` or ``"events"``; ``None`` when the
        header is no Traccar report.

    Example
    -------
    >>> portal_kind(["Device", "Start Time", "End Time", "Duration", "Address"])
    'stops'
    >>> portal_kind(["deviceName", "fixTime", "latitude", "longitude", "speed"])
    'positions'
    >>> portal_kind(["time", "lat", "lon"]) is None
    True
    """
    k = _keys(header)
    if "statementid" in k:  # witness statements (format statements-csv)
        return None
    if {"starttime", "endtime"} <= k:
        trip_marks = {"startaddress", "endaddress", "distance", "startodometer",
                      "odometerstart", "startlat", "endlat", "averagespeed", "maxspeed"}
        if k & trip_marks:
            return "trips"
        # traccar-web's stops columns; its default selection is Start Time, End Time,
        # Odometer, Address (no Duration)
        if k & {"duration", "odometer", "address", "enginehours", "spentfuel", "latitude",
                "lat"}:
            return "stops"
        return None
    has_time = bool(k & {"fixtime", "eventtime", "devicetime", "servertime"})
    if has_time and "type" in k:
        return "events"
    if has_time and k & {"latitude", "lat"} and k & {"longitude", "lon", "lng"}:
        return "positions"
    return None


def _is_xlsx(head: bytes) -> bool:
    return head[:4] == b"PK\x03\x04" and b"xl/" in head


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, dt.timedelta):
        return f"{int(v.total_seconds())}s"
    if isinstance(v, dt.time):
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float):
        return repr(v)
    return str(v).strip()


def _xlsx_sheets(path: Path, *, max_rows: int | None = None) -> Iterator[tuple[str, Iterator[tuple[int, list[str]]]]]:
    openpyxl = require("openpyxl", extra="xlsx", purpose="XLSX portal exports")

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        for ws in wb.worksheets:
            def rows(ws: Any = ws) -> Iterator[tuple[int, list[str]]]:
                for i, row in enumerate(ws.iter_rows(values_only=True), start=1):
                    if max_rows is not None and i > max_rows:
                        return
                    yield i, [_cell(v) for v in row]
            yield ws.title, rows()
    finally:
        wb.close()


def sniff_portal(path: Path, head: bytes) -> bool:
    """A CSV or XLSX whose header (within the first rows) is a Traccar report.

    Parameters
    ----------
    path
        The file (an XLSX is opened to read its first rows).
    head
        Its first bytes (64 KiB).

    Returns
    -------
    bool
        Whether :func:`portal_kind` recognises the header.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "stops.csv"
    ...     _ = p.write_text("Device,Start Time,End Time,Duration,Address\\n"
    ...                      "lorry 1,2024-03-24 23:10:00,2024-03-25 01:40:00,2 h 30 min,E40\\n")
    ...     print(sniff_portal(p, p.read_bytes()))
    True
    """
    if _is_xlsx(head):
        try:
            for _name, rows in _xlsx_sheets(path, max_rows=30):
                for _i, cells in rows:
                    if portal_kind([c for c in cells if c]) is not None:
                        return True
        except Exception:
            return False
        return False
    if b"\x00" in head[:8] or head.lstrip()[:1] in (b"<", b"{", b"["):
        return False
    return sniff_dialect(head, accept=lambda h: portal_kind(h) is not None) is not None


# --------------------------------------------------------------------------- reading

def _load_mapping(ctx: LoadContext) -> dict[str, Any]:
    m = ctx.options.get("mapping")
    if m is None:
        return {}
    if isinstance(m, Mapping):
        return dict(m)
    import yaml

    p = Path(m)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f"cannot read the portal mapping file {p}: {exc}") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"portal mapping file {p} must be a YAML mapping")
    return data


_GENERIC_SHEET = re.compile(r"(?i)^(?:sheet|blad|tabelle|feuil|hoja|foglio)\s*\d*$|^(?:stops?|trips?|"
                            r"routes?|events?|summary|positions?|reports?|export|data)\b")


Part = tuple[list[str], str, Iterator[pd.DataFrame], "str | None", bool]


def _parts(path: Path, ctx: LoadContext, mp: Mapping[str, Any],
           accept: Any) -> Iterator[Part]:
    """The report tables of an export: (header, record prefix, chunk iterator, preamble or
    sheet device name, decimal comma). A CSV is one table; a workbook gives one per sheet
    with a recognised header (traccar-web writes a sheet per device), or only ``sheet``."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    chunk_rows = int(ctx.options.get("chunk_rows", DEFAULT_CHUNK))
    if _is_xlsx(head):
        openpyxl = require("openpyxl", extra="xlsx", purpose="XLSX portal exports")

        want = mp.get("sheet")
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        found = False
        try:
            for ws in wb.worksheets:
                if want is not None and ws.title != want:
                    continue
                rows = ((i, [_cell(v) for v in row])
                        for i, row in enumerate(ws.iter_rows(values_only=True), start=1))
                device: str | None = None
                header: list[str] | None = None
                for _i, cells in rows:
                    if accept([c for c in cells if c]):
                        while cells and cells[-1] == "":
                            cells.pop()
                        header = cells
                        break
                    if len(cells) >= 2 and norm(cells[0]) in ROLES["subject"] and cells[1]:
                        device = cells[1]
                if header is None:
                    continue
                if device is None and not _GENERIC_SHEET.match(ws.title.strip()):
                    device = ws.title.strip()  # traccar-web: one sheet per device, named after it
                found = True
                yield (header, f"{ws.title}!row ", _xlsx_gen(rows, header, chunk_rows),
                       device, mp.get("decimal") == ",")
        finally:
            wb.close()
        if not found:
            raise ctx.error(CorruptSource, "no sheet has a recognised portal header; pass "
                            "options={'mapping': FILE} describing the export")
        return
    d = sniff_dialect(head, delimiter=mp.get("delimiter"), accept=accept)
    if d is None:
        raise ctx.error(CorruptSource, "no recognised portal header in the first 64 KiB; pass "
                        "options={'mapping': FILE} describing the export")
    if mp.get("decimal") == ",":
        d.decimal_comma = True
    text = head.decode("utf-8-sig", errors="replace").replace("\x00", "").splitlines()
    device = None
    for line in text[:d.header_line]:
        parts = [x.strip() for x in re.split(r"[:;,\t|]", line, maxsplit=1)]
        if len(parts) == 2 and norm(parts[0]) in ROLES["subject"] and parts[1]:
            device = parts[1]
    yield d.header, "row ", iter_chunks(path, d, chunk_rows=chunk_rows), device, d.decimal_comma


def _xlsx_gen(rows: Iterator[tuple[int, list[str]]], header: list[str],
              chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The data rows after the header, chunked."""
    buf: list[list[str]] = []
    nums: list[int] = []
    n = len(header)
    for i, cells in rows:
        if not any(cells):
            continue
        buf.append((cells + [""] * n)[:n])
        nums.append(i)
        if len(buf) >= chunk_rows:
            yield _frame(buf, nums, header)
            buf, nums = [], []
    if buf:
        yield _frame(buf, nums, header)


def _frame(buf: list[list[str]], nums: list[int], header: list[str]) -> pd.DataFrame:
    cols = [h if h else f"__col{j}__" for j, h in enumerate(header)]
    df = pd.DataFrame(buf, columns=cols, dtype="string")
    df.columns = header
    df["__row__"] = np.asarray(nums)
    return df


def _speed_unit(mp: Mapping[str, Any], col: str | None) -> str:
    u = mp.get("speed_unit")
    if u is None and col:
        m = re.search(r"\(([^)]+)\)", col)
        u = m.group(1) if m else None
    if u is None:
        return "kt"  # Traccar's own unit
    key = str(u).strip().lower().replace(" ", "")
    if key not in _SPEED_UNITS:
        raise ParameterError(f"unknown speed unit {u!r}; use km/h, knots, mph or m/s")
    return _SPEED_UNITS[key]


def _num(s: Any, errors: str = "coerce") -> pd.Series:
    return pd.Series(pd.to_numeric(s, errors="coerce"), dtype="float64")


def _durations(s: pd.Series, unit: str) -> pd.Series:
    """Seconds from '1:23:45', '1 h 23 min', '2d 3h', '90s' or a bare number in ``unit``."""
    t = s.astype("string").str.strip().str.lower()
    out = pd.Series(np.nan, index=s.index, dtype="float64")
    hms = extract(t, r"^(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?$")
    v = _num(hms[0], errors="coerce") * 3600 + _num(hms[1], errors="coerce") * 60 \
        + _num(hms[2], errors="coerce").fillna(0)
    out = out.fillna(v)
    words = extract(t, r"^(?:(\d+)\s*d\w*)?\s*(?:(\d+)\s*h\w*)?\s*(?:(\d+)\s*m(?:in\w*)?)?\s*"
                          r"(?:(\d+(?:\.\d+)?)\s*s\w*)?$")
    anyw = words.notna().any(axis=1) & ~t.str.fullmatch(r"[\d.]+").fillna(False)
    w = sum((_num(words[i], errors="coerce").fillna(0) * f)
            for i, f in zip(range(4), (86400, 3600, 60, 1), strict=True))
    out = out.where(out.notna() | ~anyw, w)
    num = _num(t.where(t.str.fullmatch(r"\d+(?:\.\d+)?").fillna(False)), errors="coerce")
    fac = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}.get(unit)
    if fac is None:
        raise ParameterError(f"unknown duration_unit {unit!r}; use ms, s, min or h")
    return out.fillna(num * fac)


_DMS = r"(\d{1,3})°\s*(?:(\d{1,2}(?:\.\d+)?)'\s*)?(?:(\d{1,2}(?:\.\d+)?)\"\s*)?([NSEW])"


def _address_coordinates(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(lat, lon) from an address cell that is really a coordinate pair, else NA.

    traccar-web's ``formatAddress`` prints, without a geocoder, the position in the user's
    coordinate format: ``51.17600°, 3.07300°`` (dd, the default), ``51° 10.560' N, 3°
    4.380' E`` (ddm) or ``51° 10' 34" N, 3° 4' 23" E`` (dms); older exports and other
    portals print ``51.176, 3.073``.
    """
    t = s.astype("string").str.strip()
    m = extract(t, r"^(-?\d{1,2}(?:\.\d+)?)\s*°?\s*[,;]\s*(-?\d{1,3}(?:\.\d+)?)\s*°?$")
    lat = _num(m[0])
    lon = _num(m[1])
    d = extract(t, "^" + _DMS + r"\s*,\s*" + _DMS + "$")
    if d[0].notna().any():
        def deg(i: int) -> pd.Series:
            v = _num(d[i]) + _num(d[i + 1]).fillna(0) / 60 + _num(d[i + 2]).fillna(0) / 3600
            return v.where(~d[i + 3].isin(["S", "W"]), -v)

        lat = lat.fillna(deg(0))
        lon = lon.fillna(deg(4))
    return lat, lon


def _latlon(chunk: pd.DataFrame, cols: Mapping[str, str], lat_role: str, lon_role: str,
            addr_role: str, dec: bool) -> tuple[pd.Series, pd.Series]:
    idx = chunk.index
    lat = pd.Series(np.nan, index=idx, dtype="float64")
    lon = pd.Series(np.nan, index=idx, dtype="float64")
    if lat_role in cols and lon_role in cols:
        lat = _numbers(chunk[cols[lat_role]], dec)[0]
        lon = _numbers(chunk[cols[lon_role]], dec)[0]
    if addr_role in cols:  # Traccar prints coordinates when no geocoder is configured
        a, b = _address_coordinates(chunk[cols[addr_role]])
        lat = lat.fillna(a)
        lon = lon.fillna(b)
    bad = (lat.abs() > 90) | (lon.abs() > 180) | ((lat == 0) & (lon == 0))
    return lat.where(~bad), lon.where(~bad)


def _time(chunk: pd.DataFrame, col: str, ctx: LoadContext, tz: str | None, basis: str | None,
          fmt: str | None) -> tuple[pd.Series, pd.Series, str]:
    tr = parse_times(chunk, {"datetime": col}, tz=tz, time_basis=basis, time_format=fmt,
                     what=ctx.display_path)
    return tr.t_utc, tr.reason, tr.basis


def _extra_json(chunk: pd.DataFrame, cols: Mapping[str, str], roles: Sequence[str],
                more: Mapping[str, pd.Series]) -> list[str]:
    data: dict[str, Any] = {r: chunk[cols[r]].astype("string").tolist() for r in roles if r in cols}
    data.update({k: v.tolist() for k, v in more.items()})
    keys = list(data)
    out = []
    for vals in zip(*(data[k] for k in keys), strict=True) if keys else [() for _ in range(len(chunk))]:
        out.append(compact_json({k: (None if (v is pd.NA or v == "" or (isinstance(v, float) and v != v))
                                     else v) for k, v in zip(keys, vals, strict=True)}))
    return out


@dataclass
class _Plan:
    """What the mapping and options say about every part of one export."""

    mp: dict[str, Any]
    forced: str | None
    explicit: dict[str, str]
    tz: str | None
    basis_opt: str | None
    fmt: str | None
    user_events: dict[str, str]

    def event_kind(self, text: object) -> str:
        key = norm(text) if isinstance(text, str) else ""
        return self.user_events.get(key) or EVENT_KINDS.get(key) or re.sub(
            r"(?<=[a-z0-9])(?=[A-Z])", "_", str(text or "")).lower().strip().replace(" ", "_")

    def accept(self, header: list[str]) -> bool:
        if self.explicit:
            return all(c in header for c in self.explicit.values())
        return portal_kind(header) is not None


@dataclass
class _Acc:
    """The tables of one export, gathered part by part, chunk by chunk."""

    default_subject: str | None
    fixes: list[pd.DataFrame] = field(default_factory=list)
    events: list[pd.DataFrame] = field(default_factory=list)
    places: list[pd.DataFrame] = field(default_factory=list)
    rejects: list[pd.DataFrame] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)
    kinds_seen: list[str] = field(default_factory=list)
    units_seen: list[str] = field(default_factory=list)
    n: int = 0

    def reject(self, rec: pd.Series, reason: pd.Series, ok: pd.Series) -> None:
        self.rejects.append(pd.DataFrame({"record": rec[~ok], "reason": reason[~ok]}))


@dataclass
class _Chunk:
    """One chunk of one report with its columns resolved."""

    df: pd.DataFrame
    cols: dict[str, str]
    rec: pd.Series
    subj: pd.Series | None
    dev: pd.Series
    dec: bool
    header: list[str]
    prefix: str


def _plan(ctx: LoadContext) -> _Plan:
    mp = _load_mapping(ctx)
    for key in ("speed_unit", "duration_unit", "time_format", "sheet"):
        if key in ctx.options:
            mp[key] = ctx.options[key]
    forced = mp.get("kind")
    if forced is not None and forced not in KINDS:
        raise ParameterError(f"mapping kind {forced!r} must be one of {', '.join(KINDS)}")
    if mp.get("speed_unit") is not None:
        _speed_unit(mp, None)  # a bad unit is the user's error: say so before reading
    tz_rule = mp.get("tz")
    utc_stated = str(ctx.options.get("time_basis", "")).lower() == "utc"
    basis_opt = "utc" if str(tz_rule).lower() == "utc" or utc_stated else None
    return _Plan(mp=mp, forced=forced, explicit=dict(mp.get("columns") or {}),
                 tz=ctx.tz or (tz_rule if tz_rule and basis_opt is None else None),
                 basis_opt=basis_opt, fmt=mp.get("time_format"),
                 user_events={norm(k): str(v) for k, v in dict(mp.get("events") or {}).items()})


def _require(ctx: LoadContext, cols: Mapping[str, str], kind: str, needs: Sequence[str],
             what: str) -> None:
    for need in needs:
        if need not in cols:
            raise ctx.error(CorruptSource, f"{kind} export without a {need}{what}")


def _positions(c: _Chunk, plan: _Plan, acc: _Acc, ctx: LoadContext, speed_unit: str) -> None:
    _require(ctx, c.cols, "positions", ("datetime", "lat", "lon"), " column")
    pcols: dict[str, str] = {r: c.cols[r] for r in ("datetime", "lat", "lon", "speed", "course",
                                                    "altitude", "accuracy", "valid", "subject")
                             if r in c.cols}
    tb = Table(dialect=Dialect(delimiter=",", header_line=0, header=c.header, decimal_comma=c.dec),
               cols=pcols, units={"speed": speed_unit}, time_basis=plan.basis_opt, fix_kind="gps")
    f, r, tr = chunk_to_fixes(c.df, tb, tz=plan.tz, date_order=plan.mp.get("date_order"),
                              what=ctx.display_path, time_format=plan.fmt, record_prefix=c.prefix)
    acc.bases.append(tr.basis)
    if c.subj is not None:
        f = f.assign(subject_id=c.subj.reindex(f.index))
    acc.fixes.append(f)
    acc.rejects.append(r)


def _spans(c: _Chunk, plan: _Plan, acc: _Acc, ctx: LoadContext,
           kind: str) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Start and end times of a stops/trips report, their reject reasons and durations."""
    _require(ctx, c.cols, kind, ("start", "end"), " time column")
    t0, why0, b0 = _time(c.df, c.cols["start"], ctx, plan.tz, plan.basis_opt, plan.fmt)
    t1, why1, _ = _time(c.df, c.cols["end"], ctx, plan.tz, plan.basis_opt, plan.fmt)
    acc.bases.append(b0)
    reason = why0.fillna(why1)
    reason[(t1 < t0) & reason.isna()] = "end time before start time"
    dur = (_durations(c.df[c.cols["duration"]], str(plan.mp.get("duration_unit", "ms")))
           if "duration" in c.cols else pd.Series(np.nan, index=c.df.index))
    return t0, t1, reason, dur


def _text(c: _Chunk, role: str) -> Any:
    return c.df[c.cols[role]].astype("string") if role in c.cols else pd.NA


def _stops(c: _Chunk, plan: _Plan, acc: _Acc, ctx: LoadContext) -> None:
    t0, t1, reason, dur = _spans(c, plan, acc, ctx, "stops")
    lat, lon = _latlon(c.df, c.cols, "lat", "lon", "address", c.dec)
    reason[(lat.isna() | lon.isna()) & reason.isna()] = (
        "stop has no position (no lat/lon column and the address is not 'lat, lon')")
    ok = reason.isna()
    extra = _extra_json(c.df, c.cols, ("duration", "odometer", "engine_hours", "spent_fuel"),
                        {"duration_s": dur, "device": c.dev})
    df = pd.DataFrame({
        "record": c.rec, "kind": "portal_stop", "flags": "portal_stop",
        "name": _text(c, "address"), "address": _text(c, "address"),
        "lat": lat, "lon": lon, "t_start": t0, "t_end": t1,
        "t_precision": "second", "extra": extra,
        "subject_id": (c.subj if c.subj is not None else pd.NA),
    })
    df["subject_id"] = df["subject_id"].astype("string").fillna(ctx.subject(acc.default_subject))
    acc.places.append(df[ok])
    acc.reject(c.rec, reason, ok)


def _trips(c: _Chunk, plan: _Plan, acc: _Acc, ctx: LoadContext) -> None:
    t0, t1, reason, dur = _spans(c, plan, acc, ctx, "trips")
    slat, slon = _latlon(c.df, c.cols, "start_lat", "start_lon", "start_address", c.dec)
    elat, elon = _latlon(c.df, c.cols, "end_lat", "end_lon", "end_address", c.dec)
    ok = reason.isna()
    extra = _extra_json(c.df, c.cols, ("distance", "odometer", "end_odometer", "average_speed",
                                       "max_speed", "duration", "spent_fuel", "driver",
                                       "start_address", "end_address"),
                        {"duration_s": dur, "device": c.dev})
    for k, t, la, lo, addr in (("trip_start", t0, slat, slon, "start_address"),
                               ("trip_end", t1, elat, elon, "end_address")):
        df = pd.DataFrame({"record": c.rec, "t_utc": t, "kind": k, "lat": la, "lon": lo,
                           "text": _text(c, addr), "extra": extra})
        if c.subj is not None:
            df["subject_id"] = c.subj
        acc.events.append(df[ok])
    acc.reject(c.rec, reason, ok)


def _events(c: _Chunk, plan: _Plan, acc: _Acc, ctx: LoadContext) -> None:
    _require(ctx, c.cols, "events", ("datetime", "type"), " column")
    t, reason, b = _time(c.df, c.cols["datetime"], ctx, plan.tz, plan.basis_opt, plan.fmt)
    acc.bases.append(b)
    raw = c.df[c.cols["type"]].astype("string").str.strip()
    kinds = raw.map(plan.event_kind).astype("string")
    reason[(kinds == "") & reason.isna()] = "event without a type"
    lat, lon = _latlon(c.df, c.cols, "lat", "lon", "address", c.dec)
    ok = reason.isna()
    text = c.df[c.cols["text"]].astype("string").replace("", pd.NA) if "text" in c.cols else pd.NA
    df = pd.DataFrame({"record": c.rec, "t_utc": t, "kind": kinds, "text": text, "lat": lat,
                       "lon": lon, "extra": _extra_json(c.df, c.cols, (), {"type": raw, "device": c.dev})})
    if c.subj is not None:
        df["subject_id"] = c.subj
    acc.events.append(df[ok])
    acc.reject(c.rec, reason, ok)


def _who(chunk: pd.DataFrame, cols: Mapping[str, str], device_col: str | None,
         part_device: str | None, part_subject: str | None) -> tuple[pd.Series | None, pd.Series]:
    """Each row's subject (None: the file's) and device, filled from the sheet's device."""
    subj = (chunk[cols["subject"]].astype("string").str.strip().replace("", pd.NA)
            if "subject" in cols else None)
    dev = (chunk[device_col].astype("string").str.strip().replace("", pd.NA)
           if device_col else pd.Series(pd.NA, index=chunk.index, dtype="string"))
    if part_device:
        dev = dev.fillna(part_device)
    if part_subject is not None:  # this sheet's device fills rows that name none
        subj = (pd.Series(part_subject, index=chunk.index, dtype="string") if subj is None
                else subj.fillna(part_subject))
    return subj, dev


_BY_KIND = {"stops": _stops, "trips": _trips, "events": _events}


def _part(part: Part, plan: _Plan, acc: _Acc, ctx: LoadContext) -> None:
    """One report (a CSV file or a sheet) of the export, chunk by chunk."""
    header, prefix, chunks, part_device, dec = part
    kind = plan.forced or portal_kind(header)
    if kind is None:
        raise ctx.error(CorruptSource, f"cannot tell which report {header!r} is; set 'kind' "
                        "in the mapping")
    acc.kinds_seen.append(kind)
    cols = match_roles(header, ROLES, plan.explicit, option="the portal mapping's columns")
    device_col = cols.get("subject")  # kept in extra as 'device' even under --subject
    if ctx.subject_id:
        cols.pop("subject", None)
    part_subject = None if ctx.subject_id else (plan.mp.get("subject") or part_device)
    if acc.default_subject is None:
        acc.default_subject = part_subject
    speed_unit = _speed_unit(plan.mp, cols.get("speed"))
    if kind in ("positions", "trips"):
        acc.units_seen.append(speed_unit)
    for chunk in chunks:
        bad = chunk.attrs.get("bad_lines", [])
        if bad:  # lines the CSV parser could not split into the header's columns
            acc.n += len(bad)
            acc.rejects.append(pd.DataFrame(bad, columns=["record", "reason"]))
        if not len(chunk):
            continue
        acc.n += len(chunk)
        subj, dev = _who(chunk, cols, device_col, part_device, part_subject)
        c = _Chunk(df=chunk, cols=cols, rec=prefix + chunk["__row__"].astype(str), subj=subj,
                   dev=dev, dec=dec, header=header, prefix=prefix)
        if kind == "positions":
            _positions(c, plan, acc, ctx, speed_unit)
        else:
            _BY_KIND[kind](c, plan, acc, ctx)


@register(LoaderSpec(
    name="portal",
    description="Fleet-portal exports (Traccar route/stops/trips/events presets, or a YAML "
                "mapping), CSV or XLSX; stops become portal_stop places",
    sniff=sniff_portal,
    produces=("fixes", "events", "places"),
    options=("chunk_rows", "duration_unit", "mapping", "sheet", "speed_unit", "time_basis",
             "time_format"),
))
def load_portal(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a fleet-portal export. Options: ``mapping`` (YAML path or dict), ``speed_unit``,
    ``chunk_rows``; see the module docstring.

    Each data row is one record (``row N``, or ``<sheet>!row N`` in a spreadsheet):
    positions become fixes, stops ``portal_stop`` places, trips two events, events
    events; a row whose time or position cannot be used is a reject with the reason.

    Parameters
    ----------
    path
        The CSV or XLSX export (only read).
    ctx
        The load context built by :func:`routetrace.loaders.load`: ``tz`` (portal times
        are local without an offset: required unless the mapping states a zone or
        ``options={"time_basis": "utc"}``), subject and the options above.

    Returns
    -------
    LoadResult
        ``fixes``, ``events``, ``places`` and ``rejects``; rows read = rows produced +
        rows rejected.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> rows = ("Device,Start Time,End Time,Duration,Address,Latitude,Longitude\\n"
    ...         "lorry 1,2024-03-24 23:10:00,2024-03-25 01:40:00,2 h 30 min,E40,51.176,3.073\\n"
    ...         "lorry 1,2024-03-25 04:00:00,2024-03-25 04:20:00,0:20:00,Somewhere,,\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "stops.csv"
    ...     _ = p.write_text(rows)
    ...     res = load(p, tz="Europe/Brussels")
    >>> res.places[["kind", "t_start", "t_end", "record"]]
              kind                   t_start                     t_end record
    0  portal_stop 2024-03-24 22:10:00+00:00 2024-03-25 00:40:00+00:00  row 1
    >>> res.records_read, res.rejects["reason"].tolist()
    (2, ["stop has no position (no lat/lon column and the address is not 'lat, lon')"])
    """
    plan = _plan(ctx)
    acc = _Acc(default_subject=plan.mp.get("subject"))
    for part in _parts(path, ctx, plan.mp, plan.accept):
        _part(part, plan, acc, ctx)
    fx = [f for f in acc.fixes if len(f)]
    ev = [e for e in acc.events if len(e)]
    pl = [p for p in acc.places if len(p)]
    rj = [r for r in acc.rejects if len(r)]
    fx_df = None
    if fx:
        fx_df = pd.concat(fx, ignore_index=True)
        if "subject_id" in fx_df.columns:
            fx_df["subject_id"] = fx_df["subject_id"].astype("string").fillna(
                ctx.subject(acc.default_subject))
    if not (fx or ev or pl):  # nothing could be placed in time: say --tz, not 'N rejects'
        raise_if_all_local(pd.concat(rj, ignore_index=True) if rj else None, ctx)
    basis = "; ".join(dict.fromkeys(b for b in acc.bases if b != "none")) or "none"
    src = "Traccar preset" if not plan.mp else "mapping file"
    basis = f"portal {'+'.join(dict.fromkeys(acc.kinds_seen))} export ({src}): {basis}"
    if acc.units_seen:
        basis += f"; speed unit {'+'.join(dict.fromkeys(acc.units_seen))}"
    return ctx.finish(
        records_read=acc.n, time_basis=basis, default_subject=acc.default_subject,
        fixes=fx_df,
        events=pd.concat(ev, ignore_index=True) if ev else None,
        places=pd.concat(pl, ignore_index=True) if pl else None,
        rejects=pd.concat(rj, ignore_index=True) if rj else None,
    )
