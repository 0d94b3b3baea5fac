"""The case store (issue 22): crash-safe ingest, a full disk, concurrent ingests, parts per
source that adding a source does not rewrite, and Dask reading straight from the store.

Every interrupted ingest is checked the same way: the case opens, ``verify`` passes, its
files are byte for byte those of the case before the ingest (or, killed after the commit,
those of the completed ingest), and running the ingest again gives exactly the case files of
an uninterrupted ingest.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from routetrace import case as store
from routetrace import schema
from routetrace.app.ingest import ingest
from routetrace.app.verify import verify_case
from routetrace.case import open_case
from routetrace.errors import CaseError, ParameterError
from routetrace.samples import generate

SDE = "1761264000"
FIRST = ("phone-A", "evidence/phone-A")
SECOND = ("lorry-1", "evidence/lorry-1")
INGEST = ("import sys; from routetrace.app.ingest import ingest; "
          "ingest(sys.argv[1], sys.argv[4:], subject_id=sys.argv[2] or None, case_id=sys.argv[3])")


def _tree(root: Path) -> dict[str, bytes]:
    """The case's files (the empty lock file aside)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != store.LOCK}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample evidence, and two reference cases built without interruption: the first
    subject only ("before") and both subjects ("after"). Every case lives at ``W/<name>/case``
    so the evidence paths recorded relative to the case folder are the same in all of them."""
    w = tmp_path_factory.mktemp("store")
    mp = pytest.MonkeyPatch()
    mp.setenv("SOURCE_DATE_EPOCH", SDE)
    generate(w / "s", seed=7)
    for name, steps in (("before", [FIRST]), ("after", [FIRST, SECOND])):
        for subject, rel in steps:
            ingest(w / name / "case", [w / "s" / rel], subject_id=subject, case_id="CASE")
    mp.undo()
    return {"w": w, "before": _tree(w / "before" / "case"), "after": _tree(w / "after" / "case")}


def _fresh(world: dict[str, Any], name: str) -> Path:
    """A copy of the "before" case at ``W/<name>/case``."""
    dest = world["w"] / name / "case"
    shutil.copytree(world["w"] / "before" / "case", dest)
    return dest


def _ingest_proc(case: Path, world: dict[str, Any], kill_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": SDE}
    env.pop(store.KILL_HOOK, None)
    if kill_at:
        env[store.KILL_HOOK] = kill_at
    subject, rel = SECOND
    return subprocess.Popen([sys.executable, "-c", INGEST, str(case), subject, "CASE",
                             str(world["w"] / "s" / rel)], env=env, stderr=subprocess.PIPE)


def _check_intact_then_rerun(case: Path, world: dict[str, Any], *, committed: bool,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    open_case(case)  # opens, and settles what the interrupted run left
    assert not (case / store.STAGING).exists()
    rep = verify_case(case)
    assert rep.ok, rep.problems()
    assert _tree(case) == world["after" if committed else "before"]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    subject, rel = SECOND
    ingest(case, [world["w"] / "s" / rel], subject_id=subject, case_id="CASE")
    assert _tree(case) == world["after"]
    assert verify_case(case).ok


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["stage:1", "stage:4", "commit"])
def test_sigkill_while_writing_leaves_the_case_as_it_was(
        world: dict[str, Any], kill_at: str, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _fresh(world, f"kill-{kill_at.replace(':', '-')}")
    proc = _ingest_proc(case, world, kill_at)
    proc.communicate(timeout=120)
    assert proc.returncode == -9  # SIGKILL, at the hook
    assert (case / store.STAGING).exists()  # it was killed with files written
    _check_intact_then_rerun(case, world, committed=kill_at == "commit", monkeypatch=monkeypatch)


@pytest.mark.slow
def test_a_first_ingest_killed_or_out_of_space_leaves_no_case(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    subject, rel = FIRST
    case = world["w"] / "first-kill" / "case"
    env = {**os.environ, "SOURCE_DATE_EPOCH": SDE, store.KILL_HOOK: "stage:2"}
    proc = subprocess.run([sys.executable, "-c", INGEST, str(case), subject, "CASE",
                           str(world["w"] / "s" / rel)], env=env, capture_output=True)
    assert proc.returncode == -9
    with pytest.raises(CaseError, match="not a case folder"):
        open_case(case)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    ingest(case, [world["w"] / "s" / rel], subject_id=subject, case_id="CASE")
    assert _tree(case) == world["before"]
    other = world["w"] / "first-full" / "case"
    with monkeypatch.context() as m:
        _enospc_on(m, "_write_parquet", 2)
        with pytest.raises(CaseError, match="No space left on device"):
            ingest(other, [world["w"] / "s" / rel], subject_id=subject, case_id="CASE")
    assert not other.exists()


@pytest.mark.slow
def test_sigkill_at_points_through_the_run(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL from outside at fractions of the time an uninterrupted ingest takes."""
    case = _fresh(world, "timed-full")
    t0 = time.monotonic()
    proc = _ingest_proc(case, world)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    full = time.monotonic() - t0
    assert _tree(case) == world["after"]
    for k, frac in enumerate((0.55, 0.75, 0.9, 0.97)):
        case = _fresh(world, f"timed-{k}")
        proc = _ingest_proc(case, world)
        time.sleep(full * frac)
        proc.kill()
        proc.communicate(timeout=60)
        open_case(case)
        state = _tree(case)
        assert state in (world["before"], world["after"]), f"killed at {frac:.0%}: a third state"
        _check_intact_then_rerun(case, world, committed=state == world["after"], monkeypatch=monkeypatch)


def _enospc_on(monkeypatch: pytest.MonkeyPatch, target: str, nth: int) -> None:
    real = getattr(store, target)
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == nth:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(store, target, failing)


@pytest.mark.parametrize(("target", "nth"), [("_write_parquet", 1), ("_write_parquet", 5),
                                             ("atomic_write", 1)])
def test_disk_full_injected(world: dict[str, Any], target: str, nth: int,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    case = _fresh(world, f"enospc-{target}-{nth}")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    subject, rel = SECOND
    with monkeypatch.context() as m:
        _enospc_on(m, target, nth)
        with pytest.raises(CaseError, match="No space left on device.*the case is as it was"):
            ingest(case, [world["w"] / "s" / rel], subject_id=subject, case_id="CASE")
    assert not (case / store.STAGING).exists()  # the failed run cleaned up after itself
    _check_intact_then_rerun(case, world, committed=False, monkeypatch=monkeypatch)


def test_disk_full_on_a_real_small_filesystem(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    mnt = world["w"] / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()}")
    try:
        case = mnt / "case"  # W/tmpfs/case: the same depth as the reference cases
        shutil.copytree(world["w"] / "before" / "case", case)
        st = os.statvfs(mnt)
        filler = mnt / "filler"
        filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 8192))  # 8 KiB left
        monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
        subject, rel = SECOND
        with pytest.raises(CaseError, match="No space left on device"):
            ingest(case, [world["w"] / "s" / rel], subject_id=subject, case_id="CASE")
        assert not (case / store.STAGING).exists()
        filler.unlink()
        _check_intact_then_rerun(case, world, committed=False, monkeypatch=monkeypatch)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _gpx_track(path: Path, n: int, *, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = pd.Timestamp("2025-10-24T06:00Z") + pd.to_timedelta(np.arange(n) * 5, unit="s")
    lat = 51.0 + np.cumsum(rng.normal(0, 1e-4, n))
    lon = 3.7 + np.cumsum(rng.normal(0, 1e-4, n))
    pts = "".join(f'<trkpt lat="{a:.6f}" lon="{b:.6f}"><time>{c:%Y-%m-%dT%H:%M:%SZ}</time></trkpt>'
                  for a, b, c in zip(lat, lon, t, strict=True))
    path.write_text(f'<gpx version="1.1"><trk><trkseg>{pts}</trkseg></trk></gpx>')


@pytest.mark.slow
def test_two_concurrent_ingests_into_one_case_lose_nothing(tmp_path: Path) -> None:
    n = 20_000
    for k in (1, 2):
        _gpx_track(tmp_path / f"truck{k}.gpx", n, seed=k)
    for trial in range(2):
        case = tmp_path / f"case{trial}"
        procs = [subprocess.Popen([sys.executable, "-c", INGEST, str(case), f"truck{k}", "C",
                                   str(tmp_path / f"truck{k}.gpx")], stderr=subprocess.PIPE)
                 for k in (1, 2)]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()
        c = open_case(case)
        assert len(c.table("sources")) == 2
        assert c.table("fixes")["subject_id"].value_counts().to_dict() == {"truck1": n, "truck2": n}
        assert verify_case(case).ok


def test_a_case_changed_by_another_process_since_opened_refuses_to_write(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    case = _fresh(world, "stale")
    stale = open_case(case)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    subject, rel = SECOND
    ingest(case, [world["w"] / "s" / rel], subject_id=subject, case_id="CASE")
    with pytest.raises(CaseError, match="changed this case since it was opened"):
        stale.write_table("stops", stale.table("stops"))
    assert _tree(case) == world["after"]


def _parts(case: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(case).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for kind in store.PARTITIONED for p in sorted((case / "tables" / kind).rglob("*.parquet"))}


def test_adding_a_source_rewrites_no_part_of_the_sources_already_in(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    case = _fresh(world, "append")
    before = _parts(case)
    assert before and all("/source=" in k for k in before)
    time.sleep(0.01)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    subject, rel = SECOND
    ingest(case, [world["w"] / "s" / rel], subject_id=subject, case_id="CASE")
    after = _parts(case)
    assert {k: after[k] for k in before} == before  # same bytes, same modification times
    added = sorted(set(after) - set(before))
    lorry = open_case(case).table("sources")
    lorry_ids = set(lorry.loc[lorry["subject_id"] == "lorry-1", "source_id"].astype(str))
    assert added and {k.split("source=")[1][:16] for k in added} == {s[:16] for s in lorry_ids}
    # removing those sources removes exactly their files; the rest is the case before
    c = open_case(case)
    for sid in sorted(lorry_ids):
        c.remove_source(sid)
    c.save_manifest()
    assert _parts(case) == before
    ref = open_case(world["w"] / "before" / "case")
    for kind in store.PARTITIONED:
        pd.testing.assert_frame_equal(open_case(case).table(kind), ref.table(kind))
    assert verify_case(case).ok


def test_an_ingest_that_merges_its_results_as_it_goes_writes_the_same_case(
        world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loaded files' sources, rejects and side tables folded every 2 files (every 256 by
    default, so that a fleet-year of day files does not hold pandas frames per file to the
    end): the same case, byte for byte, a Teltonika file's side tables included."""
    from routetrace.app import ingest as ingest_mod
    from routetrace.testing import example_gpx

    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.copy(world["w"] / "s" / "evidence" / "lorry-1" / "lorry-1_fmb125.bin", ev / "c.bin")
    for k in range(4):
        example_gpx(ev / f"{'abde'[k]}.gpx", [51.0 + k / 100, 51.001], start=f"2025-03-0{k + 1}T10:00:00Z")
    (ev / "f.csv").write_text("time,lat,lon\n2025-03-05T10:00:00Z,51.0,3.87\n2025-03-05T10:01:00Z,999,3.87\n")
    folded: list[str] = []
    real = ingest_mod._NewSources.joined

    def spy(self: Any, name: str) -> Any:
        folded.append(name)
        return real(self, name)

    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    ingest(tmp_path / "one" / "case", [ev], subject_id="lorry-1", case_id="CASE")
    monkeypatch.setattr(ingest_mod, "FOLD_SOURCES", 2)
    monkeypatch.setattr(ingest_mod._NewSources, "joined", spy)
    ingest(tmp_path / "two" / "case", [ev], subject_id="lorry-1", case_id="CASE")
    assert {"sources", "rejects"} <= set(folded)  # something was folded
    one = open_case(tmp_path / "one" / "case")
    assert len(one.table("sources")) == 6 and len(one.table("rejects")) == 1
    assert one.has_table("teltonika_records")
    assert _tree(tmp_path / "two" / "case") == _tree(tmp_path / "one" / "case")


def test_tables_read_from_parts_equal_the_whole_table_stored_as_one_file(world: dict[str, Any]) -> None:
    """Same rows, dtypes and order as the single-file store had; an old single-file case
    still opens and moves to parts when a source is added."""
    case = open_case(world["w"] / "after" / "case")
    assert len(case.table_files("fixes")) >= 2
    for kind in store.PARTITIONED:
        whole = world["w"] / f"{kind}.parquet"
        t = case.table(kind)
        store._write_parquet(t, whole, geo=True)
        pd.testing.assert_frame_equal(store._read_table(whole, kind), t)
        assert case.n_rows(kind) == len(t)


def test_a_case_stored_before_parts_opens_and_takes_a_new_source(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    case = _fresh(world, "legacy")
    old = open_case(case)
    manifest = json.loads((case / "case.json").read_text())
    for kind in store.PARTITIONED:  # the layout of routetrace before parts: one file a table
        t = old.table(kind)
        shutil.rmtree(case / "tables" / kind, ignore_errors=True)
        manifest["outputs"] = {k: v for k, v in manifest["outputs"].items()
                               if not k.startswith(f"tables/{kind}/")}
        store._write_parquet(t, case / "tables" / f"{kind}.parquet", geo=True)
        manifest["outputs"][f"tables/{kind}.parquet"] = store.sha256_file(case / "tables" / f"{kind}.parquet")
    manifest["outputs"].pop(store.LEDGER)  # ... and no ledger of parts
    (case / store.LEDGER).unlink()
    (case / "case.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    legacy = open_case(case)
    ref = open_case(world["w"] / "before" / "case")
    for kind in store.PARTITIONED:
        pd.testing.assert_frame_equal(legacy.table(kind), ref.table(kind))
    assert verify_case(case).ok
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    subject, rel = SECOND
    ingest(case, [world["w"] / "s" / rel], subject_id=subject, case_id="CASE")
    assert _tree(case) == world["after"]


def test_dask_table_reads_the_store(world: dict[str, Any]) -> None:
    case = open_case(world["w"] / "after" / "case")
    ddf = case.dask_table("fixes")
    got = store.sort_table(ddf.compute(), "fixes")
    pd.testing.assert_frame_equal(got, case.table("fixes"))
    cols = ["fix_id", "subject_id", "t_utc"]
    some = case.dask_table("fixes", columns=cols).compute()
    assert list(some.columns) == cols and len(some) == len(got)
    assert str(some["t_utc"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.allow_loopback
@pytest.mark.slow
def test_dask_stages_read_the_store_and_equal_the_in_memory_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """co-presence and car-park visits with ``dask=True``: the workers read the fixes from
    the case's parts (the client never loads the fixes table) and store the same tables."""
    import geopandas as gpd
    import shapely

    from routetrace.app.analysis import run_carparks, run_copresence
    from routetrace.samples.scenario import PLACES, build_scenario

    sc = build_scenario(7)
    for s in ("phone-A", "lorry-1", "lorry-2"):
        pts = "".join(f'<trkpt lat="{r.lat}" lon="{r.lon}"><time>{r.t_utc.isoformat()}</time></trkpt>'
                      for r in sc.tracks[s].itertuples())
        (tmp_path / f"{s}.gpx").write_text(f'<gpx version="1.1"><trk><trkseg>{pts}</trkseg></trk></gpx>')
        ingest(tmp_path / "mem" / "case", [tmp_path / f"{s}.gpx"], subject_id=s)
    names = [n for n in PLACES if n.endswith("carpark")]
    fences = tmp_path / "carparks.geojson"
    gpd.GeoDataFrame({"name": names}, crs="EPSG:4326", geometry=[
        shapely.Point(PLACES[n][1], PLACES[n][0]).buffer(0.0025) for n in names]).to_file(fences, driver="GeoJSON")
    shutil.copytree(tmp_path / "mem" / "case", tmp_path / "dask" / "case")
    mem, dsk = tmp_path / "mem" / "case", tmp_path / "dask" / "case"
    run_copresence(mem)
    run_carparks(mem, geofences=fences)

    real_table = store.Case.table

    def no_fixes_on_the_client(self: store.Case, name: str) -> pd.DataFrame:
        assert name != "fixes", "the Dask path loaded the whole fixes table on the client"
        return real_table(self, name)

    monkeypatch.setattr(store.Case, "table", no_fixes_on_the_client)
    run_copresence(dsk, dask=True)
    run_carparks(dsk, geofences=fences, dask=True)
    monkeypatch.undo()
    a, b = open_case(mem), open_case(dsk)
    assert len(a.table("meetings")) > 0 and len(a.table("carpark_visits")) > 5
    for name in ("copresence_pairs", "meetings", "carpark_visits", "carpark_hour_of_week",
                 "carpark_recurring", "carpark_unusual_dwell"):
        pd.testing.assert_frame_equal(b.table(name), a.table(name), obj=name)
    assert verify_case(dsk).ok


@pytest.mark.allow_loopback
@pytest.mark.slow
def test_copresence_by_period_from_the_store_equals_the_in_memory_path(world: dict[str, Any]) -> None:
    """One task per period on a 2-worker LocalCluster, each reading its period and the
    max_dt before it from the parts: exactly the in-memory pairs, whatever the period
    (days; 7 min, shorter than max_dt, so many periods reach back over several others)."""
    from routetrace.routes.copresence import find_copresence_pairs
    from routetrace.routes.distributed import STAGE_COLUMNS, dask_client, dask_copresence_by_period

    case = open_case(world["w"] / "after" / "case")
    fixes = case.table("fixes")
    assert fixes["t_utc"].dt.floor("D").nunique() >= 2
    with dask_client(n_workers=2):
        for every, params in ((pd.Timedelta("1D"), {}),
                              (pd.Timedelta("7min"), {"max_dt": pd.Timedelta("12min"), "radius_m": 300.0})):
            want = find_copresence_pairs(fixes, **params)
            assert len(want) > 0
            periods = case.time_slices("fixes", every=every, reach_back=params.get("max_dt", pd.Timedelta("10min")),
                                       columns=STAGE_COLUMNS)
            got = dask_copresence_by_period(periods, **params)
            pd.testing.assert_frame_equal(got, want)
            assert got.attrs["params"] == want.attrs["params"]
            with pytest.raises(ParameterError, match="less than max_dt"):
                dask_copresence_by_period(periods, max_dt=pd.Timedelta("1h"))


def test_copresence_by_period_finds_the_pair_across_midnight(tmp_path: Path) -> None:
    """A pair whose fixes lie on both sides of midnight UTC, in two parts of two days: found
    once, by the later day's task (no client: Dask's default scheduler)."""
    from routetrace.routes.copresence import find_copresence_pairs
    from routetrace.routes.distributed import STAGE_COLUMNS, dask_copresence_by_period
    from routetrace.testing import example_gpx

    lats = [51.0] * 5
    for name, subject, start in (("lorry", "lorry", "2025-03-01T23:50:00Z"),
                                 ("phone-1", "phone", "2025-03-01T23:40:00Z"),
                                 ("phone-2", "phone", "2025-03-02T00:03:00Z")):
        ingest(tmp_path / "case", [example_gpx(tmp_path / f"{name}.gpx", lats, start=start)], subject_id=subject)
    case = open_case(tmp_path / "case")
    days = case.time_slices("fixes", reach_back=pd.Timedelta("10min"), columns=STAGE_COLUMNS)
    # day 2 reaches back to 23:50: the lorry's part (23:50-23:54) and phone-2's, not phone-1's
    (lorry,) = case.select_files("fixes", subjects=["lorry"])
    assert [len(d.files) for d in days] == [2, 2] and lorry in days[0].files and lorry in days[1].files
    want = find_copresence_pairs(case.table("fixes"))
    assert (want["t_a"].dt.day != want["t_b"].dt.day).any()
    pd.testing.assert_frame_equal(dask_copresence_by_period(days), want)


def test_dask_table_of_whole_subjects(world: dict[str, Any]) -> None:
    """Partitions of whole subjects: no subject in two partitions, however small they are."""
    case = open_case(world["w"] / "after" / "case")
    ddf = case.dask_table("fixes", columns=["subject_id", "t_utc"], whole_subjects=True, partition_rows=1)
    parts = [ddf.get_partition(i).compute() for i in range(ddf.npartitions)]
    seen = [set(p["subject_id"]) for p in parts]
    assert len(parts) == len(set(case.table("fixes")["subject_id"])) >= 2
    assert all(not (a & b) for k, a in enumerate(seen) for b in seen[k + 1:])
    assert sum(len(p) for p in parts) == case.n_rows("fixes")


def _portal_fleet(folder: Path) -> Path:
    """Portal reports of three lorries: positions of lorry-A and lorry-B (a file each), each
    parked an hour in car park P; one event report holding the ignition and door events of
    all three (lorry-C has events and no fixes). Returns the car parks' GeoJSON."""
    import geopandas as gpd
    import shapely

    folder.mkdir()
    lines = ["Device,Fix Time,Type"]
    for k, lorry in enumerate(("lorry-A", "lorry-B")):
        t0 = pd.Timestamp("2025-03-01T20:00Z") + pd.Timedelta(hours=3 * k)
        rows = ["Device,Fix Time,Latitude,Longitude"]
        for i in range(-6, 70):  # 6 min driving in, an hour parked, 4 min driving out
            parked = 0 <= i < 60
            lat = 51.0 if parked else 51.0 + 0.002 * (i if i < 0 else i - 59)
            rows.append(f"{lorry},{(t0 + pd.Timedelta(minutes=i)).isoformat().replace('+00:00', 'Z')},{lat:.6f},3.870000")
        (folder / f"{lorry}.csv").write_text("\n".join(rows) + "\n")
        for minute, kind in ((1, "Ignition off"), (20, "Door open"), (58, "Ignition on")):
            lines.append(f"{lorry},{(t0 + pd.Timedelta(minutes=minute)).isoformat().replace('+00:00', 'Z')},{kind}")
    lines.append("lorry-C,2025-03-01T21:00:00Z,Ignition off")
    (folder / "events.csv").write_text("\n".join(lines) + "\n")
    fences = folder.parent / "carparks.geojson"
    gpd.GeoDataFrame({"name": ["P"]}, crs="EPSG:4326",
                     geometry=[shapely.Point(3.87, 51.0).buffer(0.001)]).to_file(fences, driver="GeoJSON")
    return fences


def test_tables_by_subject_put_each_subjects_rows_of_every_table_in_one_partition(tmp_path: Path) -> None:
    """Partition k of the fixes and of the events hold the same subjects; the event report
    holding all three lorries is read by both partitions, each taking its own rows; lorry-C
    (events, no fixes) is in the last one; every row is in exactly one partition."""
    _portal_fleet(tmp_path / "fleet")
    ingest(tmp_path / "case", [tmp_path / "fleet"])
    case = open_case(tmp_path / "case")
    t = case.dask_tables_by_subject(["fixes", "events"], columns={"fixes": ["subject_id", "t_utc"]},
                                    partition_rows=1)
    assert t["fixes"].npartitions == t["events"].npartitions == 2
    fixes = [t["fixes"].get_partition(k).compute() for k in range(2)]
    events = [t["events"].get_partition(k).compute() for k in range(2)]
    assert [sorted(set(f["subject_id"])) for f in fixes] == [["lorry-A"], ["lorry-B"]]
    assert [sorted(set(e["subject_id"])) for e in events] == [["lorry-A"], ["lorry-B", "lorry-C"]]
    assert list(fixes[0].columns) == ["subject_id", "t_utc"]
    whole = case.table("events")
    got = pd.concat(events, ignore_index=True)
    assert sorted(schema.event_ids(got)) == sorted(schema.event_ids(whole)) and len(whole) == 7
    # one partition of all subjects: the file is read once, without a row filter
    (one,) = [case.dask_tables_by_subject(["fixes", "events"])["events"].compute()]
    assert sorted(schema.event_ids(one)) == sorted(schema.event_ids(whole))


@pytest.mark.allow_loopback
@pytest.mark.slow
def test_carparks_from_the_store_read_the_events_on_the_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_carparks(dask=True)``: the workers read each partition's fixes and events from
    the store (the client loads neither table) and the stored visits, with their ignition
    and door counts, equal the in-memory path's."""
    from routetrace.app.analysis import run_carparks

    fences = _portal_fleet(tmp_path / "fleet")
    ingest(tmp_path / "mem" / "case", [tmp_path / "fleet"])
    shutil.copytree(tmp_path / "mem" / "case", tmp_path / "dask" / "case")
    mem, dsk = tmp_path / "mem" / "case", tmp_path / "dask" / "case"
    run_carparks(mem, geofences=fences)
    real_table = store.Case.table

    def nothing_large_on_the_client(self: store.Case, name: str) -> pd.DataFrame:
        assert name not in ("fixes", "events"), f"the Dask path loaded the whole {name} table on the client"
        return real_table(self, name)

    real_tables = store.Case.dask_tables_by_subject
    partitions = []

    def counted(self: store.Case, *args: Any, **kwargs: Any) -> dict[str, Any]:
        out = real_tables(self, *args, **kwargs)
        partitions.append({k: v.npartitions for k, v in out.items()})
        return out

    monkeypatch.setattr(store.Case, "table", nothing_large_on_the_client)
    monkeypatch.setattr(store.Case, "dask_tables_by_subject", counted)
    monkeypatch.setattr(store, "DASK_PARTITION_ROWS", 1)  # a partition per lorry
    run_carparks(dsk, geofences=fences, dask=True)
    monkeypatch.undo()
    assert partitions == [{"fixes": 2, "events": 2}]
    want = open_case(mem).table("carpark_visits")
    assert want[["subject_id", "ignition_off", "ignition_on", "door_open"]].values.tolist() == [
        ["lorry-A", 1, 1, 1], ["lorry-B", 1, 1, 1]]
    for name in ("carpark_visits", "carpark_recurring", "carpark_unusual_dwell"):
        pd.testing.assert_frame_equal(open_case(dsk).table(name), open_case(mem).table(name), obj=name)
    assert verify_case(dsk).ok


def test_events_as_a_dask_table_need_fixes_partitioned_alike(tmp_path: Path) -> None:
    """Events as a Dask DataFrame pair with the fixes partition by partition; given fixes
    as a pandas table, a shuffle, or another partition count, the stage refuses clearly."""
    import dask.dataframe as dd
    import geopandas as gpd

    from routetrace.routes.distributed import dask_carpark_visits, dask_copresence_pairs

    fences = gpd.read_file(_portal_fleet(tmp_path / "fleet"))
    ingest(tmp_path / "case", [tmp_path / "fleet"])
    case = open_case(tmp_path / "case")
    t = case.dask_tables_by_subject(["fixes", "events"], partition_rows=1)
    one = dd.from_pandas(case.table("events"), npartitions=1)
    for fixes, events, shuffle in ((case.table("fixes"), t["events"], False), (t["fixes"], t["events"], True),
                                   (t["fixes"], one, False)):
        with pytest.raises(ParameterError, match="dask_tables_by_subject"):
            dask_carpark_visits(fixes, fences, events=events, shuffle=shuffle)
    visits = dask_carpark_visits(t["fixes"], fences, events=t["events"], shuffle=False)  # no client: threads
    assert visits["door_open"].tolist() == [1, 1]
    with pytest.raises(ParameterError, match="bucket must be longer than max_dt"):  # the CLI's one-line error
        dask_copresence_pairs(t["fixes"], bucket=pd.Timedelta("5min"))
