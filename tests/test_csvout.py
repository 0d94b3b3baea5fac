"""The one CSV writer: formula-safe text, numbers left as numbers, times ISO UTC without
rounding, durations in seconds with the unit in the column name, deterministic bytes."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from routetrace.csvout import FORMULA_START, formula_safe, write_csv
from routetrace.errors import ExportError

HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "=cmd|' /C calc'!A0"]


def _rows(p: Path) -> list[list[str]]:
    with open(p, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_text_cells_are_inert_and_numbers_stay_numbers(tmp_path: Path) -> None:
    df = pd.DataFrame({
        "name": pd.array(HOSTILE, dtype="string"),
        "obj": pd.Series(HOSTILE, dtype=object),
        "lon": [-0.5, -2.0, 3.0, 1e-9, -1.5, 0.0, 4.0],
        "n": pd.array([-2, 1, None, 3, 4, 5, 6], dtype="Int64"),
    })
    rows = _rows(write_csv(df, tmp_path / "x.csv"))
    assert rows[0] == ["name", "obj", "lon", "n"]
    for r in rows[1:]:
        assert r[0][0] == "'" and r[1][0] == "'"
        assert r[0][1:] in HOSTILE
    assert [r[2] for r in rows[1:3]] == ["-0.5", "-2.0"] and rows[1][3] == "-2"
    assert not any(c.startswith(FORMULA_START) for r in rows for c in r[:2])


def test_times_and_durations(tmp_path: Path) -> None:
    df = pd.DataFrame({
        "t_s": pd.to_datetime(["2025-10-26T01:30:00Z", None], utc=True),
        "t_ns": pd.to_datetime(["2025-10-26T01:30:00.123456789Z", "2025-10-26T01:30:01Z"], utc=True,
                               format="ISO8601"),
        "t_local": pd.to_datetime(["2025-10-26T02:30:00+01:00", "2025-10-26T02:30:00+02:00"], utc=True)
        .tz_convert("Europe/Brussels"),
        "dwell": pd.to_timedelta(["0 days 00:01:00", None]),
    })
    rows = _rows(write_csv(df, tmp_path / "x.csv"))
    assert rows[0] == ["t_s", "t_ns", "t_local", "dwell_s"]
    assert rows[1] == ["2025-10-26T01:30:00Z", "2025-10-26T01:30:00.123456789Z", "2025-10-26T01:30:00Z", "60.0"]
    assert rows[2] == ["", "2025-10-26T01:30:01.000000000Z", "2025-10-26T00:30:00Z", ""]
    assert "days" not in (tmp_path / "x.csv").read_text()


def test_same_table_same_bytes_and_input_unchanged(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": ["=1", "b"], "d": pd.to_timedelta([1, 2], unit="s")})
    before = df.copy()
    a, b = write_csv(df, tmp_path / "a.csv"), write_csv(df, tmp_path / "b.csv")
    assert a.read_bytes() == b.read_bytes() and a.read_bytes().endswith(b"\n") and b"\r" not in a.read_bytes()
    pd.testing.assert_frame_equal(df, before)


def test_duration_column_clash_and_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="dwell_s"):
        formula_safe(pd.DataFrame({"dwell": pd.to_timedelta([1], unit="s"), "dwell_s": [1.0]}))
    with pytest.raises(ExportError, match="cannot write"):
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "missing" / "x.csv")


def test_carriage_return_inside_a_cell_cannot_forge_a_row(tmp_path: Path) -> None:
    # a bare CR is a row break to spreadsheets and csv readers: the cell must be quoted
    df = pd.DataFrame({"text": ["ok\r=HYPERLINK(\"http://x\",\"y\")", "plain"], "lon": [-0.5, 2.0],
                       "t": pd.to_datetime(["2025-01-01T00:00Z", None], utc=True)})
    p = write_csv(df, tmp_path / "x.csv")
    rows = _rows(p)
    assert rows == [["text", "lon", "t"], ["ok\r=HYPERLINK(\"http://x\",\"y\")", "-0.5", "2025-01-01T00:00:00Z"],
                    ["plain", "2.0", ""]]
    # both paths write the same bytes for a table without a CR
    from routetrace.csvout import _write_quoting_cr
    t = pd.DataFrame({"s": ["a,b", 'q"x', "l\nm", None, "=1"], "f": [1.5, None, -2.0, 1e-9, 3.0],
                      "i": pd.array([1, None, -3, 4, 5], dtype="Int64"), "b": [True, False, True, False, True],
                      "d": pd.to_timedelta([1, None, 2, 3, 4], unit="s")})
    _write_quoting_cr(formula_safe(t), tmp_path / "slow.csv")
    assert (tmp_path / "slow.csv").read_bytes() == write_csv(t, tmp_path / "fast.csv").read_bytes()
