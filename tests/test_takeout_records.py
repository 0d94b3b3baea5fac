"""Takeout Records.json / Location History.json: real files, styles, devices, streaming, damage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routetrace import schema
from routetrace.errors import CorruptSource
from routetrace.loaders import detect_format, load
from routetrace.loaders.takeout_records import stream_records
from routetrace.schema import has_flag
from routetrace.testing import assert_count_rule, hash_tree


def test_every_real_records_file_loads(realdata_dir: Path) -> None:
    folder = realdata_dir / "takeout" / "records"
    before = hash_tree(folder)
    res = {f.name: load(f) for f in sorted(folder.glob("*.json"))}
    assert hash_tree(folder) == before
    for r in res.values():
        assert_count_rule(r)
        assert r.source["format"].iloc[0] == "google-takeout-records"
    rei = res["reitti_Records.json"]
    assert (len(rei.fixes), len(rei.events), len(rei.rejects)) == (95, 47, 0)
    assert set(rei.fixes["fix_kind"]) == {"gps", "wifi"}
    assert rei.fixes["t_utc"].min() == pd.Timestamp("2013-04-15T06:31:26.860Z")
    assert rei.fixes["t_utc"].max().floor("min") == pd.Timestamp("2013-04-15T08:53Z")
    assert set(rei.fixes["subject_id"]) == {"google-device-335552189"}
    assert (rei.events["kind"] == "activity").all() and set(rei.events["text"]) <= {
        "STILL", "ON_FOOT", "WALKING", "IN_VEHICLE", "ON_BICYCLE", "TILTING", "UNKNOWN",
        "EXITING_VEHICLE", "RUNNING", "IN_ROAD_VEHICLE", "IN_RAIL_VEHICLE"}
    # every event sits on the fix of its own location record
    joined = rei.events.merge(rei.fixes[["record", "lat", "lon"]], on="record", suffixes=("", "_f"))
    assert len(joined) == 47 and np.allclose(joined["lat"], joined["lat_f"])
    # a location may hold several activities: each event's part names its own, so each
    # (derived) event id is its own: <source>:locations[k]/activity[j]:activity
    assert rei.events["part"].astype(str).str.fullmatch(r"activity\[\d+\]").all()
    ids = schema.event_ids(rei.events)
    assert ids.is_unique and ids.str.fullmatch(r"[0-9a-f]{16}:locations\[\d+\]/activity\[\d+\]:activity").all()


def test_device_tags_are_subjects_unless_merged(realdata_dir: Path) -> None:
    f = realdata_dir / "takeout" / "records" / "dawarich_records.json"
    res = load(f)
    assert res.fixes["subject_id"].tolist() == [
        "dawarich_records", "dawarich_records", "google-device-1184882232"]
    assert res.fixes["h_acc_m"].tolist() == [150.0, 18000.0, 22.0]
    assert has_flag(res.fixes["flags"], "low_accuracy").tolist() == [False, True, False]
    assert res.fixes["fix_kind"].tolist() == ["unknown", "unknown", "wifi"]
    merged = load(f, subject_id="phone-B")
    assert set(merged.fixes["subject_id"]) == {"phone-B"}


def test_timestampMs_style(realdata_dir: Path) -> None:
    res = load(realdata_dir / "takeout" / "records" / "dogsheep_Location_History.json")
    assert_count_rule(res)
    # "1437263846012" ms since 1970 = 2015-07-18T23:57:26.012Z
    assert res.fixes["t_utc"].iloc[0] == pd.Timestamp("2015-07-18T23:57:26.012Z")
    ev = res.events.iloc[0]
    assert ev["t_utc"] == pd.Timestamp(1437263882066, unit="ms", tz="UTC")
    assert (ev["text"], ev["value"]) == ("UNKNOWN", 40.0)
    assert json.loads(ev["extra"])["activities"][1] == ["IN_VEHICLE", 25]


def _write(tmp_path: Path, locations: list[object], name: str = "Records.json",
           bom: bool = False) -> Path:
    p = tmp_path / name
    data = json.dumps({"locations": locations}).encode()
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return p


def test_fields_units_offsets_and_bom(tmp_path: Path) -> None:
    locs = [
        {"latitudeE7": 510000000, "longitudeE7": 38700000, "accuracy": 12, "altitude": 15,
         "velocity": 3, "heading": 270, "verticalAccuracy": 4, "source": "GPS",
         "deviceTag": 7, "timestamp": "2025-10-26T02:30:00+02:00", "platformType": "ANDROID"},
        {"latitudeE7": 510000100, "longitudeE7": 38700100, "timestamp": "2025-10-26T02:30:00.5+01:00"},
    ]
    res = load(_write(tmp_path, locs, bom=True))
    assert_count_rule(res)
    fx = res.fixes
    assert fx["t_utc"].tolist() == [pd.Timestamp("2025-10-26T00:30:00Z"),
                                    pd.Timestamp("2025-10-26T01:30:00.5Z")]
    row = fx.iloc[0]
    assert (row["lat"], row["lon"], row["alt_m"], row["speed_mps"], row["course_deg"],
            row["h_acc_m"], row["v_acc_m"]) == (51.0, 3.87, 15.0, 3.0, 270.0, 12.0, 4.0)
    assert json.loads(row["extra"]) == {"platformType": "ANDROID"}
    assert row["subject_id"] == "google-device-7"


def test_bad_records_are_rejected_with_reasons(tmp_path: Path) -> None:
    locs: list[object] = [
        {"latitudeE7": 510000000, "longitudeE7": 38700000, "timestamp": "2025-01-01T00:00:00Z"},
        {"latitudeE7": 510000000, "longitudeE7": 38700000, "timestamp": "2025-01-01T00:00:00"},
        {"latitudeE7": "north", "longitudeE7": 38700000, "timestamp": "2025-01-01T00:00:00Z"},
        {"latitudeE7": 510000000, "longitudeE7": 38700000},
        "not a location",
        {"latitudeE7": 510000000, "longitudeE7": 38700000, "timestampMs": "-99999999999999"},
        {"latitudeE7": 0, "longitudeE7": 0, "timestamp": "2025-01-01T00:00:00Z"},
        {"latitudeE7": 4294967296 - 100000000, "longitudeE7": 38700000,
         "timestamp": "2025-01-01T00:00:00Z"},
        {"latitudeE7": None, "longitudeE7": 1, "timestamp": "2025-01-01T00:00:00Z",
         "activity": [{"timestamp": "2025-01-01T00:00:05Z",
                       "activity": [{"type": "STILL", "confidence": 90}]}]},
        {"latitudeE7": 510000000, "longitudeE7": 38700000, "timestamp": 12,
         "deviceTag": {"x": 1}, "source": ["odd"]},
    ]
    res = load(_write(tmp_path, locs))
    assert_count_rule(res)
    why = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert set(why) == {"locations[1]", "locations[2]", "locations[3]", "locations[4]",
                        "locations[5]", "locations[9]"}
    assert "no UTC offset" in why["locations[1]"]
    assert "latitudeE7" in why["locations[2]"]
    assert "none is invented" in why["locations[3]"]
    assert "not a JSON object" in why["locations[4]"]
    assert "implausible" in why["locations[5]"]
    zero = res.fixes.set_index("record").loc["locations[6]"]
    assert has_flag(pd.Series([zero["flags"]]), "zero_position").all()
    wrapped = res.fixes.set_index("record").loc["locations[7]"]
    assert wrapped["lat"] == pytest.approx(-10.0) and json.loads(wrapped["extra"])["e7_wrapped"]
    # a location without position but with an activity keeps the activity and says why
    ev = res.events.set_index("record").loc["locations[8]"]
    assert ev["text"] == "STILL" and np.isnan(ev["lat"])
    assert "latitudeE7" in json.loads(ev["extra"])["location_rejected"]


def test_truncated_file_keeps_what_was_read(tmp_path: Path) -> None:
    locs = [{"latitudeE7": 510000000 + i, "longitudeE7": 38700000,
             "timestamp": f"2025-01-01T00:00:{i:02d}Z"} for i in range(50)]
    p = _write(tmp_path, locs)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    res = load(p, options={"chunk_rows": 7})
    assert_count_rule(res)
    assert 20 <= len(res.fixes) < 50
    assert len(res.rejects) == 1
    assert res.rejects["record"].iloc[0] == f"locations[{len(res.fixes)}:]"
    assert "breaks off" in res.rejects["reason"].iloc[0]


def test_unreadable_or_wrong_shape_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b'{"locations": [{"latitudeE7": 5')
    with pytest.raises(CorruptSource, match="a.json"):
        load(tmp_path / "a.json", format="google-takeout-records")
    (tmp_path / "b.json").write_bytes(b'{"locations": 5}')
    with pytest.raises(CorruptSource, match="not an array"):
        load(tmp_path / "b.json", format="google-takeout-records")
    (tmp_path / "c.json").write_bytes(b'{"other": []}')
    with pytest.raises(CorruptSource, match="no 'locations'"):
        load(tmp_path / "c.json", format="google-takeout-records")
    empty = load(_write(tmp_path, [], name="d.json"))
    assert empty.records_read == 0 and len(empty.fixes) == 0


def test_streaming_chunks_equal_the_whole_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    locs = [{"latitudeE7": int(rng.integers(-900000000, 900000000)),
             "longitudeE7": int(rng.integers(-1800000000, 1800000000)),
             "accuracy": int(rng.integers(1, 3000)), "source": ["GPS", "WIFI", "CELL"][i % 3],
             "deviceTag": i % 2, "timestampMs": str(1_700_000_000_000 + i * 1000)}
            for i in range(1000)]
    p = _write(tmp_path, locs)
    whole = load(p)
    chunks = list(stream_records(p, chunk_rows=64))
    assert len(chunks) == 16
    streamed = pd.concat([c[0] for c in chunks], ignore_index=True)
    for col in ("record", "t_utc", "lat", "lon", "h_acc_m", "fix_kind", "subject_id", "flags"):
        assert streamed[col].astype(str).tolist() == whole.fixes[col].astype(str).tolist(), col
    assert whole.fixes["lat"].iloc[5] == locs[5]["latitudeE7"] / 1e7  # type: ignore[operator]
    small = load(p, options={"chunk_rows": 10})
    assert schema.fix_ids(small.fixes).tolist() == schema.fix_ids(whole.fixes).tolist()


def test_sniffer_claims_records_only(tmp_path: Path) -> None:
    p = _write(tmp_path, [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": "2025-01-01T00:00:00Z"}])
    assert detect_format(p).name == "google-takeout-records"
    (tmp_path / "x.json").write_text('{"locations": ["Paris", "Rome"]}')
    with pytest.raises(Exception, match="no loader"):
        detect_format(tmp_path / "x.json")


def test_an_over_deep_or_over_long_location_is_a_reject_with_its_hash(tmp_path: Path) -> None:
    import hashlib

    ok = json.dumps({"latitudeE7": 510000000, "longitudeE7": 38000000,
                     "timestamp": "2025-10-24T20:00:00Z"})
    deep = ok[:-1] + ', "activity": ' + "[" * 2_000 + "]" * 2_000 + "}"
    long = ok[:-1] + ', "source": "' + "W" * 100_000 + '"}'
    p = tmp_path / "Records.json"
    p.write_text('{"locations": [' + ", ".join([ok, deep, long, ok]) + "]}", encoding="utf-8")
    res = load(p)
    assert_count_rule(res)
    assert res.fixes["record"].tolist() == ["locations[0]", "locations[3]"]
    why = res.rejects.set_index("record")["reason"]
    assert why["locations[1]"].startswith("nested 2,003 levels deep (limit 64): not read")
    assert f"{len(deep) + 1:,} bytes, SHA-256 " in why["locations[1]"]  # with the ' ' after ','
    assert hashlib.sha256(b" " + deep.encode()).hexdigest() in why["locations[1]"]
    assert why["locations[2]"].startswith("holds a string of 100,000 bytes (limit 65,536)")
    assert "begins '{\"latitudeE7\": 510000000" in why["locations[2]"]
    # an excess outside the locations is the file's error (not a MemoryError)
    p.write_text('{"locations": [], "x": {"y": ' + "[" * 100 + "]" * 100 + "}}", encoding="utf-8")
    with pytest.raises(CorruptSource, match="nesting deeper than 64 levels at byte 91"):
        load(p)


def test_a_200kb_nest_in_a_folder_ingest_stays_small(tmp_path: Path) -> None:
    """#20: 200 KB of '[' drove ijson past 15 GB and a MemoryError ended the ingest. Run
    under a 2 GiB address-space cap, in a child process, so the old behaviour fails cleanly."""
    import subprocess
    import sys
    import textwrap

    ev = tmp_path / "evidence"
    ev.mkdir()
    ok = {"latitudeE7": 510000000, "longitudeE7": 38000000, "timestamp": "2025-10-24T20:00:00Z"}
    (ev / "Records.json").write_text(
        json.dumps({"locations": [ok]})[:-2] + ', {"activity": ' + "[" * 100_000 + "]" * 100_000
        + "}, " + json.dumps(ok) + "]}", encoding="utf-8")
    code = textwrap.dedent(f"""
        import resource
        from routetrace.loaders import load_many
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        for o in load_many({str(ev)!r}):
            r = o.result
            print(o.error or (len(r.fixes), list(r.rejects["record"]), r.rejects["reason"].iloc[0][:30]))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "(2, ['locations[1]'], 'nested 100,003 levels deep (li')"
    assert int(lines[1].split()[0]) < 1024


def _by_ijson_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the fast reader give up at once, so that ijson reads the whole file."""
    from routetrace.loaders import takeout_records as tr

    def give_up(fh: object) -> Iterator[list[object]]:
        raise tr._Fallback("test: ijson only")
        yield []  # pragma: no cover

    monkeypatch.setattr(tr, "_fast_blocks", give_up)


def _outcome(p: Path, chunk_rows: int) -> object:
    try:
        r = load(p, format="google-takeout-records", options={"chunk_rows": chunk_rows})
    except CorruptSource as exc:
        return str(exc)
    return (r.records_read, r.fixes.astype(str).values.tolist(),
            r.events.astype(str).values.tolist(), r.rejects.astype(str).values.tolist())


_ODD_FILES: dict[str, bytes] = {
    "unknown key mid-file": b"",  # pretty-printed _odd_locations()
    "compact": b"",  # _odd_locations() without white space
    "not objects": b'{"locations": [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": '
                   b'"2025-01-01T00:00:00Z"}, [1, 2], "str", null, 7, {"latitudeE7": 3}]}',
    "integer beyond 64 bits": b'{"locations": [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": '
                              b'"2025-01-01T00:00:00Z"}, {"latitudeE7": 123456789012345678901234, '
                              b'"longitudeE7": 2}]}',
    "trailing garbage": b'{"locations": [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": '
                        b'"2025-01-01T00:00:00Z"}]} x',
    "trailing comma": b'{"locations": [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": '
                      b'"2025-01-01T00:00:00Z"},]}',
    "key after the array": b'{"locations": [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": '
                           b'"2025-01-01T00:00:00Z"}], "locations": [{"latitudeE7": 5}]}',
    "activity null or odd": b'{"locations": [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": '
                            b'"2025-01-01T00:00:00Z", "activity": null}, {"latitudeE7": 1, '
                            b'"longitudeE7": 2, "timestamp": "2025-01-01T00:00:01Z", "activity": '
                            b'[5, {"activity": [{"type": "A", "confidence": "x"}]}]}]}',
    "lone surrogate": b'{"locations": [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": '
                      b'"2025-01-01T00:00:00Z", "source": "\\ud800"}]}',
    "empty": b'{ "locations" : [ ] }\n',
    "invalid utf-8": b'{"locations": [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": '
                     b'"2025-01-01T00:00:00Z", "source": "\xc3("}]}',
    "not the first key": b'{"x": 1, "locations": [{"latitudeE7": 1, "longitudeE7": 2, '
                         b'"timestamp": "2025-01-01T00:00:00Z"}]}',
}


def _odd_locations() -> list[dict[str, object]]:
    locs: list[dict[str, object]] = []
    for i in range(300):
        loc: dict[str, object] = {"latitudeE7": 510000000 + i, "longitudeE7": 38700000,
                                  "timestamp": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
                                  "deviceTag": i % 3, "source": "WIFI"}
        if i % 7 == 0:  # '}, {' inside the activity and inside a string: false cut points
            loc["activity"] = [{"timestamp": loc["timestamp"], "activity": [
                {"type": "STILL", "confidence": 60}, {"type": "}, {", "confidence": 40}]}]
        if i == 250:
            loc["platformType"] = "ANDROID"
        locs.append(loc)
    return locs


@pytest.mark.parametrize("name", sorted(_ODD_FILES))
def test_the_fast_reader_reads_as_ijson_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """msgspec reads blocks of locations where it can vouch for them, ijson the rest: every
    table, reject and error must be what ijson alone gives, also with blocks so small that
    every location is cut across two of them."""
    from routetrace.loaders import takeout_records as tr

    data = _ODD_FILES[name] or json.dumps({"locations": _odd_locations()},
                                          indent=None if name == "compact" else 1,
                                          separators=(",", ":") if name == "compact" else None,
                                          ).encode()
    p = tmp_path / "Records.json"
    variants = [data, data[: len(data) * 2 // 3]]  # whole, and cut off
    for variant in variants:
        p.write_bytes(variant)
        fast = [_outcome(p, rows) for rows in (7, 1000)]
        monkeypatch.setattr(tr, "_BLOCK_BYTES", 97)
        small = [_outcome(p, rows) for rows in (7, 1000)]
        monkeypatch.undo()
        _by_ijson_only(monkeypatch)
        slow = [_outcome(p, rows) for rows in (7, 1000)]
        monkeypatch.undo()
        assert fast == slow and small == slow


def test_an_oversize_location_is_cut_out_for_the_fast_reader_too(tmp_path: Path) -> None:
    ok = {"latitudeE7": 510000000, "longitudeE7": 38000000, "timestamp": "2025-10-24T20:00:00Z"}
    deep = json.dumps(ok)[:-1] + ', "activity": ' + "[" * 100 + "]" * 100 + "}"
    p = tmp_path / "Records.json"
    p.write_text('{"locations": [' + ", ".join([json.dumps(ok)] * 3 + [deep, json.dumps(ok)])
                 + "]}", encoding="utf-8")
    res = load(p)
    assert_count_rule(res)
    assert res.fixes["record"].tolist() == [f"locations[{i}]" for i in (0, 1, 2, 4)]
    assert res.rejects["record"].tolist() == ["locations[3]"]
