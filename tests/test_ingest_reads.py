"""What an ingest reads back from the case it writes (#21: ingest memory)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from routetrace import case as store
from routetrace.app.ingest import ingest
from routetrace.testing import example_gpx


def test_an_ingest_into_a_one_subject_case_does_not_read_the_fixes_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-device check compares subjects; with one there is nothing to compare, and
    reading the fixes back cost a 1e6-point GPX ingest 0.5 GiB of peak memory."""
    real = store.Case.table
    reads: list[str] = []

    def watched(self: store.Case, name: str) -> pd.DataFrame:
        reads.append(name)
        return real(self, name)

    monkeypatch.setattr(store.Case, "table", watched)
    gpx = example_gpx(tmp_path / "a.gpx", [50.0 + i / 1e4 for i in range(30)])
    rep = ingest(tmp_path / "case", [gpx], subject_id="phone-A")
    assert rep.subjects_created and "fixes" not in reads
    other = example_gpx(tmp_path / "b.gpx", [50.0 + i / 1e4 for i in range(30)], lon=3.87001)
    rep = ingest(tmp_path / "case", [other], subject_id="export-A")
    # two subjects: the check runs, and finds them one device, reading only the fixes
    # parts around the new subject's span (TimeSlice), never the whole table
    assert "fixes" not in reads
    assert any("look like ONE device" in w for w in rep.warnings)
