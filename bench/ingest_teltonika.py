"""Benchmark: decode a binary Teltonika capture of N codec-8E records (default 1,000,000).

Side by side, in one run, each in a fresh subprocess (time and peak RSS of that process):

* ``routetrace decode``: :mod:`routetrace.loaders.teltonika_codec` (segmentation, CRC-16
  of every frame vectorised, records and IO into columns) — the decoder proper;
* ``routetrace load``: the whole loader (decode + canonical fixes/events, IO and records
  tables, derived events, count rule);
* ``codecs-protocol 1.0.2``: the published PyPI decoder for codec 8/8E (installed into a
  throwaway venv under ``bench/.peer-venv``, never a routetrace dependency). It takes a
  frame as a hex string, so it is given the frames already split (generous to it) and its
  time includes ``bytes.hex()`` per frame; it checks no CRC.

Usage: ``.venv/bin/python bench/ingest_teltonika.py [--sizes 1000000 ...] [--frame 20]``.
Writes ``bench/results/ingest_teltonika.txt``.
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
PEER_VENV = HERE / ".peer-venv"
PEER_PKG = "codecs-protocol==1.0.2"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_capture(n: int, per_frame: int, path: Path) -> None:
    """Write a login + codec-8E frames capture of ``n`` records (deterministic)."""
    import numpy as np

    from routetrace.loaders import teltonika_codec as tc

    rng = np.random.default_rng(1)
    t0 = 1_761_500_000_000
    dt = rng.integers(5_000, 60_000, n).cumsum()
    chunks = [tc.encode_login("356307042441013")]
    for a in range(0, n, per_frame):
        recs = []
        for i in range(a, min(n, a + per_frame)):
            ign = int((i // 500) % 2)
            recs.append(tc.Record(
                t_ms=int(t0 + dt[i]), lat=50.9 + (i % 10000) * 1e-5, lon=4.2 + (i % 7000) * 1e-5,
                alt_m=15, angle=int(i % 360), sats=9, speed_kmh=70 * ign, priority=0,
                event_io=239 if i % 500 == 0 else 0,
                io=[tc.IoValue(239, ign, 1), tc.IoValue(240, ign, 1), tc.IoValue(1, 0, 1),
                    tc.IoValue(2, int(i % 997 < 3), 1), tc.IoValue(21, 3 + i % 2, 1),
                    tc.IoValue(89, 90 - (i // 2000) % 60, 1), tc.IoValue(24, 70 * ign, 2),
                    tc.IoValue(66, 24_000 + i % 50, 2), tc.IoValue(84, 4000 - (i // 2000) % 600, 2),
                    tc.IoValue(16, 1_000_000 + i * 300, 4), tc.IoValue(199, i % 5000, 4)]))
        chunks.append(tc.encode_tcp_frame(recs, tc.CODEC_8E))
    path.write_bytes(b"".join(chunks))


def worker(kind: str, path: Path) -> dict[str, float]:
    data = path.read_bytes()
    if kind.startswith("routetrace"):  # imports are not charged to anyone
        from routetrace.loaders import load
        from routetrace.loaders import teltonika_codec as tc
    base = _rss_mb()
    t = time.perf_counter()
    if kind == "routetrace-decode":
        segs = tc.segment_binary(data)
        d = tc.decode_messages(data, [(k, s, e, f"offset {s}") for k, s, e in segs])
        n = d.n_records
        assert not d.rejects
    elif kind == "routetrace-load":
        res = load(path, format="teltonika")
        n = len(res.extra_tables["teltonika_records"])
        assert len(res.rejects) == 0
    else:  # the peer, run with the throwaway venv's python
        import asyncio
        import struct

        from codecs_protocol.codec import Codec8E  # type: ignore[import-not-found]

        frames = []
        p = 17  # after the login
        while p < len(data):
            ln = struct.unpack_from(">I", data, p + 4)[0]
            frames.append(data[p: p + 12 + ln])
            p += 12 + ln
        t = time.perf_counter()  # splitting is not charged to the peer
        loop = asyncio.new_event_loop()
        n = 0
        for fr in frames:
            out, _ack = loop.run_until_complete(Codec8E(fr.hex().upper()).decode_data())
            n += len(out["records"])
        loop.close()
    secs = time.perf_counter() - t
    return {"seconds": secs, "records": n, "peak_rss_mb": _rss_mb(), "delta_rss_mb": _rss_mb() - base}


def _peer_python() -> str | None:
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
            subprocess.run([str(py), "-m", "pip", "install", "-q", PEER_PKG], check=True,
                           timeout=300)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"peer decoder unavailable ({exc}); reporting routetrace only")
            return None
    return str(py)


def run(kind: str, path: Path, python: str) -> dict[str, float]:
    env = dict(os.environ)
    out = subprocess.run([python, str(Path(__file__).resolve()), "--worker", kind, str(path)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--frame", type=int, default=20, help="records per TCP frame")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return
    peer = _peer_python()
    lines = [f"Teltonika codec-8E ingest benchmark ({platform.python_version()}, "
             f"{platform.machine()}, {os.cpu_count()} cores); {args.frame} records per TCP frame",
             "wall time of the decode only (file already read); peak RSS of the worker process",
             f"{'records':>10} {'decoder':<22} {'seconds':>9} {'rec/s':>11} {'peak RSS MB':>12} "
             f"{'vs peer':>8}"]
    print("\n".join(lines))
    with tempfile.TemporaryDirectory(prefix="routetrace-bench-") as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"capture_{n}.bin"
            t = time.perf_counter()
            make_capture(n, args.frame, path)
            print(f"(generated {n:,} records, {path.stat().st_size / 1e6:.1f} MB, "
                  f"in {time.perf_counter() - t:.1f} s)")
            results = {}
            for kind, py in (("routetrace-decode", sys.executable), ("routetrace-load", sys.executable),
                             ("codecs-protocol 1.0.2", peer)):
                if py is None:
                    continue
                r = run(kind, path, py)
                assert int(r["records"]) == n, (kind, r)
                results[kind] = r
            dec, ld = results["routetrace-decode"], results["routetrace-load"]
            ratio_row = (f"{n:>10,} load / decode alone: time {ld['seconds'] / dec['seconds']:.2f}x, "
                         f"peak RSS {ld['peak_rss_mb'] / dec['peak_rss_mb']:.2f}x "
                         "(issue 21 asks <= 2x and <= 1.5x)")
            peer_s = results.get("codecs-protocol 1.0.2", {}).get("seconds")
            for kind, r in results.items():
                ratio = f"{peer_s / r['seconds']:.1f}x" if peer_s else "-"
                row = (f"{n:>10,} {kind:<22} {r['seconds']:>9.2f} {n / r['seconds']:>11,.0f} "
                       f"{r['peak_rss_mb']:>12.0f} {ratio:>8}")
                print(row)
                lines.append(row)
            print(ratio_row)
            lines.append(ratio_row)
    notes = [
        "notes: 'routetrace-decode' = segmentation + CRC-16 of every frame + records/IO into "
        "columns, all kept in memory;",
        "  'routetrace-load' = the full loader (fixes, events with derived edges, IO and "
        "records tables, count rule) through routetrace.loaders.load;",
        "  codecs-protocol checks no CRC, is handed frames already split, and drops each "
        "frame's decoded dicts after counting them (hence its low RSS).",
    ]
    print("\n".join(notes))
    lines += notes
    sys.path.insert(0, str(HERE))
    from _provenance import command_line, provenance_line

    lines.append(provenance_line(command=command_line(), measures=[
        "bench/ingest_teltonika.py", "loaders/teltonika.py", "loaders/teltonika_codec.py",
        "loaders/teltonika_tables.py", "loaders/teltonika_events.py", "loaders/base.py"],
        style="text"))
    out = HERE / "results" / "ingest_teltonika.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
