"""Write the sample case's evidence files, each in its real format, plus ground truth.

Layout of the output folder::

    OUT/
      evidence/<subject_id>/...   evidence files of that subject (phone exports, tracker
                                   captures, portal exports), ingested with that subject id
      evidence/case/...           case-wide material (statements, investigator's KML pins)
      evidence/subjects.yaml      which evidence folder belongs to which subject and device
                                   (`routetrace ingest CASE OUT/evidence --subjects ...`)
      geofences/carparks.geojson  the car parks as an investigator would draw them (polygons;
                                   not evidence: input to `routetrace carparks`)
      truth.json                  the ground truth (stops, events, off intervals, verdicts)
      samples.json                one entry per evidence file: path, subject, tz, format,
                                   what it is (the demo ingests from this list)

Writers: one module per format, ``samples/write_<fmt>.py``, with
``write(sc: Scenario, out: Path) -> list[SampleFile | Path]`` writing under
``out / "evidence" / <subject_id>`` (or ``"case"``). A writer returning bare paths gets
the subject from the folder name. Writers must be deterministic: no wall-clock times,
fixed zip timestamps (1980-01-01), sorted members. Add a writer by one line in WRITERS.

Determinism: ``generate(out, seed=7)`` twice gives byte-identical files (tested).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .scenario import Scenario, build_scenario

__all__ = ["SampleFile", "WRITERS", "generate", "write_subjects"]


@dataclass(frozen=True)
class SampleFile:
    """One evidence file of the sample case and how to ingest it."""

    path: str  # relative to OUT, POSIX separators
    subject_id: str | None
    tz: str | None = None  # stated time zone for local times without offset
    format: str | None = None  # None: sniffed
    description: str = ""


def _writers() -> Sequence[Callable[[Scenario, Path], Sequence[SampleFile | Path]]]:
    # imported here so a writer's optional dependency never breaks the others' import
    from . import (
        write_csv,
        write_gpx,
        write_ios,
        write_kml,
        write_portal,
        write_statements,
        write_takeout,
        write_teltonika,
    )

    return (
        write_gpx.write,
        write_csv.write,
        write_statements.write,
        write_teltonika.write,
        write_ios.write,
        write_takeout.write,
        write_portal.write,
        write_kml.write,
    )


WRITERS = _writers


def _as_sample(item: SampleFile | Path, out: Path) -> SampleFile:
    if isinstance(item, SampleFile):
        return item
    rel = Path(item).resolve().relative_to(out.resolve())
    subject = rel.parts[1] if len(rel.parts) > 2 and rel.parts[0] == "evidence" else None
    return SampleFile(path=rel.as_posix(), subject_id=None if subject == "case" else subject)


def write_geofences(sc: Scenario, path: Path, *, half_size_m: float = 120.0) -> Path:
    """The case's car parks as squares of ``2 * half_size_m`` around each car park (GeoJSON)."""
    import math

    feats = []
    for name, (lat, lon) in sorted(sc.places.items()):
        if not name.endswith("carpark"):
            continue
        dlat = half_size_m / 111_320.0
        dlon = half_size_m / (111_320.0 * math.cos(math.radians(lat)))
        ring = [[round(lon + sx * dlon, 7), round(lat + sy * dlat, 7)]
                for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))]
        feats.append({"type": "Feature", "properties": {"name": name},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, indent=1) + "\n",
                    encoding="utf-8")
    return path


def write_subjects(sc: Scenario, files: Sequence[SampleFile], path: Path) -> Path:
    """The subjects mapping an investigator would write for the sample case
    (``routetrace ingest CASE evidence --subjects evidence/subjects.yaml``): one device per
    subject, its patterns the evidence folders holding that subject's files. Written as
    plain text (no YAML library): the file is as a person would type it.

    Parameters
    ----------
    sc : Scenario
        The scenario (its subjects' descriptions and devices).
    files : sequence of SampleFile
        The evidence files written (paths relative to the output folder).
    path : pathlib.Path
        The mapping file to write (``OUT/evidence/subjects.yaml``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> files = [SampleFile("evidence/lorry-1/lorry-1_fmb125.bin", "lorry-1")]
    >>> p = write_subjects(build_scenario(7), files, Path(tmp.name) / "subjects.yaml")
    >>> print(p.read_text().split("subjects:")[1].strip())
    - id: lorry-1
        kind: vehicle
        label: "tracked lorry used for the transport"
        devices:
          - id: lorry-1-tracker
            kind: tracker
            label: "Teltonika FMB125"
            paths: [lorry-1/*]
    >>> tmp.cleanup()
    """
    folders: dict[str, list[str]] = {}
    for f in files:
        parts = Path(f.path).parts
        if f.subject_id and len(parts) > 2:
            folders.setdefault(f.subject_id, [])
            if parts[1] not in folders[f.subject_id]:
                folders[f.subject_id].append(parts[1])
    lines = ["# Which evidence belongs to whom: paths are relative to this file's folder.",
             "# An extraction and an export of the same phone are ONE device.", "subjects:"]
    for sid in sorted(folders):
        info = sc.subjects.get(sid, {})
        person = info.get("kind") == "phone"
        device = info.get("model") or info.get("tracker") or "device"
        lines += [f"  - id: {sid}",
                  f"    kind: {'person' if person else 'vehicle'}",
                  f"    label: \"{info.get('description', sid)}\"",
                  "    devices:",
                  f"      - id: {sid}-{'phone' if person else 'tracker'}",
                  f"        kind: {'phone' if person else 'tracker'}",
                  f"        label: \"{device}\"",
                  f"        paths: [{', '.join(p + '/*' for p in sorted(folders[sid]))}]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def generate(out: str | Path, *, seed: int = 7) -> list[SampleFile]:
    """Write the sample case under ``out`` and return its evidence files.

    Parameters
    ----------
    out : str or pathlib.Path
        The output folder (made if missing; see the module docstring for its layout).
    seed : int
        Seed of the scenario (:func:`routetrace.samples.scenario.build_scenario`); the same
        seed writes byte-identical files.

    Returns
    -------
    list of SampleFile
        The evidence files, sorted by path, with the subject, time zone and format to
        ingest each with (also written to ``samples.json``).

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> files = generate(tmp.name, seed=7)
    >>> len(files), sorted({f.subject_id for f in files if f.subject_id})
    (12, ['lorry-1', 'lorry-2', 'phone-A', 'phone-B'])
    >>> sorted(p.name for p in Path(tmp.name).iterdir())
    ['evidence', 'geofences', 'samples.json', 'truth.json']
    >>> tmp.cleanup()
    """
    root = Path(out)
    (root / "evidence").mkdir(parents=True, exist_ok=True)
    sc = build_scenario(seed)
    files: list[SampleFile] = []
    for write in WRITERS():
        files.extend(_as_sample(x, root) for x in write(sc, root))
    files.sort(key=lambda f: f.path)
    write_geofences(sc, root / "geofences" / "carparks.geojson")
    write_subjects(sc, files, root / "evidence" / "subjects.yaml")
    (root / "truth.json").write_text(
        json.dumps(sc.truth(), indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    (root / "samples.json").write_text(
        json.dumps([asdict(f) for f in files], indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return files
