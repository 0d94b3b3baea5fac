"""Benchmark: load a KML of gx:Track placemarks with N points in all (default 1e6 and 1e7), and ingest it.

Side by side, in one run, each in a fresh process (wall time inside the process, peak RSS
of the process):

* ``routetrace kml``: :func:`routetrace.loaders.load` on the file (sniffing, SHA-256,
  hardened ``iterparse``, each ``when``/``gx:coord`` pair checked and converted, rejects
  with reasons, count rule, canonical ``fixes`` with provenance);
* ``lxml iterparse``: the plain read a hand-written script does: ``lxml.etree.iterparse``
  over the ``when`` and ``coord`` end events (each element cleared), the texts into lists,
  then ``numpy`` floats of the split ``lon lat alt`` and ``pd.to_datetime(utc=True)``: no
  validation, no provenance, no rejects;
* ``routetrace ingest``: the CLI (``python -m routetrace.cli ingest CASE FILE --subject p --json``)
  in a subprocess: load plus the case store. Its time includes the interpreter start and
  imports; its peak is ``ru_maxrss`` of that subprocess alone (``bench/_cli_peak.py``).

The file: as Google Earth and OpenTracks write a track, one Placemark (with a ``name``) per
100,000 points, each holding a ``gx:Track`` whose ``when`` elements (``Z`` times, a point
every 5 s) come first and its ``gx:coord`` elements (``lon lat alt``) after them; one
``gx:coord`` in 1,000 is empty (a pause: a reject), ~75 bytes a point.

Sizes run one after the other; the script prints the issue's (#21) ratios: time <= 2x and
peak <= 1.5x the lxml read, and the streamed ingest's peak at 1e7 <= 1.2x its peak at 1e6.

Usage: ``.venv/bin/python bench/ingest_kml.py [--sizes 1000000 10000000]``.
Writes ``bench/results/ingest_kml.txt`` (with its provenance line: commit and command).
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

#: points per Placemark (one gx:Track each)
PER_TRACK = 100_000


def _track(a: int, m: int, rng: np.random.Generator) -> str:
    """The Placemark of points ``a .. a+m-1``: ``when`` elements, then ``gx:coord`` elements."""
    t0 = pd.Timestamp("2025-06-01T00:00:00Z")
    idx = np.arange(a, a + m)
    t = (t0 + pd.to_timedelta(idx * 5, unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ")
    whens = "".join(f"<when>{x}</when>\n" for x in np.asarray(t, dtype=str).tolist())
    lon = np.char.mod("%.6f", 3.0 + rng.random(m) * 1.5)
    lat = np.char.mod("%.6f", 50.8 + rng.random(m) * 0.5)
    alt = np.char.mod("%.1f", rng.random(m) * 90)
    coords = np.char.add(np.char.add(np.char.add(np.char.add("<gx:coord>", lon), " "),
                                     np.char.add(np.char.add(lat, " "), alt)), "</gx:coord>")
    coords[idx % 1000 == 999] = "<gx:coord/>"
    return (f"<Placemark><name>track {a // PER_TRACK}</name><gx:Track>\n" + whens
            + "\n".join(coords.tolist()) + "\n</gx:Track></Placemark>\n")


def make_kml(n: int, path: Path) -> None:
    """Write ``n`` track points deterministically, one Placemark at a time (bounded memory)."""
    rng = np.random.default_rng(1)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2" '
                 'xmlns:gx="http://www.google.com/kml/ext/2.2">\n<Document><name>bench</name>\n')
        for a in range(0, n, PER_TRACK):
            fh.write(_track(a, min(PER_TRACK, n - a), rng))
        fh.write("</Document>\n</kml>\n")


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

    whens: list[str | None] = []
    coords: list[str | None] = []
    for _, el in etree.iterparse(path, events=("end",), tag=("{*}when", "{*}coord")):
        (whens if el.tag.endswith("}when") else coords).append(el.text)
        el.clear(keep_tail=True)
        while el.getprevious() is not None:
            del el.getparent()[0]
    parts = pd.Series(coords, dtype=object).str.split(" ", expand=True)
    df = pd.DataFrame({"lon": pd.to_numeric(parts[0]), "lat": pd.to_numeric(parts[1]),
                       "alt": pd.to_numeric(parts[2]),
                       "t": pd.to_datetime(pd.Series(whens), utc=True, format="ISO8601")})
    ok = df["lon"].notna()
    return len(df), int(ok.sum()), int((~ok).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000],
                    help="numbers of points (default: the issue's 1e6 and 1e7)")
    args = ap.parse_args()
    lines = [f"# bench/ingest_kml.py  python {platform.python_version()}  "
             f"pandas {pd.__version__}  {platform.machine()}",
             f"{'points':>10} {'tool':<18} {'seconds':>8} {'peak MiB':>9} {'points/s':>10}  result"]
    print("\n".join(lines), flush=True)
    results: dict[int, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:  # one size at a time, each tool in its own process
            path = Path(tmp) / f"track_{n}.kml"
            make_kml(n, path)
            size_mb = path.stat().st_size / 2**20
            res = results.setdefault(n, {})
            for name, fn in (("routetrace kml", run_routetrace), ("lxml iterparse", run_iterparse)):
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
    ratios = ratio_lines(results, tool="routetrace kml", plain="lxml iterparse",
                         streamed="routetrace ingest")
    print("\n".join(ratios))
    lines += ratios
    lines.append("# note: 'routetrace ingest' holds the loaded file's tables until they are "
                 "stored (app/ingest.py stores a file's rows after its load, not chunk by chunk)")
    from _provenance import command_line, provenance_line  # bench/ is on sys.path

    lines.append(provenance_line(command=command_line(), measures=[
        "bench/ingest_kml.py", "bench/_cli_peak.py", "loaders/kml.py", "loaders/xmlsafe.py",
        "loaders/base.py", "app/ingest.py", "case.py"], style="text"))
    out_path = HERE / "results" / "ingest_kml.txt"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
