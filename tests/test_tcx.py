"""TCX loader: activities, courses, pauses without position, times, hostile and damaged XML."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from routetrace.cli import main
from routetrace.errors import CorruptSource
from routetrace.loaders import detect_format, load
from routetrace.testing import assert_count_rule, hash_tree

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"'
        ' xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2">\n')


def _tp(time: str | None, lat: float | str | None = None, lon: float | str | None = None,
        alt: float | None = None, speed: float | None = None) -> str:
    parts = ["<Trackpoint>"]
    if time is not None:
        parts.append(f"<Time>{time}</Time>")
    if lat is not None:
        parts.append(f"<Position><LatitudeDegrees>{lat}</LatitudeDegrees>"
                     f"<LongitudeDegrees>{lon}</LongitudeDegrees></Position>")
    if alt is not None:
        parts.append(f"<AltitudeMeters>{alt}</AltitudeMeters>")
    parts.append("<DistanceMeters>12.5</DistanceMeters><HeartRateBpm><Value>131</Value></HeartRateBpm>")
    if speed is not None:
        parts.append(f"<Extensions><ns3:TPX><ns3:Speed>{speed}</ns3:Speed></ns3:TPX></Extensions>")
    return "".join(parts) + "</Trackpoint>\n"


def _activity(laps: list[list[str]], sport: str = "Biking") -> str:
    body = "".join(f'<Lap StartTime="2024-03-01T08:00:00Z"><TotalTimeSeconds>60</TotalTimeSeconds>'
                   f"<Track>{''.join(pts)}</Track></Lap>" for pts in laps)
    return f'<Activity Sport="{sport}"><Id>2024-03-01T08:00:00Z</Id>{body}</Activity>'


def _write(tmp_path: Path, body: str, name: str = "ride.tcx") -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def _ride(tmp_path: Path) -> Path:
    lap0 = [_tp("2024-03-01T08:00:00Z", 50.85, 4.35, 20.5, 3.2),
            _tp("2024-03-01T08:00:05Z"),  # heart rate only: GPS paused
            _tp("2024-03-01T10:00:10+02:00", 50.8502, 4.3503),
            _tp("2024-03-01T08:00:15", 50.8504, 4.3506),  # no offset
            _tp(None, 50.8505, 4.3507),
            _tp("2024-03-01T08:00:25Z", 95.0, 4.35),
            _tp("2024-03-01T08:00:30Z", "fifty", 4.35),
            _tp("1970-01-01T00:00:00Z", 50.85, 4.35),
            _tp("2024-03-01T08:00:40Z", 0, 0)]
    lap1 = [_tp("2024-03-01T08:01:00Z", 50.86, 4.36)]
    courses = ("<Courses><Course><Name>Sunday loop</Name><Lap><TotalTimeSeconds>1</TotalTimeSeconds></Lap>"
               "<Track>" + _tp("2024-03-03T09:00:00Z", 50.9, 4.4) + _tp("2024-03-03T09:01:00Z") +
               "</Track><CoursePoint><Name>Water &amp; food</Name><Time>2024-03-03T09:10:00Z</Time>"
               "<Position><LatitudeDegrees>50.91</LatitudeDegrees><LongitudeDegrees>4.41</LongitudeDegrees>"
               "</Position><PointType>Water</PointType></CoursePoint></Course></Courses>")
    return _write(tmp_path, HEAD + "<Activities>" + _activity([lap0, lap1]) + _activity(
        [[_tp("2024-03-02T07:00:00Z", -33.9, 18.4)]], "Running") + "</Activities>" + courses +
        "</TrainingCenterDatabase>\n")


def test_activity_trackpoints_are_fixes_and_every_point_is_counted(tmp_path: Path) -> None:
    p = _ride(tmp_path)
    assert detect_format(p).name == "tcx"
    before = hash_tree(tmp_path)
    res = load(p)
    assert hash_tree(tmp_path) == before
    assert_count_rule(res)
    assert res.records_read == 9 + 1 + 1 + 2 + 1
    fx = res.fixes.set_index("record")
    a0 = "Activity[0]/Lap[0]/Track[0]/Trackpoint"
    assert fx.index.tolist() == [f"{a0}[0]", f"{a0}[2]", "Activity[0]/Lap[1]/Track[0]/Trackpoint[0]",
                                 "Activity[1]/Lap[0]/Track[0]/Trackpoint[0]"]
    first = fx.loc[f"{a0}[0]"]
    assert (first["lat"], first["lon"], first["alt_m"], first["speed_mps"]) == (50.85, 4.35, 20.5, 3.2)
    assert first["t_utc"] == pd.Timestamp("2024-03-01T08:00:00Z") and first["fix_kind"] == "gps"
    assert json.loads(first["extra"]) == {"distance_m": 12.5, "sport": "Biking"}
    assert fx.loc[f"{a0}[2]", "t_utc"] == pd.Timestamp("2024-03-01T08:00:10Z")  # +02:00 converted
    assert fx.loc["Activity[1]/Lap[0]/Track[0]/Trackpoint[0]", "lat"] == -33.9
    rej = res.rejects.set_index("record")["reason"]
    assert rej[f"{a0}[1]"].startswith("no <Position>")
    assert "no UTC offset" in rej[f"{a0}[3]"]
    assert "without <Time>" in rej[f"{a0}[4]"]
    assert "out of range" in rej[f"{a0}[5]"]
    assert "unreadable <LatitudeDegrees> 'fifty'" in rej[f"{a0}[6]"]
    assert "implausible time 1970" in rej[f"{a0}[7]"]
    assert "0,0" in rej[f"{a0}[8]"]
    # a stated zone reads the naive time
    res_tz = load(p, tz="Europe/Brussels")
    assert res_tz.fixes.set_index("record").loc[f"{a0}[3]", "t_utc"] == pd.Timestamp("2024-03-01T07:00:15Z")
    assert "Europe/Brussels" in res_tz.source["time_basis"].iloc[0]


def test_courses_are_planned_places_never_fixes(tmp_path: Path) -> None:
    res = load(_ride(tmp_path))
    pl = res.places.set_index("record")
    assert pl.loc["Course[0]/Track[0]/Trackpoint[0]", "kind"] == "course"
    assert pl.loc["Course[0]/Track[0]/Trackpoint[0]", "t_precision"] == "none"
    assert pd.isna(pl.loc["Course[0]/Track[0]/Trackpoint[0]", "t_start"])
    assert json.loads(pl.loc["Course[0]/Track[0]/Trackpoint[0]", "extra"])["planned_time"] == "2024-03-03T09:00:00Z"
    cp = pl.loc["Course[0]/CoursePoint[0]"]
    assert (cp["kind"], cp["name"]) == ("course_point", "Water & food")
    assert json.loads(cp["extra"])["point_type"] == "Water"
    assert "no <Position>" in res.rejects.set_index("record")["reason"]["Course[0]/Track[0]/Trackpoint[1]"]
    assert not res.fixes["record"].str.startswith("Course").any()


def test_truncated_file_keeps_what_came_before_and_names_the_fault(tmp_path: Path) -> None:
    full = _ride(tmp_path).read_text()
    cut = full[: full.index("2024-03-01T08:00:25Z") + 5]  # inside Trackpoint[5] of lap 0
    res = load(_write(tmp_path, cut, "cut.tcx"))
    assert_count_rule(res)
    assert len(res.fixes) == 2
    fault = res.rejects.set_index("record")["reason"]["fault"]
    assert "breaks off or is malformed at line" in fault
    assert "Activity[0]/Lap[0]/Track[0]/Trackpoint[5]" in fault


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_entities_are_refused(tmp_path: Path, encoding: str) -> None:
    laughs = ('<!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
              '<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')
    body = (f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n' + laughs +
            HEAD.split("\n", 1)[1] + "<Activities>" +
            _activity([[_tp("2024-03-01T08:00:00Z", 50.85, 4.35)]], "&b;&xxe;") +
            "</Activities></TrainingCenterDatabase>")
    p = tmp_path / "bomb.tcx"
    p.write_bytes(body.encode(encoding))
    with pytest.raises(CorruptSource, match="entity"):
        load(p, format="tcx")


def test_not_tcx_and_garbage_are_clear_errors(tmp_path: Path) -> None:
    other = _write(tmp_path, '<?xml version="1.0"?><gpx version="1.1"/>', "other.tcx")
    with pytest.raises(CorruptSource, match="not a TCX document"):
        load(other, format="tcx")
    junk = _write(tmp_path, "\x00\x01 garbage", "junk.tcx")
    with pytest.raises(CorruptSource, match="malformed XML"):
        load(junk, format="tcx")


def test_routetrace_ingest_of_a_tcx(tmp_path: Path) -> None:
    p = _ride(tmp_path)
    case = tmp_path / "case"
    assert main(["ingest", str(case), str(p), "-q"]) == 0
    from routetrace.case import open_case

    c = open_case(case)
    assert len(c.table("fixes")) == 4 and (c.table("sources")["format"] == "tcx").all()
    assert len(c.table("rejects")) == 8 and len(c.table("places")) == 2


def test_a_gpx_naming_the_tcx_schema_is_not_claimed(tmp_path: Path) -> None:
    """Garmin GPX files name the TrainingCenterDatabase schema in schemaLocation: gpx only."""
    from routetrace.loaders.tcx import sniff_tcx

    gpx = (b'<?xml version="1.0"?>\n<gpx xmlns="http://www.topografix.com/GPX/1/1" '
           b'xsi:schemaLocation="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2 '
           b'http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd"><trk/></gpx>')
    assert not sniff_tcx(tmp_path, gpx)
    assert sniff_tcx(tmp_path, HEAD.encode())
    assert sniff_tcx(tmp_path, b"\xef\xbb\xbf<!-- exported -->\n<tcx:TrainingCenterDatabase xmlns:tcx='x'>")
    p = tmp_path / "garmin.gpx"
    p.write_bytes(gpx)
    assert detect_format(p).name == "gpx"
