"""The copresence and carparks commands on a case built from the sample scenario's tracks."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from routetrace.app.ingest import ingest
from routetrace.case import open_case
from routetrace.cli import main
from routetrace.samples.scenario import PLACES, build_scenario


def _gpx(track, path: Path) -> None:  # type: ignore[no-untyped-def]
    pts = "".join(f'<trkpt lat="{r.lat}" lon="{r.lon}"><time>{r.t_utc.isoformat()}</time></trkpt>'
                  for r in track.itertuples())
    path.write_text(f'<gpx version="1.1"><trk><trkseg>{pts}</trkseg></trk></gpx>')


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("analysis")
    sc = build_scenario(7)
    for s in ("phone-A", "lorry-1", "lorry-2"):
        _gpx(sc.tracks[s], tmp / f"{s}.gpx")
        ingest(tmp / "case", [tmp / f"{s}.gpx"], subject_id=s)
    names = [n for n in PLACES if n.endswith("carpark")]
    gpd.GeoDataFrame({"name": names}, crs="EPSG:4326", geometry=[
        shapely.Point(PLACES[n][1], PLACES[n][0]).buffer(0.0025) for n in names]).to_file(
        tmp / "carparks.geojson", driver="GeoJSON")
    return tmp


def test_copresence_command(case_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copresence", str(case_dir / "case"), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    pairs = {(m["subject_a"], m["subject_b"]) for m in out["meetings"]}
    assert ("lorry-1", "phone-A") in pairs and not any("lorry-2" in p for p in pairs)
    case = open_case(case_dir / "case")
    assert len(case.table("meetings")) == len(out["meetings"])
    assert case.manifest["parameters"]["copresence"]["radius_m"] == 100.0


def test_carparks_command(case_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["carparks", str(case_dir / "case"), "--geofences", str(case_dir / "carparks.geojson"),
               "--json", "--quiet"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_geofences"] == 5 and out["n_visits"] > 5
    for fig in out["figures"]:
        assert Path(fig).stat().st_size > 1000
    visits = open_case(case_dir / "case").table("carpark_visits")
    wet = visits[(visits["geofence"] == "wetteren_carpark") & (visits["subject_id"] == "lorry-1")]
    assert "phone-A" in wet["others_present"].iloc[0]
    # verify covers the new tables and figures
    assert main(["verify", str(case_dir / "case"), "--quiet"]) == 0


def test_carparks_without_geofences_or_stops_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.gpx").write_text('<gpx version="1.1"><wpt lat="1" lon="1"/></gpx>')
    ingest(tmp_path / "case", [tmp_path / "a.gpx"])
    assert main(["carparks", str(tmp_path / "case")]) == 1
    assert "--geofences" in capsys.readouterr().err


def test_discover_lists_the_sample_extraction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from routetrace.samples import generate

    files = generate(tmp_path / "s")
    z = next(f for f in files if f.path.endswith("iphone_extraction.zip"))
    assert main(["discover", str(tmp_path / "s" / z.path)]) == 0
    out = capsys.readouterr().out
    assert "routined Cache.sqlite" in out and "Photos.sqlite" in out and "loaded" in out
