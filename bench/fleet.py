"""A fleet through the case store: tracker files -> ingest -> car-park visits and co-presence
on Dask read straight from the store.

The fleet is a haulier's: a fixed fleet of 500 lorries (``FLEET``) over as many days as the
size needs (about 2 days at 1e6 fixes, 3 weeks at 1e7, half a year at 1e8), moving between
40 motorway car parks as in ``bench/carparks.py`` (30 s fixes while driving, hourly fixes
while parked). The density of lorries per car park is the same at every size, so the
co-presence pairs grow with the fixes, as they do when a case covers more days. (Until
this version the size added lorries, 20,000 fixes each, to the same car parks: pairs grew
with the square of the fixes; the figures of the two versions do not compare at 1e6.)

Each lorry and UTC day is written as real portal exports, as a haulier's portal gives them:
a positions report (Traccar columns ``Device, Fix Time, Latitude, Longitude``, UTC ISO-8601
times) and an event report (ignition off when a lorry parks, ignition on when it leaves, a
cargo door opened during one stop in four), both read by routetrace's portal loader, in one
folder per lorry; a subjects mapping names each folder's lorry. For each size this runs,
each in a fresh process:

1. ``routetrace ingest CASE FLEET --subjects FLEET/subjects.yaml`` (one part per file, so
   one lorry-day per part);
2. car-park visits and co-presence pairs with Dask on a LocalCluster of 1 and of 2 workers,
   the workers reading the fixes from the case's parts, as ``routetrace carparks/copresence
   --dask`` does: visits on partitions of whole lorries (``Case.dask_table(...,
   whole_subjects=True)``), co-presence one UTC day per task, each reading only the parts of
   its day and the ``max_dt`` before it (``Case.time_slices``); no shuffle in either;
   parallel efficiency is T1 / (2 x T2);
3. at the first size, the same stages in memory on the client, and a check that the results
   are equal (a hash of every row).

Usage: python bench/fleet.py [--sizes 1e6,1e7] [--out bench/results/fleet.md]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import carparks as cp
from _measure import measure
from _provenance import provenance_line

#: lorries in the fleet, at every size: a size is more days of the same fleet
FLEET = 500


#: a gap between fixes this long or longer is parked time (30 s while driving, hourly parked)
PARKED_GAP_S = 600


def lorry_events(t: pd.Series, device: str, rng: np.random.Generator) -> pd.DataFrame:
    """The portal event report of one lorry from its fix times ``t`` (sorted): ignition off
    at the first fix of each parked stretch, ignition on at its last, a door opened at the
    middle of one stop in four."""
    s = t.to_numpy(dtype="datetime64[s]").astype(np.int64)
    parked = np.diff(s) >= PARKED_GAP_S  # fix i is followed by parked time
    starts = np.flatnonzero(parked & ~np.r_[False, parked[:-1]])
    ends = np.flatnonzero(parked & ~np.r_[parked[1:], False]) + 1
    door = rng.random(len(starts)) < 0.25
    times = np.r_[s[starts], s[ends], (s[starts[door]] + s[ends[door]]) // 2]
    kinds = np.r_[np.full(len(starts), "Ignition off"), np.full(len(ends), "Ignition on"),
                  np.full(int(door.sum()), "Door open")]
    order = np.argsort(times, kind="stable")
    return pd.DataFrame({"Device": device,
                         "Fix Time": pd.to_datetime(times[order], unit="s").strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "Type": kinds[order]})


def write_fleet(n: int, folder: Path) -> tuple[int, int, int]:
    """Write about ``n`` fixes of :data:`FLEET` lorries as a positions report and an event
    report per lorry and UTC day (``FOLDER/lorry-7/2025-01-06.csv``, ``..._events.csv``), a
    subjects mapping and the geofences. Returns (fixes written, files, days spanned)."""
    rng = np.random.default_rng(11)
    cp.PER_VEHICLE = max(1, n // FLEET)
    # the lorries' tracks as arrays (24 bytes a fix), written a lorry at a time: the fleet
    # as one table of fixes (cp.fleet) does not fit this machine at 1e8
    tracks = {f"lorry-{v}": track for v, track in enumerate(cp.tracks(n))}
    folder.mkdir(parents=True)
    entries = []
    files = fixes = 0
    days: set[pd.Timestamp] = set()
    for subject in sorted(tracks):  # as a groupby of the fleet's table by subject_id
        secs, lat, lon = tracks.pop(subject)
        device = f"{subject}-tracker"
        (folder / str(subject)).mkdir()
        t = pd.Series(pd.to_datetime(secs, unit="s", utc=True).astype("datetime64[ns, UTC]"))
        fixes += len(t)
        days |= set(t.dt.floor("D").unique())
        ev = lorry_events(t, device, rng)
        pos = pd.DataFrame({"Device": device, "Fix Time": t.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "Latitude": pd.Series(lat).round(6), "Longitude": pd.Series(lon).round(6)})
        for day, rows in pos.groupby(pos["Fix Time"].str[:10], sort=True):
            rows.to_csv(folder / str(subject) / f"{day}.csv", index=False, lineterminator="\n")
            files += 1
        for day, rows in ev.groupby(ev["Fix Time"].str[:10], sort=True):
            rows.to_csv(folder / str(subject) / f"{day}_events.csv", index=False, lineterminator="\n")
            files += 1
        entries.append(f"  - id: {subject}\n    kind: vehicle\n    devices:\n"
                       f"      - id: {device}\n        kind: tracker\n"
                       f"        paths: [{subject}/*]\n")
    (folder / "subjects.yaml").write_text("subjects:\n" + "".join(entries), encoding="utf-8")
    cp.parks(cp.n_parks(n))[1].to_file(folder.parent / "carparks.geojson", driver="GeoJSON")
    return fixes, files, len(days)


def do_ingest(case: str, fleet: str) -> dict[str, int]:
    from routetrace.app.ingest import ingest

    rep = ingest(case, [fleet], subjects=str(Path(fleet) / "subjects.yaml"), case_id="FLEET")
    return {"files": len(rep.added), "errors": len(rep.errors), **rep.rows}  # rows: events too


def _digest(df: pd.DataFrame) -> tuple[int, str]:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].astype(str)
    return len(df), format(int(pd.util.hash_pandas_object(out, index=False).sum()) & (2**64 - 1), "016x")


def do_stage(stage: str, case: str, fences: str, workers: int) -> tuple[int, str]:
    """The stage's computation on a LocalCluster of ``workers``, fixes read from the store."""
    from routetrace.case import open_case
    from routetrace.loaders.geofences import load_geofences
    from routetrace.routes.distributed import (
        STAGE_COLUMNS,
        dask_carpark_visits,
        dask_client,
        dask_copresence_by_period,
    )

    c = open_case(case)
    with dask_client(n_workers=workers):
        if stage == "carparks":  # as `routetrace carparks --dask`: partitions of whole subjects,
            # each task reading its subjects' fixes and events
            t = c.dask_tables_by_subject(["fixes", "events"], columns={"fixes": STAGE_COLUMNS})
            return _digest(dask_carpark_visits(t["fixes"], load_geofences(fences), events=t["events"],
                                               shuffle=False))
        # as `routetrace copresence --dask`: one task per UTC day, reading that day's parts
        days = c.time_slices("fixes", reach_back=pd.Timedelta("10min"), columns=STAGE_COLUMNS)
        return _digest(dask_copresence_by_period(days, max_dt=pd.Timedelta("10min")))


def do_in_memory(stage: str, case: str, fences: str) -> tuple[int, str]:
    """The same stage in memory on the client (the whole fixes table loaded)."""
    from routetrace.case import open_case
    from routetrace.loaders.geofences import load_geofences
    from routetrace.routes.carparks import find_carpark_visits
    from routetrace.routes.copresence import find_copresence_pairs

    c = open_case(case)
    if stage == "carparks":
        return _digest(find_carpark_visits(c.table("fixes"), load_geofences(fences), events=c.table("events")))
    return _digest(find_copresence_pairs(c.table("fixes")))


def run_size(n: int, tmp: Path, *, compare: bool) -> dict[str, Any]:
    work = tmp / f"n{n}"
    # in a child too: the parent stays small, so the forked children measured below do not
    # inherit (and count) the memory that generating the fleet took
    write_s, _, (fixes, files, days) = measure(write_fleet, n, work / "fleet")
    row: dict[str, Any] = {"n": fixes, "files": files, "days": days, "write_s": write_s}
    case, fences = str(work / "case"), str(work / "carparks.geojson")
    # measure's default limit is an hour: the 1e8 ingest (230,000 files at about 20 ms each)
    # takes longer, and was stopped at 141,000 files by it
    row["ingest_s"], row["ingest_mib"], row["ingest"] = measure(do_ingest, case, str(work / "fleet"),
                                                                timeout_s=6 * 3600)
    if row["ingest"]["errors"] or row["ingest"]["files"] != files:
        raise SystemExit(f"the ingest did not read every fleet file: {row['ingest']}")
    parts = list((work / "case" / "tables" / "fixes").rglob("*.parquet"))
    row["parts"] = len(parts)
    row["store_mib"] = sum(p.stat().st_size for p in (work / "case").rglob("*") if p.is_file()) / 2**20
    for stage in ("carparks", "copresence"):
        for w in (1, 2):
            s, mib, out = measure(do_stage, stage, case, fences, w, timeout_s=3 * 3600)
            row[f"{stage}_{w}"] = (s, mib, out)
        t1, t2 = row[f"{stage}_1"][0], row[f"{stage}_2"][0]
        row[f"{stage}_eff"] = t1 / (2 * t2)
        if compare:
            row[f"{stage}_mem"] = measure(do_in_memory, stage, case, fences)
            row[f"{stage}_equal"] = row[f"{stage}_mem"][2] == row[f"{stage}_1"][2] == row[f"{stage}_2"][2]
    shutil.rmtree(work)
    return row


#: The code these figures measure (written on the results' provenance line).
MEASURES = ("bench/fleet.py", "case.py", "app/ingest.py", "app/analysis.py", "routes/distributed.py",
            "routes/carparks.py", "routes/copresence.py")


def report(rows: list[dict[str, Any]], *, prov: str, command: str, load: str, minutes: float) -> list[str]:
    """The results file's lines; ``prov``: the provenance line written when the run began
    (commit, measured files not committed, command, machine load)."""
    lines = [
        "# A fleet through the case store (bench/fleet.py)", "", prov, "",
        f"command: `{command}`; python {platform.python_version()}, pandas {pd.__version__}, "
        f"{os.cpu_count()} CPU cores, {load}.",
        "",
        "**This machine is shared with other engineers (2 cores, up to 8 people): the load "
        "average above was measured at the start of the run; times vary about 2x between runs.**",
        "",
        f"Fleet: {FLEET} lorries at every size (a size is more days of the same fleet, so the "
        "density of lorries per car park, and the co-presence per fix, stay the same; in earlier "
        "versions of this bench a size added lorries of 20,000 fixes to the same 40 car parks, so its "
        "pairs grew with the square of the fixes and its 1e6 figures do not compare with these). "
        "Per lorry and UTC day, a portal positions report and a portal event report (ignition "
        "off/on at each stop, a door opened at one stop in four; UTC times), in a folder per "
        "lorry; a subjects mapping. Peak memory is the "
        "largest summed RSS of the process and its children (Dask workers included).",
        "",
        "| fixes | days | events | files | write CSV (s) | ingest (s) | ingest peak MiB | fixes parts | case MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['n']:.0e} | {r['days']} | {r['ingest']['events']:,} | {r['files']:,} | {r['write_s']:.1f} | {r['ingest_s']:.1f} | "
                     f"{r['ingest_mib']:.0f} | {r['parts']} | {r['store_mib']:.0f} |")
    lines += ["", "Stages from the store (Dask LocalCluster; the workers read the case's parts, with no "
              "shuffle: car-park visits on partitions of whole lorries, co-presence one UTC day per "
              "task reading that day's parts and the 10 min before it; the time runs from starting "
              "the LocalCluster (about 1.2 s, and 0.2 s to close it, in both columns) through "
              "reading the parts' footers on the client to the result on the client):", "",
              "| fixes | stage | 1 worker (s) | 2 workers (s) | parallel efficiency | peak MiB (2 workers) | result |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        for stage, what in (("carparks", "visits"), ("copresence", "pairs")):
            (t1, _, _), (t2, m2, out) = r[f"{stage}_1"], r[f"{stage}_2"]
            lines.append(f"| {r['n']:.0e} | {stage} | {t1:.1f} | {t2:.1f} | {r[f'{stage}_eff']:.0%} | "
                         f"{m2:.0f} | {out[0]:,} {what} |")
    for r in rows:
        if "carparks_equal" in r:
            cm, pm = r["carparks_mem"], r["copresence_mem"]
            same = {k: "equal" if r[f"{k}_equal"] else "DIFFERENT" for k in ("carparks", "copresence")}
            lines += ["", f"At {r['n']:.0e}, the same stages in memory on the client (the whole fixes "
                      f"table loaded): car-park visits {cm[0]:.1f} s, {cm[1]:.0f} MiB, result "
                      f"{same['carparks']} to the Dask results (1 and 2 workers; hash of every row); "
                      f"co-presence pairs {pm[0]:.1f} s, {pm[1]:.0f} MiB, result {same['copresence']}."]
    for a, b in itertools.pairwise(rows):  # the issue asks the 1e8 ingest peak <= 1.2x the 1e7 one
        lines += ["", f"Ingest peak at {b['n']:.0e} / at {a['n']:.0e}: {b['ingest_mib']:.0f} / "
                  f"{a['ingest_mib']:.0f} MiB = {b['ingest_mib'] / a['ingest_mib']:.2f}x for "
                  f"{b['files'] / a['files']:.1f}x the files."]
    missing = [f"{n:.0e}" for n in (10**7, 10**8) if not any(abs(r["n"] - n) < n / 10 for r in rows)]
    lines += ["", f"This run took {minutes:.1f} minutes."
              + (f" Not run here: {', '.join(missing)}." if missing else "") + " No figure is extrapolated."]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1e6,1e7")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "fleet.md"))
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    command = ("python bench/fleet.py " + " ".join(sys.argv[1:])).strip()
    prov = provenance_line(command=command, measures=MEASURES, style="markdown")
    load = "load average {:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg())
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="routetrace-fleet-") as tmp:
        for k, n in enumerate(sizes):
            rows.append(run_size(n, Path(tmp), compare=k == 0))
            print(rows[-1], flush=True)
    lines = report(rows, prov=prov, command=command, load=load, minutes=(time.perf_counter() - t0) / 60)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
