"""Integrity across the whole real corpus (issue 10, item 3).

``routetrace ingest`` over every file of ../shared/realdata, then chronology, export and
verify: every input stays byte-identical. Two ingests of the same inputs into two case
folders, with ``SOURCE_DATE_EPOCH`` and the same case id, give byte-identical case files
(tables, case.json, quality.csv).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routetrace.case import open_case
from routetrace.cli import main
from routetrace.testing import hash_tree


def _case_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_realdata_byte_identical_and_ingest_reproducible(
        realdata_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761336000")
    before = hash_tree(realdata_dir)
    assert len(before) > 50
    cases = [tmp_path / "run1" / "case", tmp_path / "run2" / "case"]
    for case in cases:
        assert main(["ingest", str(case), str(realdata_dir), "--case-id", "realdata", "-q"]) == 0
    assert hash_tree(realdata_dir) == before, "ingest changed an input"

    one, two = (_case_files(c) for c in cases)
    assert {"case.json", "quality.csv", "tables/sources.parquet", "tables/rejects.parquet"} <= set(one)
    assert any(name.startswith("tables/fixes/source=") for name in one)  # one part per source
    assert sorted(one) == sorted(two)
    differ = [name for name in one if one[name] != two[name]]
    assert not differ, f"two ingests differ in {differ}"

    manifest = json.loads(one["case.json"])
    assert manifest["created"] == "2025-10-24T20:00:00Z"
    loaded = {Path(s["path"]).resolve() for s in open_case(cases[0]).source_records()}
    assert len(loaded) >= 30  # most of the corpus is readable by the loaders present

    # later commands read the case and the evidence, never write to the evidence
    case = cases[0]
    assert main(["chronology", str(case), "-q"]) == 0
    assert main(["export", str(case), "--to", "csv", "--out", str(tmp_path / "export"), "-q"]) == 0
    assert main(["verify", str(case), "-q"]) == 0
    assert hash_tree(realdata_dir) == before, "a command changed an input"
