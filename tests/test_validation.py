"""docs/validation.md is generated: its figures match a fresh run of bench/validate.py.

The loader section is compared only where ../shared/realdata is present. A failure here
means the report is stale: regenerate it with ``python bench/validate.py`` and commit it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _validate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("routetrace_bench_validate",
                                                  ROOT / "bench" / "validate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


V = _validate()
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
