"""Benchmark: ingest a Google Takeout Records.json of N locations (1e6 and 1e7 by default).

Side by side, in one run, each measurement in a fresh subprocess (wall time inside the
child, peak memory = the child's own ``ru_maxrss``):

* ``routetrace stream``: :func:`routetrace.loaders.takeout_records.stream_records` writing
  every canonical fixes chunk into a Parquet file (what ingest into a case store does):
  memory bounded by the chunk size, not by the file;
* ``routetrace load``: :func:`routetrace.loaders.load` — the whole canonical fixes/events
  tables in memory (count rule, ids, provenance); grows with the number of *rows kept*,
  not with the JSON text;
* ``json.load + json_normalize`` (baseline): ``json.load`` of the file, then
  ``pandas.json_normalize(data["locations"])`` and the same unit conversions
  (E7 -> degrees, ISO text -> UTC datetime) so both sides end with a usable table;
* ``ijson yajl2_c -> arrays`` (issue 21's plain read): ijson's C backend streaming
  ``locations.item``, latitude/longitude/timestamp appended to lists, then numpy arrays
  and the same conversions (no validation, no provenance, no rejects).

Generated files: deterministic (seeded), ~10 % of locations with altitude/velocity/heading,
~5 % with a nested activity record, three device tags, ISO ``timestamp`` style.

Usage: ``.venv/bin/python bench/ingest_takeout.py [--sizes 1000000 10000000]
[--baseline-max 5000000]``. Writes ``bench/results/ingest_takeout.txt``; prints issue 21's
ratios (each routetrace path against the ijson plain read at every size, and the stream's
1e7 / 1e6 peak). At 1e7 the file is 1.9 GB, the plain read peaks near 5 GB and ``load``
holds the whole canonical table (about 1.5x that): run it with ~12 GB free.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_records(n: int, path: Path) -> None:
    """Write a Records.json with ``n`` locations (deterministic)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{\n  "locations": [')
        step = 200_000
        t0 = pd.Timestamp("2019-01-01T00:00:00Z").value // 1_000_000
        for a in range(0, n, step):
            m = min(step, n - a)
            idx = np.arange(a, a + m)
            t = t0 + idx * 60_000 + rng.integers(0, 900, m)
            ts = pd.to_datetime(t, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%f")
            lat = (508000000 + rng.integers(-3_000_000, 3_000_000, m)).tolist()
            lon = (43000000 + rng.integers(-3_000_000, 3_000_000, m)).tolist()
            acc = rng.integers(3, 60, m).tolist()
            src = np.array(["GPS", "WIFI", "CELL"])[rng.integers(0, 3, m)].tolist()
            dev = np.array([1184882232, -577680260, 335552189])[idx % 3].tolist()
            parts = []
            for k in range(m):
                i = a + k
                extra = ""
                if i % 10 == 0:
                    extra = f', "altitude": {k % 300}, "velocity": {k % 30}, "heading": {k % 360}'
                if i % 20 == 0:
                    extra += (', "activity": [{"timestamp": "' + ts[k][:-3] + 'Z", "activity": '
                              '[{"type": "STILL", "confidence": 75}, {"type": "ON_FOOT", '
                              '"confidence": 20}]}]')
                parts.append(
                    f'{{\n    "latitudeE7": {lat[k]},\n    "longitudeE7": {lon[k]},\n'
                    f'    "accuracy": {acc[k]},\n    "source": "{src[k]}",\n'
                    f'    "deviceTag": {dev[k]},\n    "timestamp": "{ts[k][:-3]}Z"{extra}\n  }}')
            fh.write(("" if a == 0 else ", ") + ", ".join(parts))
        fh.write("]\n}\n")


def _child(mode: str, path: str) -> None:
    # imports outside the timing (both sides): the figure is the work on the file
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from routetrace.loaders import load
    from routetrace.loaders.takeout_records import stream_records

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if mode == "stream":
        out = Path(path).with_suffix(".parquet")
        writer = None
        rows = 0
        for fixes, _events, _rejects in stream_records(path):
            table = pa.Table.from_pandas(fixes, preserve_index=False)
            if writer is None:
                # dictionary-encode the repetitive columns only (ids are unique per row)
                writer = pq.ParquetWriter(out, table.schema, use_dictionary=[
                    "subject_id", "fix_kind", "source_id", "flags", "extra"])
            writer.write_table(table)
            rows += len(fixes)
        if writer is not None:
            writer.close()
        out.unlink()
    elif mode == "load":
        rows = len(load(path).fixes)
    elif mode == "ijson":
        rows = _ijson_arrays(path)
    else:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        df = pd.json_normalize(data["locations"])
        df["lat"] = df["latitudeE7"] / 1e7
        df["lon"] = df["longitudeE7"] / 1e7
        df["t_utc"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
        rows = len(df)
    secs = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    peak = r1.ru_maxrss / 1024.0
    print(json.dumps({"secs": secs, "cpu": cpu, "peak_mib": peak, "rows": rows}))


def _ijson_arrays(path: str) -> int:
    """The plain read of issue 21: ijson's C backend into arrays (lat, lon, time)."""
    import ijson
    import numpy as np
    import pandas as pd

    backend = ijson.get_backend("yajl2_c")
    lat: list[int] = []
    lon: list[int] = []
    ts: list[str] = []
    with open(path, "rb") as fh:
        for loc in backend.items(fh, "locations.item"):
            lat.append(loc.get("latitudeE7"))
            lon.append(loc.get("longitudeE7"))
            ts.append(loc.get("timestamp"))
    la = np.asarray(lat, dtype=np.float64) / 1e7
    lo = np.asarray(lon, dtype=np.float64) / 1e7
    t = pd.to_datetime(pd.Series(ts), utc=True, format="ISO8601")
    return int(min(len(la), len(lo), len(t)))


def _ratio_lines(results: dict[int, tuple[dict[str, float], ...]]) -> list[str]:
    """Issue 21's figures: each routetrace path against the plain read (ijson's C backend
    into arrays) of the same file in the same run, the stream's peak 1e7 over 1e6, and the
    json.load baseline where it ran."""
    out = []
    for n, (s, ld, _b, ij) in results.items():
        out.append(f"at {n:,} vs ijson yajl2_c -> arrays (issue 21: time <= 2x, peak <= 1.5x): "
                   f"load {ld['secs'] / ij['secs']:.2f}x its time (cpu {ld['cpu'] / ij['cpu']:.2f}x), "
                   f"peak {ld['peak_mib'] / ij['peak_mib']:.2f}x; stream {s['secs'] / ij['secs']:.2f}x "
                   f"its time (cpu {s['cpu'] / ij['cpu']:.2f}x), peak {s['peak_mib'] / ij['peak_mib']:.2f}x")
    if 1_000_000 in results and "skipped" not in results[1_000_000][2]:
        s, ld, b, _ij = results[1_000_000]
        out.append(f"at 1e6: stream {b['secs'] / s['secs']:.2f}x the json.load baseline's speed "
                   f"(wall; cpu {b['cpu'] / s['cpu']:.2f}x), peak {s['peak_mib'] / b['peak_mib']:.3f} "
                   f"of it; load {b['secs'] / ld['secs']:.2f}x its speed, peak "
                   f"{ld['peak_mib'] / b['peak_mib']:.3f} of it")
    small, big = 1_000_000, max(results)
    if small in results and big > small:
        r = results[big][0]["peak_mib"] / results[small][0]["peak_mib"]
        out.append(f"stream peak {big:.0e} / 1e6 = {r:.2f} (issue 21: <= 1.2)".replace("+0", ""))
    return out


def _run(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": 1.0, "secs": float("nan"), "cpu": float("nan"), "peak_mib": float("nan"),
                "rows": 0}
    res: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000],
                    help="numbers of locations (issue 21: 1e6 and 1e7; the ijson plain read "
                    "runs at every size)")
    ap.add_argument("--baseline-max", type=int, default=5_000_000,
                    help="skip the json.load baseline above this size (it needs ~1.2 GB per 1e6 "
                    "locations)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--make", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    if args.make:
        make_records(int(args.make[0]), Path(args.make[1]))
        return
    import ijson

    lines = [
        "bench/ingest_takeout.py — Google Takeout Records.json ingest",
        f"python {platform.python_version()}, ijson backend {ijson.get_backend('yajl2_c').backend}"
        f", {os.cpu_count()} cores, {platform.machine()}, load average at start "
        f"{os.getloadavg()[0]:.1f} (shared machine: wall times vary; cpu is steadier)",
        "each figure: a fresh subprocess of a small parent; s = wall inside the child (imports excluded), "
        "cpu = its user+sys CPU seconds; MiB = child's peak ru_maxrss",
        "",
        f"{'locations':>10} {'file MB':>8} | {'stream s':>8} {'cpu':>6} {'MiB':>6} | "
        f"{'load s':>7} {'cpu':>6} {'MiB':>6} | {'baseline s':>10} {'cpu':>6} {'MiB':>6} | "
        f"{'ijson s':>7} {'cpu':>6} {'MiB':>6}",
    ]
    print("\n".join(lines), flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="rt-bench-takeout-") as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"Records_{n}.json"
            # generated in a child too: Linux keeps ru_maxrss across fork+exec, so a parent
            # that grew while generating would inflate every child's figure
            subprocess.run([sys.executable, __file__, "--make", str(n), str(path)], check=True)
            mb = path.stat().st_size / 1e6
            s = _run("stream", path)
            ld = _run("load", path)
            b = _run("baseline", path) if n <= args.baseline_max else {
                "secs": float("nan"), "cpu": float("nan"), "peak_mib": float("nan"), "rows": 0,
                "skipped": 1.0}
            ij = _run("ijson", path)
            results[n] = (s, ld, b, ij)
            for r in (s, ld, b, ij):
                if "skipped" not in r and "error" not in r:
                    assert r["rows"] == n, (r, n)
            line = (f"{n:>10,} {mb:>8.0f} | {s['secs']:>8.2f} {s['cpu']:>6.2f} {s['peak_mib']:>6.0f} | "
                    f"{ld['secs']:>7.2f} {ld['cpu']:>6.2f} {ld['peak_mib']:>6.0f} | {b['secs']:>10.2f} "
                    f"{b['cpu']:>6.2f} {b['peak_mib']:>6.0f} | {ij['secs']:>7.2f} {ij['cpu']:>6.2f} "
                    f"{ij['peak_mib']:>6.0f}" + ("  (baseline skipped)" if "skipped" in b else "")
                    + ("  (baseline failed: out of memory?)" if "error" in b else ""))
            print(line, flush=True)
            lines.append(line)
            path.unlink()
    lines.append("")
    ratios = _ratio_lines(results)
    lines.extend(ratios)
    lines.append("stream = fixes written chunk by chunk to Parquet (bounded memory); load = the "
                 "whole canonical table kept in memory (grows with rows kept, by design)")
    print("\n" + "\n".join(ratios))
    from _provenance import command_line, provenance_line  # bench/ is on sys.path
    lines.append(provenance_line(command=command_line(), measures=["bench/ingest_takeout.py", "loaders/takeout_records.py", "loaders/google_common.py", "loaders/base.py", "schema.py"], style="text"))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "ingest_takeout.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
