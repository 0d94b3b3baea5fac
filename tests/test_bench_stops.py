"""bench/stops.py: the grid search that gives each peer its tuned row."""

from __future__ import annotations

import pandas as pd
from benchmods import load_bench

from routetrace.routes import detect_stops
from routetrace.samples.simulate import simulate

S = load_bench("stops")


def test_grid_search_picks_the_parameters_that_score_best_on_the_tuning_truth() -> None:
    fixes, _, truth = simulate(n_fixes=3_000, kind="phone", seed=5)
    grid = S.parameter_grid({"radius_m": [3.0, 100.0, 5_000.0], "gap_min": [30.0]})
    assert grid == [{"radius_m": 3.0, "gap_min": 30.0}, {"radius_m": 100.0, "gap_min": 30.0},
                    {"radius_m": 5_000.0, "gap_min": 30.0}]
    results: list[pd.DataFrame | None] = []
    for p in grid:
        _, st = detect_stops(fixes, radius_m=p["radius_m"], min_dwell=pd.Timedelta("5min"),
                             max_gap=pd.Timedelta(minutes=p["gap_min"]))
        results.append(st[["subject_id", "t_arrival", "t_departure", "lat", "lon"]])
    best, f1 = S.best_params(grid, results, truth)
    assert best == {"radius_m": 100.0, "gap_min": 30.0}
    assert f1 > 0.9
    # a set that failed never wins; equal scores keep the first set
    best, _ = S.best_params(grid[:2], [None, results[1]], truth)
    assert best == grid[1]
    best, _ = S.best_params(grid[1:2] * 2, [results[1], results[1]], truth)
    assert best is grid[1]


def test_parameters_are_printed_as_a_reader_can_check_them() -> None:
    assert S.describe({"acc_max_m": None, "radius_m": 100.0, "gap_min": 30.0}) == "all fixes, radius 100 m, gap 30 min"
    assert S.describe(S.DEFAULTS["movingpandas"]) == "all fixes, radius 100 m, gap none"
    assert len(S.parameter_grid()) == 3 * 3 * 4


def test_issue21_ratios_are_printed_at_the_largest_size_with_whether_each_bound_holds() -> None:
    def row(n: int, tool: str, rate: float, peak: float) -> dict[str, object]:
        return {"data": "truck", "fixes": n, "status": "ok", "tool": tool, "rate": rate, "process_peak": peak}

    rows = [row(10, "routetrace make_fixes + stops", 1.0, 1.0), row(10, "scikit-mobility", 1.0, 1.0),
            row(1000, "routetrace make_fixes + stops", 300.0, 150.0), row(1000, "scikit-mobility", 20.0, 400.0),
            row(1000, "scikit-mobility tuned", 40.0, 250.0), row(1000, "routetrace", 900.0, 100.0)]
    lines = [x for x in S._issue21(rows) if x.startswith("- ")]
    assert lines == [
        "- truck, 1,000 fixes: routetrace make_fixes + stops vs scikit-mobility: throughput 15.0x "
        "(needs >= 10x: met); whole-process peak RSS 150 / 400 MiB = 0.38 (needs <= 0.5: met)",
        "- truck, 1,000 fixes: routetrace make_fixes + stops vs scikit-mobility tuned: throughput 7.5x "
        "(needs >= 10x: NOT met); whole-process peak RSS 150 / 250 MiB = 0.60 (needs <= 0.5: NOT met)",
    ]


def test_issue21_states_the_harness_floor_and_what_each_tool_adds_above_its_own() -> None:
    def row(tool: str, rate: float, peak: float) -> dict[str, object]:
        return {"data": "phone", "fixes": 1000, "status": "ok", "tool": tool, "rate": rate, "process_peak": peak}

    rows = [row("routetrace make_fixes + stops", 300.0, 330.0), row("scikit-mobility", 20.0, 405.0)]
    floor = {"phone": {"no tool": 215.0, "no tool, scikit-mobility's venv": 240.0}}
    last = S._issue21(rows, floor)[-1]
    assert last == ("- phone, 1,000 fixes, the harness alone (pandas imported and the input read, no tool run): "
                    "215 MiB in routetrace's venv, 240 MiB in scikit-mobility's. Half of scikit-mobility's "
                    "whole-process peak is 202 MiB, under the floor: in this harness no routetrace code can meet "
                    "the bound. Above its venv's floor (its imports, input building and detection) routetrace "
                    "adds 115 MiB, scikit-mobility 165 MiB (ratio 0.70).")
    # a floor under the bound says by how much; a missing floor run adds no line
    floor["phone"]["no tool"] = 150.0
    assert "52 MiB above the floor" in S._issue21(rows, floor)[-1]
    del floor["phone"]["no tool"]
    assert S._issue21(rows, floor)[-1].startswith("- phone, 1,000 fixes: routetrace make_fixes + stops vs")
