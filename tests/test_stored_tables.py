"""Every table the sample case stores is declared in schema.py and validated when written (#16)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from routetrace import schema
from routetrace.case import open_case
from routetrace.errors import SchemaError


@pytest.mark.slow
def test_every_table_of_the_sample_case_is_declared(tmp_path: Path) -> None:
    from routetrace.app.demo import run_demo

    run_demo(tmp_path, seed=7)
    case = open_case(tmp_path / "case")
    names = case.table_names()
    assert {"stops", "meetings", "carpark_visits", "corroboration", "chronology",
            "teltonika_io"} <= set(names)
    assert [n for n in names if schema.kind_of(n) is None] == []
    for n in names:  # what is stored is what is declared
        schema.validate(pd.read_parquet(case.table_path(n)).drop(columns="geometry", errors="ignore"),
                        schema.kind_of(n) or n)
    assert json.loads((tmp_path / "case" / "case.json").read_text())["outputs"]


def test_a_stage_table_that_breaks_its_declaration_is_not_written(tmp_path: Path) -> None:
    from routetrace.app.ingest import ingest

    gpx = tmp_path / "a.gpx"
    gpx.write_text('<gpx version="1.1"><trk><trkseg><trkpt lat="51" lon="3"><time>2025-10-24T10:00:00Z'
                   "</time></trkpt></trkseg></trk></gpx>")
    ingest(tmp_path / "c", [gpx], subject_id="p")
    case = open_case(tmp_path / "c")
    bad = pd.DataFrame({"meeting_id": ["M1"], "subject_a": ["a"], "subject_b": ["b"],
                        "t_start": ["yesterday"]})  # a time column holding text
    with pytest.raises(SchemaError, match="meetings"):
        case.write_table("meetings", bad)
    assert not case.table_path("meetings").exists()
