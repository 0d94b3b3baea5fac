"""routetrace verify: a one-byte change in a source or an output is detected."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from routetrace.app.ingest import ingest
from routetrace.app.verify import verify_case
from routetrace.cli import main

GPX = ('<gpx version="1.1"><trk><trkseg><trkpt lat="51" lon="3"><time>2025-10-24T20:00:00Z'
       "</time></trkpt></trkseg></trk></gpx>")


def _flip(path: Path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_passes_then_catches_a_changed_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "a.gpx"
    src.write_text(GPX)
    ingest(tmp_path / "case", [src])
    rep = verify_case(tmp_path / "case")
    assert rep.ok and {r[0] for r in rep.rows} == {"source", "case output"}
    assert main(["verify", str(tmp_path / "case")]) == 0
    _flip(src)
    rep = verify_case(tmp_path / "case")
    assert not rep.ok
    assert [(r[0], r[2]) for r in rep.problems()] == [("source", "changed")]
    assert main(["verify", str(tmp_path / "case")]) == 1
    assert "changed" in capsys.readouterr().err
    src.unlink()
    assert verify_case(tmp_path / "case").problems()[0][2] == "missing"


def test_verify_catches_a_changed_output(tmp_path: Path) -> None:
    src = tmp_path / "a.gpx"
    src.write_text(GPX)
    ingest(tmp_path / "case", [src])
    (part,) = (tmp_path / "case" / "tables" / "fixes").rglob("*.parquet")
    _flip(part, offset=40)
    probs = verify_case(tmp_path / "case").problems()
    assert [(r[0], Path(r[1]).name, r[2]) for r in probs] == [("case output", "part-0.parquet", "changed")]


def test_verify_rehashes_archive_members(tmp_path: Path) -> None:
    z = tmp_path / "ev.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("phone/a.gpx", GPX)
    ingest(tmp_path / "case", [z])
    rep = verify_case(tmp_path / "case")
    assert rep.ok and any(r[1].endswith("ev.zip!phone/a.gpx") for r in rep.rows)
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("phone/a.gpx", GPX.replace("51", "52"))
    assert verify_case(tmp_path / "case").problems()[0][2] == "changed"
