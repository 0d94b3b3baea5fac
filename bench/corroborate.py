"""Corroboration at scale: ``corroborate`` vs a naive pandas baseline, in one run.

Generated case: 4 subjects wandering around Brussels for 30 days (n fixes in all), 50
indicated places with 12-hour windows, each tested against every subject. Printed side
by side per size:

* routetrace ``corroborate_statements`` (verdicts, evidence rows, sequence check): time of the call,
  peak memory of the process (generated case included);
* a naive baseline: for each place and subject, a boolean mask over the whole fixes table
  (subject, window) and a haversine filter — what a notebook would do. It only counts near
  fixes (no stops, gaps, feasibility, sequence, evidence rows), so it does less work; the
  number of (place, subject) pairs with at least ``min_fixes`` near fixes must agree with
  routetrace's fine-grained matches: :func:`check_agreement` raises when they differ, so
  no table is written from a run where the two disagree (``tests/test_validation.py``
  runs the check at 20,000 fixes).

Usage: python bench/corroborate.py [--sizes 1e5,1e6] [--out FILE]
Results: bench/results/corroborate.md (with a provenance line: commit, command, machine load)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure
from _provenance import command_line, provenance_line

from routetrace import schema
from routetrace.routes.corroborate import corroborate_statements
from routetrace.testing import make_fixes

N_PLACES = 50
SUBJECTS = ("a", "b", "c", "d")
#: The code these figures measure (written on the results' provenance line).
MEASURES = ("bench/corroborate.py", "routes/corroborate.py")


def case(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    t = pd.Timestamp("2025-10-01T00:00Z") + pd.to_timedelta(
        np.sort(rng.uniform(0, 30 * 86400, n)), unit="s")
    subj = np.asarray(SUBJECTS)[np.arange(n) % len(SUBJECTS)]
    # a random walk per subject (about 20 m per fix) so places are visited, then left
    step = rng.normal(0, 0.0002, (n, 2))
    pos = np.empty((n, 2))
    for s in SUBJECTS:
        m = subj == s
        pos[m] = np.cumsum(step[m], axis=0) + np.array([50.85, 4.35])
    fixes = make_fixes(subject_id=list(subj), t_utc=t, lat=pos[:, 0], lon=pos[:, 1], h_acc_m=20.0)
    pick = rng.integers(0, n, N_PLACES)
    rows = []
    for i, j in enumerate(pick):
        t0 = t[j] - pd.Timedelta(hours=6)
        rows.append({"place_id": f"p{i}", "record": str(i), "kind": "indicated",
                     "lat": pos[j, 0] + rng.normal(0, 0.001), "lon": pos[j, 1] + rng.normal(0, 0.001),
                     "radius_m": 150.0, "t_start": t0, "t_end": t0 + pd.Timedelta(hours=12),
                     "t_precision": "window", "source_id": "x", "flags": "",
                     "extra": f'{{"statement_id":"S{i:02d}","person_id":"V1","order":{i + 1}}}'})
    return schema.from_records(rows, "places"), fixes


def run_routetrace(n: int) -> tuple[float, int]:
    places, fixes = case(n)
    t0 = time.perf_counter()
    res = corroborate_statements(places, fixes, time_tolerance=pd.Timedelta(0))
    return time.perf_counter() - t0, int((res.verdicts["verdict"] == "supported").sum())


def _hav(lat1: np.ndarray, lon1: np.ndarray, lat2: float, lon2: float) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


def run_naive(n: int) -> tuple[float, int]:
    places, fixes = case(n)
    t0 = time.perf_counter()
    hits = 0
    for p in places.itertuples():
        for s in SUBJECTS:
            m = ((fixes["subject_id"] == s) & (fixes["t_utc"] >= p.t_start)
                 & (fixes["t_utc"] <= p.t_end))
            w = fixes[m]
            d = _hav(w["lat"].to_numpy(), w["lon"].to_numpy(), p.lat, p.lon)
            hits += int((d <= p.radius_m + w["h_acc_m"].to_numpy() + 100.0).sum() >= 2)
    return time.perf_counter() - t0, hits


def check_agreement(n: int, supported: int, naive_hits: int) -> None:
    """Raise when routetrace's supported verdicts and the baseline's hits differ at ``n``."""
    if supported != naive_hits:
        raise AssertionError(f"at {n:,} fixes routetrace supports {supported} (place, subject) "
                             f"pairs but the naive baseline finds {naive_hits}: the two do not "
                             "compute the same thing, so their times are not comparable")


def verdict(n: int, t_rt: float, m_rt: float, t_nv: float, m_nv: float) -> str:
    """One sentence saying whether routetrace wins or loses at ``n`` fixes, and by how much.

    >>> print(verdict(1_000_000, 1.67, 668, 0.41, 379))
    1,000,000 fixes: routetrace loses on time (1.67 s vs 0.41 s: 4.1x) and loses on memory (668 vs 379 MiB: 1.8x) against the naive baseline, which only counts near fixes (routetrace also builds the verdicts, evidence rows and sequence check).
    """
    def outcome(mine: float, theirs: float) -> tuple[str, float]:
        return ("loses", mine / theirs) if mine > theirs else ("wins", theirs / mine)

    on_time, x_time = outcome(t_rt, t_nv)
    on_mem, x_mem = outcome(m_rt, m_nv)
    return (f"{n:,} fixes: routetrace {on_time} on time ({t_rt:.2f} s vs {t_nv:.2f} s: {x_time:.1f}x) and "
            f"{on_mem} on memory ({m_rt:.0f} vs {m_nv:.0f} MiB: {x_mem:.1f}x) against the naive baseline, "
            "which only counts near fixes (routetrace also builds the verdicts, evidence rows and "
            "sequence check).")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e5,1e6")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "corroborate.md"))
    args = ap.parse_args()
    sizes = [int(float(x)) for x in args.sizes.split(",")]
    prov = provenance_line(command=command_line(), measures=MEASURES, style="markdown")
    lines = ["| fixes | pairs | routetrace s | routetrace MiB | naive s | naive MiB | supported (rt / naive) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    print(lines[0])
    verdicts = []
    for n in sizes:
        _, m_rt, (t_rt, sup) = measure(run_routetrace, n)
        _, m_nv, (t_nv, hits) = measure(run_naive, n)
        check_agreement(n, sup, hits)
        row = (f"| {n:,} | {N_PLACES * len(SUBJECTS)} | {t_rt:.2f} | {m_rt:.0f} | {t_nv:.2f} | "
               f"{m_nv:.0f} | {sup} / {hits} |")
        lines.append(row)
        verdicts.append(verdict(n, t_rt, m_rt, t_nv, m_nv))
        print(row, flush=True)
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    out.write_text("# corroborate benchmark\n\n" + prov + "\n\nSeconds: the call only (case built "
                   "before); peak MiB: whole process, case included. The supported counts agree "
                   "at every size (asserted).\n\n" + "\n".join(lines) + "\n\n"
                   + "\n".join(f"- {v}" for v in verdicts) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
