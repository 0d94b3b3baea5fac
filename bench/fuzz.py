"""Long mutation-fuzz run over every loader family: no unhandled exception, no hang.

Seeds: every file of ../shared/realdata (when present) and of the generated sample case,
grouped by family (the folder or the detected format). Each input is a seed with 1-4
random mutations (bit flips, truncations, splices with another seed of the family,
nasty tokens such as NaN/1e309/deep nesting, deletions, repeats), loaded with the seed's
own format forced (so the loader itself, not only the sniffer, meets the bytes) and,
for one input in four, sniffed. Zip/tar containers (the corpus's KMZ files, the sample's
Takeout zip and a generated tar) form one more family, read through ``load_many``
(safe extraction, then every member loaded).

Reported per family: inputs, ok / deliberate error / wrapped (a parser's own exception
turned into CorruptSource by the loader boundary: handled, but a hardening target) /
unhandled (must be 0), inputs slower than 10 s (must be 0), slowest input, and the
peak memory of the process (ru_maxrss).

Usage: python bench/fuzz.py [--per-family N] [--seed S] [--families a,b] [--out FILE]
       [--max-seconds-per-family S] [--jobs J]
"""

from __future__ import annotations

import argparse
import collections
import random
import resource
import sys
import tarfile
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from routetrace.errors import RoutetraceError
from routetrace.evidence import is_archive
from routetrace.loaders import detect_format, load_many
from routetrace.samples import generate
from routetrace.testing import MUTATION_KINDS, assert_count_rule, load_bytes_outcome, mutate

REALDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata"
ARCHIVE = "archive (zip/tar via load_many)"
SKIP_SUFFIX = ("-wal", "-shm", "-journal", ".md", "SHA256SUMS")


def seeds(tmp: Path) -> dict[str, list[tuple[Path, str]]]:
    """Family -> [(seed file, its format)] from realdata and the sample case."""
    files: list[Path] = []
    if REALDATA.exists():
        files += sorted(p for p in REALDATA.rglob("*") if p.is_file())
    sample = tmp / "sample"
    generate(sample, seed=7)
    files += sorted(p for p in (sample / "evidence").rglob("*") if p.is_file())
    fam: dict[str, list[tuple[Path, str]]] = collections.defaultdict(list)
    for f in files:
        if f.name.endswith(SKIP_SUFFIX) or f.stat().st_size > 4 << 20:
            continue
        try:
            fmt = detect_format(f).name
        except RoutetraceError:
            if is_archive(f):  # zip/tar containers: fuzzed through load_many
                fam[ARCHIVE].append((f, ARCHIVE))
            continue
        fam[fmt].append((f, fmt))
    # a tar seed too (the corpus holds zips only): the sample's GPX and CSV files
    tar = tmp / "seed.tar"
    with tarfile.open(tar, "w") as tf:
        for p in sorted((sample / "evidence").rglob("*"))[:6]:
            if p.is_file() and p.stat().st_size < 1 << 20:
                tf.add(p, arcname=p.relative_to(sample).as_posix())
    fam[ARCHIVE].append((tar, ARCHIVE))
    return dict(sorted(fam.items()))


def archive_outcome(data: bytes, *, name: str, tmp_dir: Path) -> tuple[str, str]:
    """Load a (mutated) archive with load_many: every member an outcome, nothing escaping."""
    path = tmp_dir / name
    path.write_bytes(data)
    try:
        outs = list(load_many(path))
        for o in outs:
            if o.result is not None:
                assert_count_rule(o.result)
        bad = [o for o in outs if o.error is not None]
        wrapped = [o.error for o in bad if o.error is not None and o.error.__cause__ is not None
                   and not isinstance(o.error.__cause__, RoutetraceError)
                   and str(o.error.message).startswith("cannot be read as")]
        if wrapped:
            cause = wrapped[0].__cause__
            return "wrapped", f"{type(cause).__name__}: {str(cause)[:120]}"
        return ("ok" if not bad else "error"), f"{len(outs)} outcomes, {len(bad)} errors"
    except RoutetraceError as exc:
        return "error", exc.one_line()[-160:]
    except Exception as exc:  # the point of fuzzing: report, don't crash the run
        return "unhandled", f"{type(exc).__name__}: {str(exc)[:160]}"
    finally:
        path.unlink(missing_ok=True)


def fuzz_family(family: str, items: list[tuple[Path, str]], per_family: int, seed: int,
                max_seconds: float, work: Path) -> tuple[str, list[str], float]:
    """Fuzz one family; return (table row, exception examples, peak MiB of this process)."""
    rng = random.Random(f"{seed}:{family}")
    work.mkdir(parents=True, exist_ok=True)
    blobs = [(p.read_bytes(), p.name, fmt) for p, fmt in items]
    counts: collections.Counter[str] = collections.Counter()
    slow = 0
    slowest = 0.0
    examples: dict[str, str] = {}
    t_family = time.perf_counter()
    n = 0
    while n < per_family and time.perf_counter() - t_family < max_seconds:
        data, name, fmt = blobs[rng.randrange(len(blobs))]
        other = blobs[rng.randrange(len(blobs))][0]
        ops = [(rng.choice(MUTATION_KINDS), rng.randrange(1 << 30), rng.randrange(1 << 30))
               for _ in range(rng.randint(1, 4))]
        mutated = mutate(data, ops, other=other)
        forced = None if rng.random() < 0.25 else fmt
        t0 = time.perf_counter()
        if fmt == ARCHIVE:
            status, detail = archive_outcome(mutated, name=name, tmp_dir=work)
        else:
            status, detail = load_bytes_outcome(mutated, name=name, tmp_dir=work, format=forced)
        dt = time.perf_counter() - t0
        slowest = max(slowest, dt)
        slow += dt > 10
        counts[status] += 1
        if status in ("unhandled", "wrapped"):
            key = f"{status}: {detail.split(':')[0]}"
            examples.setdefault(key, f"{name} ops={ops}: {detail}")
        n += 1
    elapsed = time.perf_counter() - t_family
    row = (f"| {family} | {len(blobs)} | {n} | {counts['ok']} | {counts['error']} | "
           f"{counts['wrapped']} | {counts['unhandled']} | {slow} | {slowest:.2f} | {elapsed:.0f} |")
    details = [f"- {family}: {k} — e.g. {v}" for k, v in sorted(examples.items())]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row, details, peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-family", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20251024)
    ap.add_argument("--families", default="")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "fuzz.md"))
    ap.add_argument("--max-seconds-per-family", type=float, default=float("inf"))
    ap.add_argument("--jobs", type=int, default=1, help="families fuzzed in parallel processes")
    args = ap.parse_args()
    warnings.simplefilter("error")  # as in the test suite: a warning is a defect too
    limit = ("" if args.max_seconds_per_family == float("inf")
             else f", at most {args.max_seconds_per_family:.0f} s per family")
    lines = ["# Mutation fuzz run", "",
             f"seed {args.seed}; target {args.per_family} inputs per family{limit}; "
             f"{args.jobs} process(es); python {sys.version.split()[0]}; warnings are errors", "",
             "| family (format) | seeds | inputs | ok | error | wrapped | unhandled | > 10 s "
             "| slowest (s) | run (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    details: list[str] = []
    peaks = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
    with tempfile.TemporaryDirectory(prefix="routetrace-fuzz-") as tmpd:
        tmp = Path(tmpd)
        fams = seeds(tmp)
        wanted = set(filter(None, args.families.split(",")))
        todo = [(f, items) for f, items in fams.items() if not wanted or f in wanted]
        jobs = [(f, items, args.per_family, args.seed, args.max_seconds_per_family, tmp / "work" / f)
                for f, items in todo]
        if args.jobs > 1:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                results = []
                for res in pool.map(fuzz_family, *zip(*jobs, strict=True)):
                    results.append(res)
                    print(res[0], flush=True)
        else:
            results = []
            for job in jobs:
                results.append(fuzz_family(*job))
                print(results[-1][0], flush=True)
        for row, det, peak in results:
            lines.append(row)
            details += det
            peaks.append(peak)
    peak_mb = max(peaks)
    total = sum(int(r[0].split("|")[3]) for r in results)
    unhandled = sum(int(r[0].split("|")[7]) for r in results)
    hangs = sum(int(r[0].split("|")[8]) for r in results)
    lines += ["", f"total inputs: {total}; unhandled: {unhandled}; inputs over 10 s: {hangs}",
              f"peak memory (largest ru_maxrss of the fuzzing processes): {peak_mb:.0f} MiB", "",
              "## Exception types met (first example each)", "", *(details or ["- none"])]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"total {total}, unhandled {unhandled}, > 10 s {hangs}, peak memory {peak_mb:.0f} MiB; "
          f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
