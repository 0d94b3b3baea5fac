"""docs/validation.md is generated: its figures match a fresh run of bench/validate.py.

The loader section is compared only where ../shared/realdata is present. A failure here
means the report is stale: regenerate it with ``python bench/validate.py`` and commit it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from benchmods import load_bench

ROOT = Path(__file__).resolve().parent.parent



V = load_bench("validate")
DOC = V.sections_of((ROOT / "docs" / "validation.md").read_text(encoding="utf-8"))
STALE = "docs/validation.md is stale: run `python bench/validate.py` and commit it"


def test_report_has_every_section() -> None:
    assert set(DOC) == set(V.SECTIONS)


@pytest.mark.parametrize("name", ["stops", "copresence", "corroboration", "errors"])
def test_section_matches_a_fresh_run(name: str) -> None:
    assert V.BUILDERS[name]() == DOC[name], f"{name}: {STALE}"


def test_loader_section_matches_a_fresh_run(realdata_dir: Path) -> None:
    fresh = V.section_loaders(realdata_dir)
    assert fresh == DOC["loaders"], f"loaders: {STALE}"


def test_meeting_simulator_follows_the_android_68_percent_definition() -> None:
    fixes, truth = V.simulate_meetings(seed=5)
    err = fixes.attrs["true_xy_err_m"]
    outside = float(np.mean(err > fixes["h_acc_m"].to_numpy(float)))
    assert 0.28 < outside < 0.36  # 32 % by definition, sampling error of ~4,000 fixes
    assert len(truth) == 24 and (truth["subject_a"] < truth["subject_b"]).all()


def test_meeting_score_counts_misses_and_false_alarms() -> None:
    t0 = pd.Timestamp("2025-10-24T10:00Z")
    truth = pd.DataFrame({"subject_a": ["a", "a"], "subject_b": ["b", "c"],
                          "t_start": [t0, t0], "t_end": [t0 + pd.Timedelta("30min")] * 2})
    found = pd.DataFrame({"subject_a": ["a", "b"], "subject_b": ["b", "c"],
                          "t_start": [t0 + pd.Timedelta("5min"), t0],
                          "t_end": [t0 + pd.Timedelta("20min"), t0 + pd.Timedelta("9min")]})
    s = V.score_meetings(found, truth)
    assert (s["precision"], s["recall"]) == (0.5, 0.5)
    assert V.score_meetings(found.iloc[:0], truth)["recall"] == 0.0


def test_one_to_one_matching_counts_fragments_as_false_positives() -> None:
    """Three pieces of one true meeting: one match, two fragments (the former rule: 3 correct)."""
    t0 = pd.Timestamp("2025-10-24T10:00Z")
    truth = pd.DataFrame({"subject_a": ["a", "a"], "subject_b": ["b", "c"],
                          "t_start": [t0, t0], "t_end": [t0 + pd.Timedelta("60min")] * 2})
    pieces = [(0, 15), (25, 50), (55, 58)]  # minutes after t0
    found = pd.DataFrame({"subject_a": ["a"] * 4, "subject_b": ["b"] * 3 + ["d"],
                          "t_start": [t0 + pd.Timedelta(minutes=a) for a, _ in pieces] + [t0],
                          "t_end": [t0 + pd.Timedelta(minutes=b) for _, b in pieces]
                          + [t0 + pd.Timedelta("5min")]})
    m = V.match_meetings(found, truth)
    assert m == {"detected": 4, "true": 2, "matched": 1, "fragments": 2, "false_alarms": 1}
    assert V.score_meetings(found, truth)["precision"] == 0.75  # the former, lenient rule
    # the longest piece is the one matched: removing the others changes nothing
    assert V.match_meetings(found.iloc[[1]], truth)["matched"] == 1


def test_copresence_section_is_scored_one_to_one() -> None:
    text = DOC["copresence"]
    assert "one-to-one" in text and "| matched | fragments | false alarms |" in text
    rows = [r.split("|")[1:-1] for r in text.splitlines() if r.startswith("| 5-15 min | 1 | no")]
    true_, detected, matched = (int(rows[0][i]) for i in (3, 4, 5))
    assert matched <= true_ < detected and float(rows[0][8]) == round(matched / detected, 3)


def test_no_boundary_fix_is_left_in_the_primary_stop_rows() -> None:
    from routetrace.samples.simulate import simulate

    f, _, truth = simulate(n_fixes=3000, kind="phone", seed=3)
    kept = V._drop_boundary_fixes(f, truth)
    t = set(zip(kept["subject_id"].astype(str), kept["t_utc"].astype("int64"), strict=True))
    for r in truth.itertuples():
        a, d = pd.Timestamp(r.t_arrival).value, pd.Timestamp(r.t_departure).value
        assert not {(r.subject_id, a), (r.subject_id, d - 500_000_000), (r.subject_id, d)} & t
    assert len(f) - len(kept) >= 2 * len(truth)
    primary = DOC["stops"].split("Secondary rows")[0]
    assert "**Primary rows: without boundary fixes.**" in primary


VC = V._bench_module("validate_corroboration")


def _track(minutes: list[float], lat: float, lon: float = 4.0) -> pd.DataFrame:
    t0 = pd.Timestamp("2025-10-24T10:00Z")
    return pd.DataFrame({"t_utc": [t0 + pd.Timedelta(minutes=m) for m in minutes],
                         "true_lat": lat, "true_lon": lon})


def test_corroboration_truth_rules() -> None:
    t0 = pd.Timestamp("2025-10-24T10:00Z")
    w = (t0 + pd.Timedelta("2h"), t0 + pd.Timedelta("3h"))
    every_10 = [float(m) for m in range(0, 301, 10)]
    far = dict(lat=51.0 + 50_000 / 111_320, lon=4.0, radius_m=100.0)  # 50 km north
    assert VC.truth_verdict(_track(every_10, 51.0), window=w, **far) == "contradicted"
    holed = [m for m in every_10 if not 110 <= m <= 200]  # 100 min silence: 100 km at 36 m/s
    assert VC.truth_verdict(_track(holed, 51.0), window=w, **far) == "inconclusive"
    assert VC.truth_verdict(_track([0.0, 10.0], 51.0), window=w, **far) == "not observed"
    assert VC.truth_verdict(_track(every_10, 51.0), window=(None, None), **far) == "inconclusive"
    here = dict(lat=51.0, lon=4.0)
    assert VC.truth_verdict(_track(every_10, 51.0), window=w, radius_m=100.0, **here) == "supported"
    assert VC.truth_verdict(_track(every_10, 51.0), window=w, radius_m=3000.0,
                            **here) == "inconclusive"


def test_corroboration_confusion_table_covers_every_verdict() -> None:
    text = DOC["corroboration"]
    n = len(VC.STATEMENTS) * len(VC.SEEDS)
    assert n >= 40 and f"of {n} verdicts agree with the truth" in text
    hard = re.search(r"; (\d+) statements are contradicted or inconclusive by truth", text)
    assert hard is not None and int(hard.group(1)) >= 20
    for verdict in ("supported", "contradicted", "not observed", "inconclusive"):
        row = next(r for r in text.splitlines() if r.startswith(f"| **{verdict}** |"))
        assert int(row.split("|")[6]) > 0, verdict  # every truth class is present


def test_corroboration_benchmark_asserts_the_baseline_agrees() -> None:
    cb = V._bench_module("corroborate")
    _, supported = cb.run_routetrace(20_000)
    _, hits = cb.run_naive(20_000)
    cb.check_agreement(20_000, supported, hits)
    assert supported > 0
    with pytest.raises(AssertionError, match="do not compute the same thing"):
        cb.check_agreement(20_000, supported, hits + 1)
