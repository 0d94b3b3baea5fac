"""Regenerate every published figure at one commit, each by its own script (#23).

Runs, in order, every script that writes a file under ``bench/results/`` or
``docs/validation.md``, with the arguments the published files state, then
``bench/staleness.py`` to show that every file is fresh. It refuses to start on a working
tree with uncommitted changes (the figures must state one commit), and prints the load
average before each script: timing figures are only worth publishing from a quiet machine
(each script also writes the load average it started under into its provenance line).

Usage: python bench/all.py [--only NAME,...] [--skip NAME,...] [--list] [--max-load 1.0]

The whole run takes hours on a 2-core machine (the fuzz sweep alone, 10,000
inputs per family at that commit, about 70 minutes; the fleet runs over 2 hours);
``--only`` runs a subset, e.g. after a change to one loader. ``tests/test_bench_all.py``
checks that every published file states one of these commands.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

#: (name, command): the published files' commands, in the order they run (the
#: deterministic validation first; the long timing runs after it)
RUNS: list[tuple[str, list[str]]] = [
    ("validate", ["bench/validate.py"]),
    ("corroborate", ["bench/corroborate.py"]),
    ("stops", ["bench/stops.py"]),
    # the time-bucketed pandas baseline grows with n² per bucket: about 90 s at 1e5, and
    # at 1e6 it is stopped after 15 min if not finished (the table says so; nothing is
    # extrapolated)
    ("carparks", ["bench/carparks.py", "--bucketed-timeout", "900"]),
    ("ingest_csv", ["bench/ingest_csv.py"]),
    ("ingest_gpx", ["bench/ingest_gpx.py"]),
    ("ingest_ios", ["bench/ingest_ios.py"]),
    ("ingest_kml", ["bench/ingest_kml.py"]),
    ("ingest_takeout", ["bench/ingest_takeout.py"]),
    # 1e6 and 1e7, as published: the whole-capture ingest peaks at ~13 GB at 1e7 (it is not
    # streamed), which fits this 24 GiB machine; about 20 min, 6 of them to write the 1e7
    # capture the first time (cached in /tmp/routetrace-bench-teltonika after that)
    ("ingest_teltonika", ["bench/ingest_teltonika.py", "--sizes", "1000000", "10000000"]),
    ("exhibit", ["bench/exhibit.py"]),
    # 1e6 (compared with the in-memory path), 1e7 and 1e8: about 2 h 15 min, 1e8 ingest ~80 min
    ("fleet", ["bench/fleet.py", "--sizes", "1e6,1e7,1e8"]),
    # a sweep of 10,000 inputs per family at this commit (about 70 minutes on 2 cores)
    ("fuzz", ["bench/fuzz.py", "--sweep", "10000", "--jobs", "2"]),
]


def _dirty() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="comma-separated names to run (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated names not to run")
    ap.add_argument("--list", action="store_true", help="print the runs and exit")
    ap.add_argument("--max-load", type=float, default=1.0,
                    help="wait (up to 10 min) for the 1-minute load average to fall below this "
                         "before each script")
    args = ap.parse_args()
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    unknown = (only | skip) - {n for n, _ in RUNS}
    if unknown:
        ap.error(f"unknown run(s): {', '.join(sorted(unknown))}; --list shows them")
    runs = [(n, c) for n, c in RUNS if (not only or n in only) and n not in skip]
    if args.list:
        for n, c in runs:
            print(f"{n:<18} python {' '.join(c)}")
        return 0
    if _dirty():
        print("bench/all.py: the working tree has uncommitted changes; commit them first, so "
              "every figure states the commit it was measured at", file=sys.stderr)
        return 2
    failed = []
    for name, cmd in runs:
        waited = 0
        while os.getloadavg()[0] > args.max_load and waited < 600:
            time.sleep(10)
            waited += 10
        load = "{:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())
        print(f"== {name}: python {' '.join(cmd)}  (load average {load})", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([PY, *cmd], cwd=ROOT).returncode
        print(f"== {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    subprocess.run([PY, "bench/staleness.py"], cwd=ROOT)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
