"""Benchmark: load a GPX 1.1 track of N points (default 1,000,000), and ingest it into a case.

Side by side, in one run, each in a fresh process (wall time inside the process, peak RSS
of the process):

* ``routetrace gpx``: :func:`routetrace.loaders.load` on the file (sniffing, SHA-256,
  hardened streaming ``iterparse``, positions/numbers/times checked and converted, rejects
  with reasons, count rule, canonical ``fixes`` with provenance);
* ``lxml iterparse``: the plain read a hand-written script does: ``lxml.etree.iterparse``
  over the ``trkpt`` end events, ``lat``/``lon``/``ele``/``time`` into lists (each element
  cleared), then ``numpy`` floats and ``pd.to_datetime(utc=True)`` — no validation, no
  provenance, no rejects;
* ``routetrace ingest``: the CLI (``python -m routetrace.cli ingest CASE FILE --subject p --json``)
  in a subprocess: load plus the case store (Parquet tables, manifest, quality report).
  Its time includes the interpreter start and imports; its peak is ``ru_maxrss`` of that
  subprocess alone (``os.wait4``, see ``bench/_cli_peak.py``).

Sizes run one after the other (default 1e6 and 1e7 points, as issue #21 asks); the script
prints the issue's ratios: time <= 2x and peak <= 1.5x the lxml read, the ingest's peak at
1e6 below 1 GB, and the streamed ingest's peak at 1e7 <= 1.2x its peak at 1e6.

The file: one ``trk``/``trkseg``, a point every 5 s with ``ele`` and ``time`` (``Z``), one
point in 1,000 without ``<time>`` (a reject), ~80 bytes a point.

Usage: ``.venv/bin/python bench/ingest_gpx.py [--sizes 1000000 10000000]``.
Writes ``bench/results/ingest_gpx.txt`` (with its provenance line: commit and command).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _cli_peak import ratio_lines, run_ingest  # noqa: E402
from _measure import measure  # noqa: E402


def make_gpx(n: int, path: Path) -> None:
    """Write ``n`` track points deterministically, in blocks (bounded memory)."""
    rng = np.random.default_rng(1)
    t0 = pd.Timestamp("2025-06-01T00:00:00Z")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="bench" '
                 'xmlns="http://www.topografix.com/GPX/1/1">\n<trk><name>bench</name><trkseg>\n')
        block = 200_000
        for a in range(0, n, block):
            m = min(block, n - a)
            idx = np.arange(a, a + m)
            t = (t0 + pd.to_timedelta(idx * 5, unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ")
            times = np.char.add(np.char.add("<time>", np.asarray(t, dtype=str)), "</time>")
            times[idx % 1000 == 999] = ""
            lat = np.char.mod("%.6f", 50.8 + rng.random(m) * 0.5)
            lon = np.char.mod("%.6f", 3.0 + rng.random(m) * 1.5)
            ele = np.char.mod("%.1f", rng.random(m) * 90)
            rows = [f'<trkpt lat="{la}" lon="{lo}"><ele>{e}</ele>{ti}</trkpt>'
                    for la, lo, e, ti in zip(lat.tolist(), lon.tolist(), ele.tolist(),
                                             times.tolist(), strict=True)]
            fh.write("\n".join(rows) + "\n")
        fh.write("</trkseg></trk>\n</gpx>\n")


def run_routetrace(path: str) -> tuple[int, int, int]:
    from routetrace.loaders import load

    try:  # an exception in the measuring child would leave the parent waiting
        r = load(path)
    except Exception as exc:
        print(f"routetrace failed: {exc}", flush=True)
        return -1, -1, -1
    return r.records_read, len(r.fixes), len(r.rejects)


def run_iterparse(path: str) -> tuple[int, int, int]:
    from lxml import etree

    ns = "{http://www.topografix.com/GPX/1/1}"
    lat, lon, ele, tim = [], [], [], []
    for _, el in etree.iterparse(path, events=("end",), tag=ns + "trkpt"):
        lat.append(el.get("lat"))
        lon.append(el.get("lon"))
        ele.append(el.findtext(ns + "ele"))
        tim.append(el.findtext(ns + "time"))
        el.clear(keep_tail=True)
        while el.getprevious() is not None:
            del el.getparent()[0]
    df = pd.DataFrame({"lat": np.array(lat, dtype=float), "lon": np.array(lon, dtype=float),
                       "ele": pd.to_numeric(pd.Series(ele)),
                       "t": pd.to_datetime(pd.Series(tim), utc=True, format="ISO8601")})
    ok = df["t"].notna()
    return len(df), int(ok.sum()), int((~ok).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000],
                    help="numbers of points (default: the issue's 1e6 and 1e7)")
    args = ap.parse_args()
    lines = [f"# bench/ingest_gpx.py  python {platform.python_version()}  "
             f"pandas {pd.__version__}  {platform.machine()}",
             f"{'points':>10} {'tool':<18} {'seconds':>8} {'peak MiB':>9} {'points/s':>10}  result"]
    print("\n".join(lines), flush=True)
    results: dict[int, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:  # one size at a time, each tool in its own process
            path = Path(tmp) / f"track_{n}.gpx"
            make_gpx(n, path)
            size_mb = path.stat().st_size / 2**20
            res = results.setdefault(n, {})
            for name, fn in (("routetrace gpx", run_routetrace), ("lxml iterparse", run_iterparse)):
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
    ratios = ratio_lines(results, tool="routetrace gpx", plain="lxml iterparse",
                         streamed="routetrace ingest", cli_mb_limit=1000)
    print("\n".join(ratios))
    lines += ratios
    lines.append("# note: 'routetrace ingest' holds the loaded file's tables until they are "
                 "stored (app/ingest.py stores a file's rows after its load, not chunk by chunk)")
    from _provenance import command_line, provenance_line  # bench/ is on sys.path

    lines.append(provenance_line(command=command_line(), measures=[
        "bench/ingest_gpx.py", "bench/_cli_peak.py", "loaders/gpx.py", "loaders/xmlsafe.py",
        "loaders/base.py", "app/ingest.py", "case.py"], style="text"))
    out_path = HERE / "results" / "ingest_gpx.txt"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
