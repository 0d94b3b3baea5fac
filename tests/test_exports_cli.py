"""Exports through the CLI, as an analyst opens them: every CSV any command writes is
formula-safe, and the GeoPackage keeps typed times and the rows without a position."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from routetrace import schema
from routetrace.app.ingest import ingest
from routetrace.case import open_case
from routetrace.cli import main
from routetrace.csvout import FORMULA_START
from routetrace.samples import generate
from routetrace.samples.scenario import PLACES, build_scenario

#: Names a subject, waypoint, place, geofence, file or statement can carry.
HYPERLINK = '=HYPERLINK("http://x","y")'
NAMES = (HYPERLINK, "+1", "-2", "@SUM(A1)")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _gpx(track: pd.DataFrame, path: Path, *, waypoints: dict[str, tuple[float, float]] | None = None,
         bad_point: bool = False) -> None:
    wpts = "".join(f'<wpt lat="{la}" lon="{lo}"><name>{n.replace("&", "&amp;").replace("<", "&lt;")}</name></wpt>'
                   for n, (la, lo) in (waypoints or {}).items())
    pts = "".join(f'<trkpt lat="{r.lat}" lon="{r.lon}"><time>{r.t_utc.isoformat()}</time></trkpt>'
                  for r in track.itertuples())
    if bad_point:  # one record the loader rejects: a row in quality.csv
        pts += '<trkpt lat="51" lon="4"><time>garbage</time></trkpt>'
    path.write_text(f'<gpx version="1.1">{wpts}<trk><trkseg>{pts}</trkseg></trk></gpx>')


def _csv_cells(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _unsafe_cells(path: Path) -> list[tuple[int, str, str]]:
    """Cells a spreadsheet would run as a formula. A column whose every filled cell is a
    number is numeric (``-0.5`` is a longitude, not a formula); anywhere else a cell may
    not start with = + - @ tab CR."""
    rows = _csv_cells(path)
    bad = [(0, "<header>", c) for c in rows[0] if c.startswith(FORMULA_START)]
    for j, name in enumerate(rows[0]):
        col = [r[j] for r in rows[1:] if j < len(r)]
        numeric = all(_NUMBER.fullmatch(c) for c in col if c)
        for i, c in enumerate(col, start=1):
            if c.startswith(("=", "@", "\t", "\r")) or (c.startswith(("+", "-")) and not numeric):
                bad.append((i, name, c))
    return bad


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every command that writes CSV, run through the CLI on a case whose subjects,
    waypoints, geofences, file names and statements carry formula text."""
    tmp = tmp_path_factory.mktemp("formula")
    sc = build_scenario(7)
    _gpx(sc.tracks["phone-A"], tmp / "phone.gpx", waypoints={n: (50.86 + k / 100, 4.36) for k, n in enumerate(NAMES)})
    _gpx(sc.tracks["lorry-1"], tmp / "+1 lorry.gpx", bad_point=True)
    _gpx(sc.tracks["lorry-2"], tmp / "lorry2.gpx")
    (tmp / "@SUM(A1).gpx").write_text("<gpx><trk>")  # unreadable: a file row in quality.csv
    names = [n for n in PLACES if n.endswith("carpark")]
    gpd.GeoDataFrame({"name": [NAMES[k % 4] + f" {n}" if k < 4 else n for k, n in enumerate(names)]},
                     crs="EPSG:4326", geometry=[shapely.Point(PLACES[n][1], PLACES[n][0]).buffer(0.0025)
                                                for n in names]).to_file(tmp / "fences.geojson", driver="GeoJSON")
    with open(tmp / "statements.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["statement_id", "person_id", "role", "hearing_date", "text", "place_name", "place"])
        for k, n in enumerate(NAMES):
            w.writerow([f"S{k}", f"V{k}", "victim", "2025-11-03", n, n, f"{PLACES['wetteren_carpark'][0]},"
                        f"{PLACES['wetteren_carpark'][1]}"])
    case = str(tmp / "case")
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp)  # relative paths: quality.csv's path column starts with the file's name
    mp.setenv("SOURCE_DATE_EPOCH", "1761000000")
    try:
        runs = [["ingest", case, "phone.gpx", f"--subject={HYPERLINK}"],
                ["ingest", case, "+1 lorry.gpx", "@SUM(A1).gpx", "--subject=+1"],
                ["ingest", case, "lorry2.gpx", "--subject=-2"],
                ["chronology", case], ["copresence", case],
                ["carparks", case, "--geofences", "fences.geojson"],
                ["corroborate", case, "statements.csv", "--out", "corroboration"],
                ["exhibit", case, "--out", "exhibit", "--no-static"],
                ["export", case, "--to", "csv", "--out", "export"]]
        for argv in runs:
            assert main([*argv, "--quiet"]) == 0, argv
    finally:
        mp.undo()
    return tmp


def test_every_csv_the_cli_writes_is_formula_safe(hostile_run: Path) -> None:
    written = sorted(hostile_run.rglob("*.csv"))
    names = {p.relative_to(hostile_run).as_posix() for p in written} - {"statements.csv"}
    # the commands' CSVs: ingest's report, the chronology, the exhibit's, corroboration's, export's
    assert {"case/quality.csv", "case/chronology.csv", "exhibit/chronology.csv",
            "corroboration/corroboration.csv", "export/fixes.csv", "export/places.csv", "export/stops.csv",
            "export/meetings.csv", "export/carpark_visits.csv", "export/geofences.csv"} <= names
    seen: dict[str, set[str]] = {n: set() for n in NAMES}
    for p in written:
        if p.name == "statements.csv" and p.parent == hostile_run:
            continue  # our input
        assert _unsafe_cells(p) == [], p
        for row in _csv_cells(p):
            for c in row:
                for n in NAMES:
                    if c.startswith("'" + n):
                        seen[n].add(p.relative_to(hostile_run).as_posix())
    # the hostile text did reach the CSVs, escaped: subjects, waypoints, geofences, files
    assert {"case/chronology.csv", "exhibit/chronology.csv", "export/fixes.csv", "export/places.csv",
            "export/stops.csv", "corroboration/corroboration.csv"} <= seen[HYPERLINK]
    assert {"case/chronology.csv", "export/meetings.csv", "export/stops.csv"} <= seen["+1"]
    assert "case/quality.csv" in seen["@SUM(A1)"] and "case/quality.csv" in seen["+1"]
    assert "export/geofences.csv" in seen["-2"]
    # durations as seconds with the unit in the name, never pandas' '0 days 00:01:00'
    for p in written:
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"\d+ days \d\d:\d\d:\d\d", text), p
    assert "dwell_s" in _csv_cells(hostile_run / "export" / "stops.csv")[0]
    assert "duration_s" in _csv_cells(hostile_run / "case" / "chronology.csv")[0]


@pytest.fixture(scope="module")
def sample_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("gpkg")
    for f in generate(tmp / "s"):
        ingest(tmp / "case", [tmp / "s" / f.path], subject_id=f.subject_id, tz=f.tz, format=f.format)
    return tmp


def test_geopackage_types_times_and_keeps_events_without_position(sample_case: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    case = sample_case / "case"
    assert main(["chronology", str(case), "--quiet"]) == 0
    assert main(["export", str(case), "--to", "gpkg", "--out", str(sample_case / "g"), "--quiet"]) == 0
    (gpkg,) = (sample_case / "g").glob("*.gpkg")
    layers = dict(pyogrio.list_layers(gpkg).tolist())
    c = open_case(case)
    events = c.table("events")
    no_pos = int((events["lat"].isna() | events["lon"].isna()).sum())
    assert no_pos == 13  # the sample's ignition events and chat messages
    assert layers["events"] == "Point" and layers["events_no_position"] is None  # an attribute table
    ev = pyogrio.read_dataframe(gpkg, layer="events")
    ev_np = pyogrio.read_dataframe(gpkg, layer="events_no_position")
    assert len(ev) + len(ev_np) == len(events) and len(ev_np) == 13
    # the export carries each event's derived id, first
    assert ev_np.columns[0] == "event_id"
    assert set(ev_np["event_id"]) == set(schema.event_ids(events[events["lat"].isna()]))
    # every time column of every table reads back as datetime64 (UTC), equal to the case's to the ms
    n_checked = 0
    for name in c.table_names():
        table = c.table(name)
        tcols = [k for k in table.columns if isinstance(table[k].dtype, pd.DatetimeTZDtype)]
        if not tcols:
            continue
        back = pd.concat([pyogrio.read_dataframe(gpkg, layer=ly) for ly in (name, f"{name}_no_position")
                          if ly in layers], ignore_index=True)
        assert len(back) == len(table), name
        for k in tcols:
            assert str(back[k].dtype).startswith("datetime64["), (name, k)
            # a column with no time at all (e.g. events.t_end of instant events) reads back
            # without a zone: GDAL infers the zone from the values and there are none
            assert str(back[k].dt.tz) == "UTC" or table[k].isna().all(), (name, k)
            a = table[k].dt.floor("ms").dropna().sort_values().reset_index(drop=True)
            b = back[k].dropna().sort_values().reset_index(drop=True).dt.as_unit("ns")
            pd.testing.assert_series_equal(a, b, check_names=False, check_dtype=False)
            n_checked += 1
        for k in [k for k in table.columns if pd.api.types.is_timedelta64_dtype(table[k].dtype)]:
            assert f"{k}_s" in back.columns and k not in back.columns
    assert n_checked >= 15
    # sub-millisecond times (iOS) keep every digit beside the typed column
    fx = pyogrio.read_dataframe(gpkg, layer="fixes")
    if "t_utc_iso" in fx.columns:
        exact = pd.to_datetime(fx["t_utc_iso"], format="ISO8601").sort_values().reset_index(drop=True)
        pd.testing.assert_series_equal(exact, c.table("fixes")["t_utc"].sort_values().reset_index(drop=True)
                                       .dt.as_unit("ns"), check_names=False, check_dtype=False)
