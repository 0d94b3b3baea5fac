"""bench/fuzz.py, the long mutation-fuzz harness: reproducible inputs, shards, resume, report.

The harness is a script, not part of the package: it is imported from its path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmods import load_bench

fz: Any = load_bench("fuzz")

FAMILY = "whatsapp-txt"  # the sample case always has it; about 15 ms an input
OTHER = "statements-yaml"
SEED = 11


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[bytes, str, str]]]:
    c = fz.load_corpus(tmp_path_factory.mktemp("fuzz-seeds"))
    assert FAMILY in c and OTHER in c and fz.ARCHIVE in c
    return c


def _run(corpus: Any, tmp_path: Path, ledger: str, *args: str) -> list[dict[str, Any]]:
    argv = ["--seed", str(SEED), "--ledger", str(tmp_path / ledger),
            "--report-out", str(tmp_path / (ledger + ".md")), *args]
    assert fz.main(argv, corpus=corpus) == 0
    return fz.read_ledger(tmp_path / ledger)[0]


def _totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fam, s in fz.summarize(records, seed=SEED).items():
        out[fam] = (s.distinct, s.counted, dict(s.counts), s.slow, sorted(s.examples.items()))
    return out


def test_an_input_is_the_same_alone_as_within_a_run(corpus: Any, tmp_path: Path) -> None:
    for fam in (FAMILY, OTHER, fz.ARCHIVE):
        run = [fz.make_input(corpus[fam], seed=SEED, family=fam, index=i) for i in range(10)]
        alone = fz.make_input(corpus[fam], seed=SEED, family=fam, index=7)
        assert alone == run[7]  # dataclass equality: seed file, partner, ops, format and bytes
        assert alone.data == run[7].data and alone.ops == run[7].ops
        assert len({(x.ops, x.data) for x in run}) == 10  # and the inputs do differ
    # the seeds themselves are byte-stable (the generated tar has fixed header times)
    again = fz.load_corpus(tmp_path)
    for fam in (FAMILY, OTHER, fz.ARCHIVE):
        assert fz.corpus_id(again[fam]) == fz.corpus_id(corpus[fam])
    mine = fz.make_input(corpus[FAMILY], seed=SEED, family=FAMILY, index=7)
    other_seed = fz.make_input(corpus[FAMILY], seed=SEED + 1, family=FAMILY, index=7)
    assert other_seed.ops != mine.ops


def test_replay_prints_the_input_and_its_outcome(corpus: Any, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    inp = fz.make_input(corpus[FAMILY], seed=SEED, family=FAMILY, index=3)
    out = tmp_path / "input.bin"
    assert fz.main(["--seed", str(SEED), "--replay", f"{FAMILY}:3", "--replay-out", str(out)],
                   corpus=corpus) == 0
    text = capsys.readouterr().out
    assert f"ops: {list(inp.ops)}" in text and "outcome: " in text
    assert out.read_bytes() == inp.data


def test_two_shards_give_the_same_ledger_totals_as_one_run(corpus: Any, tmp_path: Path) -> None:
    one = _run(corpus, tmp_path, "one.jsonl", "--families", f"{FAMILY},{OTHER}",
               "--start", "0", "--count", "10", "--chunk", "4")
    assert sorted((r["family"], r["start"], r["count"]) for r in one) == [
        (OTHER, 0, 4), (OTHER, 4, 4), (OTHER, 8, 2), (FAMILY, 0, 4), (FAMILY, 4, 4), (FAMILY, 8, 2)]
    _run(corpus, tmp_path, "two.jsonl", "--families", f"{FAMILY},{OTHER}", "--start", "0", "--count", "5")
    two = _run(corpus, tmp_path, "two.jsonl", "--families", f"{FAMILY},{OTHER}", "--start", "5", "--count", "5")
    assert _totals(two) == _totals(one)
    assert _totals(one)[FAMILY][0] == 10
    # a family's range split over two processes: the same totals again
    par = _run(corpus, tmp_path, "par.jsonl", "--families", FAMILY, "--start", "0", "--count", "10",
               "--chunk", "3", "--jobs", "2")
    assert len(par) == 4 and _totals(par)[FAMILY] == _totals(one)[FAMILY]
    line = one[0]
    assert {"family", "start", "count", "seed", "counts", "slow", "slowest_s", "peak_mib", "seconds",
            "cpu_seconds", "python", "commit", "examples", "corpus"} <= set(line)


def test_resume_runs_only_what_the_ledger_lacks(corpus: Any, tmp_path: Path) -> None:
    _run(corpus, tmp_path, "l.jsonl", "--families", FAMILY, "--start", "0", "--count", "3")
    _run(corpus, tmp_path, "l.jsonl", "--families", FAMILY, "--start", "6", "--count", "3")
    recs = _run(corpus, tmp_path, "l.jsonl", "--families", f"{FAMILY},{OTHER}", "--resume",
                "--per-family", "10", "--chunk", "5")
    new = [(r["family"], r["start"], r["count"]) for r in recs[2:]]
    # fewest covered first (OTHER: 0, then 5 < 6), chunks end on multiples of 5, covered skipped
    assert new == [(OTHER, 0, 5), (OTHER, 5, 5), (FAMILY, 3, 2), (FAMILY, 5, 1), (FAMILY, 9, 1)]
    again = _run(corpus, tmp_path, "l.jsonl", "--families", f"{FAMILY},{OTHER}", "--resume",
                 "--per-family", "10")
    assert len(again) == len(recs)  # nothing left to run
    assert fz.covered_ranges(again, SEED) == {FAMILY: [(0, 10)], OTHER: [(0, 10)]}
    assert fz.covered_ranges(again, SEED + 1) == {}  # another seed: other inputs, nothing covered


def test_plan_round_robin_starts_with_the_least_covered() -> None:
    chunks = fz.plan(["a", "b", "c"], {"a": [(0, 1000)], "c": [(0, 500)]}, lo=0, hi=1500,
                     chunk=500, resume=True)
    assert chunks == [("b", 0, 500), ("c", 500, 500), ("b", 500, 500), ("a", 1000, 500),
                      ("c", 1000, 500), ("b", 1000, 500)]
    assert fz.gaps([(0, 3), (6, 9)], 0, 10) == [(3, 6), (9, 10)]
    assert fz.merge([(5, 9), (0, 3), (3, 4), (8, 12)]) == [(0, 4), (5, 12)]


def _rec(family: str, start: int, count: int, ok: int, **kw: Any) -> dict[str, Any]:
    rec = {"family": family, "start": start, "count": count, "seed": SEED, "corpus": "c", "seeds": 1,
           "counts": {"ok": ok, "error": count - ok, "wrapped": 0, "unhandled": 0, "hang": 0},
           "slow": 0, "slowest_s": 0.1, "slowest_index": start, "peak_mib": 100.0,
           "seconds": count / 10, "cpu_seconds": count / 20, "examples": {}, "flagged": [],
           "python": "3.11", "commit": "abc"}
    rec.update(kw)
    return rec


def test_report_counts_the_union_of_ranges_once(tmp_path: Path) -> None:
    records = [
        _rec("a", 0, 500, 400),
        _rec("a", 500, 500, 450),
        _rec("a", 0, 500, 300),  # a rerun of [0, 500): counted once, the latest outcome
        _rec("a", 200, 100, 100),  # inside [0, 500) again
        _rec("b", 0, 1000, 1000),
        _rec("b", 1000, 500, 500, counts={"ok": 499, "error": 0, "wrapped": 0, "unhandled": 1, "hang": 0},
             flagged=[{"index": 1234, "status": "unhandled", "seconds": 0.2, "cpu_seconds": 0.2,
                       "detail": "KeyError: 'x'"}],
             examples={"unhandled: KeyError": {"index": 1234, "seed_file": "f.json", "ops": [["flip", 1, 2]],
                                               "format": "b", "detail": "KeyError: 'x'"}}),
        {**_rec("b", 0, 5000, 5000), "seed": SEED + 1},  # another seed: not in this report
    ]
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"family": "a", "sta',
                      encoding="utf-8")  # and a line cut short by a killed writer
    summ = fz.summarize(fz.read_ledger(ledger)[0], seed=SEED, families=["a", "b", "c"])
    a, b, c = summ["a"], summ["b"], summ["c"]
    assert a.distinct == 1000 and b.distinct == 1500 and c.distinct == 0
    # latest first: [200, 300) is taken, so both older [0, 500) records overlap it and drop out
    assert a.counted == 600 and a.counts["ok"] == 100 + 450
    assert b.counted == 1500 and b.counts["unhandled"] == 1 and b.counts["ok"] == 1499
    assert a.inputs_run == 1600 and a.rate == pytest.approx(20.0)
    assert a.cpu_hours_left(1000) == 0 and b.cpu_hours_left(2000) == pytest.approx(500 / 20 / 3600)
    report = tmp_path / "fuzz.md"
    text = fz.write_report(ledger, report, seed=SEED, target=1500, families={"a": 1, "b": 1, "c": 3})
    assert report.read_text(encoding="utf-8") == text
    assert text.count("| a | 1 | 1,000 | no (66.7 %) |") == 1
    assert "| b | 1 | 1,500 | yes |" in text and "| c | 3 | 0 | no (0.0 %) |" in text
    assert "**1 of 3 families have reached the target of 1,500" in text
    assert "| **total** | | **2,500** |" in text
    assert "1 unreadable lines skipped" in text and "1 for other seeds not shown" in text
    assert "400 covered inputs lie only in chunks" in text  # a's [0,200) and [300,500)
    assert "b #1234: unhandled" in text and "--replay 'b:1234'" in text
    assert "- b: unhandled: KeyError — e.g. #1234 f.json" in text


def test_a_loader_breaking_its_count_rule_is_a_defect_not_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """finish() refuses a lost record with LoaderBug, and the fuzz outcome calls it unhandled."""
    from routetrace.errors import LoaderBug
    from routetrace.fuzzing import load_bytes_outcome
    from routetrace.loaders import REGISTRY, load
    from routetrace.loaders.base import LoadContext, LoadResult

    spec, _ = REGISTRY["whatsapp-txt"]

    def loses_a_record(path: Path, *, ctx: LoadContext) -> LoadResult:
        return ctx.finish(records_read=2, time_basis="test", rejects=[("line 1", "why")])

    monkeypatch.setitem(REGISTRY, "whatsapp-txt", (spec, loses_a_record))
    status, detail = load_bytes_outcome(b"x", name="chat.txt", tmp_dir=tmp_path, format="whatsapp-txt")
    assert status == "unhandled" and detail.startswith("LoaderBug:") and "count rule broken" in detail
    (tmp_path / "chat.txt").write_bytes(b"x")
    with pytest.raises(LoaderBug, match="2 records read but 0 produced \\+ 1 rejected"):
        load(tmp_path / "chat.txt", format="whatsapp-txt")


def test_a_crashing_sniffer_is_a_loader_bug_not_unknown_format(tmp_path: Path) -> None:
    """A sniffer that raises is a defect in routetrace (LoaderBug naming the sniffer), not
    'no loader recognises this file' (#16)."""
    from routetrace.errors import LoaderBug
    from routetrace.loaders import base

    def crash(path: Path, head: bytes) -> bool:
        raise IndexError("boom")

    spec = base.LoaderSpec(name="zz-crashing", description="test", sniff=crash, produces=("fixes",))
    base.REGISTRY[spec.name] = (spec, lambda path, *, ctx: None)  # type: ignore[assignment,return-value]
    try:
        p = tmp_path / "x.txt"
        p.write_text("hello\n")
        with pytest.raises(LoaderBug, match="zz-crashing sniffer crashed.*IndexError"):
            base.detect_format(p)
    finally:
        del base.REGISTRY[spec.name]


def test_sqlite_sniffers_answer_on_a_schema_that_is_not_utf8(tmp_path: Path) -> None:
    """SQLite's error message quoting a damaged schema may not be UTF-8; the sniffer helper
    answers 'no tables' instead of raising (found by fuzzing the sniffers, #16)."""
    import sqlite3

    from routetrace.loaders.base import sqlite_tables

    db = tmp_path / "x.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE tabcdef (a)")
    con.commit()
    con.close()
    # the schema's SQL no longer parses, and the table name quoted in the error is not UTF-8
    db.write_bytes(db.read_bytes().replace(b"abcdef", b"\xb2" * 6)
                   .replace(b"CREATE TABLE", b"CRXATE TABLE"))
    assert sqlite_tables(db) == set()


def test_structure_families_are_reproducible_and_catch_a_silent_loss(
        corpus: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # archive-structure and wal-damage (#20): inputs built from parts, replayable by index
    for fam in (fz.ARCHIVE_STRUCT, fz.WAL_DAMAGE):
        a = fz.make_input(corpus[fam], seed=SEED, family=fam, index=7)
        b = fz.make_input(corpus[fam], seed=SEED, family=fam, index=7)
        assert a.data == b.data and a.ops == b.ops
        for i in range(10):
            inp = fz.make_input(corpus[fam], seed=SEED, family=fam, index=i)
            status, detail, _, _ = fz.run_input(inp, work=tmp_path / "w")
            assert status in ("ok", "error"), (fam, i, detail)
    # the oracle: a WAL whose damaged frames go unreported is a silent loss ("unhandled")
    from routetrace import evidence

    def blind(path: Any) -> Any:
        c = real(path)
        return evidence.WalCheck(c.frames, c.applied, c.commits, None)

    real = evidence.check_wal
    monkeypatch.setattr("routetrace.loaders.base.check_wal", blind)
    inp = next(x for i in range(50)
               if (x := fz.make_input(corpus[fz.WAL_DAMAGE], seed=SEED, family=fz.WAL_DAMAGE, index=i)).ops[0][0] == "flip")
    status, detail, _, _ = fz.run_input(inp, work=tmp_path / "w")
    assert status == "unhandled" and detail.startswith("silent loss"), detail


def test_the_report_opens_with_the_newest_commits_sweep_alone(tmp_path: Path) -> None:
    old, new = "a" * 40, "b" * 40
    records = [
        {**_rec("a", 0, 1000, 1000), "commit": old},
        {**_rec("b", 0, 500, 500), "commit": old},
        {**_rec("a", 0, 500, 499, counts={"ok": 499, "error": 0, "wrapped": 0, "unhandled": 1,
                                          "hang": 0}),
         "commit": new, "command": "python bench/fuzz.py --sweep 500", "uncommitted": []},
        {**_rec("b", 0, 500, 500), "commit": new, "command": "python bench/fuzz.py --sweep 500",
         "uncommitted": []},
    ]
    text = fz.render_report(records, seed=SEED, target=1000, families=["a", "b", "c"])
    sweep, history = text.split("## All runs (history)")
    # the sweep counts only the newest commit's chunks: 500 inputs each, its one unhandled
    assert "## Sweep at commit bbbbbbbbbbbb" in sweep
    assert "1,000 distinct inputs over 3 families (0 to 500 each); unhandled 1" in sweep
    assert "Not run at this commit: 1 families (c)." in sweep
    assert "| a | 500 | 499 |" in sweep and "| b | 500 | 500 |" in sweep
    prov = json.loads(sweep.split("<!-- provenance: ", 1)[1].split(" -->", 1)[0])
    assert prov["commit"] == new and prov["command"] == "python bench/fuzz.py --sweep 500"
    assert "code_sha256" not in prov  # not this checkout's commit: no fingerprint claimed
    assert "| a | 1 | 1,000 | yes |" in history  # the history keeps every run


def test_a_sweep_runs_again_at_this_commit_and_resumes_only_within_it(
        corpus: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    ledger.write_text(json.dumps({**_rec(FAMILY, 0, 40, 40), "commit": "c" * 40}) + "\n",
                      encoding="utf-8")  # another commit covered [0, 40) already
    recs = _run(corpus, tmp_path, "l.jsonl", "--families", FAMILY, "--sweep", "40", "--chunk", "20")
    here = [r for r in recs if r["commit"] != "c" * 40]
    assert [(r["start"], r["count"]) for r in here] == [(0, 20), (20, 20)]
    assert here[0]["command"].startswith("python bench/fuzz.py ") and "--sweep 40" in here[0]["command"]
    again = _run(corpus, tmp_path, "l.jsonl", "--families", FAMILY, "--sweep", "40", "--chunk", "20")
    assert len(again) == len(recs)  # this commit ran [0, 40) already: nothing more to do
