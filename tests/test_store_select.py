"""Reading a day or a subject of a large case reads only the parts that can hold it (#22)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

from routetrace import schema
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


def test_time_slices_list_only_the_parts_that_overlap_each_period(case: Path) -> None:
    """Parts a1 (day 1, 10:00-10:29), a2 (day 2, 10:00-10:29), b2 (day 2, 11:00-11:29)."""
    c = open_case(case)
    name = {p: p.parent.name for p in c.table_files("fixes")}
    whole = c.table("fixes")
    days = c.time_slices("fixes", reach_back=pd.Timedelta("10min"), columns=["fix_id", "t_utc"])
    assert [(str(s.t_from), len(s.files)) for s in days] == [
        ("2025-03-01 00:00:00+00:00", 1), ("2025-03-02 00:00:00+00:00", 2)]
    half_hours = c.time_slices("fixes", every=pd.Timedelta("30min"), reach_back=pd.Timedelta("10min"))
    # 11:00 reaches back to 10:50: a2 (last fix 10:29) is not opened for it
    assert [(s.t_from.strftime("%d %H:%M"), sorted(name[p] for p in s.files)) for s in half_hours] == [
        ("01 10:00", [name[c.select_files("fixes", t_to="2025-03-02T00:00Z")[0]]]),
        ("02 10:00", [name[p] for p in c.select_files("fixes", subjects=["phone-A"],
                                                      t_from="2025-03-02T00:00Z")]),
        ("02 11:00", [name[p] for p in c.select_files("fixes", subjects=["phone-B"])])]
    for slices in (days, half_hours, c.time_slices("fixes", every=pd.Timedelta("7min"),
                                                   reach_back=pd.Timedelta("25min"))):
        own, back = [], 0
        for s in slices:
            got = s.read()
            assert got["t_utc"].min() >= s.t_from - s.reach_back and got["t_utc"].max() < s.t_to
            own.append(got[got["t_utc"] >= s.t_from])
            back += int((got["t_utc"] < s.t_from).sum())
        # every row in the period of exactly one slice
        def by_time(df: pd.DataFrame) -> pd.DataFrame:  # a slice read with columns has the derived id
            ids = df["fix_id"] if "fix_id" in df.columns else schema.fix_ids(df)
            return pd.DataFrame({"fix_id": ids.astype(str), "t_utc": df["t_utc"]}).sort_values(
                ["t_utc", "fix_id"]).reset_index(drop=True)

        pd.testing.assert_frame_equal(by_time(pd.concat(own)), by_time(whole))
    assert back > 0  # the 7 min periods read the 25 min before them
    assert c.time_slices("fixes", every=pd.Timedelta("1D"))[0].read().columns.tolist() == whole.columns.tolist()
    with pytest.raises(CaseError, match="positive"):
        c.time_slices("fixes", every=pd.Timedelta(0))


def test_a_time_without_a_zone_is_refused(case: Path) -> None:
    with pytest.raises(CaseError, match="no time zone"):
        open_case(case).select_files("fixes", t_from="2025-03-02")


def test_a_long_source_is_stored_in_row_groups_of_increasing_time(tmp_path: Path) -> None:
    """Inside one part (one source), rows are in time order, in groups cut at UTC days and
    of at most ``ROW_GROUP_ROWS`` rows, so a day of a year-long tracker file skips the
    other groups."""
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
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    # 45.5 days of 30 s fixes: a group per UTC day, none across midnight
    assert md.num_row_groups == 46 and all(a.floor("D") == b.floor("D") for a, b in ranges)
    day = c.dask_table("fixes", columns=["t_utc"], t_from="2025-01-20T00:00Z",
                       t_to="2025-01-21T00:00Z").compute()
    assert len(day) == 2880  # a day of 30 s fixes, from the one group that holds it
    (jan20,) = [g for g, (a, _) in enumerate(ranges) if a == pd.Timestamp("2025-01-20T00:00Z")]
    assert md.row_group(jan20).num_rows == 2880


def test_a_day_of_a_1hz_phone_is_cut_at_row_group_rows() -> None:
    from routetrace.case import ROW_GROUP_ROWS, _day_groups

    t = pd.Series(pd.date_range("2025-01-01T22:00Z", periods=30 * 3600, freq="1s"))
    starts = _day_groups(t)
    assert starts == [0, 7200, 7200 + ROW_GROUP_ROWS, 7200 + 86400]
