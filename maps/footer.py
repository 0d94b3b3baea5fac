"""Footer, title and chronology table of an exhibit, rendered with auto-escaping Jinja.

Every value that reaches these templates may come from evidence (file names, subject ids,
place names, statement text), so the environment escapes everything by default.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
import pandas as pd

from .. import __version__
from ..codehash import code_sha256
from ..localtime import TZ_CONVENTION, fmt_duration
from .gazetteer import GEONAMES_ATTRIBUTION

__all__ = ["ExhibitMeta", "render_chronology", "render_footer", "render_title", "source_date"]

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                          keep_trailing_newline=False)

_TITLE = _ENV.from_string(
    '<div class="rt-title" id="rt-title">Exhibit {{ m.exhibit_no }} · Case {{ m.case_id }}'
    '<span class="rt-sub">{{ m.title }}</span></div>')

_FOOTER = _ENV.from_string("""<div class="rt-footer" id="rt-footer">
<table>
<tr><th>Case</th><td>{{ m.case_id }}</td><th>Exhibit</th><td id="rt-exhibit-no">{{ m.exhibit_no }}</td>
<th>Produced by</th><td>routetrace {{ m.tool_version }}</td><th>Date</th><td>{{ m.produced }}</td></tr>
</table>
<div><b>Code:</b> routetrace {{ m.tool_version }}, SHA-256 of its files {{ m.tool_code }} (<code>routetrace.codehash</code>)</div>
<div><b>Time:</b> {{ m.tz_convention }}</div>
<div><b>Parameters:</b> {% for k, v in m.params %}{% if k %}{{ k }}: {% endif %}{{ v }}{% if not loop.last %}; {% endif %}{% else %}none stated{% endfor %}</div>
<div><b>Background:</b> {% for b in m.basemap %}{{ b }} {% endfor %}{% if m.gazetteer and m.gazetteer not in m.basemap %}{{ m.gazetteer }}{% endif %}</div>
<h3>Sources (SHA-256 of each evidence file)</h3>
<table class="rt-sources">
{% for s in m.sources %}<tr><td>{{ s.path }}</td><td>{{ s.format }}</td><td>{{ s.time_basis }}</td><td class="rt-hash">{{ s.source_id }}</td></tr>
{% else %}<tr><td>no sources table given</td></tr>{% endfor %}
</table>
{% for n in m.notes %}<div>{{ n }}</div>{% endfor %}
</div>""")

_CHRONO = _ENV.from_string("""<div class="rt-chronology" id="rt-chronology">
<h2>Chronology · Exhibit {{ m.exhibit_no }} · Case {{ m.case_id }}</h2>
<table>
<tr><th>No</th><th>Subject</th><th>From (local)</th><th>To (local)</th><th>Times in words</th>
<th>Dwell / duration</th><th>Position</th><th>Radius</th><th>Near</th><th>Sources</th></tr>
{% for r in rows %}<tr class="rt-row-{{ r.row_kind }}"><td>{{ r.no if r.row_kind == 'stop' else 'unobserved' }}</td>
<td>{{ r.subject_id }}</td><td>{{ r.start_local }}</td><td>{{ r.end_local }}</td>
<td>{% if r.row_kind == 'stop' %}{{ r.arrival }}; {{ r.departure }}{% endif %}{% if r.note %}{% if r.row_kind == 'stop' %}; {% endif %}{{ r.note }}{% endif %}</td>
<td>{{ r.dwell_range if r.row_kind == 'stop' else r.dwell }}</td>
<td>{{ r.pos }}</td><td>{{ r.radius }}</td><td>{{ r.near_place }}</td><td>{{ r.sources }}</td></tr>
{% else %}<tr><td colspan="10">no stops</td></tr>{% endfor %}
</table>
</div>""")


def source_date() -> str:
    """The production date from ``SOURCE_DATE_EPOCH`` (UTC), or a fixed 'not stated'.

    Exhibits never read the wall clock: the same inputs give the same bytes.

    Returns
    -------
    str
        ``YYYY-MM-DD HH:MM:SS UTC``, or ``not stated (set SOURCE_DATE_EPOCH)`` when the
        variable is unset or not a whole number of seconds.

    Example
    -------
    >>> import os
    >>> saved = os.environ.pop("SOURCE_DATE_EPOCH", None)
    >>> source_date()
    'not stated (set SOURCE_DATE_EPOCH)'
    >>> os.environ["SOURCE_DATE_EPOCH"] = "1762164000"
    >>> source_date()
    '2025-11-03 10:00:00 UTC'
    >>> _ = os.environ.pop("SOURCE_DATE_EPOCH") if saved is None else os.environ.update(SOURCE_DATE_EPOCH=saved)
    """
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde is None or not sde.strip().isdigit():
        return "not stated (set SOURCE_DATE_EPOCH)"
    return pd.Timestamp(int(sde), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class ExhibitMeta:
    """What the footer states about an exhibit."""

    case_id: str
    exhibit_no: str
    title: str = ""
    params: list[tuple[str, str]] = field(default_factory=list)
    sources: list[dict[str, str]] = field(default_factory=list)
    basemap: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tool_version: str = __version__
    #: SHA-256 of the package's files (:func:`routetrace.codehash.code_sha256`)
    tool_code: str = field(default_factory=code_sha256)
    produced: str = field(default_factory=source_date)
    tz_convention: str = TZ_CONVENTION
    #: the chronology names the nearest town (GeoNames): its attribution is always stated
    gazetteer: str = GEONAMES_ATTRIBUTION


#: Parameter names in words (the last part of a dotted name); others are spelled from the name.
PARAM_WORDS: dict[str, str] = {
    "radius_m": "radius", "min_dwell": "minimum dwell", "max_gap": "unobserved after a silence of",
    "max_h_acc_m": "position fixes no coarser than", "max_outliers": "stray fixes tolerated inside a stop",
    "edge_speed_mps": "moving at a stop's edge above", "max_dt": "time window",
    "place_eps_m": "recurring places merged within", "conflict_m": "conflicting sources apart by more than",
    "event_slack": "event slack", "time_tolerance": "time tolerance", "max_speed_mps": "fastest plausible speed",
    "min_fixes": "minimum fixes", "slack_m": "position slack", "coarse_m": "coarse fixes coarser than",
    "default_fix_accuracy_m": "fix accuracy when not stated",
    "default_place_radius_m": "place radius when not stated", "night_hours": "night hours",
    "accuracy_aware": "accuracy-aware", "dask": "distributed (dask)",
}

_UNITS = (("_mps", " m/s"), ("_m", " m"), ("_s", " s"))

#: Duration text as pandas writes it (``0 days 00:05:00``) or as a user gives it (``30min``).
_TIMEDELTA_TEXT = re.compile(r"^-?\d+ days? \d\d:\d\d:\d\d(\.\d+)?$|^\d+(\.\d+)?\s*(min|s|h|ms|d)$")


def _value_in_words(key: str, v: Any) -> str:
    """``5 min`` for a duration text, ``100 m`` for a ``*_m`` number, ``yes``/``no`` for booleans."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return fmt_duration(pd.Timedelta(v)) if _TIMEDELTA_TEXT.match(v.strip()) else v
    if isinstance(v, list) and key != "night_hours":
        return ", ".join(str(x) for x in v)
    if isinstance(v, (int, float)):
        num = f"{v:g}"
        for suffix, unit in _UNITS:
            if key.endswith(suffix):
                return num + unit
        return num
    if key == "night_hours" and isinstance(v, list) and len(v) == 2:
        return f"{int(v[0]):02d}:00–{int(v[1]):02d}:00"
    return json.dumps(v, default=str, sort_keys=True)


def _name_in_words(key: str) -> str:
    if key in PARAM_WORDS:
        return PARAM_WORDS[key]
    for suffix, _ in _UNITS:
        if key.endswith(suffix):
            key = key[: -len(suffix)]
            break
    return key.replace("_", " ")


def _param_in_words(key: str, v: Any) -> str:
    """``minimum dwell 5 min``; a text value of a ``*_m`` name gets the unit in the name."""
    words = _value_in_words(key, v)
    unit = next((u.strip() for suffix, u in _UNITS if key.endswith(suffix)), "")
    if isinstance(v, str) and unit and not _TIMEDELTA_TEXT.match(v.strip()) and key not in PARAM_WORDS:
        return f"{_name_in_words(key)} ({unit}) {words}"
    return f"{_name_in_words(key)} {words}"


def flatten_params(params: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Parameters as sorted ``(stage, words)`` pairs: ``("stops", "minimum dwell 5 min")``.

    Nested dicts are dotted into the stage (``stops.cleaning``); values are written with
    their units (durations as :func:`~routetrace.localtime.fmt_duration` writes them,
    never as pandas text such as ``0 days 00:05:00``).

    >>> flatten_params({"stops": {"min_dwell": "0 days 00:05:00", "radius_m": 100.0}})
    [('stops', 'minimum dwell 5 min'), ('stops', 'radius 100 m')]
    """
    out: list[tuple[str, str]] = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k in sorted(v, key=str):
                if isinstance(v[k], dict):
                    walk(f"{prefix}.{k}" if prefix else str(k), v[k])
                else:
                    out.append((prefix, _param_in_words(str(k), v[k])))
        else:
            out.append((prefix, _value_in_words(prefix, v)))

    walk("", params or {})
    return out


def render_title(m: ExhibitMeta) -> str:
    """The title bar above the map.

    Parameters
    ----------
    m : ExhibitMeta
        What the exhibit states (exhibit number, case id, title).

    Returns
    -------
    str
        An HTML fragment; the title text is escaped.

    Example
    -------
    >>> m = ExhibitMeta(case_id="CASE-1", exhibit_no="RT-1", title="<b>Route</b> of lorry")
    >>> render_title(m)
    '<div class="rt-title" id="rt-title">Exhibit RT-1 · Case CASE-1<span class="rt-sub">&lt;b&gt;Route&lt;/b&gt; of lorry</span></div>'
    """
    return _TITLE.render(m=m)


def render_footer(m: ExhibitMeta) -> str:
    """The footer below the map (escaped HTML).

    Parameters
    ----------
    m : ExhibitMeta
        What the exhibit states: case, sources with SHA-256, parameters, tool version, time
        convention, base map and notes.

    Returns
    -------
    str
        An HTML fragment; every value is escaped.

    Example
    -------
    >>> m = ExhibitMeta(case_id="CASE-1", exhibit_no="RT-1", notes=["<script>x</script>"])
    >>> html = render_footer(m)
    >>> "CASE-1" in html, "<script>" in html, "&lt;script&gt;" in html
    (True, False, True)
    """
    return _FOOTER.render(m=m)


def render_chronology(m: ExhibitMeta, chrono: pd.DataFrame) -> str:
    """The chronology table (escaped HTML; printed on its own page).

    Parameters
    ----------
    m : ExhibitMeta
        What the exhibit states (its numbers head the page).
    chrono : pandas.DataFrame
        The table from :func:`routetrace.maps.chronology.build_chronology`.

    Returns
    -------
    str
        An HTML fragment, one table row per chronology row; every value is escaped.

    Example
    -------
    >>> from routetrace.maps.chronology import build_chronology
    >>> from routetrace.routes import detect_stops
    >>> from routetrace.testing import make_fixes
    >>> _, stops = detect_stops(make_fixes(subject_id="lorry", t_utc=pd.date_range(
    ...     "2025-10-26T21:00Z", periods=12, freq="1min"), lat=51.0, lon=3.87, h_acc_m=5.0))
    >>> html = render_chronology(ExhibitMeta(case_id="CASE-1", exhibit_no="RT-1"), build_chronology(stops))
    >>> html.count("<tr"), "lorry" in html
    (2, True)
    """
    rows = []
    for r in chrono.to_dict("records"):
        r["pos"] = f"{r['lat']:.5f}, {r['lon']:.5f}" if pd.notna(r["lat"]) else ""
        r["radius"] = f"{r['radius_m']:.0f} m" if pd.notna(r["radius_m"]) else ""
        rows.append(r)
    return _CHRONO.render(m=m, rows=rows)
