"""Benchmark helper: run ``routetrace ingest`` in a subprocess and read that process's own peak.

The peak is ``ru_maxrss`` of that one child (``os.wait4``), not of all children so far
(``RUSAGE_CHILDREN`` keeps the largest child ever waited for: after a 1e7 load child it
would report that child's peak for a smaller ingest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def run_ingest(path: Path, case: Path) -> tuple[float, float, str]:
    """``python -m routetrace.cli ingest CASE FILE --subject p --json`` in a subprocess.

    Returns (seconds including interpreter start and imports, peak MiB of that process,
    a one-line summary of its JSON report or of its error).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "routetrace.cli", "ingest", str(case),
                                 str(path), "--subject", "p", "--json"], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        secs = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    try:
        rep = json.loads(stdout)
        tail = f"rows={rep['rows']} rejected_records={rep['rejected_records']}"
    except (ValueError, KeyError, TypeError):
        tail = stdout.strip()[-120:]
    if proc.returncode != 0:
        tail = f"exit {proc.returncode}: {stderr.strip()[-200:]}"
    return secs, usage.ru_maxrss / 1024, tail


def ratio_lines(results: dict[int, dict[str, tuple[float, float]]], *, tool: str, plain: str,
                streamed: str | None, cli_mb_limit: float | None = None) -> list[str]:
    """The issue's "Done when" ratios (#21) for every size, and the streamed 1e7/1e6 peak.

    ``results[n][name] = (seconds, peak MiB)``.
    """
    out = []
    for n, r in sorted(results.items()):
        if tool in r and plain in r:
            (ts, tm), (ps, pm) = r[tool], r[plain]
            ok_t, ok_m = ts <= 2 * ps, tm <= 1.5 * pm
            out.append(f"# n={n}: {tool} / {plain}: time {ts / ps:.2f}x (issue: <= 2x: "
                       f"{'ok' if ok_t else 'MISSED'}), peak {tm / pm:.2f}x (issue: <= 1.5x: "
                       f"{'ok' if ok_m else 'MISSED'})")
        if cli_mb_limit is not None and streamed in r and n == 1_000_000:
            mb = r[streamed][1] * 2**20 / 1e6
            out.append(f"# n={n}: {streamed} peak {mb:.0f} MB (issue: < {cli_mb_limit:.0f} MB: "
                       f"{'ok' if mb < cli_mb_limit else 'MISSED'})")
    small, big = results.get(1_000_000, {}), results.get(10_000_000, {})
    if streamed is not None and streamed in small and streamed in big:
        q = big[streamed][1] / small[streamed][1]
        out.append(f"# streamed {streamed}: peak at 1e7 / peak at 1e6 = {q:.2f}x (issue: <= 1.2x: "
                   f"{'ok' if q <= 1.2 else 'MISSED'})")
    return out


def run_load(path: str) -> tuple[int, int, int]:
    """:func:`routetrace.loaders.load` on ``path``: (records read, fixes, rejects), or
    (-1, -1, -1) with the error printed (an exception in the measuring child would leave
    the parent waiting)."""
    from routetrace.loaders import load

    try:
        r = load(path)
    except Exception as exc:
        print(f"routetrace failed: {exc}", flush=True)
        return -1, -1, -1
    return r.records_read, len(r.fixes), len(r.rejects)


def run_xml_bench(*, fmt: str, make_file: Callable[[int, Path], None],
                  run_plain: Callable[[str], tuple[int, int, int]], measures: list[str],
                  cli_mb_limit: float | None = None) -> None:
    """The GPX and KML benchmarks' shared run (#21): per size, write the file, time
    ``routetrace <fmt>`` (:func:`routetrace.loaders.load`) and the plain lxml read each in a
    fresh process, then ``routetrace ingest`` in a subprocess; print the issue's ratios and
    write ``bench/results/ingest_<fmt>.txt`` with its provenance line.

    ``run_plain`` takes the file's path and returns (records read, fixes, rejects), as
    :func:`run_load` does for routetrace; ``measures`` are the files the figures measure (the provenance line).
    """
    import argparse
    import platform
    import shutil

    import pandas as pd
    from _measure import measure  # bench/ is on sys.path
    from _provenance import command_line, provenance_line

    script = f"bench/ingest_{fmt}.py"
    ap = argparse.ArgumentParser(description=f"routetrace {fmt} load and ingest vs an lxml read")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000],
                    help="numbers of points (default: the issue's 1e6 and 1e7)")
    args = ap.parse_args()
    tool = f"routetrace {fmt}"
    lines = [f"# {script}  python {platform.python_version()}  pandas {pd.__version__}  "
             f"{platform.machine()}",
             f"{'points':>10} {'tool':<18} {'seconds':>8} {'peak MiB':>9} {'points/s':>10}  result"]
    print("\n".join(lines), flush=True)
    results: dict[int, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:  # one size at a time, each tool in its own process
            path = Path(tmp) / f"track_{n}.{fmt}"
            make_file(n, path)
            size_mb = path.stat().st_size / 2**20
            res = results.setdefault(n, {})
            for name, fn in ((tool, run_load), ("lxml iterparse", run_plain)):
                secs, peak, out = measure(fn, str(path))
                res[name] = (secs, peak)
                lines.append(f"{n:>10} {name:<18} {secs:>8.2f} {peak:>9.0f} {n / secs:>10.0f}  "
                             f"read={out[0]} fixes={out[1]} rejects={out[2]} ({size_mb:.0f} MiB file)")
                print(lines[-1], flush=True)
            secs, peak, tail = run_ingest(path, Path(tmp) / f"case_{n}")
            res["routetrace ingest"] = (secs, peak)
            lines.append(f"{n:>10} {'routetrace ingest':<18} {secs:>8.2f} {peak:>9.0f} "
                         f"{n / secs:>10.0f}  CLI subprocess, its ru_maxrss: {tail}")
            print(lines[-1], flush=True)
            path.unlink()
            shutil.rmtree(Path(tmp) / f"case_{n}", ignore_errors=True)
    ratios = ratio_lines(results, tool=tool, plain="lxml iterparse", streamed="routetrace ingest",
                         cli_mb_limit=cli_mb_limit)
    print("\n".join(ratios))
    lines += ratios
    lines.append("# note: 'routetrace ingest' stores the file part by part as its loader reads "
                 "it (a part every loaders.PART_ROWS rows), so it holds one part, not the file")
    lines.append(provenance_line(command=command_line(), measures=[script, *measures], style="text"))
    out_path = Path(__file__).resolve().parent / "results" / f"ingest_{fmt}.txt"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")
