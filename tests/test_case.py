"""Case store, CLI and sample case: ingest, idempotence, quality report, determinism."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from routetrace.app.export import export_case
from routetrace.app.ingest import ingest
from routetrace.case import open_case
from routetrace.cli import main
from routetrace.errors import CaseError
from routetrace.samples import generate
from routetrace.testing import hash_tree

SDE = "1761264000"  # 2025-10-24T00:00:00Z


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_sample_generation_is_deterministic(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=7)
    generate(tmp_path / "b", seed=7)
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert a.keys() == b.keys() and a == b
    generate(tmp_path / "c", seed=8)
    assert _tree_bytes(tmp_path / "c") != a
    truth = json.loads((tmp_path / "a" / "truth.json").read_text())
    assert {s["subject_id"] for s in truth["stops"]} >= {"phone-A", "lorry-1"}
    assert any(s["observed"] == "partial" for s in truth["stops"])


def test_ingest_twice_is_byte_identical_and_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    generate(tmp_path / "s", seed=7)
    evidence = tmp_path / "s" / "evidence" / "phone-A"
    before = hash_tree(tmp_path / "s")
    ingest(tmp_path / "c1", [evidence], subject_id="phone-A", case_id="CASE-1")
    ingest(tmp_path / "c2", [evidence], subject_id="phone-A", case_id="CASE-1")
    assert hash_tree(tmp_path / "s") == before  # evidence untouched
    c1, c2 = _tree_bytes(tmp_path / "c1"), _tree_bytes(tmp_path / "c2")
    assert c1 == c2
    rep = ingest(tmp_path / "c1", [evidence], subject_id="phone-A")
    assert rep.added == [] and len(rep.duplicates) == 1
    again = _tree_bytes(tmp_path / "c1")
    assert {k: v for k, v in again.items() if k.startswith("tables/")} == {
        k: v for k, v in c1.items() if k.startswith("tables/")}
    assert any(k.startswith("tables/fixes/source=") for k in again)
    case = open_case(tmp_path / "c1")
    assert case.manifest["created"] == "2025-10-24T00:00:00Z"
    fixes = case.table("fixes")
    assert len(fixes) == case.source_records()[0]["n_fixes"] > 500
    assert str(fixes["t_utc"].dtype) == "datetime64[ns, UTC]"
    assert (fixes["source_id"] == case.source_records()[0]["source_id"]).all()


def test_bad_files_go_to_the_quality_report_and_the_rest_loads(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "good.gpx").write_text('<gpx version="1.1"><trk><trkseg><trkpt lat="51" lon="3">'
                                 "<time>2025-10-24T20:00:00Z</time></trkpt><trkpt lat='51' lon='3'/>"
                                 "</trkseg></trk></gpx>")
    (ev / "empty.gpx").write_bytes(b"")
    (ev / "noise.bin").write_bytes(bytes(range(256)))
    (ev / "cut.gpx").write_text('<gpx version="1.1"><trk><trkseg><trkpt lat="51"')
    with zipfile.ZipFile(ev / "evil.zip", "w") as zf:
        zf.writestr("../../x.gpx", "<gpx/>")
    rep = ingest(tmp_path / "case", [ev])
    assert [Path(p).name for p in rep.added] == ["good.gpx"]
    assert len(rep.errors) == 4
    q = pd.read_csv(tmp_path / "case" / "quality.csv", dtype=str, keep_default_na=False)
    files = q[q["level"] == "file"]
    assert len(files) == 4
    assert files["reason"].str.contains("empty file").any()
    assert files["reason"].str.contains("unsafe path").any()
    recs = q[q["level"] == "record"]
    assert recs["record"].tolist() == ["trk[0]/seg[0]/pt[1]"] and "no <time>" in recs["reason"].iloc[0]


def test_open_case_refuses_a_non_case_folder(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(CaseError, match="not a case folder"):
        open_case(tmp_path)
    with pytest.raises(CaseError, match="not empty"):
        open_case(tmp_path, create=True)


def test_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    generate(tmp_path / "s")
    ingest(tmp_path / "c", [tmp_path / "s" / "evidence" / "phone-A"], subject_id="phone-A")
    csvs = export_case(tmp_path / "c", to="csv", out=tmp_path / "x")
    fixes = pd.read_csv(next(p for p in csvs if p.name == "fixes.csv"))
    assert len(fixes) == len(open_case(tmp_path / "c").table("fixes"))
    gj = export_case(tmp_path / "c", to="geojson", out=tmp_path / "x")
    doc = json.loads(next(p for p in gj if p.name == "fixes.geojson").read_text())
    assert doc["features"][0]["geometry"]["type"] == "Point"
    gp = export_case(tmp_path / "c", to="gpkg", out=tmp_path / "g1")
    gp2 = export_case(tmp_path / "c", to="gpkg", out=tmp_path / "g2")
    assert gp[0].read_bytes() == gp2[0].read_bytes()  # deterministic GeoPackage


def test_cli_errors_are_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.gpx").write_text("<gpx><trk>")
    rc = main(["ingest", str(tmp_path / "case"), str(tmp_path / "junk.gpx")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "junk.gpx" in err and "malformed XML" in err and "Traceback" not in err
    assert "junk.gpx" in (tmp_path / "case" / "quality.csv").read_text()  # what was tried is kept
    rc = main(["info", str(tmp_path / "nowhere")])
    assert rc == 1 and "not a case folder" in capsys.readouterr().err
    assert main(["export"]) == 2  # usage error
    assert "the following arguments are required" in capsys.readouterr().err


def test_cli_a_case_given_with_a_flag_is_a_usage_error_that_says_where_the_case_goes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--case CASE`` (or ``--case=CASE``) is the most natural mistake: the case folder is
    a positional argument. The usage error says so, on stderr and in --json's hint."""
    where = "the case folder takes no flag: it is the first argument after the command"
    assert main(["chronology", "--case", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --case" in err and f"hint: {where}" in err
    assert main(["chronology", f"--case={tmp_path / 'c'}", "--json"]) == 2
    cap = capsys.readouterr()
    obj = json.loads(cap.out)
    assert obj["exit_code"] == 2 and obj["hint"].startswith(where) and "required: case" in obj["error"]
    assert obj["kind"] == "UsageError" and obj["ok"] is False
    assert not (tmp_path / "c").exists()  # nothing was written
    assert main(["chronology", "--radius"]) == 2  # another usage error: no hint to give
    assert "hint" not in capsys.readouterr().err


def test_cli_an_argument_a_command_does_not_take_is_named_with_that_commands_usage(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``routetrace chronology CASE --subject X``: the error showed routetrace's own usage
    (``routetrace [-h] [--version] COMMAND ...``), not the flags chronology takes."""
    case = str(tmp_path / "c")
    assert main(["chronology", case, "--subject", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: routetrace chronology ") and "--radius-m" in err
    assert ("routetrace chronology: error: unrecognized arguments: --subject x "
            "(`routetrace chronology --help` lists what it takes)") in err
    assert main(["info", case, "extra", "--json"]) == 2
    obj = json.loads(capsys.readouterr().out)
    assert obj["kind"] == "UsageError" and obj["error"].startswith(
        "routetrace info: error: unrecognized arguments: extra")
    assert not (tmp_path / "c").exists()
    # export's format flag is --to: --format (ingest's) gets the hint
    assert main(["export", case, "--format", "gpkg", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "hint: export's output format is --to (csv, geojson or gpkg)" in err
    assert main(["ingest", case, str(tmp_path), "--format", "gpkg-nonesuch", "--to", "x"]) == 2
    assert "output format is --to" not in capsys.readouterr().err


def test_cli_an_unknown_time_zone_is_a_usage_error_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--tz was only checked by a loader that met a naive time, file by file, and the run
    ended "nothing could be loaded ... check the paths" with a case folder written."""
    (tmp_path / "a.csv").write_text("lat,lon,time\n51,3.8,2025-10-24 20:00:00\n")
    assert main(["ingest", str(tmp_path / "case"), str(tmp_path / "a.csv"), "--tz", "Mars/Olympus"]) == 2
    err = capsys.readouterr().err
    assert "argument --tz: unknown time zone 'Mars/Olympus'" in err
    assert not (tmp_path / "case").exists()
    assert main(["corroborate", str(tmp_path / "case"), "--tz", "CEST"]) == 2
    assert "argument --tz: unknown time zone 'CEST'" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "case"), str(tmp_path / "a.csv"), "--tz", "Europe/Brussels",
                 "--quiet"]) == 0


def test_cli_a_bad_option_value_is_named_with_a_hint_about_options(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A loader option with a wrong value fails every file it reaches: the error names the
    option and the hint points at --option, not only at the paths."""
    from routetrace.loaders import teltonika_codec as tc

    rec = tc.Record(t_ms=1_761_512_400_000, lat=51.0, lon=3.87, sats=9)
    (tmp_path / "lorry.bin").write_bytes(tc.encode_login("356307042441013")
                                         + tc.encode_tcp_frame([rec]))
    rc = main(["ingest", str(tmp_path / "case"), str(tmp_path / "lorry.bin"),
               "--option", "uere_m=-1"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "option uere_m must be a positive number of metres, got '-1'" in err
    assert "check the paths and the --option values" in err
    (tmp_path / "junk.bin").write_text("junk")  # no option given: the hint is about paths
    rc = main(["ingest", str(tmp_path / "case2"), str(tmp_path / "junk.bin")])
    assert rc == 1 and "hint: check the paths, or force a loader" in capsys.readouterr().err


def test_a_case_inside_the_evidence_folder_is_refused_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A case folder inside an input folder would be written into the evidence and walked
    as evidence; an input inside the case folder is the case's own file. Both are refused
    with one line naming the path, and the evidence folder keeps its bytes."""
    from routetrace.testing import example_gpx

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    example_gpx(evidence / "phone.gpx", [51.0, 51.001, 51.002])
    before = _tree_bytes(evidence)
    for case in (evidence / "case", evidence / "sub" / "case"):
        with pytest.raises(CaseError, match="inside this evidence folder"):
            ingest(case, [evidence], subject_id="phone-A")
        rc = main(["ingest", str(case), str(evidence), "--subject", "phone-A"])
        err = capsys.readouterr().err
        assert rc == 1 and "inside this evidence folder" in err and str(evidence) in err
        assert "Traceback" not in err
    assert _tree_bytes(evidence) == before
    ingest(tmp_path / "case", [evidence], subject_id="phone-A")
    with pytest.raises(CaseError, match="inside the case folder"):
        ingest(tmp_path / "case", [tmp_path / "case" / "case.json"])
    (tmp_path / "link").symlink_to(evidence)  # the same folder by another name
    with pytest.raises(CaseError, match="inside this evidence folder"):
        ingest(tmp_path / "link" / "case", [evidence])


def test_cli_formats_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats", "--json"]) == 0
    names = {f["name"] for f in json.loads(capsys.readouterr().out)["formats"]}
    assert {"gpx", "csv"} <= names


def test_csv_export_keeps_hostile_text_inert(tmp_path: Path) -> None:
    (tmp_path / "a.gpx").write_text('<gpx version="1.1"><wpt lat="51" lon="3"><name>=HYPERLINK("http://x","y")'
                                    "</name></wpt></gpx>")
    ingest(tmp_path / "c", [tmp_path / "a.gpx"])
    out = export_case(tmp_path / "c", to="csv", out=tmp_path / "x")
    places = pd.read_csv(next(p for p in out if p.name == "places.csv"), dtype=str)
    assert places["name"].iloc[0] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert open_case(tmp_path / "c").table("places")["name"].iloc[0].startswith("=")  # stored verbatim


def test_fixes_parts_are_geoparquet_that_geopandas_reads_as_points(tmp_path: Path) -> None:
    """Each fixes part is GeoParquet 1.1: WKB points (x = lon, y = lat; null where a position
    is missing), EPSG:4326 and the part's bbox, as QGIS, GDAL and geopandas read it."""
    import geopandas as gpd
    import numpy as np
    import pyarrow.parquet as pq

    gpx = tmp_path / "t.gpx"
    gpx.write_text(
        '<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
        '<trk><trkseg><trkpt lat="51.05" lon="3.72"><time>2025-10-26T21:00:00Z</time></trkpt>'
        '<trkpt lat="50.85" lon="4.35"><time>2025-10-26T22:00:00Z</time></trkpt>'
        "</trkseg></trk></gpx>", encoding="utf-8")
    ingest(tmp_path / "case", [gpx], subject_id="p")
    parts = sorted((tmp_path / "case" / "tables" / "fixes").rglob("*.parquet"))
    assert len(parts) == 1
    g = gpd.read_parquet(parts[0])
    assert g.crs is not None and g.crs.to_epsg() == 4326
    assert np.allclose(g.geometry.x, g["lon"]) and np.allclose(g.geometry.y, g["lat"])
    geo = json.loads(pq.read_schema(parts[0]).metadata[b"geo"])
    col = geo["columns"]["geometry"]
    assert geo["version"] == "1.1.0" and col["encoding"] == "WKB"
    assert col["geometry_types"] == ["Point"] and col["bbox"] == [3.72, 50.85, 4.35, 51.05]


def test_a_missing_position_is_a_null_geometry(tmp_path: Path) -> None:
    import geopandas as gpd
    import numpy as np

    from routetrace.case import _write_parquet

    df = pd.DataFrame({"lat": [51.0, np.nan, 50.5], "lon": [3.87, 4.0, np.nan]})
    _write_parquet(df, tmp_path / "x.parquet", geo=True)
    g = gpd.read_parquet(tmp_path / "x.parquet")
    assert [None if p is None else (p.x, p.y) for p in g.geometry] == [(3.87, 51.0), None, None]


@pytest.mark.parametrize("by_day", [False, True])
def test_a_dictionary_wider_than_a_row_group_is_written_per_row_group(tmp_path: Path,
                                                                       by_day: bool) -> None:
    """A dictionary column with more texts than a row group has rows (teltonika_io's
    record) holds in each row group the texts its rows use, not the whole dictionary
    (Parquet repeats a column's dictionary in every row group); it reads back as written,
    missing values included. A narrow dictionary stays one dictionary."""
    import pyarrow.parquet as pq

    from routetrace.case import _read_table, _write_parquet

    n = 40
    rec = pd.Categorical([f"line {i // 2}/rec {i % 2}" if i != 7 else None for i in range(n)],
                         categories=[f"line {i // 2}/rec {i % 2}" for i in range(n)])
    df = pd.DataFrame({"t_utc": pd.date_range("2025-10-26 22:00", periods=n, freq="10min",
                                              tz="UTC"),
                       "record": rec, "kind": pd.Categorical(["a", "b"] * (n // 2)),
                       "value": range(n)})
    path = tmp_path / "x.parquet"
    _write_parquet(df, path, geo=False, by_day=by_day, group=8)
    pf = pq.ParquetFile(path)
    assert pf.metadata.num_row_groups >= n // 8
    for g in range(pf.metadata.num_row_groups):
        rg = pf.read_row_group(g)
        used = set(rg.column("record").combine_chunks().dictionary.to_pylist())
        assert used == set(rg.column("record").to_pylist()) - {None}
        assert len(used) <= 8
        assert rg.column("kind").combine_chunks().dictionary.to_pylist() == ["a", "b"]
    back = _read_table(path, None)
    assert back["record"].tolist() == df["record"].tolist()
    assert back["record"].isna().sum() == 1
    assert back["record"].cat.categories.tolist() == [c for c in rec.categories if c != "line 3/rec 1"]
    assert back["value"].tolist() == list(range(n))


def test_case_json_does_not_list_the_sources_and_an_older_list_goes_at_the_next_ingest(tmp_path: Path) -> None:
    """The sources table lists the sources (case.json grew ~770 bytes a file with a JSON
    copy of each row); a case written with that copy loses it at its next ingest, and
    verify reads the table either way."""
    from routetrace.app.verify import verify_case
    from routetrace.testing import example_gpx

    a = example_gpx(tmp_path / "a.gpx", [51.0, 51.001, 51.002])
    b = example_gpx(tmp_path / "b.gpx", [50.0, 50.001])
    case_dir = tmp_path / "case"
    ingest(case_dir, [a], subject_id="phone")
    man = json.loads((case_dir / "case.json").read_text())
    assert "sources" not in man
    (rec,) = open_case(case_dir).source_records()
    assert Path(rec["path"]).name == "a.gpx" and rec["n_fixes"] == 3 and len(rec["source_id"]) == 64
    man["sources"] = [rec]  # as an older version wrote it
    (case_dir / "case.json").write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")
    assert verify_case(case_dir).ok
    ingest(case_dir, [b], subject_id="phone")
    assert "sources" not in json.loads((case_dir / "case.json").read_text())
    assert sorted(Path(s["path"]).name for s in open_case(case_dir).source_records()) == ["a.gpx", "b.gpx"]
    a.write_text("edited")  # the evidence changed: verify says so from the table
    bad = [(kind, Path(p).name, status) for kind, p, status, *_ in verify_case(case_dir).rows if status != "ok"]
    assert bad == [("source", "a.gpx", "changed")]


def test_cli_stops_quietly_when_its_reader_closes_stdout(tmp_path: Path) -> None:
    """``routetrace ... | head`` : the reader may close the pipe before routetrace writes.
    That printed a Python traceback (BrokenPipeError); it now exits 141 (128 + SIGPIPE)
    without a word, as Unix tools do."""
    import os
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)  # the reader is gone before anything is written
    try:
        proc = subprocess.run([sys.executable, "-c", "import sys; from routetrace.cli import main; "
                               "sys.exit(main(['formats', '--json']))"],
                              stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr


def test_cli_a_file_where_a_folder_belongs_is_a_usage_error(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--out or a case naming an existing file ended in 'internal error: FileExistsError' /
    'NotADirectoryError' after the work; it is a usage error naming the argument, first."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    (tmp_path / "a.gpx").write_text('<gpx version="1.1"><wpt lat="1" lon="1"/></gpx>')
    for argv, arg in ((["export", str(tmp_path / "case"), "--to", "csv", "--out", str(a_file)], "--out"),
                      (["demo", "--out", str(a_file)], "--out"),
                      (["ingest", str(a_file), str(tmp_path / "a.gpx")], "case")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"argument {arg}: {str(a_file)!r} is a file" in err and "internal error" not in err
    assert a_file.read_text() == "not a folder"
