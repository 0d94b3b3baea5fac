"""lorry-2's position history as the haulier's spreadsheet export: a generic CSV.

Belgian spreadsheet conventions: ``;`` separator, decimal commas, local date and time
(Europe/Brussels) without an offset — so it must be ingested with ``--tz Europe/Brussels``
(the demo does; without it every row is refused as an ambiguous local time).
"""

from __future__ import annotations

from pathlib import Path

from .generate import SampleFile
from .scenario import Scenario


def write(sc: Scenario, out: Path) -> list[SampleFile]:
    """Write ``evidence/lorry-2/lorry-2_positions.csv``."""
    tr = sc.tracks["lorry-2"]
    folder = out / "evidence" / "lorry-2"
    folder.mkdir(parents=True, exist_ok=True)
    local = tr["t_utc"].dt.tz_convert(sc.tz)
    rows = ["Datum;Tijd;Breedtegraad;Lengtegraad;Snelheid (km/h);Koers"]
    for t, r in zip(local, tr.itertuples(), strict=True):
        course = "" if r.course_deg != r.course_deg else f"{r.course_deg:.0f}"
        rows.append(";".join([
            t.strftime("%d/%m/%Y"), t.strftime("%H:%M:%S"),
            f"{r.lat:.6f}".replace(".", ","), f"{r.lon:.6f}".replace(".", ","),
            f"{r.speed_mps * 3.6:.1f}".replace(".", ","), course]))
    path = folder / "lorry-2_positions.csv"
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8"))
    return [SampleFile(path=path.relative_to(out).as_posix(), subject_id="lorry-2",
                       tz=sc.tz, description="lorry-2 positions from the haulier (local time, "
                       "needs --tz Europe/Brussels)")]
