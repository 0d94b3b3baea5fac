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

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _cli_peak import run_xml_bench  # noqa: E402

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
    run_xml_bench(fmt="kml", make_file=make_kml, run_plain=run_iterparse,
                  measures=["bench/_cli_peak.py", "loaders/kml.py", "loaders/xmlsafe.py",
                "loaders/base.py", "app/ingest.py", "case.py", "schema.py"])


if __name__ == "__main__":
    main()
