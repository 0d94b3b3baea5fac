"""The investigator's notes as a KML of pins (no times): the case's named places.

As police pin places on a map while preparing hearings; these are places, not fixes.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from .generate import SampleFile
from .scenario import Scenario


def write(sc: Scenario, out: Path) -> list[SampleFile]:
    """Write ``evidence/case/investigator_pins.kml``."""
    folder = out / "evidence" / "case"
    folder.mkdir(parents=True, exist_ok=True)
    marks = "".join(
        f"<Placemark><name>{escape(name)}</name><description>{escape('pinned by the investigator')}"
        f"</description><Point><coordinates>{lon:.6f},{lat:.6f},0</coordinates></Point></Placemark>"
        for name, (lat, lon) in sorted(sc.places.items()))
    path = folder / "investigator_pins.kml"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">'
                    f"<Document><name>Investigator pins</name>{marks}</Document></kml>\n", encoding="utf-8")
    return [SampleFile(path=path.relative_to(out).as_posix(), subject_id=None,
                       description="investigator's pins of the case's places (KML, no times)")]
