"""Reading a day or a subject of a large case reads only the parts that can hold it (#22)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

from routetrace.app.ingest import ingest
from routetrace.case import open_case
from routetrace.errors import CaseError
from routetrace.testing import example_gpx


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("select")
    lats = [50.0 + i / 1e4 for i in range(30)]
    for name, subject, start in (("a1", "phone-A", "2025-03-01T10:00:00Z"),
                                 ("a2", "phone-A", "2025-03-02T10:00:00Z"),
                                 ("b2", "phone-B", "2025-03-02T11:00:00Z")):
        ingest(d / "case", [example_gpx(d / f"{name}.gpx", lats, start=start)], subject_id=subject)
    return d / "case"


def test_files_outside_the_selection_are_not_read(case: Path) -> None:
    c = open_case(case)
    day2 = {"t_from": "2025-03-02T00:00Z", "t_to": "2025-03-03T00:00Z"}
    assert len(c.table_files("fixes")) == 3
    assert len(c.select_files("fixes", **day2)) == 2
    assert len(c.select_files("fixes", subjects=["phone-A"])) == 2
    assert len(c.select_files("fixes", subjects=["phone-B"], **day2)) == 1
    assert c.select_files("fixes", t_from="2025-03-05T00:00Z") == []
    # a stop at 10:29 (the last fix of day 1) and from 10:29: the boundary is half-open
    assert len(c.select_files("fixes", t_to="2025-03-01T10:29:00Z")) == 1
    assert len(c.select_files("fixes", t_from="2025-03-01T10:29:00Z", t_to="2025-03-01T10:30Z")) == 1


def test_the_dask_table_of_a_selection_equals_filtering_the_whole_table(case: Path) -> None:
    c = open_case(case)
    whole = c.table("fixes")
    t0, t1 = pd.Timestamp("2025-03-02T10:15Z"), pd.Timestamp("2025-03-02T11:10Z")
    got = c.dask_table("fixes", columns=["subject_id", "t_utc", "lat"], subjects=["phone-A", "phone-B"],
                       t_from=t0, t_to=t1).compute().reset_index(drop=True)
    want = whole[(whole["t_utc"] >= t0) & (whole["t_utc"] < t1)][["subject_id", "t_utc", "lat"]]
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True))
    assert set(got["subject_id"]) == {"phone-A", "phone-B"} and len(got) == 15 + 10
    none = c.dask_table("fixes", columns=["t_utc"], t_from="2026-01-01T00:00Z").compute()
    assert len(none) == 0 and str(none["t_utc"].dtype) == "datetime64[ns, UTC]"


def test_a_time_without_a_zone_is_refused(case: Path) -> None:
    with pytest.raises(CaseError, match="no time zone"):
        open_case(case).select_files("fixes", t_from="2025-03-02")


def test_a_long_source_is_stored_in_row_groups_of_increasing_time(tmp_path: Path) -> None:
    """Inside one part (one source), rows are in time order and in groups of
    ``ROW_GROUP_ROWS``, so a day of a year-long tracker file skips the other groups."""
    import numpy as np
    import pyarrow.parquet as pq

    from routetrace.case import ROW_GROUP_ROWS

    n = 2 * ROW_GROUP_ROWS + 100
    t = pd.date_range("2025-01-01T00:00Z", periods=n, freq="30s")
    csv = tmp_path / "lorry.csv"
    pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "lat": 50.0 + np.arange(n) % 100 / 1e4,
                  "lon": 4.0}).to_csv(csv, index=False)
    ingest(tmp_path / "case", [csv], subject_id="lorry-1")
    c = open_case(tmp_path / "case")
    (part,) = c.table_files("fixes")
    md = pq.ParquetFile(part).metadata
    col = [md.schema.column(j).path for j in range(md.num_columns)].index("t_utc")
    ranges = [(md.row_group(g).column(col).statistics.min, md.row_group(g).column(col).statistics.max)
              for g in range(md.num_row_groups)]
    assert md.num_row_groups == 3 and all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    day = c.dask_table("fixes", columns=["t_utc"], t_from="2025-01-20T00:00Z",
                       t_to="2025-01-21T00:00Z").compute()
    assert len(day) == 2880  # a day of 30 s fixes, from the one group that holds it
