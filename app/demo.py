"""The whole job on the bundled sample case: generate, ingest, analyse, export, exhibit.

``routetrace demo --out DIR`` calls :func:`run_demo`; a notebook can too.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..case import open_case
from ..maps.exhibit import exhibit_from_case
from ..samples import generate
from .analysis import run_carparks, run_chronology, run_copresence
from .corroborate import corroborate_case
from .export import export_case
from .ingest import ingest

__all__ = ["run_demo"]


def _noop(_: str) -> None:
    return None


def run_demo(
    out: Path,
    *,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
    log: Callable[[str], None] = _noop,
) -> dict[str, Any]:
    """Generate the sample case under ``out/sample``, ingest it into ``out/case`` and
    write the outputs under ``out/exports``. Returns a summary with every output path.

    Parameters
    ----------
    out : pathlib.Path
        The folder to write ``sample``, ``case`` and ``exports`` under.
    seed : int, default 7
        Seed of the sample scenario (7 is the documented sample case; the same seed gives the
        same bytes).
    progress : callable, optional
        Called with a file name while each file is ingested; default None: silent.
    log : callable, default no-op
        Called with one line per step.

    Returns
    -------
    dict
        Counts (``files_added``, ``rows``, ``rejected_records``, ``file_errors``,
        ``meetings``, ``carpark_visits``, ``verdicts``) and paths (``sample``, ``case``,
        ``exports``).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = run_demo(Path(tmp))
    ...     summary["file_errors"], summary["rows"]["fixes"] > 0
    (0, True)
    """
    out = Path(out)
    sample_dir, case_dir, export_dir = out / "sample", out / "case", out / "exports"
    files = generate(sample_dir, seed=seed)
    log(f"1. sample case written: {sample_dir} ({len(files)} evidence files, truth.json)")
    added = errors = rejected = 0
    for f in files:
        rep = ingest(case_dir, [sample_dir / f.path], subject_id=f.subject_id, tz=f.tz,
                     format=f.format, case_id="SAMPLE-2025-001", progress=progress)
        added += len(rep.added)
        errors += len(rep.errors)
        rejected += rep.rejected_records
        for _path, err in rep.errors:
            log(f"   not loaded: {err}")
    case = open_case(case_dir)
    counts = {k: len(case.table(k)) for k in ("fixes", "events", "places")}
    log(f"2. ingested into {case_dir}: {added} files, {errors} unreadable, {rejected} records "
        f"rejected; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    step = 3
    chrono = run_chronology(case_dir)
    log(f"{step}. chronology: {(chrono['kind'] == 'stop').sum()} stops, {(chrono['kind'] == 'trip').sum()} "
        f"trips, {(chrono['kind'] == 'gap').sum()} unobserved intervals ({case_dir / 'chronology.csv'})")
    step += 1
    cop = run_copresence(case_dir)
    log(f"{step}. co-presence: {len(cop['meetings'])} meeting(s) between subjects "
        f"(tables meetings, copresence_pairs)")
    step += 1
    cp = run_carparks(case_dir, geofences=sample_dir / "geofences" / "carparks.geojson")
    log(f"{step}. car parks: {cp['n_visits']} visit(s), {cp['n_night_door']} at night with a door "
        f"opening; figures in {case_dir / 'figures'}")
    step += 1
    cor = corroborate_case(case_dir, out=out / "corroboration")
    verdicts = cor.verdicts["verdict"].value_counts().to_dict() if len(cor.verdicts) else {}
    log(f"{step}. corroboration of indicated places: {verdicts} (CSV in {out / 'corroboration'})")
    step += 1
    static = shutil.which("chromium") is not None and importlib.util.find_spec("playwright") is not None
    exhibit_dir = out / "exhibit"
    written = exhibit_from_case(case_dir, out_dir=exhibit_dir, exhibit_no="1",
                                title="Sample case: journey Calais - Brussels - Zeebrugge",
                                static=static)
    log(f"{step}. exhibit: {exhibit_dir / 'exhibit.html'} and {len(written) - 1} other file(s)"
        + ("" if static else " (PNG/PDF skipped: install Debian's chromium for them)"))
    step += 1
    outputs: dict[str, list[str]] = {"exhibit": sorted(str(exhibit_dir / k) for k in written)}
    for fmt in ("csv", "geojson", "gpkg"):
        outputs[fmt] = [str(p) for p in export_case(case_dir, to=fmt, out=export_dir / fmt)]
    log(f"{step}. tables exported (csv, geojson, gpkg): {export_dir}")
    log(f"done: case {case_dir}, quality report {case_dir / 'quality.csv'}")
    return {"sample": str(sample_dir), "case": str(case_dir), "exports": outputs,
            "files_added": added, "file_errors": errors, "rejected_records": rejected,
            "rows": counts, "meetings": len(cop["meetings"]), "carpark_visits": cp["n_visits"],
            "verdicts": verdicts}
