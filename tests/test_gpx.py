"""GPX loader: real files, count rule, rejected times, hostile XML, read-only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from routetrace.errors import CorruptSource, UnknownFormat
from routetrace.loaders import load
from routetrace.testing import assert_count_rule, hash_tree


def test_every_real_gpx_loads_with_count_rule_and_stays_byte_identical(realdata_dir: Path) -> None:
    folder = realdata_dir / "gpx"
    before = hash_tree(folder)
    results = {f.name: load(f) for f in sorted(folder.glob("*.gpx"))}
    assert hash_tree(folder) == before
    for res in results.values():
        assert_count_rule(res)
    moj = results["gpxpy_Mojstrovka.gpx"]
    assert len(moj.fixes) == 0 and len(moj.rejects) == 184
    assert moj.rejects["reason"].str.contains("implausible time 1901").all()
    cer = results["gpxpy_cerknicko-without-times.gpx"]
    assert (len(cer.fixes), len(cer.places), len(cer.rejects)) == (5, 7, 291)
    assert results["reitti_gpslogger_20250531.gpx"].fixes["fix_kind"].value_counts().to_dict() == {
        "network": 1889, "gps": 678}
    arc = results["dawarich_arc_example.gpx"]
    # +07:00 offsets are converted to UTC
    assert arc.fixes["t_utc"].dt.tz is not None
    less = results["gpxpy_track-with-less-sec-time.gpx"].fixes["t_utc"]
    assert [t.utcoffset() for t in less] == [pd.Timedelta(0)] * 2
    assert len(results["gpxpy_unicode_with_bom.gpx"].places) == 1


def _write(tmp_path: Path, body: str, name: str = "t.gpx") -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


GPX = """<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
<trk><trkseg>{pts}</trkseg></trk></gpx>"""


def test_offsets_and_naive_times(tmp_path: Path) -> None:
    pts = ('<trkpt lat="51.0" lon="3.87"><time>2025-10-26T01:30:00+02:00</time></trkpt>'
           '<trkpt lat="51.0" lon="3.87"><time>2025-10-26T02:30:00</time></trkpt>')
    res = load(_write(tmp_path, GPX.format(pts=pts)))
    assert res.fixes["t_utc"].tolist() == [pd.Timestamp("2025-10-25T23:30:00Z")]
    assert "no UTC offset" in res.rejects["reason"].iloc[0]
    # with a stated zone the naive time is read; 02:30 on 26 Oct 2025 is ambiguous in Brussels
    res2 = load(_write(tmp_path, GPX.format(pts=pts)), tz="Europe/Brussels")
    assert len(res2.fixes) == 1 and "ambiguous" in res2.rejects["reason"].iloc[0]
    assert "Europe/Brussels" in res2.source["time_basis"].iloc[0]


def test_entity_expansion_is_refused(tmp_path: Path) -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><gpx version="1.1"><wpt lat="1" lon="1">'
            '<name>&b;</name></wpt></gpx>')
    with pytest.raises(CorruptSource, match="DTDs and entities"):
        load(_write(tmp_path, bomb))


def test_truncated_xml_is_one_clear_error(tmp_path: Path) -> None:
    body = GPX.format(pts='<trkpt lat="51.0" lon="3.87"><time>2025-10-26T01:30:00Z</time>')[:-30]
    with pytest.raises(CorruptSource, match="malformed XML") as info:
        load(_write(tmp_path, body))
    assert "t.gpx" in str(info.value)


def test_empty_and_garbage_files_are_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "empty.gpx").write_bytes(b"")
    (tmp_path / "garbage.bin").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnknownFormat, match="empty file"):
        load(tmp_path / "empty.gpx")
    with pytest.raises(UnknownFormat, match="no loader recognises"):
        load(tmp_path / "garbage.bin")


def test_projected_metres_are_record_rejects_and_the_rest_is_kept(tmp_path: Path) -> None:
    """A converter that wrote UTM metres into lat/lon (issue 19): each such point is a reject
    naming its trk/seg/pt locator (was: SchemaError 'fixes.lat ... at row 0' for the file)."""
    pts = ('<trkpt lat="51.0" lon="3.87"><time>2025-10-26T01:30:00Z</time></trkpt>'
           '<trkpt lat="5651234.5" lon="412345.2"><time>2025-10-26T01:31:00Z</time></trkpt>'
           '<trkpt lat="nan" lon="3.87"><time>2025-10-26T01:32:00Z</time></trkpt>')
    body = GPX.format(pts=pts).replace(
        "</gpx>", '<rte><rtept lat="51.1" lon="-200.0"/></rte>'
                  '<wpt lat="5651234.5" lon="412345.2"><name>utm</name></wpt>'
                  '<wpt lat="51.2" lon="3.9"><name>ok</name></wpt></gpx>')
    res = load(_write(tmp_path, body))
    assert_count_rule(res)
    assert res.fixes["record"].tolist() == ["trk[0]/seg[0]/pt[0]"]
    assert res.places["record"].tolist() == ["wpt[1]"]
    rej = res.rejects.set_index("record")["reason"]
    assert sorted(rej.index) == ["rte[0]/pt[0]", "trk[0]/seg[0]/pt[1]", "trk[0]/seg[0]/pt[2]", "wpt[0]"]
    assert "outside WGS84 degrees" in rej["trk[0]/seg[0]/pt[1]"]
    assert "not a number" in rej["trk[0]/seg[0]/pt[2]"]


def test_a_bad_point_is_a_record_reject_and_the_rest_of_the_file_is_kept(tmp_path: Path) -> None:
    """Issue 21: gpxpy refused the whole file for one unreadable number (lat="abc", ele="x",
    sat="4.0"); each such point is now a reject naming trk[i]/seg[j]/pt[k]."""
    ok = '<trkpt lat="51.0" lon="3.87"><time>2025-06-01T10:00:00Z</time></trkpt>'
    pts = (ok + '<trkpt lat="abc" lon="3.87"><time>2025-06-01T10:00:01Z</time></trkpt>'
           '<trkpt lat="51.0"><time>2025-06-01T10:00:02Z</time></trkpt>'
           '<trkpt lat="999" lon="3.87"><time>2025-06-01T10:00:03Z</time></trkpt>'
           '<trkpt lat="51.0" lon="3.87"><ele>x</ele><time>2025-06-01T10:00:04Z</time></trkpt>'
           '<trkpt lat="51.0" lon="3.87"><sat>4.0</sat><time>2025-06-01T10:00:05Z</time></trkpt>'
           '<trkpt lat="51.0" lon="3.87"><hdop>inf</hdop><time>2025-06-01T10:00:06Z</time></trkpt>'
           '<trkpt lat="51.0" lon="3.87"><time>2025-02-30T10:00:07Z</time></trkpt>'
           '<trkpt lat="51.0" lon="3.87"><time>soon</time></trkpt>'
           + ok.replace("10:00:00", "10:00:09"))
    res = load(_write(tmp_path, GPX.format(pts=pts)))
    assert_count_rule(res)
    assert res.fixes["record"].tolist() == ["trk[0]/seg[0]/pt[0]", "trk[0]/seg[0]/pt[9]"]
    rej = res.rejects.set_index("record")["reason"].to_dict()
    assert rej == {
        "trk[0]/seg[0]/pt[1]": "unreadable position lat='abc', lon='3.87'",
        "trk[0]/seg[0]/pt[2]": "point without a lat or lon attribute",
        "trk[0]/seg[0]/pt[3]": "position lat=999.0, lon=3.87 is outside WGS84 degrees (projected "
                               "metres or another CRS?): not a point on Earth as GPX states it",
        "trk[0]/seg[0]/pt[4]": "unreadable <ele> 'x'",
        "trk[0]/seg[0]/pt[5]": "unreadable <sat> '4.0'",
        "trk[0]/seg[0]/pt[6]": "<hdop> 'inf' is not a finite number",
        "trk[0]/seg[0]/pt[7]": "unreadable <time> '2025-02-30T10:00:07Z' (not an ISO-8601 date "
                               "and time)",
        "trk[0]/seg[0]/pt[8]": "unreadable <time> 'soon' (not an ISO-8601 date and time)",
    }


def test_what_is_read_and_where_it_is_located(tmp_path: Path) -> None:
    """The locator scheme and fields as gpxpy read them: empty segments and empty tracks
    count, points nested elsewhere are not records, a point's first <time> wins, fractions
    are kept to the microsecond, GPX 1.1 track/route <type> and GPSLogger <src>/<sat>/<hdop>
    go to extra; routes come after tracks whatever the order in the file."""
    body = """<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">
<wpt lat="51.2" lon="3.9"><time>2025-06-01T10:00:00+02:00</time><name>home</name>
  <desc>d</desc><sym>Flag</sym></wpt>
<rte><type>drive</type><rtept lat="51.0" lon="3.0"><time>2025-06-01T10:00:00.1234567+02:00</time>
  </rtept></rte>
<trk><type>walk</type><trkseg/><trkseg>
  <trkpt lat="51.0" lon="3.0"><time>2025-06-01T10:00:00Z</time><time>2024-01-01T00:00:00Z</time>
    <name>a &amp; b</name><src>cell</src><sat>07</sat><hdop>0.8</hdop></trkpt>
  <trkpt lat="51.0" lon="3.0"><time>2025-06-01T10:00:01Z</time><src>bluetooth</src>
    <extensions><trkpt lat="1" lon="1"><time>2025-06-01T10:00:00Z</time></trkpt></extensions>
  </trkpt></trkseg></trk>
<trk/>
<trk><trkseg><trkpt lat="1" lon="2"><time>2025-06-01T10:00:02Z</time></trkpt></trkseg></trk>
</gpx>"""
    res = load(_write(tmp_path, body))
    assert_count_rule(res)
    assert res.records_read == 5
    f = res.fixes
    assert f["record"].tolist() == ["trk[0]/seg[1]/pt[0]", "trk[0]/seg[1]/pt[1]",
                                    "trk[2]/seg[0]/pt[0]", "rte[0]/pt[0]"]
    assert f["t_utc"].tolist() == [pd.Timestamp("2025-06-01T10:00:00Z"),
                                   pd.Timestamp("2025-06-01T10:00:01Z"),
                                   pd.Timestamp("2025-06-01T10:00:02Z"),
                                   pd.Timestamp("2025-06-01T08:00:00.123456Z")]
    assert f["fix_kind"].tolist() == ["cell", "unknown", "gps", "gps"]
    assert f["extra"].tolist() == ['{"hdop":0.8,"name":"a & b","sat":7,"src":"cell","type":"walk"}',
                                   '{"src":"bluetooth","type":"walk"}', "{}", '{"type":"drive"}']
    place = res.places.iloc[0]
    assert (place["record"], place["name"], place["text"]) == ("wpt[0]", "home", "d")
    assert place["t_start"] == pd.Timestamp("2025-06-01T08:00:00Z")


def test_gpx_10_speed_and_course_and_a_naive_time_with_tz(tmp_path: Path) -> None:
    body = """<gpx version="1.0"><trk><type>ignored in 1.0</type><trkseg>
<trkpt lat="51.0" lon="3.0"><ele>12.5</ele><time>2025-06-01T12:00:00</time><course>90</course>
<speed>3.5</speed></trkpt></trkseg></trk></gpx>"""
    res = load(_write(tmp_path, body), tz="Europe/Brussels")
    row = res.fixes.iloc[0]
    assert (row["alt_m"], row["speed_mps"], row["course_deg"]) == (12.5, 3.5, 90.0)
    assert row["t_utc"] == pd.Timestamp("2025-06-01T10:00:00Z") and row["extra"] == "{}"


def test_a_dtd_in_another_encoding_is_refused(tmp_path: Path) -> None:
    """The byte check sees UTF-8 only; the parsed document's DOCTYPE is checked too."""
    body = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE gpx [<!ENTITY a "aaaa">]>'
            '<gpx version="1.1"><wpt lat="1" lon="1"><name>&a;</name></wpt></gpx>')
    p = tmp_path / "u16.gpx"
    p.write_bytes(body.encode("utf-16"))
    with pytest.raises(CorruptSource, match="DTDs and entities"):
        load(p, format="gpx")
