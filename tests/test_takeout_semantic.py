"""Semantic Location History: real months, BOM, empty locations, waypoints without time."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from routetrace.errors import CorruptSource
from routetrace.loaders import load
from routetrace.schema import has_flag
from routetrace.testing import assert_count_rule, hash_tree


def test_every_real_semantic_file_loads(realdata_dir: Path) -> None:
    folder = realdata_dir / "takeout" / "semantic"
    before = hash_tree(folder)
    res = {f.name: load(f) for f in sorted(folder.glob("*.json"))}
    assert hash_tree(folder) == before
    for r in res.values():
        assert_count_rule(r)
        assert r.source["format"].iloc[0] == "google-takeout-semantic"
    may = res["gpsbabel_2013_MAY.json"]
    kinds = may.places["kind"].value_counts().to_dict()
    assert kinds == {"visit": 51, "waypoint": 224}
    assert (len(may.events), len(may.fixes), len(may.rejects)) == (84, 128, 0)
    june = res["gpsbabel_2013_JUNE.json"]
    assert june.places["kind"].value_counts()["visit"] == 60 and len(june.events) == 167
    assert len(june.fixes) == 120
    # candidates counted: 443 otherCandidateLocations in May
    n_cand = may.places.loc[may.places["kind"] == "visit", "extra"].map(
        lambda e: json.loads(e)["n_candidates"]).sum()
    assert n_cand == 443


def test_visit_fields_verbatim(realdata_dir: Path) -> None:
    may = load(realdata_dir / "takeout" / "semantic" / "gpsbabel_2013_MAY.json")
    v = may.places.iloc[0]
    assert (v["kind"], v["name"]) == ("visit", "Facebook")
    assert v["address"] == "1 Hacker Way, Menlo Park, California 94025, United States"
    assert (v["lat"], v["lon"]) == (37.4850711, -122.1474242)
    assert v["t_start"] == pd.Timestamp("2013-05-09T01:24:28.883Z")
    assert v["t_end"] == pd.Timestamp("2013-05-09T16:55:16.119Z")
    assert v["confidence"] == pytest.approx(0.64)
    ex = json.loads(v["extra"])
    assert ex["placeConfidence"] == "HIGH_CONFIDENCE" and ex["n_candidates"] == 6


def test_empty_start_location_and_waypoints_without_time(realdata_dir: Path) -> None:
    res = load(realdata_dir / "takeout" / "semantic" / "dawarich_semantic_history.json")
    assert_count_rule(res)
    assert len(res.events) == 3 and res.events["lat"].isna().all()
    assert all(json.loads(e)["start_location_empty"] for e in res.events["extra"])
    wp = res.places
    assert (wp["kind"] == "waypoint").all() and len(wp) == 6
    assert wp["t_start"].isna().all() and wp["t_end"].isna().all()
    assert has_flag(wp["flags"], "no_time").all()
    assert (wp["t_precision"] == "none").all()
    first = json.loads(wp["extra"].iloc[0])
    assert first["segment_start"] == "2013-12-01T07:05:14.222000+00:00"
    assert (wp["lat"].iloc[0], wp["lon"].iloc[0]) == (53.340744, 83.7026901)
    assert len(res.fixes) == 0  # no time, no fix


def test_bom_file(realdata_dir: Path) -> None:
    res = load(realdata_dir / "takeout" / "semantic" / "dawarich_semantic_history_with_bom.json")
    assert_count_rule(res)
    ev = res.events.iloc[0]
    assert ev["t_utc"] == pd.Timestamp("2024-01-01T10:00:00Z")
    assert (ev["lat"], ev["lon"]) == (60.4518, 22.2666)
    assert json.loads(ev["extra"])["end"] == [60.4519, 22.2667]


def _write(tmp_path: Path, objs: list[object], bom: bool = False) -> Path:
    p = tmp_path / "2019_MARCH.json"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + json.dumps({"timelineObjects": objs}).encode())
    return p


def test_older_timestampMs_keys_and_hostile_text(tmp_path: Path) -> None:
    objs = [
        {"placeVisit": {
            "location": {"latitudeE7": 510000000, "longitudeE7": 38700000,
                         "name": "<script>alert(1)</script>", "address": "Rue & Co"},
            "duration": {"startTimestampMs": "1553000000000", "endTimestampMs": "1553003600000"},
            "simplifiedRawPath": {"points": [{"latE7": 510000100, "lngE7": 38700100,
                                              "timestampMs": "1553000060000",
                                              "accuracyMeters": 9}]},
            "childVisits": [{"location": {"latitudeE7": 510000200, "longitudeE7": 38700200},
                             "duration": {"startTimestampMs": "1553000100000"}}]}},
        {"activitySegment": {"startLocation": {"latitudeE7": 510000000, "longitudeE7": 38700000},
                             "duration": {"startTimestampMs": "1553003600000"},
                             "activityType": "IN_PASSENGER_VEHICLE", "distance": 1200,
                             "parkingEvent": {"location": {"latitudeE7": 510001000,
                                                           "longitudeE7": 38701000,
                                                           "accuracyMetres": 23},
                                              "method": "END_OF_ACTIVITY_SEGMENT",
                                              "timestamp": "2019-03-19T14:05:00.000Z"}}},
        {"placeVisit": {"location": {"address": "only an address"},
                        "duration": {"startTimestamp": "2019-03-19T13:00:00Z"}}},
        {"somethingNew": {}},
        "garbage",
    ]
    res = load(_write(tmp_path, objs, bom=True))
    assert_count_rule(res)
    visit = res.places.set_index("record").loc["timelineObjects[0].placeVisit"]
    assert visit["name"] == "<script>alert(1)</script>" and visit["address"] == "Rue & Co"
    assert visit["t_start"] == pd.Timestamp(1553000000000, unit="ms", tz="UTC")
    assert "timelineObjects[0].placeVisit.childVisits[0]" in set(res.places["record"])
    fx = res.fixes.iloc[0]
    assert fx["t_utc"] == pd.Timestamp(1553000060000, unit="ms", tz="UTC") and fx["h_acc_m"] == 9
    ev = res.events.iloc[0]
    assert (ev["text"], ev["value"], ev["unit"]) == ("IN_PASSENGER_VEHICLE", 1200.0, "m")
    park = res.places.set_index("record").loc["timelineObjects[1].activitySegment.parkingEvent"]
    assert (park["kind"], park["lat"], park["radius_m"]) == ("parking", 51.0001, 23.0)
    assert park["t_start"] == pd.Timestamp("2019-03-19T14:05:00Z")
    why = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert "without coordinates" in why["timelineObjects[2].placeVisit"]
    assert "neither placeVisit" in why["timelineObjects[3]"]
    assert "neither placeVisit" in why["timelineObjects[4]"]


def test_malformed_semantic_files(tmp_path: Path) -> None:
    p = _write(tmp_path, [{"placeVisit": {}}])
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(CorruptSource, match="malformed JSON"):
        load(p)
    (tmp_path / "w.json").write_text('{"timelineObjects": {"a": 1}}')
    with pytest.raises(CorruptSource, match="timelineObjects"):
        load(tmp_path / "w.json")
    bad_time = load(_write(tmp_path, [{"placeVisit": {
        "location": {"latitudeE7": 1, "longitudeE7": 2}, "duration": {"startTimestamp": 5}}}]))
    assert_count_rule(bad_time)
    assert "not a string" in bad_time.rejects["reason"].iloc[0]


def test_an_over_deep_timeline_object_is_a_reject_the_others_load(tmp_path: Path) -> None:
    visit = json.dumps({"placeVisit": {"location": {"latitudeE7": 510000000, "longitudeE7": 38000000},
                                       "duration": {"startTimestamp": "2025-10-24T20:00:00Z"}}})
    p = tmp_path / "2025_OCTOBER.json"
    p.write_text('{"timelineObjects": [' + visit + ', {"placeVisit": ' + "[" * 5_000
                 + "]" * 5_000 + "}, " + visit + "]}", encoding="utf-8")
    res = load(p)  # was: the whole month a CorruptSource (recursion limit)
    assert_count_rule(res)
    assert res.places["record"].tolist() == ["timelineObjects[0].placeVisit",
                                             "timelineObjects[2].placeVisit"]
    why = res.rejects.set_index("record")["reason"]
    assert why["timelineObjects[1]"].startswith("nested 5,003 levels deep (limit 64): not read")
    assert "SHA-256" in why["timelineObjects[1]"]


def test_memory_error_in_one_file_is_that_files_error_not_the_ingests_end(tmp_path: Path) -> None:
    """#20: a MemoryError inside one file's load ended the whole folder ingest. A month of
    3 million timeline objects (6 MB) read under an address-space cap runs out of memory:
    that file is an error, the NMEA log after it still loads. In a child process."""
    import subprocess
    import sys
    import textwrap

    ev = tmp_path / "evidence"
    ev.mkdir()
    with open(ev / "a_2025_OCTOBER.json", "w") as fh:
        fh.write('{"timelineObjects": [' + "0," * 3_000_000 + "0]}")
    s = ["GPRMC,120000.00,A,5100.0000,N,00352.2000,E,1.0,90.0,010325,,,A",
         "GPGGA,120000.00,5100.0000,N,00352.2000,E,1,08,0.9,12.0,M,,M,,",
         "GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"]
    lines = []
    for body in s:
        c = 0
        for ch in body.encode():
            c ^= ch
        lines.append(f"${body}*{c:02X}")
    (ev / "b.nmea").write_text("\n".join(lines) + "\n")
    code = textwrap.dedent(f"""
        import resource
        from routetrace.loaders import load, load_many
        load({str(ev / "b.nmea")!r})  # warm up: imports, thread pools
        with open("/proc/self/status") as fh:
            vm = next(int(x.split()[1]) * 1024 for x in fh if x.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (200 << 20), vm + (200 << 20)))
        for o in load_many({str(ev)!r}):
            print(type(o.error).__name__ if o.error else "ok", len(o.result.fixes) if o.result else "",
                  str(o.error or "")[-200:])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    first, second = out.stdout.splitlines()
    assert first.startswith("LoaderError ") and "ran out of memory" in first
    assert second.startswith("ok 1")
