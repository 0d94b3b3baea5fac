"""Every table the sample case stores is declared in schema.py and validated when written (#16)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def test_every_table_a_stage_or_ingest_writes_by_name_is_declared() -> None:
    """The names the package passes to ``write_table`` literally, and the derived tables
    ingest re-derives, are all declared (the loaders' side tables: the next test)."""
    import ast

    import routetrace
    from routetrace.app.ingest import DERIVED

    root = Path(routetrace.__file__).parent
    written = set()
    for path in root.rglob("*.py"):
        if {"tests", "bench", ".venv"} & set(path.relative_to(root).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "write_table" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                written.add(node.args[0].value)
    assert {"stops", "meetings", "chronology", "corroboration_sequence"} <= written
    assert sorted(n for n in written | set(DERIVED) if schema.kind_of(n) is None) == []


def _timeline_android(path: Path) -> Path:
    """A Google Timeline (Android) export with one Wi-Fi scan of two access points and one
    position: the scan goes to the side table ``wifi_scans``."""
    t = "2025-07-04T09:37:34.000+02:00"
    path.write_text(json.dumps({"rawSignals": [
        {"wifiScan": {"deliveryTime": t, "devicesRecords": [
            {"mac": 0x4A5D35F5E405, "rawRssi": -92}, {"mac": 0x0470568F37DF, "rawRssi": -71}]}},
        {"position": {"LatLng": "51.0°, 3.87°", "accuracyMeters": 12, "timestamp": t}},
    ]}), encoding="utf-8")
    return path


def _consolidated(path: Path) -> Path:
    """An iOS 4 consolidated.db with three harvested fixes and one cached Wi-Fi AP position
    (side table ``cache_positions``)."""
    import sqlite3

    from routetrace.testing import example_consolidated

    example_consolidated(path, n_fixes=3)
    con = sqlite3.connect(path)
    con.execute("INSERT INTO WifiLocation VALUES ('0:25:15:b5:12:4c', 316888646.15, 43.70209, 7.28827)")
    con.commit()
    con.close()
    return path


def _teltonika(path: Path) -> Path:
    """A codec-8E capture of two records (side tables ``teltonika_records``, ``teltonika_io``)."""
    from routetrace.samples.write_teltonika import AvlRecord, encode_capture

    recs = [AvlRecord(t_ms=1_761_500_000_000 + 30_000 * k, lat=51.0, lon=3.87, alt_m=10, angle=0,
                      sats=9, speed_kmh=0, priority=0, event_io=0, io=[(239, 1, 1), (66, 27_800, 2)])
            for k in range(2)]
    path.write_bytes(encode_capture("356307042441013", recs))
    return path


def test_the_side_tables_loaders_store_are_declared_valid_and_traced(tmp_path: Path) -> None:
    """Every table an ingest stores, the loaders' side tables included, is declared and
    validated; each side-table row names its source (wifi_scans had no source_id)."""
    from routetrace.app.ingest import ingest

    ev = tmp_path / "evidence"
    ev.mkdir()
    inputs = [_timeline_android(ev / "Timeline.json"), _consolidated(ev / "consolidated.db"),
              _teltonika(ev / "fmb125.bin")]
    rep = ingest(tmp_path / "case", inputs, subject_id="phone")
    assert rep.errors == [] and len(rep.added) == 3
    case = open_case(tmp_path / "case")
    names = case.table_names()
    assert {"wifi_scans", "cache_positions", "teltonika_records", "teltonika_io"} <= set(names)
    assert [n for n in names if schema.kind_of(n) is None] == []
    for n in names:  # what is stored is what is declared
        for f in case.table_files(n):
            schema.validate(pd.read_parquet(f).drop(columns="geometry", errors="ignore"),
                            schema.kind_of(n) or n)
    fmt = dict(zip(case.table("sources")["format"], case.table("sources")["source_id"], strict=True))
    wifi, cache = case.table("wifi_scans"), case.table("cache_positions")
    assert wifi["mac"].tolist() == ["4a:5d:35:f5:e4:05", "04:70:56:8f:37:df"]
    assert wifi["rssi"].tolist() == [-92.0, -71.0]
    assert set(wifi["source_id"]) == {fmt["google-timeline-android"]}
    assert cache[["table", "lat", "lon"]].values.tolist() == [["WifiLocation", 43.70209, 7.28827]]
    assert set(cache["source_id"]) == {fmt["ios-consolidated"]}
    assert cache["flags"].tolist() == ["cache_not_device"]


def test_a_later_ingest_leaves_the_side_tables_it_adds_nothing_to_unread_and_unwritten(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement or a GPX added to a case holding a tracker capture read the capture's
    IO and records tables whole and wrote them again, and read its fixes whole (a GPX added
    to a case of a 1e6-record capture: 4.9 s, 1.8 GB; now 1.2 s, 0.2 GB); a second capture
    still adds its rows to them."""
    from routetrace.app.ingest import ingest
    from routetrace.case import Case
    from routetrace.testing import example_gpx

    ev = tmp_path / "evidence"
    ev.mkdir()
    ingest(tmp_path / "case", [_teltonika(ev / "fmb125.bin")], subject_id="lorry")
    case = open_case(tmp_path / "case")
    side = ("teltonika_records", "teltonika_io")
    files = {n: case.table_files(n) for n in side}
    before = {n: [(f.read_bytes(), f.stat().st_mtime_ns) for f in files[n]] for n in side}
    rows = {n: len(case.table(n)) for n in side}
    read: list[str] = []
    real = Case.table

    def table(self: Case, name: str) -> pd.DataFrame:
        read.append(name)
        return real(self, name)

    monkeypatch.setattr(Case, "table", table)
    rep = ingest(tmp_path / "case", [example_gpx(ev / "phone.gpx", [51.0, 51.001])], subject_id="phone")
    assert rep.errors == [] and len(rep.added) == 1
    assert not set(read) & set(side)
    # nor the fixes whole: the check for one device under two subjects reads the parts
    # around the new subject's time span only
    assert "fixes" not in read and "events" not in read
    assert {n: [(f.read_bytes(), f.stat().st_mtime_ns) for f in files[n]] for n in side} == before
    monkeypatch.undo()
    case = open_case(tmp_path / "case")
    assert {n: len(case.table(n)) for n in side} == rows
    # a second capture, of another device: its rows join the side tables, the first's stay
    from routetrace.samples.write_teltonika import AvlRecord, encode_capture

    recs = [AvlRecord(t_ms=1_761_600_000_000 + 30_000 * k, lat=50.0, lon=4.0, alt_m=10, angle=0,
                      sats=9, speed_kmh=0, priority=0, event_io=0, io=[(239, 0, 1), (66, 27_000, 2)])
            for k in range(2)]
    (ev / "other.bin").write_bytes(encode_capture("356307042441099", recs))
    rep = ingest(tmp_path / "case", [ev / "other.bin"], subject_id="lorry-b")
    assert rep.errors == [] and len(rep.added) == 1
    case = open_case(tmp_path / "case")
    for n in side:
        t = case.table(n)
        assert len(t) == 2 * rows[n] and t["source_id"].nunique() == 2, n


def test_a_side_table_that_breaks_its_declaration_is_not_written(tmp_path: Path) -> None:
    t = pd.to_datetime(["2025-07-04T07:37:34Z"])
    wifi = pd.DataFrame({"source_id": ["a" * 64], "record": ["rawSignals[0]"], "t_utc": t,
                         "mac": ["4a:5d:35:f5:e4:05"], "rssi": [-92.0]})
    cache = pd.DataFrame({"source_id": ["b" * 64], "record": ["WifiLocation/rowid=1"],
                          "table": ["WifiLocation"], "key": ['{"MAC":"0:25:15:b5:12:4c"}'],
                          "t_utc": t, "lat": [43.70209], "lon": [7.28827], "h_acc_m": [50.0],
                          "confidence": [50.0], "flags": ["cache_not_device"]})
    case = open_case(tmp_path / "c", create=True)
    with pytest.raises(SchemaError, match=r"wifi_scans\.t_utc"):
        case.write_table("wifi_scans", wifi.assign(t_utc=["2025-07-04 09:37"]))  # text, not a time
    with pytest.raises(SchemaError, match="wifi_scans: required column 'source_id' is missing"):
        case.write_table("wifi_scans", wifi.drop(columns="source_id"))
    with pytest.raises(SchemaError, match=r"cache_positions\.lat"):
        case.write_table("cache_positions", cache.assign(lat=["43.7"]))
    with pytest.raises(SchemaError, match="cache_positions: required column 'lon' is missing"):
        case.write_table("cache_positions", cache.drop(columns="lon"))
    assert not case.has_table("wifi_scans") and not case.has_table("cache_positions")
    case.write_table("wifi_scans", wifi)
    case.write_table("cache_positions", cache)
    case.save_manifest()
    again = open_case(tmp_path / "c")
    assert again.table("wifi_scans")["mac"].tolist() == ["4a:5d:35:f5:e4:05"]
    assert again.table("cache_positions")["lat"].tolist() == [43.70209]


def test_a_side_table_column_of_only_missing_values_is_stored_with_its_declared_dtype(
        tmp_path: Path) -> None:
    """A scan whose access points give no rssi has an rssi column of None (no dtype of its
    own): ingest stores it as the declared float, NaN, instead of refusing the ingest."""
    from routetrace.app.ingest import ingest

    p = tmp_path / "Timeline.json"
    p.write_text(json.dumps({"rawSignals": [{"wifiScan": {
        "deliveryTime": "2025-07-04T09:37:34.000+02:00",
        "devicesRecords": [{"mac": 0x4A5D35F5E405}, {"mac": 0x0470568F37DF}]}}]}), encoding="utf-8")
    rep = ingest(tmp_path / "case", [p], subject_id="phone")
    assert rep.errors == []
    wifi = open_case(tmp_path / "case").table("wifi_scans")
    assert str(wifi["rssi"].dtype) == "float64" and wifi["rssi"].isna().all() and len(wifi) == 2


def test_an_interrupt_while_a_table_is_staged_leaves_no_orphan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A time budget or Ctrl-C (a BaseException, not an OSError) in the middle of writing a
    staged table removes the half-written file; the case stays as it was."""
    import routetrace.case as case_mod
    from routetrace.case import STAGING

    root = tmp_path / "c"
    c = open_case(root, create=True)
    c.write_table("stops", schema.empty("stops"))
    c.save_manifest()
    before = sorted(p.relative_to(root) for p in root.rglob("*") if STAGING not in p.parts)

    def interrupted(df: pd.DataFrame, path: Path, **kw: Any) -> None:
        path.write_bytes(b"PAR1 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(case_mod, "_write_parquet", interrupted)
    c = open_case(root)
    with pytest.raises(KeyboardInterrupt):
        c.write_table("stops", schema.empty("stops"))
    assert not [p for p in (root / STAGING).rglob("*") if p.is_file()]
    c.abort()
    assert sorted(p.relative_to(root) for p in root.rglob("*") if STAGING not in p.parts) == before
