"""Long mutation-fuzz run over every loader family: no unhandled exception, no hang.

Seeds: every file of ../shared/realdata (when present) and of the generated sample case,
grouped by family (the folder or the detected format). Each input is a seed with 1-4
random mutations (bit flips, truncations, splices with another seed of the family,
nasty tokens such as NaN/1e309/deep nesting, deletions, repeats), loaded with the seed's
own format forced (so the loader itself, not only the sniffer, meets the bytes) and,
for one input in four, sniffed.

Reported per family: inputs, ok / deliberate error / wrapped (a parser's own exception
turned into CorruptSource by the loader boundary: handled, but a hardening target) /
unhandled (must be 0), inputs slower than 10 s (must be 0), slowest input, and the
peak memory of the process (ru_maxrss).

Usage: python bench/fuzz.py [--per-family N] [--seed S] [--families a,b] [--out FILE]
"""

from __future__ import annotations

import argparse
import collections
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from routetrace.errors import RoutetraceError
from routetrace.loaders import detect_format
from routetrace.samples import generate
from routetrace.testing import MUTATION_KINDS, load_bytes_outcome, mutate

REALDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata"
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
            continue
        fam[fmt].append((f, fmt))
    return dict(sorted(fam.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-family", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20251024)
    ap.add_argument("--families", default="")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "fuzz.md"))
    ap.add_argument("--max-seconds-per-family", type=float, default=float("inf"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    lines = ["# Mutation fuzz run", "",
             f"seed {args.seed}; target {args.per_family} inputs per family; "
             f"python {sys.version.split()[0]}", "",
             "| family (format) | seeds | inputs | ok | error | wrapped | unhandled | > 10 s | slowest (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    details: list[str] = []
    with tempfile.TemporaryDirectory(prefix="routetrace-fuzz-") as tmpd:
        tmp = Path(tmpd)
        fams = seeds(tmp)
        wanted = set(filter(None, args.families.split(",")))
        work = tmp / "work"
        work.mkdir()
        for family, items in fams.items():
            if wanted and family not in wanted:
                continue
            blobs = [(p.read_bytes(), p.name, fmt) for p, fmt in items]
            counts: collections.Counter[str] = collections.Counter()
            slow = 0
            slowest = 0.0
            examples: dict[str, str] = {}
            t_family = time.perf_counter()
            n = 0
            while n < args.per_family and time.perf_counter() - t_family < args.max_seconds_per_family:
                data, name, fmt = blobs[rng.randrange(len(blobs))]
                other = blobs[rng.randrange(len(blobs))][0]
                ops = [(rng.choice(MUTATION_KINDS), rng.randrange(1 << 30), rng.randrange(1 << 30))
                       for _ in range(rng.randint(1, 4))]
                mutated = mutate(data, ops, other=other)
                forced = None if rng.random() < 0.25 else fmt
                t0 = time.perf_counter()
                status, detail = load_bytes_outcome(mutated, name=name, tmp_dir=work, format=forced)
                dt = time.perf_counter() - t0
                slowest = max(slowest, dt)
                slow += dt > 10
                counts[status] += 1
                if status in ("unhandled", "wrapped"):
                    key = f"{status}: {detail.split(':')[0]}"
                    examples.setdefault(key, f"{name} ops={ops}: {detail}")
                n += 1
            lines.append(f"| {family} | {len(blobs)} | {n} | {counts['ok']} | {counts['error']} | "
                         f"{counts['wrapped']} | {counts['unhandled']} | {slow} | {slowest:.2f} |")
            for k, v in sorted(examples.items()):
                details.append(f"- {family}: {k} — e.g. {v}")
            print(lines[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += ["", f"peak memory (ru_maxrss): {peak_mb:.0f} MiB", "",
              "## Exception types met (first example each)", "", *(details or ["- none"])]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"peak memory {peak_mb:.0f} MiB; report written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
