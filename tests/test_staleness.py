"""No published figure is silently stale (issue #23).

Every file under ``bench/results/`` (except the raw fuzz ledger) and ``docs/validation.md``
must be either fresh (no commit after the one that produced it changed the code it
measures) or carry a ``STALE:`` first line that says so, and README.md must name exactly
the files marked stale. The rule itself is checked on a throwaway git repository.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from benchmods import load_bench

ROOT = Path(__file__).resolve().parent.parent



S = load_bench("staleness")


def _history_reason() -> str | None:
    try:
        shallow = S.git("rev-parse", "--is-shallow-repository")
    except (RuntimeError, OSError) as exc:
        return f"not a git checkout, so commits cannot be compared: {exc}"
    return "shallow clone: the commits the results state are not here" if shallow == "true" else None


needs_history = pytest.mark.skipif(_history_reason() is not None,
                                   reason=str(_history_reason()))


@needs_history
@pytest.mark.parametrize("path", S.results_files(), ids=lambda p: p.name)
def test_results_file_is_fresh_or_marked_stale(path: Path) -> None:
    st = S.status(path)
    if st.fresh:
        assert st.mark is None, (f"{st.path} is marked STALE but no commit after "
                                 f"{st.measured_at[:12]} changed {' '.join(st.measures)}")
        return
    assert st.mark is not None, (
        f"{st.path} was measured at {st.measured_at[:12]} ({st.basis}) but {len(st.commits_since)} "
        f"later commit(s) changed the code it measures ({', '.join(st.paths_since[:8])}): "
        "rerun its script, or mark it with `python bench/staleness.py --mark`")
    assert path.parent == S.RESULTS, f"{st.path}: regenerate it, do not mark it stale"
    assert S.git("rev-parse", st.mark["sha"]) == st.measured_at
    assert S.git("merge-base", "--is-ancestor", st.mark["last"], "HEAD") == ""


@needs_history
def test_readme_names_exactly_the_files_marked_stale() -> None:
    marked = [p.relative_to(ROOT).as_posix() for p in S.results_files()
              if S.parse_mark(p.read_text(encoding="utf-8")) is not None]
    assert sorted(S.readme_stale_list()) == sorted(marked), (
        "README.md's stale list is out of date: run `python bench/staleness.py --mark`")


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org",
                          "-c", "commit.gpgsign=false", *args], cwd=repo, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_rule_on_a_throwaway_repository(tmp_path: Path) -> None:
    """A result is fresh until its code changes; then stale until marked or regenerated."""
    repo = tmp_path / "repo"
    (repo / "routes").mkdir(parents=True)
    (repo / "bench" / "results").mkdir(parents=True)
    _git(repo, "init", "-q")
    code, other = repo / "routes" / "x.py", repo / "routes" / "y.py"
    code.write_text("A = 1\n")
    other.write_text("B = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "code")
    measured = _git(repo, "rev-parse", "HEAD")
    res = repo / "bench" / "results" / "x.md"
    prov = json.dumps({"commit": measured, "measures": ["routes/x.py"]})
    res.write_text(f"<!-- provenance: {prov} -->\n| figure |\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "results")
    assert S.status(res, root=repo).fresh
    other.write_text("B = 2\n")  # code the file does not measure
    _git(repo, "commit", "-qam", "other code")
    assert S.status(res, root=repo).fresh
    code.write_text("A = 2\n")
    _git(repo, "commit", "-qam", "measured code")
    changed = _git(repo, "rev-parse", "HEAD")
    st = S.status(res, root=repo)
    assert not st.fresh and st.commits_since == [changed] and st.paths_since == ["routes/x.py"]
    assert st.mark is None
    S.mark(res, st)
    line = res.read_text().split("\n", 1)[0]
    assert line == (f"STALE: measured at {measured[:12]} (stated); code changed since in "
                    f"{changed[:12]} (1 commit): routes/x.py; measures: routes/x.py")
    again = S.status(res, root=repo)
    assert again.mark is not None and again.measured_at == measured and not again.fresh
    S.mark(res, again)  # marking twice keeps one line
    assert res.read_text().count("STALE:") == 1


def test_a_file_without_a_stated_commit_dates_from_its_last_write(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "bench" / "results").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "m.py").write_text("A = 1\n")
    res = repo / "bench" / "results" / "t.txt"
    res.write_text("seconds 1.0\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "both")
    written = _git(repo, "rev-parse", "HEAD")
    table = {"bench/results/t.txt": ("m.py",)}
    st = S.status(res, root=repo, measures_of=table)
    assert st.fresh and st.measured_at == written and st.basis.startswith("no provenance line")
    (repo / "m.py").write_text("A = 2\n")
    _git(repo, "commit", "-qam", "code")
    assert not S.status(res, root=repo, measures_of=table).fresh
    with pytest.raises(KeyError, match="states neither its commit nor what it measures"):
        S.status(res, root=repo, measures_of={})


def test_results_committed_with_their_code_are_fresh(tmp_path: Path) -> None:
    """Figures made from a working tree and committed with the code: same code_sha256."""
    prov_mod = load_bench("_provenance")
    repo = tmp_path / "repo"
    (repo / "routes").mkdir(parents=True)
    (repo / "bench" / "results").mkdir(parents=True)
    _git(repo, "init", "-q")
    code = repo / "routes" / "x.py"
    code.write_text("A = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "code")
    before = _git(repo, "rev-parse", "HEAD")
    code.write_text("A = 2\n")  # edited, measured, then committed together with the figures
    fp = prov_mod.code_fingerprint(["routes/x.py"], root=repo)
    res = repo / "bench" / "results" / "x.md"
    prov = json.dumps({"commit": before, "measures": ["routes/x.py"], "code_sha256": fp})
    res.write_text(f"<!-- provenance: {prov} -->\n| figure |\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "code and figures")
    st = S.status(res, root=repo)
    assert st.fresh and "unchanged since" in st.basis
    code.write_text("A = 3\n")
    _git(repo, "commit", "-qam", "code again")
    assert not S.status(res, root=repo).fresh


#: a speed or memory ratio as a benchmark prints it (``1.60x``, ``2×``)
_RATIO = re.compile(r"\b\d+(?:\.\d+)?(?:x|×)(?![\w-])")


#: the prose the rule covers: README and docs/, less the generated docs/validation.md
_PROSE = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "validation.md")]


@pytest.mark.parametrize("path", _PROSE, ids=lambda p: p.name)
def test_prose_states_no_ratio_by_hand(path: Path) -> None:
    """A measured figure in the docs is written by its script (with the commit and command
    that made it) and so goes stale visibly; one typed into prose does not: docs/ios.md kept
    "1.60x the time ... 0.90 of its peak" after the bench had moved to 1.10x / 0.70x.
    Prose points at ``bench/results/`` instead (``docs/validation.md`` is written by
    ``bench/validate.py``, with its provenance line)."""
    hits = [m.group(0) for m in _RATIO.finditer(path.read_text(encoding="utf-8"))]
    assert not hits, f"{path.name} states ratios by hand: {hits}; point at bench/results/ instead"
