"""Which published figures are stale: results measured before a later change to their code.

A results file (every file under ``bench/results/`` and ``docs/validation.md``) is
**fresh** when no commit after the one that produced it changed the code it measures:
``git rev-list MEASURED..HEAD -- MEASURES`` is empty, or the measured files are
byte-identical to those the provenance line fingerprints (``code_sha256``: figures made
from a working tree and committed with the code they measure). ``MEASURED`` is the commit
the file states on its provenance line (``bench/_provenance.py``); a file written before provenance
lines existed states none, and then the commit that last wrote the file stands in for it
(generous to the file: the measurement can only be older). ``MEASURES`` are the paths on
the provenance line, or for files without one, :data:`MEASURES`.

A stale file that cannot be regenerated now (timing benchmarks need a quiet machine) gets
a first line, written by ``--mark`` and checked by ``tests/test_staleness.py``::

    STALE: measured at <commit> (<how known>); code changed since in <commit> (<n> commits): <paths>; measures: <paths>

and is listed in README.md between ``<!-- stale-results -->`` markers. Rerunning the
file's own script rewrites it without the mark.

Usage::

    python bench/staleness.py            # report; exit 1 if a stale file is not marked
    python bench/staleness.py --mark     # mark stale results files, update README's list
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import code_fingerprint, parse_provenance

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = (ROOT / "docs" / "validation.md",)
README = ROOT / "README.md"
#: Raw data, not figures: each line of the fuzz ledger states its own commit.
RAW = ("fuzz_ledger.jsonl",)

#: What each results file measures, for files whose script does not yet write a
#: provenance line (git pathspecs, relative to the repository root).
MEASURES: dict[str, tuple[str, ...]] = {
    "bench/results/carparks.md": ("bench/carparks.py", "routes/carparks.py",
                                  "routes/copresence.py", "routes/distributed.py"),
    "bench/results/corroborate.md": ("bench/corroborate.py", "routes/corroborate.py"),
    "bench/results/exhibit.txt": ("bench/exhibit.py", "maps/"),
    "bench/results/fuzz.md": ("bench/fuzz.py", "loaders/"),
    "bench/results/ingest_csv.txt": ("bench/ingest_csv.py", "loaders/csv.py", "loaders/base.py"),
    "bench/results/fleet.md": ("bench/fleet.py", "case.py", "app/ingest.py", "app/analysis.py",
                               "routes/distributed.py", "routes/carparks.py",
                               "routes/copresence.py"),
    "bench/results/ingest_gpx.txt": ("bench/ingest_gpx.py", "loaders/gpx.py", "loaders/xmlsafe.py",
                                     "loaders/base.py", "app/ingest.py"),
    "bench/results/ingest_ios.txt": ("bench/ingest_ios.py", "loaders/ios_routined.py",
                                     "loaders/base.py"),
    "bench/results/ingest_takeout.txt": ("bench/ingest_takeout.py", "loaders/takeout_records.py",
                                         "loaders/google_common.py", "loaders/base.py"),
    "bench/results/ingest_teltonika.txt": ("bench/ingest_teltonika.py", "loaders/teltonika*",
                                           "loaders/base.py"),
    "bench/results/stops.md": ("bench/stops.py", "routes/stops.py"),
    "docs/validation.md": ("bench/validate.py", "bench/validate_corroboration.py", "routes/",
                           "samples/", "loaders/", "geodesy.py", "schema.py"),
}

MARK = re.compile(r"^STALE: measured at (?P<sha>[0-9a-f]{7,40}) \((?P<basis>[^)]*)\); "
                  r"code changed since in (?P<last>[0-9a-f]{7,40}) \((?P<n>\d+) commits?\): "
                  r"(?P<paths>[^;]+); measures: (?P<measures>.+)$")
LIST_START, LIST_END = "<!-- stale-results -->", "<!-- /stale-results -->"


def git(*args: str, root: Path = ROOT) -> str:
    """Run git in ``root``; raise ``RuntimeError`` with git's message on failure."""
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=120)
    if out.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


@dataclass
class Status:
    """What a results file states and whether it is fresh."""

    path: str
    measured_at: str
    basis: str
    measures: tuple[str, ...]
    commits_since: list[str] = field(default_factory=list)
    paths_since: list[str] = field(default_factory=list)
    mark: dict[str, str] | None = None

    @property
    def fresh(self) -> bool:
        return not self.commits_since


def results_files() -> list[Path]:
    """Every results file the rule covers (bench/results except raw data, and the docs)."""
    files = sorted(p for p in RESULTS.iterdir() if p.is_file() and p.name not in RAW)
    return [*files, *(p for p in DOCS if p.exists())]


def parse_mark(text: str) -> dict[str, str] | None:
    """The ``STALE:`` first line's fields, or ``None`` when the file carries no mark."""
    first = text.split("\n", 1)[0]
    m = MARK.match(first)
    return m.groupdict() if m else None


def status(path: Path, *, root: Path = ROOT,
           measures_of: dict[str, tuple[str, ...]] = MEASURES) -> Status:
    """Where ``path`` was measured, what it measures, and what changed since (in ``root``)."""
    rel = path.relative_to(root).as_posix()
    text = path.read_text(encoding="utf-8")
    prov, mark = parse_provenance(text), parse_mark(text)
    if prov is not None and prov.get("commit", "unknown") != "unknown":
        sha, basis, measures = prov["commit"], "stated", tuple(prov["measures"])
    elif mark is not None:
        sha, basis = mark["sha"], mark["basis"]
        measures = tuple(mark["measures"].split())
    else:
        sha = git("log", "-1", "--format=%H", "--", rel, root=root)
        basis = "no provenance line; the commit that last wrote the file"
        if rel not in measures_of:
            raise KeyError(f"{rel} states neither its commit nor what it measures: give its "
                           "script a provenance line (bench/_provenance.py) or add it to MEASURES")
        measures = measures_of[rel]
    sha = git("rev-parse", sha, root=root)
    commits = git("rev-list", f"{sha}..HEAD", "--", *measures, root=root).split()
    stated = (prov or {}).get("code_sha256")
    if commits and stated and stated == code_fingerprint(measures, root=root):
        commits, basis = [], basis + "; measured code unchanged since (same code_sha256)"
    paths = (git("diff", "--name-only", sha, "HEAD", "--", *measures, root=root).split()
             if commits else [])
    return Status(rel, sha, basis, measures, commits, paths, mark)


def mark_line(st: Status) -> str:
    """The ``STALE:`` line for a stale file (paths beyond the first 8 are counted)."""
    shown = st.paths_since[:8] + ([f"and {len(st.paths_since) - 8} more"]
                                  if len(st.paths_since) > 8 else [])
    n = len(st.commits_since)
    return (f"STALE: measured at {st.measured_at[:12]} ({st.basis}); code changed since in "
            f"{st.commits_since[0][:12]} ({n} commit{'s' if n != 1 else ''}): "
            f"{', '.join(shown)}; measures: {' '.join(st.measures)}")


def mark(path: Path, st: Status) -> bool:
    """Put (or refresh) the ``STALE:`` first line of a stale file; True when it changed."""
    text = path.read_text(encoding="utf-8")
    body = text.split("\n", 1)[1] if st.mark is not None else text
    new = mark_line(st) + "\n" + body
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def readme_list(stale: list[str]) -> str:
    """The README paragraph naming the stale published figures."""
    if not stale:
        return "No published results file is stale."
    return ("Published figures that are **stale** (measured before a later change to the code "
            "they measure; each file's first line says when and what changed; "
            "`python bench/staleness.py` reports): "
            + ", ".join(f"`{p}`" for p in stale) + ".")


def update_readme(stale: list[str]) -> None:
    text = README.read_text(encoding="utf-8")
    block = f"{LIST_START}\n{readme_list(stale)}\n{LIST_END}"
    if LIST_START not in text:
        raise RuntimeError(f"README.md has no {LIST_START} block to update")
    text = re.sub(re.escape(LIST_START) + r".*?" + re.escape(LIST_END), lambda _: block, text,
                  flags=re.S)
    README.write_text(text, encoding="utf-8")


def readme_stale_list() -> list[str]:
    """The files README.md names as stale."""
    text = README.read_text(encoding="utf-8")
    m = re.search(re.escape(LIST_START) + r"(.*?)" + re.escape(LIST_END), text, re.S)
    return re.findall(r"`((?:bench/results|docs)/[^`]+)`", m.group(1)) if m else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mark", action="store_true",
                    help="mark stale files under bench/results and update README.md's list")
    args = ap.parse_args(argv)
    bad = 0
    stale: list[str] = []
    for p in results_files():
        st = status(p)
        state = "fresh" if st.fresh else "STALE (marked)" if st.mark else "STALE"
        if not st.fresh and args.mark and p.parent == RESULTS:
            mark(p, status(p))
            state = "STALE (marked)"
        if not st.fresh:
            stale.append(st.path)
            bad += state == "STALE"
        print(f"{st.path}: {state}; measured at {st.measured_at[:12]} ({st.basis}); "
              f"{len(st.commits_since)} later commit(s) changed {' '.join(st.measures)}")
    if args.mark:
        update_readme(stale)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
