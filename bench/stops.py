"""Stop detection: routetrace vs MovingPandas, trackintel and scikit-mobility, one run.

The same simulated truck and phone traces (routetrace.samples.simulate: irregular phone
sampling with Wi-Fi/cell noise and silences; trucks with hourly fixes while parked, dense
car parks, ignition events) are given to every tool with comparable parameters
(stop radius 100 m / diameter 200 m, minimum dwell 5 min, gap 30 min). Each tool runs in
its own process (the peers in their own virtual environments: scikit-mobility pins an old
pandas), timed around the detection call only. Memory: the process's peak RSS is reset
(Linux clear_refs) just before the call and read after it; 'call MiB' is the peak minus the
RSS before the call. Every process runs with allocators that return freed memory at once
(ALLOCATOR_ENV), so RSS follows the memory a call holds rather than what the allocator kept.
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
from pathlib import Path

import pandas as pd
import psutil

from routetrace.samples.simulate import score_stops, simulate

PEERS = {
    "movingpandas": "/tmp/peers-mp/bin/python",
    "trackintel": "/tmp/peers-mp/bin/python",
    "scikit-mobility": "/tmp/peers-skmob/bin/python",
}

# Every tool's process runs with allocators that hand freed memory straight back (glibc:
# a fixed mmap threshold instead of the dynamic one that keeps up to 64 MiB of freed arrays
# on the heap; Arrow: the system allocator instead of its retaining jemalloc/mimalloc pool),
# so that peak RSS follows the memory a call really holds: with the defaults the same call
# measured 44 to 134 MiB from one run to the next.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072",
                 "ARROW_DEFAULT_MEMORY_POOL": "system"}

RUNNER = {
    "routetrace": """
        from routetrace import schema
        from routetrace.routes import detect_stops
        fixes = schema.coerce(df, "fixes")
        del df
        events = schema.coerce(pd.read_parquet(sys.argv[3]), "events") if sys.argv[3] else None
        #CALL
        _, st = detect_stops(fixes, radius_m=100, min_dwell=pd.Timedelta("5min"), max_gap=pd.Timedelta("30min"),
                             events=events)
        elapsed = time.perf_counter() - t0
        out = st[["subject_id", "t_arrival", "t_departure", "lat", "lon"]].copy()
        out.attrs = {}  # the gaps table in attrs does not go into parquet metadata
    """,
    "movingpandas": """
        import movingpandas as mpd, geopandas as gpd
        from datetime import timedelta
        gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")
        gdf = gdf.set_index("t")
        del df
        #CALL
        tc = mpd.TrajectoryCollection(gdf, traj_id_col="subject_id")
        sp = mpd.TrajectoryStopDetector(tc).get_stop_points(min_duration=timedelta(minutes=5), max_diameter=200)
        elapsed = time.perf_counter() - t0
        out = pd.DataFrame({"subject_id": sp["traj_id"].astype(str), "t_arrival": sp["start_time"],
                            "t_departure": sp["end_time"], "lat": sp.geometry.y, "lon": sp.geometry.x})
    """,
    "trackintel": """
        import trackintel as ti, geopandas as gpd
        gdf = gpd.GeoDataFrame({"user_id": df.subject_id, "tracked_at": df.t}, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")
        del df
        pfs = ti.Positionfixes(gdf) if hasattr(ti, "Positionfixes") else ti.io.read_positionfixes_gpd(gdf, tracked_at="tracked_at", user_id="user_id", geom_col="geometry")
        del gdf
        #CALL
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
        del df
        tdf["datetime"] = tdf["datetime"].dt.tz_localize(None)
        #CALL
        st = detection.stay_locations(tdf, stop_radius_factor=1.0, minutes_for_a_stop=5.0, spatial_radius_km=0.1, leaving_time=True)
        elapsed = time.perf_counter() - t0
        out = pd.DataFrame({"subject_id": st["uid"].astype(str), "t_arrival": pd.to_datetime(st["datetime"]).dt.tz_localize("UTC"),
                            "t_departure": pd.to_datetime(st["leaving_datetime"]).dt.tz_localize("UTC"), "lat": st["lat"], "lon": st["lng"]})
    """,
}
RUNNER["routetrace + ignition events"] = RUNNER["routetrace"]
# the same input as the peers (subject, time, lat, lon), with routetrace's input building
# (testing.make_fixes: ids, provenance, dtypes, validation) timed together with detect_stops
RUNNER["routetrace make_fixes + stops"] = """
        from routetrace.routes import detect_stops
        from routetrace.testing import make_fixes
        #CALL
        fixes = make_fixes(subject_id=df["subject_id"], t_utc=df["t"], lat=df["lat"], lon=df["lon"])
        del df
        _, st = detect_stops(fixes, radius_m=100, min_dwell=pd.Timedelta("5min"), max_gap=pd.Timedelta("30min"))
        elapsed = time.perf_counter() - t0
        out = st[["subject_id", "t_arrival", "t_departure", "lat", "lon"]].copy()
        out.attrs = {}
    """

HEADER = """
import gc, json, sys, time
import pandas as pd
df = pd.read_parquet(sys.argv[1])


def _mem():
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "VmHWM")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def _reset_peak():
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # Linux: reset the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False
"""
# each runner prepares the tool's input (not timed), then: reset the peak RSS, time the call
PREP_END = """
        reset_ok = _reset_peak()
        base = _mem()["VmRSS"]
        t0 = time.perf_counter()
"""
FOOTER = """
out.to_parquet(sys.argv[2])
print(json.dumps({"seconds": elapsed, "peak_mib": _mem()["VmHWM"], "base_mib": base, "reset_ok": reset_ok}))
"""


def _script(name: str) -> str:
    prep, call = RUNNER[name].split("#CALL")
    return HEADER + textwrap.dedent(prep + PREP_END + call) + FOOTER


def run_tool(name: str, data: Path, tmp: Path, timeout: float, extra: str = "") -> dict[str, object]:
    """Run one tool in a fresh process on ``data``; seconds of the call, peak RSS during it."""
    py = PEERS.get(name, sys.executable)
    if not Path(py).exists():
        return {"status": f"not installed ({py} missing)"}
    script = tmp / f"run_{name.replace(' ', '_')}.py"
    script.write_text(_script(name))
    out = tmp / f"out_{name.replace(' ', '_')}.parquet"
    env = {**os.environ, **ALLOCATOR_ENV, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([py, str(script), str(data), str(out), extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        so, se = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"status": f"timeout > {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"status": "failed: " + se.decode(errors="replace").strip().splitlines()[-1][:160]}
    res = json.loads(so.decode().strip().splitlines()[-1])
    return {"status": "ok", **res, "stops": pd.read_parquet(out)}


def _row(kind: str, n: int, name: str, r: dict[str, object], truth: pd.DataFrame) -> dict[str, object]:
    row: dict[str, object] = {"data": kind, "fixes": n, "tool": name, "status": r["status"]}
    if r["status"] == "ok":
        st = r["stops"]
        assert isinstance(st, pd.DataFrame)
        for c in ("t_arrival", "t_departure"):
            st[c] = pd.to_datetime(st[c], utc=True)
        sc = score_stops(st, truth)
        secs = float(r["seconds"])  # type: ignore[arg-type]
        row.update(f1=sc["f1"], precision=sc["precision"], recall=sc["recall"],
                   arr=sc["median_arrival_error_s"], dep=sc["median_departure_error_s"], seconds=secs,
                   rate=n / secs, peak=float(r["peak_mib"]),  # type: ignore[arg-type]
                   extra=float(r["peak_mib"]) - float(r["base_mib"]))  # type: ignore[arg-type]
    return row


def _line(w: dict[str, object]) -> str:
    if w["status"] != "ok":
        return f"| {w['data']} | {w['fixes']} | {w['tool']} | {w['status']} | | | | | | | | |"
    return (f"| {w['data']} | {w['fixes']} | {w['tool']} | {w['f1']:.3f} | {w['precision']:.3f} | "
            f"{w['recall']:.3f} | {w['arr']:.0f} | {w['dep']:.0f} | {w['seconds']:.2f} | {w['rate']:,.0f} | "
            f"{w['peak']:.0f} | {w['extra']:.0f} |")


def _summary(rows: list[dict[str, object]]) -> list[str]:
    """Throughput and memory ratios at the largest size, per data kind."""
    out = ["", "## At the largest size", ""]
    n_max = max(int(r["fixes"]) for r in rows)  # type: ignore[call-overload]
    for kind in ("truck", "phone"):
        rs = [r for r in rows if r["data"] == kind and r["status"] == "ok"
              and int(r["fixes"]) >= 0.9 * n_max]  # type: ignore[call-overload]
        me = next((r for r in rs if r["tool"] == "routetrace"), None)
        peers = [r for r in rs if not str(r["tool"]).startswith("routetrace")]
        if me is None or not peers:
            continue
        for r in peers:
            out.append(f"- {kind}: routetrace is {float(me['rate']) / float(r['rate']):.1f}x the throughput "  # type: ignore[arg-type]
                       f"of {r['tool']}")
        best_peak = min(peers, key=lambda r: float(r["peak"]))  # type: ignore[arg-type]
        best_extra = min(peers, key=lambda r: float(r["extra"]))  # type: ignore[arg-type]
        out.append(f"- {kind}: peak RSS during the call {float(me['peak']):.0f} MiB vs the best peer's "  # type: ignore[arg-type]
                   f"{float(best_peak['peak']):.0f} MiB ({best_peak['tool']}): ratio "  # type: ignore[arg-type]
                   f"{float(me['peak']) / float(best_peak['peak']):.2f}")  # type: ignore[arg-type]
        out.append(f"- {kind}: memory added by the call {float(me['extra']):.0f} MiB vs the best peer's "  # type: ignore[arg-type]
                   f"{float(best_extra['extra']):.0f} MiB ({best_extra['tool']}): ratio "  # type: ignore[arg-type]
                   f"{float(me['extra']) / max(float(best_extra['extra']), 1.0):.2f}")  # type: ignore[arg-type]
    return out


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
             "gap 30 min; F1 rule: same subject, overlap in time, centre within 150 m.",
             "Every tool runs in a fresh process (peers in their own venvs) on the same simulated fixes; "
             "input preparation is not timed; the peak resident memory is reset (Linux clear_refs) just "
             "before the call. 'peak MiB' is the process's peak RSS during the call (interpreter, "
             "libraries and input included); 'call MiB' is what the call added over the RSS before it. "
             "routetrace gets the canonical fixes table (with accuracy); peers get subject, time, lat, lon.",
             "",
             "| data | fixes | tool | F1 | precision | recall | median arrival error (s) | "
             "median departure error (s) | time (s) | fixes/s | peak MiB | call MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-stops-") as tmpd:
        tmp = Path(tmpd)
        for n in sizes:
            for kind in ("truck", "phone"):
                fixes, events, truth = simulate(n_fixes=n, kind=kind, seed=11)
                data = tmp / f"{kind}_{n}.parquet"
                pd.DataFrame({"subject_id": fixes["subject_id"].astype(str), "t": fixes["t_utc"],
                              "lat": fixes["lat"], "lon": fixes["lon"]}).to_parquet(data)
                ours = tmp / f"{kind}_{n}_fixes.parquet"
                fixes[["fix_id", "subject_id", "t_utc", "lat", "lon", "h_acc_m", "fix_kind", "source_id",
                       "record", "flags"]].to_parquet(ours)
                ev = tmp / f"{kind}_{n}_events.parquet"
                events.to_parquet(ev)
                runs = [("routetrace", run_tool("routetrace", ours, tmp, args.timeout))]
                if kind == "truck":
                    runs.append(("routetrace + ignition events",
                                 run_tool("routetrace + ignition events", ours, tmp, args.timeout, str(ev))))
                del fixes
                runs.append(("routetrace make_fixes + stops",
                             run_tool("routetrace make_fixes + stops", data, tmp, args.timeout)))
                for peer in peers:
                    runs.append((peer, run_tool(peer, data, tmp, args.timeout)))
                for name, r in runs:
                    rows.append(_row(kind, n, name, r, truth))
                    lines.append(_line(rows[-1]))
                    print(lines[-1], flush=True)
    lines += _summary(rows)
    print("\n".join(_summary(rows)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("written", args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
