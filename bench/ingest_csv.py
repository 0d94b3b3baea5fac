"""Benchmark: load a generic position CSV of N rows (default 1,000,000 and 10,000,000, as issue 21 asks).

Side by side, in one run, each in a fresh process (wall time inside the process, peak RSS):

* ``routetrace csv``: :func:`routetrace.loaders.load` on the file (sniffing, chunked
  reading of 200,000 rows, decimal commas, local time -> UTC with ``tz``, units,
  rejects with reasons, count rule, canonical ``fixes`` table);
* ``routetrace stream``: :func:`routetrace.loaders.csv.stream_csv`, the same rows as
  canonical chunks, each written to a Parquet file as it comes (memory bounded by the chunk);
* ``pandas one-shot``: what a hand-written script does: ``pd.read_csv`` of the whole file
  (``decimal=','``) and ``pd.to_datetime(...).dt.tz_localize(tz)`` — no validation, no
  provenance, no rejects.

After each size it prints issue 21's ratios: load time and peak over the pandas one-shot's
(the issue asks <= 2x and <= 1.5x), and at the end the streamed path's peak at the largest
size over its peak at the smallest (the issue asks <= 1.2x from 1e6 to 1e7).

The file is written like a Belgian spreadsheet export (``;``, decimal commas, local
date and time columns, speed in km/h, one row in 1,000 without a position).

Usage: ``.venv/bin/python bench/ingest_csv.py [--sizes 1000000 10000000]``.
Writes ``bench/results/ingest_csv.txt``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _measure import measure  # noqa: E402

# imported here, before the measuring children are forked, so that neither side is
# charged for importing its library (as in bench/ingest_teltonika.py): the figure is the work on
# the file; both children then start from the same resident modules
import routetrace.loaders  # noqa: E402, F401

TZ = "Europe/Brussels"


def make_csv(n: int, path: Path) -> None:
    """Write ``n`` rows deterministically, in blocks (bounded memory)."""
    rng = np.random.default_rng(1)
    t0 = pd.Timestamp("2025-06-01T00:00:00", tz=TZ)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("Datum;Tijd;Breedtegraad;Lengtegraad;Snelheid (km/h);Koers\r\n")
        block = 500_000
        for a in range(0, n, block):
            m = min(block, n - a)
            idx = np.arange(a, a + m)
            t = t0 + pd.to_timedelta(idx * 5, unit="s")
            lat = np.char.replace(np.char.mod("%.6f", 50.8 + rng.random(m) * 0.5), ".", ",")
            lon = np.char.replace(np.char.mod("%.6f", 3.0 + rng.random(m) * 1.5), ".", ",")
            lat[idx % 1000 == 999] = ""
            spd = np.char.replace(np.char.mod("%.1f", rng.random(m) * 90), ".", ",")
            crs = np.char.mod("%d", rng.integers(0, 360, m))
            cols = [np.asarray(t.strftime("%d/%m/%Y")), np.asarray(t.strftime("%H:%M:%S")),
                    lat, lon, spd, crs]
            rows = np.char.add(cols[0], ";")
            for c in cols[1:-1]:
                rows = np.char.add(np.char.add(rows, c), ";")
            rows = np.char.add(rows, cols[-1])
            fh.write("\r\n".join(rows.tolist()) + "\r\n")


def run_routetrace(path: str) -> tuple[int, int, int]:
    from routetrace.loaders import load

    try:  # an exception in the measuring child would leave the parent waiting
        r = load(path, tz=TZ, options={"date_order": "DMY"})  # as explicit as the pandas script
    except Exception as exc:
        print(f"routetrace failed: {exc}", flush=True)
        return -1, -1, -1
    return r.records_read, len(r.fixes), len(r.rejects)


def run_stream(path: str) -> tuple[int, int, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from routetrace.loaders.csv import stream_csv

    out = Path(path).with_suffix(".parquet")
    writer = None
    fixes = rejects = 0
    try:
        for f, r in stream_csv(path, tz=TZ, options={"date_order": "DMY"}):
            fixes, rejects = fixes + len(f), rejects + len(r)
            if not len(f):
                continue
            table = pa.Table.from_pandas(f, preserve_index=False)
            if writer is None:  # dictionary-encode the repetitive columns only
                writer = pq.ParquetWriter(out, table.schema, use_dictionary=[
                    "subject_id", "fix_kind", "source_id", "flags"])
            writer.write_table(table)
    except Exception as exc:
        print(f"routetrace stream failed: {exc}", flush=True)
        return -1, -1, -1
    finally:
        if writer is not None:
            writer.close()
        out.unlink(missing_ok=True)
    return fixes + rejects, fixes, rejects


def run_pandas(path: str) -> tuple[int, int, int]:
    df = pd.read_csv(path, sep=";", decimal=",")
    t = pd.to_datetime(df["Datum"] + " " + df["Tijd"], format="%d/%m/%Y %H:%M:%S")
    t = t.dt.tz_localize(TZ, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    ok = df["Breedtegraad"].notna() & t.notna()
    return len(df), int(ok.sum()), int((~ok).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = ap.parse_args()
    lines = [f"# bench/ingest_csv.py  python {platform.python_version()}  pandas {pd.__version__}  "
             f"{platform.machine()}",
             f"{'rows':>10} {'tool':<18} {'seconds':>8} {'peak MiB':>9} {'rows/s':>10}  result"]
    stream_peaks: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"pos_{n}.csv"
            make_csv(n, path)
            size_mb = path.stat().st_size / 2**20
            got = {}
            for name, fn in (("routetrace csv", run_routetrace), ("routetrace stream", run_stream),
                             ("pandas one-shot", run_pandas)):
                secs, peak, out = measure(fn, str(path))
                got[name] = (secs, peak)
                lines.append(f"{n:>10} {name:<18} {secs:>8.2f} {peak:>9.0f} {n / secs:>10.0f}  "
                             f"read={out[0]} fixes={out[1]} rejects={out[2]} ({size_mb:.0f} MiB file)")
                print(lines[-1], flush=True)
            path.unlink()
            (t, m), (pt, pm) = got["routetrace csv"], got["pandas one-shot"]
            lines.append(f"# {n}: routetrace csv / pandas one-shot: time {t / pt:.2f}x (issue: <= 2x), "
                         f"peak {m / pm:.2f}x (issue: <= 1.5x)")
            print(lines[-1], flush=True)
            stream_peaks[n] = got["routetrace stream"][1]
    if len(stream_peaks) > 1:
        lo, hi = min(stream_peaks), max(stream_peaks)
        lines.append(f"# routetrace stream peak {hi} rows / {lo} rows: "
                     f"{stream_peaks[hi] / stream_peaks[lo]:.2f}x (issue: <= 1.2x from 1e6 to 1e7)")
        print(lines[-1], flush=True)
    out_path = HERE / "results" / "ingest_csv.txt"
    out_path.parent.mkdir(exist_ok=True)
    from _provenance import command_line, provenance_line  # bench/ is on sys.path
    lines.append(provenance_line(command=command_line(), measures=["bench/ingest_csv.py", "loaders/csv.py", "loaders/base.py", "schema.py"], style="text"))
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
