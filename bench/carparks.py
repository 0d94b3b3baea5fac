"""Fleet-scale car-park visits and co-presence: in-memory vs Dask, and vs a naive baseline.

For generated fleets (lorries moving between motorway car parks, 30 s fixes while
driving, hourly fixes while parked; 40 car parks, or one per 12.5 lorries in bigger fleets
so that the density, and with it the co-presence per fix, stays the same as n grows) this prints, side by side in one run:

* in-memory ``carpark_visits`` and ``copresence_pairs``: time and peak memory per size;
* Dask (LocalCluster) with 1 and 2 workers: time, peak memory (all worker processes
  counted) and parallel efficiency T1 / (2 · T2);
* co-presence against a naive pairwise pandas merge (a cross join per time bucket-free
  pair of subjects, then a distance filter). The naive merge is O(n²): it is run only at
  sizes where it fits, and no time is extrapolated to the larger ones (#23);
* co-presence against the time-bucketed pandas join a competent analyst writes
  (:func:`bucketed_pairs`), measured at every size it finishes within
  ``--bucketed-timeout``; its pair count is checked against routetrace's.

Usage: python bench/carparks.py [--sizes 1e5,1e6,1e7] [--naive-sizes 2000,4000,8000]
       [--bucketed-sizes 8000,1e5,1e6] [--bucketed-timeout 3600]
Results: bench/results/carparks.md
"""

from __future__ import annotations

import argparse
import itertools
import queue
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure
from _provenance import command_line, provenance_line

from routetrace import schema
from routetrace.geodesy import haversine_m
from routetrace.routes.carparks import find_carpark_visits
from routetrace.routes.copresence import find_copresence_pairs

N_PARKS = 40
BYTES_PER_FIX = 230  # canonical fixes table in memory (measured at 1e6: 211 MiB)
PER_VEHICLE = 2000
#: The code these figures measure (written on the results' provenance line).
MEASURES = ("bench/carparks.py", "routes/carparks.py", "routes/copresence.py",
            "routes/distributed.py")


def n_parks(n: int) -> int:
    """Car parks for a fleet of about ``n`` fixes: 40, or more for big fleets so that the
    density (about 12.5 lorries per car park) stays the same as the fleet grows."""
    return max(N_PARKS, round(n_vehicles(n) / 12.5))


def n_vehicles(n: int) -> int:
    return max(2, -(-n // PER_VEHICLE))


def parks(count: int = N_PARKS, seed: int = 1) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """``count`` car parks in Flanders; the area grows with ``count`` (same density)."""
    rng = np.random.default_rng(seed)
    grow = np.sqrt(count / N_PARKS)
    xy = np.c_[rng.uniform(50.7, 50.7 + 0.7 * grow, count), rng.uniform(2.5, 2.5 + 3.0 * grow, count)]
    fences = gpd.GeoDataFrame({"name": [f"P{i:03d}" for i in range(count)]}, crs="EPSG:4326",
                              geometry=[shapely.Point(lon, lat).buffer(0.0015) for lat, lon in xy])
    return xy, fences


def tracks(n: int, seed: int = 7) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The fleet of :func:`fleet`, a lorry at a time: ``(t, lat, lon)`` arrays of each lorry
    in turn (t in Unix seconds), so a fleet too big for memory as one table (1e8 fixes) can
    be written a lorry at a time."""
    rng = np.random.default_rng(seed)
    xy, _ = parks(n_parks(n))
    n_pk = len(xy)
    n_veh = n_vehicles(n)
    per = n // n_veh
    t0 = pd.Timestamp("2025-01-06T00:00Z").value // 10**9
    for _ in range(n_veh):
        t, lat, lon = [], [], []
        now = t0 + rng.uniform(0, 86400)
        here = rng.integers(n_pk)
        count = 0
        while count < per:
            dwell = rng.uniform(1800, 4 * 3600)
            k = max(2, int(dwell // 3600) + 1)
            ts = now + np.linspace(0, dwell, k)
            t.append(ts)
            lat.append(xy[here, 0] + rng.normal(0, 0.0002, k))
            lon.append(xy[here, 1] + rng.normal(0, 0.0003, k))
            nxt = rng.integers(n_pk)
            d = haversine_m(xy[here, 0], xy[here, 1], xy[nxt, 0], xy[nxt, 1])
            steps = max(2, int(d / 22 / 30))
            frac = np.linspace(0, 1, steps)[1:-1]
            t.append(now + dwell + frac * steps * 30)
            lat.append(xy[here, 0] + frac * (xy[nxt, 0] - xy[here, 0]))
            lon.append(xy[here, 1] + frac * (xy[nxt, 1] - xy[here, 1]))
            now = now + dwell + steps * 30
            here = nxt
            count += k + len(frac)
        yield np.concatenate(t)[:per], np.concatenate(lat)[:per], np.concatenate(lon)[:per]


def fleet(n: int, seed: int = 7) -> pd.DataFrame:
    """About ``n`` fixes from n / 2000 lorries (vectorised per lorry)."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("s", "t", "lat", "lon")}
    for v, (tt, lat, lon) in enumerate(tracks(n, seed)):
        cols["t"].append(tt)
        cols["lat"].append(lat)
        cols["lon"].append(lon)
        cols["s"].append(np.full(len(tt), v))
    s = np.concatenate(cols["s"])
    m = len(s)
    df = pd.DataFrame({
        "subject_id": pd.array(np.char.add("lorry-", s.astype(str)), dtype="string"),
        "t_utc": pd.to_datetime(np.concatenate(cols["t"]), unit="s", utc=True).astype("datetime64[ns, UTC]"),
        "lat": np.concatenate(cols["lat"]), "lon": np.concatenate(cols["lon"]),
        "h_acc_m": 5.0, "fix_kind": "gps", "source_id": "0" * 64,
        "record": pd.array(np.arange(m).astype(str), dtype="string"), "flags": "",
    })
    return schema.coerce(df, "fixes")


_DATA: dict[int, pd.DataFrame] = {}


def data(n: int) -> pd.DataFrame:
    """The fleet of size n, generated once in the parent (forked children share it)."""
    if n not in _DATA:
        _DATA.clear()
        _DATA[n] = fleet(n)
    return _DATA[n]


def run_visits(n: int) -> int:
    return len(find_carpark_visits(data(n), parks(n_parks(n))[1]))


def run_pairs(n: int) -> int:
    return len(find_copresence_pairs(data(n)))


def run_dask(n: int, workers: int) -> tuple[int, float]:
    import time

    from routetrace.routes.distributed import (
        dask_carpark_visits,
        dask_client,
        dask_copresence_pairs,
    )

    f = data(n)
    with dask_client(n_workers=workers) as client:
        client.wait_for_workers(workers)
        # warm the workers (imports, first-call set-up) as a long-running cluster would be
        dask_carpark_visits(f.head(20_000), parks(n_parks(n))[1], npartitions=2 * workers)
        dask_copresence_pairs(f.head(20_000), npartitions=2 * workers)
        t0 = time.perf_counter()
        v = dask_carpark_visits(f, parks(n_parks(n))[1], npartitions=4 * workers)
        p = dask_copresence_pairs(f, npartitions=4 * workers)
        return int(len(v) + len(p)), time.perf_counter() - t0


def naive_pairs(n: int) -> int:
    f = data(n)[["record", "subject_id", "t_utc", "lat", "lon"]]  # record: the row's id (one source)
    f = f.assign(subject_id=f["subject_id"].astype(str))  # a categorical compares only ==
    m = f.merge(f, how="cross", suffixes=("_a", "_b"))
    m = m[m["subject_id_a"] < m["subject_id_b"]]
    m = m[(m["t_utc_a"] - m["t_utc_b"]).abs() <= pd.Timedelta("10min")]
    d = haversine_m(m["lat_a"].to_numpy(), m["lon_a"].to_numpy(), m["lat_b"].to_numpy(), m["lon_b"].to_numpy())
    return int((d <= 100).sum())


def _bucket_chunks(counts: pd.Series, max_rows: int) -> list[np.ndarray]:
    """Consecutive time buckets grouped so that each chunk's merge stays under ``max_rows``.

    ``counts``: fixes per bucket (index: bucket number). A bucket's merge rows are its fixes
    times the fixes of it and its two neighbours.
    """
    full = counts.reindex(np.arange(counts.index.min() - 1, counts.index.max() + 2), fill_value=0)
    nb = full.to_numpy()
    rows = nb[1:-1] * (nb[:-2] + nb[1:-1] + nb[2:])
    buckets = full.index.to_numpy()[1:-1]
    chunks, start, acc = [], 0, 0
    for i, r in enumerate(rows.tolist()):
        if acc and acc + r > max_rows:
            chunks.append(buckets[start:i])
            start, acc = i, 0
        acc += r
    chunks.append(buckets[start:])
    return [c for c in chunks if len(c)]


def bucketed_pairs(f: pd.DataFrame, *, radius_m: float = 100.0, max_dt: pd.Timedelta = pd.Timedelta("10min"),
                   max_rows: int = 10_000_000) -> int:
    """Co-present fix pairs as a competent analyst writes it in pandas: bucket the fixes by
    ``max_dt`` windows, merge each fix with the fixes of its own and the two neighbouring
    buckets (every pair within ``max_dt`` is among them), keep pairs of different subjects
    within ``max_dt`` and ``radius_m`` (haversine). Chunks of buckets keep each merge under
    ``max_rows`` rows. Returns the number of pairs (each unordered pair once).
    """
    dt_ns = pd.Timedelta(max_dt).value
    g = pd.DataFrame({"s": f["subject_id"].astype(str).to_numpy(), "t": f["t_utc"].to_numpy(dtype="datetime64[ns]"),
                      "lat": f["lat"].to_numpy(float), "lon": f["lon"].to_numpy(float)})
    g["b"] = g["t"].to_numpy().astype("int64") // dt_ns
    total = 0
    for chunk in _bucket_chunks(g.groupby("b").size(), max_rows):
        left = g[g["b"].between(chunk[0], chunk[-1])]
        right = g[g["b"].between(chunk[0] - 1, chunk[-1] + 1)]
        keyed = pd.concat([left.assign(key=left["b"] + k) for k in (-1, 0, 1)], ignore_index=True)
        m = keyed.merge(right, left_on="key", right_on="b", suffixes=("_a", "_b"))
        m = m[m["s_a"] < m["s_b"]]
        m = m[(m["t_a"] - m["t_b"]).abs() <= max_dt]
        d = haversine_m(m["lat_a"].to_numpy(), m["lon_a"].to_numpy(), m["lat_b"].to_numpy(), m["lon_b"].to_numpy())
        total += int((d <= radius_m).sum())
    return total


def run_bucketed(n: int) -> int:
    return bucketed_pairs(data(n))


def run_firm_pairs(n: int) -> int:
    """routetrace's pairs within 100 m by distance alone (the rule the baselines apply)."""
    return int((find_copresence_pairs(data(n))["distance_m"] <= 100).sum())


def _bucketed_section(sizes: list[int], timeout_s: float) -> list[str]:
    """The time-bucketed pandas join vs routetrace, at every size it runs (no extrapolation)."""
    lines = ["", "## Co-presence vs a time-bucketed pandas join", "",
             "The join a competent analyst writes (bench/carparks.py bucketed_pairs): 10-min time buckets, each fix "
             "merged with its own and the two neighbouring buckets' fixes (chunks of at most 1e7 merged rows), "
             "then pairs of different subjects within 10 min and 100 m (haversine). 'pairs' counts pairs within "
             f"100 m by distance (routetrace: its pairs with distance_m <= 100). Stopped after {timeout_s:.0f} s; "
             "sizes not listed were not attempted, and no time is extrapolated.", "",
             "| fixes | bucketed join (s) | join peak MiB | routetrace (s) | routetrace peak MiB | speed-up | "
             "pairs (join / routetrace) |", "|---|---|---|---|---|---|---|"]
    for n in sizes:
        data(n)
        to, mo, firm = measure(run_firm_pairs, n)
        try:
            tb, mb, nb = measure(run_bucketed, n, timeout_s=timeout_s)
        except queue.Empty:
            lines.append(f"| {n:.0e} | not finished in {timeout_s:.0f} s | | {to:.3f} | {mo:.0f} | | – / {firm} |")
        else:
            agree = "" if nb == firm else " (DISAGREE)"
            lines.append(f"| {n:.0e} | {tb:.2f} | {mb:.0f} | {to:.3f} | {mo:.0f} | {tb / to:.0f}× | "
                         f"{nb} / {firm}{agree} |")
        print(lines[-1], flush=True)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--naive-sizes", default="2000,4000,8000")
    ap.add_argument("--bucketed-sizes", default="8000,1e5,1e6",
                    help="sizes for the time-bucketed pandas join (each stopped after --bucketed-timeout)")
    ap.add_argument("--bucketed-timeout", type=float, default=3600.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "carparks.md"))
    args = ap.parse_args()
    sizes = [int(float(x)) for x in args.sizes.split(",")]
    prov = provenance_line(command=command_line(), measures=MEASURES, style="markdown")
    lines = ["# Car-park visits and co-presence at fleet scale", "", prov, "",
             f"machine: {psutil_cpus()} CPU cores; sizes {sizes}; up to {PER_VEHICLE} fixes per "
             "lorry; 40 car parks or one per 12.5 lorries (constant density); times exclude generating "
             "the fleet; peak memory includes it (and, for Dask, every worker process)", "",
             "| fixes | visits (s) | visits peak MiB | co-presence (s) | co-presence peak MiB | "
             "Dask 1 worker (s) | Dask 2 workers (s) | parallel efficiency | Dask peak MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    pair_time: dict[int, float] = {}
    times: dict[int, tuple[float, float, float, float]] = {}
    import psutil

    total_gib = psutil.virtual_memory().total / 2**30
    for n in sizes:
        need_gib = 8 * n * BYTES_PER_FIX / 2**30  # table, pickled parts, worker copies, working set
        if need_gib > total_gib:
            lines.append(f"| {n:.0e} | not run: needs about {need_gib:.0f} GiB, this machine has "
                         f"{total_gib:.0f} GiB | | | | | | | |")
            print(lines[-1], flush=True)
            continue
        data(n)
        tv, mv, nv = measure(run_visits, n)
        tp, mp_, npairs = measure(run_pairs, n)
        pair_time[n] = tp
        _, md1, (_, t1) = measure(run_dask, n, 1)
        _, md2, (_, t2) = measure(run_dask, n, 2)
        eff = t1 / (2 * t2)
        times[n] = (tv, tp, t1, t2)
        lines.append(f"| {n:.0e} | {tv:.2f} | {mv:.0f} | {tp:.2f} | {mp_:.0f} | {t1:.2f} | {t2:.2f} | "
                     f"{eff:.0%} | {max(md1, md2):.0f} |")
        print(lines[-1], f"(visits {nv}, pairs {npairs})", flush=True)
    ns = sorted(times)
    if len(ns) > 1:
        lines += ["", "Growth in n (time ratio for each step in fixes; 1.0 per 1.0 is linear):", ""]
        for a, b in itertools.pairwise(ns):
            r = [times[b][k] / times[a][k] for k in range(4)]
            lines.append(f"- {a:.0e} → {b:.0e} (×{b / a:.0f} fixes): visits ×{r[0]:.1f}, co-presence "
                         f"×{r[1]:.1f}, Dask 1 worker ×{r[2]:.1f}, Dask 2 workers ×{r[3]:.1f}")
    lines += ["", "## Co-presence vs naive pairwise pandas merge", "",
              "| fixes | naive merge (s) | routetrace (s) | speed-up |", "|---|---|---|---|"]
    naive: dict[int, float] = {}
    for n in [int(x) for x in args.naive_sizes.split(",")]:
        data(n)
        tn, _, _ = measure(naive_pairs, n)
        to, _, _ = measure(run_pairs, n)
        naive[n] = tn
        lines.append(f"| {n} | {tn:.2f} (measured) | {to:.3f} | {tn / to:.0f}× |")
        print(lines[-1], flush=True)
    lines += ["", f"The naive merge is O(n²) and was not run above {max(naive)} fixes; no time is "
              "extrapolated to larger sizes."]
    lines += _bucketed_section([int(float(x)) for x in args.bucketed_sizes.split(",") if x],
                               args.bucketed_timeout)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written {args.out}")
    return 0


def psutil_cpus() -> int:
    import psutil

    return psutil.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
