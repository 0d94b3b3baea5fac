"""Regenerate docs/validation.md: routetrace's published accuracy figures, from one command.

Sections (each between ``<!-- section:NAME -->`` markers so tests can compare them):

``loaders``        record counts of every file of ../shared/realdata (records read, fixes,
                   events, places, rejects) against the figures stated in SOURCES.md and the
                   issues' done-when lists, marked match / MISMATCH / not loaded.
``stops``          stop detection (routetrace.routes.detect_stops) against the simulator's
                   ground truth (routetrace.samples.simulate) across device kinds, sampling
                   regimes and noise levels: precision, recall, F1, median arrival and
                   departure errors.
``copresence``     co-presence meetings (routetrace.routes.copresence.detect_copresence)
                   against a small simulator of subjects meeting at known places and times,
                   with near misses (same place at another time, same time 400 m apart).
``corroboration``  corroboration verdicts against ground truth: statements of every verdict
                   (supported, contradicted, not observed, inconclusive) on the sample
                   case's simulator over several seeds, as a confusion table
                   (bench/validate_corroboration.py); then the sample case's own
                   statements against its truth.json.
``errors``         known error sources, with the measured share of fixes whose true position
                   lies outside their stated accuracy circle.

Deterministic: fixed seeds, no wall-clock times, no machine names; the same code and data
give the same bytes. Usage::

    python bench/validate.py                 # writes docs/validation.md
    python bench/validate.py --check         # exit 1 if docs/validation.md differs
    python bench/validate.py --sections stops,copresence --out -   # print some sections
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
REALDATA = ROOT.parent / "shared" / "realdata"
DOC = ROOT / "docs" / "validation.md"
SECTIONS = ("loaders", "stops", "copresence", "corroboration", "errors")
SKIP = ("SHA256SUMS", "SOURCES.md", "-wal", "-shm", "-journal")


# --- (a) loader record counts on the real corpus ------------------------------------------

def _non_command_rejects(res: Any) -> int:
    return int((~res.rejects["reason"].astype(str).str.startswith("command frame")).sum())


def _visit_rows(res: Any) -> int:
    pl = res.places[res.places["kind"] == "visit"]
    return int(sum(json.loads(e).get("rows", 1) for e in pl["extra"].astype(str)))


GETTERS: dict[str, Callable[[Any], int]] = {
    "records": lambda r: int(r.records_read),
    "fixes": lambda r: len(r.fixes),
    "events": lambda r: len(r.events),
    "places": lambda r: len(r.places),
    "rejects": lambda r: len(r.rejects),
    "fused fixes": lambda r: int((r.fixes["fix_kind"] == "fused").sum()),
    "hints": lambda r: int((r.fixes["fix_kind"] == "hint").sum()),
    "visit rows": _visit_rows,
    "non-command rejects": _non_command_rejects,
}

#: Expected figures, each as stated in ../shared/realdata/SOURCES.md (S) or in an issue's
#: done-when list (I3: GPX/CSV, I4: iOS, I5: Google/KML/FIT/NMEA, I11: Teltonika).
EXPECTED: dict[str, tuple[str, dict[str, int]]] = {
    "csv/dawarich_semicolon_eu.csv": ("S: 3 rows", {"fixes": 3}),
    "csv/gpsbabel_24173415.CSV": ("S: 742 rows", {"fixes": 742}),
    "csv/gpsbabel_garmin_g1000.csv": ("S: 441 1-Hz rows", {"fixes": 441}),
    "csv/gpsbabel_mtk_logger.csv": ("S: 817 rows, 14 'No fix'",
                                    {"records": 817, "fixes": 803, "rejects": 14}),
    "csv/gpsbabel_v900_basic_mode.csv": ("S: 14 rows", {"fixes": 14}),
    "csv/reitti_trip_1.csv": ("S: 39 rows", {"fixes": 39}),
    "gpx/dawarich_arc_example.gpx": ("S: 1 wpt, 6 trkpts", {"fixes": 6, "places": 1}),
    "gpx/gpxpy_Mojstrovka.gpx": ("S: 184 trkpts, all times 1901 (invalid)",
                                 {"fixes": 0, "rejects": 184}),
    "gpx/gpxpy_around-visnjan-with-car.gpx": ("S: 104 trkpts", {"fixes": 104}),
    "gpx/gpxpy_cerknicko-without-times.gpx": ("S: 296 trkpts, 5 timed; 7 wpts",
                                              {"fixes": 5, "places": 7, "rejects": 291}),
    "gpx/gpxpy_track-with-empty-segment.gpx": ("S: 9 trkpts", {"fixes": 9}),
    "gpx/gpxpy_track-with-less-sec-time.gpx": ("S: 2 trkpts", {"fixes": 2}),
    "gpx/gpxpy_unicode_with_bom.gpx": ("S: 1 wpt", {"places": 1}),
    "gpx/reitti_gpslogger_20250531.gpx": ("S: 2,567 trkpts", {"fixes": 2567}),
    "ios/photos_osxphotos_10.15.7/Photos.sqlite": ("I4: 29 assets, 13 with location",
                                                   {"records": 29, "fixes": 13}),
    "ios/photos_osxphotos_26.1/Photos.sqlite": ("I4: 16 assets, 3 with location",
                                                {"records": 16, "fixes": 3}),
    "ios/routined_jads/Cache.sqlite": ("I4: 12,848 fixes, 365 visit rows, 522 hints",
                                       {"fused fixes": 12848, "visit rows": 365, "hints": 522}),
    "ios/routined_jads/oud_Cache.sqlite": ("S: 15,184 fixes, 495 visit rows, 638 hints",
                                           {"fused fixes": 15184, "visit rows": 495, "hints": 638}),
    "ios/consolidated_danielmihalcea_2011.db": ("I4: 209 zero placeholders rejected",
                                                {"rejects": 209}),
    "ios/knowledgeC_plaso_macos10.14.db": ("S: zero location rows", {"fixes": 0}),
    "takeout/other/dawarich_timeline_edits.json": ("S: 1 position", {"fixes": 1}),
    "takeout/records/dawarich_records.json": ("S: 3 locations", {"fixes": 3}),
    "takeout/records/dogsheep_Location_History.json": ("S: 2 locations", {"fixes": 2}),
    "takeout/records/reitti_Records.json": ("S: 95 locations, 47 with activity",
                                            {"fixes": 95, "events": 47}),
    "takeout/semantic/dawarich_semantic_history.json": ("S: 3 activitySegments", {"events": 3}),
    "takeout/semantic/dawarich_semantic_history_with_bom.json": ("S: 1 segment", {"events": 1}),
    "takeout/semantic/gpsbabel_2013_JUNE.json": ("S: 167 activitySegments, 120 raw points",
                                                 {"fixes": 120, "events": 167}),
    "takeout/semantic/gpsbabel_2013_MAY.json": ("S: 84 activitySegments, 128 raw points",
                                                {"fixes": 128, "events": 84}),
    "takeout/timeline_android/reitti_timeline_from_android_randomized.json": (
        "S: 7 visits, 5 activities, 80 path points + 3 positions",
        {"fixes": 83, "events": 5, "places": 7}),
    "takeout/timeline_ios/dawarich_location-history.json": ("S: 1 visit, 10 path points",
                                                            {"fixes": 10, "places": 1}),
    "takeout/timeline_ios/reitti_timeline_from_ios_randomized.json": (
        "S: 26 visits, 24 activities", {"places": 26, "events": 24}),
    "teltonika/traccar_TeltonikaProtocolDecoderTest.hex": (
        "S/I11: 9 broken frames + 1 junk byte rejected", {"non-command rejects": 10}),
    "teltonika/alim-zanibekov_teltonika_test.hex": (
        "S/I11: 13 broken frames rejected", {"non-command rejects": 13}),
    "kml/gpsbabel_Placemark-Track-1.kml": ("S: 7 when/coord pairs", {"fixes": 7}),
    "kml/gpsbabel_google_ext.kml": ("S: 451 gx:coord/when pairs", {"fixes": 451}),
    "kml/dawarich_points_with_timestamps.kmz": ("S: 3 timed Points", {"records": 3}),
    "nmea/gpsbabel_track.nmea": ("S: 154 GGA/RMC epochs at 1 Hz", {"fixes": 154}),
    "nmea/pynmeagps_nmeastartup.log": ("S: no position at all", {"fixes": 0}),
    "fit/fitparse_activity-small-fenix2-run.fit": ("S: 2,809 records with position",
                                                   {"fixes": 2809}),
    "fit/fitparse_edge200_2015-10-13-08-43-15.fit": ("S: 221 records with position",
                                                     {"fixes": 221}),
    "fit/fitparse_garmin-fenix-5-bike.fit": ("S: 19 records with position", {"fixes": 19}),
    "fit/reitti_edge840_sample.fit": ("S: 591 records with position", {"fixes": 591}),
    "fit/gpsbabel_Lctns_Instinct.fit": ("S: 10 saved places", {"places": 10}),
    "fit/gpsbabel_fitlocations-sample.fit": ("S: 2 saved places", {"places": 2}),
}

#: Where a stated figure is itself wrong, the reason (checked against the file's bytes).
NOTES: dict[str, str] = {
    "csv/gpsbabel_garmin_g1000.csv": "the file has 442 data lines after its 3 header lines; "
                                     "SOURCES.md's 441 is off by one",
}


def _rel(shown: str) -> str:
    p = shown.replace("\\", "/")
    base = REALDATA.as_posix() + "/"
    return p[len(base):] if p.startswith(base) else p


def section_loaders(realdata: Path = REALDATA) -> str:
    from routetrace.loaders import load_many

    if not realdata.exists():
        return "../shared/realdata is absent here: section not computed.\n"
    rows: list[dict[str, Any]] = []
    for f in sorted(p for p in realdata.rglob("*") if p.is_file()):
        if f.name.endswith(SKIP):
            continue
        outcomes = list(load_many(f))
        rel = _rel(str(f))
        results = [o for o in outcomes if o.result is not None]
        errors = [o for o in outcomes if o.error is not None]
        if results and len(outcomes) == 1:
            res = results[0].result
            got = {k: g(res) for k, g in GETTERS.items() if k in ("records", "fixes", "events",
                                                                  "places", "rejects")}
            fmt = res.source["format"].iloc[0] if "format" in res.source else ""
        elif results:  # an archive expanded into members: sum them
            got = {k: sum(GETTERS[k](o.result) for o in results)
                   for k in ("records", "fixes", "events", "places", "rejects")}
            fmt = "+".join(sorted({str(o.result.source["format"].iloc[0]) for o in results}))
        else:
            got, fmt = {}, ""
        exp_text, exp = EXPECTED.get(rel, ("", {}))
        if not results:
            msg = errors[0].error.message if errors and errors[0].error is not None else "no result"
            status = "not loaded: " + ("no loader registered" if "no loader recognises" in msg
                                       else msg.split(";")[0][:80])
        elif not exp:
            status = "(no stated figure)"
        else:
            res0 = results[0].result if len(results) == 1 else None
            bad = []
            for k, v in exp.items():
                if k in got:
                    have = got[k]
                elif res0 is not None:
                    have = GETTERS[k](res0)
                else:
                    have = -1
                if have != v:
                    bad.append(f"{k} {have} ≠ {v}")
            status = "match" if not bad else "MISMATCH: " + "; ".join(bad)
            if bad and rel in NOTES:
                status += f" ({NOTES[rel]})"
        rows.append({"file": rel, "format": fmt, **{k: got.get(k, "") for k in
                     ("records", "fixes", "events", "places", "rejects")},
                     "expected": exp_text, "status": status})
    df = pd.DataFrame(rows)
    n_exp = int((df["expected"] != "").sum())
    n_match = int((df["status"] == "match").sum())
    n_mis = int(df["status"].str.startswith("MISMATCH").sum())
    n_nl = int(df["status"].str.startswith("not loaded").sum())
    out = [f"{len(df)} files; {int((~df['status'].str.startswith('not loaded')).sum())} loaded. "
           f"Of {n_exp} files with a stated figure: {n_match} match, {n_mis} mismatch, "
           f"{n_exp - n_match - n_mis} not loaded. Files not loaded in all: {n_nl}.", "",
           "| file | format | records | fixes | events | places | rejects | stated | status |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| " + " | ".join(str(r[c]).replace("|", "/") for c in
                   ("file", "format", "records", "fixes", "events", "places", "rejects",
                    "expected", "status")) + " |")
    return "\n".join(out) + "\n"


# --- (b) stop detection on the simulator ---------------------------------------------------

#: (device, sampling, noise) conditions; each is run without and with boundary fixes.
STOP_RUNS: tuple[tuple[str, str, float], ...] = (
    ("truck", "normal", 1.0), ("truck", "normal", 3.0),
    ("phone", "normal", 0.5), ("phone", "normal", 1.0), ("phone", "normal", 2.0),
    ("phone", "normal", 3.0), ("phone", "sparse", 1.0), ("phone", "sparse", 2.0),
)


def _drop_boundary_fixes(fixes: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Remove the fixes the simulator records at a stay's boundaries: at the arrival instant,
    0.5 s before departure, and the drive's first fix at the departure instant (still at the
    stay's position)."""
    t = fixes["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    keys = set(zip(fixes["subject_id"].astype(str), t, strict=True))
    drop: set[tuple[str, int]] = set()
    for r in truth.itertuples():
        a, d = int(pd.Timestamp(r.t_arrival).value), int(pd.Timestamp(r.t_departure).value)
        for cand in (a, d - 500_000_000, d):
            if (r.subject_id, cand) in keys:
                drop.add((r.subject_id, cand))
    mask = np.array([(s, v) not in drop for s, v in zip(fixes["subject_id"].astype(str), t, strict=True)])
    return fixes[mask].reset_index(drop=True)


def _bounding_fix_off(fixes: pd.DataFrame, stops: pd.DataFrame, truth: pd.DataFrame,
                      cov: pd.DataFrame, factor: float = 3.0) -> tuple[int, int]:
    """Bound misses, and of them those whose bounding fix was taken during the true stay with
    a true error above ``factor`` times its stated accuracy: the evidence itself places the
    subject elsewhere beyond what its accuracy allows (a split stay's middle fix, usually).

    ``cov`` is ``bounds_coverage(stops, truth)`` (rows in ``match_stops`` order).
    """
    from routetrace.geodesy import haversine_m
    from routetrace.samples.simulate import match_stops

    m = match_stops(stops, truth)
    t_fix = fixes["t_utc"]
    misses = off = 0
    for i, (di, ti) in enumerate(zip(m["detected"], m["truth"], strict=True)):
        s, tr = stops.loc[di], truth.loc[ti]
        for within, col in ((cov["arrival_within"].iat[i], "t_arrival_after"),
                            (cov["departure_within"].iat[i], "t_departure_before")):
            if within:
                continue
            misses += 1
            tb = s[col]
            if pd.isna(tb) or not (tr["t_arrival"] <= tb <= tr["t_departure"]):
                continue
            fx = fixes[(fixes["subject_id"] == s["subject_id"]) & (t_fix == tb)]
            if len(fx):
                err = float(haversine_m(fx["lat"].iat[0], fx["lon"].iat[0], tr["lat"], tr["lon"]))
                off += int(err > factor * float(fx["h_acc_m"].iat[0]))
    return misses, off


def _elsewhere_factors(linked: pd.DataFrame, stops: pd.DataFrame) -> list[float]:
    """Each subject's elsewhere factor (``routetrace.routes.stops.elsewhere_factor``),
    recomputed from the stop members' distances to their stop's centre."""
    from routetrace.geodesy import haversine_m
    from routetrace.routes.stops import elsewhere_factor

    m = linked[linked["stop_role"] == "member"].merge(
        stops[["stop_id", "lat", "lon"]], on="stop_id", suffixes=("", "_c"))
    if m.empty:
        return []
    ratio = haversine_m(m["lat"].to_numpy(), m["lon"].to_numpy(), m["lat_c"].to_numpy(),
                        m["lon_c"].to_numpy()) / m["h_acc_m"].to_numpy(dtype=float)
    code, names = pd.factorize(m["subject_id"])
    return [float(x) for x in elsewhere_factor(code, ratio, n_subjects=len(names))]


def _stop_row(kind: str, regime: str, noise: float, boundary: bool, n_fixes: int,
              seeds: tuple[int, ...]) -> dict[str, Any]:
    """Score one condition over ``seeds``; ``boundary`` keeps the simulator's boundary fixes."""
    from routetrace.routes import detect_stops
    from routetrace.samples.simulate import bounds_coverage, score_stops, simulate

    tot: dict[str, float] = {"tp": 0.0, "detected": 0.0, "true": 0.0}
    arr: list[float] = []
    dep: list[float] = []
    n = 0
    cov: list[pd.DataFrame] = []
    misses = [0, 0]
    factors: list[float] = []
    for seed in seeds:
        f, ev, truth = simulate(n_fixes=n_fixes, kind=kind, seed=seed, noise_scale=noise,
                                regime=regime)
        if not boundary:
            f = _drop_boundary_fixes(f, truth)
        n += len(f)
        linked, stops = detect_stops(f, events=ev if kind == "truck" else None)
        factors.extend(_elsewhere_factors(linked, stops))
        s = score_stops(stops, truth)
        cov.append(bounds_coverage(stops, truth))
        miss, off = _bounding_fix_off(f, stops, truth, cov[-1])
        misses[0] += miss
        misses[1] += off
        for k in tot:
            tot[k] += s[k]
        arr.append(s["median_arrival_error_s"])
        dep.append(s["median_departure_error_s"])
    p = tot["tp"] / tot["detected"] if tot["detected"] else 1.0
    r = tot["tp"] / tot["true"] if tot["true"] else 1.0
    return {"device": kind, "sampling": regime, "noise": noise, "boundary fixes": boundary,
            "fixes": n, "true stops": int(tot["true"]), "detected": int(tot["detected"]),
            "precision": p, "recall": r, "F1": 2 * p * r / (p + r) if p + r else 0.0,
            "median arrival error (s)": float(np.mean(arr)),
            "median departure error (s)": float(np.mean(dep)),
            **_coverage_figures(pd.concat(cov, ignore_index=True)),
            "bound misses": misses[0], "misses by a fix off > 3x": misses[1],
            "elsewhere factor": float(np.median(factors)) if factors else float("nan")}


def stop_scores(n_fixes: int = 20_000, seeds: tuple[int, ...] = (1, 2)) -> pd.DataFrame:
    """Every condition of STOP_RUNS without boundary fixes (primary), then with them."""
    rows = [_stop_row(kind, regime, noise, boundary, n_fixes, seeds)
            for boundary in (False, True) for kind, regime, noise in STOP_RUNS]
    return pd.DataFrame(rows)


def _stop_table(df: pd.DataFrame) -> list[str]:
    out = ["| device | sampling | noise | fixes | true stops | detected | precision | recall "
           "| F1 | median arrival error (s) | median departure error (s) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in df.drop(columns=["boundary fixes"]).itertuples(index=False):  # the first 11 columns
        out.append(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]} | {r[4]} | {r[5]} | {r[6]:.3f} | "
                   f"{r[7]:.3f} | {r[8]:.3f} | {r[9]:.0f} | {r[10]:.0f} |")
    return out


def _coverage_figures(c: pd.DataFrame) -> dict[str, float]:
    """Share of matched stops whose true arrival/departure lies within the stop's bounds."""
    n = len(c)
    both = c["arrival_within"] & c["departure_within"]
    return {"matched": n,
            "arrival within": float(c["arrival_within"].mean()) if n else float("nan"),
            "departure within": float(c["departure_within"].mean()) if n else float("nan"),
            "both within": float(both.mean()) if n else float("nan"),
            "open bounds": int(c["arrival_open"].sum() + c["departure_open"].sum()),
            "median arrival window (s)": float(c["arrival_window_s"].median()) if n else float("nan"),
            "median departure window (s)": float(c["departure_window_s"].median()) if n else float("nan")}


def _share(rows: pd.DataFrame) -> tuple[float, int]:
    n = int(rows["matched"].sum())
    return (float((rows["both within"] * rows["matched"]).sum() / n) if n else float("nan")), n


def _bounds_summary(df: pd.DataFrame) -> list[str]:
    """Per device: the share of matched stops within both bounds in the primary rows."""
    prim = df[~df["boundary fixes"]]
    out = []
    for kind in ("truck", "phone"):
        rows = prim[prim["device"] == kind]
        share, n = _share(rows)
        low = rows[rows["noise"] < 3.0]
        share_low, n_low = _share(low)
        miss, off = int(rows["bound misses"].sum()), int(rows["misses by a fix off > 3x"].sum())
        out.append(f"- {kind}s, primary rows: {share:.2%} of {n} matched stops have both the true "
                   f"arrival and the true departure within their bounds (target at least 99 %: "
                   f"{'met' if share >= 0.99 else 'NOT met'}); at noise below 3: {share_low:.2%} of "
                   f"{n_low}. Of the {miss} sides missed, {off} are bounded by a fix taken during the "
                   f"true stay more than three times its stated accuracy off.")
    std = df[df["boundary fixes"] & (df["noise"] <= 1.0)]
    share_std, n_std = _share(std)
    out.append(f"- rows with the simulator's boundary fixes at noise 1 or less: {share_std:.2%} of {n_std}.")
    return out


def section_stops() -> str:
    try:
        df = stop_scores()
    except ImportError as exc:  # the engine or its simulator is not there yet
        return f"not computed: {exc}\n"
    out = ["Simulator: `routetrace.samples.simulate.simulate` (seeds 1 and 2, about 20,000 fixes "
           "per seed and row); detection: `routetrace.routes.detect_stops` with its defaults "
           "(radius 100 m, minimum dwell 5 min, gap 30 min; ignition events for trucks); "
           "scoring: `routetrace.samples.simulate.score_stops` (same subject, overlapping in "
           "time, centre within 150 m; stays the device never observed are left out of "
           "recall). `noise` multiplies every position error of the simulator. `sparse` thins "
           "phone sampling fourfold. Median errors are the mean over seeds of each seed's "
           "median.", "",
           "**Primary rows: without boundary fixes.** The simulator records a fix at the "
           "moment of arrival, 0.5 s before departure and (the drive's first fix) at the "
           "departure instant at the stay's position, which no real device does and which "
           "puts the detector's arrival and departure on the true instants; these rows remove "
           "those three fixes of every stay, so timing errors show the effect of sampling "
           "(the rows published before this change removed only the first two, so their "
           "departure errors were still 0). "
           "Trucks keep only their hourly parked fixes and the fix at ignition-on (60 s before "
           "departure), so stays shorter than about an hour have too few fixes to be found "
           "(the Teltonika default of a record at every ignition change is what makes short "
           "truck stays detectable). The simulator still scales position noise to the stated "
           "accuracy and draws independent errors, both in the detector's favour (section 5).",
           "", *_stop_table(df[~df["boundary fixes"]]), "",
           "Secondary rows (for comparison only): the same conditions WITH the simulator's "
           "boundary fixes, in the detector's favour; arrival and departure errors near zero "
           "here come from those fixes, not from the detector.", "",
           *_stop_table(df[df["boundary fixes"]])]
    out += ["", "**Arrival and departure bounds.** Every stop carries four bounds "
            "(`routetrace.routes.stops`, module doc): `t_arrival_after`, the subject's last "
            "position fix before the stop that places it elsewhere (farther from the stop's "
            "centre than `radius_m` plus *f* times its stated accuracy: *f* is 3, or 3 k for a "
            "device whose fixes at rest show it understates its error k times: k is the median, "
            "over the subject's stop members, of the distance from the stop's centre over the "
            "stated accuracy, divided by the 0.78 a true 68 % radius gives; "
            "`routetrace.routes.stops.elsewhere_factor`); `t_arrival_before`, "
            "the first fix of the stop at rest (the step from the previous position fix and the "
            "fix's own speed at most `edge_speed_mps`, 5 m/s) or an earlier ignition-off; "
            "`t_departure_after`, the last fix of the stop at rest or a later ignition-on; "
            "`t_departure_before`, the first position fix after the stop elsewhere. The table "
            "gives, of the matched stops above (`routetrace.samples.simulate.bounds_coverage`), "
            "the share whose true arrival lies in [`t_arrival_after`, `t_arrival_before`] and "
            "whose true departure lies in [`t_departure_after`, `t_departure_before`]. An open "
            "bound (the record begins or ends with the stop) holds on its open side and is "
            "counted; windows are the widths of the bounded intervals (median over the matched "
            "stops of both seeds). `sides missed` counts arrival and departure bounds that do "
            "not hold; the last column counts those whose outer bound is a fix taken during the "
            "true stay with a true error above three times its stated accuracy (the evidence "
            "places the subject elsewhere beyond what its accuracy allows; the simulator draws "
            "errors of `noise` times the stated accuracy plus 15 m (phones) or 25 m (trucks) "
            "of scatter, so at noise 3 such fixes are common and split stays; before the "
            "calibration at rest (dd640a6), when *f* was 3 for every device, they were the outer bound of "
            "41 of the 42 sides missed at phone noise 3 and that row held 84.25 %). "
            "`elsewhere factor` is the median *f* over the row's subjects (the simulator's "
            "15 m and 25 m of scatter make even its noise-1 devices optimistic: a truck stating "
            "5 m scatters 25 m).", "",
            "Why the detected `t_arrival` and `t_departure` are not bounds (they were scored as "
            "such before 88ac364: 60.69 % of 3,274 matched stops in the primary rows, trucks "
            "66.0-66.5 % and phones 25.2-71.8 % by row): without the simulator's fix at the moment of arrival, a stop's "
            "first fix is often the last one taken on the approach, seconds before stopping and "
            "within `radius_m` of the centre; the step from it to the next fix at the place, "
            "minutes or an hour later, is slow, so edge trimming keeps it, and the truck's "
            "ignition-off that follows it no longer moves the arrival. Likewise a phone's first "
            "fix of the drive away, taken a second after leaving, is still at the place. The "
            "inner bounds ask instead whether the step *into* the first fix (*out of* the last) "
            "was at rest.", "",
            "| device | sampling | noise | matched | arrival within | departure within | both "
            "within | open bounds | median arrival window (s) | median departure window (s) | "
            "sides missed | of which a fix off > 3x its accuracy | elsewhere factor |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in df.to_dict("records"):
        label = "" if not r["boundary fixes"] else " (with boundary fixes)"
        out.append(f"| {r['device']} | {r['sampling']}{label} | {r['noise']:.1f} | {r['matched']} | "
                   f"{r['arrival within']:.2%} | {r['departure within']:.2%} | {r['both within']:.2%} | "
                   f"{r['open bounds']} | {r['median arrival window (s)']:.0f} | "
                   f"{r['median departure window (s)']:.0f} | {r['bound misses']} | "
                   f"{r['misses by a fix off > 3x']} | {r['elsewhere factor']:.1f} |")
    out += ["", *_bounds_summary(df)]
    out += ["", _bench_module("truth2").section().rstrip("\n")]
    return "\n".join(out) + "\n"


# --- (c) co-presence ----------------------------------------------------------------------

#: Android documents Location.getAccuracy() as the radius of 68 % confidence; for a
#: circular Gaussian error that radius is sqrt(-2 ln 0.32) = 1.5096 sigma.
R68 = float(np.sqrt(-2 * np.log(0.32)))
EARTH_R_M = 6_371_008.8


def simulate_meetings(*, seed: int, n_subjects: int = 8, n_meetings: int = 24,
                      period_s: tuple[float, float] = (60.0, 300.0), noise_scale: float = 1.0,
                      day_s: float = 86_400.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subjects that meet in pairs at known places and times, with near misses.

    Each subject wanders between private places (kilometres apart). ``n_meetings`` meetings
    (20-90 min) bring a pair together at a meeting point; every meeting has two decoys: a
    third subject at the same point 60-120 min later (same place, other time) and another at
    the same time 400 m away (same time, other place). Fixes are sampled at intervals drawn
    from ``period_s``, with stated accuracy 10-60 m and a circular Gaussian error whose 68 %
    radius equals the stated accuracy (Android's definition) times ``noise_scale``.
    Returns ``(fixes, truth)``; truth has ``subject_a < subject_b, t_start, t_end``.
    """
    from routetrace import schema

    rng = np.random.default_rng(seed)
    subjects = [f"s{i:02d}" for i in range(n_subjects)]
    home = {s: rng.uniform(-20_000, 20_000, 2) for s in subjects}
    plan: dict[str, list[tuple[float, float, np.ndarray]]] = {s: [] for s in subjects}

    def free(s: str, a: float, b: float) -> bool:
        return all(b + 600 <= x or a - 600 >= y for x, y, _ in plan[s])

    truth = []
    tries = 0
    while len(truth) < n_meetings and tries < 10_000:
        tries += 1
        a_, b_, c_, d_ = rng.choice(n_subjects, 4, replace=False)
        sa, sb, sc, sd = (subjects[int(i)] for i in (a_, b_, c_, d_))
        t0 = rng.uniform(3600, day_s - 4 * 3600)
        t1 = t0 + rng.uniform(20 * 60, 90 * 60)
        later = t1 + rng.uniform(60 * 60, 120 * 60)
        dur = t1 - t0
        pt = rng.uniform(-30_000, 30_000, 2)
        ang = rng.uniform(0, 2 * np.pi)
        off = pt + 400 * np.array([np.cos(ang), np.sin(ang)])
        if not (free(sa, t0, t1) and free(sb, t0, t1) and free(sc, later, later + dur)
                and free(sd, t0, t1)):
            continue
        plan[sa].append((t0, t1, pt))
        plan[sb].append((t0, t1, pt))
        plan[sc].append((later, later + dur, pt))
        plan[sd].append((t0, t1, off))
        x, y = sorted((sa, sb))
        truth.append({"subject_a": x, "subject_b": y, "t_start": t0, "t_end": t1})
    parts = []
    for s in subjects:
        t = np.cumsum(rng.uniform(*period_s, int(day_s / period_s[0]) + 2))
        t = t[t < day_s]
        pos = np.tile(home[s], (len(t), 1))
        # wander: a slow random walk around home (a few km), so subjects do not meet by chance
        pos = pos + np.cumsum(rng.normal(0, 30, (len(t), 2)), axis=0)
        for a, b, p in plan[s]:
            inside = (t >= a) & (t <= b)
            pos[inside] = p + rng.normal(0, 5, (int(inside.sum()), 2))  # people move a little
        acc = rng.uniform(10, 60, len(t))
        sigma = acc / R68 * noise_scale
        err = rng.normal(0, 1, (len(t), 2)) * sigma[:, None]
        parts.append(pd.DataFrame({"subject_id": s, "t": t, "x": pos[:, 0] + err[:, 0],
                                   "y": pos[:, 1] + err[:, 1], "acc": acc,
                                   "true_x": pos[:, 0], "true_y": pos[:, 1]}))
    d = pd.concat(parts, ignore_index=True)
    lat0, lon0 = 51.0, 4.0
    n = len(d)
    fixes = pd.DataFrame({
        "subject_id": d["subject_id"],
        "t_utc": pd.to_datetime(pd.Timestamp("2025-10-24T00:00Z").value
                                + (d["t"].to_numpy() * 1e9).astype("int64"), utc=True),
        "lat": lat0 + np.degrees(d["y"].to_numpy() / EARTH_R_M),
        "lon": lon0 + np.degrees(d["x"].to_numpy() / (EARTH_R_M * np.cos(np.radians(lat0)))),
        "h_acc_m": d["acc"].to_numpy(), "fix_kind": "wifi", "source_id": "0" * 64,
        "record": [str(i) for i in range(n)], "flags": "",
    })
    fixes = schema.validate(schema.coerce(fixes, "fixes"), "fixes")
    fixes.attrs["true_xy_err_m"] = np.hypot(d["x"] - d["true_x"], d["y"] - d["true_y"]).to_numpy()
    tr = pd.DataFrame(truth)
    base = pd.Timestamp("2025-10-24T00:00Z")
    tr["t_start"] = base + pd.to_timedelta(tr["t_start"], unit="s")
    tr["t_end"] = base + pd.to_timedelta(tr["t_end"], unit="s")
    return fixes, tr


def score_meetings(meetings: pd.DataFrame, truth: pd.DataFrame,
                   tolerance: pd.Timedelta = pd.Timedelta("10min")) -> dict[str, float]:
    """A detected meeting matches a true one of the same pair overlapping in time (± tolerance)."""
    matched_true: set[int] = set()
    tp_det = 0
    for m in meetings.itertuples():
        cand = truth[(truth["subject_a"] == m.subject_a) & (truth["subject_b"] == m.subject_b)
                     & (truth["t_start"] - tolerance <= m.t_end)
                     & (truth["t_end"] + tolerance >= m.t_start)]
        if len(cand):
            tp_det += 1
            matched_true.update(int(i) for i in cand.index)
    n_det, n_true = len(meetings), len(truth)
    p = tp_det / n_det if n_det else 1.0
    r = len(matched_true) / n_true if n_true else 1.0
    return {"detected": n_det, "true": n_true, "precision": p, "recall": r,
            "F1": 2 * p * r / (p + r) if p + r else 0.0}


COPRESENCE_RUNS: tuple[tuple[str, tuple[float, float], float], ...] = (
    ("1-5 min", (60.0, 300.0), 1.0), ("1-5 min", (60.0, 300.0), 2.0),
    ("1-5 min", (60.0, 300.0), 4.0), ("5-15 min", (300.0, 900.0), 1.0),
    ("5-15 min", (300.0, 900.0), 2.0),
)


def match_meetings(meetings: pd.DataFrame, truth: pd.DataFrame,
                   tolerance: pd.Timedelta = pd.Timedelta("10min")) -> dict[str, int]:
    """Match detected meetings to true ones one-to-one, greedily by overlap.

    A detection may match a true meeting of the same pair whose interval, widened by
    ``tolerance`` each side, it overlaps or touches. Candidate pairs are taken in order of
    decreasing overlap (ties: earlier detection, then earlier true meeting) and kept when
    neither side is matched yet. Returns ``matched`` (true positives), ``fragments``
    (detections left unmatched that overlap a true meeting of their pair: a true meeting
    reported in pieces), ``false_alarms`` (detections overlapping no true meeting),
    ``detected`` and ``true``.
    """
    cands: list[tuple[float, int, int]] = []
    overlapping: set[int] = set()
    tr = truth.reset_index(drop=True)
    for i, m in enumerate(meetings.itertuples()):
        same = tr[(tr["subject_a"] == m.subject_a) & (tr["subject_b"] == m.subject_b)]
        for j, t in zip(same.index, same.itertuples(), strict=True):
            lo = max(pd.Timestamp(m.t_start), t.t_start - tolerance)
            hi = min(pd.Timestamp(m.t_end), t.t_end + tolerance)
            if lo <= hi:
                cands.append(((hi - lo).total_seconds(), i, int(j)))
                overlapping.add(i)
    used_d: set[int] = set()
    used_t: set[int] = set()
    for _, i, j in sorted(cands, key=lambda c: (-c[0], c[1], c[2])):
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
    n = len(meetings)
    return {"detected": n, "true": len(tr), "matched": len(used_d),
            "fragments": len(overlapping - used_d), "false_alarms": n - len(overlapping)}


def _prf(matched: float, detected: float, true: float) -> tuple[float, float, float]:
    p = matched / detected if detected else 1.0
    r = matched / true if true else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def copresence_scores(seeds: tuple[int, ...] = (1, 2, 3)) -> pd.DataFrame:
    """Co-presence scored one-to-one (primary) and by any overlap (the former rule)."""
    from routetrace.routes.copresence import detect_copresence

    rows = []
    for label, period, noise in COPRESENCE_RUNS:
        for aware in (True, False):
            agg = dict.fromkeys(("detected", "true", "matched", "fragments", "false_alarms",
                                 "tp_any", "firm", "firm_matched"), 0.0)
            for seed in seeds:
                fixes, truth = simulate_meetings(seed=seed, period_s=period, noise_scale=noise)
                _, meetings = detect_copresence(fixes, accuracy_aware=aware)
                for k, v in match_meetings(meetings, truth).items():
                    agg[k] += v
                agg["tp_any"] += score_meetings(meetings, truth)["precision"] * len(meetings)
                firm = meetings[meetings["n_firm"].astype(int) > 0]
                mf = match_meetings(firm, truth)
                agg["firm"] += mf["detected"]
                agg["firm_matched"] += mf["matched"]
            p, r, f1 = _prf(agg["matched"], agg["detected"], agg["true"])
            rows.append({"sampling": label, "noise": noise, "accuracy_aware": aware,
                         "true": int(agg["true"]), "detected": int(agg["detected"]),
                         "matched": int(agg["matched"]), "fragments": int(agg["fragments"]),
                         "false alarms": int(agg["false_alarms"]),
                         "precision": p, "recall": r, "F1": f1,
                         "firm": int(agg["firm"]),
                         "precision firm": _prf(agg["firm_matched"], agg["firm"], agg["true"])[0],
                         "precision any overlap": (agg["tp_any"] / agg["detected"]
                                                   if agg["detected"] else 1.0)})
    return pd.DataFrame(rows)


def section_copresence() -> str:
    df = copresence_scores()
    out = ["Simulator: `simulate_meetings` in this script (seeds 1-3, 8 subjects over one day, "
           "24 meetings of 20-90 min per seed). Each meeting has two decoys: a third subject "
           "at the same point 1-2 h later, and a fourth at the same time 400 m away. Stated "
           "accuracy 10-60 m; true error circular Gaussian with the stated accuracy as its "
           "68 % radius, times `noise`. Detection: `routetrace.routes.copresence."
           "detect_copresence` with its defaults (100 m, 10 min), with and without "
           "`accuracy_aware`.", "",
           "Scoring is one-to-one (`match_meetings`): each true meeting can be matched by at "
           "most one detection of the same pair overlapping it within 10 min (greedy by "
           "overlap), so precision = matched / detected and recall = matched / true. A true "
           "meeting reported in several pieces (sparse sampling: pauses longer than 10 min "
           "split it) counts once; its other pieces are `fragments` and count as false "
           "positives here. `false alarms` overlap no true meeting of their pair. The last "
           "column is the former, lenient rule (a detection is correct when it overlaps any "
           "true meeting of its pair, so every fragment counted as correct), kept for "
           "comparison only. `firm` meetings have at least one pair within 100 m by distance "
           "alone (the others exist only through the accuracy circles and are labelled "
           "`possible` pairs); their precision is also one-to-one.", "",
           "| sampling | noise | accuracy_aware | true | detected | matched | fragments "
           "| false alarms | precision | recall | F1 | firm | precision (firm) "
           "| precision, any overlap (former rule) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        out.append(f"| {r[0]} | {r[1]:.0f} | {'yes' if r[2] else 'no'} | {r[3]} | {r[4]} | "
                   f"{r[5]} | {r[6]} | {r[7]} | {r[8]:.3f} | {r[9]:.3f} | {r[10]:.3f} | "
                   f"{r[11]} | {r[12]:.3f} | {r[13]:.3f} |")
    return "\n".join(out) + "\n"


# --- (d) corroboration on the sample case ---------------------------------------------------

CORROBORATION_SEEDS = (7, 11, 23)


def corroboration_scores() -> pd.DataFrame:
    from routetrace.loaders import load
    from routetrace.routes.corroborate import corroborate_statements
    from routetrace.samples.generate import generate
    from routetrace.samples.scenario import build_scenario
    from routetrace.testing import make_fixes

    rows = []
    for seed in CORROBORATION_SEEDS:
        with tempfile.TemporaryDirectory(prefix="routetrace-validate-") as tmpd:
            tmp = Path(tmpd)
            generate(tmp, seed=seed)
            truth = json.loads((tmp / "truth.json").read_text(encoding="utf-8"))
            expected = {(r["statement_id"], r["subject_id"]): r["verdict"]
                        for r in truth.get("statement_verdicts", [])}
            st = load(tmp / "evidence" / "case" / "statements.yaml")
            phone = load(tmp / "evidence" / "phone-A" / "phone-A_locations.gpx",
                         subject_id="phone-A").fixes
        tr = build_scenario(seed).tracks["lorry-1"]
        lorry = make_fixes(subject_id="lorry-1", t_utc=tr["t_utc"], lat=tr["lat"], lon=tr["lon"],
                           h_acc_m=tr["h_acc_m"])
        res = corroborate_statements(st.places, pd.concat([phone, lorry], ignore_index=True))
        got = dict(zip(zip(res.verdicts["statement_id"], res.verdicts["subject_id"], strict=True),
                       res.verdicts["verdict"], strict=True))
        for key, verdict in sorted(expected.items()):
            rows.append({"seed": seed, "statement": key[0], "subject": key[1], "truth": verdict,
                         "routetrace": got.get(key, "(none)")})
    return pd.DataFrame(rows)


def _bench_module(name: str) -> Any:
    """Import ``bench/<name>.py`` by path (bench/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"routetrace_bench_{name}",
                                                  Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def section_corroboration() -> str:
    """The confusion table over statements of every verdict, then the sample case's own."""
    scenarios = _bench_module("validate_corroboration").section()
    return (scenarios + "\n### The sample case's own statements\n\n"
            + _sample_case_corroboration())


def _sample_case_corroboration() -> str:
    df = corroboration_scores()
    ok = df["truth"] == df["routetrace"]
    out = [f"Sample case (`routetrace.samples.generate`, seeds {', '.join(map(str, CORROBORATION_SEEDS))}): "
           "the statements file against phone-A's GPX evidence and lorry-1's observed track, "
           "with `routetrace.routes.corroborate.corroborate_statements` defaults. Truth: the verdicts "
           "the scenario implies (`truth.json` → `statement_verdicts`).", "",
           f"**{int(ok.sum())} of {len(df)} verdicts correct ({ok.mean():.1%}).**", "",
           "| truth verdict | cases | correct |", "|---|---|---|"]
    for v, g in df.groupby("truth", sort=True):
        out.append(f"| {v} | {len(g)} | {int((g['truth'] == g['routetrace']).sum())} |")
    out += ["", "| seed | statement | subject | truth | routetrace |", "|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        out.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} |")
    return "\n".join(out) + "\n"


# --- (e) known error sources -------------------------------------------------------------------

def outside_circle_shares() -> pd.DataFrame:
    """Share of fixes whose true position lies outside the stated accuracy circle."""
    from routetrace.routes.geo import haversine_m
    from routetrace.samples.scenario import build_scenario

    rows = []
    sc = build_scenario(7)
    for subject, tr in sorted(sc.tracks.items()):
        d = haversine_m(tr["lat"].to_numpy(float), tr["lon"].to_numpy(float),
                        tr["true_lat"].to_numpy(float), tr["true_lon"].to_numpy(float))
        acc = tr["h_acc_m"].to_numpy(float)
        for kind in sorted(tr["fix_kind"].astype(str).unique()):
            m = (tr["fix_kind"].astype(str) == kind).to_numpy() & np.isfinite(acc)
            if m.sum():
                rows.append({"model": f"sample case {subject}", "fix kind": kind, "fixes": int(m.sum()),
                             "outside": float((d[m] > acc[m]).mean()),
                             "outside 2x": float((d[m] > 2 * acc[m]).mean())})
    for noise in (1.0, 2.0):
        fixes, _ = simulate_meetings(seed=1, noise_scale=noise)
        err = fixes.attrs["true_xy_err_m"]
        acc = fixes["h_acc_m"].to_numpy(float)
        rows.append({"model": f"Android 68 % model, noise x{noise:.0f}", "fix kind": "wifi",
                     "fixes": len(fixes), "outside": float((err > acc).mean()),
                     "outside 2x": float((err > 2 * acc).mean())})
    return pd.DataFrame(rows)


def section_errors() -> str:
    df = outside_circle_shares()
    out = [
        "These are the known ways a location record can mislead, and what routetrace does "
        "about each. None of them is removed by software; they are made visible.", "",
        "1. **Accuracy circles are not guarantees.** Android documents "
        "`Location.getAccuracy()` as the radius of 68 % confidence, so about one fix in "
        "three lies outside its own circle even when the device works as designed; Google "
        "Takeout and Timeline `accuracy` values come from the same source. Apple documents "
        "`horizontalAccuracy` as a radius of uncertainty without a confidence level. Wi-Fi "
        "and cell positions are estimates of where an access point or tower is believed to "
        "be, not measurements of the handset, and can be wrong by far more than their stated "
        "accuracy when an access point has moved. Measured share of fixes whose true "
        "position lies outside the stated circle (and outside twice its radius):", "",
        "| model | fix kind | fixes | outside 1x accuracy | outside 2x accuracy |",
        "|---|---|---|---|---|",
    ]
    for r in df.itertuples(index=False):
        out.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1%} | {r[4]:.1%} |")
    out += [
        "",
        "   How exhibits show it: evidence points are drawn at their exact positions with their "
        "stated accuracy circle; corroboration and co-presence use the circles plus a "
        "stated slack (`slack_m`, `radius_m`) and label a result that depends on the "
        "uncertainty as `possible` / `inconclusive` rather than firm; fixes coarser than "
        "`max_h_acc_m` (cell towers) are evidence of an area only and are never used to "
        "place a subject at a stop.",
        "2. **Silences are not absence.** A phone that is off, in flight mode or without "
        "signal records nothing; trackers record once an hour while parked. Unobserved "
        "intervals are kept as `gaps`, drawn as dashed lines labelled with their duration, "
        "and corroboration answers `not observed` (never `contradicted`) when the statement "
        "falls in one.",
        "3. **Clocks.** Camera clocks and naive local times can be hours off (the real "
        "corpus holds a Nikon about 22 h and a Canon about 8 h off GPS time). Every time "
        "records its basis (`time_basis`); naive local times without a stated zone are "
        "rejected, and exhibits print local time with the UTC offset and zone.",
        "4. **Derived positions.** Semantic/Timeline visits, learned places and activity "
        "segments are the vendor's inference, not raw fixes; they are kept with their "
        "kind (`fix_kind`, place `kind`) and confidence so that an exhibit never presents "
        "them as measurements.",
        "5. **Simulation limits.** The stop and co-presence figures above come from "
        "simulators with circular Gaussian errors and independent fixes; real errors are "
        "correlated in time (multipath in urban canyons, a stale Wi-Fi database), which "
        "makes runs of wrong fixes more likely than the simulator suggests. The figures are "
        "a check of the algorithms, not a promise about a particular device.",
    ]
    return "\n".join(out) + "\n"


# --- assembly ---------------------------------------------------------------------------------

TITLES = {
    "loaders": "Loader record counts on the real corpus",
    "stops": "Stop detection against ground truth",
    "copresence": "Co-presence against ground truth",
    "corroboration": "Corroboration verdicts against ground truth",
    "errors": "Known error sources",
}
BUILDERS: dict[str, Callable[[], str]] = {
    "loaders": section_loaders, "stops": section_stops, "copresence": section_copresence,
    "corroboration": section_corroboration, "errors": section_errors,
}


def build(names: tuple[str, ...] = SECTIONS) -> dict[str, str]:
    return {n: BUILDERS[n]() for n in names}


#: The code the report measures (its provenance line; tests/test_staleness.py).
MEASURES = ("bench/validate.py", "bench/validate_corroboration.py", "bench/truth2.py", "routes/", "samples/",
            "loaders/", "geodesy.py", "schema.py")


def _provenance_head() -> list[str]:
    sys.path.insert(0, str(Path(__file__).parent))
    from _provenance import provenance

    rec = provenance(command="python bench/validate.py", measures=MEASURES, load=False)
    dirty = (f" plus uncommitted changes to {', '.join(rec['uncommitted'])}"
             if rec["uncommitted"] else "")
    return ["<!-- provenance: " + json.dumps(rec, sort_keys=True) + " -->", "",
            f"Figures measured at commit `{rec['commit']}`{dirty} by `python bench/validate.py`; "
            f"they measure {', '.join(f'`{m}`' for m in MEASURES)}. `tests/test_staleness.py` "
            "fails when a later commit changes that code and this file is not regenerated.", ""]


def render(parts: dict[str, str]) -> str:
    head = ["# routetrace validation report", "",
            "Generated by `python bench/validate.py` (deterministic: fixed seeds, no "
            "wall-clock times). Do not edit by hand: `tests/test_validation.py` checks that "
            "these figures match a fresh run.", "", *_provenance_head()]
    body = []
    for i, name in enumerate(SECTIONS, 1):
        if name in parts:
            body += [f"## {i}. {TITLES[name]}", "", f"<!-- section:{name} -->",
                     parts[name].rstrip("\n"), f"<!-- /section:{name} -->", ""]
    return "\n".join(head + body)


def sections_of(text: str) -> dict[str, str]:
    """Split a rendered report back into its sections (for comparisons)."""
    return {m.group(1): m.group(2).strip("\n") + "\n" for m in
            re.finditer(r"<!-- section:(\w+) -->\n(.*?)<!-- /section:\1 -->", text, re.S)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DOC), help="output file, or - for stdout")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    args = ap.parse_args(argv)
    names = tuple(n for n in SECTIONS if n in args.sections.split(","))
    text = render(build(names))
    if args.check:
        old = sections_of(Path(args.out).read_text(encoding="utf-8"))
        new = sections_of(text)
        differ = [n for n in new if old.get(n) != new[n]]
        print("differs: " + ", ".join(differ) if differ else "docs match a fresh run")
        return 1 if differ else 0
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
