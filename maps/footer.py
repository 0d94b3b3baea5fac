"""Footer, title and chronology table of an exhibit, rendered with auto-escaping Jinja.

Every value that reaches these templates may come from evidence (file names, subject ids,
place names, statement text), so the environment escapes everything by default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import jinja2
import pandas as pd

from .. import __version__
from .localtime import TZ_CONVENTION

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
<div><b>Time:</b> {{ m.tz_convention }}</div>
<div><b>Parameters:</b> {% for k, v in m.params %}{{ k }} = {{ v }}{% if not loop.last %}; {% endif %}{% else %}none stated{% endfor %}</div>
<div><b>Background:</b> {% for b in m.basemap %}{{ b }} {% endfor %}</div>
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
<tr><th>No</th><th>Subject</th><th>From (local)</th><th>To (local)</th><th>Dwell / duration</th>
<th>Position</th><th>Radius</th><th>Near place</th><th>Sources</th><th>Flags</th></tr>
{% for r in rows %}<tr class="rt-row-{{ r.row_kind }}"><td>{{ r.no if r.row_kind == 'stop' else 'unobserved' }}</td>
<td>{{ r.subject_id }}</td><td>{{ r.start_local }}</td><td>{{ r.end_local }}</td><td>{{ r.dwell }}</td>
<td>{{ r.pos }}</td><td>{{ r.radius }}</td><td>{{ r.near_place }}</td><td>{{ r.sources }}</td><td>{{ r.flags }}</td></tr>
{% else %}<tr><td colspan="10">no stops</td></tr>{% endfor %}
</table>
</div>""")


def source_date() -> str:
    """The production date from ``SOURCE_DATE_EPOCH`` (UTC), or a fixed 'not stated'.

    Exhibits never read the wall clock: the same inputs give the same bytes.
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
    produced: str = field(default_factory=source_date)
    tz_convention: str = TZ_CONVENTION


def flatten_params(params: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Parameters as sorted ``(name, value)`` strings (nested dicts dotted)."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k in sorted(v, key=str):
                walk(f"{prefix}.{k}" if prefix else str(k), v[k])
        else:
            out.append((prefix, v if isinstance(v, str) else json.dumps(v, default=str, sort_keys=True)))

    walk("", params or {})
    return out


def render_title(m: ExhibitMeta) -> str:
    """The title bar above the map."""
    return _TITLE.render(m=m)


def render_footer(m: ExhibitMeta) -> str:
    """The footer below the map (escaped HTML)."""
    return _FOOTER.render(m=m)


def render_chronology(m: ExhibitMeta, chrono: pd.DataFrame) -> str:
    """The chronology table (escaped HTML; printed on its own page)."""
    rows = []
    for r in chrono.to_dict("records"):
        r["pos"] = f"{r['lat']:.5f}, {r['lon']:.5f}" if pd.notna(r["lat"]) else ""
        r["radius"] = f"{r['radius_m']:.0f} m" if pd.notna(r["radius_m"]) else ""
        rows.append(r)
    return _CHRONO.render(m=m, rows=rows)
