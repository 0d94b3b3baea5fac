"""phone-A's locations as a GPX 1.1 export (as forensic suites export a phone's track).

Times in UTC with ``Z``; one track per calendar day (UTC); accuracy in a GPX extension-free
``<hdop>``-less form: the fix source goes into ``<src>`` like GPSLogger does.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from .generate import SampleFile
from .scenario import Scenario


def write(sc: Scenario, out: Path) -> list[SampleFile]:
    """Write ``evidence/phone-A/phone-A_locations.gpx``."""
    tr = sc.tracks["phone-A"]
    folder = out / "evidence" / "phone-A"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<gpx version="1.1" creator="routetrace sample generator" '
             'xmlns="http://www.topografix.com/GPX/1/1">',
             f"<metadata><name>{escape('phone-A locations (sample case)')}</name></metadata>"]
    for day, g in tr.groupby(tr["t_utc"].dt.strftime("%Y-%m-%d"), sort=True):
        lines.append(f"<trk><name>{day}</name><trkseg>")
        for r in g.itertuples():
            lines.append(
                f'<trkpt lat="{r.lat:.7f}" lon="{r.lon:.7f}"><ele>{r.alt_m:.1f}</ele>'
                f"<time>{r.t_utc.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z</time>"
                f"<src>{r.fix_kind}</src></trkpt>")
        lines.append("</trkseg></trk>")
    lines.append("</gpx>")
    path = folder / "phone-A_locations.gpx"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [SampleFile(path=path.relative_to(out).as_posix(), subject_id="phone-A",
                       description="phone-A's location history exported as GPX (UTC times)")]
