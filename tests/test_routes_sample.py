"""The sample case: the chronology reproduces the ground-truth itinerary of every subject.

The sample files are written by ``routetrace.samples.generate`` and read back through the
loaders and the case store (as an investigator would), then ``run_chronology`` runs the
whole chain (clean → merge → stops → trips → chronology).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from routetrace.app.analysis import run_chronology
from routetrace.app.ingest import ingest
from routetrace.case import open_case
from routetrace.samples import generate


def test_sample_case_chronology_reproduces_the_ground_truth(tmp_path: Path) -> None:
    files = generate(tmp_path / "s")
    for f in files:
        ingest(tmp_path / "case", [tmp_path / "s" / f.path], subject_id=f.subject_id, tz=f.tz, format=f.format)
    chrono = run_chronology(tmp_path / "case")
    case = open_case(tmp_path / "case")
    stops = case.table("stops")
    fixes = case.table("fixes")
    truth = json.loads((tmp_path / "s" / "truth.json").read_text())
    subjects = set(fixes["subject_id"])
    matched: set[str] = set()
    checked = 0
    bounds: list[tuple[object, ...]] = []
    for t in truth["stops"]:
        if t["subject_id"] not in subjects:
            continue  # a subject whose evidence format is not in this build
        ta, td = pd.Timestamp(t["t_arrival"]), pd.Timestamp(t["t_departure"])
        if td - ta < pd.Timedelta("5min"):
            continue  # shorter than min_dwell: a halt, not a stop
        checked += 1
        s = stops[(stops["subject_id"] == t["subject_id"]) & (stops["t_arrival"] < td + pd.Timedelta("2min"))
                  & (stops["t_departure"] > ta - pd.Timedelta("2min"))]
        assert len(s) == 1, f"true stop {t['place']} of {t['subject_id']} found {len(s)} times"
        s = s.iloc[0]
        matched.add(s["stop_id"])
        sub = fixes[fixes["subject_id"] == t["subject_id"]]["t_utc"]
        # the first (last) fix at rest is near the true arrival (departure); the bounds below
        # say how near: a device that reports its speed while leaving puts the departure
        # between its last fix at rest and its first moving fix
        if ta >= sub.min():  # the record starts before the true arrival
            assert abs(s["t_arrival"] - ta) <= pd.Timedelta("2min"), (t, s["t_arrival"])
            assert pd.isna(s["t_arrival_after"]) or s["t_arrival"] - s["t_arrival_after"] <= pd.Timedelta("10min")
        if td <= sub.max():  # the record goes on after the true departure
            assert abs(s["t_departure"] - td) <= pd.Timedelta("30min"), (t, s["t_departure"])
            assert pd.isna(s["t_departure_before"]) or s["t_departure_before"] - s["t_departure"] <= pd.Timedelta("30min")
        bounds.append((t["place"], t["subject_id"], s["t_arrival_after"], ta, s["t_arrival_before"],
                       s["t_departure_after"], td, s["t_departure_before"]))
        row = chrono[chrono["ref_id"] == s["stop_id"]].iloc[0]
        expected_zone = "Europe/Paris" if t["place"] == "calais_camp" else "Europe/Brussels"
        assert row["tz_start"] == expected_zone
        assert row["local_start"].endswith("(UTC+02:00)" if ta < pd.Timestamp("2025-10-26T01:00Z") else "(UTC+01:00)")
    assert matched == set(stops["stop_id"]), "phantom stops"
    assert {"phone-A", "lorry-1"} <= subjects and checked >= 4
    # the bounds (#17): the true arrival lies in [t_arrival_after, t_arrival_before] and the
    # true departure in [t_departure_after, t_departure_before]; NA = the record begins/ends
    # with the stop
    tol = pd.Timedelta("1s")  # the sample's sources stamp the same instant up to 0.4 s apart
    outside = [b for b in bounds
               if not ((pd.isna(b[2]) or b[2] <= b[3] + tol) and b[3] <= b[4] + tol
                       and b[5] <= b[6] + tol and (pd.isna(b[7]) or b[6] <= b[7] + tol))]
    assert not outside, "\n".join(" ".join(str(x) for x in b) for b in outside)
    assert len(bounds) >= 8
    assert sum(pd.notna(b[2]) or pd.notna(b[7]) for b in bounds) == len(bounds)  # no stop unbounded on both sides
