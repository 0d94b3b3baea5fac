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

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _cli_peak import run_xml_bench  # noqa: E402


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
    run_xml_bench(fmt="gpx", make_file=make_gpx, run_plain=run_iterparse,
                  measures=["bench/_cli_peak.py", "loaders/gpx.py", "loaders/xmlsafe.py",
                "loaders/base.py", "app/ingest.py", "case.py", "schema.py"], cli_mb_limit=1000)


if __name__ == "__main__":
    main()
