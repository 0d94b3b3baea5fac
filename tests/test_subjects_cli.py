"""One phone, one subject; a CLI that keeps its word (#18).

Everything here goes through the `routetrace` command, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from routetrace.app.analysis import run_chronology, run_copresence
from routetrace.app.ingest import ingest
from routetrace.case import open_case
from routetrace.cli import main


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], *, rc: int = 0) -> dict[str, Any]:
    got = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert got == rc, out
    return dict(json.loads(out))  # stdout is exactly one JSON object, also on failure


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    assert main(["sample", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def demo_like(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's way: each sample file ingested with its stated subject (samples.json)."""
    case = tmp_path_factory.mktemp("demo") / "case"
    for f in json.loads((sample / "samples.json").read_text()):
        ingest(case, [sample / f["path"]], subject_id=f["subject_id"], tz=f["tz"],
               format=f["format"])
    chrono = run_chronology(case)
    meetings = run_copresence(case)["meetings"]
    return {"subjects": set(open_case(case).table("fixes")["subject_id"].astype(str)),
            "stops": int((chrono["kind"] == "stop").sum()), "meetings": len(meetings)}


def test_folder_ingest_with_the_subjects_mapping_gives_the_demo_case(
        sample: Path, demo_like: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    case = str(tmp_path / "c")
    rep = _json(capsys, ["ingest", case, str(sample / "evidence"), "--tz", "Europe/Brussels",
                         "--subjects", str(sample / "evidence" / "subjects.yaml")])
    assert rep["subjects_created"] == ["lorry-1", "lorry-2", "phone-A", "phone-B"]
    assert rep["errors"] == [] and rep["warnings"] == []  # the mapping file is not evidence
    stops = _json(capsys, ["chronology", case])["stops"]
    meetings = _json(capsys, ["copresence", case])["meetings"]
    assert demo_like == {"subjects": {"lorry-1", "lorry-2", "phone-A", "phone-B"},
                         "stops": 16, "meetings": 12}
    assert stops == demo_like["stops"] and len(meetings) == demo_like["meetings"]
    assert not [m for m in meetings if m["subject_a"] == m["subject_b"]]
    view = _json(capsys, ["subjects", case])
    listed = view["subjects"]
    phone_a = next(s for s in listed if s["subject_id"] == "phone-A")
    assert [d["device_id"] for d in phone_a["devices"]] == ["phone-A-phone"]
    assert phone_a["kind"] == "person" and phone_a["t_first"] == "2025-10-24T12:00:00Z"
    # every source of the case is listed: the subjects' and, after them, the case material
    under_subjects = {src["source_id"] for s in listed for d in s["devices"] for src in d["sources"]}
    material = {m["source_id"]: m for m in view["case_material"]}
    sources = open_case(case).table("sources")
    assert under_subjects.isdisjoint(material)
    assert under_subjects | set(material) == set(sources["source_id"].astype(str))
    assert material and all(m["n_places"] > 0 for m in material.values())  # the statements
    assert main(["subjects", case]) == 0
    text = capsys.readouterr().out
    assert "no subject (device case)" in text
    assert all(Path(m["path"]).name in text for m in material.values())
    # one column for the counts, however long a format's name (google-takeout-semantic)
    rows = [line for line in text.splitlines() if line.startswith("    ")]
    assert len(rows) == len(sources) and any("google-takeout-semantic" in r for r in rows)
    assert len({r.index(" fixes ") if " fixes " in r else r.index(" places ") for r in rows}) == 1


def test_without_a_mapping_ingest_warns_of_one_device_under_two_names(
        sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = str(tmp_path / "c")
    rep = _json(capsys, ["ingest", case, str(sample / "evidence"), "--tz", "Europe/Brussels"])
    warn = "\n".join(rep["warnings"])
    # phone-A's extraction (one device: the archive) and its GPX export
    assert "iphone_extraction and phone-A_locations look like ONE device" in warn
    assert ("paths: [" in warn and "phone-A-extraction/iphone_extraction.zip" in warn
            and "phone-A/phone-A_locations.gpx" in warn)
    assert "subjects.yaml looks like a subjects mapping" in warn
    # then the mapping: the sources are re-assigned and the analyses re-derived
    assert main(["chronology", case, "--quiet"]) == 0
    rep = _json(capsys, ["ingest", case, str(sample / "evidence"), "--tz", "Europe/Brussels",
                         "--subjects", str(sample / "evidence" / "subjects.yaml")])
    assert rep["added"] == [] and len(rep["reassigned"]) >= 10
    assert "chronology re-run with its recorded parameters" in rep["rederived"]
    c = open_case(case)
    assert sorted(c.table("subjects")["subject_id"]) == ["lorry-1", "lorry-2", "phone-A", "phone-B"]
    assert len(c.table("stops")) == 16


def test_reingest_with_another_subject_is_not_silently_ignored(
        sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gpx = str(sample / "evidence" / "phone-A" / "phone-A_locations.gpx")
    case = str(tmp_path / "c")
    _json(capsys, ["ingest", case, gpx, "--subject", "x"])
    rep = _json(capsys, ["ingest", case, gpx, "--subject", "phone-A"])
    assert rep["reassigned"] == [{"path": gpx, "from": "x", "to": "phone-A"}]
    assert set(open_case(case).table("fixes")["subject_id"]) == {"phone-A"}


def test_a_copied_case_verifies_from_a_third_folder_and_an_edited_export_fails(
        sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    shutil.copytree(sample / "evidence", work / "evidence")
    case = work / "case"
    _json(capsys, ["ingest", str(case), str(work / "evidence"), "--tz", "Europe/Brussels",
                   "--subjects", str(work / "evidence" / "subjects.yaml")])
    _json(capsys, ["chronology", str(case)])
    _json(capsys, ["export", str(case), "--to", "csv", "--out", str(work / "exports")])
    _json(capsys, ["exhibit", str(case), "--out", str(work / "exhibit"), "--no-static"])
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(work, copy)
    shutil.rmtree(work)  # nothing left where it was made
    third = tmp_path / "third"
    third.mkdir()
    monkeypatch.chdir(third)
    rep = _json(capsys, ["verify", str(copy / "case"), "--exhibit", str(copy / "exhibit")])
    assert rep["ok"] and not [f for f in rep["files"] if f["status"] != "ok"]
    kinds = {f["kind"] for f in rep["files"]}
    assert {"source", "case output", "export", "exhibit output"} <= kinds
    with open(copy / "exports" / "stops.csv", "a", encoding="utf-8") as fh:
        fh.write("edited\n")
    bad = _json(capsys, ["verify", str(copy / "case")], rc=1)
    assert bad["ok"] is False and "verification failed" in bad["error"]
    changed = [f for f in bad["result"]["files"] if f["status"] != "ok"]
    assert [(f["kind"], Path(f["path"]).name, f["status"]) for f in changed] == [
        ("export", "stops.csv", "changed")]


def _contract(argv: list[str], rc: int) -> dict[str, Any]:
    """Run the real command in a subprocess; stdout must be one JSON object."""
    r = subprocess.run([sys.executable, "-m", "routetrace.cli", *argv, "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == rc, (argv, r.returncode, r.stderr[-2000:])
    obj = json.loads(r.stdout)
    assert isinstance(obj, dict) and obj["ok"] is (rc == 0), obj
    assert "Traceback" not in r.stderr
    return dict(obj)


def test_every_command_prints_json_on_success_and_on_failure(sample: Path, tmp_path: Path) -> None:
    case = str(tmp_path / "c")
    ev = sample / "evidence"
    gpx = str(ev / "phone-A" / "phone-A_locations.gpx")
    ok = [["formats"], ["sample", "--out", str(tmp_path / "s2")],
          ["discover", str(ev / "phone-A-extraction" / "iphone_extraction.zip")],
          ["ingest", case, gpx, str(ev / "phone-B"), "--subject", "p"], ["info", case],
          ["subjects", case], ["chronology", case], ["copresence", case],
          ["carparks", case, "--geofences", str(sample / "geofences" / "carparks.geojson")],
          ["corroborate", case, str(ev / "case" / "statements.yaml"), "--tz", "Europe/Brussels"],
          ["export", case, "--to", "geojson", "--out", str(tmp_path / "gj")],
          ["exhibit", case, "--out", str(tmp_path / "ex"), "--no-static"], ["verify", case]]
    for argv in ok:
        _contract(argv, 0)
    empty = str(tmp_path / "empty")
    Path(empty).mkdir()
    (Path(empty) / "case.json").write_text((Path(case) / "case.json").read_text())
    errors: list[tuple[list[str], int, str]] = [
        (["ingest", str(tmp_path / "c2"), str(tmp_path / "no-such.gpx")], 1, "no such file"),
        (["info", str(tmp_path / "nowhere")], 1, "not a case folder"),
        (["chronology", case, "--min-dwell-min", "abc"], 2, "--min-dwell-min"),
        (["chronology", case, "--radius-m", "-5"], 2, "--radius-m"),
        (["copresence", case, "--max-dt-min", "0"], 2, "--max-dt-min"),
        (["carparks", case, "--geofences", str(tmp_path / "none.geojson")], 1, "geofences"),
        (["corroborate", case, str(tmp_path / "none.yaml")], 1, "none.yaml"),
        (["exhibit", str(tmp_path / "nowhere"), "--out", str(tmp_path / "e2")], 1, "not a case"),
        (["frobnicate"], 2, "invalid choice"),
    ]
    for argv, rc, needle in errors:
        obj = _contract(argv, rc)
        assert needle in json.dumps(obj), (argv, obj)
    assert not (tmp_path / "c2").exists()  # a mistyped input leaves nothing behind
    with open(gpx, "rb") as fh:
        data = fh.read()
    moved = tmp_path / "moved" / "deeper" / "edited"  # the case copied without its evidence
    shutil.copytree(Path(case), moved)
    obj = _contract(["verify", str(moved)], 1)
    assert "--base" in obj["hint"] and obj["result"]["ok"] is False
    assert data == Path(gpx).read_bytes()


def test_exhibit_without_a_chronology_refuses_with_a_hint(sample: Path, tmp_path: Path) -> None:
    case = str(tmp_path / "c")
    _contract(["ingest", case, str(sample / "evidence" / "phone-A" / "phone-A_locations.gpx")], 0)
    obj = _contract(["exhibit", case, "--out", str(tmp_path / "ex"), "--no-static"], 1)
    assert "no chronology" in obj["error"] and "routetrace chronology" in obj["hint"]
    assert not (tmp_path / "ex").exists()


def test_a_wrong_chromium_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.errors import ExportError
    from routetrace.maps.static import chromium_path

    monkeypatch.setenv("ROUTETRACE_CHROMIUM", "/nonexistent/chromium-xyz")
    with pytest.raises(ExportError, match="ROUTETRACE_CHROMIUM"):
        chromium_path()


def _big_gpx(path: Path, n: int) -> None:
    rows = [f'<trkpt lat="{50.8 + i * 1e-5:.6f}" lon="{4.3 + i * 1e-5:.6f}">'
            f"<time>2025-10-24T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z</time></trkpt>"
            for i in range(n)]
    path.write_text('<?xml version="1.0"?><gpx version="1.1" creator="t" '
                    'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
                    + "".join(rows) + "</trkseg></trk></gpx>\n", encoding="utf-8")


def _big_csv(path: Path, n: int) -> None:
    lines = ["time,lat,lon"] + [f"2025-10-24T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:"
                                f"{i % 60:02d}Z,{50.8 + i * 1e-6:.6f},{4.3 + i * 1e-6:.6f}"
                                for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _watch(proc: subprocess.Popen[bytes], fd: int, t0: float, needle: bytes) -> tuple[float, float, str]:
    """Seconds to the first stderr output and to the first output holding ``needle``."""
    buf = b""
    first = hit = None
    while time.monotonic() - t0 < 90:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        now = time.monotonic() - t0
        if first is None:
            first = now
        if needle in buf:
            hit = now
            break
    proc.kill()
    proc.wait()
    assert first is not None and hit is not None, buf[-800:]
    return first, hit, buf.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "pty"])
def test_progress_appears_within_2_s_of_starting_a_big_ingest(tmp_path: Path, terminal: bool) -> None:
    """A GPX on a terminal (one line redrawn) and a CSV through a pipe (plain lines): the
    step at once, then repeatedly the file being read and the time spent (and how far into
    the file the reader is, where /proc says so while the file is open)."""
    import pty

    if terminal:
        src = tmp_path / "big.gpx"
        _big_gpx(src, 300_000)
        master, slave = pty.openpty()
        err_fd, read_fd, needle = slave, master, b"file 1: big.gpx"
    else:
        src = tmp_path / "big.csv"
        _big_csv(src, 1_000_000)
        read_fd, err_fd = os.pipe()
        needle = b"file 1: big.csv \xc2\xb7 "
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "routetrace.cli", "ingest", str(tmp_path / "c"),
                             str(src), "--subject", "p"], stdout=subprocess.DEVNULL, stderr=err_fd)
    os.close(err_fd)
    first, hit, text = _watch(proc, read_fd, t0, needle)
    os.close(read_fd)
    assert first < 2.0, text  # the step is named before the heavy imports
    assert hit < first + 8.0, text  # then, repeatedly, the file and how far the reader is
    assert ("\r\x1b[K" in text) is terminal  # redrawn on a terminal, plain lines in a pipe


def test_a_mapping_matches_a_file_to_its_first_rule_whether_plain_path_or_glob() -> None:
    """SubjectMap.match indexes plain paths (a fleet's mapping names each file) and keeps
    globs in order: the first rule that matches wins, as trying each rule in turn would."""
    import fnmatch
    import random

    from routetrace.app.subjects import DeviceRule, SubjectMap

    rng = random.Random(3)
    names = [f"d{i}/f{j}.csv" for i in range(4) for j in range(4)]
    pool = [*names, "d1/*", "*/f2.csv", "d?/f0.csv", "[d]3/*", "*"]
    for _ in range(300):
        rules = [DeviceRule(f"dev{k}", f"s{k}", tuple(rng.sample(pool, rng.randint(1, 3))))
                 for k in range(rng.randint(1, 8))]
        m = SubjectMap(Path("/case/subjects.yaml"), rules)
        for name in names:
            want = next((r for r in rules if any(fnmatch.fnmatchcase(name, p) for p in r.patterns)), None)
            assert m.match(f"/case/{name}") == want, (name, rules)
    fleet = SubjectMap(Path("/case/subjects.yaml"),
                       [DeviceRule(f"t{i}", f"lorry{i}", (f"t{i}.csv",)) for i in range(20_000)])
    assert fleet.match("/case/t19999.csv").subject_id == "lorry19999"
    fleet.rules.append(DeviceRule("late", "late", ("late.csv",)))  # added later: indexed too
    assert fleet.match("/case/late.csv").device_id == "late"
    assert fleet.match("/case/none.csv") is None
