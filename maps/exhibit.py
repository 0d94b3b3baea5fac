"""One call writes the whole exhibit set and its manifest.

>>> from routetrace.maps import make_exhibit                      # doctest: +SKIP
>>> make_exhibit(fixes, stops=stops, trips=trips, gaps=gaps, places=places, sources=sources,
...              case_id="2025/123", exhibit_no="RT-7", out_dir="exhibit")  # doctest: +SKIP
{'exhibit.html': '3f1c…', 'exhibit.png': '…', ...}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__, schema
from ..codehash import code_sha256
from ..errors import ExportError
from ..evidence import sha256_file
from .basemap import TileSet, load_tiles
from .exports import (
    write_chronology_csv,
    write_geojson,
    write_geopackage,
    write_gpx,
    write_kml,
    write_kmz,
)
from .footer import source_date
from .selection import describe_selection, select_rows, selection_params
from .timeline import build_timeline_map, derive_gaps, prepare_fixes

__all__ = ["EXHIBIT_FILES", "exhibit_from_case", "make_exhibit"]

#: Files of an exhibit set (``manifest.json`` lists each with its SHA-256).
EXHIBIT_FILES = ("exhibit.html", "exhibit.png", "chronology.png", "exhibit.pdf", "exhibit.kml",
                 "exhibit.kmz", "exhibit.gpkg", "exhibit.geojson", "exhibit.gpx", "chronology.csv")


def make_exhibit(
    fixes: pd.DataFrame,
    *,
    stops: pd.DataFrame | None = None,
    trips: pd.DataFrame | None = None,
    gaps: pd.DataFrame | None = None,
    places: pd.DataFrame | None = None,
    sources: pd.DataFrame | None = None,
    case_id: str,
    exhibit_no: str,
    out_dir: str | os.PathLike[str],
    title: str = "Timeline map",
    params: Mapping[str, Any] | None = None,
    tiles: str | os.PathLike[str] | TileSet | None = None,
    roads: Any = None,
    static: bool = True,
    timezone_id: str = "UTC",
    corroboration: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> dict[str, str]:
    """Write the exhibit set to ``out_dir`` and return ``{file name: SHA-256}``.

    Files: ``exhibit.html`` (self-contained offline timeline map with footer and
    chronology), ``exhibit.png`` (map page), ``chronology.png`` and ``exhibit.pdf`` (A4
    landscape: map page, then chronology; Chromium, skipped when ``static=False``), ``exhibit.kml``/``.kmz`` (TimeStamp/TimeSpan), ``exhibit.gpkg``
    (layers fixes, stops, trips, places, gaps), ``exhibit.geojson``, ``exhibit.gpx``,
    ``chronology.csv`` and ``manifest.json`` (SHA-256 of every other file, parameters,
    tool version, ``SOURCE_DATE_EPOCH``), which ``routetrace verify --exhibit`` re-checks.

    Parameters
    ----------
    fixes, stops, trips, gaps, places, sources
        Canonical tables; only ``fixes`` is required. Pass the ``gaps`` the chronology
        computed: the map and every export show exactly those. Without them they are
        computed by the chronology's rule (:func:`~routetrace.maps.timeline.derive_gaps`:
        silences over 30 min, less the time a vehicle was parked with its ignition off
        when ``events`` are given), flagged ``derived``.
    case_id, exhibit_no
        Printed in the title, footer and every export.
    out_dir
        Output folder (created). Nothing is written anywhere else.
    params
        Extra parameters to state in the footer.
    tiles
        Path of an offline MBTiles raster file or PMTiles vector or raster file (only tiles
        covering the exhibit are inlined), or a loaded :class:`~routetrace.maps.basemap.TileSet`. Never a URL.
    roads
        Background road lines (``{name: [(lat, lon), ...]}`` or a GeoDataFrame of lines).
    static
        Also render PNG and PDF with Chromium.
    corroboration
        The statements' corroboration layer (``routes.corroborate.statement_layer`` with a
        result): verdicts in the place popups, marker colour by the worst verdict.
    events
        Vehicle events (ignition), used only to derive the gaps when none are given.

    Returns
    -------
    dict of str to str
        File name to SHA-256 hex digest of every file written except ``manifest.json``
        (which holds these digests).

    Raises
    ------
    ExportError
        Nothing to map, a tiles file that cannot be used, Chromium missing, or the page
        not clean offline (a blocked request or a console error).

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id="s", t_utc=pd.date_range("2025-01-01T10:00Z", periods=5, freq="1min"),
    ...                lat=[51.0, 51.001, 51.002, 51.003, 51.004], lon=3.7)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     files = make_exhibit(f, case_id="C-1", exhibit_no="7", out_dir=tmp, static=False)
    >>> sorted(files)
    ['chronology.csv', 'exhibit.geojson', 'exhibit.gpkg', 'exhibit.gpx', 'exhibit.html', 'exhibit.kml', 'exhibit.kmz']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    schema.validate(fixes, "fixes")
    stops_t = schema.empty("stops") if stops is None else schema.validate(stops, "stops")
    places_t = schema.empty("places") if places is None else schema.validate(places, "places")
    gaps_t = derive_gaps(fixes, events=events) if gaps is None else schema.validate(gaps, "gaps")
    if trips is not None:
        schema.validate(trips, "trips")
    tileset: TileSet | None
    if tiles is None or isinstance(tiles, TileSet):
        tileset = tiles
    else:
        if str(tiles).startswith(("http:", "https:")):
            raise ExportError("tiles must be an offline MBTiles or PMTiles file, not a URL", path=str(tiles))
        f = prepare_fixes(fixes)
        lat = pd.concat([f["lat"], stops_t["lat"], places_t["lat"]]).astype(float)
        lon = pd.concat([f["lon"], stops_t["lon"], places_t["lon"]]).astype(float)
        tileset = load_tiles(Path(tiles), (float(lat.min()), float(lon.min()), float(lat.max()), float(lon.max())))

    html = build_timeline_map(fixes, stops_t, gaps_t, places_t, sources,
                              case_id=case_id, exhibit_no=exhibit_no, title=title, params=params,
                              tiles=tileset, roads=roads, corroboration=corroboration)
    written: list[Path] = []
    isolation = None
    hp = out / "exhibit.html"
    hp.write_text(html, encoding="utf-8")
    written.append(hp)
    if static:
        from .static import render_static
        isolation = render_static(hp, out / "exhibit.png", out / "exhibit.pdf", chronology_png=out / "chronology.png",
                                  timezone_id=timezone_id).isolation
        written += [out / "exhibit.png", out / "chronology.png", out / "exhibit.pdf"]
    shown = describe_selection(params or {})
    rule = str((params or {}).get("selection", {}).get("rule", "")) if shown else ""
    kml = write_kml(out / "exhibit.kml", fixes, stops_t, gaps_t, places_t, sources, case_id=case_id,
                    exhibit_no=exhibit_no, trips=trips,
                    notes=[f"Shows {shown}" + (f" ({rule})." if rule else ".")] if shown else [])
    written += [kml, write_kmz(out / "exhibit.kmz", kml)]
    written.append(write_geopackage(out / "exhibit.gpkg", fixes, stops_t, trips, gaps_t, places_t))
    written.append(write_geojson(out / "exhibit.geojson", fixes, stops_t, gaps_t, places_t))
    written.append(write_gpx(out / "exhibit.gpx", fixes, stops_t, gaps_t, places_t))
    written.append(write_chronology_csv(out / "chronology.csv", stops_t, gaps_t, places_t, sources))

    hashes = {p.name: sha256_file(p) for p in written}
    manifest = {
        "kind": "routetrace exhibit", "case_id": case_id, "exhibit_no": exhibit_no,
        "tool": f"routetrace {__version__}", "tool_code_sha256": code_sha256(), "produced": source_date(),
        "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH"),
        "sources": [] if sources is None else [
            {"path": str(r["path"]), "sha256": str(r["source_id"])}
            for r in sources.sort_values("path", kind="mergesort").to_dict("records")],
        "parameters": {"stops": stops_t.attrs.get("params", {}), "gaps": gaps_t.attrs.get("params", {}),
                       **{str(k): v for k, v in (params or {}).items()}},
        "tiles": None if tileset is None else {"path": tileset.path, "sha256": tileset.sha256},
        # how the PNG/PDF browser was kept off the network (maps.static.network_isolation)
        "browser_network_isolation": isolation,
        "outputs": {name: {"sha256": h, "bytes": (out / name).stat().st_size} for name, h in sorted(hashes.items())},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n",
                                       encoding="utf-8")
    return dict(sorted(hashes.items()))


def exhibit_from_case(
    case_root: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    exhibit_no: str,
    title: str = "Timeline map",
    tiles: str | os.PathLike[str] | None = None,
    roads: Any = None,
    static: bool = True,
    subjects: Sequence[str] | None = None,
    t_from: Any = None,
    t_to: Any = None,
) -> dict[str, str]:
    """Write the exhibit set of a case folder (``routetrace exhibit CASE --out DIR``).

    Reads the case's ``fixes, stops, trips, gaps, places, sources`` tables (absent ones are
    empty; without a ``gaps`` table they are derived by the chronology's rule, with the
    case's ignition ``events``) and the stage parameters recorded in ``case.json``, then
    calls :func:`make_exhibit`. ``subjects``, ``t_from`` and ``t_to`` draw it from the rows
    of some subjects or of a period only (:mod:`routetrace.maps.selection` says which), and
    the exhibit states that selection beside the parameters.

    Parameters
    ----------
    case_root : str or os.PathLike
        The case folder.
    out_dir : str or os.PathLike
        Output folder (created).
    exhibit_no : str
        The exhibit number printed on every page and export.
    title : str, default "Timeline map"
        The exhibit title.
    tiles : str or os.PathLike, optional
        An offline MBTiles (raster) or PMTiles (vector or raster) file; default None: no base
        map tiles.
    roads : optional
        Background road lines, as for :func:`make_exhibit`.
    static : bool, default True
        Also render PNG and PDF with Chromium.
    subjects : sequence of str, optional
        Show these subjects only; default None: every subject.
    t_from, t_to : str, datetime or pandas.Timestamp, optional
        Show the period ``t_from <= t < t_to`` only, each time with its zone (``...Z`` or
        ``+02:00``); default None: open.

    Returns
    -------
    dict of str to str
        As :func:`make_exhibit`: file name to SHA-256.

    Raises
    ------
    ExportError
        The case (or the selection) has no fixes to map.
    ParameterError
        A subject the case does not hold, a time without a zone, or an empty period.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from routetrace.testing import example_case
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = example_case(d / "case")  # a lorry stopping 10 min with a phone beside it, then leaving
    >>> files = exhibit_from_case(d / "case", out_dir=d / "exhibit", exhibit_no="7", static=False)
    >>> "exhibit.html" in files, len(files["exhibit.html"])
    (True, 64)
    >>> tmp.cleanup()
    """
    from ..case import open_case

    case = open_case(Path(case_root))
    names = set(case.table_names())

    def get(name: str) -> pd.DataFrame | None:
        if name not in names:
            return None
        df = case.table(name)
        return pd.DataFrame(df.drop(columns=[c for c in ("geometry",) if c in df.columns]))

    t = {n: get(n) for n in ("fixes", "stops", "trips", "gaps", "places", "sources", "events")}
    chosen = selection_params(subjects=subjects, t_from=t_from, t_to=t_to)
    if t["fixes"] is not None and len(t["fixes"]) and chosen:
        t = select_rows(t, subjects=subjects, t_from=t_from, t_to=t_to)
    fixes = t["fixes"]
    if fixes is None or not len(fixes):
        said = chosen.get("selection")
        what = ("the case has no fixes to map" if not said else
                f"the case has no fixes of {', '.join(said.get('subjects', ['any subject']))} "
                f"from {said.get('from', 'its start')} to {said.get('to (excluded)', 'its end')} to map")
        raise ExportError(what, path=str(case_root),
                          hint="widen the period or name other subjects" if said else "ingest evidence first")
    return make_exhibit(
        fixes, stops=t["stops"], trips=t["trips"], gaps=t["gaps"], places=t["places"],
        sources=t["sources"], case_id=case.case_id, exhibit_no=exhibit_no, out_dir=out_dir,
        title=f"{title} · {describe_selection(chosen)}" if chosen else title,
        params={**case.manifest.get("parameters", {}), **chosen}, tiles=tiles, roads=roads,
        static=static, events=t["events"])
