"""Removing a source from a case (#22): exactly its rows and files go, the analyses are
re-derived, and the case equals one into which the source was never ingested.

Through the `routetrace` command, as a user would.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from routetrace.case import open_case
from routetrace.cli import main
from routetrace.testing import example_gpx, hash_tree


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], *, rc: int = 0) -> dict[str, Any]:
    got = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert got == rc, out
    return dict(json.loads(out))


def _parts(case: Path) -> dict[str, str]:
    return {str(p.relative_to(case)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((case / "tables").glob("*/source=*/part-*.parquet"))}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    assert main(["sample", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_a_removed_source_leaves_the_case_as_if_never_ingested(
        sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev, mapping = sample / "evidence", str(sample / "evidence" / "subjects.yaml")
    evidence_before = hash_tree(ev)
    full, without = str(tmp_path / "full"), str(tmp_path / "without")
    _json(capsys, ["ingest", full, str(ev), "--tz", "Europe/Brussels", "--subjects", mapping])
    kept = [str(ev / d) for d in ("case", "lorry-1", "phone-A", "phone-A-extraction", "phone-B")]
    _json(capsys, ["ingest", without, *kept, "--tz", "Europe/Brussels", "--subjects", mapping])
    for case in (full, without):
        _json(capsys, ["chronology", case])
        _json(capsys, ["copresence", case])
    parts_before = _parts(Path(full))

    rep = _json(capsys, ["remove-source", full, str(ev / "lorry-2" / "lorry-2_fmb125.bin"),
                         "lorry-2_positions.csv"])

    assert sorted(Path(s["path"]).name for s in rep["removed"]) == [
        "lorry-2_fmb125.bin", "lorry-2_positions.csv"]
    assert rep["subjects_removed"] == ["lorry-2"] and rep["devices_removed"] == ["lorry-2-tracker"]
    assert any("chronology re-run" in line for line in rep["rederived"])
    gone = {s["source_id"][:16] for s in rep["removed"]}
    parts_after = _parts(Path(full))
    # exactly the removed sources' parts went; every other part is byte-identical
    assert {k: v for k, v in parts_before.items() if not any(g in k for g in gone)} == parts_after
    assert len(parts_after) < len(parts_before)
    a, b = open_case(full), open_case(without)
    for name in ("fixes", "events", "places", "sources", "rejects", "devices", "subjects",
                 "stops", "meetings"):
        x, y = a.table(name), b.table(name)
        if "path" in x.columns:  # the same files, ingested from another argument list
            x, y = x.drop(columns="path"), y.drop(columns="path")
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True), obj=name)
    quality = pd.read_csv(Path(full) / "quality.csv", dtype=str, keep_default_na=False)
    assert not quality["source_id"].str[:16].isin(gone).any()
    assert _json(capsys, ["verify", full])["ok"]
    assert hash_tree(ev) == evidence_before  # the evidence is never touched


def test_an_archive_names_its_members_and_a_wrong_name_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        example_gpx(tmp_path / d / "track.gpx", [50.0 + i / 1e4 + (d == "y") for i in range(6)])
    example_gpx(tmp_path / "other.gpx", [49.0 + i / 1e4 for i in range(4)])
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as z:
        for k in range(2):
            z.write(example_gpx(tmp_path / f"z{k}.gpx", [48.0 + k + i / 1e4 for i in range(3)]),
                    f"gps/z{k}.gpx")
    case = str(tmp_path / "case")
    _json(capsys, ["ingest", case, str(tmp_path / "x"), str(tmp_path / "y"),
                   str(tmp_path / "other.gpx"), str(tmp_path / "export.zip"), "--subject", "phone-A"])
    before = hash_tree(tmp_path / "case")

    err = _json(capsys, ["remove-source", case, "track.gpx"], rc=1)  # two files of that name
    assert "names 2 sources" in err["error"] and err["hint"]
    err = _json(capsys, ["remove-source", case, "other.gpx", "nosuch.gpx"], rc=1)
    assert "no source of the case is 'nosuch.gpx'" in err["error"]
    assert hash_tree(tmp_path / "case") == before  # names are resolved before any change

    rep = _json(capsys, ["remove-source", case, str(tmp_path / "y" / "track.gpx")])
    assert [Path(s["path"]).parent.name for s in rep["removed"]] == ["y"]
    assert rep["rows"]["fixes"] == 16 and rep["subjects_removed"] == []
    rep = _json(capsys, ["remove-source", case, str(tmp_path / "export.zip")])  # its members
    assert sorted(s["path"].split("!")[1] for s in rep["removed"]) == ["gps/z0.gpx", "gps/z1.gpx"]
    assert rep["rows"]["fixes"] == 10
    assert _json(capsys, ["verify", case])["ok"]
