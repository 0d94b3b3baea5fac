"""Statements: places that victims, suspects and witnesses indicated in hearings.

Two file forms, one row per indicated place, validated against the JSON Schema shipped as
``loaders/data/statements.schema.json`` (templates and field guide: ``docs/statements.md``):

``statements-yaml``
    A YAML document ``{routetrace: statements/1, time_zone, journey_start, gazetteer,
    statements: [...]}``. Record locator ``statements[i]`` (0-based).
``statements-csv``
    A CSV (``,`` or ``;``) with one column per statement field; list fields
    (``before``, ``after``, ``subjects``) are ``|``-separated. Record locator ``line:N``
    (the 1-based line where the row starts; the header is line 1). File-level settings
    come from ``tz=`` and ``options``.

Every valid row becomes one ``places`` row of ``kind="indicated"``: ``lat, lon`` from the
place (see :mod:`routetrace.loaders.geo_links` for the accepted links and codes, or an
``address`` found in a user-supplied gazetteer, never a geocoding service), ``radius_m``
(the stated ``uncertainty_m``, else what the link implies: map zoom, ``geo:`` ``u=``, Plus
Code cell; ``NA`` when nothing states it), ``text`` = what was said, verbatim (hostile
text: escaped by every output, never interpreted), ``name`` = ``place_name``,
``address``. ``extra`` keeps ``statement_id, person_id, role, hearing_date, place_input,
place_form, zoom, radius_basis, time_text, time_rule, before, after, order, subjects``.

Time as said, never an invented instant
---------------------------------------
==================  =============================================  ===============
field               stored as (local days in the stated zone)       ``t_precision``
==================  =============================================  ===============
``t_exact``         ``t_start = t_end`` = that time                 ``minute``/``second``
``t_start/t_end``   that window (either end may be open: NA)        ``window``
``date``            [00:00, next 00:00) of that day                 ``day``
``night_of``        [D 18:00, D+1 08:00) (options ``night_start``,  ``window``
                    ``night_end``)
``journey_day``     day ``journey_start + (N-1)``, [00:00, 00:00)   ``window``
(none)              ``t_start = t_end = NA``                        ``none``
``before``/``after``  order constraints kept in ``extra`` only       (unchanged)
==================  =============================================  ===============

Times without a UTC offset, and all dates, are local to ``tz=`` (or the file's
``time_zone``); with neither, the file is refused with
:class:`~routetrace.errors.AmbiguousTime`. A local time that does not exist or is
ambiguous at a DST change rejects its row.

Gazetteer
---------
A CSV ``name,lat,lon[,radius_m]`` given by ``options={"gazetteer": path}`` or the YAML key
``gazetteer`` (relative to the statements file). An ``address`` matches a ``name`` after
case-folding and collapsing white space; no fuzzy matching. Its SHA-256 is recorded in
``sources.companions``. It also resolves the locality of short Plus Codes.

Rejected rows (named by their locator and statement id): schema violations (the first
error, with its field), unreadable places, addresses missing from the gazetteer, two time
forms in one row, ``t_end`` before ``t_start``, duplicate ``statement_id``, ``before`` /
``after`` naming a statement that is not in the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from .. import timebase
from ..errors import AmbiguousTime, CorruptSource, LoaderError
from ..evidence import sha256_file
from .base import LoadContext, LoaderSpec, LoadResult, compact_json, register
from .geo_links import GeoLinkError, parse_place

__all__ = [
    "Gazetteer",
    "load_statements_csv",
    "load_statements_yaml",
    "statements_schema",
]

MAX_BYTES = 20 * 1024 * 1024
NIGHT_START = "18:00"
NIGHT_END = "08:00"
_LIST_FIELDS = ("before", "after", "subjects")
_INT_FIELDS = ("journey_day", "order")
_FLOAT_FIELDS = ("lat", "lon", "uncertainty_m")
_TIME_FORMS = ("t_exact", "t_start", "date", "night_of", "journey_day")
_HAS_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


@lru_cache(maxsize=1)
def statements_schema() -> dict[str, Any]:
    """The JSON Schema of a statements file (``loaders/data/statements.schema.json``).

    Returns
    -------
    dict
        The schema (JSON Schema 2020-12) every statement is validated against; read once
        and cached.

    Example
    -------
    >>> schema = statements_schema()
    >>> sorted(schema["$defs"]["statement"]["required"])
    ['hearing_date', 'person_id', 'role', 'statement_id', 'text']
    """
    text = resources.files("routetrace.loaders").joinpath("data/statements.schema.json").read_text(
        encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _validator(ref: str | None = None) -> jsonschema.Draft202012Validator:
    schema = statements_schema()
    if ref:
        schema = {**schema["$defs"][ref], "$defs": schema["$defs"]}
    return jsonschema.Draft202012Validator(schema)


def _first_error(validator: jsonschema.Draft202012Validator, obj: Any) -> str | None:
    errors = sorted(validator.iter_errors(obj), key=lambda e: (list(e.absolute_path), e.message))
    if not errors:
        return None
    e = errors[0]
    where = "/".join(str(p) for p in e.absolute_path) or "row"
    msg = e.message
    if e.validator == "anyOf" and not e.absolute_path:
        msg = "no place: give 'place' (coordinates, map link, geo: URI, Plus Code), 'lat'+'lon', or 'address'"
    return f"{where}: {msg[:300]}"


def _norm(name: str) -> str:
    return " ".join(name.casefold().split())


class Gazetteer:
    """A user-supplied offline list of named places: CSV ``name,lat,lon[,radius_m]``."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, tuple[float, float, float | None]] = {}
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise LoaderError(f"cannot read gazetteer: {exc}", path=str(path)) from exc
        rows = list(csv.DictReader(io.StringIO(text)))
        for i, r in enumerate(rows):
            try:
                lat, lon = float(r["lat"]), float(r["lon"])
                rad = r.get("radius_m") or ""
                radius = float(rad) if rad.strip() else None
            except (KeyError, TypeError, ValueError) as exc:
                raise LoaderError(f"gazetteer row {i + 2}: needs name,lat,lon numbers ({exc})",
                                  path=str(path)) from exc
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise LoaderError(f"gazetteer row {i + 2}: position out of range", path=str(path))
            self.entries[_norm(r.get("name") or "")] = (lat, lon, radius)

    def lookup(self, name: str) -> tuple[float, float, float | None] | None:
        """``(lat, lon, radius_m)`` of ``name`` (case and spacing ignored), or ``None``."""
        return self.entries.get(_norm(name))

    def point(self, name: str) -> tuple[float, float] | None:
        """``(lat, lon)`` of ``name`` or ``None`` (a reference for short Plus Codes)."""
        hit = self.lookup(name)
        return None if hit is None else (hit[0], hit[1])


# ----------------------------------------------------------------------------- sniffing

def _header(head: bytes) -> list[str]:
    text = head.decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text else ""
    delim = ";" if first.count(";") > first.count(",") else ","
    return [c.strip().strip('"').lower() for c in first.split(delim)]


def sniff_statements_csv(path: Path, head: bytes) -> bool:
    """A CSV whose header names ``statement_id`` and ``role``."""
    cols = _header(head)
    return "statement_id" in cols and "role" in cols


def sniff_statements_yaml(path: Path, head: bytes) -> bool:
    """YAML with the ``routetrace: statements/1`` marker, or a ``statements:`` list of ids."""
    text = head.decode("utf-8-sig", errors="replace")
    if re.search(r"^routetrace:\s*['\"]?statements/", text, re.M):
        return True
    return bool(re.search(r"^statements:\s*$", text, re.M) and "statement_id:" in text)


# ----------------------------------------------------------------------------- YAML

class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses aliases (no 'billion laughs' expansion)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            ev = self.peek_event()
            raise yaml.YAMLError(f"YAML aliases are not allowed in statements files "
                                 f"(line {ev.start_mark.line + 1})")
        return super().compose_node(parent, index)


def _yaml_scalar_fix(v: Any) -> Any:
    """YAML reads ``2025-10-24`` as a date; the schema wants the ISO text."""
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return [_yaml_scalar_fix(x) for x in v]
    return v


# ----------------------------------------------------------------------------- rows

def _csv_row(raw: Mapping[str, str | None]) -> tuple[dict[str, Any], str | None]:
    row: dict[str, Any] = {}
    for k, v in raw.items():
        if k is None:
            return {}, "more values than header columns"
        key = k.strip()
        if v is None or v.strip() == "":
            continue
        val = v.strip() if key != "text" else v
        if key in _LIST_FIELDS:
            row[key] = [x.strip() for x in val.split("|") if x.strip()]
        elif key in _INT_FIELDS:
            try:
                row[key] = int(val)
            except ValueError:
                return {}, f"{key}: {val[:40]!r} is not a whole number"
        elif key in _FLOAT_FIELDS:
            try:
                row[key] = float(val.replace(",", ".") if val.count(",") == 1 and "." not in val else val)
            except ValueError:
                return {}, f"{key}: {val[:40]!r} is not a number"
        else:
            row[key] = val
    return row, None


def _local(text: str, tz: str | None, what: str) -> tuple[pd.Timestamp | None, str | None]:
    """Parse an ISO time (offset, or local in ``tz``) -> (UTC, None) or (None, reason)."""
    s = text.strip().replace(" ", "T", 1)
    try:
        ts = pd.Timestamp(s)
        if not 1980 <= ts.year < 2100:
            return None, f"{what} {text!r} is implausible (outside 1980-2100)"
        if ts.tzinfo is not None:
            return ts.tz_convert("UTC"), None
    except (ValueError, OverflowError) as exc:
        return None, f"{what} {text!r} is not a valid date/time ({exc})"
    if tz is None:  # the caller guarantees tz when any row needs it
        return None, f"{what} {text!r} has no UTC offset and no time zone was stated"
    loc = timebase.localize(pd.Series([ts.as_unit("ns")]), tz=tz).iloc[0]
    if pd.isna(loc):
        return None, f"{what} {text!r} does not exist or is ambiguous in {tz} (DST change)"
    return pd.Timestamp(loc), None


def _bad_date(obj: Mapping[str, Any]) -> str | None:
    for k in ("hearing_date", "date", "night_of"):
        if k in obj:
            try:
                d = dt.date.fromisoformat(str(obj[k]))
            except ValueError:
                return f"{k}: {str(obj[k])[:40]!r} is not a valid date (YYYY-MM-DD)"
            if not 1980 <= d.year < 2100:
                return f"{k}: {obj[k]!r} is implausible (outside 1980-2100)"
    return None


def _needs_tz(row: Mapping[str, Any]) -> bool:
    for k in ("t_exact", "t_start", "t_end"):
        if k in row and not _HAS_OFFSET.search(str(row[k]).strip()):
            return True
    return any(k in row for k in ("date", "night_of", "journey_day"))


def _time(row: Mapping[str, Any], *, tz: str | None, journey_start: str | None,
          night: tuple[str, str]) -> tuple[dict[str, Any], str | None]:
    forms = [f for f in _TIME_FORMS if f in row]
    if "t_end" in row and "t_start" not in row:
        forms.append("t_end")
    if len(forms) > 1:
        return {}, f"two time forms in one row ({', '.join(forms)}): give exactly one"
    if not forms:
        return {"t_start": pd.NaT, "t_end": pd.NaT, "t_precision": "none", "time_rule": None}, None
    form = forms[0]
    if form == "t_exact":
        t, why = _local(row["t_exact"], tz, "t_exact")
        if t is None:
            return {}, why
        prec = "second" if re.search(r"\d\d:\d\d:\d\d", row["t_exact"]) else "minute"
        return {"t_start": t, "t_end": t, "t_precision": prec, "time_rule": "exact as said"}, None
    if form in ("t_start", "t_end"):
        out: dict[str, Any] = {"t_start": pd.NaT, "t_end": pd.NaT, "t_precision": "window"}
        for k in ("t_start", "t_end"):
            if k in row:
                t, why = _local(row[k], tz, k)
                if t is None:
                    return {}, why
                out[k] = t
        if pd.notna(out["t_start"]) and pd.notna(out["t_end"]) and out["t_end"] < out["t_start"]:
            return {}, f"t_end {row['t_end']} is before t_start {row['t_start']}"
        out["time_rule"] = "window as said" if "t_end" in row and "t_start" in row else (
            "open window: only " + ("t_start" if "t_start" in row else "t_end") + " given")
        return out, None
    if form == "journey_day":
        if journey_start is None:
            return {}, "journey_day needs journey_start (file key or options['journey_start'])"
        day = (pd.Timestamp(journey_start) + pd.Timedelta(days=int(row["journey_day"]) - 1))
        d = day.strftime("%Y-%m-%d")
        a, why = _local(f"{d}T00:00", tz, "journey_day")
        b, why2 = _local((day + pd.Timedelta(days=1)).strftime("%Y-%m-%dT00:00"), tz, "journey_day")
        if a is None or b is None:
            return {}, why or why2
        return {"t_start": a, "t_end": b, "t_precision": "window",
                "time_rule": f"journey day {row['journey_day']} from {journey_start}: "
                             f"local day {d}"}, None
    if form == "date":
        d = pd.Timestamp(row["date"])
        a, why = _local(d.strftime("%Y-%m-%dT00:00"), tz, "date")
        b, why2 = _local((d + pd.Timedelta(days=1)).strftime("%Y-%m-%dT00:00"), tz, "date")
        if a is None or b is None:
            return {}, why or why2
        return {"t_start": a, "t_end": b, "t_precision": "day",
                "time_rule": f"local day {row['date']}"}, None
    d = pd.Timestamp(row["night_of"])
    a, why = _local(f"{d:%Y-%m-%d}T{night[0]}", tz, "night_of")
    b, why2 = _local(f"{d + pd.Timedelta(days=1):%Y-%m-%d}T{night[1]}", tz, "night_of")
    if a is None or b is None:
        return {}, why or why2
    return {"t_start": a, "t_end": b, "t_precision": "window",
            "time_rule": f"night of {row['night_of']}: {night[0]} to {night[1]} next day, local"}, None


def _place(row: Mapping[str, Any], gaz: Gazetteer | None) -> tuple[dict[str, Any], str | None]:
    if "place" in row:
        try:
            g = parse_place(str(row["place"]), reference=gaz.point if gaz else None)
        except GeoLinkError as exc:
            return {}, f"place: {exc}"
        return {"lat": g.lat, "lon": g.lon, "radius": g.radius_m, "radius_basis": g.radius_basis,
                "place_form": g.form, "zoom": g.zoom}, None
    if "lat" in row and "lon" in row:
        if row["lat"] == 0 and row["lon"] == 0:
            return {}, "lat/lon 0,0 is a placeholder for 'no position', not a place"
        return {"lat": float(row["lat"]), "lon": float(row["lon"]), "radius": None,
                "radius_basis": None, "place_form": "lat/lon", "zoom": None}, None
    if gaz is None:
        return {}, ("address given but no gazetteer file: pass options={'gazetteer': path} "
                    "(no geocoding service is called)")
    hit = gaz.lookup(str(row["address"]))
    if hit is None:
        return {}, f"address {str(row['address'])[:120]!r} is not in the gazetteer {gaz.path.name}"
    return {"lat": hit[0], "lon": hit[1], "radius": hit[2],
            "radius_basis": f"gazetteer {gaz.path.name}" if hit[2] is not None else None,
            "place_form": "gazetteer", "zoom": None}, None


def _build(
    rows: list[tuple[str, Any]],
    *,
    ctx: LoadContext,
    file_tz: str | None,
    journey_start: str | None,
    gaz: Gazetteer | None,
    what: str,
) -> LoadResult:
    validator = _validator("statement")
    tz = ctx.tz or file_tz
    if journey_start is not None:
        try:
            js = dt.date.fromisoformat(str(journey_start))
        except ValueError:
            raise ctx.error(CorruptSource, f"journey_start {journey_start!r} is not a date "
                            "(YYYY-MM-DD)") from None
        if not 1980 <= js.year < 2100:
            raise ctx.error(CorruptSource, f"journey_start {journey_start!r} is implausible")
    if tz is not None:
        timebase.zone(tz)
    night = (str(ctx.options.get("night_start", NIGHT_START)),
             str(ctx.options.get("night_end", NIGHT_END)))
    rejects: list[tuple[str, str]] = []
    good: list[tuple[str, dict[str, Any]]] = []
    for rec, obj in rows:
        if isinstance(obj, str):  # a pre-validation failure
            rejects.append((rec, obj))
            continue
        sid = obj.get("statement_id") if isinstance(obj, dict) else None
        label = f"statement {sid}: " if isinstance(sid, str) else ""
        err = _first_error(validator, obj) or _bad_date(obj)
        if err:
            rejects.append((rec, f"{label}{err}"))
            continue
        good.append((rec, obj))
    if tz is None and any(_needs_tz(o) for _, o in good):
        raise ctx.error(AmbiguousTime, "statements give local dates/times without a UTC offset "
                        "and no time zone is stated: add 'time_zone: Europe/Brussels' to the "
                        "file or pass --tz")
    seen: dict[str, str] = {}
    for rec, obj in good:
        if obj["statement_id"] in seen:
            rejects.append((rec, f"statement {obj['statement_id']}: duplicate statement_id "
                                 f"(first at {seen[obj['statement_id']]})"))
        else:
            seen[obj["statement_id"]] = rec
    places: list[dict[str, Any]] = []
    rejected = {r for r, _ in rejects}
    for rec, obj in good:
        if rec in rejected:
            continue
        sid = obj["statement_id"]
        unknown = [x for k in ("before", "after") for x in obj.get(k, []) if x not in seen]
        if unknown:
            rejects.append((rec, f"statement {sid}: before/after names statement "
                                 f"{unknown[0]!r}, which is not in the file or was rejected"))
            continue
        pl, why = _place(obj, gaz)
        if why:
            rejects.append((rec, f"statement {sid}: {why}"))
            continue
        tm, why = _time(obj, tz=tz, journey_start=journey_start, night=night)
        if why:
            rejects.append((rec, f"statement {sid}: {why}"))
            continue
        radius = obj.get("uncertainty_m", pl["radius"])
        basis = "stated uncertainty_m" if "uncertainty_m" in obj else pl["radius_basis"]
        places.append({
            "record": rec, "kind": "indicated", "subject_id": pd.NA,
            "name": obj.get("place_name"), "address": obj.get("address"), "text": obj["text"],
            "lat": pl["lat"], "lon": pl["lon"], "radius_m": radius,
            "t_start": tm["t_start"], "t_end": tm["t_end"], "t_precision": tm["t_precision"],
            "extra": compact_json({
                "statement_id": sid, "person_id": obj["person_id"], "role": obj["role"],
                "hearing_date": obj["hearing_date"], "place_input": obj.get("place"),
                "place_form": pl["place_form"], "zoom": pl["zoom"], "radius_basis": basis,
                "time_text": obj.get("time_text"), "time_rule": tm["time_rule"],
                "before": obj.get("before"), "after": obj.get("after"),
                "order": obj.get("order"), "subjects": obj.get("subjects"),
                "note": obj.get("note")}),
        })
    df = None
    if places:
        df = pd.DataFrame(places)
        for c in ("t_start", "t_end"):
            df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[ns, UTC]")
    basis = (f"{what}: times with an offset converted to UTC; local dates and times read in "
             f"{tz} ({'user-stated --tz' if ctx.tz else 'time_zone of the file'})"
             if tz else f"{what}: only times with a UTC offset (no local time zone stated)")
    basis += f"; night = {night[0]}-{night[1]} local"
    if journey_start:
        basis += f"; journey day 1 = {journey_start}"
    return ctx.finish(records_read=len(rows), time_basis=basis, places=df, rejects=rejects,
                      companion_hashes={"gazetteer": sha256_file(gaz.path)} if gaz else None,
                      default_subject="case")


def _gazetteer(ctx: LoadContext, from_file: str | None) -> Gazetteer | None:
    opt = ctx.options.get("gazetteer")
    if opt:
        return Gazetteer(Path(str(opt)))
    if from_file:
        p = Path(from_file)
        if not p.is_absolute():
            p = ctx.path.parent / p
        return Gazetteer(p)
    return None


def _read_text(path: Path, ctx: LoadContext) -> str:
    if path.stat().st_size > MAX_BYTES:
        raise ctx.error(CorruptSource, f"statements file larger than {MAX_BYTES // 2**20} MiB")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ctx.error(CorruptSource, f"not UTF-8 text ({exc}); save the file as UTF-8") from exc


@register(LoaderSpec(
    name="statements-yaml",
    description="places indicated in hearings (victims, suspects, witnesses), YAML template",
    sniff=sniff_statements_yaml,
    produces=("places",),
    options=("gazetteer", "journey_start", "night_end", "night_start"),
))
def load_statements_yaml(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a YAML statements file. Options: ``gazetteer``, ``journey_start``,
    ``night_start``/``night_end`` (``HH:MM``).

    Each element of ``statements`` is one record, ``statements[i]``: a place
    ``kind="indicated"`` with the time as said (an instant, a window, a day, a night or
    none), or a reject naming the statement and why (schema violation, unreadable place,
    address missing from the gazetteer, conflicting time forms, ...).

    Parameters
    ----------
    path
        The YAML file (only read).
    ctx
        The load context built by :func:`routetrace.loaders.load`: ``tz`` (else the
        file's ``time_zone``; with neither the file is refused with
        :class:`~routetrace.errors.AmbiguousTime`) and the options above.

    Returns
    -------
    LoadResult
        ``places`` and ``rejects``; statements read = places + rejects.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> doc = '''routetrace: statements/1
    ... time_zone: Europe/Brussels
    ... statements:
    ...   - {statement_id: S1, person_id: V1, role: victim, hearing_date: "2025-11-03",
    ...      text: "We stopped at a car park at night", place: "geo:51.0,3.87;u=50",
    ...      night_of: "2025-10-24"}
    ...   - {statement_id: S2, person_id: V1, role: victim, hearing_date: "2025-11-03",
    ...      text: "Then a farm", place: "https://maps.app.goo.gl/abc"}
    ... '''
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "statements.yaml"
    ...     _ = p.write_text(doc)
    ...     res = load(p)
    >>> res.places[["t_start", "t_end", "radius_m", "record"]]
                        t_start                     t_end  radius_m         record
    0 2025-10-24 16:00:00+00:00 2025-10-25 06:00:00+00:00      50.0  statements[0]
    >>> res.records_read, res.rejects["record"].tolist()
    (2, ['statements[1]'])
    """
    text = _read_text(path, ctx)
    try:
        doc = yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ctx.error(CorruptSource, f"not valid YAML: {str(exc)[:300]}") from exc
    if not isinstance(doc, dict):
        raise ctx.error(CorruptSource, "a statements file is a mapping with a 'statements' list")
    top = {k: _yaml_scalar_fix(v) for k, v in doc.items()}
    items = top.get("statements")
    head_err = _first_error(_validator(), {**top, "statements": []})
    if head_err or not isinstance(items, list):
        raise ctx.error(CorruptSource, f"statements file header: {head_err or 'statements is not a list'}")
    rows: list[tuple[str, Any]] = []
    for i, it in enumerate(items):
        obj = {str(k): _yaml_scalar_fix(v) for k, v in it.items()} if isinstance(it, dict) else it
        rows.append((f"statements[{i}]", obj if isinstance(obj, dict)
                     else f"statement is not a mapping of fields (got {type(it).__name__})"))
    js = ctx.options.get("journey_start") or top.get("journey_start")
    return _build(rows, ctx=ctx, file_tz=top.get("time_zone"), journey_start=js,
                  gaz=_gazetteer(ctx, top.get("gazetteer")), what="statements YAML")


@register(LoaderSpec(
    name="statements-csv",
    description="places indicated in hearings (victims, suspects, witnesses), CSV template",
    sniff=sniff_statements_csv,
    produces=("places",),
    options=("gazetteer", "journey_start", "night_end", "night_start"),
))
def load_statements_csv(path: Path, *, ctx: LoadContext) -> LoadResult:
    """Load a CSV statements file. Options: ``gazetteer``, ``journey_start``,
    ``night_start``/``night_end``; the time zone comes from ``tz=``.

    Each data row is one record, ``line:N`` (the line where the row starts): a place
    ``kind="indicated"``, or a reject naming the statement and why.

    Parameters
    ----------
    path
        The CSV file (``,`` or ``;``; list fields ``|``-separated; only read).
    ctx
        The load context built by :func:`routetrace.loaders.load`: ``tz`` is required
        (else :class:`~routetrace.errors.AmbiguousTime`), and the options above.

    Returns
    -------
    LoadResult
        ``places`` and ``rejects``; rows read = places + rejects.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> rows = ("statement_id,person_id,role,hearing_date,text,place,date\\n"
    ...         'S1,V1,victim,2025-11-03,We stopped at a car park,"51.0, 3.87",2025-10-24\\n'
    ...         "S2,V1,victim,2025-11-03,no place here,,\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "statements.csv"
    ...     _ = p.write_text(rows)
    ...     res = load(p, tz="Europe/Brussels")
    >>> res.places[["t_start", "t_end", "t_precision", "record"]]
                        t_start                     t_end t_precision  record
    0 2025-10-23 22:00:00+00:00 2025-10-24 22:00:00+00:00         day  line:2
    >>> res.rejects["reason"].iloc[0]
    "statement S2: row: no place: give 'place' (coordinates, map link, geo: URI, Plus Code),
    'lat'+'lon', or 'address'"
    """
    text = _read_text(path, ctx)
    first = text.splitlines()[0] if text else ""
    delim = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delim)
    fields = [f.strip() for f in (reader.fieldnames or [])]
    known = set(statements_schema()["$defs"]["statement"]["properties"])
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise ctx.error(CorruptSource, f"unknown column {unknown[0]!r}; the columns are "
                        f"described in docs/statements.md ({', '.join(sorted(known))})")
    rows: list[tuple[str, Any]] = []
    start = reader.line_num + 1
    for raw in reader:
        rec = f"line:{start}"
        start = reader.line_num + 1
        if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
            rows.append((rec, "empty row"))
            continue
        obj, why = _csv_row(raw)
        sid = (raw.get("statement_id") or "").strip()[:64]
        rows.append((rec, (f"statement {sid}: {why}" if sid else why) if why else obj))
    js = ctx.options.get("journey_start")
    return _build(rows, ctx=ctx, file_tz=None, journey_start=str(js) if js else None,
                  gaz=_gazetteer(ctx, None), what="statements CSV")
