"""Benchmark: load a generated routined Cache.sqlite with N fixes (default 1,000,000).

Side by side, in one run, each in a fresh subprocess (wall time and peak RSS of that process):

* ``routetrace load``: :func:`routetrace.loaders.load` on the file (private copy of the
  database, rows in Z_PK (rowid) order through a cursor in chunks into a numpy array, able to
  read past damaged pages, then a stable sort by time; Apple epoch conversion, sentinels,
  canonical ``fixes`` with ids/provenance/flags/extra, count rule; visits and hints tables
  are tiny here);
* ``pandas.read_sql``: the bare baseline, ``pd.read_sql("SELECT * FROM ZRTCLLOCATIONMO", con)``
  on the same file (no copy, no ordering, no conversion).

Sizes run one after the other (default 1e6 and 1e7 fixes, as issue #21 asks); the script
prints the issue's ratios: time <= 2x and peak <= 1.5x the baseline's (the database is read
whole, not streamed: no 1e7/1e6 peak ratio applies).
Usage: ``.venv/bin/python bench/ingest_ios.py [--sizes 1000000 10000000]``.
Writes ``bench/results/ingest_ios.txt`` (with its provenance line: commit and command).
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _cli_peak import ratio_lines  # noqa: E402
from _measure import measure  # noqa: E402

from routetrace.samples.ios_db import write_routined  # noqa: E402


def make_cache(n: int, path: Path) -> None:
    rng = np.random.default_rng(1)
    t = 780_000_000.0 + np.cumsum(rng.uniform(0.5, 30.0, n))
    pk = rng.permutation(n) + 1  # Z_PK order is not time order
    speed = np.where(rng.random(n) < 0.9, -1.0, rng.uniform(0, 30, n))
    df = pd.DataFrame({
        "Z_PK": pk, "ZSIGNALENVIRONMENTTYPE": rng.integers(0, 4, n), "ZTYPE": rng.choice([1, 4, 6, 7, 9], n),
        "ZALTITUDE": rng.normal(20, 5, n), "ZCOURSE": -1.0, "ZHORIZONTALACCURACY": rng.uniform(5, 2000, n),
        "ZLATITUDE": 50.8 + rng.normal(0, 0.1, n), "ZLONGITUDE": 4.3 + rng.normal(0, 0.1, n),
        "ZSPEED": speed, "ZTIMESTAMP": t, "ZVERTICALACCURACY": rng.uniform(3, 50, n)})
    write_routined(path, {"ZRTCLLOCATIONMO": df.sort_values("Z_PK")})


def run_routetrace(path: str) -> int:
    from routetrace.loaders import load

    res = load(path)
    return len(res.fixes)


def run_read_sql(path: str) -> int:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        df = pd.read_sql("SELECT * FROM ZRTCLLOCATIONMO", con)
    finally:
        con.close()
    return len(df)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000],
                    help="numbers of fixes (default: the issue's 1e6 and 1e7)")
    args = ap.parse_args()
    lines = [f"# bench/ingest_ios.py  python {platform.python_version()}  pandas {pd.__version__}  "
             f"sqlite {sqlite3.sqlite_version}  {platform.machine()}",
             f"{'fixes':>10} {'tool':<22} {'seconds':>9} {'peak MiB':>9} {'rows':>10}"]
    print(lines[0])
    print(lines[1])
    results: dict[int, dict[str, tuple[float, float]]] = {}
    for n in args.sizes:  # one size at a time, each tool in its own process
        with tempfile.TemporaryDirectory(prefix="routetrace-bench-ios-") as tmp:
            p = Path(tmp) / "Cache.sqlite"
            t0 = time.perf_counter()
            make_cache(n, p)
            gen = time.perf_counter() - t0
            mib = p.stat().st_size / 2**20
            print(f"# generated {n} fixes in {gen:.1f} s ({mib:.0f} MiB)")
            res = {}
            for name, fn in (("pandas.read_sql", run_read_sql), ("routetrace load", run_routetrace)):
                secs, peak, rows = measure(fn, str(p))
                res[name] = (secs, peak)
                line = f"{n:>10} {name:<22} {secs:>9.2f} {peak:>9.0f} {rows:>10}"
                print(line, flush=True)
                lines.append(line)
            results[n] = res
            for verdict in ratio_lines({n: res}, tool="routetrace load", plain="pandas.read_sql",
                                       streamed=None):
                print(verdict)
                lines.append(verdict)
    out = HERE / "results" / "ingest_ios.txt"
    out.parent.mkdir(exist_ok=True)
    from _provenance import command_line, provenance_line  # bench/ is on sys.path
    lines.append(provenance_line(command=command_line(), measures=["bench/ingest_ios.py", "bench/_cli_peak.py", "loaders/ios_routined.py", "loaders/base.py", "evidence.py", "schema.py"], style="text"))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
