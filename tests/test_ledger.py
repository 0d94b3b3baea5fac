"""The ledger of parts (case.py ``LEDGER``): the parts of the large tables are listed in
parts.parquet, named in case.json by its SHA-256, so the manifest does not grow with the
evidence files; and the compact collections an ingest keeps per file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from routetrace import case as store
from routetrace.app import ingest as ingest_mod
from routetrace.app.ingest import PathList, _SourceIds, ingest
from routetrace.app.remove import remove_sources
from routetrace.app.verify import verify_case
from routetrace.case import open_case
from routetrace.evidence import sha256_file

SDE = "1767225600"


def _fleet(folder: Path, n: int, *, day: int = 1) -> Path:
    folder.mkdir()
    for i in range(n):
        rows = [f"2025-10-{day:02d}T{k:02d}:{i % 60:02d}:00Z,{51 + k / 100:.4f},{3.7 + i / 1000:.4f}"
                for k in range(4)]
        (folder / f"lorry{i:02d}.csv").write_text("time,lat,lon\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return folder


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _ledger(case: Path) -> list[dict[str, object]]:
    return pq.read_table(case / store.LEDGER).to_pylist()


def test_the_ledger_lists_every_part_with_its_hash_and_rows_and_case_json_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    case = tmp_path / "case"
    ingest(case, [_fleet(tmp_path / "f", 9)], subject_id="lorry", case_id="CASE")
    outputs = json.loads((case / "case.json").read_text())["outputs"]
    assert not [k for k in outputs if k.startswith("tables/fixes/")]
    assert outputs[store.LEDGER] == sha256_file(case / store.LEDGER)
    rows = _ledger(case)
    on_disk = sorted(p.relative_to(case).as_posix() for p in (case / "tables").rglob("*.parquet")
                     if p.parent != case / "tables")
    assert [r["rel"] for r in rows] == on_disk  # every part, sorted by path
    for r in rows:
        assert r["sha256"] == sha256_file(case / str(r["rel"]))
        assert r["rows"] == pq.ParquetFile(case / str(r["rel"])).metadata.num_rows
    assert open_case(case).n_rows("fixes") == sum(int(r["rows"]) for r in rows) == 36  # type: ignore[call-overload]
    # more files, the same manifest keys: it does not grow with the parts
    ingest(case, [_fleet(tmp_path / "g", 12, day=2)], subject_id="lorry")
    assert set(json.loads((case / "case.json").read_text())["outputs"]) == set(outputs)
    assert len(_ledger(case)) == 21 and verify_case(case).ok


def test_a_part_changed_or_gone_fails_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    case = tmp_path / "case"
    ingest(case, [_fleet(tmp_path / "f", 3)], subject_id="lorry")
    first, second = (str(r["rel"]) for r in _ledger(case)[:2])
    (case / first).write_bytes(b"edited")
    (case / second).unlink()
    bad = {(Path(p).relative_to(case).as_posix(), status) for _, p, status, *_ in verify_case(case).rows
           if status != "ok"}
    assert bad == {(first, "changed"), (second, "missing")}


def test_the_ledger_spilled_in_chunks_is_the_same_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ingest holds a few thousand new ledger rows, then stages them as sorted chunks
    merged at the commit, and moves its staged files into place a batch at a time: with a
    chunk every 2 parts and batches of 3 files the case is byte-identical, and adding
    and removing sources keeps the ledger equal to the parts on disk."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    fleet = _fleet(tmp_path / "f", 11)
    trees = []
    for chunk in (2, 4096):  # and the staged files moved into place 3 at a time, or all at once
        monkeypatch.setattr(store, "LEDGER_CHUNK", chunk)
        monkeypatch.setattr(store, "PUBLISH_BATCH", 3 if chunk == 2 else 4096)
        ingest(tmp_path / f"c{chunk}", [fleet], subject_id="lorry", case_id="CASE")
        trees.append(_tree(tmp_path / f"c{chunk}"))
    assert trees[0] == trees[1]
    monkeypatch.setattr(store, "LEDGER_CHUNK", 2)
    case = tmp_path / "c2"
    ingest(case, [_fleet(tmp_path / "g", 5, day=2)], subject_id="lorry")
    gone = open_case(case).table("sources")["source_id"].astype(str).tolist()[:3]
    remove_sources(case, gone)
    rows = _ledger(case)
    assert [r["rel"] for r in rows] == sorted(p.relative_to(case).as_posix()
                                              for p in (case / "tables" / "fixes").rglob("*.parquet"))
    assert len(rows) == 13 and not any(str(r["rel"]).split("/")[2][7:] in {g[:16] for g in gone} for r in rows)
    assert verify_case(case).ok


def test_a_kill_after_the_commit_is_completed_with_the_ledger_first(tmp_path: Path) -> None:
    """Killed after case.json names the new ledger, before anything was moved into place:
    the next open moves the staged ledger, then the parts it names."""
    case, fleet = tmp_path / "case", _fleet(tmp_path / "f", 6)
    env = {**os.environ, "SOURCE_DATE_EPOCH": SDE, store.KILL_HOOK: "commit"}
    code = ("import sys; from routetrace.app.ingest import ingest; "
            "ingest(sys.argv[1], [sys.argv[2]], subject_id='lorry', case_id='CASE')")
    run = subprocess.run([sys.executable, "-c", code, str(case), str(fleet)], env=env, check=False)
    assert run.returncode == -9 and (case / store.STAGING).is_dir()
    assert not (case / store.LEDGER).exists()
    c = open_case(case)
    assert not (case / store.STAGING).exists() and c.n_rows("fixes") == 24
    assert verify_case(case).ok
    ref = tmp_path / "ref"
    env.pop(store.KILL_HOOK)
    subprocess.run([sys.executable, "-c", code, str(ref), str(fleet)], env=env, check=True)
    assert _tree(case) == _tree(ref)


def test_compact_collections_pack_and_still_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_mod, "PACK_EVERY", 3)
    ids = [format(i, "064x") for i in range(10)] + ["ff" * 31 + "00", "not-hex"]
    known = _SourceIds(ids[:4])
    for sid in ids[4:]:
        known.add(sid)
    assert all(sid in known for sid in ids)
    assert "ff" * 32 not in known and format(99, "064x") not in known and "other" not in known
    assert "ff" * 31 + "01" not in known and "ff" * 30 + "0000" not in known
    assert len(known._sorted) >= 9  # packed, not held as texts
    paths = PathList(f"p{i}" for i in range(8))
    paths.append("last")
    assert len(paths) == 9 and paths[3] == "p3" and paths[-1] == "last" and paths[1:3] == ["p1", "p2"]
    assert paths == [*(f"p{i}" for i in range(8)), "last"] and paths != ["p0"]
    assert [paths[i] for i in range(-9, 9)] == list(paths) * 2
    for i in (9, -10):
        with pytest.raises(IndexError):
            paths[i]


def test_an_ingest_into_a_case_reads_its_sources_two_columns_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding files to a case checks them against its sources without loading the sources
    table (ids packed 32 bytes each, subjects as codes): new files are added, files already
    in are duplicates, and one given under another subject moves to it."""
    case = tmp_path / "case"
    first, second = _fleet(tmp_path / "f", 9), _fleet(tmp_path / "g", 3, day=2)
    ingest(case, [first], subject_id="lorry", case_id="CASE")
    stored = ingest_mod._StoredSources(open_case(case).table_files("sources"))
    src = open_case(case).table("sources")
    assert stored.keys.dtype == np.dtype("S32") and len(stored.keys) == 9
    assert all(stored.subject(s) == "lorry" for s in src["source_id"])
    assert stored.subject("00" * 32) is None and stored.subject("not-hex") is None
    assert all(s in stored.ids() for s in src["source_id"])
    real_table = store.Case.table

    def no_sources(self: store.Case, name: str) -> pd.DataFrame:
        assert name != "sources", "the ingest loaded the whole sources table"
        return real_table(self, name)

    monkeypatch.setattr(store.Case, "table", no_sources)
    rep = ingest(case, [second, first / "lorry00.csv"], subject_id="lorry")
    monkeypatch.undo()
    assert len(rep.added) == 3 and rep.duplicates == [str(first / "lorry00.csv")]
    rep = ingest(case, [first / "lorry01.csv"], subject_id="van")
    assert rep.reassigned == [(str(first / "lorry01.csv"), "lorry", "van")]
    assert open_case(case).n_rows("fixes") == 12 * 4


def test_new_sources_staged_in_sorted_runs_give_the_same_case(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ingest stages its new sources' rows every SPILL_SOURCES files as a sorted run and
    writes the sources table by merging the runs with the stored table, a few rows of each
    at a time: with a run every 2 files read a row at a time, the case is byte-identical
    (a first ingest, then one merging with the stored table, rejects and devices included)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    first, second = _fleet(tmp_path / "f", 9), _fleet(tmp_path / "g", 7, day=2)
    (second / "lorry03.csv").write_text("time,lat,lon\nnot a time,51.0,3.7\n2025-10-02T05:00:00Z,51.0,3.7\n",
                                        encoding="utf-8")
    trees = []
    for spill, run_rows, group in ((2, 1, 3), (4096, 256, 3)):
        monkeypatch.setattr(ingest_mod, "SPILL_SOURCES", spill)
        monkeypatch.setattr(ingest_mod, "RUN_ROWS", run_rows)
        monkeypatch.setattr(store, "SOURCES_GROUP_ROWS", group)
        case = tmp_path / f"c{spill}"
        ingest(case, [first], subject_id="lorry", case_id="CASE")
        rep = ingest(case, [second], subject_id="van", case_id="CASE")
        assert len(rep.added) == 7 and rep.rejected_records == 1 and rep.subjects_created == ["van"]
        assert not (case / store.STAGING).exists()
        trees.append(_tree(case))
    assert trees[0] == trees[1]
    c = open_case(tmp_path / "c2")
    src = c.table("sources")
    assert len(src) == 16 and src.equals(store.sort_table(src, "sources"))
    assert src["device_id"].astype(str).value_counts().to_dict() == {"lorry": 9, "van": 7}
    assert c.table("devices")["n_sources"].tolist() == [9, 7]
    import pandas as pd

    quality = pd.read_csv(tmp_path / "c2" / "quality.csv", dtype=str)
    assert [Path(p).name for p in quality.loc[quality["level"] == "record", "path"]] == ["lorry03.csv"]


def test_a_table_written_in_batches_is_the_file_write_table_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    ingest(tmp_path / "case", [_fleet(tmp_path / "f", 10)], subject_id="lorry", case_id="CASE")
    monkeypatch.setattr(store, "SOURCES_GROUP_ROWS", 3)
    case = open_case(tmp_path / "case")
    src = case.table("sources")
    written = []
    for how in ("whole", "batches"):
        with case.transaction():
            if how == "whole":
                case.write_table("sources", src)
            else:
                case.write_table_batches("sources", (src.iloc[i:i + 3] for i in range(0, len(src), 3)))
            path = case.table_files("sources")[0]
            written.append(path.read_bytes())
            case.abort()
    assert written[0] == written[1]
    assert pq.ParquetFile(tmp_path / "case" / "tables" / "sources.parquet").metadata.num_rows == 10
    with pytest.raises(store.CaseError, match="use write_table"):
        case.write_table_batches("rejects", [])


def test_a_damaged_ledger_is_a_clear_error_and_verify_reports_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    case = tmp_path / "case"
    ingest(case, [_fleet(tmp_path / "f", 3)], subject_id="lorry")
    parts = sorted(p for p in (case / "tables" / "fixes").rglob("*.parquet"))
    (case / store.LEDGER).write_bytes(b"not parquet")
    (case / store.STAGING).mkdir()  # as a crashed writer leaves it: the next open settles it
    with pytest.raises(store.CaseError, match="ledger of the parts is missing or damaged"):
        open_case(case).table("fixes")
    assert sorted(p for p in (case / "tables" / "fixes").rglob("*.parquet")) == parts  # none removed
    bad = [(Path(p).name, status) for _, p, status, *_ in verify_case(case).rows if status != "ok"]
    assert bad == [(store.LEDGER, "changed")]


def test_a_folder_is_walked_lazily_in_the_order_of_its_sorted_paths(tmp_path: Path) -> None:
    """The files of a folder are given one at a time as the folders are read (a fleet's
    230,000 paths listed took 79 MiB), in the order of the sorted paths, companions of a
    database left to it, links and pipes skipped with their reason."""
    from collections.abc import Iterator

    from routetrace.loaders import base

    root = tmp_path / "ev"
    for rel in ["a/x.csv", "a-b/x.csv", "a b/x.csv", "a.txt", "z/y/q.gpx", "z/b.gpx",
                "db/Cache.sqlite", "db/Cache.sqlite-wal", "db/Cache.sqlite-shm", "B.csv"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x", encoding="utf-8")
    (root / "link.csv").symlink_to(root / "a.txt")
    (root / "linkdir").symlink_to(root / "z", target_is_directory=True)
    os.mkfifo(root / "z" / "pipe")
    files, skipped = base._walk(root)
    assert isinstance(files, Iterator)
    got = [p.relative_to(root).as_posix() for p in files]
    assert got == ["B.csv", "a/x.csv", "a b/x.csv", "a-b/x.csv", "a.txt", "db/Cache.sqlite",
                   "z/b.gpx", "z/y/q.gpx"]
    assert got == [p.relative_to(root).as_posix() for p in sorted(root / g for g in got)]
    assert [(p.name, why.split(":")[0]) for p, why in skipped] == [
        (n, w.split(":")[0]) for n, w in [("link.csv", base._not_regular(0o120000)),
                                          ("linkdir", base._not_regular(0o120000)),
                                          ("pipe", base._not_regular(0o010000))]]
