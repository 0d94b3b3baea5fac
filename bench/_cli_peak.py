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
