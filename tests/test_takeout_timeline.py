"""On-device Timeline exports (Android, iOS, Timeline Edits) and sniffer exclusivity."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from routetrace.errors import CorruptSource, UnknownFormat
from routetrace.loaders import detect_format, load
from routetrace.loaders.google_common import latlng
from routetrace.schema import has_flag
from routetrace.testing import assert_count_rule, hash_tree

EXPECTED = {
    "records": "google-takeout-records",
    "semantic": "google-takeout-semantic",
    "timeline_android": "google-timeline-android",
    "timeline_ios": "google-timeline-ios",
    "other": "google-timeline-edits",
}
MINE = set(EXPECTED.values())


def test_every_real_file_has_exactly_one_loader(realdata_dir: Path) -> None:
    for sub, fmt in EXPECTED.items():
        for f in sorted((realdata_dir / "takeout" / sub).glob("*")):
            assert detect_format(f).name == fmt, f  # raises if 0 or 2+ sniffers claim it
    # and no Google sniffer claims any other real evidence file
    from routetrace.loaders import REGISTRY

    for f in sorted(realdata_dir.rglob("*")):
        if not f.is_file() or "takeout" in f.parts:
            continue
        head = f.read_bytes()[: 64 * 1024]
        claims = [n for n in MINE if REGISTRY[n][0].sniff(f, head)]
        assert claims == [], (f, claims)


def test_every_real_timeline_file_loads(realdata_dir: Path) -> None:
    root = realdata_dir / "takeout"
    before = hash_tree(root)
    res = {f.name: load(f) for sub in ("timeline_android", "timeline_ios", "other")
           for f in sorted((root / sub).glob("*.json"))}
    assert hash_tree(root) == before
    for r in res.values():
        assert_count_rule(r)
    rnd = res["reitti_timeline_from_android_randomized.json"]
    assert rnd.places["kind"].value_counts().to_dict() == {"visit": 7}
    assert len(rnd.events) == 5 and len(rnd.fixes) == 80 + 3
    assert rnd.rejects["reason"].str.contains("wifi scan without access points").all()
    ios = res["reitti_timeline_from_ios_randomized.json"]
    assert (len(ios.places), len(ios.events), len(ios.rejects)) == (26, 24, 0)
    assert set(ios.events["text"]) >= {"in passenger vehicle", "walking"}
    zeit = res["reitti_Zeitachse.json"]
    assert len(zeit.extra_tables["wifi_scans"]) == 29
    assert zeit.extra_tables["wifi_scans"]["mac"].str.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}").all()
    dup = res["dawarich_phone-takeout_w_3_duplicates.json"]
    assert dup.places["kind"].value_counts().to_dict() == {"visit": 1, "frequent": 2}
    freq = dup.places[dup.places["kind"] == "frequent"]
    assert set(freq["name"]) == {"WORK", "HOME"} and has_flag(freq["flags"], "no_time").all()
    edits = res["dawarich_timeline_edits.json"]
    fx = edits.fixes.iloc[0]
    assert (fx["lat"], fx["lon"], fx["h_acc_m"]) == (35.5831402, -119.3393903, 12.0)
    assert fx["subject_id"] == "google-device--1613859921"
    assert fx["t_utc"] == pd.Timestamp("2025-08-15T14:32:18Z")


def test_degree_sign_coordinates(realdata_dir: Path) -> None:
    assert latlng("-27.4127738°, 163.5638958°") == (-27.4127738, 163.5638958)
    assert latlng({"latLng": "50.0506312°, 14.3439906°"}) == (50.0506312, 14.3439906)
    assert isinstance(latlng("27°N, 97°W"), str)
    res = load(realdata_dir / "takeout" / "timeline_android"
               / "reitti_timeline_from_android_randomized.json")
    first = res.fixes.iloc[0]
    assert (first["lat"], first["lon"]) == (-27.4127738, 163.5638958)
    # "2017-05-02T12:12:00+10:00" is 02:12 UTC
    assert first["t_utc"] == pd.Timestamp("2017-05-02T02:12:00Z")
    visit = res.places.iloc[0]
    assert visit["t_start"] == pd.Timestamp("2017-05-02T02:12:04Z")
    assert visit["confidence"] == pytest.approx(0.94)


def test_string_numbers_and_geo_uris(realdata_dir: Path) -> None:
    res = load(realdata_dir / "takeout" / "timeline_ios" / "reitti_timeline_from_ios_randomized.json")
    ev = res.events.iloc[0]
    assert (ev["lat"], ev["lon"], ev["value"]) == (55.596349, 24.7405147, 1881.0)
    assert json.loads(ev["extra"])["end"] == [55.605487, 24.7648727]
    v = res.places.iloc[0]
    assert v["confidence"] == pytest.approx(0.95) and (v["lat"], v["lon"]) == (55.605843, 24.7647107)
    assert v["t_start"] == pd.Timestamp("2023-12-27T12:39:37Z")
    assert json.loads(v["extra"])["semanticType"] == "Home"


def test_ios_mixed_offsets_and_minute_offsets(realdata_dir: Path) -> None:
    res = load(realdata_dir / "takeout" / "timeline_ios" / "dawarich_location-history.json")
    assert_count_rule(res)
    visit = res.places.iloc[0]
    assert visit["t_start"] == pd.Timestamp("2023-08-27T20:48:56Z")  # 15:48:56-05:00
    mem = res.events.iloc[0]
    assert mem["kind"] == "timeline_memory"
    assert mem["t_utc"] == pd.Timestamp("2023-08-27T20:48:56Z")  # 14:48:56-06:00
    fx = res.fixes
    assert len(fx) == 10 and has_flag(fx["flags"], "derived").all()
    assert fx["t_utc"].iloc[0] == pd.Timestamp("2023-08-27T20:49:00Z")  # 20:00Z + 49 min
    assert fx["t_utc"].iloc[-1] == pd.Timestamp("2023-08-27T23:52:00Z")  # 22:00Z + 112 min


def _ios(tmp_path: Path, items: list[object]) -> Path:
    p = tmp_path / "location-history.json"
    p.write_text(json.dumps(items, indent=1), encoding="utf-8")
    return p


def test_dst_change_inside_one_ios_file(tmp_path: Path) -> None:
    # America/Chicago leaves daylight time on 2023-11-05 at 02:00 CDT -> 01:00 CST: the
    # local clock shows 01:30 twice. Each item carries its own offset.
    items = [
        {"startTime": "2023-11-05T01:30:00.000-05:00", "endTime": "2023-11-05T01:50:00.000-05:00",
         "timelinePath": [{"point": "geo:29.76,-95.36", "durationMinutesOffsetFromStartTime": "10"}]},
        {"startTime": "2023-11-05T01:30:00.000-06:00", "endTime": "2023-11-05T01:50:00.000-06:00",
         "timelinePath": [{"point": "geo:29.77,-95.37", "durationMinutesOffsetFromStartTime": "10"}]},
        {"startTime": "2023-11-05T01:55:00.000-06:00", "endTime": "2023-11-05T03:00:00.000-06:00",
         "visit": {"probability": "0.5", "topCandidate": {"placeLocation": "geo:29.78,-95.38"}}},
    ]
    res = load(_ios(tmp_path, items))
    assert_count_rule(res)
    assert res.fixes["t_utc"].tolist() == [pd.Timestamp("2023-11-05T06:40:00Z"),
                                          pd.Timestamp("2023-11-05T07:40:00Z")]
    assert res.places["t_start"].iloc[0] == pd.Timestamp("2023-11-05T07:55:00Z")
    assert res.places["t_end"].iloc[0] == pd.Timestamp("2023-11-05T09:00:00Z")
    assert [json.loads(e)["start_offset_min"] for e in res.places["extra"]] == [-360]


def test_android_offsets_minutes_and_disagreement(tmp_path: Path) -> None:
    doc = {"semanticSegments": [
        {"startTime": "2025-10-26T02:30:00.000", "endTime": "2025-10-26T03:30:00.000",
         "startTimeTimezoneUtcOffsetMinutes": 60, "endTimeTimezoneUtcOffsetMinutes": 60,
         "visit": {"probability": 0.9, "topCandidate": {"placeLocation": {"latLng": "51.0°, 3.87°"}}}},
        {"startTime": "2025-10-26T02:30:00.000+02:00", "endTime": "2025-10-26T02:40:00.000+02:00",
         "startTimeTimezoneUtcOffsetMinutes": 60,
         "activity": {"start": {"latLng": "51.0°, 3.87°"}, "end": {"latLng": "51.1°, 3.9°"},
                      "distanceMeters": 900.0, "topCandidate": {"type": "WALKING", "probability": 0.8}}},
        {"startTime": "2025-10-26T02:30:00.000", "endTime": "x", "visit": {}},
        {"startTime": "2025-10-26T02:30:00Z", "endTime": "2025-10-26T03:30:00Z"},
    ], "rawSignals": [{"position": {"LatLng": "91.0°, 3.87°", "timestamp": "2025-10-26T00:00:00Z"}},
                      {"somethingElse": {}}]}
    p = tmp_path / "Cronologia.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    assert detect_format(p).name == "google-timeline-android"
    res = load(p)
    assert_count_rule(res)
    assert res.places["t_start"].iloc[0] == pd.Timestamp("2025-10-26T01:30:00Z")
    ev = res.events.iloc[0]
    assert ev["t_utc"] == pd.Timestamp("2025-10-26T00:30:00Z")
    assert has_flag(pd.Series([ev["flags"]]), "tz_disagreement").all()
    why = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert "no UTC offset" in why["semanticSegments[2].visit"]
    assert "no visit, activity" in why["semanticSegments[3]"]
    assert "out of range" in why["rawSignals[0]"]
    assert "unknown kind" in why["rawSignals[1]"]


def test_out_of_range_times_are_record_rejects_not_file_failures(tmp_path: Path) -> None:
    # found by bench/fuzz.py: one damaged value used to fail the whole file
    doc = {"semanticSegments": [
        # "GMT+1" is read by pandas as UTC-1 (POSIX sign): no rule here, so not a time
        {"startTime": "2025-10-26 02:30:00 GMT+1", "endTime": "2025-10-26 03:30:00 GMT+1",
         "startTimeTimezoneUtcOffsetMinutes": 60, "endTimeTimezoneUtcOffsetMinutes": 60,
         "visit": {"probability": 0.9, "topCandidate": {"placeLocation": {"latLng": "51.0°, 3.87°"}}}},
        {"startTime": "2025-10-26T02:30:00.000", "endTime": "2025-10-26T03:30:00.000",
         "startTimeTimezoneUtcOffsetMinutes": 6e20, "endTimeTimezoneUtcOffsetMinutes": 60,
         "visit": {"probability": 0.9, "topCandidate": {"placeLocation": {"latLng": "51.0°, 3.87°"}}}},
        {"startTime": "2025-10-26T02:30:00Z", "endTime": "2025-10-26T03:30:00Z",
         "visit": {"probability": 0.9, "topCandidate": {"placeLocation": {"latLng": "51.0°, 3.87°"}}}},
    ]}
    p = tmp_path / "Timeline.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    res = load(p)
    assert_count_rule(res)
    assert len(res.places) == 1 and res.places["t_start"].iloc[0] == pd.Timestamp("2025-10-26T02:30:00Z")
    why = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert "no UTC offset" in why["semanticSegments[0].visit"]
    assert "no UTC offset" in why["semanticSegments[1].visit"]
    items = [{"startTime": "2023-11-05T01:30:00.000-05:00", "endTime": "2023-11-05T01:50:00.000-05:00",
              "timelinePath": [{"point": "geo:29.76,-95.36", "durationMinutesOffsetFromStartTime": "1e40"},
                               {"point": "geo:29.76,-95.36", "durationMinutesOffsetFromStartTime": "1e8"},
                               {"point": "geo:29.77,-95.37", "durationMinutesOffsetFromStartTime": "10"}]}]
    res = load(_ios(tmp_path, items))
    assert_count_rule(res)
    assert res.fixes["t_utc"].tolist() == [pd.Timestamp("2023-11-05T06:40:00Z")]
    assert res.rejects["reason"].str.contains("outside 1980-2100").sum() == 2


def test_malformed_timeline_files(tmp_path: Path) -> None:
    p = tmp_path / "Timeline.json"
    p.write_text('{"semanticSegments": [{"startTime": "2025-01-01T00:00:00Z", "visit"', "utf-8")
    with pytest.raises(CorruptSource, match="malformed JSON"):
        load(p)
    p.write_text('{"semanticSegments": {"a": 1}}', "utf-8")
    with pytest.raises(CorruptSource, match="not an array"):
        load(p)
    p.write_text('{"semanticSegments": ' + "[" * 100_000, "utf-8")  # hostile nesting, cut off
    with pytest.raises(CorruptSource, match="malformed JSON"):  # the nest is cut, the rest too
        load(p, format="google-timeline-android")
    q = _ios(tmp_path, [{"startTime": "2025-01-01T00:00:00Z", "endTime": 7,
                         "visit": {"topCandidate": {"placeLocation": 12}}}, 5])
    res = load(q)
    assert_count_rule(res)
    assert len(res.rejects) == 2 and "not a string" in res.rejects["reason"].iloc[0]
    (tmp_path / "arr.json").write_text('[{"name": "x", "startTime": "y"}]')
    with pytest.raises(UnknownFormat):
        load(tmp_path / "arr.json")
    e = tmp_path / "Timeline Edits.json"
    e.write_text(json.dumps({"timelineEdits": [{"placeAggregates": {}}, {
        "rawSignal": {"signal": {"position": {"point": {"latE7": 1, "lngE7": 2},
                                              "timestamp": "2025-01-01T00:00:00"}}}}]}))
    res = load(e, subject_id="phone-B")
    assert_count_rule(res)
    assert len(res.fixes) == 0 and res.rejects["reason"].str.contains(
        "not a location record|no UTC offset").all()


def test_an_integer_beyond_any_float_is_no_number_not_a_failure() -> None:
    """Fuzz google-timeline-edits:73939: a repeated digit run made latE7 a 300-digit JSON
    integer; float() of it overflowed and failed the file. It is now a record reject."""
    from routetrace.loaders.google_common import e7_pair, number

    assert number(10**400) is None and number(-(10**400)) is None and number(512345678) == 512345678.0
    assert e7_pair(10**400, 37000000) == "no numeric latitudeE7/longitudeE7"


def test_a_date_with_a_trailing_offset_but_no_time_is_no_utc_time(tmp_path: Path) -> None:
    """Fuzz google-timeline-ios:35407: "2024-01-03-06:00" ends like an offset, but pandas reads
    it as 06:00 on 3 January with no zone; converting that to UTC failed the whole file. It is
    now a record reject saying the time has no UTC offset."""
    from routetrace.loaders.google_common import parse_time

    assert "no UTC offset" in str(parse_time("2024-01-03-06:00"))
    assert parse_time("2024-01-03T06:00-06:00") == pd.Timestamp("2024-01-03T12:00Z")
    items = [{"startTime": "2024-01-03-06:00", "endTime": "2024-01-03T07:00:00.000-06:00",
              "visit": {"topCandidate": {"placeLocation": "geo:29.76,-95.36"}}},
             {"startTime": "2024-01-03T08:00:00.000-06:00", "endTime": "2024-01-03T09:00:00.000-06:00",
              "visit": {"topCandidate": {"placeLocation": "geo:29.76,-95.36"}}}]
    res = load(_ios(tmp_path, items))
    assert_count_rule(res)
    assert res.places["t_start"].tolist() == [pd.Timestamp("2024-01-03T14:00Z")]
    assert res.rejects["reason"].str.contains("no UTC offset").sum() == 1



def test_a_raw_signal_with_position_and_activity_keeps_both(tmp_path: Path) -> None:
    pos = {"LatLng": "51.0°, 3.87°", "timestamp": "2025-10-26T10:00:00Z", "source": "GPS"}
    act = {"timestamp": "2025-10-26T10:00:01Z",
           "probableActivities": [{"type": "IN_VEHICLE", "confidence": 0.8}]}
    doc = {"rawSignals": [
        {"position": pos, "activityRecord": act},
        {"position": pos, "activityRecord": {**act, "timestamp": "10:00"}},
        {"position": {**pos, "LatLng": "x"}, "activityRecord": {**act, "timestamp": "10:00"}},
    ]}
    p = tmp_path / "Timeline.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    res = load(p)
    assert_count_rule(res)
    assert res.records_read == 3
    assert res.fixes["record"].tolist() == ["rawSignals[0]", "rawSignals[1]"]
    assert res.events["record"].tolist() == ["rawSignals[0]"]  # the activity is kept
    assert res.events["text"].iloc[0] == "IN_VEHICLE"
    assert res.events["t_utc"].iloc[0] == pd.Timestamp("2025-10-26T10:00:01Z")
    # an unusable part is named where the usable one went; both unusable: one reject
    assert '"unusable_parts":{"activityRecord":"activity record time:' in res.fixes["extra"].iloc[1]
    why = res.rejects.set_index("record")["reason"]
    assert why["rawSignals[2]"].startswith("position: unreadable coordinates")
    assert "activity record time" in why["rawSignals[2]"]
