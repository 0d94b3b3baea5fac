"""Stop detection: routetrace vs MovingPandas, trackintel and scikit-mobility, one run.

The same simulated truck and phone traces (routetrace.samples.simulate: irregular phone
sampling with Wi-Fi/cell noise and silences; trucks with hourly fixes while parked, dense
car parks, ignition events) are given to every tool with comparable parameters
(stop radius 100 m / diameter 200 m, minimum dwell 5 min, gap 30 min). Each tool runs in
its own process (the peers in their own virtual environments: scikit-mobility pins an old
pandas), timed around the detection call only, with peak memory sampled over the process.
Detected stops are scored against the ground truth with the same rule for all
(routetrace.samples.simulate.score_stops: same subject, overlapping in time, centre
within 150 m).

Peers are bench-only: create their venvs with
    python3 -m venv /tmp/peers-mp && /tmp/peers-mp/bin/pip install movingpandas trackintel psutil pyarrow
    python3 -m venv /tmp/peers-skmob && /tmp/peers-skmob/bin/pip install scikit-mobility psutil "numpy<2" "pyarrow<15" "shapely<2"
A peer whose venv is missing is reported as such. A run longer than --timeout is stopped
and reported as a timeout (its throughput is then at most n / timeout).

Usage: python bench/stops.py [--sizes 1e4,1e5,1e6] [--timeout 600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from routetrace.routes import detect_stops
from routetrace.samples.simulate import score_stops, simulate

PEERS = {
    "movingpandas": "/tmp/peers-mp/bin/python",
    "trackintel": "/tmp/peers-mp/bin/python",
    "scikit-mobility": "/tmp/peers-skmob/bin/python",
}

RUNNER = {
    "movingpandas": """
        import movingpandas as mpd, geopandas as gpd
        from datetime import timedelta
        gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")
        gdf = gdf.set_index("t")
        t0 = time.perf_counter()
        tc = mpd.TrajectoryCollection(gdf, traj_id_col="subject_id")
        sp = mpd.TrajectoryStopDetector(tc).get_stop_points(min_duration=timedelta(minutes=5), max_diameter=200)
        elapsed = time.perf_counter() - t0
        out = pd.DataFrame({"subject_id": sp["traj_id"].astype(str), "t_arrival": sp["start_time"],
                            "t_departure": sp["end_time"], "lat": sp.geometry.y, "lon": sp.geometry.x})
    """,
    "trackintel": """
        import trackintel as ti, geopandas as gpd
        gdf = gpd.GeoDataFrame({"user_id": df.subject_id, "tracked_at": df.t}, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")
        pfs = ti.Positionfixes(gdf) if hasattr(ti, "Positionfixes") else ti.io.read_positionfixes_gpd(gdf, tracked_at="tracked_at", user_id="user_id", geom_col="geometry")
        t0 = time.perf_counter()
        pfs, sp = pfs.generate_staypoints(method="sliding", distance_metric="haversine", dist_threshold=100, time_threshold=5, gap_threshold=30)
        elapsed = time.perf_counter() - t0
        out = pd.DataFrame({"subject_id": sp["user_id"].astype(str), "t_arrival": sp["started_at"],
                            "t_departure": sp["finished_at"], "lat": sp.geometry.y, "lon": sp.geometry.x})
    """,
    "scikit-mobility": """
        import skmob
        from skmob.preprocessing import detection
        tdf = skmob.TrajDataFrame(df.rename(columns={"lon": "lng", "t": "datetime", "subject_id": "uid"}),
                                  latitude="lat", longitude="lng", datetime="datetime", user_id="uid")
        tdf["datetime"] = tdf["datetime"].dt.tz_localize(None)
        t0 = time.perf_counter()
        st = detection.stay_locations(tdf, stop_radius_factor=1.0, minutes_for_a_stop=5.0, spatial_radius_km=0.1, leaving_time=True)
        elapsed = time.perf_counter() - t0
        out = pd.DataFrame({"subject_id": st["uid"].astype(str), "t_arrival": pd.to_datetime(st["datetime"]).dt.tz_localize("UTC"),
                            "t_departure": pd.to_datetime(st["leaving_datetime"]).dt.tz_localize("UTC"), "lat": st["lat"], "lon": st["lng"]})
    """,
}

HEADER = """
import sys, time, json
import pandas as pd
df = pd.read_parquet(sys.argv[1])
"""
FOOTER = """
out.to_parquet(sys.argv[2])
print(json.dumps({"seconds": elapsed}))
"""


def _watch(proc: subprocess.Popen[bytes], peak: list[int]) -> None:
    try:
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                rss = sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)])
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.05)
    except psutil.Error:
        return


def run_peer(name: str, data: Path, tmp: Path, timeout: float) -> dict[str, object]:
    py = PEERS[name]
    if not Path(py).exists():
        return {"status": f"not installed ({py} missing)"}
    script = tmp / f"run_{name}.py"
    script.write_text(HEADER + textwrap.dedent(RUNNER[name]) + FOOTER)
    out = tmp / f"out_{name}.parquet"
    peak = [0]
    proc = subprocess.Popen([py, str(script), str(data), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    th = threading.Thread(target=_watch, args=(proc, peak), daemon=True)
    th.start()
    try:
        so, se = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"status": f"timeout > {timeout:.0f} s", "peak_mib": peak[0] / 2**20}
    th.join()
    if proc.returncode != 0:
        return {"status": "failed: " + se.decode(errors="replace").strip().splitlines()[-1][:160]}
    secs = json.loads(so.decode().strip().splitlines()[-1])["seconds"]
    return {"status": "ok", "seconds": secs, "peak_mib": peak[0] / 2**20, "stops": pd.read_parquet(out)}


def run_routetrace(fixes: pd.DataFrame, events: pd.DataFrame | None) -> dict[str, object]:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def child() -> None:
        t0 = time.perf_counter()
        _, st = detect_stops(fixes, events=events)
        q.put((time.perf_counter() - t0, st[["subject_id", "t_arrival", "t_departure", "lat", "lon"]]))

    p = ctx.Process(target=child)
    peak = [0]
    p.start()
    th = threading.Thread(target=_watch, args=(_ProcShim(p), peak), daemon=True)
    th.start()
    secs, st = q.get()
    p.join()
    th.join()
    return {"status": "ok", "seconds": secs, "peak_mib": peak[0] / 2**20, "stops": st}


class _ProcShim:
    """Lets _watch poll a multiprocessing.Process like a Popen."""

    def __init__(self, p: object) -> None:
        self._p = p
        self.pid = p.pid  # type: ignore[attr-defined]

    def poll(self) -> int | None:
        return None if self._p.is_alive() else 0  # type: ignore[attr-defined]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--peers", default="movingpandas,trackintel,scikit-mobility")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "stops.md"))
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    peers = [p for p in args.peers.split(",") if p]
    lines = ["# Stop detection vs peers", "",
             f"{psutil.cpu_count()} CPU cores; parameters: radius 100 m (diameter 200 m), min dwell 5 min, "
             "gap 30 min; F1 rule: same subject, overlap in time, centre within 150 m.", "",
             "| data | fixes | tool | F1 | precision | recall | median arrival error (s) | "
             "median departure error (s) | time (s) | fixes/s | peak MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="bench-stops-") as tmpd:
        tmp = Path(tmpd)
        for n in sizes:
            for kind in ("truck", "phone"):
                fixes, events, truth = simulate(n_fixes=n, kind=kind, seed=11)
                data = tmp / f"{kind}_{n}.parquet"
                pd.DataFrame({"subject_id": fixes["subject_id"].astype(str), "t": fixes["t_utc"],
                              "lat": fixes["lat"], "lon": fixes["lon"]}).to_parquet(data)
                runs: list[tuple[str, dict[str, object]]] = [("routetrace", run_routetrace(fixes, None))]
                if kind == "truck":
                    runs.append(("routetrace + ignition events", run_routetrace(fixes, events)))
                for peer in peers:
                    runs.append((peer, run_peer(peer, data, tmp, args.timeout)))
                for name, r in runs:
                    if r["status"] != "ok":
                        lines.append(f"| {kind} | {len(fixes)} | {name} | {r['status']} | | | | | | | "
                                     f"{r.get('peak_mib', 0):.0f} |")
                    else:
                        st = r["stops"]
                        assert isinstance(st, pd.DataFrame)
                        for c in ("t_arrival", "t_departure"):
                            st[c] = pd.to_datetime(st[c], utc=True)
                        sc = score_stops(st, truth)
                        secs = float(r["seconds"])  # type: ignore[arg-type]
                        lines.append(
                            f"| {kind} | {len(fixes)} | {name} | {sc['f1']:.3f} | {sc['precision']:.3f} | "
                            f"{sc['recall']:.3f} | {sc['median_arrival_error_s']:.0f} | "
                            f"{sc['median_departure_error_s']:.0f} | {secs:.2f} | {len(fixes) / secs:,.0f} | "
                            f"{float(r['peak_mib']):.0f} |")  # type: ignore[arg-type]
                    print(lines[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("written", args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
